//! Accepting connections: every shard accepts on its own duplicate of each listening
//! socket the main thread bound (`sockets`), so whichever shard is ready takes the next
//! connection, and serves it (until it follows its partitions to another shard:
//! `connection`).

use crate::routing::Router;
use crate::server::connection;
use crate::server::sockets::{self, Exclusive};
use glommio::net::TcpListener;
use shards::rt;
use std::time::Duration;

/// Runs this shard's accept loops, one per configured listener. A listener this shard
/// cannot take its duplicate of stops the broker with the reason.
pub fn start(router: Router, exclusive: &Exclusive) -> rt::Task<()> {
    let mut listeners = Vec::new();
    for (listener, socket) in &exclusive.listeners {
        match sockets::for_this_shard(socket) {
            Ok(accepting) => listeners.push(accepting),
            Err(e) => crate::stop::fatal(&format!("cannot accept on {listener}: {e}")),
        }
    }
    if router.id().0 == 0 {
        for listener in &router.state().config.listeners {
            tracing::info!("listening on {listener} with {} shards", router.count());
        }
    }
    rt::spawn(async move {
        let loops: Vec<_> = listeners
            .into_iter()
            .map(|listener| rt::spawn(accept_loop(router.clone(), listener)))
            .collect();
        for task in loops {
            task.await;
        }
    })
}

/// Accepts while this shard has a connection slot free; at the limit it stops accepting
/// (clients wait in the listen backlog, or are taken by another shard) until one closes.
async fn accept_loop(router: Router, listener: TcpListener) {
    let shard = router.state().clone();
    let mut failures_logged = false;
    loop {
        let slot = match shard.connection_slots.try_acquire_static_permit(1) {
            Ok(slot) => slot,
            Err(_) => {
                tracing::warn!(
                    "{} serves as many connections as it may (max.connections and the \
                     open-files limit): waiting for one to close",
                    shard.id()
                );
                match shard.connection_slots.acquire_static_permit(1).await {
                    Ok(slot) => slot,
                    Err(_) => return,
                }
            }
        };
        match listener.accept().await {
            Ok(stream) => {
                failures_logged = false;
                let peer = stream
                    .peer_addr()
                    .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
                let router = router.clone();
                rt::spawn(async move {
                    connection::serve(router, stream, peer).await;
                    drop(slot);
                })
                .detach();
            }
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning, and say so
                // once per episode rather than ten times a second.
                if !failures_logged {
                    tracing::warn!("accept failed on {}: {e}", shard.id());
                    failures_logged = true;
                }
                rt::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
