//! One client connection, on the shard that accepted it — or on the shard that owns its
//! partitions, once its produce and fetch requests have shown that they all go there
//! (`handlers::Affinity`, `placement.connections.follow`): the reader stops taking
//! frames, every request taken is answered, and the socket with the bytes received but
//! not yet served moves to that shard (`hand_over`), which serves it from there. A
//! connection just accepted by a shard that serves at least two more than another goes
//! to the shard serving the fewest before anything is read from it
//! (`placement.connections.spread`, `shards::counts`).
//!
//! A reader task cuts the byte stream into frames (refusing any above
//! `socket.request.max.bytes` by closing, as Kafka does), decodes each, and dispatches
//! it to its handler as a task of its own. The next frame is dispatched once the handler
//! says its ordered part is done (`RequestContext::issued`) or finishes, so pipelined
//! requests overlap where Kafka allows it. A writer task takes the handlers' results in
//! request order and writes them: response bytes from memory, record data straight
//! from segment files (sendfile).
//!
//! Memory: a frame's buffer grows with the bytes that arrive (never more than doubling
//! what is there), and a frame above one read chunk first takes its size from the
//! shard's share of `queued.max.request.bytes`, given back when its handler is done.
//! When the client goes, the connection's `Hangup` ends the waits of its requests.
//!
//! Bad input — an unknown API key, an unsupported version, a malformed request — is
//! logged once with the client address and answered as Kafka answers it: the v0
//! ApiVersions fallback for an ApiVersions version we do not serve, otherwise closing
//! the connection. Nothing a client sends can disturb another connection.

use crate::handlers::{self, Affinity, Gate, Hangup, InFlight, RequestContext};
use crate::partition::SegmentRange;
use crate::protocol::codec::Encoder;
use crate::protocol::frame::{
    FrameStatus, RequestError, api_versions_fallback_response, check_frame, decode_request,
    encode_response,
};
use crate::protocol::generated::ApiKey;
use crate::routing::Router;
use crate::server::sendfile::send_range;
use crate::shard::{ShardState, bump};
use bytes::{Buf, BytesMut};
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use shards::ShardId;
use shards::rt::{self, LocalReceiver, LocalSender, StaticPermit};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

/// Requests of one connection in flight at once (dispatched, response not yet written).
const MAX_IN_FLIGHT: usize = 64;
/// Bytes read from the socket at a time when no larger frame is expected.
const READ_CHUNK: usize = 64 * 1024;
/// The least room a read goes into before the buffer takes a fresh chunk.
const MIN_READ: usize = 4 * 1024;

/// A response ready to be written, or nothing to write (acks=0).
struct Outgoing {
    encoder: Option<Encoder>,
    splices: Vec<SegmentRange>,
    close_after: bool,
}

/// Serves one connection until the client closes it, it idles past
/// `connections.max.idle.ms`, or it misbehaves — on this shard, or on the shard its
/// partitions live on once it has moved there.
pub async fn serve(router: Router, stream: TcpStream, peer: SocketAddr) {
    let shard = router.state().clone();
    let per_ip = shard.limits_connections_per_ip();
    if per_ip && !router.admit_connection(peer.ip()).await {
        // Kafka closes a connection over max.connections.per.ip as it arrives.
        tracing::info!("closing the connection of {peer}: max.connections.per.ip reached");
        return;
    }
    bump(&shard.stats.connections_total, 1);
    tracing::info!("connection from {peer} opened on {}", shard.id());
    let spread = shard.config.placement_connections_spread;
    serve_here(router, stream, peer, BytesMut::new(), per_ip, 0, spread).await;
}

/// A connection arriving from another shard: `socket`, with the bytes it had received
/// and not yet served. Refused (and handed back) when this shard has no connection slot
/// free.
struct Arriving {
    socket: OwnedFd,
    peer: SocketAddr,
    received: BytesMut,
    per_ip: bool,
    /// Times the connection has moved to follow its partitions, this move included (a
    /// spread at accept does not count: it does not make the next follow wait longer).
    moves: u32,
}

/// Why a connection moves to another shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// Its requests all went to that shard (`placement.connections.follow`).
    Follow,
    /// It was just accepted, and that shard served the fewest connections
    /// (`placement.connections.spread`).
    Spread,
}

