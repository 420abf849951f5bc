//! Accepting connections: every shard binds every listener with SO_REUSEPORT (glommio
//! sets it), so the kernel spreads new connections over the shards and each shard
//! serves the connections it accepted.

use crate::server::connection;
use crate::shard::ShardState;
use glommio::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;

/// Binds every configured listener on this shard and runs the accept loops. A listener
/// that cannot be bound stops the broker with the reason.
pub fn start(shard: Rc<ShardState>) -> glommio::Task<()> {
    let mut listeners = Vec::new();
    for listener in &shard.config.listeners {
        // "localhost" binds the IPv4 loopback, where clients given "localhost" connect.
        let host = match listener.host.as_str() {
            "" => "0.0.0.0",
            "localhost" => "127.0.0.1",
            host => host,
        };
        match TcpListener::bind((host, listener.port)) {
            Ok(bound) => listeners.push(bound),
            Err(e) => crate::server::fatal(&format!("cannot listen on {listener}: {e}")),
        }
    }
    if shard.id().0 == 0 {
        for listener in &shard.config.listeners {
            tracing::info!("listening on {listener} with {} shards", shard.mesh.count());
        }
    }
    glommio::spawn_local(async move {
        let loops: Vec<_> = listeners
            .into_iter()
            .map(|listener| glommio::spawn_local(accept_loop(shard.clone(), listener)))
            .collect();
        for task in loops {
            task.await;
        }
    })
}

async fn accept_loop(shard: Rc<ShardState>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let peer = stream
                    .peer_addr()
                    .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
                glommio::spawn_local(connection::serve(shard.clone(), stream, peer)).detach();
            }
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                tracing::warn!("accept failed on {}: {e}", shard.id());
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
