//! Small asynchronous file-system helpers for the storage layer, off the shard's thread or
//! on io_uring — except small appends (`append_at`), written from the shard's thread
//! straight from the requests' buffers.
//!
//! Owns: whole-file reads, atomic small-file replacement (write a `.tmp`, fdatasync, rename,
//! fsync the directory, as Kafka does for its checkpoint files), directory listing,
//! creation and file removal. Syscalls io_uring cannot do (readdir, unlink, mkdir -p) run
//! on glommio's blocking thread pool through `spawn_blocking`, so the shard never blocks.
//! Also runs several such jobs at once (`join_all`, first error wins). Runs on the shard
//! that owns the partition whose files it touches.

use std::cell::Cell;
use std::io::IoSlice;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;
use glommio::io::{BufferedFile, Directory, OpenOptions};

use super::error::{Result, StorageError};

/// Runs a blocking file-system call on the shard's blocking pool.
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    shards::rt::offload(f).await
}

/// Reads a whole file; `None` if it does not exist.
pub async fn read_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match BufferedFile::open(path).await {
        Ok(file) => file,
        Err(e) => {
            let e: std::io::Error = e.into();
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(StorageError::io("open", path, e));
        }
    };
    let size = file
        .file_size()
        .await
        .map_err(|e| StorageError::glommio("stat", path, e))?;
    let bytes = read_range(&file, path, 0, size as usize).await?;
    file.close()
        .await
        .map_err(|e| StorageError::glommio("close", path, e))?;
    Ok(Some(bytes))
}

/// Reads `len` bytes at `position` (fewer if the file ends first).
pub async fn read_range(
    file: &BufferedFile,
    path: &Path,
    position: u64,
    len: usize,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let want = (len - out.len()).min(8 << 20);
        let chunk = file
            .read_at(position + out.len() as u64, want)
            .await
            .map_err(|e| StorageError::glommio("read", path, e))?;
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Writes all of `bytes` at `position`. glommio consumes the buffer, so a short write
/// (which for a regular file means the disk filled up or the file hit a size limit) cannot
/// be retried and is reported as the environment failure it is.
pub async fn write_all_at(
    file: &BufferedFile,
    path: &Path,
    bytes: Vec<u8>,
    position: u64,
) -> Result<()> {
    let len = bytes.len();
    let written = file
        .write_at(bytes, position)
        .await
        .map_err(|e| StorageError::glommio("write", path, e))?;
    if written != len {
        return Err(StorageError::io(
            "write",
            path,
            std::io::Error::other(format!(
                "short write at {position}: {written} of {len} bytes (disk full?)"
            )),
        ));
    }
    Ok(())
}

/// The bytes of one append write, in order: small pieces copied into one buffer, large
/// ones held by reference to the request that carried them (no copy) until written.
#[derive(Default)]
pub struct AppendBytes {
    copied: Vec<u8>,
    parts: Vec<Part>,
    len: usize,
}

enum Part {
    /// A range of `AppendBytes::copied`.
    Copied(Range<usize>),
    Shared(Bytes),
}

impl AppendBytes {
    /// An empty gather whose copy buffer holds `copied` bytes before it grows.
    pub fn with_capacity(copied: usize) -> AppendBytes {
        AppendBytes {
            copied: Vec::with_capacity(copied),
            ..AppendBytes::default()
        }
    }

    /// Bytes gathered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Pieces the write hands the kernel (adjacent copies are one piece).
    pub fn pieces(&self) -> usize {
        self.parts.len()
    }

    /// Appends a copy of `bytes` and returns it, to be rewritten in place.
    pub fn copy(&mut self, bytes: &[u8]) -> &mut [u8] {
        let start = self.copied.len();
        self.copied.extend_from_slice(bytes);
        let end = self.copied.len();
        match self.parts.last_mut() {
            Some(Part::Copied(range)) if range.end == start => range.end = end,
            _ => self.parts.push(Part::Copied(start..end)),
        }
        self.len += bytes.len();
        &mut self.copied[start..end]
    }

    /// Appends `bytes` by reference.
    pub fn share(&mut self, bytes: Bytes) {
        self.len += bytes.len();
        self.parts.push(Part::Shared(bytes));
    }

    fn slices(&self) -> Vec<IoSlice<'_>> {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Copied(range) => IoSlice::new(&self.copied[range.clone()]),
                Part::Shared(bytes) => IoSlice::new(bytes),
            })
            .collect()
    }
}

