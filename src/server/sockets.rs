//! What the broker holds exclusively for its lifetime: its listening sockets and its log
//! directories. Taken by the main thread before any shard starts, so that a second broker
//! on the same port or the same `log.dirs` is refused at start-up with a clear message
//! instead of splitting clients or data with the first.
//!
//! Each listener (and the metrics endpoint) is bound once, without `SO_REUSEPORT`: the
//! kernel refuses the address to anyone else while the broker runs. Every shard accepts
//! on its own duplicate of that one socket, so whichever shard is ready takes the next
//! connection. Each log directory is locked with `flock` on its `.lock` file, as Kafka
//! does; the lock goes with the process, however it ends.

use crate::config::BrokerConfig;
use crate::config::Listener;
use std::fs::File;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, IntoRawFd};

/// Kafka's name for the lock file of a log directory.
pub const LOCK_FILE: &str = ".lock";

/// How long start-up waits for a port in use to be released.
const PORT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How many connections may wait for `accept` on a listener.
const BACKLOG: i32 = 1024;

/// The sockets and locks of a running broker; dropping it releases them.
#[derive(Debug)]
pub struct Exclusive {
    /// One bound, listening socket per configured listener, in `listeners` order.
    pub listeners: Vec<(Listener, TcpListener)>,
    /// The metrics endpoint's socket and the address it was configured with.
    pub metrics: Option<(String, TcpListener)>,
    /// The process's open-files limit (RLIMIT_NOFILE), raised to its hard limit.
    pub open_files: u64,
    /// The `.lock` file of each log directory, locked.
    _locks: Vec<File>,
}

impl Exclusive {
    /// Locks every log directory (creating it if needed), then binds every listener and
    /// the metrics endpoint. Errors say what is in the way.
    pub fn take(config: &BrokerConfig) -> Result<Exclusive, String> {
        let open_files = raise_open_files_limit();
        if open_files < 2 * RESERVED_DESCRIPTORS {
            return Err(format!(
                "the open-files limit (ulimit -n) is {open_files}: corelog needs at least {}",
                2 * RESERVED_DESCRIPTORS
            ));
        }
        let mut locks = Vec::new();
        for dir in &config.log_dirs {
            locks.push(lock_log_dir(dir)?);
            remove_leftover_deletions(dir);
        }
        let mut listeners = Vec::new();
        for listener in &config.listeners {
            let socket = bind(&listener.host, listener.port, PORT_WAIT)
                .map_err(|e| format!("cannot listen on {listener}: {e}"))?;
            listeners.push((listener.clone(), socket));
        }
        let metrics = match &config.metrics_listener {
            None => None,
            Some(address) => {
                let (host, port) = address
                    .rsplit_once(':')
                    .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
                    .ok_or_else(|| format!("metrics.listener '{address}' is not host:port"))?;
                let socket = bind(host, port, PORT_WAIT).map_err(|e| {
                    format!("cannot serve metrics on {address} (metrics.listener): {e}")
                })?;
                Some((address.clone(), socket))
            }
        };
        Ok(Exclusive {
            listeners,
            metrics,
            open_files,
            _locks: locks,
        })
    }

    /// How many client connections the descriptors allow, keeping a quarter of them (at
    /// least `RESERVED_DESCRIPTORS`) for segment files, checkpoints and sendfile: each
    /// connection holds two (the socket and the writer's duplicate).
    pub fn connections_for_descriptors(&self) -> usize {
        let reserved = (self.open_files / 4).max(RESERVED_DESCRIPTORS);
        (self.open_files.saturating_sub(reserved) / 2) as usize
    }
}