/// How serving a connection on this shard ended.
enum End {
    Closed(String),
    /// The connection's requests all went to this other shard: it wants to move there,
    /// with its socket and the bytes received but not yet served.
    Follow(ShardId, OwnedFd, BytesMut),
}

/// Serves a connection that has moved `moves` times on this shard until it closes or
/// moves to another shard; with `spread` (a connection just accepted), first hands it to
/// the shard serving the fewest connections if that is at least two fewer than here.
async fn serve_here(
    router: Router,
    mut stream: TcpStream,
    peer: SocketAddr,
    mut received: BytesMut,
    per_ip: bool,
    moves: u32,
    mut spread: bool,
) {
    let shard = router.state().clone();
    shard.open_connections.increment(shard.id());
    let mut follow = shard.config.placement_connections_follow;
    let reason = loop {
        // Only a connection just accepted spreads, and only once.
        let spread_to = std::mem::take(&mut spread)
            .then(|| shard.open_connections.emptier_than(shard.id()))
            .flatten();
        let (why, to, socket, rest) = match spread_to {
            // Nothing has been read from it yet: it goes as it came.
            Some(to) => match dup_socket(&stream) {
                Ok(socket) => {
                    drop(stream);
                    (Move::Spread, to, socket, received)
                }
                // Out of descriptors: serve it here rather than not at all.
                Err(e) => {
                    tracing::debug!("connection from {peer} stays on {}: {e}", shard.id());
                    continue;
                }
            },
            None => match run(&router, stream, peer, received, follow.then_some(moves)).await {
                End::Closed(reason) => break Some(reason),
                End::Follow(to, socket, rest) => (Move::Follow, to, socket, rest),
            },
        };
        let arriving = Arriving {
            socket,
            peer,
            received: rest,
            per_ip,
            moves: moves + u32::from(why == Move::Follow),
        };
        match hand_over(&router, to, arriving, why).await {
            Some(Ok(())) => {
                let because = match why {
                    Move::Follow => "which owns its partitions",
                    Move::Spread => "which served fewer connections",
                };
                tracing::info!(
                    "connection from {peer} moved from {} to {to}, {because}",
                    shard.id()
                );
                break None;
            }
            // The socket went with the call and closed with it.
            None => break Some("the broker is shutting down".to_string()),
            Some(Err(refused)) => {
                // The other shard is full: stay here, and do not follow again.
                if why == Move::Follow {
                    follow = false;
                }
                // SAFETY: the descriptor is the connection's socket, now ours alone.
                stream = unsafe { TcpStream::from_raw_fd(refused.socket.into_raw_fd()) };
                received = refused.received;
            }
        }
    };
    if reason.is_some() && per_ip {
        // Released before the connection leaves the metrics: a client that sees it gone
        // may connect again.
        router.connection_closed(peer.ip()).await;
    }
    shard.open_connections.decrement(shard.id());
    if let Some(reason) = reason {
        tracing::info!("connection from {peer} closed: {reason}");
    }
}

/// Moves a connection to shard `to`, which serves it from there on; hands it back if
/// `to` has no connection slot free. `None`: `to` has stopped (the broker is shutting
/// down) and the connection is closed.
async fn hand_over(
    router: &Router,
    to: ShardId,
    arriving: Arriving,
    why: Move,
) -> Option<Result<(), Arriving>> {
    router
        .try_call(to, move |router, _| async move {
            let shard = router.state();
            let Ok(slot) = shard.connection_slots.try_acquire_static_permit(1) else {
                return Err(arriving);
            };
            bump(
                match why {
                    Move::Follow => &shard.stats.connections_moved_in,
                    Move::Spread => &shard.stats.connections_spread_in,
                },
                1,
            );
            let Arriving {
                socket,
                peer,
                received,
                per_ip,
                moves,
            } = arriving;
            // SAFETY: the descriptor is the connection's socket, handed to us alone.
            let stream = unsafe { TcpStream::from_raw_fd(socket.into_raw_fd()) };
            rt::spawn(async move {
                serve_here(router, stream, peer, received, per_ip, moves, false).await;
                drop(slot);
            })
            .detach();
            Ok(())
        })
        .await
        .ok()
}

