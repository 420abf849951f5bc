//! Kafka's binary protocol.
//!
//! - `wire`: primitive types and the bounds-checked `Reader` every decoder is built on.
//! - `codec`: the traits messages implement (`Encodable`, `Decodable`, `Message`,
//!   `Request`, `Response`), the `Encoder` with splice points for zero-copy fetches,
//!   `Records`, the error types, and the helpers the generated code calls.
//! - `generated`: every request, response, header and data record at every version,
//!   generated from Kafka's JSON definitions by `scripts/codegen` (do not edit by hand).
//! - `frame`: length-prefixed frames, request/response headers, the ApiVersions
//!   fallback; the entry points the server uses.
//! - `records`: the record batch format (magic 2) that produce and fetch carry.
//! - `error_code`: Kafka's error codes.
//!
//! Decoding runs on the shard that owns the connection. Nothing here panics or
//! over-allocates on hostile bytes: every length and count is checked against the bytes
//! that remain before anything is reserved.

pub mod codec;
pub mod error_code;
pub mod frame;
pub mod generated;
pub mod placement;
pub mod records;
pub mod wire;

pub use error_code::ErrorCode;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
