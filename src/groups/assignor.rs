//! Server-side assignors for KIP-848 consumer groups: `uniform` (balanced and sticky)
//! and `range` (contiguous ranges per topic, co-partitioning topics of equal size).
//!
//! Pure functions of the group's subscriptions, the subscribed topics' partition counts
//! and, for stickiness, the previous target assignment. Run on the coordinator shard
//! whenever the group epoch moves past the assignment epoch.
//!
//! Invariants (checked by the tests): every partition of a subscribed topic goes to
//! exactly one member subscribed to that topic; with `uniform`, members subscribed to
//! the same topics differ by at most one partition.

use crate::protocol::wire::Uuid;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Topic id → the partitions a member owns or should own.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// What an assignor sees of the group.
pub struct AssignmentSpec<'a> {
    /// Member id → the ids of the (existing) topics it subscribes to.
    pub members: BTreeMap<String, BTreeSet<Uuid>>,
    /// Topic id → partition count, for every subscribed topic.
    pub topics: BTreeMap<Uuid, i32>,
    /// The previous target assignment, for stickiness.
    pub previous: &'a HashMap<String, Assignment>,
}

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";

/// Runs the named assignor (one of `UNIFORM`, `RANGE`).
pub fn assign(name: &str, spec: &AssignmentSpec) -> HashMap<String, Assignment> {
    match name {
        RANGE => range(spec),
        _ => uniform(spec),
    }
}

