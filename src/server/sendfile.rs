//! Sending a range of a segment file to a client socket without copying it through user
//! space, and without ever blocking the shard on a disk read.
//!
//! - Hot path: the range is entirely in the page cache (checked with `cachestat`, Linux
//!   6.5+, or `mincore` on older kernels) → `sendfile(2)` from the file to the socket.
//!   glommio sockets are blocking descriptors, so the socket is made non-blocking for
//!   the duration of the call.
//! - Cold path: some page is not cached → the range is read with io_uring (glommio's
//!   buffered read) and written through glommio's socket write path. This is what keeps
//!   a lagging consumer from stalling every connection on the shard (Kafka's KAFKA-7504).
//! - A full socket buffer (EAGAIN) sends the next chunk through the copying path, whose
//!   write waits for the socket to drain; sendfile resumes after it.
//!
//! Runs on the shard that owns the connection. Bytes sent by each path are counted.

use crate::partition::SegmentRange;
use crate::shard::{SendStats, bump};
use futures_lite::AsyncWriteExt;
use glommio::io::BufferedFile;
use glommio::net::TcpStream;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};

/// Largest chunk read into memory at once on the copying path.
const COPY_CHUNK: usize = 256 * 1024;

/// A readable file: a fetched segment range, or (in tests) any glommio file.
pub trait RangeSource {
    fn raw_fd(&self) -> RawFd;
    /// Reads `len` bytes at `position` with io_uring.
    fn read_at(&self, position: u64, len: usize) -> impl Future<Output = io::Result<Vec<u8>>>;
}

impl RangeSource for BufferedFile {
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }

    async fn read_at(&self, position: u64, len: usize) -> io::Result<Vec<u8>> {
        let read = BufferedFile::read_at(self, position, len)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(read.to_vec())
    }
}

impl RangeSource for SegmentRange {
    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The cold path: an io_uring read through a further duplicate of the descriptor
    /// (glommio's file owns and closes what it is given).
    async fn read_at(&self, position: u64, len: usize) -> io::Result<Vec<u8>> {
        let fd = self.fd.try_clone()?;
        // SAFETY: `fd` is a fresh duplicate nobody else owns; the file closes it.
        let file = unsafe { BufferedFile::from_raw_fd(fd.into_raw_fd()) };
        let read = RangeSource::read_at(&file, position, len).await;
        let _ = file.close().await;
        read
    }
}

/// Sends `len` bytes of `file` starting at `position` to `stream`.
pub async fn send_range(
    stream: &mut TcpStream,
    file: &impl RangeSource,
    mut position: u64,
    len: usize,
    stats: &SendStats,
) -> io::Result<()> {
    let end = position + len as u64;
    let resident = is_resident(file.raw_fd(), position, len);
    if !resident {
        bump(&stats.cold_ranges, 1);
    }
    while position < end {
        let remaining = (end - position) as usize;
        if resident {
            match sendfile_nonblocking(stream.as_raw_fd(), file.raw_fd(), position, remaining) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("segment file ended before offset {end} (sent up to {position})"),
                    ));
                }
                Ok(sent) => {
                    bump(&stats.sendfile_calls, 1);
                    bump(&stats.sendfile_bytes, sent as u64);
                    position += sent as u64;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => bump(&stats.socket_full, 1),
                Err(e) => return Err(e),
            }
        }
        // Cold range, or a full socket: copy one chunk; glommio's write waits for room.
        let chunk = remaining.min(COPY_CHUNK);
        let data = file.read_at(position, chunk).await?;
        if data.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("segment file ended before offset {end} (read up to {position})"),
            ));
        }
        stream.write_all(&data).await?;
        bump(&stats.copied_bytes, data.len() as u64);
        position += data.len() as u64;
    }
    Ok(())
}

