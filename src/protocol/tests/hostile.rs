//! Hostile bytes against the request decoder: random and mutated frames for every API
//! key and version must decode or fail cleanly (never panic), and whatever decodes must
//! re-encode and decode to the same value. This is the fuzz target's property, run with
//! a seeded generator so CI catches regressions without the fuzzer.
//!
//! Also: a 24-byte request claiming 2^31 elements fails without reserving memory, measured
//! as the peak RSS of a fresh child process.

use super::round_trip::seed;
use crate::protocol::frame::{DecodedRequest, decode_request, encode_request};
use crate::protocol::generated::request_header::RequestHeader;
use crate::protocol::generated::{ApiKey, RequestBody};
use crate::protocol::testing::Rng;
use bytes::Bytes;

/// Re-encodes a decoded request and checks that decoding that gives the same value.
fn assert_round_trips(decoded: &DecodedRequest, context: &dyn Fn() -> String) {
    let encoded = encode_request(&decoded.header, &decoded.body)
        .unwrap_or_else(|e| panic!("{}: decoded request does not re-encode: {e}", context()));
    let frame = encoded.into_bytes().slice(4..);
    let again = decode_request(frame.clone())
        .unwrap_or_else(|e| panic!("{}: re-encoding does not decode: {e}", context()));
    // Float fields may hold NaN, which is never equal to itself: fall back to the text.
    if again != *decoded {
        assert_eq!(
            format!("{again:?}"),
            format!("{decoded:?}"),
            "{}",
            context()
        );
    }
}

fn valid_frame(rng: &mut Rng, api_key: ApiKey, version: i16) -> Vec<u8> {
    let header = RequestHeader {
        request_api_key: api_key.key(),
        request_api_version: version,
        correlation_id: rng.i32(),
        client_id: rng.opt_string(true),
        unknown_tagged_fields: if api_key.request_header_version(version) >= 2 {
            rng.unknown_tagged_fields()
        } else {
            Vec::new()
        },
    };
    let body = RequestBody::random(api_key, rng, version);
    let encoded = encode_request(&header, &body).expect("a random valid request encodes");
    encoded.into_bytes()[4..].to_vec()
}

fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        if frame.is_empty() {
            frame.push(rng.next_u64() as u8);
            continue;
        }
        let at = rng.below(frame.len() as u64) as usize;
        match rng.below(6) {
            0 => frame[at] ^= 1 << rng.below(8),
            1 => frame[at] = rng.next_u64() as u8,
            2 => frame.truncate(at),
            3 => frame.insert(at, rng.next_u64() as u8),
            // Lengths and counts are where decoders break: make one huge or negative.
            4 => {
                let end = (at + 4).min(frame.len());
                frame[at..end].fill(if rng.bool() { 0xff } else { 0x7f });
            }
            _ => {
                frame.remove(at);
            }
        }
    }
}

fn check(frame: Vec<u8>, context: &dyn Fn() -> String) -> bool {
    match decode_request(Bytes::from(frame)) {
        Ok(decoded) => {
            assert_round_trips(&decoded, context);
            true
        }
        Err(_) => false,
    }
}

#[test]
fn random_and_mutated_requests_never_panic_and_what_decodes_round_trips() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let (mut decoded, mut total) = (0usize, 0usize);
    for &api_key in ApiKey::ALL {
        let versions = api_key.valid_versions();
        for version in versions.min..=versions.max {
            for i in 0..40 {
                let context = || format!("{api_key:?} v{version} case {i} (seed {seed})");
                let mut frame = valid_frame(&mut rng, api_key, version);
                assert!(check(frame.clone(), &context), "{}: valid frame", context());
                mutate(&mut rng, &mut frame);
                total += 1;
                decoded += usize::from(check(frame, &context));
                // Pure noise after a valid header prefix.
                let mut noise = vec![0u8; rng.below(64) as usize];
                noise.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
                let mut frame = Vec::new();
                frame.extend_from_slice(&api_key.key().to_be_bytes());
                frame.extend_from_slice(&version.to_be_bytes());
                frame.extend_from_slice(&noise);
                total += 1;
                decoded += usize::from(check(frame, &context));
            }
        }
    }
    println!("{total} hostile frames, {decoded} decoded and round-tripped");
}

/// A 24-byte request (size prefix included): Metadata v12, header v2 with a null client
/// id, then a topics array whose compact count claims 2^31 elements.
pub(crate) const HOSTILE_REQUEST: [u8; 24] = [
    0, 0, 0, 20, // size
    0, 3, 0, 12, // Metadata v12
    0, 0, 0, 1, // correlation id
    0xff, 0xff, // client id: null
    0,    // header tagged fields
    0x81, 0x80, 0x80, 0x80, 0x08, // topics: compact count 2^31 + 1, i.e. 2^31 elements
    0, 0, 0, 0, // not nearly enough for them
];

const CHILD_ENV: &str = "CORELOG_HOSTILE_CHILD";

/// Run in a child process by the test below: decodes the hostile request and prints the
/// process's peak resident set size.
#[test]
fn hostile_request_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let frame = Bytes::from_static(&HOSTILE_REQUEST[4..]);
    let err = decode_request(frame).expect_err("the hostile request must not decode");
    println!("\nerror: {err}");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("no VmHWM in /proc/self/status");
    println!("\n{hwm}");
}

#[test]
fn hostile_request_claiming_2_pow_31_elements_fails_without_reserving_memory() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "protocol::tests::hostile::hostile_request_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let error = stdout
        .lines()
        .find(|l| l.starts_with("error: "))
        .expect("no error line");
    assert!(
        error.contains("topics: 2147483648 elements claimed, 4 bytes remaining"),
        "{error}"
    );
    let hwm_kb: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("no VmHWM line");
    println!("hostile request: {error}; child peak RSS {hwm_kb} kB");
    assert!(hwm_kb < 64 * 1024, "peak RSS {hwm_kb} kB");
}
