//! Where the controller keeps the cluster metadata between runs, in the first log dir:
//!
//! - `meta.properties`: Kafka's file naming the node id, the cluster id and the log
//!   directory's id (written on first start, read afterwards);
//! - `corelog-topics.json`: every topic (name, id, partition count, config overrides).
//!   Kafka keeps this in its replicated metadata log; a single node keeps a file that is
//!   replaced atomically (write, fdatasync, rename, fsync the directory) on every change.
//! - `corelog-producer-ids.json`: the first producer id not yet allocated (Kafka keeps it
//!   in its metadata log as `ProducerIdsRecord`), replaced atomically before each block
//!   of ids is handed out.
//! - `corelog-broker-configs.json`: the dynamic broker configs (Kafka keeps them in its
//!   metadata log as `ConfigRecord`s of broker resources), the cluster-wide default and
//!   this node's, replaced atomically on every change of them; and the group configs
//!   set on GROUP resources (Kafka's `ConfigRecord`s of group resources), per group.
//! - `corelog-security.json`: the ACL bindings (Kafka's `AccessControlEntryRecord`s)
//!   and the SCRAM credentials (Kafka's `UserScramCredentialRecord`s: salt, stored key,
//!   server key, iterations), replaced atomically on every change of either.
//!
//! All are small, rare writes through the storage layer's io_uring file helpers, on
//! shard 0.

use super::TopicRecord;
use crate::config::{DynamicBrokerConfigs, DynamicLevel};
use crate::protocol::wire::Uuid;
use crate::security::{
    AclBinding, AclOperation, PatternType, PermissionType, ResourceType, ScramCredential,
    ScramCredentials, ScramMechanism,
};
use crate::storage::{StorageError, fs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

pub const META_PROPERTIES: &str = "meta.properties";
pub const TOPICS_FILE: &str = "corelog-topics.json";
pub const PRODUCER_IDS_FILE: &str = "corelog-producer-ids.json";
pub const BROKER_CONFIGS_FILE: &str = "corelog-broker-configs.json";
pub const SECURITY_FILE: &str = "corelog-security.json";

/// The identity of this node's storage, from `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: Uuid,
}

