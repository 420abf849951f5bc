//! Frames and headers: what the server calls to cut a byte stream into requests, decode
//! them, and encode responses.
//!
//! Every Kafka message travels as a 4-byte big-endian size followed by that many bytes.
//! A request frame holds a request header (v0, v1 or v2, chosen by API and version)
//! and then the body; a response frame holds a response header (v0 or v1) and the body.
//! ApiVersions responses always use header v0, so a client that asked with a version
//! the broker does not know can still read the answer.
//!
//! Runs on the shard that owns the connection. A frame is decoded from one `Bytes`
//! buffer and record data in it stays a slice of that buffer.

use crate::protocol::codec::Decodable;
use crate::protocol::codec::{DecodeError, Encodable, EncodeError, Encoder};
use crate::protocol::generated::api_versions_response::{ApiVersion, ApiVersionsResponse};
use crate::protocol::generated::request_header::RequestHeader;
use crate::protocol::generated::response_header::ResponseHeader;
use crate::protocol::generated::{ApiKey, RequestBody, ResponseBody};
use crate::protocol::wire::Reader;
use bytes::Bytes;
use std::fmt;

/// Kafka's default `socket.request.max.bytes`.
pub const DEFAULT_MAX_REQUEST_SIZE: usize = 104_857_600;

/// Bytes of the size prefix in front of every frame.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Kafka's error code for a version the broker does not support.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// What the bytes received so far hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus {
    /// Not a whole frame yet: at least `needed` bytes in total (prefix included) are
    /// required before anything can be decoded.
    NeedMore { needed: usize },
    /// A whole frame: the 4-byte prefix and then `size` bytes.
    Complete { size: usize },
}

/// A frame size Kafka would refuse; the connection is closed without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    NegativeSize(i32),
    TooLarge { size: usize, max: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NegativeSize(size) => write!(f, "negative frame size {size}"),
            FrameError::TooLarge { size, max } => {
                write!(
                    f,
                    "frame of {size} bytes exceeds the limit of {max} (socket.request.max.bytes)"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Looks at the bytes received so far (starting at a frame boundary) and says whether a
/// whole frame is there. The size is checked against `max_size` as soon as the prefix
/// arrives, before anything is buffered for it.
pub fn check_frame(received: &[u8], max_size: usize) -> Result<FrameStatus, FrameError> {
    let Some(prefix) = received.first_chunk::<SIZE_PREFIX_LEN>() else {
        return Ok(FrameStatus::NeedMore {
            needed: SIZE_PREFIX_LEN,
        });
    };
    let size = i32::from_be_bytes(*prefix);
    let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
    if size > max_size {
        return Err(FrameError::TooLarge {
            size,
            max: max_size,
        });
    }
    let needed = SIZE_PREFIX_LEN + size;
    if received.len() < needed {
        Ok(FrameStatus::NeedMore { needed })
    } else {
        Ok(FrameStatus::Complete { size })
    }
}

/// A decoded request: its header, API, version and body.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub body: RequestBody,
}

impl DecodedRequest {
    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Why a request frame could not be decoded. Every variant after the first keeps what the
/// server needs to answer or log it.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// Shorter than the api key, version and correlation id every header starts with.
    TruncatedHeader { len: usize },
    /// An API key this broker does not know; Kafka closes the connection.
    UnknownApiKey {
        api_key: i16,
        version: i16,
        correlation_id: i32,
    },
    /// A known API at a version outside the codec's range. For ApiVersions the server
    /// answers with [`api_versions_fallback_response`]; Kafka closes the connection for
    /// any other API.
    UnsupportedVersion {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    },
    /// The header or body does not decode.
    Malformed {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        error: DecodeError,
    },
}

impl RequestError {
    /// The correlation id, when the frame was long enough to carry one.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            RequestError::TruncatedHeader { .. } => None,
            RequestError::UnknownApiKey { correlation_id, .. }
            | RequestError::UnsupportedVersion { correlation_id, .. }
            | RequestError::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::TruncatedHeader { len } => {
                write!(f, "request of {len} bytes is too short for a header")
            }
            RequestError::UnknownApiKey {
                api_key,
                version,
                correlation_id,
            } => write!(
                f,
                "unknown api key {api_key} (version {version}, correlation id {correlation_id})"
            ),
            RequestError::UnsupportedVersion {
                api_key,
                version,
                correlation_id,
            } => write!(
                f,
                "unsupported version {version} of {} (supported {}, correlation id {correlation_id})",
                api_key.name(),
                api_key.valid_versions()
            ),
            RequestError::Malformed {
                correlation_id,
                error,
                ..
            } => write!(
                f,
                "malformed request (correlation id {correlation_id}): {error}"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

/// Bytes every request header starts with: api key, api version, correlation id.
const HEADER_PREFIX_LEN: usize = 8;

/// Decodes one request frame (the bytes after the size prefix): the header at the
/// version its API and version call for, then the body. Record data stays a slice of
/// `frame`. Trailing bytes after the body are ignored, as Kafka does.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, RequestError> {
    let Some(prefix) = frame.first_chunk::<HEADER_PREFIX_LEN>() else {
        return Err(RequestError::TruncatedHeader { len: frame.len() });
    };
    let raw_key = i16::from_be_bytes([prefix[0], prefix[1]]);
    let version = i16::from_be_bytes([prefix[2], prefix[3]]);
    let correlation_id = i32::from_be_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    let Some(api_key) = ApiKey::from_i16(raw_key) else {
        return Err(RequestError::UnknownApiKey {
            api_key: raw_key,
            version,
            correlation_id,
        });
    };
    if !api_key.valid_versions().contains(version) {
        return Err(RequestError::UnsupportedVersion {
            api_key,
            version,
            correlation_id,
        });
    }
    let malformed = |error| RequestError::Malformed {
        api_key,
        version,
        correlation_id,
        error,
    };
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r, api_key.request_header_version(version))
        .map_err(malformed)?;
    let body = RequestBody::decode(api_key, version, &mut r).map_err(malformed)?;
    Ok(DecodedRequest {
        header,
        api_key,
        version,
        body,
    })
}

/// Encodes a request frame (size prefix, header, body) as a client would send it. The
/// API and version come from the header.
pub fn encode_request(
    header: &RequestHeader,
    body: &impl Encodable,
) -> Result<Encoder, EncodeError> {
    let version = header.request_api_version;
    let api_key = ApiKey::from_i16(header.request_api_key)
        .ok_or_else(|| EncodeError::unsupported_version("RequestHeader", version))?;
    let header_version = api_key.request_header_version(version);
    let mut w = Encoder::with_capacity(
        SIZE_PREFIX_LEN + header.encoded_len(header_version)? + body.encoded_len(version)?,
    );
    let mark = w.start_size_prefix();
    header.encode(&mut w, header_version)?;
    body.encode(&mut w, version)?;
    w.finish_size_prefix(mark)?;
    Ok(w)
}

/// Encodes a response frame: size prefix (spliced record bytes included), response header
/// at the version its API and version call for, then the body.
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &impl Encodable,
) -> Result<Encoder, EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..ResponseHeader::default()
    };
    let header_version = api_key.response_header_version(version);
    let mut w = Encoder::with_capacity(
        SIZE_PREFIX_LEN + header.encoded_len(header_version)? + body.encoded_len(version)?,
    );
    let mark = w.start_size_prefix();
    header.encode(&mut w, header_version)?;
    body.encode(&mut w, version)?;
    w.finish_size_prefix(mark)?;
    Ok(w)
}

