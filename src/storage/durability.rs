//! Durability: group-committed fdatasync ([`PartitionLog::wait_durable`],
//! [`PartitionLog::flush`], [`PartitionLog::checkpoint`]), the flush policy
//! (`flush.messages`, `flush.ms`), the sync task, and "maintenance": the ownership of the
//! index files and durability bookkeeping that a sync, a truncation, a segment deletion,
//! the cleaner's swap of a cleaned segment or `close` takes in turn (see "Durability" in
//! the `log` module).
//!
//! Runs on the shard that owns the partition. A sync runs in the task of whoever owns
//! maintenance or in a task of its own on the same shard, one at a time per log; the
//! `flush.ms` timer is a task of that shard too.
//!
//! Invariants: the durable offset only moves past bytes a completed fdatasync covered, the
//! recovery point only past index entries that are final and durable as well (recovery
//! point ≤ durable offset ≤ log end offset, asserted after each sync); a failed sync takes
//! the log offline.

use std::path::PathBuf;
use std::rc::{Rc, Weak};

use futures_lite::future;

use super::checkpoint::{LEADER_EPOCH_CHECKPOINT, LeaderEpochCheckpoint};
use super::error::{Result, StorageError};
use super::fs::{self, Job, join_all};
use super::log::{Inner, LogState, PartitionLog};
use super::segment::{IndexPersist, LogFile};
use crate::model::Offset;

/// Everything one sync makes durable, captured under the state borrow.
struct SyncPlan {
    target: Offset,
    /// Also syncs the active segment's indices and moves the recovery point.
    full: bool,
    /// Base offset of the active segment when the plan was made.
    active_base: Offset,
    logs: Vec<(Offset, Rc<LogFile>, u32)>,
    indexes: Vec<IndexPersist>,
    dir: Option<(PathBuf, Vec<Offset>)>,
    epochs: Option<(PathBuf, LeaderEpochCheckpoint)>,
}

impl SyncPlan {
    fn build(st: &mut LogState, full: bool) -> SyncPlan {
        let target = st.log_end.offset();
        let active_base = st.active().base_offset;
        let mut logs = Vec::new();
        let mut indexes = Vec::new();
        for segment in st.segments.values().rev() {
            let active = segment.base_offset == active_base && !st.closing;
            let log_clean = segment.durable_size >= segment.written_size;
            let index_clean = segment.index_files.files.is_none();
            if log_clean && index_clean && !active {
                // Unsynced data only ever sits in a suffix of the segments.
                break;
            }
            if !log_clean {
                logs.push((
                    segment.base_offset,
                    segment.log.clone(),
                    segment.written_size,
                ));
            }
            if let Some(indices) = &segment.indexes
                && let Some(plan) = IndexPersist::plan(segment, indices, active, full, &st.config)
            {
                indexes.push(plan);
            }
        }
        let dir = std::mem::take(&mut st.dir_dirty)
            .then(|| (st.dir.clone(), std::mem::take(&mut st.entries_not_durable)));
        let epochs = std::mem::take(&mut st.epochs_dirty).then(|| {
            (
                st.dir.join(LEADER_EPOCH_CHECKPOINT),
                st.epochs.to_checkpoint(),
            )
        });
        SyncPlan {
            target,
            full,
            active_base,
            logs,
            indexes,
            dir,
            epochs,
        }
    }

    fn is_empty(&self) -> bool {
        self.logs.is_empty()
            && self.indexes.is_empty()
            && self.dir.is_none()
            && self.epochs.is_none()
    }

    async fn execute(&self) -> Result<()> {
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for (_, log, _) in &self.logs {
            let log = log.clone();
            jobs.push(Box::pin(async move {
                log.file
                    .fdatasync()
                    .await
                    .map_err(|e| StorageError::glommio("fdatasync", &log.path, e))
            }));
        }
        for plan in &self.indexes {
            jobs.push(Box::pin(plan.execute()));
        }
        if let Some((path, checkpoint)) = &self.epochs {
            let bytes = checkpoint.encode();
            jobs.push(Box::pin(fs::write_atomically(path, bytes)));
        }
        join_all(jobs).await?;
        if let Some((dir, _)) = &self.dir {
            fs::sync_dir(dir).await?;
        }
        Ok(())
    }

