//! Kafka's small text files beside the segments: offset checkpoints, the leader epoch
//! checkpoint and `partition.metadata`, byte-compatible with Kafka's.
//!
//! Owns the encodings and their durable reads and writes:
//! - [`OffsetCheckpoint`]: `recovery-point-offset-checkpoint` (and Kafka's other
//!   `*-offset-checkpoint` files) in a log dir's root: `0\n<count>\n<topic> <partition>
//!   <offset>\n...`. The server decides when to write it; [`PartitionLog::recovery_point`]
//!   gives the value.
//! - [`LeaderEpochCheckpoint`]: `<partition dir>/leader-epoch-checkpoint`: `0\n<count>\n<epoch>
//!   <start offset>\n...`, kept by the partition log.
//! - [`PartitionMetadata`]: `<partition dir>/partition.metadata`: `version: 0\ntopic_id:
//!   <base64url uuid>`.
//!
//! Writes replace the file atomically (tmp, fdatasync, rename, directory fsync), so a crash
//! leaves either the old or the new content. Parsing never panics on a bad file: it says
//! which line was wrong. Runs on whichever shard owns the file.
//!
//! [`PartitionLog::recovery_point`]: super::PartitionLog::recovery_point

use std::path::Path;

use crate::protocol::wire::Uuid;

use super::error::{Result, StorageError};
use super::fs;
use crate::model::{LeaderEpoch, Offset, TopicPartition};

/// Kafka's file name for the recovery points of all partitions of a log dir.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Kafka's file name for the log start offsets of all partitions of a log dir (those
/// DeleteRecords moved past the first segment's base offset).
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Kafka's file name of a partition's leader epoch cache.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Kafka's file name of a partition's topic id file.
pub const PARTITION_METADATA: &str = "partition.metadata";

const CHECKPOINT_VERSION: i32 = 0;

fn corrupt(path: &Path, what: String) -> StorageError {
    StorageError::io(
        "parse",
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    )
}

/// Parses Kafka's checkpoint layout (version line, count line, one entry per line) with
/// `entry` parsing the whitespace-separated fields of one line.
fn parse_checkpoint<T>(
    text: &str,
    fields_per_entry: usize,
    mut entry: impl FnMut(&[&str]) -> Option<T>,
) -> std::result::Result<Vec<T>, String> {
    let mut lines = text.lines();
    let version = lines.next().ok_or("empty file")?;
    if version.trim().parse::<i32>() != Ok(CHECKPOINT_VERSION) {
        return Err(format!("unsupported version line {version:?}"));
    }
    let count_line = lines.next().ok_or("missing entry count")?;
    let count: usize = count_line
        .trim()
        .parse()
        .map_err(|_| format!("bad entry count {count_line:?}"))?;
    let mut entries = Vec::with_capacity(count.min(1 << 16));
    for (i, line) in lines.by_ref().take(count).enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = (fields.len() == fields_per_entry)
            .then(|| entry(&fields))
            .flatten()
            .ok_or_else(|| format!("bad entry line {} {line:?}", i + 3))?;
        entries.push(parsed);
    }
    if entries.len() != count {
        return Err(format!("expected {count} entries, found {}", entries.len()));
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("trailing lines after the entries".into());
    }
    Ok(entries)
}

fn format_checkpoint(lines: impl ExactSizeIterator<Item = String>) -> Vec<u8> {
    let mut out = format!("{CHECKPOINT_VERSION}\n{}\n", lines.len());
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

/// A `*-offset-checkpoint` file: one offset per partition of a log dir.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetCheckpoint {
    pub entries: Vec<(TopicPartition, Offset)>,
}

impl OffsetCheckpoint {
    pub fn encode(&self) -> Vec<u8> {
        format_checkpoint(
            self.entries
                .iter()
                .map(|(tp, offset)| format!("{} {} {}", tp.topic, tp.partition, offset.0)),
        )
    }

    pub fn decode(text: &str) -> std::result::Result<Self, String> {
        let entries = parse_checkpoint(text, 3, |f| {
            Some((
                TopicPartition::new(f[0], f[1].parse().ok()?),
                Offset(f[2].parse().ok()?),
            ))
        })?;
        Ok(OffsetCheckpoint { entries })
    }

    /// Reads the file; a missing file is an empty checkpoint (as in Kafka).
    pub async fn read(path: &Path) -> Result<Self> {
        match fs::read_file(path).await? {
            None => Ok(Self::default()),
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| corrupt(path, "checkpoint is not UTF-8".into()))?;
                Self::decode(&text).map_err(|e| corrupt(path, e))
            }
        }
    }

    /// Replaces the file atomically and durably.
    pub async fn write(&self, path: &Path) -> Result<()> {
        fs::write_atomically(path, self.encode()).await
    }

    /// The offset recorded for `tp`.
    pub fn get(&self, tp: &TopicPartition) -> Option<Offset> {
        self.entries
            .iter()
            .find(|(t, _)| t == tp)
            .map(|(_, offset)| *offset)
    }
}

/// One leader epoch and the first offset written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: LeaderEpoch,
    pub start_offset: Offset,
}

