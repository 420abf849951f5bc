//! Consumer groups with real clients against the real broker: librdkafka (the `rdkafka`
//! crate) members that `subscribe` (one in a child process that is killed), both protocols (classic
//! with eager and cooperative assignors, static membership; KIP-848's consumer
//! protocol), committed offsets across consumer and broker restarts, and groups spread
//! over both shards.

mod common;

use common::Broker;
use common::groups::{CLASSIC, ChildMember, Member, Seen, run_member_child, wait_until};
use common::kafka::{TestRecord, producer, send_all, test_record};
use rdkafka::ClientConfig;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 6;

fn start_broker() -> Broker {
    Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "num.partitions=6",
        "--set",
        "group.initial.rebalance.delay.ms=300",
        "--set",
        "group.consumer.heartbeat.interval.ms=500",
        "--set",
        "group.consumer.min.heartbeat.interval.ms=500",
    ])
}

fn records(tag: &str, range: std::ops::Range<usize>) -> Vec<TestRecord> {
    range
        .map(|i| test_record(tag, i, 1_700_000_000_000))
        .collect()
}

/// Produces keyed records (acks=all) and returns how many went to each partition.
fn produce(broker: &Broker, topic: &str, records: &[TestRecord]) -> BTreeMap<i32, usize> {
    let producer = producer(broker, &[("acks", "all")]);
    let mut per_partition = BTreeMap::new();
    for delivery in send_all(&producer, topic, None, records) {
        assert!(delivery.error.is_none(), "{delivery:?}");
        *per_partition.entry(delivery.partition).or_default() += 1;
    }
    per_partition
}

/// Creates the topic (auto-created, 6 partitions) through a Metadata request.
fn create_topic(broker: &Broker, topic: &str) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("allow.auto.create.topics", "true")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata (auto-creates the topic)");
    assert_eq!(metadata.topics()[0].partitions().len(), PARTITIONS as usize);
}

fn all_partitions() -> BTreeSet<i32> {
    (0..PARTITIONS).collect()
}

/// True when the members' assignments are disjoint and cover every partition, with
/// the given number each.
fn split(members: &[&Member], each: usize) -> bool {
    let assignments: Vec<BTreeSet<i32>> = members.iter().map(|m| m.assignment()).collect();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    union == all_partitions()
        && total == PARTITIONS as usize
        && assignments.iter().all(|a| a.len() == each)
}

fn committed(broker: &Broker, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(topic, p);
    }
    let offsets = consumer
        .committed_offsets(list, Duration::from_secs(30))
        .expect("OffsetFetch");
    offsets
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().unwrap_or(-1)))
        .collect()
}

fn seen_by_partition(seen: impl IntoIterator<Item = Seen>) -> BTreeMap<i32, Vec<i64>> {
    let mut out: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for s in seen {
        out.entry(s.partition).or_default().push(s.offset);
    }
    out
}

