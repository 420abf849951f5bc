//! The physical limits a broker's figures are compared with, measured in the same run:
//! TCP throughput over loopback, sequential writes to the data disk, with and without
//! an fdatasync per write, and the floor — the CPU a receiver with no protocol and no
//! indices spends taking a series' bytes off a socket, appending them to the disk and
//! answering each request with a reply the size of a produce response.

use hdrhistogram::Histogram;
use shards::cpus::CpuList;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

/// MB/s of `bytes` pushed through a loopback TCP connection in 1 MiB writes.
pub fn loopback_mb_per_s(bytes: u64) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        while let Ok(n) = socket.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let mut socket = TcpStream::connect(addr).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        socket.write_all(&chunk).unwrap();
        sent += chunk.len() as u64;
    }
    drop(socket);
    let received = reader.join().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    received as f64 / elapsed / 1e6
}

/// Bytes of the floor's reply to each chunk: about a one-partition produce response (v9,
/// with its size prefix and header), so the floor pays for answering a request as a
/// broker does at acks=1 — on loopback the answer's delivery to the client, its wake-up
/// included, is charged to the thread that sends it.
pub const FLOOR_REPLY_BYTES: usize = 64;

/// What receiving bytes over loopback TCP, appending them to a file and answering each
/// request costs at the least: one thread reads each `chunk` off the socket, writes it to
/// the file and sends `FLOOR_REPLY_BYTES` back; no parsing, no indices, no fdatasync.
#[derive(Debug, Clone)]
pub struct Floor {
    /// What received the bytes.
    pub runtime: FloorRuntime,
    /// Bytes sent, received and written.
    pub bytes: u64,
    /// Replies sent back (one per chunk) and received by the sender.
    pub replies: u64,
    /// Bytes per write (the sender's) and per append (the receiver's).
    pub chunk: usize,
    /// CPU time (user + system) of the receiving thread, microseconds.
    pub cpu_us: f64,
    /// Wall time from the connection's accept to the last append, seconds.
    pub seconds: f64,
}

impl Floor {
    pub fn cpu_us_per_mb(&self) -> f64 {
        self.cpu_us / (self.bytes as f64 / 1e6)
    }

    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }

    /// CPU per append (per request, in the series' terms).
    pub fn cpu_us_per_write(&self) -> f64 {
        self.cpu_us / (self.bytes as f64 / self.chunk as f64)
    }
}

/// CPU time (user + system) of the calling thread, microseconds.
fn thread_cpu_us() -> f64 {
    // SAFETY: getrusage only writes the struct it is given, which lives on this stack.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) != 0 {
            panic!("getrusage: {}", std::io::Error::last_os_error());
        }
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// Brings the page cache to the state a series starts in: every dirty page written back
/// (sync(2)) and, when this process may (as root) and `BENCH_DROP_CACHES` is not `0`, the
/// clean pages dropped, as `scripts/bench-run` does before a run. A floor measured right
/// after a series then neither waits for the series' writeback nor reclaims its pages
/// (measured here: a floor after a 4 GB series cost 1,295 µs of CPU per MB when it ran
/// first and 510 when it ran second, after the first had freed its pages).
pub fn settle_page_cache() {
    // SAFETY: sync has no preconditions and cannot fail.
    unsafe { libc::sync() };
    if std::env::var("BENCH_DROP_CACHES").is_ok_and(|v| v == "0") {
        return;
    }
    // Not writable unless root: then the floor runs on the cache as it is.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "1");
}

/// What takes the floor's bytes: a blocking thread (the floor every ratio divides by), or
/// one task on a glommio executor — the runtime corelog's shards run on, with its patches
/// — so that a report shows what the runtime alone costs beside the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorRuntime {
    Thread,
    Glommio,
}

