//! The cleaned segment's files and how it replaces the segments it was cleaned from,
//! crash-safely, as Kafka does: written as `<base>.log.cleaned` (and `.index`,
//! `.timeindex`, `.txnindex`), fdatasynced, renamed `.swap` (the log first, the
//! directory fsynced between, so an index never becomes a `.swap` without its log), the
//! directory fsynced; then, owning the log's maintenance, the old segments leave the
//! in-memory map and the new one takes their place in one step (readers always find a
//! segment; those holding an old one keep its open file), the old files are renamed
//! `.deleted` (`retire_segments`), the `.swap` files get their final names, and the
//! directory is fsynced.
//!
//! At open ([`complete_interrupted_swaps`], before recovery lists the segments):
//! `.cleaned` files are removed; a `<base>.log.swap` replaces every segment whose base lies
//! in `[base, its next offset)` — those are the segments it was cleaned from, because the
//! cleaner keeps each group's last batch — and every `.swap` file gets its final name.
//! So a crash at any point leaves either the old segments or the new one, never a mix.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use glommio::io::BufferedFile;

use super::super::error::{Result, StorageError};
use super::super::fs;
use super::super::log::PartitionLog;
use super::super::producers::{AbortedTxn, TXN_INDEX_SUFFIX, encode_txn_index};
use super::super::segment::{
    INDEX_SUFFIX, IndexFileState, LOG_SUFFIX, LogFile, Segment, SegmentIndexes, TIME_INDEX_SUFFIX,
    parse_segment_file_name, recover_batches, segment_file_name,
};
use super::{CleanError, SwapStep};
use crate::model::Offset;

/// Suffix of a cleaned segment's files while they are written.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's files once complete and durable, until they replace the
/// old segments.
pub const SWAP_SUFFIX: &str = ".swap";

/// The files of one segment, the log first.
const SEGMENT_SUFFIXES: [&str; 4] = [
    LOG_SUFFIX,
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
];

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A segment of the log as the cleaning saw it when it began.
#[derive(Clone, Debug)]
pub(crate) struct SegmentView {
    pub base: Offset,
    /// The next segment's base: every offset of this one lies below.
    pub upper: Offset,
    pub log: Rc<LogFile>,
    /// Written bytes (the segment no longer changes: it is not the active one).
    pub size: u32,
    pub offset_index_bytes: u64,
    pub time_index_bytes: u64,
}

/// A cleaned segment being written (`.cleaned` files).
pub(crate) struct CleanedSegment {
    pub base: Offset,
    dir: PathBuf,
    log: BufferedFile,
    /// Bytes written to the log file so far.
    pub size: u32,
}

impl CleanedSegment {
    pub async fn create(dir: &Path, base: Offset) -> Result<CleanedSegment> {
        let path = with_suffix(
            &dir.join(segment_file_name(base, LOG_SUFFIX)),
            CLEANED_SUFFIX,
        );
        let log = fs::open_read_write(&path, true).await?;
        log.truncate(0)
            .await
            .map_err(|e| StorageError::glommio("truncate", &path, e))?;
        Ok(CleanedSegment {
            base,
            dir: dir.to_path_buf(),
            log,
            size: 0,
        })
    }

    fn path(&self, suffix: &str, state: &str) -> PathBuf {
        with_suffix(&self.dir.join(segment_file_name(self.base, suffix)), state)
    }

    /// Appends whole batches to the log file.
    pub async fn write(&mut self, bytes: Vec<u8>) -> Result<()> {
        let len = bytes.len() as u64;
        let end = self.size as u64 + len;
        if end > i32::MAX as u64 {
            return Err(StorageError::io(
                "write",
                self.path(LOG_SUFFIX, CLEANED_SUFFIX),
                std::io::Error::other(format!(
                    "a cleaned segment would grow past a 32-bit position ({end})"
                )),
            ));
        }
        let path = self.path(LOG_SUFFIX, CLEANED_SUFFIX);
        fs::write_all_at(&self.log, &path, bytes, self.size as u64).await?;
        self.size = end as u32;
        Ok(())
    }

