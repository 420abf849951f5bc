//! `corelog serve [--config FILE] [--set KEY=VALUE]... [--shards N] [--cpuset LIST]`:
//! turns the broker's arguments into a validated `BrokerConfig`.

use crate::config::{BrokerConfig, ConfigError, ConfigNotes, parse_override, parse_properties};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A Kafka server.properties file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override one property (repeatable), e.g. --set num.partitions=6.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Number of shards (one pinned core each); default: every core in the CPU set.
    #[arg(long)]
    pub shards: Option<String>,
    /// CPUs to run shards on, e.g. 0-3,6; default: the process's affinity mask.
    #[arg(long)]
    pub cpuset: Option<String>,
}

impl ServeArgs {
    /// The configuration: file, then `--set` overrides, then `--shards`/`--cpuset`.
    pub fn load(&self) -> Result<(BrokerConfig, ConfigNotes), ConfigError> {
        let mut entries = Vec::new();
        if let Some(path) = &self.config {
            let source = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::new(
                    "",
                    &source,
                    format!("cannot read the configuration file: {e}"),
                )
            })?;
            entries.extend(parse_properties(&text, &source)?);
        }
        for arg in &self.overrides {
            entries.push(parse_override(arg)?);
        }
        if let Some(shards) = &self.shards {
            entries.push(("shards".to_string(), shards.clone()));
        }
        if let Some(cpuset) = &self.cpuset {
            entries.push(("cpuset".to_string(), cpuset.clone()));
        }
        BrokerConfig::from_entries(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn serve(args: &[&str]) -> ServeArgs {
        let mut argv = vec!["corelog", "serve"];
        argv.extend_from_slice(args);
        match Cli::parse_from(argv).command {
            Command::Serve(args) => args,
            Command::Admin(other) => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn file_then_overrides_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "num.partitions=3\nlog.dirs=/from/file\nshards=1\n").unwrap();
        let path = file.to_str().unwrap();
        let (config, _) = serve(&[
            "--config",
            path,
            "--set",
            "num.partitions=6",
            "--shards",
            "2",
        ])
        .load()
        .unwrap();
        assert_eq!(config.num_partitions, 6);
        assert_eq!(config.log_dirs, vec![PathBuf::from("/from/file")]);
        assert_eq!(config.shards, Some(2));
    }

    #[test]
    fn a_missing_file_and_a_malformed_override_are_clear_errors() {
        let err = serve(&["--config", "/nonexistent/server.properties"])
            .load()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read the configuration file"),
            "{err}"
        );
        let err = serve(&["--set", "novalue"]).load().unwrap_err();
        assert!(err.to_string().contains("key=value"), "{err}");
    }
}
