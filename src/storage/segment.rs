//! One segment of a partition log: its `.log` file, its two sparse indices and the
//! bookkeeping of how far each is reserved, written and durable, and the creation of a new
//! segment's files; plus the batch scans (headers only, for reads; full CRC validation, for
//! recovery) that run over its file.
//!
//! Owned by [`PartitionLog`](super::PartitionLog) on the partition's shard; nothing here
//! is shared with other shards. A segment's positions follow three watermarks, each never
//! above the one before it: `reserved_size` (bytes handed to appenders), `written_size`
//! (bytes whose write completed, contiguous from 0) and `durable_size` (bytes covered by a
//! completed fdatasync). Readers only look below `written_size`.
//!
//! Index entries are added with the exact rule of Kafka's `LogSegment.recover`: an entry
//! for the batch at position `p` when `p - (position of the previous entry) >
//! index.interval.bytes`, so an index built while appending is identical to one rebuilt by
//! recovery (a test checks it).

use std::ops::ControlFlow;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use glommio::io::BufferedFile;

use super::error::{Result, StorageError};
use super::index::{OFFSET_INDEX_ENTRY_BYTES, OffsetIndex, TIME_INDEX_ENTRY_BYTES, TimeIndex};
use super::records::{BATCH_HEADER_LEN, BatchHeader, RecordBatch, batches};
use super::{LogConfig, fs};
use crate::model::{LeaderEpoch, Offset, Timestamp};

pub(crate) const LOG_SUFFIX: &str = ".log";
pub(crate) const INDEX_SUFFIX: &str = ".index";
pub(crate) const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// Kafka's segment file name: the base offset as 20 zero-padded digits, plus `suffix`.
pub fn segment_file_name(base_offset: Offset, suffix: &str) -> String {
    format!("{:020}{suffix}", base_offset.0)
}

/// Parses `<20 digits><suffix>` back into a base offset.
pub(crate) fn parse_segment_file_name(name: &str, suffix: &str) -> Option<Offset> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(Offset)
}

/// An open `.log` file, shared between the segment and the readers holding a
/// [`FileRange`](super::FileRange) into it (the file stays open while either lives).
#[derive(Debug)]
pub struct LogFile {
    pub(crate) file: BufferedFile,
    pub(crate) path: PathBuf,
}

impl LogFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The glommio file, for the server's `sendfile` / io_uring send path.
    pub fn buffered_file(&self) -> &BufferedFile {
        &self.file
    }
}

impl AsRawFd for LogFile {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// The open `.index` and `.timeindex` files of a segment whose indices still change.
#[derive(Debug)]
pub(crate) struct IndexFiles {
    pub offset: BufferedFile,
    pub offset_path: PathBuf,
    pub time: BufferedFile,
    pub time_path: PathBuf,
}

impl IndexFiles {
    /// The sizes of the `.index` and `.timeindex` files, in bytes.
    pub async fn sizes(&self) -> Result<(u64, u64)> {
        let offset_len = self
            .offset
            .file_size()
            .await
            .map_err(|e| StorageError::glommio("stat", &self.offset_path, e))?;
        let time_len = self
            .time
            .file_size()
            .await
            .map_err(|e| StorageError::glommio("stat", &self.time_path, e))?;
        Ok((offset_len, time_len))
    }
}

/// What the `.index` / `.timeindex` files hold compared with the in-memory indices.
#[derive(Debug, Default)]
pub(crate) struct IndexFileState {
    /// Open while the files differ from memory or are not yet durable.
    pub files: Option<Rc<IndexFiles>>,
    /// Entries of the in-memory indices already written to the files.
    pub offset_entries_written: usize,
    pub time_entries_written: usize,
    /// Current lengths of the files (preallocated while the segment is active).
    pub offset_file_len: u64,
    pub time_file_len: u64,
    /// Whether the files' content and length are covered by an fdatasync.
    pub synced: bool,
    /// The files may hold stale entries past the written ones (after a truncation or a
    /// recovery): cut them before writing new entries.
    pub stale_tail: bool,
    /// Bytes of each file known durable (for the crash simulation in tests).
    pub offset_durable_len: u64,
    pub time_durable_len: u64,
}

/// The in-memory indices and the running values recovery and append derive from batches.
#[derive(Clone, Debug)]
pub(crate) struct SegmentIndexes {
    pub offset: OffsetIndex,
    pub time: TimeIndex,
    /// Largest batch max timestamp in the segment (Kafka's `maxTimestampSoFar`).
    pub max_timestamp: Timestamp,
    /// Last offset of the first batch that carried `max_timestamp`.
    pub offset_of_max_timestamp: Offset,
    /// Position of the batch of the last offset index entry (0 if none).
    pub last_index_entry_position: u32,
}

impl SegmentIndexes {
    pub fn new(base_offset: Offset, config: &LogConfig) -> Self {
        SegmentIndexes {
            offset: OffsetIndex::new(base_offset, config.segment_index_bytes),
            time: TimeIndex::new(base_offset, config.segment_index_bytes),
            max_timestamp: Timestamp::NONE,
            offset_of_max_timestamp: base_offset,
            last_index_entry_position: 0,
        }
    }

