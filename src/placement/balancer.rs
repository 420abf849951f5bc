//! The load balancer (`placement.balancer=load`, off by default): every
//! `placement.balancer.interval.ms` it measures how busy each shard was and how much of
//! that each partition's work took, and moves hot partitions off a saturated shard.
//!
//! Runs on shard 0. The decision is a pure function of two samples (`Balancer::decide`)
//! so it is tested without a broker; `run` samples, decides and moves.
//!
//! The rules, each logged with the numbers behind it:
//! - the gap between the busiest and the idlest shard (busy time, in points of one core)
//!   must exceed `placement.balancer.threshold.percent` for two intervals running
//!   (hysteresis: one burst moves nothing);
//! - a candidate lives on the busiest shard, may live on the idlest under the placement
//!   rules, was not moved in the last few intervals, and is the partition whose load is
//!   closest to half the gap without exceeding the gap (so the move narrows it);
//! - at most `placement.balancer.max.moves` moves per interval (the move budget).

use super::moves::move_partition;
use crate::config::PlacementRules;
use crate::metadata::TopicPartition;
use crate::routing::Router;
use shards::rt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Intervals a moved partition stays where it went before it may move again.
const COOLDOWN_INTERVALS: u32 = 3;
/// Intervals the gap must stay over the threshold before the balancer acts.
const PERSISTENCE_INTERVALS: u32 = 2;

/// Cumulative counters read at one moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// A monotonic clock, in nanoseconds.
    pub at_ns: u64,
    /// Busy time of each shard so far, in nanoseconds.
    pub shard_busy_ns: Vec<u64>,
    /// Each partition, its shard, and the busy time its work took so far (counters
    /// restart when a partition moves).
    pub partitions: Vec<(TopicPartition, usize, u64)>,
}

/// A move the balancer decided on, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub tp: TopicPartition,
    pub from: usize,
    pub to: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Copy)]
pub struct BalancerConfig {
    /// Points of one core (0-100) the busiest and idlest shard may differ by.
    pub threshold_percent: f64,
    pub max_moves: usize,
}

#[derive(Debug)]
pub struct Balancer {
    config: BalancerConfig,
    previous: Option<Sample>,
    /// Intervals in a row the gap was over the threshold.
    over: u32,
    /// Partitions moved recently, with the intervals left before they may move again.
    cooldown: HashMap<TopicPartition, u32>,
}

impl Balancer {
    pub fn new(config: BalancerConfig) -> Balancer {
        Balancer {
            config,
            previous: None,
            over: 0,
            cooldown: HashMap::new(),
        }
    }