#[test]
fn three_members_share_six_partitions_two_each_and_consume_every_record_exactly_once() {
    let broker = start_broker();
    let (topic, group) = ("groups-three", "three");
    create_topic(&broker, topic);
    let members: Vec<Member> = (0..3)
        .map(|_| Member::start(&broker, group, topic, CLASSIC))
        .collect();
    let refs: Vec<&Member> = members.iter().collect();
    assert!(
        wait_until(Duration::from_secs(60), || split(&refs, 2)),
        "assignments: {:?}",
        refs.iter().map(|m| m.assignment()).collect::<Vec<_>>()
    );
    let sent = records(topic, 0..3000);
    let per_partition = produce(&broker, topic, &sent);
    let total = || members.iter().map(|m| m.consumed().len()).sum::<usize>();
    assert!(
        wait_until(Duration::from_secs(60), || total() >= sent.len()),
        "consumed {} of {}",
        total(),
        sent.len()
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut all: Vec<Seen> = members.iter().flat_map(|m| m.consumed()).collect();
    all.sort();
    let distinct: BTreeSet<(i32, i64)> = all.iter().map(|s| (s.partition, s.offset)).collect();
    assert_eq!(all.len(), distinct.len(), "a record was consumed twice");
    for (partition, count) in per_partition {
        let offsets: Vec<i64> = all
            .iter()
            .filter(|s| s.partition == partition)
            .map(|s| s.offset)
            .collect();
        assert_eq!(
            offsets,
            (0..count as i64).collect::<Vec<_>>(),
            "partition {partition}"
        );
    }
    // Each member consumed only its own partitions.
    for member in &members {
        let own = member.assignment();
        assert!(member.consumed().iter().all(|s| own.contains(&s.partition)));
        assert!(member.errors().is_empty(), "{:?}", member.errors());
    }
}

/// Run in a child process by the test below (`ChildMember`); does nothing otherwise.
#[test]
fn member_child() {
    run_member_child();
}

#[test]
fn a_member_that_dies_loses_its_partitions_within_the_session_timeout_and_committed_records_are_not_consumed_again()
 {
    let broker = start_broker();
    let (topic, group) = ("groups-kill", "kill");
    create_topic(&broker, topic);
    let a = Member::start(&broker, group, topic, CLASSIC);
    let b = Member::start(&broker, group, topic, CLASSIC);
    let mut doomed = ChildMember::start(&broker, group, topic, "member_child");
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (ours, theirs) = (a.assignment(), b.assignment());
            ours.len() == 2 && theirs.len() == 2 && ours.is_disjoint(&theirs)
        }),
        "assignments {:?} {:?}",
        a.assignment(),
        b.assignment()
    );
    let doomed_partitions: BTreeSet<i32> = all_partitions()
        .difference(&a.assignment().union(&b.assignment()).copied().collect())
        .copied()
        .collect();
    let first = records(topic, 0..1200);
    produce(&broker, topic, &first);
    let total = || a.consumed().len() + b.consumed().len() + doomed.consumed().len();
    assert!(
        wait_until(Duration::from_secs(60), || total() >= first.len()),
        "consumed {} + {} + {} of {}; the child printed {:?}",
        a.consumed().len(),
        b.consumed().len(),
        doomed.consumed().len(),
        first.len(),
        doomed
            .lines
            .lock()
            .unwrap()
            .iter()
            .take(5)
            .collect::<Vec<_>>()
    );
    // Let kcat commit what it consumed (auto.commit.interval.ms=100), then kill it.
    std::thread::sleep(Duration::from_millis(1000));
    doomed.kill();
    let killed = Instant::now();
    let committed_at_death = committed(&broker, group, topic);
    for p in &doomed_partitions {
        assert!(
            committed_at_death[p] > 0,
            "kcat committed partition {p}: {committed_at_death:?}"
        );
    }

    // The survivors take over every partition within the session timeout (6 s), plus
    // the time to rejoin.
    assert!(
        wait_until(Duration::from_secs(30), || split(&[&a, &b], 3)),
        "assignments after the death: {:?} {:?}",
        a.assignment(),
        b.assignment()
    );
    // The session timeout (6 s) plus the survivors' rejoin, with room for a loaded
    // 2-core CI machine running other brokers of this file at the same time.
    let took = killed.elapsed();
    eprintln!("the dead member's partitions moved {took:?} after the kill");
    assert!(took < Duration::from_secs(6 + 8), "rebalance took {took:?}");

    let second = records(topic, 1200..1800);
    produce(&broker, topic, &second);
    let survivors = || a.consumed().len() + b.consumed().len();
    let before: usize = first.len() - doomed.consumed().len();
    assert!(wait_until(Duration::from_secs(60), || survivors()
        >= before + second.len()));
    // Nothing the dead member committed was consumed again by the survivors.
    for s in a.consumed().into_iter().chain(b.consumed()) {
        if doomed_partitions.contains(&s.partition) {
            assert!(
                s.offset >= committed_at_death[&s.partition],
                "{s:?} was committed by the dead member (committed {committed_at_death:?})"
            );
        }
    }
}