/// Appends up to this many bytes (a coalesced write at most) are written with pwritev(2)
/// from the shard's thread: at the 1 KiB workload's peak, writing up to 1 MiB inline cost
/// 0.95x the broker CPU per MB of handing those above 64 KiB to the blocking pool.
const INLINE_WRITE_MAX: usize = 1 << 20;
/// An inline write slower than this (the kernel throttled dirty pages, or waited for the
/// journal) sends this shard's appends to the blocking pool for `INLINE_WRITE_PAUSE`, and
/// so does each write in the pool that is still this slow: the shard writes inline again
/// once the pool's writes have been quick for that long.
const INLINE_WRITE_SLOW: Duration = Duration::from_millis(1);
const INLINE_WRITE_PAUSE: Duration = Duration::from_millis(100);
/// From this size on, an inline write also counts the shard thread's voluntary context
/// switches, and is slow only if it slept: a write of this size takes tens of
/// microseconds, long enough for the scheduler to preempt the shard mid-write, and the
/// blocking pool does not help a shard that was merely preempted (at the 1 KiB workload's
/// peak, with every slow write counted, each shard spent most of its time in the pool, at
/// 1.14x the CPU per MB of writing inline). Below it, a syscall more per append would
/// cost more than the rare preempted write does.
const INLINE_WRITE_COUNT_SLEEPS: usize = 64 * 1024;

thread_local! {
    /// Per shard: until when appends go to the blocking pool after a slow inline write.
    static INLINE_PAUSED_UNTIL: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Writes all of an append's `bytes` at `position` with one pwritev(2) (per `IOV_MAX`
/// pieces), from the shard's thread unless huge, else from the blocking pool.
///
/// ext4 refuses non-blocking buffered writes, so io_uring would hand every buffered write
/// to one of its worker threads and wake the shard when it completes: two context switches
/// per append, most of the CPU a small produce request costs. Copying into the page cache
/// takes microseconds for a few KiB and about a hundred for a megabyte, so appends are
/// written inline; a larger one, and all of this shard's appends for a while after an
/// inline write was slow (the kernel throttles writers when dirty pages pile up), go to the
/// blocking pool so the shard keeps serving. Neither path copies the bytes in user space:
/// the kernel reads them where the request left them.
pub async fn append_at(
    file: &BufferedFile,
    path: &Path,
    bytes: AppendBytes,
    position: u64,
) -> Result<()> {
    let now = Instant::now();
    let paused = INLINE_PAUSED_UNTIL.with(|until| until.get().is_some_and(|t| now < t));
    let len = bytes.len();
    if len > INLINE_WRITE_MAX || paused {
        // The pool's thread writes through its own descriptor: if this task is dropped
        // mid-write and the file closed, the number cannot be reused under the write.
        // SAFETY: `file` keeps its descriptor open for this call.
        let fd = unsafe { BorrowedFd::borrow_raw(file.as_raw_fd()) }
            .try_clone_to_owned()
            .map_err(|e| StorageError::io("write", path, e))?;
        let (written, took) = blocking(move || {
            let start = Instant::now();
            let written = pwritev_all(fd.as_raw_fd(), &mut bytes.slices(), position);
            (written, start.elapsed())
        })
        .await;
        if paused && took > INLINE_WRITE_SLOW {
            pause_inline_writes(Instant::now());
        }
        return written.map_err(|e| StorageError::io("write", path, e));
    }
    let sleeps_before = (len >= INLINE_WRITE_COUNT_SLEEPS).then(voluntary_switches);
    pwritev_all(file.as_raw_fd(), &mut bytes.slices(), position)
        .map_err(|e| StorageError::io("write", path, e))?;
    let took = now.elapsed();
    let slept = || match sleeps_before {
        Some(before) => voluntary_switches() != before,
        None => true,
    };
    if took > INLINE_WRITE_SLOW && slept() {
        pause_inline_writes(now + took);
        tracing::debug!(
            "an inline append of {len} bytes to {} took {took:?}: appends on this shard go \
             to the blocking pool for {INLINE_WRITE_PAUSE:?}",
            path.display()
        );
    }
    Ok(())
}

/// Sends this shard's appends to the blocking pool for `INLINE_WRITE_PAUSE` from `now`.
fn pause_inline_writes(now: Instant) {
    INLINE_PAUSED_UNTIL.with(|until| until.set(Some(now + INLINE_WRITE_PAUSE)));
}

/// How many times this thread gave up its CPU to wait (getrusage(2), `ru_nvcsw`).
fn voluntary_switches() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_THREAD) cannot fail on Linux");
    usage.ru_nvcsw
}

