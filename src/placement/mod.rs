//! Per-core placement: moving a live partition from one shard to another, applying the
//! placement file (`placement.file`, rules in `config::placement`) on reload, and the
//! optional load balancer (`placement.balancer=load`).
//!
//! Runs on shard 0, next to the controller: a move holds the controller's one-change
//! lock, so moves, topic changes and reloads happen one at a time and every shard sees
//! them in the same revision order. The shards themselves only release a partition
//! (`ShardState::release_partition`) and open it (`ShardState::apply_metadata`).
//!
//! Invariants: a partition is open on at most one shard at any moment; between its
//! release and its open no shard serves it (requests answer NOT_LEADER_OR_FOLLOWER, which
//! clients retry); nothing acknowledged is lost because the old owner closes the log as
//! a clean shut-down does (every append synced, producer state snapshotted) before the
//! shard table names the new owner.

pub mod balancer;
pub mod moves;

pub use moves::{MoveError, MoveReport};