/// Balanced and sticky: a member keeps what it had as long as it is subscribed and not
/// above its fair share; the rest goes to the least-loaded subscribed member.
pub fn uniform(spec: &AssignmentSpec) -> HashMap<String, Assignment> {
    let mut counts: BTreeMap<&str, usize> = spec.members.keys().map(|m| (m.as_str(), 0)).collect();
    let mut owner: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    let subscribers = |topic: &Uuid| -> Vec<&str> {
        spec.members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m.as_str())
            .collect()
    };
    // Each member's fair share: the partitions it could take, over the members that
    // could take them, rounded up.
    let mut share: BTreeMap<&str, usize> = BTreeMap::new();
    for (member, topics) in &spec.members {
        let mut fair = 0f64;
        for topic in topics {
            let partitions = spec.topics.get(topic).copied().unwrap_or(0).max(0) as f64;
            fair += partitions / subscribers(topic).len().max(1) as f64;
        }
        share.insert(member, fair.ceil() as usize);
    }
    // 1. Stickiness: keep previous partitions within the fair share.
    for (member, previous) in spec.previous {
        let Some(topics) = spec.members.get(member) else {
            continue;
        };
        for (topic, partitions) in previous {
            let count = spec.topics.get(topic).copied().unwrap_or(0);
            if !topics.contains(topic) {
                continue;
            }
            for &p in partitions {
                let kept = counts[member.as_str()];
                if p < count && kept < share[member.as_str()] && !owner.contains_key(&(*topic, p)) {
                    owner.insert((*topic, p), member.as_str());
                    *counts.get_mut(member.as_str()).expect("a member") += 1;
                }
            }
        }
    }
    // 2. Everything else to the least-loaded subscriber (ties: member id order).
    for (topic, &count) in &spec.topics {
        let eligible = subscribers(topic);
        for p in 0..count.max(0) {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            if let Some(member) = eligible.iter().copied().min_by_key(|m| (counts[m], *m)) {
                owner.insert((*topic, p), member);
                *counts.get_mut(member).expect("a member") += 1;
            }
        }
    }
    // 3. Even out what stickiness left uneven: move partitions from a member with two
    // more than another subscriber of the same topic.
    loop {
        let mut moved = false;
        let owned: Vec<((Uuid, i32), &str)> = owner.iter().map(|(k, v)| (*k, *v)).collect();
        for ((topic, p), member) in owned {
            let target = subscribers(&topic)
                .into_iter()
                .filter(|m| counts[m] + 1 < counts[member])
                .min_by_key(|m| (counts[m], *m));
            if let Some(target) = target {
                owner.insert((topic, p), target);
                *counts.get_mut(member).expect("a member") -= 1;
                *counts.get_mut(target).expect("a member") += 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    collect(spec, owner)
}

/// Kafka's range assignment per topic: subscribers in member id order, each taking a
/// contiguous range, the first `partitions % members` one partition more.
pub fn range(spec: &AssignmentSpec) -> HashMap<String, Assignment> {
    let mut owner: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    for (topic, &count) in &spec.topics {
        let subscribers: Vec<&str> = spec
            .members
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m.as_str())
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let count = count.max(0) as usize;
        let (base, extra) = (count / subscribers.len(), count % subscribers.len());
        let mut next = 0;
        for (i, member) in subscribers.iter().enumerate() {
            let take = base + usize::from(i < extra);
            for p in next..next + take {
                owner.insert((*topic, p as i32), member);
            }
            next += take;
        }
    }
    collect(spec, owner)
}

fn collect(
    spec: &AssignmentSpec,
    owner: BTreeMap<(Uuid, i32), &str>,
) -> HashMap<String, Assignment> {
    let mut out: HashMap<String, Assignment> = spec
        .members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for ((topic, p), member) in owner {
        out.get_mut(member)
            .expect("partitions go to members")
            .entry(topic)
            .or_default()
            .insert(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[15] = n;
        Uuid(bytes)
    }

    fn spec<'a>(
        members: &[(&str, &[u8])],
        topics: &[(u8, i32)],
        previous: &'a HashMap<String, Assignment>,
    ) -> AssignmentSpec<'a> {
        AssignmentSpec {
            members: members
                .iter()
                .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| topic(*t)).collect()))
                .collect(),
            topics: topics.iter().map(|(t, n)| (topic(*t), *n)).collect(),
            previous,
        }
    }

    fn sizes(result: &HashMap<String, Assignment>) -> BTreeMap<String, usize> {
        result
            .iter()
            .map(|(m, a)| (m.clone(), a.values().map(BTreeSet::len).sum()))
            .collect()
    }

    /// Every partition of every topic goes to exactly one subscriber.
    fn check_complete(spec: &AssignmentSpec, result: &HashMap<String, Assignment>) {
        for (t, &count) in &spec.topics {
            for p in 0..count {
                let owners: Vec<&String> = result
                    .iter()
                    .filter(|(_, a)| a.get(t).is_some_and(|ps| ps.contains(&p)))
                    .map(|(m, _)| m)
                    .collect();
                assert_eq!(owners.len(), 1, "{t}-{p} has owners {owners:?}");
                assert!(
                    spec.members[owners[0]].contains(t),
                    "{t}-{p} to a non-subscriber"
                );
            }
        }
    }

    #[test]
    fn uniform_spreads_six_partitions_over_three_members_two_each() {
        let none = HashMap::new();
        let spec = spec(&[("a", &[1]), ("b", &[1]), ("c", &[1])], &[(1, 6)], &none);
        let result = uniform(&spec);
        check_complete(&spec, &result);
        assert!(sizes(&result).values().all(|&n| n == 2), "{result:?}");
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins() {
        let none = HashMap::new();
        let before = uniform(&spec(&[("a", &[1]), ("b", &[1])], &[(1, 6)], &none));
        let after_spec = spec(&[("a", &[1]), ("b", &[1]), ("c", &[1])], &[(1, 6)], &before);
        let after = uniform(&after_spec);
        check_complete(&after_spec, &after);
        assert!(sizes(&after).values().all(|&n| n == 2), "{after:?}");
        for member in ["a", "b"] {
            let kept = after[member][&topic(1)].is_subset(&before[member][&topic(1)]);
            assert!(
                kept,
                "{member} lost partitions it could keep: {before:?} -> {after:?}"
            );
        }
    }

    #[test]
    fn uniform_balances_heterogeneous_subscriptions() {
        let none = HashMap::new();
        let spec = spec(
            &[("a", &[1, 2]), ("b", &[1]), ("c", &[2])],
            &[(1, 4), (2, 4)],
            &none,
        );
        let result = uniform(&spec);
        check_complete(&spec, &result);
        let sizes = sizes(&result);
        let (min, max) = (sizes.values().min().unwrap(), sizes.values().max().unwrap());
        assert!(max - min <= 1, "{sizes:?}");
    }

    #[test]
    fn range_gives_contiguous_ranges_extra_partitions_first() {
        let none = HashMap::new();
        let spec = spec(&[("a", &[1, 2]), ("b", &[1, 2])], &[(1, 3), (2, 3)], &none);
        let result = range(&spec);
        check_complete(&spec, &result);
        assert_eq!(result["a"][&topic(1)], BTreeSet::from([0, 1]));
        assert_eq!(result["b"][&topic(1)], BTreeSet::from([2]));
        assert_eq!(result["a"][&topic(2)], BTreeSet::from([0, 1]));
    }

    #[test]
    fn members_without_subscribed_topics_get_nothing() {
        let none = HashMap::new();
        let spec = spec(&[("a", &[]), ("b", &[1])], &[(1, 2)], &none);
        for result in [uniform(&spec), range(&spec)] {
            check_complete(&spec, &result);
            assert!(result["a"].is_empty());
        }
    }
}
