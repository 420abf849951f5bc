//! Where the controller keeps the cluster metadata between runs, in the first log dir:
//!
//! - `meta.properties`: Kafka's file naming the node id, the cluster id and the log
//!   directory's id (written on first start, read afterwards);
//! - `corelog-topics.json`: every topic (name, id, partition count, config overrides).
//!   Kafka keeps this in its replicated metadata log; a single node keeps a file that is
//!   replaced atomically (write, fdatasync, rename, fsync the directory) on every change.
//!
//! These are small and rare writes made with blocking calls: the controller runs them on
//! glommio's blocking thread pool, never on a shard.

use super::TopicRecord;
use crate::protocol::wire::Uuid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const META_PROPERTIES: &str = "meta.properties";
pub const TOPICS_FILE: &str = "corelog-topics.json";

/// The identity of this node's storage, from `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: Uuid,
}

/// Reads `meta.properties` in `dir`, or writes a new one (new cluster id) when there is
/// none. A file written for another node id is an error: the data belongs elsewhere.
pub fn load_or_init_meta(dir: &Path, node_id: i32) -> io::Result<MetaProperties> {
    let path = dir.join(META_PROPERTIES);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let mut values = BTreeMap::new();
            for line in text.lines().map(str::trim) {
                if line.starts_with('#') || line.is_empty() {
                    continue;
                }
                if let Some((k, v)) = line.split_once('=') {
                    values.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
            let invalid = |what: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} {what}", path.display()),
                )
            };
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
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let meta = MetaProperties {
                cluster_id: Uuid::random().to_string(),
                node_id,
                directory_id: Uuid::random(),
            };
            let text = format!(
                "#\n#Written by corelog\nversion=1\nnode.id={}\ncluster.id={}\ndirectory.id={}\n",
                meta.node_id, meta.cluster_id, meta.directory_id
            );
            write_atomically(&path, text.as_bytes())?;
            Ok(meta)
        }
        Err(e) => Err(e),
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
pub fn load_topics(dir: &Path) -> io::Result<Vec<TopicRecord>> {
    let path = dir.join(TOPICS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let invalid = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {why}", path.display()),
        )
    };
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
pub fn save_topics<'a>(
    dir: &Path,
    topics: impl IntoIterator<Item = &'a TopicRecord>,
) -> io::Result<()> {
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
    let text = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    write_atomically(&dir.join(TOPICS_FILE), &text)
}

/// Writes `path` so that after a crash it holds either the old or the new contents.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_data()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_properties_are_created_once_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_init_meta(dir.path(), 1).unwrap();
        let again = load_or_init_meta(dir.path(), 1).unwrap();
        assert_eq!(first, again);
        assert_eq!(first.cluster_id.len(), 22);
        let err = load_or_init_meta(dir.path(), 2).unwrap_err();
        assert!(err.to_string().contains("belongs to node.id 1"), "{err}");
    }

    #[test]
    fn topics_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_topics(dir.path()).unwrap().is_empty());
        let topics = vec![TopicRecord {
            name: "orders".into(),
            id: Uuid::random(),
            partitions: 6,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            internal: false,
        }];
        save_topics(dir.path(), &topics).unwrap();
        assert_eq!(load_topics(dir.path()).unwrap(), topics);
    }
}