    /// Takes the next sample; returns the moves to make (none on the first sample) and a
    /// line saying what the balancer saw.
    pub fn decide(&mut self, sample: Sample, rules: &PlacementRules) -> (Vec<Decision>, String) {
        let Some(previous) = self.previous.replace(sample.clone()) else {
            return (Vec::new(), "first sample".into());
        };
        for left in self.cooldown.values_mut() {
            *left = left.saturating_sub(1);
        }
        self.cooldown.retain(|_, left| *left > 0);
        let elapsed = sample.at_ns.saturating_sub(previous.at_ns);
        let shards = sample.shard_busy_ns.len();
        if elapsed == 0 || shards < 2 || previous.shard_busy_ns.len() != shards {
            return (Vec::new(), "nothing to compare".into());
        }
        let percent =
            |now: u64, before: u64| now.saturating_sub(before) as f64 * 100.0 / elapsed as f64;
        let busy: Vec<f64> = (0..shards)
            .map(|s| percent(sample.shard_busy_ns[s], previous.shard_busy_ns[s]))
            .collect();
        let before: HashMap<(&TopicPartition, usize), u64> = previous
            .partitions
            .iter()
            .map(|(tp, shard, ns)| ((tp, *shard), *ns))
            .collect();
        // A partition's load over the interval, where it stayed on one shard throughout.
        let mut loads: Vec<(TopicPartition, usize, f64)> = sample
            .partitions
            .iter()
            .filter_map(|(tp, shard, ns)| {
                let was = before.get(&(tp, *shard))?;
                Some((tp.clone(), *shard, percent(*ns, *was)))
            })
            .collect();
        let mut moves = Vec::new();
        let mut busy = busy;
        let mut summary = String::new();
        for _ in 0..self.config.max_moves {
            let order = |a: &(usize, &f64), b: &(usize, &f64)| a.1.total_cmp(b.1);
            let (hot, hot_busy) = busy.iter().enumerate().max_by(order).expect("shards");
            let (cold, cold_busy) = busy.iter().enumerate().min_by(order).expect("shards");
            let (hot_busy, cold_busy) = (*hot_busy, *cold_busy);
            let gap = hot_busy - cold_busy;
            summary = format!(
                "shard busy {} (gap {gap:.0} points, threshold {:.0})",
                busy.iter()
                    .enumerate()
                    .map(|(s, b)| format!("{s}: {b:.0}%"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.config.threshold_percent
            );
            if gap <= self.config.threshold_percent {
                self.over = 0;
                break;
            }
            if moves.is_empty() {
                self.over += 1;
                if self.over < PERSISTENCE_INTERVALS {
                    summary.push_str(": over the threshold, waiting one more interval");
                    break;
                }
            }
            let candidate = loads
                .iter()
                .enumerate()
                .filter(|(_, (tp, shard, load))| {
                    *shard == hot
                        && *load > 0.0
                        && *load < gap
                        && !self.cooldown.contains_key(tp)
                        && rules.allowed(tp, shards).contains(&cold)
                })
                .min_by(|(_, a), (_, b)| {
                    (a.2 - gap / 2.0).abs().total_cmp(&(b.2 - gap / 2.0).abs())
                })
                .map(|(at, _)| at);
            let Some(at) = candidate else {
                summary.push_str(": no partition on the busiest shard can narrow the gap");
                break;
            };
            let (tp, _, load) = loads.remove(at);
            busy[hot] -= load;
            busy[cold] += load;
            self.cooldown.insert(tp.clone(), COOLDOWN_INTERVALS);
            moves.push(Decision {
                reason: format!(
                    "shard {hot} {hot_busy:.0}% busy, shard {cold} {cold_busy:.0}% (gap {gap:.0} > {:.0} points): {tp} took {load:.0}% of a core",
                    self.config.threshold_percent
                ),
                tp,
                from: hot,
                to: cold,
            });
        }
        if !moves.is_empty() {
            self.over = 0;
        }
        (moves, summary)
    }
}

/// Shard 0, with `placement.balancer=load`: samples, decides and moves every
/// `placement.balancer.interval.ms` until shut-down drops the task.
pub fn start(router: Router) -> rt::Task<()> {
    let config = router.state().config.clone();
    let interval = Duration::from_millis(config.placement_balancer_interval_ms as u64);
    let mut balancer = Balancer::new(BalancerConfig {
        threshold_percent: f64::from(config.placement_balancer_threshold_percent),
        max_moves: config.placement_balancer_max_moves as usize,
    });
    tracing::info!(
        "placement balancer: every {} ms, threshold {} points, at most {} moves an interval",
        config.placement_balancer_interval_ms,
        config.placement_balancer_threshold_percent,
        config.placement_balancer_max_moves
    );
    let epoch = Instant::now();
    rt::spawn(async move {
        loop {
            rt::sleep(interval).await;
            let sample = sample(&router, epoch).await;
            let rules = router
                .state()
                .controller()
                .controller
                .borrow()
                .placement()
                .clone();
            let (decisions, seen) = balancer.decide(sample, &rules);
            tracing::debug!("placement balancer: {seen}");
            for decision in decisions {
                let outcome = move_partition(&router, decision.tp.clone(), decision.to).await;
                match outcome {
                    Ok(report) => tracing::info!(
                        "placement balancer: {}; moved to shard {} in {:.1} ms",
                        decision.reason,
                        decision.to,
                        report.unavailable.as_secs_f64() * 1e3
                    ),
                    Err(e) => {
                        tracing::warn!("placement balancer: {}; not moved: {e}", decision.reason)
                    }
                }
            }
        }
    })
}

/// Every shard's and every partition's cumulative busy time, now.
async fn sample(router: &Router, epoch: Instant) -> Sample {
    let mut sample = Sample::default();
    for (shard, partitions) in router.load().await {
        sample.shard_busy_ns.push(shard.busy_ns);
        sample.partitions.extend(partitions.into_iter().map(|p| {
            (
                TopicPartition::new(p.topic, p.partition),
                p.shard,
                p.busy_ns,
            )
        }));
    }
    sample.at_ns = epoch.elapsed().as_nanos() as u64;
    sample
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic.to_string(), partition)
    }

