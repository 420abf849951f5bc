//! Structure-aware fuzzing of the handlers: a real broker (its shards, storage and
//! coordinators, in this process) is sent *decoded, valid* requests of every API it serves
//! at every version it serves, with random field values biased toward the extremes (0,
//! -1, the type's minimum and maximum), over real sockets. Whatever it is sent, it must
//! keep answering, no shard may panic, and it must not stop itself (a `fatal` would end
//! this test process).
//!
//! Smoke mode in the test suite; longer by hand, replayable from its seed:
//! `CORELOG_FUZZ_ITERATIONS=200000 CORELOG_FUZZ_SEED=7 cargo test --lib handler_fuzz`.

use crate::config::BrokerConfig;
use crate::handlers::supported_apis;
use crate::protocol::frame::encode_request;
use crate::protocol::generated::request_header::RequestHeader;
use crate::protocol::generated::{ApiKey, RequestBody};
use crate::protocol::testing::Rng;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Panics seen in shard threads (named `corelog-shard-<i>`).
static SHARD_PANICS: AtomicUsize = AtomicUsize::new(0);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads one response frame within `wait`: `Some(true)` a frame, `Some(false)` the
/// connection closed, `None` nothing yet (a request that waits, e.g. a JoinGroup).
fn read_frame(stream: &mut TcpStream, wait: Duration) -> Option<bool> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut prefix = [0u8; 4];
    match stream.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return None;
        }
        Err(_) => return Some(false),
    }
    let size = i32::from_be_bytes(prefix);
    assert!(size >= 4, "a response frame of {size} bytes");
    let mut frame = vec![0u8; size as usize];
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    Some(stream.read_exact(&mut frame).is_ok())
}

/// The broker answers ApiVersions on a new connection.
fn assert_alive(address: &str, after: &str) {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("{after}: {e}"));
    let header = RequestHeader {
        request_api_key: ApiKey::ApiVersions.key(),
        request_api_version: 3,
        correlation_id: 1,
        client_id: Some("fuzz-probe".into()),
        ..RequestHeader::default()
    };
    let body = RequestBody::random(ApiKey::ApiVersions, &mut Rng::new(1), 3);
    stream
        .write_all(
            encode_request(&header, &body)
                .unwrap()
                .into_bytes()
                .as_ref(),
        )
        .unwrap();
    assert_eq!(
        read_frame(&mut stream, Duration::from_secs(30)),
        Some(true),
        "the broker answers ApiVersions after {after}"
    );
    assert_eq!(
        SHARD_PANICS.load(Ordering::Acquire),
        0,
        "a shard panicked after {after}"
    );
}

#[test]
fn handler_fuzz_random_valid_requests_never_stop_the_broker() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        if thread
            .name()
            .is_some_and(|n| n.starts_with("corelog-shard"))
        {
            SHARD_PANICS.fetch_add(1, Ordering::AcqRel);
        }
        default_hook(info);
    }));

    let seed = env_or("CORELOG_FUZZ_SEED", 11);
    let iterations = env_or("CORELOG_FUZZ_ITERATIONS", 1500);
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let entries = [
        ("listeners", format!("PLAINTEXT://{address}")),
        ("log.dirs", data.path().display().to_string()),
        ("metrics.listener", String::new()),
        ("shards", "2".to_string()),
        ("offsets.topic.num.partitions", "4".to_string()),
        ("group.initial.rebalance.delay.ms", "0".to_string()),
        ("topic.partitions.per.shard", "200".to_string()),
        // The ACL APIs answer SECURITY_DISABLED without an authorizer: turn it on (the
        // client a super user, so every other API runs as without it).
        (
            "authorizer.class.name",
            crate::security::acl::STANDARD_AUTHORIZER.to_string(),
        ),
        ("super.users", crate::security::ANONYMOUS.to_string()),
    ];
    let (config, _) = BrokerConfig::from_entries(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
    .unwrap();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let broker = std::thread::spawn(move || {
        crate::server::run_until(config, move || {
            let _ = stopped.recv();
        })
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "the broker listens");
        assert!(!broker.is_finished(), "the broker started");
        std::thread::sleep(Duration::from_millis(10));
    }

    let apis = supported_apis();
    let mut rng = Rng::new(seed);
    let mut stream = TcpStream::connect(&address).unwrap();
    let (mut answered, mut closed, mut waiting) = (0u64, 0u64, 0u64);
    for i in 0..iterations {
        let api = &apis[rng.below(apis.len() as u64) as usize];
        let api_key = ApiKey::from_i16(api.api_key).expect("a served API");
        let span = (api.max_version - api.min_version) as u64 + 1;
        let version = api.min_version + rng.below(span) as i16;
        let mut body = RequestBody::random(api_key, &mut rng, version);
        // Long polls and group waits are bounded by the fuzzer, not the broker: a
        // request left waiting is dropped with its connection below.
        if let RequestBody::Fetch(fetch) = &mut body {
            fetch.max_wait_ms = fetch.max_wait_ms.min(50);
        }
        let header = RequestHeader {
            request_api_key: api.api_key,
            request_api_version: version,
            correlation_id: i as i32,
            client_id: rng.opt_string(true),
            ..RequestHeader::default()
        };
        let Ok(frame) = encode_request(&header, &body) else {
            continue; // a value this version cannot carry
        };
        let what = format!("request {i}: {api_key:?} v{version} (seed {seed})");
        if stream.write_all(frame.into_bytes().as_ref()).is_err() {
            stream = TcpStream::connect(&address).unwrap_or_else(|e| panic!("{what}: {e}"));
            continue;
        }
        match read_frame(&mut stream, Duration::from_millis(500)) {
            Some(true) => answered += 1,
            outcome => {
                if outcome.is_none() {
                    waiting += 1;
                } else {
                    closed += 1;
                }
                stream = TcpStream::connect(&address).unwrap_or_else(|e| panic!("{what}: {e}"));
            }
        }
        if i % 100 == 99 {
            assert_alive(&address, &what);
        }
    }
    assert_alive(&address, "the last request");
    eprintln!(
        "handler fuzz: {iterations} requests (seed {seed}): {answered} answered, {closed} \
         closed the connection, {waiting} still waiting after 500 ms"
    );
    assert!(answered > iterations / 4, "most requests are answered");
    stop.send(()).unwrap();
    broker
        .join()
        .expect("the broker thread")
        .expect("a clean shut-down");
}
