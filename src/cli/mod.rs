//! The `corelog` command line: `corelog serve` runs a broker; `corelog topic ...` and
//! `corelog group ...` are the operator commands, which speak Kafka's wire protocol to
//! any Kafka-compatible broker (corelog or Apache Kafka) with the option names of
//! Kafka's own tools (kafka-topics.sh, kafka-configs.sh, kafka-consumer-groups.sh).
//! `corelog placement ...` is corelog's own: it speaks to a corelog broker's HTTP
//! endpoint (`metrics.listener`) about its shards.
//!
//! - `serve`: the broker's arguments, turned into a validated `BrokerConfig`.
//! - `client`: a blocking Kafka client over the crate's generated codec.
//! - `topic`, `group`: one file per command group; each command returns a report.
//! - `placement`: corelog-specific, not Kafka: shard and partition load, live moves and
//!   placement file reloads, over plain HTTP to a corelog broker's metrics endpoint.
//! - `output`: tables, Kafka's layouts, `--format json`.
//!
//! The operator commands use no broker internals, only `protocol`, `config` and
//! `model` (`placement` only the JSON document it reads). Exit status: 0 on success, 1
//! when an operation fails (the broker refused it or could not be reached), 2 for bad
//! arguments; never a panic.

pub mod client;
pub mod group;
pub mod output;
pub mod placement;
pub mod serve;
pub mod topic;

pub use serve::ServeArgs;

use clap::{Parser, Subcommand};
use client::{Client, ClientConfig, ClientError, DEFAULT_BOOTSTRAP, DEFAULT_TIMEOUT_MS};
use output::Format;
use std::fmt;

#[derive(Debug, Parser)]
#[command(
    name = "corelog",
    version,
    about = "A Kafka-compatible broker, thread-per-core on io_uring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a broker (by default a single node on localhost:9092 with data in ./data).
    Serve(ServeArgs),
    #[command(flatten)]
    Admin(AdminCommand),
}

/// The operator commands: clients of any Kafka-compatible broker.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create, list, describe and delete topics, change their configs (as
    /// kafka-topics.sh and kafka-configs.sh).
    Topic(topic::TopicCommand),
    /// List, describe and delete consumer groups, reset their offsets (as
    /// kafka-consumer-groups.sh).
    Group(group::GroupCommand),
    /// See and move which shard carries which partition of a corelog broker, through
    /// its metrics endpoint (corelog-specific).
    #[command(subcommand)]
    Placement(placement::PlacementCommand),
}

/// How to reach the cluster and how to print: every operator command takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Brokers to bootstrap from.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT[,HOST:PORT]",
        default_value = DEFAULT_BOOTSTRAP
    )]
    pub bootstrap_server: String,
    /// Bound on connecting and on each answer, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub timeout_ms: u64,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl ConnectArgs {
    /// A client connected to the first bootstrap server that answers.
    pub fn client(&self) -> Result<Client, CliError> {
        let config = ClientConfig::parse(&self.bootstrap_server, self.timeout_ms)
            .map_err(CliError::Usage)?;
        Ok(Client::connect(config)?)
    }
}

/// Why an operator command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// The arguments make no sense (exit status 2).
    Usage(String),
    /// A call failed: unreachable broker, refused request (exit status 1).
    Client(ClientError),
    /// The operation cannot be done as asked (exit status 1).
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Client(_) | CliError::Failed(_) => 1,
        }
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        CliError::Client(e)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(message) | CliError::Failed(message) => f.write_str(message),
            CliError::Client(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CliError {}

/// Runs an operator command; returns the process's exit status, the error on stderr.
pub fn run(command: AdminCommand) -> i32 {
    let result = match command {
        AdminCommand::Topic(command) => topic::run(command),
        AdminCommand::Group(command) => group::run(command),
        AdminCommand::Placement(command) => placement::run(command),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("corelog: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_options_go_before_or_after_the_action_with_kafkas_defaults() {
        let Command::Admin(AdminCommand::Topic(command)) =
            Cli::try_parse_from(["corelog", "topic", "list"])
                .unwrap()
                .command
        else {
            panic!("a topic command")
        };
        assert_eq!(command.connect.bootstrap_server, "localhost:9092");
        assert_eq!(command.connect.timeout_ms, 30_000);
        assert_eq!(command.connect.format, Format::Table);
        for argv in [
            &[
                "corelog",
                "topic",
                "--bootstrap-server",
                "h:1",
                "list",
                "--format",
                "json",
            ][..],
            &[
                "corelog",
                "topic",
                "list",
                "--bootstrap-server",
                "h:1",
                "--format",
                "json",
            ][..],
        ] {
            let Command::Admin(AdminCommand::Topic(command)) =
                Cli::try_parse_from(argv).unwrap().command
            else {
                panic!("a topic command")
            };
            assert_eq!(command.connect.bootstrap_server, "h:1", "{argv:?}");
            assert_eq!(command.connect.format, Format::Json, "{argv:?}");
        }
    }

    #[test]
    fn bad_arguments_exit_with_status_2() {
        for argv in [
            &["corelog", "topic", "create"][..],
            &["corelog", "topic", "list", "--format", "yaml"][..],
            &["corelog", "group", "frobnicate"][..],
            &["corelog", "topic", "list", "--timeout-ms", "soon"][..],
        ] {
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}: {err}");
        }
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Failed("x".into()).exit_code(), 1);
    }

    #[test]
    fn a_malformed_bootstrap_server_is_a_usage_error() {
        let args = ConnectArgs {
            bootstrap_server: "nohost".into(),
            timeout_ms: 100,
            format: Format::Table,
        };
        let err = args.client().err().unwrap();
        assert_eq!(err.exit_code(), 2, "{err}");
    }
}
