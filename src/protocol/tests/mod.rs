//! Codec-wide tests: round trips of every message at every version, hostile input
//! against the request decoder, and the `kafka-protocol` crate as an oracle.

mod hostile;
mod oracle;
mod round_trip;