    /// Accounts for one batch at `position` ending at `last_offset`, exactly as Kafka's
    /// append and recovery do: update the max timestamp, then add an index entry if more
    /// than `index.interval.bytes` passed since the last one.
    pub fn on_batch(
        &mut self,
        position: u32,
        last_offset: Offset,
        max_timestamp: Timestamp,
        index_interval_bytes: u32,
    ) {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = last_offset;
        }
        if position - self.last_index_entry_position > index_interval_bytes
            && !self.offset.is_full()
            && !self.time.is_full()
        {
            self.offset.append(last_offset, position);
            self.time
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            self.last_index_entry_position = position;
        }
    }

    /// Kafka's final time index entry when a segment stops being active.
    pub fn on_roll(&mut self) {
        if self.max_timestamp != Timestamp::NONE || !self.time.is_empty() {
            self.time
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
    }
}

/// One segment's state. See the module doc for the three size watermarks.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: Offset,
    pub log: Rc<LogFile>,
    pub reserved_size: u32,
    pub reserved_next_offset: Offset,
    pub written_size: u32,
    pub written_next_offset: Offset,
    pub durable_size: u32,
    /// `None` until first needed for a segment that was clean at open (loaded lazily, so
    /// opening costs nothing per old segment but a stat).
    pub indexes: Option<SegmentIndexes>,
    pub index_files: IndexFileState,
    /// When the segment was created or, after a restart, when the log was opened.
    pub created: Instant,
}

impl Segment {
    /// Asserts the watermark order (release builds too).
    pub fn check_invariants(&self) {
        assert!(
            self.durable_size <= self.written_size,
            "segment {}: durable {} must not exceed written {}",
            self.base_offset,
            self.durable_size,
            self.written_size
        );
        assert!(
            self.written_size <= self.reserved_size,
            "segment {}: written {} must not exceed reserved {}",
            self.base_offset,
            self.written_size,
            self.reserved_size
        );
        assert!(
            self.written_next_offset <= self.reserved_next_offset,
            "segment {}: written next offset {} must not exceed reserved {}",
            self.base_offset,
            self.written_next_offset,
            self.reserved_next_offset
        );
        assert!(
            self.base_offset <= self.written_next_offset,
            "segment {}: next offset {} below base offset",
            self.base_offset,
            self.written_next_offset
        );
    }
}

/// Opens or creates the index files of a segment at `dir`.
pub(crate) async fn open_index_files(
    dir: &Path,
    base_offset: Offset,
    create: bool,
) -> Result<IndexFiles> {
    let offset_path = dir.join(segment_file_name(base_offset, INDEX_SUFFIX));
    let time_path = dir.join(segment_file_name(base_offset, TIME_INDEX_SUFFIX));
    let offset = fs::open_read_write(&offset_path, create).await?;
    let time = fs::open_read_write(&time_path, create).await?;
    Ok(IndexFiles {
        offset,
        offset_path,
        time,
        time_path,
    })
}

