//! The placement routes of the HTTP endpoint (`metrics.listener`), corelog's own admin
//! surface next to the Prometheus exposition; `corelog placement` is their client.
//!
//! - `POST /placement/move?topic=T&partition=P&shard=S` moves a partition live and
//!   answers `{"topic", "partition", "from", "to", "unavailable_ms", "revision",
//!   "log_end_offset"}` (the log end offset it moved at; -1 when it stayed).
//! - `POST /placement/reload` reads `placement.file` again and moves what it places
//!   elsewhere: `{"rules", "moves": [...]}`.
//!
//! Errors answer 400 (a bad request), 404 (no such partition) or 409 (refused), each
//! with `{"error": "..."}`. Served by shard 0 like the rest of the endpoint.

use crate::metadata::TopicPartition;
use crate::placement::moves::{self, MoveError, MoveReport};
use crate::routing::Router;
use serde_json::{Value, json};

/// An HTTP status line and a JSON body.
pub type Answer = (&'static str, String);

fn error(status: &'static str, message: impl std::fmt::Display) -> Answer {
    (status, json!({ "error": message.to_string() }).to_string())
}

/// The value of `key` in a query string (`a=1&b=2`), if present.
fn param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn report_json(report: &MoveReport) -> Value {
    json!({
        "topic": report.tp.topic,
        "partition": report.tp.partition,
        "from": report.from.0,
        "to": report.to.0,
        "unavailable_ms": report.unavailable.as_secs_f64() * 1e3,
        "revision": report.revision,
        "log_end_offset": report.log_end_offset,
    })
}

fn move_error(e: &MoveError) -> Answer {
    match e {
        MoveError::UnknownPartition(_) => error("404 Not Found", e),
        MoveError::NoSuchShard { .. } => error("400 Bad Request", e),
        MoveError::Refused(_) => error("409 Conflict", e),
    }
}

/// `POST /placement/move?topic=T&partition=P&shard=S`.
pub async fn move_partition(router: &Router, query: &str) -> Answer {
    let (Some(topic), Some(partition), Some(shard)) = (
        param(query, "topic"),
        param(query, "partition"),
        param(query, "shard"),
    ) else {
        return error(
            "400 Bad Request",
            "expected ?topic=NAME&partition=N&shard=S",
        );
    };
    if topic.is_empty()
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return error("400 Bad Request", format!("'{topic}' is not a topic name"));
    }
    let Ok(partition) = partition.parse::<i32>() else {
        return error(
            "400 Bad Request",
            format!("'{partition}' is not a partition"),
        );
    };
    let Ok(shard) = shard.parse::<usize>() else {
        return error("400 Bad Request", format!("'{shard}' is not a shard"));
    };
    let tp = TopicPartition::new(topic.to_string(), partition);
    match moves::move_partition(router, tp, shard).await {
        Ok(report) => ("200 OK", report_json(&report).to_string()),
        Err(e) => move_error(&e),
    }
}

/// `POST /placement/reload`.
pub async fn reload(router: &Router) -> Answer {
    match moves::reload(router).await {
        Ok(report) => {
            let moves: Vec<Value> = report
                .moves
                .iter()
                .map(|m| match m {
                    Ok(report) => report_json(report),
                    Err(e) => json!({ "error": e.to_string() }),
                })
                .collect();
            (
                "200 OK",
                json!({ "rules": report.rules, "moves": moves }).to_string(),
            )
        }
        Err(e) => error("400 Bad Request", e),
    }
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn query_parameters_are_found_by_name() {
        let q = "topic=t.1&partition=3&shard=1";
        assert_eq!(param(q, "topic"), Some("t.1"));
        assert_eq!(param(q, "partition"), Some("3"));
        assert_eq!(param(q, "shard"), Some("1"));
        assert_eq!(param(q, "other"), None);
        assert_eq!(param("", "topic"), None);
    }
}
