//! kafka-python (pure-Python Kafka client, its own protocol implementation) against the
//! real broker: producing at every ack level, consuming with assign/seek (no group),
//! looking up offsets by timestamp, and creating and deleting topics with
//! `KafkaAdminClient`, including the errors Kafka returns.
//!
//! The scripts assert in Python and print `ok` last; a failed assertion fails the test
//! with the script's traceback.

mod common;

use common::{Broker, run_python};

fn start_broker() -> Broker {
    Broker::start_with(&["--shards", "2", "--set", "num.partitions=6"])
}

fn run_ok(broker: &Broker, script: &str) -> String {
    let output = run_python(broker, script);
    assert!(
        output.trim_end().ends_with("ok"),
        "the script did not finish: {output}"
    );
    output
}

/// Imports and helpers every script starts with.
const PRELUDE: &str = r#"
import sys, time
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
bootstrap = sys.argv[1]
base = int(time.time() * 1000) - 3_600_000

def record(i):
    key = None if i % 31 == 0 else b'key-%d' % (i % 50)
    value = None if i % 37 == 0 and key else (b'value-%d-' % i) + bytes(range(i % 256)) * 2
    headers = [('i', str(i).encode()), ('empty', b'')] if i % 2 else []
    return key, value, headers, base + i

def consume(consumer, partitions, ends):
    """Polls assigned partitions until each reaches its end offset."""
    got = {tp: [] for tp in partitions}
    deadline = time.time() + 60
    while any(consumer.position(tp) < ends[tp] for tp in partitions):
        assert time.time() < deadline, 'consume timed out at %s of %s' % (
            {tp: consumer.position(tp) for tp in partitions}, ends)
        for tp, messages in consumer.poll(timeout_ms=200).items():
            got[tp].extend(messages)
    return got
"#;

#[test]
fn kafka_python_produces_at_every_ack_level_and_consumes_with_assign_and_seek() {
    let broker = start_broker();
    let script = format!(
        "{PRELUDE}{}",
        r#"
N = 2000
for acks, compression in [(0, None), (1, 'gzip'), ('all', None)]:
    topic = 'py-acks-%s' % acks
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=acks,
                             compression_type=compression, linger_ms=5)
    futures = []
    for i in range(N):
        key, value, headers, ts = record(i)
        futures.append(producer.send(topic, key=key, value=value, headers=headers,
                                     timestamp_ms=ts))
    producer.flush(timeout=60)
    metas = [f.get(timeout=60) for f in futures]
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(6)]
    deadline = time.time() + 30
    while True:
        ends = consumer.end_offsets(partitions)
        if sum(ends.values()) >= N or time.time() > deadline:
            break
        time.sleep(0.05)  # acks=0: nothing says when the broker has appended
    assert sum(ends.values()) == N, (acks, ends)
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    got = consume(consumer, partitions, ends)

    sent = {}
    for i, meta in enumerate(metas):
        sent.setdefault(meta.partition, []).append(i)
    for tp in partitions:
        messages = got[tp]
        indexes = sent.get(tp.partition, [])
        assert len(messages) == len(indexes), (topic, tp, len(messages), len(indexes))
        for position, (m, i) in enumerate(zip(messages, indexes)):
            key, value, headers, ts = record(i)
            assert m.offset == position, (topic, tp, m.offset, position)
            assert (m.key, m.value, m.timestamp) == (key, value, ts), (topic, tp, m, i)
            assert [(h[0], h[1]) for h in m.headers] == headers, (m.headers, headers)
            if acks != 0:
                assert metas[i].offset == m.offset, (metas[i], m.offset)
    assert len(sent) > 1, 'keys spread over partitions'

    # seek to an offset in the middle of one partition and read from there
    tp = max(partitions, key=lambda tp: ends[tp])
    middle = ends[tp] // 2
    consumer.assign([tp])
    consumer.seek(tp, middle)
    tail = consume(consumer, [tp], ends)[tp]
    assert [m.offset for m in tail] == list(range(middle, ends[tp])), tail[:3]
    assert [m.value for m in tail] == [m.value for m in got[tp][middle:]]
    consumer.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

