//! A live move: drain the partition on its shard, hand its durable state over, switch
//! the shard table with a new revision on every shard, resume on the new shard.
//!
//! Shard 0 runs the steps in order, under the controller's one-change lock and the
//! checkpoint writer's lock (a log start offset checkpoint written half-way would miss
//! the partition):
//! 1. the old owner releases it: it stops taking requests for it, appends under way
//!    finish, the log closes as at a clean shut-down, long polls wake, an offsets
//!    partition's groups leave its coordinator, a transaction state partition's
//!    transactions finish the operations under way and leave theirs;
//! 2. the new owner adopts the handover (recovery point, log start offset);
//! 3. the controller commits the new owner as the next revision and every shard applies
//!    it; the new owner opens the log (no recovery scan: the recovery point is the log
//!    end) and, for an offsets partition, loads its groups (for a transaction state
//!    partition, its transactional ids, finishing any transaction decided but not
//!    completed).
//!
//! Appends that reach a shard not serving the partition wait for the shard table to name
//! its new owner and are passed on there (`routing::partitions`), and a connection's
//! later appends to the partition wait for them (`handlers::InFlight`), so a producer's
//! batches keep their order across the move even when it is not idempotent. Other
//! requests answer NOT_LEADER_OR_FOLLOWER (NOT_COORDINATOR for groups): Kafka clients
//! refresh their metadata and retry. The time from step 1 to the end of step 3 is what
//! the move reports as unavailable.

use crate::config::{PlacementError, PlacementRules};
use crate::groups::OFFSETS_TOPIC;
use crate::metadata::TopicPartition;
use crate::routing::Router;
use crate::transactions::TRANSACTION_STATE_TOPIC;
use shards::ShardId;
use std::fmt;
use std::time::{Duration, Instant};

/// What a move did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveReport {
    pub tp: TopicPartition,
    pub from: ShardId,
    pub to: ShardId,
    /// From the release on the old shard to the open on the new one (zero when the
    /// partition already was on `to`).
    pub unavailable: Duration,
    /// The shard table's revision afterwards.
    pub revision: u64,
    /// The partition's log end offset when it moved.
    pub log_end_offset: i64,
}

/// Why a move was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveError {
    UnknownPartition(TopicPartition),
    NoSuchShard {
        shard: usize,
        shards: usize,
    },
    /// The partition cannot move (yet): the reason.
    Refused(String),
}

impl fmt::Display for MoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoveError::UnknownPartition(tp) => write!(f, "{tp} does not exist"),
            MoveError::NoSuchShard { shard, shards } => write!(
                f,
                "shard {shard} does not exist: the broker runs {shards} shards (0-{})",
                shards - 1
            ),
            MoveError::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for MoveError {}

/// Moves `tp` to shard `to`, live. Call from any shard; the work runs on shard 0.
pub async fn move_partition(
    router: &Router,
    tp: TopicPartition,
    to: usize,
) -> Result<MoveReport, MoveError> {
    router
        .call(ShardId(0), move |router, _| async move {
            let state = router.state().clone();
            let controller = state.controller();
            let _one_change = controller.one_change().await;
            move_locked(&router, tp, to).await
        })
        .await
}

/// One move, with the controller's lock held by the caller (on shard 0).
async fn move_locked(
    router: &Router,
    tp: TopicPartition,
    to: usize,
) -> Result<MoveReport, MoveError> {
    let state = router.state().clone();
    let shards = router.count();
    if to >= shards {
        return Err(MoveError::NoSuchShard { shard: to, shards });
    }
    let to = ShardId(to);
    let Some(from) = state.controller().controller.borrow().owner(&tp) else {
        return Err(MoveError::UnknownPartition(tp));
    };
    let revision = state.controller().controller.borrow().revision();
    if from == to {
        return Ok(MoveReport {
            tp,
            from,
            to,
            unavailable: Duration::ZERO,
            revision,
            log_end_offset: -1,
        });
    }
    let _checkpoint = state
        .checkpoint_lock
        .acquire_permit(1)
        .await
        .expect("the checkpoint lock is never closed");
    let started = Instant::now();
    let released = tp.clone();
    let handover = router
        .call(from, move |router, _| async move {
            router.state().release_partition(&released).await
        })
        .await
        .map_err(MoveError::Refused)?;
    let adopted = tp.clone();
    router
        .call(to, move |router, _| async move {
            router.state().adopt_partition(&adopted, handover);
        })
        .await;
    let delta = state
        .controller()
        .controller
        .borrow_mut()
        .commit_move(&tp, to);
    let revision = delta.revision;
    router.apply_everywhere(delta).await;
    let unavailable = started.elapsed();
    tracing::info!(
        "placement: moved {tp} from {from} to {to} (log end {}, unavailable {:.1} ms, revision {revision})",
        handover.recovery_point,
        unavailable.as_secs_f64() * 1e3
    );
    if tp.topic == OFFSETS_TOPIC {
        tracing::info!("placement: {tp}'s groups now coordinated by {to}");
    } else if tp.topic == TRANSACTION_STATE_TOPIC {
        tracing::info!("placement: {tp}'s transactional ids now coordinated by {to}");
    }
    Ok(MoveReport {
        tp,
        from,
        to,
        unavailable,
        revision,
        log_end_offset: handover.recovery_point.0,
    })
}

/// What a reload did: the rules now in effect and the moves they asked for.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub rules: usize,
    pub moves: Vec<Result<MoveReport, MoveError>>,
}

/// Reads the placement file again and moves every partition the new rules place
/// elsewhere, one at a time. A file that does not parse or names a missing shard
/// changes nothing.
pub async fn reload(router: &Router) -> Result<ReloadReport, PlacementError> {
    router
        .call(ShardId(0), move |router, _| async move {
            let state = router.state().clone();
            let path = state.config.placement.path.clone();
            let rules = match &path {
                Some(path) => PlacementRules::load(path)?,
                None => PlacementRules::default(),
            };
            let count = rules.rules.len();
            let controller = state.controller();
            let _one_change = controller.one_change().await;
            controller.controller.borrow_mut().set_placement(rules)?;
            let misplaced = controller.controller.borrow().misplaced();
            let mut moves = Vec::new();
            for (tp, _, to) in misplaced {
                moves.push(move_locked(&router, tp, to.0).await);
            }
            tracing::info!(
                "placement: reloaded {count} rules from {}, {} moves",
                path.map(|p| p.display().to_string())
                    .unwrap_or_else(|| "no file".into()),
                moves.len()
            );
            Ok(ReloadReport {
                rules: count,
                moves,
            })
        })
        .await
}