/// Reads `meta.properties` in `dir`, or writes a new one (new cluster id) when there is
/// none. A file written for another node id is an error: the data belongs elsewhere.
pub async fn load_or_init_meta(dir: &Path, node_id: i32) -> Result<MetaProperties, StorageError> {
    let path = dir.join(META_PROPERTIES);
    fs::create_dir_all(dir).await?;
    match read_text(&path).await? {
        Some(text) => {
            let mut values = BTreeMap::new();
            for line in text.lines().map(str::trim) {
                if line.starts_with('#') || line.is_empty() {
                    continue;
                }
                if let Some((k, v)) = line.split_once('=') {
                    values.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
            let invalid = |what: &str| invalid_data(&path, what.to_string());
            let stored_node: i32 = values
                .get("node.id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| invalid("has no valid node.id"))?;
            if stored_node != node_id {
                return Err(invalid(&format!(
                    "belongs to node.id {stored_node}, but this broker is node.id {node_id}"
                )));
            }
            let cluster_id = values
                .get("cluster.id")
                .cloned()
                .ok_or_else(|| invalid("has no cluster.id"))?;
            let directory_id = values
                .get("directory.id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| invalid("has no valid directory.id"))?;
            Ok(MetaProperties {
                cluster_id,
                node_id,
                directory_id,
            })
        }
        None => {
            let meta = MetaProperties {
                cluster_id: Uuid::random().to_string(),
                node_id,
                directory_id: Uuid::random(),
            };
            let text = format!(
                "#\n#Written by corelog\nversion=1\nnode.id={}\ncluster.id={}\ndirectory.id={}\n",
                meta.node_id, meta.cluster_id, meta.directory_id
            );
            fs::write_atomically(&path, text.into_bytes()).await?;
            Ok(meta)
        }
    }
}

async fn read_text(path: &Path) -> Result<Option<String>, StorageError> {
    match fs::read_file(path).await? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| invalid_data(path, "is not UTF-8".to_string())),
    }
}

fn invalid_data(path: &Path, why: String) -> StorageError {
    StorageError::Io {
        op: "read",
        path: path.to_path_buf(),
        source: std::sync::Arc::new(io::Error::new(io::ErrorKind::InvalidData, why)),
    }
}

#[derive(Serialize, Deserialize)]
struct TopicsFile {
    version: u32,
    topics: Vec<TopicJson>,
}

#[derive(Serialize, Deserialize)]
struct TopicJson {
    name: String,
    id: String,
    partitions: i32,
    #[serde(default)]
    configs: BTreeMap<String, String>,
    #[serde(default)]
    internal: bool,
}

/// The topics persisted in `dir` (none if the file does not exist yet).
pub async fn load_topics(dir: &Path) -> Result<Vec<TopicRecord>, StorageError> {
    let path = dir.join(TOPICS_FILE);
    let Some(text) = read_text(&path).await? else {
        return Ok(Vec::new());
    };
    let invalid = |why: String| invalid_data(&path, why);
    let file: TopicsFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if file.version != 1 {
        return Err(invalid(format!("unknown version {}", file.version)));
    }
    file.topics
        .into_iter()
        .map(|t| {
            Ok(TopicRecord {
                id: t.id.parse().map_err(invalid)?,
                name: t.name,
                partitions: t.partitions,
                configs: t.configs,
                internal: t.internal,
            })
        })
        .collect()
}

/// Replaces the persisted topic list.
pub async fn save_topics<'a>(
    dir: &Path,
    topics: impl IntoIterator<Item = &'a TopicRecord>,
) -> Result<(), StorageError> {
    let file = TopicsFile {
        version: 1,
        topics: topics
            .into_iter()
            .map(|t| TopicJson {
                name: t.name.clone(),
                id: t.id.to_string(),
                partitions: t.partitions,
                configs: t.configs.clone(),
                internal: t.internal,
            })
            .collect(),
    };
    let text = serde_json::to_vec_pretty(&file).expect("topics serialize to JSON");
    fs::write_atomically(&dir.join(TOPICS_FILE), text).await
}

#[derive(Serialize, Deserialize)]
struct ProducerIdsFile {
    version: u32,
    next_producer_id: i64,
}

/// The first producer id not yet allocated (0 on a new broker).
pub async fn load_next_producer_id(dir: &Path) -> Result<i64, StorageError> {
    let path = dir.join(PRODUCER_IDS_FILE);
    let Some(text) = read_text(&path).await? else {
        return Ok(0);
    };
    let file: ProducerIdsFile =
        serde_json::from_str(&text).map_err(|e| invalid_data(&path, e.to_string()))?;
    if file.version != 1 || file.next_producer_id < 0 {
        return Err(invalid_data(
            &path,
            format!(
                "version {} with next producer id {} is not a producer id file this broker wrote",
                file.version, file.next_producer_id
            ),
        ));
    }
    Ok(file.next_producer_id)
}

/// Records that every producer id below `next` is allocated.
pub async fn save_next_producer_id(dir: &Path, next: i64) -> Result<(), StorageError> {
    let file = ProducerIdsFile {
        version: 1,
        next_producer_id: next,
    };
    let text = serde_json::to_vec_pretty(&file).expect("producer ids serialize to JSON");
    fs::write_atomically(&dir.join(PRODUCER_IDS_FILE), text).await
}

#[derive(Serialize, Deserialize)]
struct BrokerConfigsFile {
    version: u32,
    #[serde(default)]
    cluster_default: BTreeMap<String, String>,
    #[serde(default)]
    node: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    groups: BTreeMap<String, BTreeMap<String, String>>,
}

/// The dynamic broker configs persisted in `dir` (none if the file does not exist yet).
/// Values are checked again as they are loaded: a file this broker did not write is
/// refused rather than given to every topic.
pub async fn load_broker_configs(dir: &Path) -> Result<DynamicBrokerConfigs, StorageError> {
    let path = dir.join(BROKER_CONFIGS_FILE);
    let Some(text) = read_text(&path).await? else {
        return Ok(DynamicBrokerConfigs::default());
    };
    let invalid = |why: String| invalid_data(&path, why);
    let file: BrokerConfigsFile =
        serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if file.version != 1 {
        return Err(invalid(format!("unknown version {}", file.version)));
    }
    for (values, level) in [
        (&file.cluster_default, DynamicLevel::ClusterDefault),
        (&file.node, DynamicLevel::Node),
    ] {
        DynamicBrokerConfigs::check(values, level).map_err(|e| invalid(e.to_string()))?;
    }
    let configs = DynamicBrokerConfigs {
        cluster_default: file.cluster_default,
        node: file.node,
        groups: file
            .groups
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect(),
    };
    configs.check_groups().map_err(invalid)?;
    Ok(configs)
}

/// Replaces the persisted dynamic broker configs.
pub async fn save_broker_configs(
    dir: &Path,
    configs: &DynamicBrokerConfigs,
) -> Result<(), StorageError> {
    let file = BrokerConfigsFile {
        version: 1,
        cluster_default: configs.cluster_default.clone(),
        node: configs.node.clone(),
        groups: configs.groups.clone(),
    };
    let text = serde_json::to_vec_pretty(&file).expect("broker configs serialize to JSON");
    fs::write_atomically(&dir.join(BROKER_CONFIGS_FILE), text).await
}

#[derive(Serialize, Deserialize)]
struct SecurityFile {
    version: u32,
    #[serde(default)]
    acls: Vec<AclJson>,
    #[serde(default)]
    scram: Vec<ScramJson>,
}

/// An ACL binding with Kafka's codes.
#[derive(Serialize, Deserialize)]
struct AclJson {
    resource_type: i8,
    name: String,
    pattern_type: i8,
    principal: String,
    host: String,
    operation: i8,
    permission: i8,
}

#[derive(Serialize, Deserialize)]
struct ScramJson {
    user: String,
    mechanism: i8,
    iterations: i32,
    salt: String,
    stored_key: String,
    server_key: String,
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// The ACLs and SCRAM credentials persisted in `dir` (none if the file does not exist
/// yet). Every binding is checked again as it is loaded.
pub async fn load_security(
    dir: &Path,
) -> Result<(Vec<AclBinding>, ScramCredentials), StorageError> {
    let path = dir.join(SECURITY_FILE);
    let Some(text) = read_text(&path).await? else {
        return Ok((Vec::new(), ScramCredentials::new()));
    };
    let invalid = |why: String| invalid_data(&path, why);
    let file: SecurityFile = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if file.version != 1 {
        return Err(invalid(format!("unknown version {}", file.version)));
    }
    let mut acls = Vec::with_capacity(file.acls.len());
    for acl in file.acls {
        let binding = AclBinding {
            resource_type: ResourceType::from_code(acl.resource_type)
                .ok_or_else(|| invalid(format!("unknown resource type {}", acl.resource_type)))?,
            pattern_type: PatternType::from_code(acl.pattern_type)
                .ok_or_else(|| invalid(format!("unknown pattern type {}", acl.pattern_type)))?,
            operation: AclOperation::from_code(acl.operation)
                .ok_or_else(|| invalid(format!("unknown operation {}", acl.operation)))?,
            permission: PermissionType::from_code(acl.permission)
                .ok_or_else(|| invalid(format!("unknown permission {}", acl.permission)))?,
            name: acl.name,
            principal: acl.principal,
            host: acl.host,
        };
        binding.validate().map_err(invalid)?;
        acls.push(binding);
    }
    acls.sort();
    acls.dedup();
    let mut scram = ScramCredentials::new();
    for credential in file.scram {
        let mechanism = ScramMechanism::from_code(credential.mechanism)
            .ok_or_else(|| invalid(format!("unknown SCRAM mechanism {}", credential.mechanism)))?;
        let bytes =
            |text: &str| from_hex(text).ok_or_else(|| invalid(format!("'{text}' is not hex")));
        scram.insert(
            (credential.user, mechanism),
            ScramCredential {
                salt: bytes(&credential.salt)?,
                stored_key: bytes(&credential.stored_key)?,
                server_key: bytes(&credential.server_key)?,
                iterations: credential.iterations,
            },
        );
    }
    Ok((acls, scram))
}

/// Replaces the persisted ACLs and SCRAM credentials.
pub async fn save_security(
    dir: &Path,
    acls: &[AclBinding],
    scram: &ScramCredentials,
) -> Result<(), StorageError> {
    let file = SecurityFile {
        version: 1,
        acls: acls
            .iter()
            .map(|acl| AclJson {
                resource_type: acl.resource_type.code(),
                name: acl.name.clone(),
                pattern_type: acl.pattern_type.code(),
                principal: acl.principal.clone(),
                host: acl.host.clone(),
                operation: acl.operation.code(),
                permission: acl.permission.code(),
            })
            .collect(),
        scram: scram
            .iter()
            .map(|((user, mechanism), credential)| ScramJson {
                user: user.clone(),
                mechanism: mechanism.code(),
                iterations: credential.iterations,
                salt: to_hex(&credential.salt),
                stored_key: to_hex(&credential.stored_key),
                server_key: to_hex(&credential.server_key),
            })
            .collect(),
    };
    let text = serde_json::to_vec_pretty(&file).expect("security metadata serializes to JSON");
    fs::write_atomically(&dir.join(SECURITY_FILE), text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_broker_configs_survive_a_save_and_load_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let configs = DynamicBrokerConfigs {
            cluster_default: [("log.retention.ms".to_string(), "1000".to_string())].into(),
            node: [
                ("log.segment.bytes".to_string(), "2097152".to_string()),
                ("background.threads".to_string(), "9".to_string()),
            ]
            .into(),
            groups: [(
                "g".to_string(),
                [(
                    "consumer.heartbeat.interval.ms".to_string(),
                    "6000".to_string(),
                )]
                .into(),
            )]
            .into(),
        };
        block_on(async move {
            assert_eq!(
                load_broker_configs(&path).await.unwrap(),
                DynamicBrokerConfigs::default()
            );
            save_broker_configs(&path, &configs).await.unwrap();
            assert_eq!(load_broker_configs(&path).await.unwrap(), configs);
            let bad = r#"{"version":1,"cluster_default":{"log.dirs":"/x"}}"#;
            fs::write_atomically(&path.join(BROKER_CONFIGS_FILE), bad.as_bytes().to_vec())
                .await
                .unwrap();
            let err = load_broker_configs(&path).await.unwrap_err();
            assert!(err.to_string().contains("log.dirs"), "{err}");
            let bad = r#"{"version":1,"groups":{"g":{"session.timeout.ms":"1"}}}"#;
            fs::write_atomically(&path.join(BROKER_CONFIGS_FILE), bad.as_bytes().to_vec())
                .await
                .unwrap();
            let err = load_broker_configs(&path).await.unwrap_err();
            assert!(err.to_string().contains("session.timeout.ms"), "{err}");
            // Written before group configs existed: no groups.
            let old = r#"{"version":1,"node":{"log.retention.ms":"5"}}"#;
            fs::write_atomically(&path.join(BROKER_CONFIGS_FILE), old.as_bytes().to_vec())
                .await
                .unwrap();
            assert!(load_broker_configs(&path).await.unwrap().groups.is_empty());
        });
    }

    use crate::storage::testing::block_on;

    #[test]
    fn meta_properties_are_created_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        block_on(async move {
            let first = load_or_init_meta(&path, 1).await.unwrap();
            let again = load_or_init_meta(&path, 1).await.unwrap();
            assert_eq!(first, again);
            assert_eq!(first.cluster_id.len(), 22);
            let err = load_or_init_meta(&path, 2).await.unwrap_err();
            assert!(err.to_string().contains("belongs to node.id 1"), "{err}");
        });
    }

    #[test]
    fn acls_and_scram_credentials_survive_a_save_and_load_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let acls = vec![AclBinding {
            resource_type: ResourceType::Topic,
            name: "orders-".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission: PermissionType::Deny,
        }];
        let mut scram = ScramCredentials::new();
        scram.insert(
            ("alice".into(), ScramMechanism::Sha512),
            ScramCredential {
                salt: vec![0, 1, 255],
                stored_key: vec![7; 64],
                server_key: vec![9; 64],
                iterations: 8192,
            },
        );
        block_on(async move {
            let (none, no_scram) = load_security(&path).await.unwrap();
            assert!(none.is_empty() && no_scram.is_empty());
            save_security(&path, &acls, &scram).await.unwrap();
            assert_eq!(load_security(&path).await.unwrap(), (acls, scram));
            let bad = r#"{"version":1,"acls":[{"resource_type":4,"name":"c","pattern_type":3,
                "principal":"User:a","host":"*","operation":7,"permission":3}]}"#;
            fs::write_atomically(&path.join(SECURITY_FILE), bad.as_bytes().to_vec())
                .await
                .unwrap();
            let err = load_security(&path).await.unwrap_err();
            assert!(err.to_string().contains("kafka-cluster"), "{err}");
        });
    }

    #[test]
    fn topics_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let topics = vec![TopicRecord {
            name: "orders".into(),
            id: Uuid::random(),
            partitions: 6,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            internal: false,
        }];
        block_on(async move {
            assert!(load_topics(&path).await.unwrap().is_empty());
            save_topics(&path, &topics).await.unwrap();
            assert_eq!(load_topics(&path).await.unwrap(), topics);
        });
    }
}