    /// Writes the indices and the aborted transactions, fdatasyncs every file.
    pub async fn finish(
        self,
        indexes: SegmentIndexes,
        aborted: Vec<AbortedTxn>,
    ) -> Result<FinishedSegment> {
        let log_path = self.path(LOG_SUFFIX, CLEANED_SUFFIX);
        let offset_bytes = indexes.offset.encode_from(0);
        let time_bytes = indexes.time.encode_from(0);
        let mut files = vec![
            (INDEX_SUFFIX, offset_bytes.clone()),
            (TIME_INDEX_SUFFIX, time_bytes.clone()),
        ];
        if !aborted.is_empty() {
            files.push((TXN_INDEX_SUFFIX, encode_txn_index(&aborted)));
        }
        for (suffix, bytes) in files.iter().cloned() {
            let path = self.path(suffix, CLEANED_SUFFIX);
            let file = BufferedFile::create(&path)
                .await
                .map_err(|e| StorageError::glommio("create", &path, e))?;
            if !bytes.is_empty() {
                fs::write_all_at(&file, &path, bytes, 0).await?;
            }
            file.fdatasync()
                .await
                .map_err(|e| StorageError::glommio("fdatasync", &path, e))?;
            file.close()
                .await
                .map_err(|e| StorageError::glommio("close", &path, e))?;
        }
        self.log
            .fdatasync()
            .await
            .map_err(|e| StorageError::glommio("fdatasync", &log_path, e))?;
        Ok(FinishedSegment {
            suffixes: files.iter().map(|(s, _)| *s).collect(),
            offset_index_len: offset_bytes.len() as u64,
            time_index_len: time_bytes.len() as u64,
            indexes,
            aborted,
            cleaned: self,
        })
    }

    /// Removes the `.cleaned` files (a cleaning given up).
    pub async fn discard(&self) {
        discard(&self.dir, self.base, CLEANED_SUFFIX).await;
    }

    /// Removes the `.cleaned` files of the segment at `base` in `dir`.
    pub async fn discard_at(dir: &Path, base: Offset) {
        discard(dir, base, CLEANED_SUFFIX).await;
    }
}

/// A cleaned segment complete and durable as `.cleaned` files.
pub(crate) struct FinishedSegment {
    cleaned: CleanedSegment,
    /// The files written besides the log.
    suffixes: Vec<&'static str>,
    indexes: SegmentIndexes,
    offset_index_len: u64,
    time_index_len: u64,
    /// Aborted transactions whose markers the segment keeps (its `.txnindex`).
    pub aborted: Vec<AbortedTxn>,
}

impl FinishedSegment {
    pub fn size(&self) -> u32 {
        self.cleaned.size
    }

    async fn rename_all(&self, from: &str, to: &str) -> Result<()> {
        // The log first, durably: an index never reaches its next name without its log.
        let log = self.cleaned.path(LOG_SUFFIX, "");
        fs::rename_if_exists(&with_suffix(&log, from), &with_suffix(&log, to)).await?;
        fs::sync_dir(&self.cleaned.dir).await?;
        for suffix in &self.suffixes {
            let path = self.cleaned.path(suffix, "");
            fs::rename_if_exists(&with_suffix(&path, from), &with_suffix(&path, to)).await?;
        }
        fs::sync_dir(&self.cleaned.dir).await
    }
}

/// Removes the files of the cleaned segment at `base` in `state` (`.cleaned`, `.swap`),
/// durably; failures are logged (the next open removes or completes what is left).
async fn discard(dir: &Path, base: Offset, state: &str) {
    for suffix in SEGMENT_SUFFIXES {
        let path = with_suffix(&dir.join(segment_file_name(base, suffix)), state);
        if let Err(e) = fs::remove_file(&path).await {
            tracing::warn!("cannot remove {}: {e}", path.display());
        }
    }
    if let Err(e) = fs::sync_dir(dir).await {
        tracing::warn!("cannot sync {}: {e}", dir.display());
    }
}