/// One `sendfile` with the socket non-blocking for the call.
fn sendfile_nonblocking(
    socket: RawFd,
    file: RawFd,
    position: u64,
    len: usize,
) -> io::Result<usize> {
    let _nonblocking = NonBlocking::set(socket)?;
    let mut offset = position as libc::off_t;
    // SAFETY: both descriptors are open for the duration of the call; `offset` is a
    // valid off_t the kernel updates.
    let sent = unsafe { libc::sendfile(socket, file, &mut offset, len) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// Restores the descriptor's flags when dropped.
struct NonBlocking {
    fd: RawFd,
    flags: libc::c_int,
}

impl NonBlocking {
    fn set(fd: RawFd) -> io::Result<NonBlocking> {
        // SAFETY: fcntl on an open descriptor; failure is reported through errno.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(NonBlocking { fd, flags })
    }
}

impl Drop for NonBlocking {
    fn drop(&mut self) {
        // SAFETY: restores the flags read in `set` on the same open descriptor.
        unsafe { libc::fcntl(self.fd, libc::F_SETFL, self.flags) };
    }
}

/// Whether every page of the range is in the page cache. Errs on the side of "no": a
/// wrong "no" costs a copy, a wrong "yes" could block the shard.
pub fn is_resident(fd: RawFd, position: u64, len: usize) -> bool {
    if len == 0 {
        return true;
    }
    match cachestat_resident(fd, position, len) {
        Some(resident) => resident,
        None => mincore_resident(fd, position, len).unwrap_or(false),
    }
}

#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SYS_CACHESTAT: libc::c_long = 451;

/// `cachestat(2)`: counts cached pages of the range in one call. `None` when the kernel
/// does not have it.
fn cachestat_resident(fd: RawFd, position: u64, len: usize) -> Option<bool> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let page = page_size();
        let first = position / page;
        let last = (position + len as u64 - 1) / page;
        let range = CachestatRange {
            off: first * page,
            len: (last - first + 1) * page,
        };
        let mut stat = Cachestat::default();
        // SAFETY: the kernel reads `range` and writes `stat`, both valid for the call.
        let rc = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                fd,
                &range as *const CachestatRange,
                &mut stat as *mut Cachestat,
                0u32,
            )
        };
        let pages = last - first + 1;
        if rc == 0 {
            return Some(stat.nr_cache >= pages);
        }
        None
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (fd, position, len);
        None
    }
}

/// `mincore(2)` over a temporary read-only mapping of the range.
fn mincore_resident(fd: RawFd, position: u64, len: usize) -> io::Result<bool> {
    let page = page_size();
    let start = position / page * page;
    let map_len = (position + len as u64 - start) as usize;
    // SAFETY: a fresh private read-only mapping of an open file; unmapped below.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            start as libc::off_t,
        )
    };
    if addr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let pages = map_len.div_ceil(page as usize);
    let mut vec = vec![0u8; pages];
    // SAFETY: `addr..addr+map_len` is the mapping made above; `vec` has one byte per page.
    let rc = unsafe { libc::mincore(addr, map_len, vec.as_mut_ptr()) };
    let result = if rc == 0 {
        Ok(vec.iter().all(|v| v & 1 == 1))
    } else {
        Err(io::Error::last_os_error())
    };
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(addr, map_len) };
    result
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 { size as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn run<T: Send + 'static>(f: impl AsyncFnOnce() -> T + Send + 'static) -> T {
        glommio::LocalExecutorBuilder::default()
            .io_memory(shards::memlock::MIN_IO_MEMORY_BYTES)
            .spawn(move || async move { f().await })
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn a_freshly_written_file_is_resident_and_a_dropped_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        assert!(is_resident(file.as_raw_fd(), 0, 1 << 20));
        assert!(mincore_resident(file.as_raw_fd(), 4095, 10).unwrap());
        file.sync_all().unwrap();
        // SAFETY: advisory call on an open descriptor.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        // The kernel may keep pages it is using; only check that the answer is no
        // longer "all resident" when it dropped them.
        let after = is_resident(file.as_raw_fd(), 0, 1 << 20);
        let mincore_after = mincore_resident(file.as_raw_fd(), 0, 1 << 20).unwrap();
        assert_eq!(after, mincore_after, "cachestat and mincore agree");
    }

    /// The receiver reads slowly at first so that the sender's socket buffer fills and
    /// the copying path has to take over, then sendfile resumes.
    #[test]
    fn ranges_arrive_intact_through_a_full_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let data: Vec<u8> = (0..6_000_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let expected = data[1000..1000 + 5_000_000].to_vec();
        let reader = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let mut got = Vec::new();
            socket.read_to_end(&mut got).unwrap();
            got
        });
        let (sendfile_bytes, socket_full) = run(async move || {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let file = BufferedFile::open(&path).await.unwrap();
            let stats = SendStats::default();
            send_range(&mut stream, &file, 1000, 5_000_000, &stats)
                .await
                .unwrap();
            drop(stream);
            (stats.sendfile_bytes.get(), stats.socket_full.get())
        });
        assert_eq!(reader.join().unwrap(), expected);
        assert!(sendfile_bytes > 0, "sendfile carried part of the range");
        assert!(socket_full > 0, "the socket filled up at least once");
    }
}
