//! The network side of a shard: listeners, connections, and the zero-copy send path.

pub mod sendfile;