impl PartitionLog {
    /// Replaces the segments of `group` with the finished cleaned segment (see the module
    /// documentation for the steps). A group that changed meanwhile (retention, a
    /// truncation, DeleteRecords removed one of its segments) is left alone: the cleaned
    /// files are removed and the cleaning ends (`CleanError::Aborted`). Runs to its end
    /// even if the cleaner is stopped (the caller runs it as a task of its own), so the
    /// log's maintenance ownership is always given back.
    pub(super) async fn swap_in(
        &self,
        group: &[SegmentView],
        finished: FinishedSegment,
        stop_at: Option<SwapStep>,
    ) -> Result<(), CleanError> {
        let base = finished.cleaned.base;
        let upper = group.last().expect("a group holds a segment").upper;
        let dir = finished.cleaned.dir.clone();
        if let Err(e) = finished.rename_all(CLEANED_SUFFIX, SWAP_SUFFIX).await {
            discard(&dir, base, SWAP_SUFFIX).await;
            discard(&dir, base, CLEANED_SUFFIX).await;
            return Err(e.into());
        }
        if stop_at == Some(SwapStep::Swap) {
            return Err(CleanError::Stopped(SwapStep::Swap));
        }
        if let Err(e) = self.acquire_maintenance().await {
            discard(&dir, base, SWAP_SUFFIX).await;
            return Err(e.into());
        }
        let replaced = {
            let mut st = self.inner.state.borrow_mut();
            let unchanged = group.iter().all(|view| {
                st.segments
                    .get(&view.base.0)
                    .is_some_and(|s| Rc::ptr_eq(&s.log, &view.log) && s.written_size == view.size)
            }) && st.segments.range(base.0..upper.0).count() == group.len()
                && st.segments.contains_key(&upper.0);
            if unchanged {
                let old: Vec<Segment> = group
                    .iter()
                    .map(|view| st.segments.remove(&view.base.0).expect("checked"))
                    .collect();
                let size = finished.cleaned.size;
                let FinishedSegment {
                    cleaned,
                    indexes,
                    offset_index_len,
                    time_index_len,
                    aborted,
                    ..
                } = finished;
                let offset_entries = indexes.offset.len();
                let time_entries = indexes.time.len();
                st.segments.insert(
                    base.0,
                    Segment {
                        base_offset: base,
                        log: Rc::new(LogFile {
                            file: cleaned.log,
                            path: dir.join(segment_file_name(base, LOG_SUFFIX)),
                        }),
                        reserved_size: size,
                        reserved_next_offset: upper,
                        written_size: size,
                        written_next_offset: upper,
                        durable_size: size,
                        indexes: Some(indexes),
                        index_files: IndexFileState {
                            files: None,
                            offset_entries_written: offset_entries,
                            time_entries_written: time_entries,
                            offset_file_len: offset_index_len,
                            time_file_len: time_index_len,
                            synced: true,
                            stale_tail: false,
                            offset_durable_len: offset_index_len,
                            time_durable_len: time_index_len,
                        },
                        created: Instant::now(),
                    },
                );
                st.producers.replace_aborted(base, upper, aborted);
                st.check_invariants();
                Some(old)
            } else {
                None
            }
        };
        let Some(old) = replaced else {
            self.release_maintenance();
            discard(&dir, base, SWAP_SUFFIX).await;
            return Err(CleanError::Aborted(format!(
                "segments [{base}, {upper}) changed while they were cleaned"
            )));
        };
        if stop_at == Some(SwapStep::Replaced) {
            return Err(CleanError::Stopped(SwapStep::Replaced));
        }
        let mut result = self.retire_segments(&old).await;
        if result.is_ok() && stop_at == Some(SwapStep::Retired) {
            return Err(CleanError::Stopped(SwapStep::Retired));
        }
        if result.is_ok() {
            result = self.rename_swapped(&dir, base).await;
        }
        if let Err(e) = &result {
            // The in-memory log no longer matches the files' names: nothing more may be
            // done with it until it is opened again (which completes the swap).
            self.inner.state.borrow_mut().fail(e);
        }
        self.release_maintenance();
        result.map_err(CleanError::from)
    }

