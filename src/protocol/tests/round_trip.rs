//! Every message at every version: random valid values encode to exactly
//! `encoded_len` bytes, decode back equal, and re-encode to the same bytes; every
//! truncation of the encoding is an error, never a panic.

use crate::protocol::codec::{Decodable, Encodable, Encoder, Message};
use crate::protocol::generated::{MessageVisitor, visit_all_messages};
use crate::protocol::testing::{Random, Rng};
use crate::protocol::wire::Reader;
use bytes::Bytes;
use std::fmt::Debug;

const ITERATIONS: usize = 40;

pub(crate) fn seed() -> u64 {
    std::env::var("CORELOG_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c0de)
}

struct RoundTrip {
    rng: Rng,
    seed: u64,
    pairs: usize,
}

impl MessageVisitor for RoundTrip {
    fn visit<M>(&mut self)
    where
        M: Message + Encodable + Decodable + Random + PartialEq + Debug + Clone,
    {
        for version in M::VERSIONS.min..=M::VERSIONS.max {
            self.pairs += 1;
            for i in 0..ITERATIONS {
                let value = M::random(&mut self.rng, version);
                let ctx = || format!("{} v{version} iteration {i} (seed {})", M::NAME, self.seed);
                let mut w = Encoder::new();
                value
                    .encode(&mut w, version)
                    .unwrap_or_else(|e| panic!("{}: encode: {e}", ctx()));
                let len = value.encoded_len(version).unwrap();
                assert_eq!(len, w.wire_len(), "{}: encoded_len", ctx());
                let bytes = w.into_bytes();
                let mut r = Reader::new(bytes.clone());
                let decoded =
                    M::decode(&mut r, version).unwrap_or_else(|e| panic!("{}: decode: {e}", ctx()));
                assert!(r.is_empty(), "{}: {} bytes left", ctx(), r.remaining());
                assert_eq!(decoded, value, "{}", ctx());
                let mut again = Encoder::new();
                decoded.encode(&mut again, version).unwrap();
                assert_eq!(again.bytes(), &bytes[..], "{}: re-encoding differs", ctx());
                if i < 3 {
                    for cut in 0..bytes.len() {
                        let mut r = Reader::new(bytes.slice(..cut));
                        // Shorter input may still decode when trailing fields are empty
                        // tagged sections; it must never panic.
                        let _ = M::decode(&mut r, version);
                    }
                }
            }
        }
    }
}

#[test]
fn every_message_round_trips_at_every_version() {
    let seed = seed();
    let mut t = RoundTrip {
        rng: Rng::new(seed),
        seed,
        pairs: 0,
    };
    visit_all_messages(&mut t);
    println!("{} message/version pairs round-tripped", t.pairs);
    assert!(t.pairs > 700, "only {} pairs", t.pairs);
}

#[test]
fn versions_outside_the_range_are_refused_both_ways() {
    use crate::protocol::generated::produce_request::ProduceRequest;
    let mut w = Encoder::new();
    let e = ProduceRequest::default().encode(&mut w, 12).unwrap_err();
    assert_eq!(e.to_string(), "ProduceRequest v12: unsupported version");
    let e = ProduceRequest::decode(&mut Reader::new(Bytes::new()), -1).unwrap_err();
    assert_eq!(e.to_string(), "ProduceRequest v-1: unsupported version");
}

#[test]
fn non_default_values_in_versions_without_the_field_are_refused() {
    use crate::protocol::generated::produce_request::ProduceRequest;
    let request = ProduceRequest {
        transactional_id: Some("txn".into()),
        ..Default::default()
    };
    let e = request.encode(&mut Encoder::new(), 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ProduceRequest v2: transactional_id: non-default value in a version without this field"
    );
    assert!(request.encode(&mut Encoder::new(), 3).is_ok());
}

#[test]
fn ignorable_fields_are_dropped_silently() {
    use crate::protocol::generated::metadata_request::MetadataRequest;
    use crate::protocol::generated::produce_response::ProduceResponse;
    // ThrottleTimeMs exists from v1 and is ignorable.
    let response = ProduceResponse {
        throttle_time_ms: 100,
        ..Default::default()
    };
    let mut w = Encoder::new();
    response.encode(&mut w, 0).unwrap();
    let decoded = ProduceResponse::decode(&mut Reader::new(w.into_bytes()), 0).unwrap();
    assert_eq!(decoded.throttle_time_ms, 0);
    // AllowAutoTopicCreation exists from v4 and is not ignorable.
    let request = MetadataRequest {
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    assert!(request.encode(&mut Encoder::new(), 3).is_err());
}

#[test]
fn nulls_in_non_nullable_versions_are_refused() {
    use crate::protocol::generated::metadata_request::MetadataRequest;
    use crate::protocol::generated::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    // Topics is nullable from v1 only.
    let request = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let e = request.encode(&mut Encoder::new(), 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "MetadataRequest v0: topics: null in a version where it is not nullable"
    );
    assert!(request.encode(&mut Encoder::new(), 1).is_ok());
    // Records are nullable in every Produce version.
    let produce = ProduceRequest {
        topic_data: vec![TopicProduceData {
            partition_data: vec![PartitionProduceData::default()],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(produce.encode(&mut Encoder::new(), 9).is_ok());
}

#[test]
fn tagged_fields_are_written_only_when_not_default_and_in_tag_order() {
    use crate::protocol::codec::RawTaggedField;
    use crate::protocol::generated::api_versions_response::{
        ApiVersionsResponse, FinalizedFeatureKey,
    };
    let mut response = ApiVersionsResponse::default();
    let mut w = Encoder::new();
    response.encode(&mut w, 3).unwrap();
    // error code, empty compact array, throttle time, zero tagged fields.
    assert_eq!(w.bytes(), &[0, 0, 1, 0, 0, 0, 0, 0]);

    response.finalized_features_epoch = 5; // tag 1
    response.finalized_features = vec![FinalizedFeatureKey::default()]; // tag 2
    response.unknown_tagged_fields = vec![
        RawTaggedField {
            tag: 7,
            data: Bytes::from_static(b"x"),
        },
        RawTaggedField {
            tag: 9,
            data: Bytes::new(),
        },
    ];
    let mut w = Encoder::new();
    response.encode(&mut w, 3).unwrap();
    let bytes = w.into_bytes();
    assert_eq!(bytes.len(), response.encoded_len(3).unwrap());
    // 4 tagged fields in tag order: epoch (1), features (2), unknown 7, unknown 9.
    let tags = &bytes[7..];
    assert_eq!(tags[0], 4);
    assert_eq!(&tags[1..3], &[1, 8]);
    assert_eq!(&tags[3..11], &5i64.to_be_bytes());
    assert_eq!(tags[11], 2);
    assert_eq!(&tags[tags.len() - 5..], &[7, 1, b'x', 9, 0]);
    let decoded = ApiVersionsResponse::decode(&mut Reader::new(bytes), 3).unwrap();
    assert_eq!(decoded, response);
}

#[test]
fn defaults_follow_the_specs() {
    use crate::protocol::generated::fetch_request::{FetchRequest, ReplicaState};
    use crate::protocol::generated::metadata_request::MetadataRequest;
    use crate::protocol::generated::produce_request::ProduceRequest;
    let fetch = FetchRequest::default();
    assert_eq!(fetch.replica_id, -1);
    assert_eq!(fetch.max_bytes, 0x7fff_ffff);
    assert_eq!(fetch.session_epoch, -1);
    assert_eq!(fetch.cluster_id, None);
    assert_eq!(
        fetch.replica_state,
        ReplicaState {
            replica_id: -1,
            replica_epoch: -1,
            ..Default::default()
        }
    );
    assert!(MetadataRequest::default().allow_auto_topic_creation);
    assert_eq!(ProduceRequest::default().transactional_id, None);
}

#[test]
fn every_response_frame_round_trips_with_its_header_version() {
    use crate::protocol::frame::{decode_response, encode_response};
    use crate::protocol::generated::{ApiKey, ResponseBody};
    let seed = seed();
    let mut rng = Rng::new(seed);
    for &api_key in ApiKey::ALL {
        let versions = api_key.valid_versions();
        for version in versions.min..=versions.max {
            let body = ResponseBody::random(api_key, &mut rng, version);
            let w = encode_response(77, api_key, version, &body).unwrap();
            assert_eq!(
                w.wire_len(),
                4 + 4
                    + usize::from(api_key.response_header_version(version) == 1)
                    + body.encoded_len(version).unwrap()
            );
            let bytes = w.into_bytes();
            let (header, decoded) = decode_response(api_key, version, bytes.slice(4..))
                .unwrap_or_else(|e| panic!("{api_key:?} v{version} (seed {seed}): {e}"));
            assert_eq!(header.correlation_id, 77);
            assert_eq!(decoded, body, "{api_key:?} v{version} (seed {seed})");
        }
    }
}

#[test]
fn strings_too_long_for_their_length_prefix_are_refused() {
    use crate::protocol::generated::find_coordinator_request::FindCoordinatorRequest;
    let request = FindCoordinatorRequest {
        key: "k".repeat(40_000),
        ..Default::default()
    };
    // Classic strings carry an int16 length; compact ones a varint.
    let e = request.encode(&mut Encoder::new(), 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "FindCoordinatorRequest v1: key: length 40000 exceeds 32767"
    );
    assert_eq!(request.encoded_len(1).unwrap_err(), e);
    let mut w = Encoder::new();
    request.encode(&mut w, 3).unwrap();
    assert_eq!(w.len(), request.encoded_len(3).unwrap());
}