    fn apply(self, st: &mut LogState) {
        for (base, log, written) in &self.logs {
            if let Some(segment) = st.segments.get_mut(&base.0)
                && Rc::ptr_eq(&segment.log, log)
            {
                segment.durable_size = segment.durable_size.max(*written).min(segment.written_size);
            }
        }
        for plan in &self.indexes {
            if let Some(segment) = st.segments.get_mut(&plan.base_offset.0) {
                let same = segment
                    .index_files
                    .files
                    .as_ref()
                    .is_some_and(|f| Rc::ptr_eq(f, &plan.files));
                if same {
                    plan.apply(&mut segment.index_files);
                    // Trimmed (planned as inactive) and durable: close the files. A segment
                    // that rolled while this sync ran was planned as active and keeps them
                    // open for the next sync, which trims it.
                    if !plan.active && segment.durable_size >= segment.written_size {
                        segment.index_files.files = None;
                    }
                }
            }
        }
        if let Some((_, created)) = &self.dir {
            st.entries_not_durable.retain(|b| !created.contains(b));
        }
        // If the segment that was active rolled meanwhile, its index files were synced in
        // their active form (preallocated, without the final time index entry): the next
        // open must still recover it, so the recovery point stays at its base until the next
        // sync trims it.
        let target = self.target.min(st.log_end.offset());
        st.durable = st.durable.max(target);
        if self.full {
            let mut target = target;
            if st.active().base_offset != self.active_base {
                target = target.min(self.active_base);
            }
            st.recovery_point = st.recovery_point.max(target);
        }
    }
}

impl PartitionLog {
    /// Makes everything written so far durable together with the active segment's
    /// indices, and returns the new recovery point: the value the server writes to
    /// `recovery-point-offset-checkpoint` (Kafka does this every
    /// `log.flush.offset.checkpoint.interval.ms`).
    pub async fn checkpoint(&self) -> Result<Offset> {
        self.acquire_maintenance().await?;
        let result = sync_once(&self.inner, true).await;
        self.release_maintenance();
        result.map(|()| self.recovery_point())
    }

    pub(super) async fn apply_flush_policy(&self) -> Result<()> {
        let (flush_now, arm_timer) = {
            let mut st = self.inner.state.borrow_mut();
            let unflushed = (st.log_end.offset().0 - st.durable.0) as u64;
            let flush_now = unflushed >= st.config.flush_messages;
            let interval = st.config.flush_interval();
            let arm = match interval {
                Some(interval) if unflushed > 0 && !flush_now && !st.flush_timer_armed => {
                    st.flush_timer_armed = true;
                    Some(interval)
                }
                _ => None,
            };
            (flush_now, arm)
        };
        if let Some(interval) = arm_timer {
            let weak = Rc::downgrade(&self.inner);
            shards::rt::spawn(async move {
                shards::rt::sleep(interval).await;
                if let Some(inner) = Weak::upgrade(&weak) {
                    inner.state.borrow_mut().flush_timer_armed = false;
                    // A failure is recorded in the log's state and reported to the next
                    // caller.
                    let _ = PartitionLog { inner }.flush().await;
                }
            })
            .detach();
        }
        if flush_now {
            self.flush().await?;
        }
        Ok(())
    }

    /// Makes everything appended so far durable (group-committed with concurrent callers).
    pub async fn flush(&self) -> Result<()> {
        let end = self.inner.state.borrow().log_end.offset();
        if end == Offset::ZERO || end <= self.durable_offset() {
            return self.sync_metadata_if_dirty().await;
        }
        self.wait_durable(end.plus(-1)).await
    }