#[test]
fn committed_offsets_survive_a_consumer_restart_and_a_broker_restart() {
    let mut broker = start_broker();
    let (topic, group) = ("groups-restart", "restart");
    create_topic(&broker, topic);
    let first = records(topic, 0..600);
    produce(&broker, topic, &first);
    let member = Member::start(&broker, group, topic, CLASSIC);
    assert!(wait_until(Duration::from_secs(60), || member
        .consumed()
        .len()
        >= first.len()));
    member.close();
    let committed_before = committed(&broker, group, topic);
    let total: i64 = committed_before.values().sum();
    assert_eq!(total, first.len() as i64, "{committed_before:?}");

    broker.restart();
    assert_eq!(committed(&broker, group, topic), committed_before);
    let second = records(topic, 600..900);
    produce(&broker, topic, &second);
    let member = Member::start(&broker, group, topic, CLASSIC);
    assert!(wait_until(Duration::from_secs(60), || member
        .consumed()
        .len()
        >= second.len()));
    std::thread::sleep(Duration::from_millis(500));
    let consumed = member.consumed();
    assert_eq!(
        consumed.len(),
        second.len(),
        "records before the commit came back"
    );
    for (partition, offsets) in seen_by_partition(consumed) {
        assert_eq!(
            offsets[0], committed_before[&partition],
            "partition {partition}"
        );
    }
}

#[test]
fn cooperative_sticky_members_keep_their_partitions_when_a_member_joins() {
    let broker = start_broker();
    let (topic, group) = ("groups-coop", "coop");
    create_topic(&broker, topic);
    let settings = [
        CLASSIC,
        &[("partition.assignment.strategy", "cooperative-sticky")],
    ]
    .concat();
    let a = Member::start(&broker, group, topic, &settings);
    let b = Member::start(&broker, group, topic, &settings);
    assert!(wait_until(Duration::from_secs(60), || split(&[&a, &b], 3)));
    let (a_before, b_before) = (a.assignment(), b.assignment());
    let c = Member::start(&broker, group, topic, &settings);
    assert!(
        wait_until(Duration::from_secs(60), || split(&[&a, &b, &c], 2)),
        "{:?} {:?} {:?}",
        a.assignment(),
        b.assignment(),
        c.assignment()
    );
    // Incremental: the old members kept what they still own.
    assert!(
        a.assignment().is_subset(&a_before),
        "{a_before:?} -> {:?}",
        a.assignment()
    );
    assert!(
        b.assignment().is_subset(&b_before),
        "{b_before:?} -> {:?}",
        b.assignment()
    );
    let sent = records(topic, 0..600);
    produce(&broker, topic, &sent);
    let total = || a.consumed().len() + b.consumed().len() + c.consumed().len();
    assert!(wait_until(Duration::from_secs(60), || total() >= sent.len()));
}

#[test]
fn a_static_member_that_restarts_within_its_session_gets_its_partitions_back_without_a_rebalance() {
    let broker = start_broker();
    let (topic, group) = ("groups-static", "static");
    create_topic(&broker, topic);
    let settings = |instance: &'static str| [CLASSIC, &[("group.instance.id", instance)]].concat();
    let a = Member::start(&broker, group, topic, &settings("instance-a"));
    let b = Member::start(&broker, group, topic, &settings("instance-b"));
    assert!(wait_until(Duration::from_secs(60), || split(&[&a, &b], 3)));
    std::thread::sleep(Duration::from_secs(1));
    let (a_partitions, b_partitions) = (a.assignment(), b.assignment());
    let a_rebalances = a.rebalances();
    // A static member does not leave the group when it closes...
    b.close();
    // ...so the same instance coming back takes its partitions over at once.
    let b = Member::start(&broker, group, topic, &settings("instance-b"));
    assert!(
        wait_until(Duration::from_secs(30), || b.assignment() == b_partitions),
        "{b_partitions:?} -> {:?}",
        b.assignment()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(a.assignment(), a_partitions);
    assert_eq!(
        a.rebalances(),
        a_rebalances,
        "the other member was rebalanced"
    );
    assert!(a.errors().is_empty() && b.errors().is_empty());
}

#[test]
fn kip_848_members_get_assignments_from_the_coordinator_and_rebalance_when_one_joins() {
    let broker = start_broker();
    let (topic, group) = ("groups-848", "kip848");
    create_topic(&broker, topic);
    let settings: &[(&str, &str)] = &[("group.protocol", "consumer")];
    let a = Member::start(&broker, group, topic, settings);
    assert!(
        wait_until(Duration::from_secs(60), || a.assignment()
            == all_partitions()),
        "{:?} {:?}",
        a.assignment(),
        a.errors()
    );
    let b = Member::start(&broker, group, topic, settings);
    assert!(
        wait_until(Duration::from_secs(60), || split(&[&a, &b], 3)),
        "{:?} {:?} {:?}",
        a.assignment(),
        b.assignment(),
        b.errors()
    );
    let sent = records(topic, 0..600);
    produce(&broker, topic, &sent);
    let total = || a.consumed().len() + b.consumed().len();
    assert!(wait_until(Duration::from_secs(60), || total() >= sent.len()));
    std::thread::sleep(Duration::from_millis(500));
    let mut all: Vec<(i32, i64)> = a
        .consumed()
        .into_iter()
        .chain(b.consumed())
        .map(|s| (s.partition, s.offset))
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), sent.len());
    // b leaves; a takes everything back.
    b.close();
    assert!(wait_until(Duration::from_secs(60), || a.assignment()
        == all_partitions()));
}