    /// A sample at `seconds` where each shard was busy `busy` percent of every second so
    /// far and each partition took `load` percent of a core.
    fn sample(seconds: u64, busy: &[u64], partitions: &[(&str, i32, usize, u64)]) -> Sample {
        Sample {
            at_ns: seconds * SECOND,
            shard_busy_ns: busy.iter().map(|b| b * seconds * SECOND / 100).collect(),
            partitions: partitions
                .iter()
                .map(|(t, p, s, load)| (tp(t, *p), *s, load * seconds * SECOND / 100))
                .collect(),
        }
    }

    fn balancer(threshold: f64, max_moves: usize) -> Balancer {
        Balancer::new(BalancerConfig {
            threshold_percent: threshold,
            max_moves,
        })
    }

    const SKEWED: &[(&str, i32, usize, u64)] = &[
        ("hot", 0, 0, 40),
        ("hot", 1, 0, 30),
        ("warm", 0, 0, 15),
        ("cool", 0, 1, 5),
    ];

    #[test]
    fn a_lasting_imbalance_moves_the_partition_closest_to_half_the_gap() {
        let rules = PlacementRules::default();
        let mut b = balancer(20.0, 1);
        assert!(b.decide(sample(10, &[90, 10], SKEWED), &rules).0.is_empty());
        // Over the threshold once: wait.
        let (moves, why) = b.decide(sample(20, &[90, 10], SKEWED), &rules);
        assert!(moves.is_empty(), "{why}");
        assert!(why.contains("waiting"), "{why}");
        // Twice: move. The gap is 80 points; hot-0 (40) is exactly half of it.
        let (moves, why) = b.decide(sample(30, &[90, 10], SKEWED), &rules);
        assert_eq!(moves.len(), 1, "{why}");
        assert_eq!(moves[0].tp, tp("hot", 0));
        assert_eq!((moves[0].from, moves[0].to), (0, 1));
        assert!(
            moves[0].reason.contains("gap 80 > 20"),
            "{}",
            moves[0].reason
        );
    }

    #[test]
    fn a_balanced_broker_moves_nothing() {
        let rules = PlacementRules::default();
        let mut b = balancer(20.0, 3);
        for t in 1..5 {
            let (moves, why) = b.decide(sample(t * 10, &[50, 40], SKEWED), &rules);
            assert!(moves.is_empty(), "{why}");
        }
    }

    #[test]
    fn the_move_budget_and_the_placement_rules_bound_the_moves() {
        let rules =
            PlacementRules::parse(std::path::Path::new("p"), "hot:0 0\n").expect("rules parse");
        let mut b = balancer(10.0, 2);
        b.decide(sample(10, &[95, 5], SKEWED), &rules);
        b.decide(sample(20, &[95, 5], SKEWED), &rules);
        let (moves, why) = b.decide(sample(30, &[95, 5], SKEWED), &rules);
        // hot-0 is pinned to shard 0: hot-1 (30) goes, then warm-0 (15).
        let moved: Vec<_> = moves.iter().map(|m| m.tp.clone()).collect();
        assert_eq!(moved, vec![tp("hot", 1), tp("warm", 0)], "{why}");
    }

    #[test]
    fn a_moved_partition_cools_down_before_it_moves_again() {
        let rules = PlacementRules::default();
        let mut b = balancer(10.0, 1);
        let only = &[("solo", 0, 0, 60)];
        b.decide(sample(10, &[80, 0], only), &rules);
        b.decide(sample(20, &[80, 0], only), &rules);
        let (moves, _) = b.decide(sample(30, &[80, 0], only), &rules);
        assert_eq!(moves.len(), 1);
        // Now on shard 1 and just as hot there: the counters restart on its new shard.
        let there = &[("solo", 0, 1, 60)];
        b.decide(sample(40, &[0, 80], there), &rules);
        let (moves, why) = b.decide(sample(50, &[0, 80], there), &rules);
        assert!(moves.is_empty(), "a partition bounces back at once: {why}");
    }
}