/// Decodes a response frame (the bytes after the size prefix) for a request of
/// `api_key` at `version`: what a client does, and what tests use to check answers.
pub fn decode_response(
    api_key: ApiKey,
    version: i16,
    frame: Bytes,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let mut r = Reader::new(frame);
    let header = ResponseHeader::decode(&mut r, api_key.response_header_version(version))?;
    let body = ResponseBody::decode(api_key, version, &mut r)?;
    Ok((header, body))
}

/// The answer to an ApiVersions request at a version the broker does not support: an
/// ApiVersions v0 response (header v0) with UNSUPPORTED_VERSION and the versions the
/// broker does support, so the client can retry with one of them.
pub fn api_versions_fallback_response(correlation_id: i32, supported: &[ApiVersion]) -> Encoder {
    let body = ApiVersionsResponse {
        error_code: UNSUPPORTED_VERSION,
        api_keys: supported.to_vec(),
        ..ApiVersionsResponse::default()
    };
    // v0 carries only the error code and the list; neither can fail to encode.
    encode_response(correlation_id, ApiKey::ApiVersions, 0, &body)
        .expect("an ApiVersions v0 response always encodes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::Records;
    use crate::protocol::generated::api_versions_request::ApiVersionsRequest;
    use crate::protocol::generated::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };

    fn frame_of(w: Encoder) -> Bytes {
        assert!(w.splices().is_empty());
        w.into_bytes().slice(SIZE_PREFIX_LEN..)
    }

    fn header(api_key: ApiKey, version: i16) -> RequestHeader {
        RequestHeader {
            request_api_key: api_key.key(),
            request_api_version: version,
            correlation_id: 42,
            client_id: Some("test-client".into()),
            ..RequestHeader::default()
        }
    }

    #[test]
    fn frame_sizes_are_checked_before_the_frame_arrives() {
        assert_eq!(
            check_frame(&[0, 0], 100),
            Ok(FrameStatus::NeedMore { needed: 4 })
        );
        assert_eq!(
            check_frame(&[0, 0, 0, 10, 1, 2], 100),
            Ok(FrameStatus::NeedMore { needed: 14 })
        );
        assert_eq!(
            check_frame(&[0, 0, 0, 2, 1, 2, 3], 100),
            Ok(FrameStatus::Complete { size: 2 })
        );
        assert_eq!(
            check_frame(&[0xff, 0xff, 0xff, 0xfe], 100),
            Err(FrameError::NegativeSize(-2))
        );
        assert_eq!(
            check_frame(&[0, 0, 0, 101], 100),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
    }

    #[test]
    fn produce_request_records_stay_a_slice_of_the_frame() {
        let records = Bytes::from(vec![7u8; 4096]);
        let body = ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Records::Bytes(records.clone())),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        for version in [3, 8, 9, 11] {
            let frame = frame_of(encode_request(&header(ApiKey::Produce, version), &body).unwrap());
            let decoded = decode_request(frame.clone()).unwrap();
            let RequestBody::Produce(produce) = decoded.body else {
                panic!("not a produce request")
            };
            let Some(Records::Bytes(got)) = &produce.topic_data[0].partition_data[0].records else {
                panic!("records missing")
            };
            assert_eq!(got, &records);
            let frame_range = frame.as_ptr() as usize..frame.as_ptr() as usize + frame.len();
            assert!(
                frame_range.contains(&(got.as_ptr() as usize)),
                "v{version}: records copied"
            );
            assert!(frame_range.contains(&(got.as_ptr() as usize + got.len() - 1)));
        }
    }

    #[test]
    fn header_version_follows_api_and_version() {
        // Flexible versions use header v2: a compact tagged-field section after client id.
        let body = ApiVersionsRequest::default();
        let v3 = frame_of(encode_request(&header(ApiKey::ApiVersions, 3), &body).unwrap());
        let v2 = frame_of(encode_request(&header(ApiKey::ApiVersions, 2), &body).unwrap());
        // v3 body: client software name/version (compact) + tags; header gains one byte.
        assert_eq!(v2.len(), 8 + 2 + 11);
        assert_eq!(v3.len(), 8 + 2 + 11 + 1 + 3);
        assert!(matches!(
            decode_request(v3).unwrap().body,
            RequestBody::ApiVersions(_)
        ));
        assert_eq!(ApiKey::ControlledShutdown.request_header_version(0), 0);
        assert_eq!(ApiKey::Produce.request_header_version(8), 1);
        assert_eq!(ApiKey::Produce.request_header_version(9), 2);
        assert_eq!(ApiKey::Produce.response_header_version(9), 1);
        assert_eq!(ApiKey::ApiVersions.response_header_version(4), 0);
    }

    #[test]
    fn unknown_keys_and_versions_keep_what_the_answer_needs() {
        let mut frame = vec![0x7f, 0x00, 0, 1, 0, 0, 0, 9];
        assert_eq!(
            decode_request(Bytes::from(frame.clone())),
            Err(RequestError::UnknownApiKey {
                api_key: 0x7f00,
                version: 1,
                correlation_id: 9
            })
        );
        frame[..4].copy_from_slice(&[0, 18, 0x7f, 0]);
        assert_eq!(
            decode_request(Bytes::from(frame)),
            Err(RequestError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                version: 0x7f00,
                correlation_id: 9
            })
        );
        assert_eq!(
            decode_request(Bytes::from_static(&[0, 0, 0])),
            Err(RequestError::TruncatedHeader { len: 3 })
        );
    }

    #[test]
    fn malformed_bodies_say_where() {
        let body = ProduceRequest {
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(Records::Bytes(Bytes::from(vec![1u8; 64]))),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let frame = frame_of(encode_request(&header(ApiKey::Produce, 9), &body).unwrap());
        let cut = frame.slice(..frame.len() - 30);
        let err = decode_request(cut).unwrap_err();
        assert_eq!(err.correlation_id(), Some(42));
        let RequestError::Malformed { error, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(
            error.to_string(),
            "ProduceRequest v9: topic_data[0].partition_data[0].records: \
             truncated: needed 64 bytes, 37 remaining"
        );
    }

    #[test]
    fn api_versions_fallback_is_a_v0_response_with_unsupported_version() {
        let supported = [ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 4,
            ..Default::default()
        }];
        let w = api_versions_fallback_response(7, &supported);
        let bytes = w.into_bytes();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 16,  // size
            0, 0, 0, 7,   // correlation id (header v0)
            0, 35,        // error code
            0, 0, 0, 1,   // one api key
            0, 18, 0, 0, 0, 4,
        ];
        assert_eq!(&bytes[..], expected);
        let (header, body) = decode_response(ApiKey::ApiVersions, 0, bytes.slice(4..)).unwrap();
        assert_eq!(header.correlation_id, 7);
        let ResponseBody::ApiVersions(body) = body else {
            panic!()
        };
        assert_eq!(body.error_code, UNSUPPORTED_VERSION);
        assert_eq!(body.api_keys, supported);
    }
}