/// The most pieces one pwritev(2) takes (`IOV_MAX` on Linux).
const IOV_MAX: usize = 1024;

/// pwritev(2) until every byte of `slices` is written; a write that makes no progress
/// (disk full, file size limit) is an error.
fn pwritev_all(
    fd: RawFd,
    mut slices: &mut [IoSlice<'_>],
    mut position: u64,
) -> std::io::Result<()> {
    while !slices.is_empty() {
        let count = slices.len().min(IOV_MAX);
        // SAFETY: `IoSlice` is ABI-compatible with `iovec`; the first `count` slices are
        // live and pwritev only reads them.
        let n = unsafe {
            libc::pwritev(
                fd,
                slices.as_ptr().cast(),
                count as libc::c_int,
                position as libc::off_t,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            let left: usize = slices.iter().map(|s| s.len()).sum();
            return Err(std::io::Error::other(format!(
                "short write at {position}: {left} bytes left (disk full?)"
            )));
        }
        IoSlice::advance_slices(&mut slices, n as usize);
        position += n as u64;
    }
    Ok(())
}

/// Opens (creating if needed) a file for reading and writing through the page cache.
pub async fn open_read_write(path: &Path, create: bool) -> Result<BufferedFile> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .buffered_open(path)
        .await
        .map_err(|e| StorageError::glommio("open", path, e))
}

/// Replaces `path` with `bytes` atomically and durably: write `<path>.tmp`, fdatasync it,
/// rename it over `path`, fsync the directory.
pub async fn write_atomically(path: &Path, bytes: Vec<u8>) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = BufferedFile::create(&tmp)
        .await
        .map_err(|e| StorageError::glommio("create", &tmp, e))?;
    if !bytes.is_empty() {
        write_all_at(&file, &tmp, bytes, 0).await?;
    }
    file.fdatasync()
        .await
        .map_err(|e| StorageError::glommio("fdatasync", &tmp, e))?;
    file.rename(path)
        .await
        .map_err(|e| StorageError::glommio("rename", &tmp, e))?;
    file.close()
        .await
        .map_err(|e| StorageError::glommio("close", path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new("."))).await
}

/// fsyncs a directory so that file creations, renames and removals in it are durable.
pub async fn sync_dir(dir: &Path) -> Result<()> {
    let handle = Directory::open(dir)
        .await
        .map_err(|e| StorageError::glommio("open directory", dir, e))?;
    handle
        .sync()
        .await
        .map_err(|e| StorageError::glommio("sync directory", dir, e))?;
    handle
        .close()
        .await
        .map_err(|e| StorageError::glommio("close directory", dir, e))
}

