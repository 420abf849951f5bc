//! `corelog topic ...`: create, list, describe and delete topics and change their
//! configs, with the option names of kafka-topics.sh and kafka-configs.sh, over the
//! wire only: Metadata, CreateTopics, DeleteTopics, DescribeConfigs and
//! IncrementalAlterConfigs. Describe prints Kafka's layout (a topic line, then one line
//! per partition); the Configs field shows what DescribeConfigs reports as not default,
//! as kafka-topics.sh does, and is left out with a note when the broker does not serve
//! DescribeConfigs.

use super::client::{Client, ClientError, Target};
use super::output::{Report, emit};
use super::{CliError, ConnectArgs};
use crate::protocol::ErrorCode;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use crate::protocol::generated::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use crate::protocol::generated::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use crate::protocol::generated::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use crate::protocol::generated::metadata_response::MetadataResponseTopic;
use serde::Serialize;
use std::collections::BTreeMap;

/// Kafka's ConfigResource type of a topic.
const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs' `config_source` of a value nobody set (Kafka's DEFAULT_CONFIG).
const DEFAULT_CONFIG_SOURCE: i8 = 5;
/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(Debug, clap::Args)]
pub struct TopicCommand {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub action: TopicAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum TopicAction {
    /// Create a topic.
    Create(CreateArgs),
    /// List topic names.
    List(ListArgs),
    /// Partitions, leaders, replicas and non-default configs of topics.
    Describe(DescribeArgs),
    /// Delete a topic.
    Delete(DeleteArgs),
    /// Set or remove topic configs (IncrementalAlterConfigs).
    AlterConfig(AlterConfigArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CreateArgs {
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Partitions; default: the broker's num.partitions.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: Option<i32>,
    /// Replicas of each partition; default: the broker's default.replication.factor.
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(i16).range(1..))]
    pub replication_factor: Option<i16>,
    /// A topic config (repeatable), e.g. --config retention.ms=60000.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
    pub configs: Vec<(String, String)>,
    /// Succeed without change when the topic exists.
    #[arg(long)]
    pub if_not_exists: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Leave out internal topics (__consumer_offsets, __transaction_state).
    #[arg(long)]
    pub exclude_internal: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DescribeArgs {
    /// The topic; default: every topic.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Leave out internal topics.
    #[arg(long)]
    pub exclude_internal: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Succeed without change when the topic does not exist.
    #[arg(long)]
    pub if_exists: bool,
}

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)
    .args(["add_config", "delete_config"])))]
pub struct AlterConfigArgs {
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Configs to set: k=v[,k=v]; a list value in brackets, k=[a,b] (repeatable).
    #[arg(long, value_name = "K=V[,K=V]", value_parser = parse_config_list)]
    pub add_config: Vec<Vec<(String, String)>>,
    /// Configs to remove (back to the default): k[,k] (repeatable).
    #[arg(long, value_name = "K[,K]", value_parser = parse_key_list)]
    pub delete_config: Vec<Vec<String>>,
}

pub fn run(command: TopicCommand) -> Result<(), CliError> {
    let format = command.connect.format;
    let mut client = command.connect.client()?;
    match command.action {
        TopicAction::Create(args) => emit(format, &create(&mut client, &args)?),
        TopicAction::List(args) => emit(format, &list(&mut client, &args)?),
        TopicAction::Describe(args) => emit(format, &describe(&mut client, &args)?),
        TopicAction::Delete(args) => emit(format, &delete(&mut client, &args)?),
        TopicAction::AlterConfig(args) => emit(format, &alter_config(&mut client, &args)?),
    }
    Ok(())
}

/// `key=value`, the key non-empty; the value may hold `=` and `,`.
pub fn parse_config(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("'{text}' is not key=value")),
    }
}

/// kafka-configs.sh's `k=v,k2=v2`, where a value in brackets may hold commas:
/// `cleanup.policy=[compact,delete]` sets `compact,delete`.
pub fn parse_config_list(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            ']' => return Err(format!("'{text}': a ']' without its '['")),
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if depth != 0 {
        return Err(format!("'{text}': a '[' without its ']'"));
    }
    items.push(current);
    items
        .iter()
        .map(|item| {
            let (key, value) = parse_config(item)?;
            let value = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .map_or(value.clone(), str::to_string);
            Ok((key, value))
        })
        .collect()
}

