//! The physical limits a broker's figures are compared with, measured in the same run:
//! TCP throughput over loopback, and sequential writes to the data disk, with and without
//! an fdatasync per write.

use hdrhistogram::Histogram;
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