/// Sends `bytes` over a loopback TCP connection in `chunk`-byte writes to a receiver that
/// appends each chunk to a file in `dir` (which should be on the broker's data disk) and
/// answers it with a reply, which a thread of the sender's drains; measures the
/// receiver. With `writes_per_s`, the writes follow that fixed schedule, so the receiver
/// waits for each one as a broker waits for each request at a fixed rate (and pays the
/// same wake-ups); without, they go as fast as the receiver takes them. With
/// `receiver_cpus`, the receiver runs on those CPUs only (the broker's, when the load
/// generator is kept off them).
pub fn floor(
    dir: &Path,
    bytes: u64,
    chunk: usize,
    writes_per_s: Option<f64>,
    receiver_cpus: Option<&CpuList>,
    runtime: FloorRuntime,
) -> Floor {
    let chunk = chunk.max(1);
    let path = dir.join(format!("corelog-bench-floor-{}", std::process::id()));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().unwrap();
    let file = std::fs::File::create(&path).expect("create the floor file");
    let receiver_cpus = receiver_cpus.cloned();
    let receiver = std::thread::spawn(move || {
        if let Some(cpus) = receiver_cpus {
            cpus.pin_current_thread()
                .unwrap_or_else(|e| panic!("floor receiver on CPUs {cpus}: {e}"));
        }
        let (socket, _) = listener.accept().unwrap();
        // As a broker does (Kafka's and corelog's alike): each reply leaves at once, and
        // its delivery to the sender, on loopback, is charged to the receiver.
        socket.set_nodelay(true).unwrap();
        match runtime {
            FloorRuntime::Thread => receive_blocking(socket, file, chunk),
            FloorRuntime::Glommio => receive_glommio(socket, file, chunk),
        }
    });
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.set_nodelay(true).unwrap();
    let mut replies = socket
        .try_clone()
        .expect("a second handle on the floor's socket");
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match replies.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("floor replies: {e}"),
            }
        }
    });
    let data = vec![0x5au8; chunk];
    let (mut sent, start) = (0u64, Instant::now());
    let mut writes = 0u64;
    while sent < bytes {
        if let Some(rate) = writes_per_s {
            let due = start + std::time::Duration::from_secs_f64(writes as f64 / rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            writes += 1;
        }
        let n = chunk.min((bytes - sent) as usize);
        socket.write_all(&data[..n]).unwrap();
        sent += n as u64;
    }
    // The receiver sees the end, answers the last chunk and closes; then the drain ends.
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let (received, cpu_us, elapsed) = receiver.join().expect("floor receiver");
    let reply_bytes = drain.join().expect("floor replies");
    let _ = std::fs::remove_file(&path);
    Floor {
        runtime,
        bytes: received,
        replies: reply_bytes / FLOOR_REPLY_BYTES as u64,
        chunk,
        cpu_us,
        seconds: elapsed.as_secs_f64(),
    }
}

/// Bytes received, the receiving thread's CPU microseconds and the time it took.
type Received = (u64, f64, std::time::Duration);

/// Reads a whole chunk (as a produce request arrives whole), unless the sender is done:
/// the bytes read, 0 at the end.
fn read_chunk_blocking(socket: &mut TcpStream, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match socket.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("floor receiver: {e}"),
        }
    }
    filled
}

fn receive_blocking(mut socket: TcpStream, mut file: std::fs::File, chunk: usize) -> Received {
    let (start, cpu_before) = (Instant::now(), thread_cpu_us());
    let mut buf = vec![0u8; chunk];
    let reply = [0u8; FLOOR_REPLY_BYTES];
    let mut total = 0u64;
    loop {
        let filled = read_chunk_blocking(&mut socket, &mut buf);
        if filled == 0 {
            break;
        }
        file.write_all(&buf[..filled])
            .expect("append to the floor file");
        socket.write_all(&reply).expect("reply from the floor");
        total += filled as u64;
    }
    (total, thread_cpu_us() - cpu_before, start.elapsed())
}