/// `k[,k]`, every key non-empty.
pub fn parse_key_list(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(|key| {
            let key = key.trim();
            if key.is_empty() {
                Err(format!("'{text}': an empty config name"))
            } else {
                Ok(key.to_string())
            }
        })
        .collect()
}

/// What `topic create` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Created {
    pub topic: String,
    /// False when the topic existed (`--if-not-exists`).
    pub created: bool,
    /// Kafka's base64 topic id, when the broker returns it (CreateTopics v7+).
    pub topic_id: Option<String>,
    /// The partitions and replication factor the broker settled on (CreateTopics v5+),
    /// or those asked for.
    pub partitions: Option<i32>,
    pub replication_factor: Option<i16>,
}

impl Report for Created {
    fn human(&self) -> String {
        if self.created {
            format!("Created topic {}.\n", self.topic)
        } else {
            format!("Topic '{}' already exists.\n", self.topic)
        }
    }
}

pub fn create(client: &mut Client, args: &CreateArgs) -> Result<Created, CliError> {
    let api = ApiKey::CreateTopics;
    let subject = format!("topic '{}'", args.topic);
    let timeout_ms = client.timeout_ms();
    let result = client.retrying(|client| {
        let (version, response) =
            client.send::<CreateTopicsRequest>(Target::Controller, |_| CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: args.topic.clone(),
                    num_partitions: args.partitions.unwrap_or(-1),
                    replication_factor: args.replication_factor.unwrap_or(-1),
                    configs: args
                        .configs
                        .iter()
                        .map(|(name, value)| CreatableTopicConfig {
                            name: name.clone(),
                            value: Some(value.clone()),
                            ..CreatableTopicConfig::default()
                        })
                        .collect(),
                    ..CreatableTopic::default()
                }],
                timeout_ms,
                validate_only: false,
                ..CreateTopicsRequest::default()
            })?;
        let Some(result) = response.topics.into_iter().find(|t| t.name == args.topic) else {
            return Err(ClientError::Cluster(format!(
                "CreateTopics answered without {subject}"
            )));
        };
        if result.error_code != 0 {
            return Err(ClientError::kafka(
                api,
                result.error_code,
                subject.clone(),
                result.error_message,
            ));
        }
        Ok((version, result))
    });
    match result {
        Ok((version, result)) => Ok(Created {
            topic: args.topic.clone(),
            created: true,
            topic_id: (version >= 7 && !result.topic_id.is_zero())
                .then(|| result.topic_id.to_string()),
            partitions: if version >= 5 {
                Some(result.num_partitions)
            } else {
                args.partitions
            },
            replication_factor: if version >= 5 {
                Some(result.replication_factor)
            } else {
                args.replication_factor
            },
        }),
        Err(e) if args.if_not_exists && e.code() == Some(ErrorCode::TopicAlreadyExists) => {
            Ok(Created {
                topic: args.topic.clone(),
                created: false,
                topic_id: None,
                partitions: None,
                replication_factor: None,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// `topic list`: names, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicList {
    pub topics: Vec<String>,
}

impl Report for TopicList {
    fn human(&self) -> String {
        self.topics.iter().map(|t| format!("{t}\n")).collect()
    }
}

pub fn list(client: &mut Client, args: &ListArgs) -> Result<TopicList, CliError> {
    let metadata = client.retrying(|client| client.metadata(None))?;
    let mut topics: Vec<String> = metadata
        .topics
        .iter()
        .filter(|t| !(args.exclude_internal && t.is_internal))
        .filter_map(|t| t.name.clone())
        .collect();
    topics.sort();
    Ok(TopicList { topics })
}

/// One partition as `topic describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionDescription {
    pub partition: i32,
    /// None when the partition has no leader.
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// One topic as `topic describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicDescription {
    pub topic: String,
    pub topic_id: String,
    pub is_internal: bool,
    pub partition_count: usize,
    pub replication_factor: usize,
    /// Configs that are not defaults; None when they could not be described.
    pub configs: Option<BTreeMap<String, Option<String>>>,
    pub partitions: Vec<PartitionDescription>,
}

/// `topic describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicDescriptions {
    pub topics: Vec<TopicDescription>,
    #[serde(skip)]
    pub notes: Vec<String>,
}

fn node_list(nodes: &[i32]) -> String {
    nodes
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl Report for TopicDescriptions {
    /// Kafka's layout: tab-separated `Field: value` pairs.
    fn human(&self) -> String {
        let mut out = String::new();
        for topic in &self.topics {
            out.push_str(&format!(
                "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}",
                topic.topic, topic.topic_id, topic.partition_count, topic.replication_factor
            ));
            if let Some(configs) = &topic.configs {
                let configs: Vec<String> = configs
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("null")))
                    .collect();
                out.push_str(&format!("\tConfigs: {}", configs.join(",")));
            }
            out.push('\n');
            for p in &topic.partitions {
                out.push_str(&format!(
                    "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\n",
                    topic.topic,
                    p.partition,
                    p.leader
                        .map_or_else(|| "none".to_string(), |l| l.to_string()),
                    node_list(&p.replicas),
                    node_list(&p.isr),
                ));
            }
        }
        out
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

pub fn describe(client: &mut Client, args: &DescribeArgs) -> Result<TopicDescriptions, CliError> {
    let named = args.topic.as_ref().map(|t| vec![t.clone()]);
    let metadata = client.retrying(|client| client.metadata(named.as_deref()))?;
    let mut topics: Vec<&MetadataResponseTopic> = metadata
        .topics
        .iter()
        .filter(|t| !(args.exclude_internal && t.is_internal))
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(wanted) = &args.topic {
        match topics.iter().find(|t| t.name.as_ref() == Some(wanted)) {
            None => return Err(CliError::Failed(format!("topic '{wanted}' does not exist"))),
            Some(t) if t.error_code == ErrorCode::UnknownTopicOrPartition.code() => {
                return Err(CliError::Failed(format!("topic '{wanted}' does not exist")));
            }
            Some(t) if t.error_code != 0 => {
                return Err(ClientError::kafka(
                    ApiKey::Metadata,
                    t.error_code,
                    format!("topic '{wanted}'"),
                    None,
                )
                .into());
            }
            Some(_) => {}
        }
    }
    let names: Vec<String> = topics.iter().filter_map(|t| t.name.clone()).collect();
    let mut notes = Vec::new();
    let mut configs = if client.serves(Target::Any, ApiKey::DescribeConfigs)? {
        topic_configs(client, &names, &mut notes)?
    } else {
        notes.push(
            "Note: the broker does not serve DescribeConfigs; topic configs are not shown."
                .to_string(),
        );
        BTreeMap::new()
    };
    let topics = topics
        .into_iter()
        .filter_map(|t| {
            let name = t.name.clone()?;
            let mut partitions: Vec<PartitionDescription> = t
                .partitions
                .iter()
                .map(|p| PartitionDescription {
                    partition: p.partition_index,
                    leader: (p.leader_id >= 0).then_some(p.leader_id),
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            Some(TopicDescription {
                configs: configs.remove(&name),
                topic_id: t.topic_id.to_string(),
                is_internal: t.is_internal,
                partition_count: partitions.len(),
                // As Kafka's tool: the replicas of the first partition.
                replication_factor: partitions.first().map_or(0, |p| p.replicas.len()),
                partitions,
                topic: name,
            })
        })
        .collect();
    Ok(TopicDescriptions { topics, notes })
}

/// The non-default configs of each topic, by DescribeConfigs. A topic the broker
/// cannot describe is left out with a note.
fn topic_configs(
    client: &mut Client,
    topics: &[String],
    notes: &mut Vec<String>,
) -> Result<BTreeMap<String, BTreeMap<String, Option<String>>>, CliError> {
    if topics.is_empty() {
        return Ok(BTreeMap::new());
    }
    let (version, response) = client.retrying(|client| {
        client.send::<DescribeConfigsRequest>(Target::Any, |_| DescribeConfigsRequest {
            resources: topics
                .iter()
                .map(|name| DescribeConfigsResource {
                    resource_type: TOPIC_RESOURCE,
                    resource_name: name.clone(),
                    configuration_keys: None,
                    ..DescribeConfigsResource::default()
                })
                .collect(),
            include_synonyms: false,
            include_documentation: false,
            ..DescribeConfigsRequest::default()
        })
    })?;
    let mut out = BTreeMap::new();
    for result in response.results {
        if result.error_code != 0 {
            notes.push(format!(
                "Note: the configs of topic '{}' are not shown: {}",
                result.resource_name,
                ClientError::kafka(
                    ApiKey::DescribeConfigs,
                    result.error_code,
                    format!("topic '{}'", result.resource_name),
                    result.error_message,
                )
            ));
            continue;
        }
        let configs = result
            .configs
            .into_iter()
            .filter(|c| {
                // v0 says is_default; later versions say where the value comes from.
                if version == 0 {
                    !c.is_default
                } else {
                    c.config_source != DEFAULT_CONFIG_SOURCE
                }
            })
            .map(|c| (c.name, c.value))
            .collect();
        out.insert(result.resource_name, configs);
    }
    Ok(out)
}

/// What `topic delete` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deleted {
    pub topic: String,
    /// False when the topic did not exist (`--if-exists`).
    pub deleted: bool,
}

impl Report for Deleted {
    fn human(&self) -> String {
        if self.deleted {
            format!("Deleted topic {}.\n", self.topic)
        } else {
            format!("Topic '{}' does not exist.\n", self.topic)
        }
    }
}

pub fn delete(client: &mut Client, args: &DeleteArgs) -> Result<Deleted, CliError> {
    let api = ApiKey::DeleteTopics;
    let subject = format!("topic '{}'", args.topic);
    let timeout_ms = client.timeout_ms();
    let result = client.retrying(|client| {
        let (_, response) =
            client.send::<DeleteTopicsRequest>(Target::Controller, |_| DeleteTopicsRequest {
                topics: vec![DeleteTopicState {
                    name: Some(args.topic.clone()),
                    ..DeleteTopicState::default()
                }],
                topic_names: vec![args.topic.clone()],
                timeout_ms,
                ..DeleteTopicsRequest::default()
            })?;
        match response.responses.into_iter().next() {
            Some(r) if r.error_code != 0 => Err(ClientError::kafka(
                api,
                r.error_code,
                subject.clone(),
                r.error_message,
            )),
            Some(_) => Ok(()),
            None => Err(ClientError::Cluster(format!(
                "DeleteTopics answered without {subject}"
            ))),
        }
    });
    match result {
        Ok(()) => Ok(Deleted {
            topic: args.topic.clone(),
            deleted: true,
        }),
        Err(e) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => {
            if args.if_exists {
                Ok(Deleted {
                    topic: args.topic.clone(),
                    deleted: false,
                })
            } else {
                Err(CliError::Failed(format!(
                    "topic '{}' does not exist",
                    args.topic
                )))
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// What `topic alter-config` changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Altered {
    pub topic: String,
    pub set: BTreeMap<String, String>,
    pub deleted: Vec<String>,
}

impl Report for Altered {
    fn human(&self) -> String {
        format!("Completed updating config for topic {}.\n", self.topic)
    }
}

pub fn alter_config(client: &mut Client, args: &AlterConfigArgs) -> Result<Altered, CliError> {
    let api = ApiKey::IncrementalAlterConfigs;
    let set: BTreeMap<String, String> = args.add_config.iter().flatten().cloned().collect();
    let mut deleted: Vec<String> = args.delete_config.iter().flatten().cloned().collect();
    deleted.sort();
    deleted.dedup();
    if let Some(both) = deleted.iter().find(|k| set.contains_key(*k)) {
        return Err(CliError::Usage(format!(
            "config '{both}' is both in --add-config and in --delete-config"
        )));
    }
    let subject = format!("topic '{}'", args.topic);
    client.retrying(|client| {
        let (_, response) = client.send::<IncrementalAlterConfigsRequest>(Target::Any, |_| {
            IncrementalAlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: TOPIC_RESOURCE,
                    resource_name: args.topic.clone(),
                    configs: set
                        .iter()
                        .map(|(name, value)| AlterableConfig {
                            name: name.clone(),
                            config_operation: OP_SET,
                            value: Some(value.clone()),
                            ..AlterableConfig::default()
                        })
                        .chain(deleted.iter().map(|name| AlterableConfig {
                            name: name.clone(),
                            config_operation: OP_DELETE,
                            value: None,
                            ..AlterableConfig::default()
                        }))
                        .collect(),
                    ..AlterConfigsResource::default()
                }],
                validate_only: false,
                ..IncrementalAlterConfigsRequest::default()
            }
        })?;
        match response.responses.into_iter().next() {
            Some(r) if r.error_code != 0 => Err(ClientError::kafka(
                api,
                r.error_code,
                subject.clone(),
                r.error_message,
            )),
            Some(_) => Ok(()),
            None => Err(ClientError::Cluster(format!(
                "IncrementalAlterConfigs answered without {subject}"
            ))),
        }
    })?;
    Ok(Altered {
        topic: args.topic.clone(),
        set,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{AdminCommand, Cli, Command};
    use clap::Parser;

    fn topic(argv: &[&str]) -> Result<TopicAction, clap::Error> {
        let mut full = vec!["corelog", "topic"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Admin(AdminCommand::Topic(command)) => Ok(command.action),
            other => panic!("not a topic command: {other:?}"),
        }
    }

    #[test]
    fn create_takes_kafka_topics_options() {
        let TopicAction::Create(args) = topic(&[
            "create",
            "--topic",
            "t",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=1000",
            "--config",
            "cleanup.policy=compact,delete",
            "--if-not-exists",
        ])
        .unwrap() else {
            panic!("create")
        };
        assert_eq!(args.topic, "t");
        assert_eq!(args.partitions, Some(3));
        assert_eq!(args.replication_factor, Some(1));
        assert_eq!(
            args.configs,
            vec![
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "compact,delete".to_string())
            ]
        );
        assert!(args.if_not_exists);
        for bad in [
            &["create", "--topic", "t", "--partitions", "0"][..],
            &["create", "--topic", "t", "--config", "novalue"][..],
            &["create", "--partitions", "1"][..],
        ] {
            assert_eq!(topic(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn alter_config_takes_kafka_configs_lists_and_needs_a_change() {
        let TopicAction::AlterConfig(args) = topic(&[
            "alter-config",
            "--topic",
            "t",
            "--add-config",
            "retention.ms=1000,cleanup.policy=[compact,delete]",
            "--delete-config",
            "segment.ms,segment.bytes",
        ])
        .unwrap() else {
            panic!("alter-config")
        };
        assert_eq!(
            args.add_config,
            vec![vec![
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "compact,delete".to_string())
            ]]
        );
        assert_eq!(
            args.delete_config,
            vec![vec!["segment.ms", "segment.bytes"]]
        );
        let err = topic(&["alter-config", "--topic", "t"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn config_lists_keep_bracketed_commas_and_refuse_malformed_items() {
        assert_eq!(
            parse_config_list("a=1,b=[x,y],c=").unwrap(),
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "x,y".to_string()),
                ("c".to_string(), String::new()),
            ]
        );
        assert!(parse_config_list("a=1,b").is_err());
        assert!(parse_config_list("a=[1").is_err());
        assert!(parse_config_list("a=1]").is_err());
        assert!(parse_config_list("=1").is_err());
        assert!(parse_key_list("a,,b").is_err());
        assert_eq!(parse_key_list("a, b").unwrap(), vec!["a", "b"]);
    }

    fn sample() -> TopicDescriptions {
        TopicDescriptions {
            topics: vec![TopicDescription {
                topic: "orders".into(),
                topic_id: "AAAAAAAAAAAAAAAAAAAAAQ".into(),
                is_internal: false,
                partition_count: 2,
                replication_factor: 1,
                configs: Some(BTreeMap::from([
                    ("retention.ms".to_string(), Some("1000".to_string())),
                    ("segment.bytes".to_string(), Some("1024".to_string())),
                ])),
                partitions: vec![
                    PartitionDescription {
                        partition: 0,
                        leader: Some(1),
                        replicas: vec![1],
                        isr: vec![1],
                    },
                    PartitionDescription {
                        partition: 1,
                        leader: None,
                        replicas: vec![1, 2],
                        isr: vec![],
                    },
                ],
            }],
            notes: vec![],
        }
    }

    #[test]
    fn describe_prints_kafkas_layout() {
        assert_eq!(
            sample().human(),
            "Topic: orders\tTopicId: AAAAAAAAAAAAAAAAAAAAAQ\tPartitionCount: 2\t\
             ReplicationFactor: 1\tConfigs: retention.ms=1000,segment.bytes=1024\n\
             \tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\n\
             \tTopic: orders\tPartition: 1\tLeader: none\tReplicas: 1,2\tIsr: \n"
        );
        let mut without = sample();
        without.topics[0].configs = None;
        assert!(!without.human().contains("Configs"));
    }

    #[test]
    fn describe_json_has_snake_case_fields() {
        let json = serde_json::to_value(sample()).unwrap();
        let topic = &json["topics"][0];
        assert_eq!(topic["topic"], "orders");
        assert_eq!(topic["partition_count"], 2);
        assert_eq!(topic["replication_factor"], 1);
        assert_eq!(topic["configs"]["retention.ms"], "1000");
        assert_eq!(topic["partitions"][1]["leader"], serde_json::Value::Null);
        assert_eq!(
            topic["partitions"][1]["replicas"],
            serde_json::json!([1, 2])
        );
        assert!(json.get("notes").is_none());
    }
}