/// Creates the three files of a new segment, with preallocated (sparse) index files.
pub(crate) async fn create_segment(
    dir: &Path,
    base: Offset,
    config: &LogConfig,
) -> Result<Segment> {
    let log_path = dir.join(segment_file_name(base, LOG_SUFFIX));
    let file = fs::open_read_write(&log_path, true).await?;
    file.truncate(0)
        .await
        .map_err(|e| StorageError::glommio("truncate", &log_path, e))?;
    let files = open_index_files(dir, base, true).await?;
    for (f, path) in [
        (&files.offset, &files.offset_path),
        (&files.time, &files.time_path),
    ] {
        f.truncate(0)
            .await
            .map_err(|e| StorageError::glommio("truncate", path, e))?;
    }
    let indexes = SegmentIndexes::new(base, config);
    Ok(Segment {
        base_offset: base,
        log: Rc::new(LogFile {
            file,
            path: log_path,
        }),
        reserved_size: 0,
        reserved_next_offset: base,
        written_size: 0,
        written_next_offset: base,
        durable_size: 0,
        indexes: Some(indexes),
        index_files: IndexFileState {
            files: Some(Rc::new(files)),
            offset_entries_written: 0,
            time_entries_written: 0,
            offset_file_len: 0,
            time_file_len: 0,
            synced: false,
            stale_tail: false,
            offset_durable_len: 0,
            time_durable_len: 0,
        },
        created: Instant::now(),
    })
}

/// What the next index persistence must do, computed under the state borrow and executed
/// without it.
pub(crate) struct IndexPersist {
    pub base_offset: Offset,
    pub files: Rc<IndexFiles>,
    pub offset_truncate_to: Option<u64>,
    pub offset_write: Option<(u64, Vec<u8>)>,
    pub time_truncate_to: Option<u64>,
    pub time_write: Option<(u64, Vec<u8>)>,
    /// Final length of each file (preallocated for the active segment, exact otherwise).
    pub offset_final_len: u64,
    pub time_final_len: u64,
    pub offset_entries: usize,
    pub time_entries: usize,
    pub sync: bool,
    /// Planned for the active segment (preallocated files that will change again).
    pub active: bool,
    /// Whether the files' lengths change (ftruncate runs on the blocking pool: skip it when
    /// nothing changes).
    pub offset_resize: bool,
    pub time_resize: bool,
}