/// Descriptors kept out of reach of connections, at the least.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Raises the soft open-files limit to the hard one (as Kafka's start scripts ask of the
/// operator) and returns what it is now.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls filling and reading a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// A shard's own handle on a socket the main thread bound: a duplicate descriptor, as a
/// glommio listener of this shard's executor.
pub fn for_this_shard(socket: &TcpListener) -> std::io::Result<glommio::net::TcpListener> {
    let fd = socket.try_clone()?.into_raw_fd();
    // SAFETY: `fd` is a fresh duplicate of a bound, listening socket that nothing else
    // owns; the glommio listener takes it over and closes it when dropped.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

/// Binds `host:port` for this process alone. "localhost" means the IPv4 loopback (where
/// clients given "localhost" connect) and an empty host every IPv4 address.
/// Waits up to `wait` for a port in use to be released.
fn bind(host: &str, port: u16, wait: std::time::Duration) -> std::io::Result<TcpListener> {
    let host = match host {
        "" => "0.0.0.0",
        "localhost" => "127.0.0.1",
        host => host,
    };
    let started = std::time::Instant::now();
    let mut warned = false;
    let socket = loop {
        match TcpListener::bind((host, port)) {
            Ok(socket) => break socket,
            // A broker killed a moment ago may still hold its socket: the kernel tears
            // its io_uring rings (and the accepts pending on them) down after the
            // process is gone. Wait a little for that, not for another broker.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && started.elapsed() < wait => {
                if !warned {
                    tracing::warn!(
                        "{host}:{port} is in use: waiting up to {wait:?} for it to be released"
                    );
                    warned = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{e} (is another broker or program using this port?)"),
                ));
            }
            Err(e) => return Err(e),
        }
    };
    // Non-blocking for good: the shards share this socket's status flags through their
    // duplicates, and glommio's accept toggles O_NONBLOCK around its first try, which
    // would otherwise race between shards into a blocking accept on a shard thread.
    socket.set_nonblocking(true)?;
    // std listens with a backlog of 128; listening again only raises it.
    // SAFETY: a plain syscall on a descriptor we own.
    if unsafe { libc::listen(socket.as_raw_fd(), BACKLOG) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(socket)
}

/// Finishes removing directories whose deletion a crash cut short (`*-delete`).
fn remove_leftover_deletions(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name
            .to_string_lossy()
            .ends_with(crate::storage::DELETE_SUFFIX)
        {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!(
                    "removed {}, left by an earlier deletion",
                    entry.path().display()
                ),
                Err(e) => tracing::warn!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Creates `dir` if needed and takes its `.lock` (an exclusive, non-blocking `flock`).
fn lock_log_dir(dir: &std::path::Path) -> Result<File, String> {
    if !dir.is_dir() {
        // Created durably: the directory's entry in its parent is fsynced.
        std::fs::create_dir_all(dir)
            .and_then(|()| match dir.parent() {
                Some(parent) => File::open(parent)?.sync_all(),
                None => Ok(()),
            })
            .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    }
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| {
            format!(
                "log directory {} is not writable: cannot open {}: {e}",
                dir.display(),
                path.display()
            )
        })?;
    // SAFETY: a plain syscall on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
            format!(
                "log directory {} is in use by another broker (it holds {})",
                dir.display(),
                path.display()
            )
        } else {
            format!("cannot lock {}: {e}", path.display())
        });
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_second_lock_on_a_log_directory_is_refused_and_the_first_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let first = lock_log_dir(&dir).unwrap();
        let refused = lock_log_dir(&dir).unwrap_err();
        assert!(refused.contains("in use by another broker"), "{refused}");
        drop(first);
        lock_log_dir(&dir).unwrap();
    }

    #[test]
    fn shards_accept_on_their_duplicates_of_one_nonblocking_socket() {
        let socket = bind("127.0.0.1", 0, Duration::ZERO).unwrap();
        let address = socket.local_addr().unwrap();
        let (waiting_tx, waiting) = std::sync::mpsc::channel();
        let accepted: Vec<_> = (0..2)
            .map(|_| {
                let duplicate = socket.try_clone().unwrap();
                let waiting = waiting_tx.clone();
                std::thread::spawn(move || {
                    glommio::LocalExecutor::default().run(async move {
                        let listener = for_this_shard(&duplicate).unwrap();
                        let accept = listener.accept();
                        futures_lite::pin!(accept);
                        // No client yet: the accept goes to the ring and waits there.
                        let first = futures_lite::future::poll_once(&mut accept).await;
                        assert!(first.is_none(), "nothing to accept yet");
                        waiting.send(()).unwrap();
                        accept.await.unwrap().peer_addr().unwrap()
                    })
                })
            })
            .collect();
        waiting.recv().unwrap();
        waiting.recv().unwrap();
        let clients: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(address).unwrap())
            .collect();
        let mut peers: Vec<_> = accepted.into_iter().map(|t| t.join().unwrap()).collect();
        let mut expected: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        peers.sort();
        expected.sort();
        assert_eq!(peers, expected);
    }

    #[test]
    fn a_bound_port_is_refused_to_a_second_bind() {
        let first = bind("127.0.0.1", 0, Duration::ZERO).unwrap();
        let port = first.local_addr().unwrap().port();
        let refused = bind("localhost", port, Duration::from_millis(200)).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::AddrInUse);
        assert!(refused.to_string().contains("another broker"), "{refused}");
    }
}
