//! Kafka's binary protocol: primitive wire types, (later) the generated request and
//! response messages, frames and headers, and record batches (magic 2).
//!
//! Decoding runs on the shard that owns the connection. Nothing here panics or
//! over-allocates on hostile bytes: every length and count is checked against the bytes
//! that remain before anything is reserved.

pub mod error_code;
pub mod records;
pub mod wire;

pub use error_code::ErrorCode;