impl IndexPersist {
    /// Plans bringing the files in line with `indexes`: drop stale entries, write new ones,
    /// then preallocate (`active`) or trim to the exact size, then fdatasync.
    /// `sync_active`: also write and fdatasync the active segment's files (a full sync that
    /// moves the recovery point); otherwise they are left alone.
    pub fn plan(
        segment: &Segment,
        indexes: &SegmentIndexes,
        active: bool,
        sync_active: bool,
        config: &LogConfig,
    ) -> Option<IndexPersist> {
        let state = &segment.index_files;
        let files = state.files.clone()?;
        let offset_entries = indexes.offset.len();
        let time_entries = indexes.time.len();
        let offset_written = state.offset_entries_written.min(offset_entries);
        let time_written = state.time_entries_written.min(time_entries);
        let mut offset_len = state.offset_file_len;
        let mut time_len = state.time_file_len;
        let mut offset_truncate_to = None;
        let mut time_truncate_to = None;
        if state.stale_tail || state.offset_entries_written > offset_entries {
            offset_len = (offset_written * OFFSET_INDEX_ENTRY_BYTES) as u64;
            offset_truncate_to = Some(offset_len);
        }
        if state.stale_tail || state.time_entries_written > time_entries {
            time_len = (time_written * TIME_INDEX_ENTRY_BYTES) as u64;
            time_truncate_to = Some(time_len);
        }
        // The active segment's index files are only written and fdatasynced by a full sync
        // (roll, close, truncation, `checkpoint`): a flush for durability costs one
        // fdatasync, of the log, and the recovery point, which promises durable indices,
        // moves only with full syncs. Cutting stale entries is always made durable.
        // Decided before anything is encoded: an acks=all flush runs this for every
        // request, and the active segment's unwritten entries grow with the segment.
        let cut = offset_truncate_to.is_some() || time_truncate_to.is_some();
        if active && !sync_active && !cut {
            return None;
        }
        let offset_write = (offset_written < offset_entries).then(|| {
            (
                (offset_written * OFFSET_INDEX_ENTRY_BYTES) as u64,
                indexes.offset.encode_from(offset_written),
            )
        });
        let time_write = (time_written < time_entries).then(|| {
            (
                (time_written * TIME_INDEX_ENTRY_BYTES) as u64,
                indexes.time.encode_from(time_written),
            )
        });
        let offset_exact = (offset_entries * OFFSET_INDEX_ENTRY_BYTES) as u64;
        let time_exact = (time_entries * TIME_INDEX_ENTRY_BYTES) as u64;
        let (offset_final_len, time_final_len) = if active {
            let prealloc_offset = (indexes.offset.max_entries() * OFFSET_INDEX_ENTRY_BYTES) as u64;
            let prealloc_time = (config.segment_index_bytes as usize / TIME_INDEX_ENTRY_BYTES
                * TIME_INDEX_ENTRY_BYTES) as u64;
            (
                prealloc_offset.max(offset_exact),
                prealloc_time.max(time_exact),
            )
        } else {
            (offset_exact, time_exact)
        };
        let changed = offset_truncate_to.is_some()
            || time_truncate_to.is_some()
            || offset_write.is_some()
            || time_write.is_some()
            || offset_final_len != offset_len
            || time_final_len != time_len;
        let sync = true;
        if !changed && state.synced {
            return None;
        }
        Some(IndexPersist {
            base_offset: segment.base_offset,
            files,
            offset_truncate_to,
            offset_write,
            time_truncate_to,
            time_write,
            offset_final_len,
            time_final_len,
            offset_entries,
            time_entries,
            sync,
            active,
            offset_resize: offset_final_len != offset_len,
            time_resize: time_final_len != time_len,
        })
    }

    /// Runs the plan. Truncation happens before new entries are written, so stale entries
    /// past the valid ones never survive next to them.
    pub async fn execute(&self) -> Result<()> {
        let files = &self.files;
        if let Some(len) = self.offset_truncate_to {
            files
                .offset
                .truncate(len)
                .await
                .map_err(|e| StorageError::glommio("truncate", &files.offset_path, e))?;
        }
        if let Some(len) = self.time_truncate_to {
            files
                .time
                .truncate(len)
                .await
                .map_err(|e| StorageError::glommio("truncate", &files.time_path, e))?;
        }
        if let Some((at, bytes)) = &self.offset_write {
            fs::write_all_at(&files.offset, &files.offset_path, bytes.clone(), *at).await?;
        }
        if let Some((at, bytes)) = &self.time_write {
            fs::write_all_at(&files.time, &files.time_path, bytes.clone(), *at).await?;
        }
        // Kafka preallocates with a sparse `setLength`; ftruncate does the same.
        if self.offset_resize || self.offset_truncate_to.is_some() {
            files
                .offset
                .truncate(self.offset_final_len)
                .await
                .map_err(|e| StorageError::glommio("truncate", &files.offset_path, e))?;
        }
        if self.time_resize || self.time_truncate_to.is_some() {
            files
                .time
                .truncate(self.time_final_len)
                .await
                .map_err(|e| StorageError::glommio("truncate", &files.time_path, e))?;
        }
        if self.sync {
            let (a, b) =
                futures_lite::future::zip(files.offset.fdatasync(), files.time.fdatasync()).await;
            a.map_err(|e| StorageError::glommio("fdatasync", &files.offset_path, e))?;
            b.map_err(|e| StorageError::glommio("fdatasync", &files.time_path, e))?;
        }
        Ok(())
    }