    /// Gives the `.swap` files of the segment at `base` their final names, durably.
    async fn rename_swapped(&self, dir: &Path, base: Offset) -> Result<()> {
        for suffix in SEGMENT_SUFFIXES {
            let path = dir.join(segment_file_name(base, suffix));
            fs::rename_if_exists(&with_suffix(&path, SWAP_SUFFIX), &path).await?;
        }
        fs::sync_dir(dir).await
    }
}

/// Completes or undoes what a cleaning cut short left in the partition directory `dir`,
/// before the log's segments are listed: removes `.cleaned` files; for each
/// `<base>.log.swap`, removes the segments whose base lies in `[base, its next offset)`;
/// gives every `.swap` file its final name. Kafka's LogLoader does the same.
pub(crate) async fn complete_interrupted_swaps(dir: &Path) -> Result<()> {
    let listing = fs::list_dir(dir).await?;
    let mut swaps: Vec<(String, Offset, &'static str)> = Vec::new();
    let mut changed = false;
    for (name, _) in &listing {
        if name.ends_with(CLEANED_SUFFIX) {
            fs::remove_file(&dir.join(name)).await?;
            changed = true;
        } else if let Some(inner) = name.strip_suffix(SWAP_SUFFIX) {
            match SEGMENT_SUFFIXES
                .iter()
                .find_map(|suffix| parse_segment_file_name(inner, suffix).map(|b| (b, *suffix)))
            {
                Some((base, suffix)) => swaps.push((name.clone(), base, suffix)),
                None => {
                    tracing::warn!("{}: removing an unknown swap file {name}", dir.display());
                    fs::remove_file(&dir.join(name)).await?;
                    changed = true;
                }
            }
        }
    }
    // The range each swapped log replaces, from its batches.
    let mut ranges: Vec<(Offset, Offset)> = Vec::new();
    let mut invalid: Vec<Offset> = Vec::new();
    for (name, base, suffix) in &swaps {
        if *suffix != LOG_SUFFIX {
            continue;
        }
        let path = dir.join(name);
        let file = fs::open_read_write(&path, false).await?;
        let len = file
            .file_size()
            .await
            .map_err(|e| StorageError::glommio("stat", &path, e))?;
        let log = LogFile {
            file,
            path: path.clone(),
        };
        let recovered = recover_batches(&log, *base, 0, len, *base, |_, _| {}).await?;
        let _ = log.file.close().await;
        if recovered.valid_end as u64 != len {
            // It was fdatasynced before it became a `.swap`: this is damage, not a crash.
            // The old segments stay (those already renamed `.deleted` are lost with it).
            tracing::error!(
                "{}: the cleaned segment {name} is corrupt at byte {}: discarded",
                dir.display(),
                recovered.valid_end
            );
            invalid.push(*base);
            continue;
        }
        let end = recovered.next_offset.max(base.next());
        tracing::info!(
            "{}: completing the swap of cleaned segment {base} for the segments in [{base}, {end})",
            dir.display()
        );
        ranges.push((*base, end));
    }
    for (name, _) in &listing {
        if name.ends_with(SWAP_SUFFIX) || name.ends_with(CLEANED_SUFFIX) {
            continue;
        }
        let base = SEGMENT_SUFFIXES
            .iter()
            .find_map(|suffix| parse_segment_file_name(name, suffix));
        if let Some(base) = base
            && ranges.iter().any(|(from, to)| base >= *from && base < *to)
        {
            fs::remove_file(&dir.join(name)).await?;
            changed = true;
        }
    }
    for (name, base, _) in &swaps {
        let from = dir.join(name);
        if invalid.contains(base) {
            fs::remove_file(&from).await?;
        } else {
            let to = dir.join(name.strip_suffix(SWAP_SUFFIX).expect("a swap file"));
            fs::rename_if_exists(&from, &to).await?;
        }
        changed = true;
    }
    if changed {
        fs::sync_dir(dir).await?;
    }
    Ok(())
}