#[test]
fn with_two_shards_groups_are_coordinated_on_both() {
    let broker = start_broker();
    let topic = "groups-shards";
    create_topic(&broker, topic);
    produce(&broker, topic, &records(topic, 0..60));
    // Simple (assign-only) consumers committing for 16 groups: each group lives on the
    // shard owning its __consumer_offsets partition.
    for i in 0..16 {
        let group = format!("spread-{i}");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", &group)
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            list.add_partition_offset(topic, p, rdkafka::Offset::Offset(i64::from(i)))
                .unwrap();
        }
        consumer
            .commit(&list, rdkafka::consumer::CommitMode::Sync)
            .unwrap_or_else(|e| panic!("commit for {group}: {e}"));
        assert!(
            committed(&broker, &group, topic)
                .values()
                .all(|o| *o == i64::from(i))
        );
    }
    let metrics = broker.scrape();
    for shard in ["0", "1"] {
        let groups = common::metric(&metrics, "corelog_groups", &[("shard", shard)]).unwrap();
        assert!(
            groups >= 1.0,
            "shard {shard} coordinates no group:\n{metrics}"
        );
    }
}

/// A member stays in its group while the broker restarts under it: the group's state
/// (generation, or KIP-848 epochs and assignments) is replayed from
/// `__consumer_offsets`, so the member carries on where it was.
fn member_survives_a_broker_restart(settings: &[(&str, &str)], topic: &str) {
    let mut broker = start_broker();
    create_topic(&broker, topic);
    let first = records(topic, 0..300);
    produce(&broker, topic, &first);
    let member = Member::start(&broker, topic, topic, settings);
    assert!(wait_until(Duration::from_secs(60), || member
        .consumed()
        .len()
        >= first.len()));
    assert_eq!(member.assignment(), all_partitions());
    // Let the periodic commit cover everything, then kill the broker mid-session.
    std::thread::sleep(Duration::from_millis(1000));
    let rebalances = member.rebalances();
    broker.restart();
    let second = records(topic, 300..450);
    produce(&broker, topic, &second);
    assert!(
        wait_until(Duration::from_secs(60), || member.consumed().len()
            >= first.len() + second.len()),
        "consumed {} after the restart; errors {:?}",
        member.consumed().len(),
        member.errors()
    );
    std::thread::sleep(Duration::from_millis(500));
    let mut seen: Vec<(i32, i64)> = member
        .consumed()
        .into_iter()
        .map(|s| (s.partition, s.offset))
        .collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "a record came twice");
    assert_eq!(total, first.len() + second.len());
    assert_eq!(member.assignment(), all_partitions());
    assert_eq!(
        member.rebalances(),
        rebalances,
        "the member was rebalanced by the restart"
    );
}

#[test]
fn a_classic_member_carries_on_through_a_broker_restart() {
    member_survives_a_broker_restart(CLASSIC, "groups-restart-classic");
}

#[test]
fn a_kip_848_member_carries_on_through_a_broker_restart() {
    member_survives_a_broker_restart(&[("group.protocol", "consumer")], "groups-restart-848");
}