    /// Records the executed plan in the segment's bookkeeping.
    pub fn apply(&self, state: &mut IndexFileState) {
        state.offset_entries_written = self.offset_entries;
        state.time_entries_written = self.time_entries;
        state.offset_file_len = self.offset_final_len;
        state.time_file_len = self.time_final_len;
        state.synced = self.sync;
        state.stale_tail = false;
        if self.sync {
            state.offset_durable_len = (self.offset_entries * OFFSET_INDEX_ENTRY_BYTES) as u64;
            state.time_durable_len = (self.time_entries * TIME_INDEX_ENTRY_BYTES) as u64;
        }
    }
}

/// Where a header scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// The visitor asked to stop at the batch starting here.
    Stopped(u32),
    /// Reached `end` exactly on a batch boundary.
    End(u32),
    /// A header that does not parse, or a batch running past `end`, starts here.
    Invalid(u32),
}

const SCAN_CHUNK: usize = 16 << 10;

/// Reads batch headers from `position` (a batch boundary) up to `end`, calling `visit` with
/// each batch's position and header. Only headers are parsed; batch bodies are skipped.
pub(crate) async fn scan_headers(
    log: &LogFile,
    mut position: u32,
    end: u32,
    mut visit: impl FnMut(u32, &BatchHeader) -> ControlFlow<()>,
) -> Result<ScanEnd> {
    while position < end {
        let want = ((end - position) as usize).min(SCAN_CHUNK);
        if want < BATCH_HEADER_LEN {
            return Ok(ScanEnd::Invalid(position));
        }
        let chunk = log
            .file
            .read_at(position as u64, want)
            .await
            .map_err(|e| StorageError::glommio("read", &log.path, e))?;
        if chunk.len() < BATCH_HEADER_LEN {
            return Ok(ScanEnd::Invalid(position));
        }
        let mut at = 0usize;
        while at + BATCH_HEADER_LEN <= chunk.len() {
            let Ok(header) = BatchHeader::parse(&chunk[at..at + BATCH_HEADER_LEN]) else {
                return Ok(ScanEnd::Invalid(position));
            };
            let size = header.size() as u64;
            if position as u64 + size > end as u64 || header.last_offset_delta < 0 {
                return Ok(ScanEnd::Invalid(position));
            }
            if visit(position, &header).is_break() {
                return Ok(ScanEnd::Stopped(position));
            }
            position += size as u32;
            at += size as usize;
            if position >= end {
                return Ok(ScanEnd::End(position));
            }
        }
    }
    Ok(ScanEnd::End(position))
}

/// Reads the bytes `[position, position + len)` of a segment.
pub(crate) async fn read_bytes(log: &LogFile, position: u32, len: usize) -> Result<Bytes> {
    let bytes = fs::read_range(&log.file, &log.path, position as u64, len).await?;
    if bytes.len() != len {
        return Err(StorageError::io(
            "read",
            &log.path,
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("expected {len} bytes at {position}, got {}", bytes.len()),
            ),
        ));
    }
    Ok(Bytes::from(bytes))
}

/// What validating a segment's batches found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// End of the last valid batch: the file is truncated here if it is longer.
    pub valid_end: u32,
    /// One past the last offset of the last valid batch (or the starting offset).
    pub next_offset: Offset,
    /// Whether the scan stopped on a torn or corrupt batch before the end of the file.
    pub truncated: bool,
}

const RECOVERY_CHUNK: usize = 1 << 20;