/// The same loop as one task on a glommio executor set up as a shard's is (the thread's
/// CPUs, a 10 ms preemption timer): reads through the executor's ring, and appends with
/// write(2) from the executor's thread, as a shard appends.
fn receive_glommio(socket: TcpStream, file: std::fs::File, chunk: usize) -> Received {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::os::fd::{FromRawFd, IntoRawFd};
    socket.set_nonblocking(true).unwrap();
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("floor")
        .io_memory(shards::memlock::MIN_IO_MEMORY_BYTES)
        .preempt_timer(std::time::Duration::from_millis(10))
        .make()
        .expect("a glommio executor for the floor");
    executor.run(async move {
        // SAFETY: the descriptor is the accepted socket's; its ownership moves here.
        let mut socket = unsafe { glommio::net::TcpStream::from_raw_fd(socket.into_raw_fd()) };
        let mut file = file;
        let (start, cpu_before) = (Instant::now(), thread_cpu_us());
        let mut buf = vec![0u8; chunk];
        let reply = [0u8; FLOOR_REPLY_BYTES];
        let mut total = 0u64;
        loop {
            let mut filled = 0;
            while filled < chunk {
                match socket.read(&mut buf[filled..]).await {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => panic!("floor receiver: {e}"),
                }
            }
            if filled == 0 {
                break;
            }
            file.write_all(&buf[..filled])
                .expect("append to the floor file");
            socket
                .write_all(&reply)
                .await
                .expect("reply from the floor");
            total += filled as u64;
        }
        (total, thread_cpu_us() - cpu_before, start.elapsed())
    })
}

/// What waking another thread costs here: the CPU (both threads' user and system time)
/// of one round trip, a byte each way over a pair of Unix sockets, each side asleep until
/// its byte arrives — with both threads on one CPU, and on two. A request that crosses
/// shards pays the second kind twice (the call and its reply); on a virtual machine it
/// can cost several times the first.
#[derive(Debug, Clone, Copy)]
pub struct WakeCost {
    pub same_cpu_us: f64,
    /// None on a machine with one CPU.
    pub cross_cpu_us: Option<f64>,
}

/// Measured on the first one or two of `cpus`.
pub fn wake_cost(cpus: &CpuList, round_trips: u32) -> WakeCost {
    let first = cpus.as_slice()[0];
    let same_cpu_us = wake_round_trip(first, first, round_trips);
    let cross_cpu_us = cpus
        .as_slice()
        .get(1)
        .map(|&second| wake_round_trip(first, second, round_trips));
    WakeCost {
        same_cpu_us,
        cross_cpu_us,
    }
}

/// CPU microseconds per round trip of two threads pinned to `a` and `b`.
fn wake_round_trip(a: usize, b: usize, round_trips: u32) -> f64 {
    let (near, far) = std::os::unix::net::UnixStream::pair().expect("a socket pair");
    let echo = std::thread::spawn(move || bounce(far, b, round_trips, false));
    let ping = std::thread::spawn(move || bounce(near, a, round_trips, true));
    let cpu = ping.join().expect("ping") + echo.join().expect("echo");
    cpu / round_trips as f64
}

/// One side of `wake_round_trip`, on `cpu`: sends a byte and waits for it back (`first`),
/// or waits for it and sends it back, `round_trips` times; returns its CPU microseconds.
fn bounce(
    mut stream: std::os::unix::net::UnixStream,
    cpu: usize,
    round_trips: u32,
    first: bool,
) -> f64 {
    CpuList::new(vec![cpu]).pin_current_thread().expect("pin");
    let before = thread_cpu_us();
    let mut byte = [7u8; 1];
    for _ in 0..round_trips {
        if first {
            stream.write_all(&byte).expect("send the byte");
        }
        stream.read_exact(&mut byte).expect("take the byte");
        if !first {
            stream.write_all(&byte).expect("send the byte back");
        }
    }
    thread_cpu_us() - before
}

/// Sequential write of `bytes` in `chunk`-byte writes into a file in `dir`.
pub struct DiskLimit {
    /// MB/s writing through the page cache, one fdatasync at the end.
    pub page_cache_mb_per_s: f64,
    /// MB/s with an fdatasync after every chunk.
    pub synced_mb_per_s: f64,
    /// fdatasync latency per chunk, microseconds.
    pub fdatasync_us: Histogram<u64>,
}

