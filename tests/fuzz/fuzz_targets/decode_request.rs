//! Request decoding on arbitrary bytes: frame size check, header and body for every API
//! key and version. Never panics; whatever decodes must re-encode, and decoding the
//! re-encoding must give the same value.
//!
//! Input: the first byte chooses the mode. Even: the rest is a raw request frame (the
//! bytes after the size prefix). Odd: the next two bytes pick an API key and a version in
//! its range, and the rest follows that header prefix, so every API and version is
//! reached without the fuzzer having to guess the key and version first.
#![no_main]

use bytes::Bytes;
use corelog::protocol::frame::{
    DEFAULT_MAX_REQUEST_SIZE, check_frame, decode_request, encode_request,
};
use corelog::protocol::generated::ApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check_frame(data, DEFAULT_MAX_REQUEST_SIZE);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let frame = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let [key, version, body @ ..] = rest else {
            return;
        };
        let api_key = ApiKey::ALL[usize::from(*key) % ApiKey::ALL.len()];
        let range = api_key.valid_versions();
        let span = (range.max - range.min + 1) as u8;
        let version = range.min + i16::from(*version % span);
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&api_key.key().to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(body);
        frame
    };
    let Ok(decoded) = decode_request(Bytes::from(frame)) else {
        return;
    };
    let encoded = encode_request(&decoded.header, &decoded.body)
        .unwrap_or_else(|e| panic!("decoded request does not re-encode: {e}\n{decoded:?}"));
    let again = decode_request(encoded.into_bytes().slice(4..))
        .unwrap_or_else(|e| panic!("re-encoding does not decode: {e}\n{decoded:?}"));
    // Float fields may hold NaN, never equal to itself: compare the text then.
    if again != decoded {
        assert_eq!(format!("{again:?}"), format!("{decoded:?}"));
    }
});
