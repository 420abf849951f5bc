//! A TCP proxy on loopback between clients and a broker that can drop every connection
//! it carries, as a network failure would: requests already forwarded may have reached
//! the broker while their responses are lost, so clients must retry them.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: AtomicU16,
    /// Drop the connections after this many bytes from clients (0: never).
    drop_every: AtomicU64,
    forwarded: AtomicU64,
    drops: AtomicUsize,
    max_drops: AtomicUsize,
    stopped: AtomicBool,
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
}

impl Proxy {
    /// Listens on a free loopback port; connections are forwarded once `forward_to` names
    /// the broker's port (so the broker can advertise the proxy's port).
    pub fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream: AtomicU16::new(0),
            drop_every: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            drops: AtomicUsize::new(0),
            max_drops: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let upstream = accepting.upstream.load(Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                accepting
                    .open
                    .lock()
                    .unwrap()
                    .push((client.try_clone().unwrap(), server.try_clone().unwrap()));
                let up = accepting.clone();
                let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(c, s, Some(up)));
                std::thread::spawn(move || pump(server, client, None));
            }
        });
        Proxy { port, shared }
    }

    /// Forwards connections to the broker listening on `port`.
    pub fn forward_to(&self, port: u16) {
        self.shared.upstream.store(port, Ordering::SeqCst);
    }

    /// From now on, drop every open connection each time clients have sent `bytes` more,
    /// `times` times at most (a client resending its backlog after each drop must get
    /// through eventually).
    pub fn drop_connections_every(&self, bytes: u64, times: usize) {
        self.shared.max_drops.store(times, Ordering::SeqCst);
        self.shared.drop_every.store(bytes, Ordering::SeqCst);
    }

    /// Stops dropping connections.
    pub fn stop_dropping(&self) {
        self.shared.drop_every.store(0, Ordering::SeqCst);
    }

    /// How many times the connections were dropped.
    pub fn drops(&self) -> usize {
        self.shared.drops.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        drop_all(&self.shared);
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_millis(100),
        );
    }
}

fn drop_all(shared: &Shared) {
    for (client, server) in shared.open.lock().unwrap().drain(..) {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
}

/// Copies `from` to `to` until either side ends; counts client bytes when `counted`.
fn pump(mut from: TcpStream, mut to: TcpStream, counted: Option<Arc<Shared>>) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(shared) = &counted {
            let every = shared.drop_every.load(Ordering::SeqCst);
            let total = shared.forwarded.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if every > 0
                && total / every != (total - n as u64) / every
                && shared.drops.load(Ordering::SeqCst) < shared.max_drops.load(Ordering::SeqCst)
            {
                shared.drops.fetch_add(1, Ordering::SeqCst);
                drop_all(shared);
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