pub fn disk(dir: &Path, bytes: u64, chunk: usize) -> DiskLimit {
    let path = dir.join(format!("corelog-bench-limit-{}", std::process::id()));
    let data = vec![0xa5u8; chunk];
    let run = |sync_each: bool, hist: &mut Histogram<u64>| -> f64 {
        let mut file = std::fs::File::create(&path).expect("create the limit file");
        let start = Instant::now();
        let mut written = 0u64;
        while written < bytes {
            file.write_all(&data).unwrap();
            written += data.len() as u64;
            if sync_each {
                let t = Instant::now();
                file.sync_data().unwrap();
                hist.record(t.elapsed().as_micros() as u64).unwrap();
            }
        }
        file.sync_data().unwrap();
        let mb = written as f64 / start.elapsed().as_secs_f64() / 1e6;
        drop(file);
        let _ = std::fs::remove_file(&path);
        mb
    };
    let mut unused = Histogram::new(3).unwrap();
    let page_cache_mb_per_s = run(false, &mut unused);
    let mut fdatasync_us = Histogram::new(3).unwrap();
    // An fdatasync per chunk is slow; a tenth of the volume gives a stable figure.
    let synced_bytes = (bytes / 10).max(chunk as u64 * 64);
    let synced = {
        let bytes = synced_bytes;
        let mut file = std::fs::File::create(&path).unwrap();
        let start = Instant::now();
        let mut written = 0u64;
        while written < bytes {
            file.write_all(&data).unwrap();
            written += data.len() as u64;
            let t = Instant::now();
            file.sync_data().unwrap();
            fdatasync_us.record(t.elapsed().as_micros() as u64).unwrap();
        }
        let mb = written as f64 / start.elapsed().as_secs_f64() / 1e6;
        let _ = std::fs::remove_file(&path);
        mb
    };
    DiskLimit {
        page_cache_mb_per_s,
        synced_mb_per_s: synced,
        fdatasync_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_receives_every_byte_sent_and_costs_some_cpu() {
        let dir = tempfile::tempdir().unwrap();
        // Not a multiple of the chunk: the last write is short.
        let bytes = (2 << 20) + 123;
        let floor = floor(dir.path(), bytes, 1000, None, None, FloorRuntime::Thread);
        assert_eq!(floor.bytes, bytes);
        assert_eq!(floor.chunk, 1000);
        assert_eq!(floor.replies, bytes.div_ceil(1000), "one reply per chunk");
        assert!(floor.cpu_us > 0.0, "{floor:?}");
        assert!(floor.cpu_us_per_mb() > 0.0 && floor.mb_per_s() > 0.0);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file is removed"
        );
        // Paced: 200 writes at 2,000/s take about 0.1 s, and every byte still arrives.
        let paced = super::floor(
            dir.path(),
            200 * 100,
            100,
            Some(2000.0),
            None,
            FloorRuntime::Thread,
        );
        assert_eq!(paced.bytes, 200 * 100);
        assert_eq!(paced.replies, 200);
        assert!(paced.seconds >= 0.09, "{paced:?}");
        assert!(paced.cpu_us_per_write() > 0.0);
        // The receiver pinned to one CPU still takes every byte.
        let one = CpuList::new(vec![
            *CpuList::from_affinity().unwrap().as_slice().last().unwrap(),
        ]);
        let pinned = super::floor(
            dir.path(),
            100 * 100,
            100,
            None,
            Some(&one),
            FloorRuntime::Thread,
        );
        assert_eq!((pinned.bytes, pinned.replies), (100 * 100, 100));
    }

    #[test]
    fn a_wake_up_round_trip_costs_some_cpu_on_one_cpu_and_on_two() {
        let cpus = CpuList::from_affinity().unwrap();
        let cost = wake_cost(&cpus, 200);
        assert!(cost.same_cpu_us > 0.0, "{cost:?}");
        assert_eq!(cost.cross_cpu_us.is_some(), cpus.len() > 1, "{cost:?}");
        assert!(cost.cross_cpu_us.is_none_or(|us| us > 0.0), "{cost:?}");
    }

    #[test]
    fn the_glommio_floor_receives_every_byte_paced_and_answers_each_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = 300 * 150 + 7;
        let floor = floor(
            dir.path(),
            bytes,
            150,
            Some(3000.0),
            None,
            FloorRuntime::Glommio,
        );
        assert_eq!(floor.runtime, FloorRuntime::Glommio);
        assert_eq!(floor.bytes, bytes);
        assert_eq!(floor.replies, bytes.div_ceil(150), "one reply per chunk");
        assert!(
            floor.seconds >= 0.09,
            "paced at 3,000 writes a second: {floor:?}"
        );
        assert!(floor.cpu_us_per_write() > 0.0, "{floor:?}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file is removed"
        );
    }
}