#[test]
fn kafka_python_lists_offsets_by_timestamp_and_at_both_ends() {
    let broker = start_broker();
    let script = format!(
        "{PRELUDE}{}",
        r#"
topic = 'py-times'
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all', linger_ms=0)
# partition 1: 20 records 1 s apart; partition 4 stays empty
for i in range(20):
    producer.send(topic, key=b'k', value=b'v%d' % i, partition=1,
                  timestamp_ms=base + 1000 * i).get(timeout=30)
producer.close()

consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                         enable_auto_commit=False)
tp, empty = TopicPartition(topic, 1), TopicPartition(topic, 4)
assert consumer.beginning_offsets([tp, empty]) == {tp: 0, empty: 0}
assert consumer.end_offsets([tp, empty]) == {tp: 20, empty: 0}

found = consumer.offsets_for_times({tp: base + 5000, empty: base})
assert found[tp].offset == 5 and found[tp].timestamp == base + 5000, found
assert found[empty] is None, found
found = consumer.offsets_for_times({tp: base + 5500})
assert found[tp].offset == 6 and found[tp].timestamp == base + 6000, found
found = consumer.offsets_for_times({tp: 0})
assert found[tp].offset == 0 and found[tp].timestamp == base, found
found = consumer.offsets_for_times({tp: base + 20_000})
assert found[tp] is None, found

# seek to what the lookup found and read from there
consumer.assign([tp])
consumer.seek(tp, consumer.offsets_for_times({tp: base + 17_000})[tp].offset)
got = consume(consumer, [tp], {tp: 20})[tp]
assert [(m.offset, m.value, m.timestamp) for m in got] == [
    (i, b'v%d' % i, base + 1000 * i) for i in range(17, 20)], got
consumer.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

#[test]
fn kafka_python_admin_creates_and_deletes_topics_with_kafkas_errors() {
    let broker = start_broker();
    let script = format!(
        "{PRELUDE}{}",
        r#"
from kafka.admin import KafkaAdminClient
from kafka.errors import (TopicAlreadyExistsError, InvalidReplicationFactorError,
    UnknownTopicOrPartitionError, InvalidPartitionsError, InvalidTopicError,
    InvalidConfigurationError)

admin = KafkaAdminClient(bootstrap_servers=bootstrap)

def expect(error, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except error:
        return
    raise AssertionError('expected %s from %s%s' % (error.__name__, call.__name__, args))

admin.create_topics({'made': {'num_partitions': 3, 'replication_factor': 1,
                              'configs': {'retention.ms': '3600000'}}})
assert 'made' in admin.list_topics()
[made] = admin.describe_topics(['made'])
assert made['error_code'] == 0 and len(made['partitions']) == 3, made

# Kafka's errors
expect(TopicAlreadyExistsError, admin.create_topics,
       {'made': {'num_partitions': 3, 'replication_factor': 1}})
expect(InvalidReplicationFactorError, admin.create_topics,
       {'three-copies': {'num_partitions': 1, 'replication_factor': 3}})
expect(InvalidPartitionsError, admin.create_topics,
       {'no-partitions': {'num_partitions': 0, 'replication_factor': 1}})
expect(InvalidTopicError, admin.create_topics,
       {'bad/name': {'num_partitions': 1, 'replication_factor': 1}})
expect(InvalidConfigurationError, admin.create_topics,
       {'bad-config': {'num_partitions': 1, 'replication_factor': 1,
                       'configs': {'cleanup.policy': 'sometimes'}}})
expect(UnknownTopicOrPartitionError, admin.delete_topics, ['never-was'])
topics = admin.list_topics()
for name in ['three-copies', 'no-partitions', 'bad/name', 'bad-config', 'never-was']:
    assert name not in topics, (name, topics)

# validate_only creates nothing; defaults (-1) take num.partitions
admin.create_topics({'dry': {'num_partitions': 2, 'replication_factor': 1}},
                    validate_only=True)
assert 'dry' not in admin.list_topics()
admin.create_topics({'defaults': {}})
[defaults] = admin.describe_topics(['defaults'])
assert len(defaults['partitions']) == 6, defaults

# the created topic takes records; deleting it removes them
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
for p in range(3):
    producer.send('made', value=b'x', partition=p).get(timeout=30)
producer.close()
admin.delete_topics(['made'])
assert 'made' not in admin.list_topics()
expect(UnknownTopicOrPartitionError, admin.delete_topics, ['made'])

# created again under the same name, it starts empty
admin.create_topics({'made': {'num_partitions': 1, 'replication_factor': 1}})
consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
assert consumer.end_offsets([TopicPartition('made', 0)]) == {TopicPartition('made', 0): 0}
consumer.close()
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

#[test]
fn kafka_python_group_commits_manually_resumes_at_the_committed_offset_and_admin_sees_it() {
    let broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        "num.partitions=6",
        "--set",
        "group.initial.rebalance.delay.ms=100",
    ]);
    let script = format!(
        "{PRELUDE}{}",
        r#"
from kafka import OffsetAndMetadata
from kafka.admin import KafkaAdminClient

topic, group = 'py-group', 'py-group'
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
for i in range(300):
    producer.send(topic, key=b'key-%d' % i, value=b'value-%d' % i)
producer.flush(timeout=60)
producer.close()

def member():
    return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         enable_auto_commit=False, auto_offset_reset='earliest',
                         session_timeout_ms=6000, heartbeat_interval_ms=500)

# The first member consumes 120 records and commits exactly those.
first = member()
taken, next_offset = 0, {}
deadline = time.time() + 60
while taken < 120:
    assert time.time() < deadline, 'first member consumed only %d' % taken
    for tp, messages in first.poll(timeout_ms=200, max_records=120 - taken).items():
        for m in messages:
            taken += 1
            next_offset[tp] = m.offset + 1
first.commit({tp: OffsetAndMetadata(o, 'by-first', -1) for tp, o in next_offset.items()})

admin = KafkaAdminClient(bootstrap_servers=bootstrap)
described = admin.describe_groups([group])[group]
assert described['group_state'] == 'Stable', described
assert described['protocol_type'] == 'consumer', described
[only] = described['members']
assigned = {p for t in only['member_assignment']['assigned_partitions']
            if t['topic'] == topic for p in t['partitions']}
assert assigned == set(range(6)), only
assert admin.delete_groups([group]) == {group: 'NonEmptyGroupError'}
first.close()

listed = {g['group_id']: g for g in admin.list_groups()}
assert listed[group]['group_state'] == 'Empty', listed
assert [g['group_id'] for g in admin.list_groups(states_filter=['Empty'])] == [group]
assert admin.list_groups(states_filter=['Stable']) == []
offsets = admin.list_group_offsets(group)[group]
assert {tp: o.offset for tp, o in offsets.items()} == next_offset, (offsets, next_offset)
assert all(o.metadata == 'by-first' for o in offsets.values()), offsets

# A new member resumes exactly at the committed offsets: the other 180 records.
second = member()
seen = {}
deadline = time.time() + 60
while sum(len(v) for v in seen.values()) < 180:
    assert time.time() < deadline, 'second member got %s' % seen
    for tp, messages in second.poll(timeout_ms=200).items():
        seen.setdefault(tp, []).extend(m.offset for m in messages)
time.sleep(0.5)
for tp, messages in second.poll(timeout_ms=500).items():
    seen.setdefault(tp, []).extend(m.offset for m in messages)
assert sum(len(v) for v in seen.values()) == 180, seen
for tp, offsets_seen in seen.items():
    assert offsets_seen[0] == next_offset.get(tp, 0), (tp, offsets_seen[:3], next_offset)
second.close()

# OffsetDelete, then DeleteGroups, as kafka-consumer-groups does them.
one = TopicPartition(topic, 0)
admin.delete_group_offsets(group, [one])
assert one not in admin.list_group_offsets(group)[group]
assert admin.delete_groups([group]) == {group: 'OK'}
assert admin.delete_groups([group]) == {group: 'GroupIdNotFoundError'}
assert group not in [g['group_id'] for g in admin.list_groups()]
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

#[test]
fn kafka_python_default_producer_is_idempotent_and_its_records_are_read_back_once() {
    let broker = Broker::start_with(&["--shards", "2", "--set", "num.partitions=4"]);
    let script = format!(
        "{PRELUDE}{}",
        r#"
from kafka.admin import KafkaAdminClient

# Every setting at its default: kafka-python 3 is idempotent (InitProducerId, acks=all,
# producer id, epoch and sequence numbers on every batch).
producer = KafkaProducer(bootstrap_servers=bootstrap)
assert producer.config['enable_idempotence'], producer.config
N = 3000
futures = [producer.send('py-default', key=b'k%d' % (i % 97), value=b'v%d' % i)
           for i in range(N)]
producer.flush(timeout=60)
metas = [f.get(timeout=60) for f in futures]
producer.close()

# A second producer gets another producer id and writes too.
second = KafkaProducer(bootstrap_servers=bootstrap)
second.send('py-default', key=b'k0', value=b'second').get(timeout=30)
second.close()

partitions = [TopicPartition('py-default', p) for p in range(4)]
consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                         enable_auto_commit=False)
consumer.assign(partitions)
consumer.seek_to_beginning()
ends = consumer.end_offsets(partitions)
assert sum(ends.values()) == N + 1, ends
got = consume(consumer, partitions, ends)
values = [m.value for tp in partitions for m in got[tp]]
assert len(values) == N + 1 and len(set(values)) == N + 1, len(values)
# Within a partition, a producer's records keep their send order.
for tp in partitions:
    mine = [int(m.value[1:]) for m in got[tp] if m.value != b'second']
    assert mine == sorted(mine), tp
# Each record is where its acknowledgement said.
for i, meta in enumerate(metas):
    assert got[TopicPartition('py-default', meta.partition)][meta.offset - 0].value == b'v%d' % i
consumer.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}