/// Serves the connection's requests, starting with the bytes already `received`, until
/// it ends or (with `follow`: the moves it has made) asks to move to the shard its
/// partitions live on — then only once every request taken so far has been answered.
async fn run(
    router: &Router,
    mut stream: TcpStream,
    peer: SocketAddr,
    received: BytesMut,
    follow: Option<u32>,
) -> End {
    let shard = router.state();
    let _ = stream.set_nodelay(true);
    let idle = Duration::from_millis(shard.config.connections_max_idle_ms.max(1) as u64);
    if let Err(e) = stream.set_read_timeout(Some(idle)) {
        return End::Closed(format!("cannot set the idle timeout: {e}"));
    }
    // A second descriptor for the writer, so reading and writing proceed independently.
    let writer = match dup_socket(&stream) {
        // SAFETY: the descriptor is a fresh, open socket descriptor nobody else owns.
        Ok(fd) => unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) },
        Err(e) => return End::Closed(format!("cannot duplicate the socket: {e}")),
    };
    let (sender, receiver) = rt::new_bounded::<rt::Task<Outgoing>>(MAX_IN_FLIGHT);
    let closing = Rc::new(Cell::new(false));
    let write_shard = shard.clone();
    let write_closing = closing.clone();
    let writer_task =
        rt::spawn(
            async move { write_responses(&write_shard, writer, receiver, &write_closing).await },
        );
    let connection = Connection {
        peer,
        hangup: Rc::new(Hangup::default()),
        affinity: follow.map(|moves| Rc::new(Affinity::new(moves))),
        in_flight: Rc::default(),
        closing,
    };
    let read_result = read_requests(router, &mut stream, received, sender, &connection).await;
    match read_result {
        Ok(Read::Follow(to, received)) => {
            // Every request taken is answered once the writer has written them all.
            if let Err(e) = writer_task.await {
                return End::Closed(e);
            }
            match take_socket(stream) {
                Ok(socket) => End::Follow(to, socket, received),
                Err(e) => End::Closed(format!("cannot duplicate the socket: {e}")),
            }
        }
        read_result => {
            // The client is gone (or misbehaved): requests waiting for an event stop
            // waiting; the rest finish (an append in progress completes) before the
            // connection goes.
            connection.hangup.hang_up();
            let write_result = writer_task.await;
            End::Closed(match (read_result, write_result) {
                (Err(e), _) | (Ok(_), Err(e)) => e,
                (Ok(_), Ok(())) => "client closed the connection".to_string(),
            })
        }
    }
}

/// The socket of `stream` as a descriptor of its own, `stream` closed: nothing is in
/// flight on it, so another shard may take it over.
fn take_socket(stream: TcpStream) -> io::Result<OwnedFd> {
    let socket = dup_socket(&stream)?;
    drop(stream);
    Ok(socket)
}

