//! Test and benchmark support for the storage layer: a glommio executor for a test body,
//! and the crash simulation of the property tests.
//!
//! Owns [`block_on`] and [`executor`] (one unpinned `LocalExecutor` with a small `io_memory`, so that
//! several test threads fit in an 8 MiB `ulimit -l`) and [`simulate_crash`], which turns a
//! log's files into what a power failure could leave: every byte covered by a completed
//! fdatasync is kept, every other byte may be lost from a random point on, torn in the
//! middle of a write, zeroed (a preallocated region that never reached the disk), replaced
//! by garbage from a point on (a sector being written when power failed) or, for a file
//! created since the last directory sync, the file may vanish altogether. Single flipped
//! bits inside written data are media errors, not crashes, and are not simulated: Kafka's
//! CRC deliberately leaves the base offset and leader epoch uncovered.
//! Not used by the broker itself.

use std::future::Future;
use std::path::PathBuf;

use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};

/// Locked memory per test executor: glommio pins 3 × this.
pub const TEST_IO_MEMORY: usize = 512 << 10;

/// A glommio executor on the calling thread, for tests and benchmarks that run many
/// futures one after the other (`executor().run(future)`).
pub fn executor() -> LocalExecutor {
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("storage-test")
        .io_memory(TEST_IO_MEMORY)
        .make()
        .expect("start a glommio executor (io_uring and locked memory available?)")
}

/// Runs `future` to completion on a fresh glommio executor on the calling thread.
pub fn block_on<T>(future: impl Future<Output = T>) -> T {
    executor().run(future)
}

/// What a log reports about one of its files for the crash simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDurability {
    pub path: PathBuf,
    /// Bytes at the start of the file covered by a completed fdatasync.
    pub durable_len: u64,
    /// Whether the file's directory entry is covered by a directory fsync.
    pub entry_durable: bool,
}

/// How a crash treats the bytes of one file past its durable length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailFate {
    /// Everything reached the disk.
    Kept,
    /// The file ends `keep` bytes after the durable length (a torn write when this falls
    /// inside a batch).
    TruncatedAfter(u64),
    /// The bytes after `keep` read as zeros (never written back; the length survived).
    ZeroedAfter(u64),
    /// The bytes after `keep` are garbage (a sector that was being written when power
    /// failed), generated from `seed`.
    GarbageAfter { keep: u64, seed: u64 },
    /// The file is gone (its creation was not durable).
    Vanished,
}

/// Applies `fate(file, unflushed_len)` to every file of the report, modelling a power
/// failure. Bytes below `durable_len` are never touched.
pub fn simulate_crash(
    files: &[FileDurability],
    mut fate: impl FnMut(&FileDurability, u64) -> TailFate,
) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    for file in files {
        let Ok(meta) = std::fs::metadata(&file.path) else {
            continue;
        };
        let len = meta.len();
        let unflushed = len.saturating_sub(file.durable_len);
        match fate(file, unflushed) {
            TailFate::Kept => {}
            TailFate::Vanished => {
                assert!(
                    !file.entry_durable && file.durable_len == 0,
                    "only a file with nothing durable can vanish: {file:?}"
                );
                std::fs::remove_file(&file.path)?;
            }
            TailFate::TruncatedAfter(keep) => {
                let f = std::fs::OpenOptions::new().write(true).open(&file.path)?;
                f.set_len(file.durable_len + keep.min(unflushed))?;
            }
            TailFate::ZeroedAfter(keep) => {
                let from = file.durable_len + keep.min(unflushed);
                let mut f = std::fs::OpenOptions::new().write(true).open(&file.path)?;
                f.seek(SeekFrom::Start(from))?;
                f.write_all(&vec![0u8; (len - from) as usize])?;
            }
            TailFate::GarbageAfter { keep, seed } => {
                let from = file.durable_len + keep.min(unflushed);
                let mut state = seed | 1;
                let garbage: Vec<u8> = (from..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                let mut f = std::fs::OpenOptions::new().write(true).open(&file.path)?;
                f.seek(SeekFrom::Start(from))?;
                f.write_all(&garbage)?;
            }
        }
    }
    Ok(())
}