    /// Syncs directory entries and the epoch checkpoint when no data is waiting.
    async fn sync_metadata_if_dirty(&self) -> Result<()> {
        let dirty = {
            let st = self.inner.state.borrow();
            st.usable()?;
            st.dir_dirty || st.epochs_dirty
        };
        if !dirty {
            return Ok(());
        }
        self.acquire_maintenance().await?;
        self.run_sync_owned().await
    }

    /// Resolves once `offset` is covered by a completed fdatasync, starting one if none is
    /// running (so concurrent waiters share it). `offset` must have been appended.
    pub async fn wait_durable(&self, offset: Offset) -> Result<()> {
        loop {
            let durable = self.inner.durable.listen();
            let written = self.inner.written.listen();
            let mut start_sync = false;
            let wait_for_write = {
                let mut st = self.inner.state.borrow_mut();
                st.usable()?;
                if st.durable > offset {
                    return Ok(());
                }
                if offset >= st.next_offset {
                    return Err(StorageError::OffsetOutOfRange {
                        offset,
                        log_start: st.log_start,
                        log_end: st.log_end,
                    });
                }
                if st.log_end.offset() > offset {
                    if !st.maintenance_busy {
                        st.maintenance_busy = true;
                        start_sync = true;
                    }
                    false
                } else {
                    true
                }
            };
            if start_sync {
                shards::rt::spawn(run_sync(self.inner.clone(), false)).detach();
            }
            if wait_for_write {
                future::or(written, durable).await;
            } else {
                durable.await;
            }
        }
    }

    /// Waits until no sync or maintenance runs, then owns the index files and durability
    /// bookkeeping until [`Self::release_maintenance`].
    pub(super) async fn acquire_maintenance(&self) -> Result<()> {
        loop {
            let durable = self.inner.durable.listen();
            {
                let mut st = self.inner.state.borrow_mut();
                st.usable()?;
                if !st.maintenance_busy {
                    st.maintenance_busy = true;
                    return Ok(());
                }
            }
            durable.await;
        }
    }

    pub(super) fn release_maintenance(&self) {
        let restart = {
            let mut st = self.inner.state.borrow_mut();
            st.maintenance_busy = false;
            if st.sync_requested && st.failed.is_none() {
                st.sync_requested = false;
                st.maintenance_busy = true;
                true
            } else {
                false
            }
        };
        if restart {
            // Requested by a roll: a full sync, so the recovery point passes the rolled
            // segment once its indices are final.
            shards::rt::spawn(run_sync(self.inner.clone(), true)).detach();
        }
        self.inner.durable.notify_all();
        self.inner.watch.notify_all();
    }

    /// Runs one sync while already owning maintenance; releases it.
    async fn run_sync_owned(&self) -> Result<()> {
        let result = sync_once(&self.inner, false).await;
        self.release_maintenance();
        result
    }
}

/// One sync pass while the caller owns maintenance.
pub(super) async fn sync_once(inner: &Rc<Inner>, full: bool) -> Result<()> {
    let plan = {
        let mut st = inner.state.borrow_mut();
        st.usable()?;
        SyncPlan::build(&mut st, full)
    };
    if plan.is_empty() {
        // Nothing unsynced: the data is durable; so are the indices if every segment's
        // files are synced (a full plan would have included any that were not).
        let mut st = inner.state.borrow_mut();
        st.durable = st.durable.max(plan.target);
        if full {
            st.recovery_point = st.recovery_point.max(plan.target);
        }
        return Ok(());
    }
    let result = plan.execute().await;
    let mut st = inner.state.borrow_mut();
    match result {
        Ok(()) => {
            plan.apply(&mut st);
            st.syncs_completed += 1;
            st.check_invariants();
            Ok(())
        }
        Err(e) => {
            st.fail(&e);
            Err(e)
        }
    }
}

/// The group-commit task: one sync, then wake every waiter.
pub(super) async fn run_sync(inner: Rc<Inner>, full: bool) {
    let _ = sync_once(&inner, full).await;
    PartitionLog { inner }.release_maintenance();
}
