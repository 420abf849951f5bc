//! `corelog placement`: which shard carries what, and moving partitions between shards
//! of a running corelog broker. Unlike `topic` and `group`, these speak to corelog's own
//! admin routes on its HTTP endpoint (`metrics.listener`, default localhost:9644),
//! since Kafka has no API for a broker's cores.
//!
//! - `move TOPIC-PARTITION SHARD`: moves a partition live and prints how long it was
//!   unavailable.
//! - `reload`: reads the broker's `placement.file` again and moves what it places
//!   elsewhere.

use super::CliError;
use super::output::Format;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Where the broker's HTTP endpoint is, and how to print.
#[derive(Debug, Clone, clap::Args)]
pub struct EndpointArgs {
    /// The broker's HTTP endpoint (its `metrics.listener`).
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        default_value = "localhost:9644"
    )]
    pub endpoint: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct PlacementCommand {
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    #[command(subcommand)]
    pub action: PlacementAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum PlacementAction {
    /// Move a partition to another shard, live.
    Move {
        /// The partition, as TOPIC-PARTITION (e.g. orders-3).
        partition: String,
        /// The shard to move it to.
        shard: usize,
    },
    /// Read the broker's placement file again and move what it places elsewhere.
    Reload,
}

pub fn run(command: PlacementCommand) -> Result<(), CliError> {
    let args = &command.endpoint;
    match command.action {
        PlacementAction::Move { partition, shard } => {
            let (topic, index) = split_partition(&partition)?;
            let answer = request(
                &args.endpoint,
                "POST",
                &format!("/placement/move?topic={topic}&partition={index}&shard={shard}"),
            )?;
            match args.format {
                Format::Json => println!("{answer}"),
                Format::Table => println!("{}", describe_move(&answer)),
            }
        }
        PlacementAction::Reload => {
            let answer = request(&args.endpoint, "POST", "/placement/reload")?;
            match args.format {
                Format::Json => println!("{answer}"),
                Format::Table => {
                    let moves = answer["moves"].as_array().cloned().unwrap_or_default();
                    println!(
                        "Reloaded {} placement rules: {} partitions moved.",
                        answer["rules"],
                        moves.len()
                    );
                    for m in &moves {
                        println!("{}", describe_move(m));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `orders-3` → (`orders`, 3): the partition follows the last '-'.
fn split_partition(text: &str) -> Result<(&str, i32), CliError> {
    text.rsplit_once('-')
        .and_then(|(topic, p)| Some((topic, p.parse::<i32>().ok()?)))
        .filter(|(topic, p)| !topic.is_empty() && *p >= 0)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "'{text}' is not a partition: expected TOPIC-PARTITION, like orders-3"
            ))
        })
}

fn describe_move(m: &Value) -> String {
    if let Some(error) = m["error"].as_str() {
        return format!("Not moved: {error}");
    }
    let name = format!("{}-{}", m["topic"].as_str().unwrap_or("?"), m["partition"]);
    if m["from"] == m["to"] {
        return format!("{name} already is on shard {}.", m["to"]);
    }
    format!(
        "Moved {name} from shard {} to shard {}: unavailable for {:.1} ms (shard table revision {}).",
        m["from"],
        m["to"],
        m["unavailable_ms"].as_f64().unwrap_or(0.0),
        m["revision"]
    )
}

/// One HTTP/1.1 request to the endpoint; the JSON answer, or the error it carries.
pub fn request(endpoint: &str, method: &str, target: &str) -> Result<Value, CliError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        CliError::Failed(format!(
            "cannot reach the broker's HTTP endpoint {endpoint} (its metrics.listener): {e}"
        ))
    };
    let address = endpoint
        .to_socket_addrs()
        .map_err(|e| CliError::Usage(format!("'{endpoint}' is not HOST:PORT: {e}")))?
        .next()
        .ok_or_else(|| CliError::Usage(format!("'{endpoint}' names no address")))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))
        .map_err(|e| unreachable(&e))?;
    // A move waits for appends under way and a log to close; a reload for every move.
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(|e| unreachable(&e))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {endpoint}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| unreachable(&e))?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| unreachable(&e))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| CliError::Failed(format!("{endpoint} answered no HTTP response")))?;
    let status = head.split(' ').nth(1).unwrap_or("");
    let value: Value = serde_json::from_str(body).map_err(|_| {
        CliError::Failed(format!(
            "{endpoint} answered {} with no JSON: is it a corelog broker's metrics.listener?",
            head.lines().next().unwrap_or("")
        ))
    })?;
    if status != "200" {
        let error = value["error"].as_str().unwrap_or("refused");
        return Err(CliError::Failed(error.to_string()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_named_topic_dash_index() {
        assert_eq!(split_partition("orders-3").unwrap(), ("orders", 3));
        assert_eq!(split_partition("my-topic-10").unwrap(), ("my-topic", 10));
        for bad in ["orders", "orders-", "-3", "orders-x", "orders--1"] {
            assert_eq!(split_partition(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn moves_are_described_in_words() {
        let moved: Value = serde_json::from_str(
            r#"{"topic":"t","partition":1,"from":0,"to":1,"unavailable_ms":2.25,"revision":9}"#,
        )
        .unwrap();
        assert_eq!(
            describe_move(&moved),
            "Moved t-1 from shard 0 to shard 1: unavailable for 2.2 ms (shard table revision 9)."
        );
        let error: Value = serde_json::from_str(r#"{"error":"t-9 does not exist"}"#).unwrap();
        assert_eq!(describe_move(&error), "Not moved: t-9 does not exist");
    }
}