/// The names and sizes of the regular files in `dir`.
pub async fn list_dir(dir: &Path) -> Result<Vec<(String, u64)>> {
    let owned = dir.to_owned();
    blocking(move || -> std::io::Result<Vec<(String, u64)>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&owned)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if !meta.is_file() {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                files.push((name, meta.len()));
            }
        }
        Ok(files)
    })
    .await
    .map_err(|e| StorageError::io("list directory", dir, e))
}

/// `mkdir -p`, made durable: when `dir` did not exist, its entry in its parent is
/// fsynced before this returns (else a power loss could drop the directory, and with it
/// every record acknowledged into it).
pub async fn create_dir_durably(dir: &Path) -> Result<()> {
    let owned = dir.to_owned();
    let created = blocking(move || {
        if owned.is_dir() {
            return Ok(false);
        }
        std::fs::create_dir_all(&owned).map(|()| true)
    })
    .await
    .map_err(|e| StorageError::io("create directory", dir, e))?;
    if created && let Some(parent) = dir.parent() {
        sync_dir(parent).await?;
    }
    Ok(())
}

/// The suffix of a directory being removed (Kafka's `-delete`): one left behind by a
/// crash is removed at the next start.
pub const DELETE_SUFFIX: &str = "-delete";

/// Removes a directory the way Kafka does: renamed to `<name>.<random>-delete` (so its
/// name is free at once, durably: the parent is fsynced), then removed.
pub async fn discard_dir(dir: &Path) -> Result<()> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let doomed = dir.with_file_name(format!(
        "{name}.{}{DELETE_SUFFIX}",
        crate::protocol::wire::Uuid::random()
            .to_string()
            .replace('-', "_")
    ));
    let (from, to) = (dir.to_owned(), doomed.clone());
    blocking(move || std::fs::rename(from, to))
        .await
        .map_err(|e| StorageError::io("rename", dir, e))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent).await?;
    }
    let removing = doomed.clone();
    blocking(move || std::fs::remove_dir_all(removing))
        .await
        .map_err(|e| StorageError::io("remove directory", &doomed, e))
}

/// `mkdir -p`.
pub async fn create_dir_all(dir: &Path) -> Result<()> {
    let owned = dir.to_owned();
    blocking(move || std::fs::create_dir_all(owned))
        .await
        .map_err(|e| StorageError::io("create directory", dir, e))
}

/// Renames `from` to `to`; false if `from` does not exist.
pub async fn rename_if_exists(from: &Path, to: &Path) -> Result<bool> {
    let (source, target) = (from.to_owned(), to.to_owned());
    match blocking(move || std::fs::rename(source, target)).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io("rename", from, e)),
    }
}

/// Removes a file; a file that is already gone is not an error.
pub async fn remove_file(path: &Path) -> Result<()> {
    let owned = path.to_owned();
    match blocking(move || std::fs::remove_file(owned)).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

/// Runs `futures` concurrently; the first error wins (all still run to completion).
pub(crate) type Job<'a> = std::pin::Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

pub(crate) async fn join_all(futures: Vec<Job<'_>>) -> Result<()> {
    let mut pending: Vec<_> = futures.into_iter().map(Some).collect();
    let mut first_error = None;
    future::poll_fn(|cx| {
        let mut all_done = true;
        for slot in pending.iter_mut() {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(result) => {
                        if let Err(e) = result {
                            first_error.get_or_insert(e);
                        }
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::voluntary_switches;

    #[test]
    fn a_sleep_is_a_voluntary_context_switch_and_a_busy_loop_is_not_one() {
        let before = voluntary_switches();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let after_sleep = voluntary_switches();
        assert!(after_sleep > before, "{before} → {after_sleep}");
        // A busy loop may be preempted (an involuntary switch), never counted here.
        let mut x = 0u64;
        for i in 0..100_000u64 {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        assert_eq!(voluntary_switches(), after_sleep);
    }
}