/// The `leader-epoch-checkpoint` file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCheckpoint {
    pub entries: Vec<EpochEntry>,
}

impl LeaderEpochCheckpoint {
    pub fn encode(&self) -> Vec<u8> {
        format_checkpoint(
            self.entries
                .iter()
                .map(|e| format!("{} {}", e.epoch.0, e.start_offset.0)),
        )
    }

    pub fn decode(text: &str) -> std::result::Result<Self, String> {
        let entries = parse_checkpoint(text, 2, |f| {
            Some(EpochEntry {
                epoch: LeaderEpoch(f[0].parse().ok()?),
                start_offset: Offset(f[1].parse().ok()?),
            })
        })?;
        Ok(LeaderEpochCheckpoint { entries })
    }

    pub async fn read(path: &Path) -> Result<Self> {
        match fs::read_file(path).await? {
            None => Ok(Self::default()),
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| corrupt(path, "checkpoint is not UTF-8".into()))?;
                Self::decode(&text).map_err(|e| corrupt(path, e))
            }
        }
    }

    pub async fn write(&self, path: &Path) -> Result<()> {
        fs::write_atomically(path, self.encode()).await
    }
}

/// Kafka's `LeaderEpochFileCache`: which epoch wrote which offsets, for truncation after a
/// leader change (OffsetsForLeaderEpoch) later. Entries have strictly increasing epochs and
/// start offsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// A cache from a checkpoint, keeping its longest monotonic prefix.
    pub fn from_checkpoint(checkpoint: LeaderEpochCheckpoint) -> Self {
        let mut cache = LeaderEpochCache::default();
        for entry in checkpoint.entries {
            let monotonic = cache
                .entries
                .last()
                .is_none_or(|l| l.epoch < entry.epoch && l.start_offset <= entry.start_offset);
            if !monotonic || entry.epoch.0 < 0 {
                break;
            }
            cache.entries.push(entry);
        }
        cache
    }

    pub fn to_checkpoint(&self) -> LeaderEpochCheckpoint {
        LeaderEpochCheckpoint {
            entries: self.entries.clone(),
        }
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset` if it is newer than the latest epoch.
    /// Returns whether the cache changed.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        if epoch.0 < 0 {
            return false;
        }
        match self.entries.last() {
            Some(last) if epoch <= last.epoch => false,
            _ => {
                // A newer epoch starting below the previous one's start means the old entries
                // describe offsets that were truncated: drop them (Kafka does the same).
                while self
                    .entries
                    .last()
                    .is_some_and(|l| l.start_offset > start_offset)
                {
                    self.entries.pop();
                }
                self.entries.push(EpochEntry {
                    epoch,
                    start_offset,
                });
                true
            }
        }
    }

    /// Forgets epochs that start at or after `end_offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end_offset: Offset) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.start_offset < end_offset);
        before != self.entries.len()
    }

    /// Drops epochs wholly below `start_offset`; the epoch covering it now starts there.
    pub fn truncate_from_start(&mut self, start_offset: Offset) -> bool {
        let covering = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if covering == 0 {
            return false;
        }
        let changed = covering > 1 || self.entries[0].start_offset != start_offset;
        self.entries.drain(..covering - 1);
        self.entries[0].start_offset = start_offset;
        changed
    }

    /// Kafka's `endOffsetFor`, what OffsetForLeaderEpoch answers: for the latest epoch,
    /// that epoch and `log_end`; for an older one, the largest epoch `≤ epoch` and the
    /// offset where the epoch after it starts; for one below every epoch, `epoch` itself
    /// and the first epoch's start offset. `None` (Kafka's undefined epoch and offset)
    /// for an epoch above the latest, or when the cache is empty.
    pub fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        let latest = self.latest()?;
        if epoch == latest.epoch {
            return Some((epoch, log_end));
        }
        let count = self.entries.partition_point(|e| e.epoch <= epoch);
        let higher = self.entries.get(count)?;
        match count.checked_sub(1).map(|i| self.entries[i]) {
            Some(floor) => Some((floor.epoch, higher.start_offset)),
            None => Some((epoch, higher.start_offset)),
        }
    }
}

/// `partition.metadata`: the topic id a partition directory belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub topic_id: Uuid,
}