/// A second descriptor of `stream`'s socket.
fn dup_socket(stream: &TcpStream) -> io::Result<OwnedFd> {
    // SAFETY: dup returns a new descriptor we own, or -1.
    let fd = unsafe { libc::dup(stream.as_raw_fd()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh, open descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What the requests of one connection on this shard share.
struct Connection {
    peer: SocketAddr,
    hangup: Rc<Hangup>,
    affinity: Option<Rc<Affinity>>,
    in_flight: Rc<InFlight>,
    /// Set by the writer when a failed request closes the connection.
    closing: Rc<Cell<bool>>,
}

/// How reading a connection's requests ended without an error.
enum Read {
    /// The client closed the connection.
    Closed,
    /// The requests want another shard: reading stopped, with these bytes received and
    /// not yet served.
    Follow(ShardId, BytesMut),
}

async fn read_requests(
    router: &Router,
    stream: &mut TcpStream,
    received: BytesMut,
    sender: LocalSender<rt::Task<Outgoing>>,
    connection: &Connection,
) -> Result<Read, String> {
    let shard = router.state();
    let peer = connection.peer;
    let max = shard.config.socket_request_max_bytes.max(0) as usize;
    let mut buf = received;
    // The budget units held for the frame being received, once its size is known.
    let mut charge: Option<Charge> = None;
    // The connection's last frame was larger than a chunk: its next one likely is too, so
    // its size prefix is read on its own and its bytes go straight into a buffer of their
    // own, instead of into a chunk that would then be copied into a larger one.
    let mut large_frames = false;
    loop {
        // Dispatch every whole frame received so far.
        let needed = loop {
            if connection.closing.get() {
                return Ok(Read::Closed);
            }
            if let Some(to) = connection.affinity.as_ref().and_then(|a| a.wanted()) {
                return Ok(Read::Follow(to, buf));
            }
            match check_frame(&buf, max) {
                Ok(FrameStatus::Complete { size }) => {
                    large_frames = size > READ_CHUNK;
                    let mut frame = buf.split_to(4 + size);
                    frame.advance(4);
                    bump(&shard.stats.requests, 1);
                    let permit = charge.take().map(|c| c.permit);
                    dispatch(router, frame.freeze(), connection, &sender, permit).await?;
                }
                Ok(FrameStatus::NeedMore { needed }) => break needed,
                Err(e) => {
                    tracing::warn!("closing the connection of {peer}: {e}");
                    return Err(e.to_string());
                }
            }
        };
        if needed > READ_CHUNK && charge.is_none() {
            charge = charge_frame(shard, needed).await;
        }
        // Room for what arrives, not zeroed: reads fill it. Small frames share a chunk,
        // read into the room left behind the last one. A large frame whose whole size
        // the request budget holds gets a buffer of its own at once, taking only the
        // bytes received so far (growing the chunk would copy all of its capacity); any
        // other grows with what arrives, never ahead of it by more than what is already
        // here, so a client that announces a large frame and sends nothing holds one
        // chunk. Either way the frame ends up in one buffer (no copy at dispatch).
        let missing = needed.saturating_sub(buf.len());
        let whole_frame = charge.as_ref().is_some_and(|c| c.whole_frame);
        if whole_frame && buf.capacity() - buf.len() < missing {
            let mut own = BytesMut::with_capacity(needed);
            own.extend_from_slice(&buf);
            buf = own;
        } else if buf.capacity() - buf.len() < missing.max(MIN_READ) {
            let ahead = missing.min(buf.len().max(READ_CHUNK));
            buf.reserve(ahead.max(if large_frames { MIN_READ } else { READ_CHUNK }));
        }
        // A large frame's reads stop at its end, and after large frames the next read
        // takes only the size prefix, so no frame starts in another's buffer.
        let spare = buf.spare_capacity_mut();
        let room = if large_frames || needed > READ_CHUNK {
            missing.min(spare.len())
        } else {
            spare.len()
        };
        let read = stream.read_uninit(&mut spare[..room]).await;
        match read {
            Ok(0) => return Ok(Read::Closed),
            Ok(n) => {
                // SAFETY: the read initialized the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
                bump(&shard.stats.bytes_in, n as u64);
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err("idle longer than connections.max.idle.ms".to_string());
            }
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// What a large frame holds of the shard's request budget.
struct Charge {
    permit: StaticPermit,
    /// The units cover the whole frame (it is not larger than the shard's share).
    whole_frame: bool,
}

/// Takes a large frame's size (at most the whole share) from the shard's request budget
/// (`queued.max.request.bytes`), waiting while other connections' requests hold it: the
/// connection reads nothing more meanwhile, as Kafka stops reading from its sockets.
async fn charge_frame(shard: &ShardState, frame_size: usize) -> Option<Charge> {
    let (budget, share) = shard.request_budget.as_ref()?;
    let units = (frame_size as u64).min(*share);
    let permit = match budget.try_acquire_static_permit(units) {
        Ok(permit) => permit,
        Err(_) => {
            bump(&shard.stats.request_budget_waits, 1);
            budget.acquire_static_permit(units).await.ok()?
        }
    };
    Some(Charge {
        permit,
        whole_frame: units == frame_size as u64,
    })
}

/// Decodes one frame and starts its handler; returns once the next frame may start.
async fn dispatch(
    router: &Router,
    frame: bytes::Bytes,
    connection: &Connection,
    sender: &LocalSender<rt::Task<Outgoing>>,
    charge: Option<StaticPermit>,
) -> Result<(), String> {
    let peer = connection.peer;
    let request = match decode_request(frame) {
        Ok(request) => request,
        Err(RequestError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            version,
            correlation_id,
        }) => {
            tracing::info!(
                "{peer} asked for ApiVersions v{version}: answering with the v0 fallback"
            );
            return queue_fallback(sender, correlation_id).await;
        }
        Err(e) => {
            tracing::warn!("closing the connection of {peer}: {e}");
            return Err(e.to_string());
        }
    };
    let (api_key, version) = (request.api_key, request.version);
    let correlation_id = request.correlation_id();
    match handlers::served_versions(api_key) {
        Some(range) if range.contains(version) => {}
        _ if api_key == ApiKey::ApiVersions => return queue_fallback(sender, correlation_id).await,
        served => {
            let why = match served {
                Some(range) => format!(
                    "{} v{version} is not served (versions {range})",
                    api_key.name()
                ),
                None => format!("{} is not served", api_key.name()),
            };
            tracing::warn!("closing the connection of {peer}: {why}");
            return Err(why);
        }
    }
    let gate = Rc::new(Gate::default());
    let ctx = RequestContext::new(
        router.clone(),
        &request,
        peer,
        gate.clone(),
        connection.hangup.clone(),
        connection.affinity.clone(),
        connection.in_flight.clone(),
    );
    let body = request.body;
    let task = rt::spawn(async move {
        let response = handlers::dispatch(&ctx, body).await;
        // The request's bytes are the handler's no more: give back their budget.
        drop(charge);
        ctx.issued();
        let encoded = response.map(|mut body| {
            // Handlers fill responses for the newest version; the client's may be older.
            body.truncate_to_version(version);
            encode_response(ctx.correlation_id, api_key, version, &body)
        });
        let encoder = match encoded {
            None => None,
            Some(encoded) => match encoded {
                Ok(encoder) => Some(encoder),
                Err(e) => {
                    tracing::error!(
                        "cannot encode the {} v{version} response for {}: {e}",
                        api_key.name(),
                        ctx.peer
                    );
                    return Outgoing {
                        encoder: None,
                        splices: Vec::new(),
                        close_after: true,
                    };
                }
            },
        };
        Outgoing {
            encoder,
            splices: ctx.take_splices(),
            close_after: ctx.should_close(),
        }
    });
    sender
        .send(task)
        .await
        .map_err(|_| "the writer stopped".to_string())?;
    gate.wait().await;
    Ok(())
}

async fn queue_fallback(
    sender: &LocalSender<rt::Task<Outgoing>>,
    correlation_id: i32,
) -> Result<(), String> {
    let encoder = api_versions_fallback_response(correlation_id, &handlers::supported_apis());
    let task = rt::spawn(async move {
        Outgoing {
            encoder: Some(encoder),
            splices: Vec::new(),
            close_after: false,
        }
    });
    sender
        .send(task)
        .await
        .map_err(|_| "the writer stopped".to_string())
}

async fn write_responses(
    shard: &ShardState,
    mut stream: TcpStream,
    receiver: LocalReceiver<rt::Task<Outgoing>>,
    closing: &Cell<bool>,
) -> Result<(), String> {
    while let Some(task) = receiver.recv().await {
        let outgoing = task.await;
        if let Some(encoder) = outgoing.encoder {
            write_response(shard, &mut stream, encoder, outgoing.splices)
                .await
                .map_err(|e| format!("write failed: {e}"))?;
        }
        if outgoing.close_after {
            closing.set(true);
            let _ = stream.shutdown(std::net::Shutdown::Both).await;
            return Err("closed after a failed request".to_string());
        }
    }
    Ok(())
}

/// Writes the encoded bytes with each splice's file range at its place.
async fn write_response(
    shard: &ShardState,
    stream: &mut TcpStream,
    encoder: Encoder,
    sources: Vec<SegmentRange>,
) -> io::Result<()> {
    let (bytes, splices) = encoder.into_parts();
    let mut sources: Vec<Option<SegmentRange>> = sources.into_iter().map(Some).collect();
    let mut at = 0;
    let stats = &shard.stats;
    for splice in splices {
        stream.write_all(&bytes[at..splice.position]).await?;
        at = splice.position;
        let len = splice.len as usize;
        let source = sources[splice.id as usize]
            .take()
            .expect("each splice is sent once");
        assert_eq!(
            source.length as usize, len,
            "a spliced range has its announced length"
        );
        send_range(stream, &source, source.position, len, &stats.send).await?;
        bump(&stats.bytes_out, len as u64);
    }
    stream.write_all(&bytes[at..]).await?;
    bump(&stats.bytes_out, (bytes.len()) as u64);
    Ok(())
}