/// Validates batches from `position` (a batch boundary) to `file_len`: each must parse,
/// carry a matching CRC, start at or after `next_offset` (where the previous batch ended)
/// and stay within the segment's relative range. Stops at the first that does not.
///
/// Offsets must increase, not be contiguous: the cleaner removes batches and records and
/// leaves gaps inside the segments it rewrites (a scan that starts at an index entry does
/// not know that batch's base either). A crash cannot make a batch whose CRC holds appear
/// with a base offset of its own (torn, zeroed or garbage bytes fail the CRC or the
/// header), and segment ends stay exact (the cleaner keeps each segment's last batch), so
/// `recover` still checks that each segment starts where the one before it ended.
/// `on_batch` sees every valid batch (for rebuilding indices and the leader epoch cache).
pub(crate) async fn recover_batches(
    log: &LogFile,
    base_offset: Offset,
    mut position: u32,
    file_len: u64,
    mut next_offset: Offset,
    mut on_batch: impl FnMut(u32, &BatchHeader),
) -> Result<Recovered> {
    let file_len = file_len.min(i32::MAX as u64) as u32;
    let mut truncated = false;
    'chunks: while position < file_len {
        let want = ((file_len - position) as usize).min(RECOVERY_CHUNK);
        let chunk = read_bytes_or_short(log, position, want).await?;
        if chunk.len() < BATCH_HEADER_LEN {
            truncated = true;
            break;
        }
        let mut consumed = 0usize;
        for batch in batches(chunk.clone()) {
            let batch = match batch {
                Ok(batch) => batch,
                // A batch running past this chunk: read again from its start, unless it
                // is the chunk's first batch (then read exactly that batch).
                Err(_) if consumed > 0 => continue 'chunks,
                Err(_) => {
                    let Ok(h) = BatchHeader::parse(&chunk) else {
                        truncated = true;
                        break 'chunks;
                    };
                    if position as u64 + h.size() as u64 > file_len as u64 {
                        truncated = true;
                        break 'chunks;
                    }
                    let whole = read_bytes_or_short(log, position, h.size()).await?;
                    let Some(Ok(batch)) = batches(whole).next() else {
                        truncated = true;
                        break 'chunks;
                    };
                    if !accept(&batch, base_offset, next_offset) {
                        truncated = true;
                        break 'chunks;
                    }
                    let h = batch.header();
                    on_batch(position, h);
                    next_offset = Offset(h.last_offset() + 1);
                    position += h.size() as u32;
                    continue 'chunks;
                }
            };
            if !accept(&batch, base_offset, next_offset) {
                truncated = true;
                break 'chunks;
            }
            let h = batch.header();
            on_batch(position, h);
            next_offset = Offset(h.last_offset() + 1);
            position += h.size() as u32;
            consumed += h.size();
        }
    }
    Ok(Recovered {
        valid_end: position,
        next_offset,
        truncated,
    })
}

/// The checks recovery applies to a batch read back from disk.
fn accept(batch: &RecordBatch, base_offset: Offset, next_offset: Offset) -> bool {
    let h = batch.header();
    let offset_ok = h.base_offset >= next_offset.0;
    h.magic == 2
        && h.last_offset_delta >= 0
        && h.record_count >= 0
        && offset_ok
        && h.base_offset >= base_offset.0
        && h.last_offset() - base_offset.0 <= i32::MAX as i64
        && batch.verify_crc().is_ok()
}

async fn read_bytes_or_short(log: &LogFile, position: u32, len: usize) -> Result<Bytes> {
    Ok(Bytes::from(
        fs::read_range(&log.file, &log.path, position as u64, len).await?,
    ))
}

/// The leader epoch stamped in a batch.
pub(crate) fn batch_epoch(header: &BatchHeader) -> LeaderEpoch {
    LeaderEpoch(header.partition_leader_epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_files_are_named_by_20_digit_base_offsets() {
        assert_eq!(
            segment_file_name(Offset(170_410), LOG_SUFFIX),
            "00000000000000170410.log"
        );
        assert_eq!(
            parse_segment_file_name("00000000000000170410.timeindex", TIME_INDEX_SUFFIX),
            Some(Offset(170_410))
        );
        assert_eq!(parse_segment_file_name("170410.log", LOG_SUFFIX), None);
        assert_eq!(
            parse_segment_file_name("00000000000000170410.log.deleted", LOG_SUFFIX),
            None
        );
    }
}