impl PartitionMetadata {
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "version: 0\ntopic_id: {}",
            base64url_encode(&self.topic_id.0)
        )
        .into_bytes()
    }

    pub fn decode(text: &str) -> std::result::Result<Self, String> {
        let mut version = None;
        let mut topic_id = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line
                .split_once(':')
                .ok_or_else(|| format!("line {line:?} has no ':'"))?;
            match key.trim() {
                "version" => version = value.trim().parse::<i32>().ok(),
                "topic_id" => {
                    let raw = base64url_decode(value.trim())
                        .ok_or_else(|| format!("bad topic id {:?}", value.trim()))?;
                    topic_id = Some(Uuid(raw));
                }
                other => return Err(format!("unknown key {other:?}")),
            }
        }
        if version != Some(0) {
            return Err(format!("unsupported version {version:?}"));
        }
        Ok(PartitionMetadata {
            topic_id: topic_id.ok_or("missing topic_id")?,
        })
    }

    pub async fn read(path: &Path) -> Result<Option<Self>> {
        match fs::read_file(path).await? {
            None => Ok(None),
            Some(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| corrupt(path, "partition.metadata is not UTF-8".into()))?;
                Self::decode(&text).map(Some).map_err(|e| corrupt(path, e))
            }
        }
    }

    pub async fn write(&self, path: &Path) -> Result<()> {
        fs::write_atomically(path, self.encode()).await
    }
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka prints uuids as URL-safe base64 without padding (22 characters).
fn base64url_encode(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    let mut bits: u32 = 0;
    let mut nbits = 0;
    for &b in bytes {
        bits = (bits << 8) | b as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(BASE64URL[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(BASE64URL[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

fn base64url_decode(text: &str) -> Option<[u8; 16]> {
    let text = text.trim_end_matches('=');
    if text.len() != 22 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut i = 0;
    for c in text.bytes() {
        let v = BASE64URL.iter().position(|&x| x == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            if i < 16 {
                out[i] = (bits >> nbits) as u8;
            }
            i += 1;
        }
    }
    // 22 characters carry 132 bits; the last 4 must be zero for a canonical encoding.
    (i == 16 && bits & ((1 << nbits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_checkpoint_uses_kafkas_text_layout() {
        let checkpoint = OffsetCheckpoint {
            entries: vec![
                (TopicPartition::new("orders", 0), Offset(42)),
                (TopicPartition::new("my-topic", 7), Offset(0)),
            ],
        };
        let text = String::from_utf8(checkpoint.encode()).unwrap();
        assert_eq!(text, "0\n2\norders 0 42\nmy-topic 7 0\n");
        assert_eq!(OffsetCheckpoint::decode(&text), Ok(checkpoint));
    }

    #[test]
    fn offset_checkpoint_rejects_wrong_counts_and_versions() {
        assert!(OffsetCheckpoint::decode("0\n2\nt 0 1\n").is_err());
        assert!(OffsetCheckpoint::decode("1\n0\n").is_err());
        assert!(OffsetCheckpoint::decode("0\n1\nt x 1\n").is_err());
        assert_eq!(
            OffsetCheckpoint::decode("0\n0\n"),
            Ok(OffsetCheckpoint::default())
        );
    }

    #[test]
    fn leader_epoch_checkpoint_uses_kafkas_text_layout() {
        let checkpoint = LeaderEpochCheckpoint {
            entries: vec![
                EpochEntry {
                    epoch: LeaderEpoch(0),
                    start_offset: Offset(0),
                },
                EpochEntry {
                    epoch: LeaderEpoch(3),
                    start_offset: Offset(120),
                },
            ],
        };
        let text = String::from_utf8(checkpoint.encode()).unwrap();
        assert_eq!(text, "0\n2\n0 0\n3 120\n");
        assert_eq!(LeaderEpochCheckpoint::decode(&text), Ok(checkpoint));
    }

    #[test]
    fn leader_epoch_cache_assigns_truncates_and_answers_end_offsets() {
        let mut cache = LeaderEpochCache::default();
        assert!(cache.assign(LeaderEpoch(1), Offset(0)));
        assert!(!cache.assign(LeaderEpoch(1), Offset(5)));
        assert!(cache.assign(LeaderEpoch(4), Offset(10)));
        assert!(cache.assign(LeaderEpoch(6), Offset(20)));
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(5), Offset(30)),
            Some((LeaderEpoch(4), Offset(20)))
        );
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(6), Offset(30)),
            Some((LeaderEpoch(6), Offset(30)))
        );
        assert_eq!(cache.end_offset_for(LeaderEpoch(9), Offset(30)), None);
        assert_eq!(
            cache.end_offset_for(LeaderEpoch(0), Offset(30)),
            Some((LeaderEpoch(0), Offset(0)))
        );
        assert!(cache.truncate_from_end(Offset(20)));
        assert_eq!(cache.latest().unwrap().epoch, LeaderEpoch(4));
        assert!(cache.truncate_from_start(Offset(12)));
        assert_eq!(
            cache.entries(),
            [EpochEntry {
                epoch: LeaderEpoch(4),
                start_offset: Offset(12)
            }]
        );
    }

    #[test]
    fn partition_metadata_round_trips_kafkas_format() {
        let id = Uuid([
            0x9c, 0x3a, 0x5e, 0x1f, 0x00, 0x11, 0x42, 0x8b, 0xa0, 0xff, 0x10, 0x20, 0x30, 0x40,
            0x50, 0x60,
        ]);
        let metadata = PartitionMetadata { topic_id: id };
        let text = String::from_utf8(metadata.encode()).unwrap();
        assert_eq!(text, "version: 0\ntopic_id: nDpeHwARQoug_xAgMEBQYA");
        assert_eq!(PartitionMetadata::decode(&text), Ok(metadata));
        assert!(PartitionMetadata::decode("version: 1\ntopic_id: nDpeHwARQoug_xAgMEBQYA").is_err());
        assert!(PartitionMetadata::decode("version: 0\ntopic_id: short").is_err());
    }
}
