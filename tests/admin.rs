//! The admin APIs that change a running broker, through real clients against the real
//! binary: CreatePartitions (librdkafka's and kafka-python's admin clients, then a
//! default librdkafka producer and a consumer on the new partitions), DescribeConfigs
//! (sources, synonyms, the broker resources), and config changes by
//! IncrementalAlterConfigs and AlterConfigs — applied live (produce limits, segment
//! rolls, cleanup policy), to the dynamic broker defaults, and kept across a restart;
//! group configs (described, set within the broker's bounds, given to KIP-848 members,
//! kept across a restart) and Kafka's dynamic broker configs corelog takes without
//! effect, over the wire.
//!
//! The Python scripts assert in Python and print `ok` last; a failed assertion fails the
//! test with the script's traceback.

mod common;

use common::groups::{Member, wait_until};
use common::kafka::{Recorder, TestProducer, base_timestamp, consume_all, send_all, test_record};
use common::wire::WireClient;
use common::{Broker, run_python};
use corelog::protocol::ErrorCode;
use corelog::protocol::generated::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use corelog::protocol::generated::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use corelog::protocol::generated::find_coordinator_request::FindCoordinatorRequest;
use corelog::protocol::generated::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use corelog::protocol::generated::{ApiKey, ResponseBody};
use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    OwnedResourceSpecifier, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeSet;
use std::time::Duration;

type Admin = AdminClient<DefaultClientContext>;

fn start_broker() -> Broker {
    Broker::start_with(&["--shards", "2", "--set", "num.partitions=3"])
}

fn admin(broker: &Broker) -> Admin {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("create an rdkafka admin client")
}

fn options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)))
}

fn create_topic(admin: &Admin, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (key, value) in configs {
        topic = topic.set(key, value);
    }
    let results = futures_lite::future::block_on(admin.create_topics([&topic], &options()))
        .expect("CreateTopics");
    for result in results {
        result.unwrap_or_else(|(name, e)| panic!("create {name}: {e}"));
    }
}

/// Grows `name` to `count` partitions; the broker's error code, if any.
fn create_partitions(
    admin: &Admin,
    name: &str,
    count: usize,
    validate_only: bool,
) -> Option<RDKafkaErrorCode> {
    let grow = NewPartitions::new(name, count);
    let results = futures_lite::future::block_on(
        admin.create_partitions([&grow], &options().validate_only(validate_only)),
    )
    .expect("CreatePartitions");
    assert_eq!(results.len(), 1);
    results.into_iter().next().unwrap().err().map(|(_, e)| e)
}

/// The partition count Metadata gives for `topic`.
fn partition_count(broker: &Broker, topic: &str) -> usize {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("create an rdkafka consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("Metadata");
    metadata.topics()[0].partitions().len()
}

/// A librdkafka producer with librdkafka's defaults (only the bootstrap servers set).
fn default_producer(broker: &Broker) -> TestProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create_with_context(Recorder::default())
        .expect("create an rdkafka producer")
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
import os, sys, time
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from kafka.admin import (KafkaAdminClient, NewTopic, NewPartitions, ConfigResource,
    AlterConfigOp)
import kafka.errors as Errors
bootstrap = sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=bootstrap)

def expect(error, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except error:
        return
    raise AssertionError('expected %s from %s%s' % (error.__name__, call.__name__, args))

def configs(topic, keys=None):
    """The topic's described configs (every one), with synonyms."""
    described = admin.describe_configs([ConfigResource('TOPIC', topic, keys)],
                                       include_synonyms=True, config_filter='all')
    return described['topic'][topic]

def alter(resource, changes, **kwargs):
    """IncrementalAlterConfigs; the broker's answer for the resource ('OK' or the error)."""
    result = admin.alter_configs([ConfigResource(resource[0], resource[1], changes)],
                                 incremental=True, **kwargs)
    return result[resource[0].lower()][resource[1]]

def partitions(topic):
    [described] = admin.describe_topics([topic])
    assert described['error_code'] == 0, described
    return len(described['partitions'])

def send(request):
    """Sends a request kafka-python's admin client builds but cannot address (the
    cluster-wide broker resource "", per-resource errors) and returns the response."""
    async def call():
        return await admin._manager.send(request)
    return admin._manager.run(call)

def describe_raw(resources, include_synonyms=False):
    return send(admin._describe_configs_request(resources, include_synonyms)).results

def alter_raw(resources, validate_only=False):
    request = admin._alter_configs_request(resources, validate_only, incremental=True)
    return [(r.error_code, r.error_message) for r in send(request).responses]
"#;

#[test]
fn rdkafka_create_partitions_grows_a_topic_and_default_clients_use_the_new_partitions() {
    let mut broker = start_broker();
    let admin = admin(&broker);
    create_topic(&admin, "grow", 2, &[]);
    let timestamp = base_timestamp();
    let before: Vec<_> = (0..100)
        .map(|i| test_record("before", i, timestamp))
        .collect();
    let producer = default_producer(&broker);
    for partition in 0..2 {
        for delivery in send_all(&producer, "grow", Some(partition), &before) {
            assert_eq!(delivery.error, None, "{delivery:?}");
        }
    }
    drop(producer);

    // Kafka's errors change nothing; validate_only checks and changes nothing.
    assert_eq!(
        create_partitions(&admin, "grow", 1, false),
        Some(RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        create_partitions(&admin, "grow", 2, false),
        Some(RDKafkaErrorCode::InvalidPartitions)
    );
    assert_eq!(
        create_partitions(&admin, "never-was", 4, false),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(create_partitions(&admin, "grow", 8, true), None);
    assert_eq!(partition_count(&broker, "grow"), 2);

    assert_eq!(create_partitions(&admin, "grow", 5, false), None);
    assert_eq!(partition_count(&broker, "grow"), 5);

    // A new producer with librdkafka's defaults learns the five partitions from
    // Metadata and writes to every one; the old partitions keep their records.
    let after: Vec<_> = (0..200)
        .map(|i| test_record("after", i, timestamp))
        .collect();
    let producer = default_producer(&broker);
    for partition in 0..5 {
        for delivery in send_all(&producer, "grow", Some(partition), &after) {
            assert_eq!(delivery.error, None, "{delivery:?}");
            assert_eq!(delivery.partition, partition);
        }
    }
    drop(producer);
    let check = |broker: &Broker| {
        let consumed = consume_all(broker, "grow", 5);
        for partition in 0..5 {
            let records: Vec<_> = consumed[&partition].iter().map(|c| &c.record).collect();
            let expected: Vec<_> = if partition < 2 {
                before.iter().chain(&after).collect()
            } else {
                after.iter().collect()
            };
            assert_eq!(records.len(), expected.len(), "partition {partition}");
            assert!(
                records == expected,
                "partition {partition} reads back as written"
            );
        }
    };
    check(&broker);
    // The partition count is persisted: after a kill -9, the topic has five again.
    broker.restart();
    assert_eq!(partition_count(&broker, "grow"), 5);
    check(&broker);
}

#[test]
fn a_kip_848_group_member_is_assigned_the_new_partitions_and_reads_them() {
    let broker = start_broker();
    let admin = admin(&broker);
    create_topic(&admin, "grow-group", 2, &[]);
    let member = Member::start(
        &broker,
        "grow-group",
        "grow-group",
        &[("group.protocol", "consumer")],
    );
    let assigned = |partitions: i32| {
        let wanted: BTreeSet<i32> = (0..partitions).collect();
        wait_until(Duration::from_secs(60), || member.assignment() == wanted)
    };
    assert!(
        assigned(2),
        "{:?} {:?}",
        member.assignment(),
        member.errors()
    );
    assert_eq!(create_partitions(&admin, "grow-group", 4, false), None);
    // The coordinator sees the new partitions at the member's next heartbeat.
    assert!(
        assigned(4),
        "{:?} {:?}",
        member.assignment(),
        member.errors()
    );
    let records: Vec<_> = (0..50)
        .map(|i| test_record("group", i, base_timestamp()))
        .collect();
    let producer = default_producer(&broker);
    for partition in 2..4 {
        for delivery in send_all(&producer, "grow-group", Some(partition), &records) {
            assert_eq!(delivery.error, None, "{delivery:?}");
        }
    }
    let read_from_new = || {
        member
            .consumed()
            .iter()
            .filter(|seen| seen.partition >= 2)
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(60), || read_from_new() == 100),
        "read {} of 100 records of the new partitions: {:?}",
        read_from_new(),
        member.errors()
    );
    member.close();
}

#[test]
fn kafka_python_create_partitions_grows_a_topic_with_kafkas_errors() {
    let broker = start_broker();
    let script = format!(
        "{PRELUDE}{}",
        r#"
admin.create_topics([NewTopic('py-grow', 2, 1)])
assert partitions('py-grow') == 2

expect(Errors.InvalidPartitionsError, admin.create_partitions,
       {'py-grow': NewPartitions(total_count=1)})
expect(Errors.InvalidPartitionsError, admin.create_partitions,
       {'py-grow': NewPartitions(total_count=2)})
expect(Errors.UnknownTopicOrPartitionError, admin.create_partitions,
       {'never-was': NewPartitions(total_count=3)})
expect(Errors.InvalidReplicationAssignmentError, admin.create_partitions,
       {'py-grow': NewPartitions(total_count=4, new_assignments=[[1]])})
expect(Errors.InvalidReplicationAssignmentError, admin.create_partitions,
       {'py-grow': NewPartitions(total_count=3, new_assignments=[[7]])})
admin.create_partitions({'py-grow': NewPartitions(total_count=6)}, validate_only=True)
assert partitions('py-grow') == 2

# A topic named twice in one request is refused once, and nothing changes.
from kafka.protocol.admin import CreatePartitionsRequest
Topic = CreatePartitionsRequest.CreatePartitionsTopic
response = send(CreatePartitionsRequest(topics=[Topic(name='py-grow', count=5),
                                                Topic(name='py-grow', count=6)],
                                        timeout_ms=30000, validate_only=False))
assert [(r.name, r.error_code, r.error_message) for r in response.results] == [
    ('py-grow', Errors.InvalidRequestError.errno, 'Duplicate topic name.')], response
assert partitions('py-grow') == 2

admin.create_partitions({'py-grow': NewPartitions(total_count=3, new_assignments=[[1]])})
admin.create_partitions({'py-grow': NewPartitions(total_count=4)})
assert partitions('py-grow') == 4

producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
for p in range(4):
    for i in range(50):
        producer.send('py-grow', value=b'v%d' % i, partition=p).get(timeout=30)
producer.close()
consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
ends = consumer.end_offsets([TopicPartition('py-grow', p) for p in range(4)])
assert all(end == 50 for end in ends.values()), ends
consumer.close()
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

#[test]
fn rdkafka_describe_configs_reports_defaults_overrides_the_broker_and_unknown_topics() {
    let broker = start_broker();
    let admin = admin(&broker);
    create_topic(&admin, "described", 1, &[("retention.ms", "3600000")]);
    let describe = |specifiers: &[ResourceSpecifier<'_>]| {
        futures_lite::future::block_on(admin.describe_configs(specifiers, &options()))
            .expect("DescribeConfigs")
    };

    let results = describe(&[
        ResourceSpecifier::Topic("described"),
        ResourceSpecifier::Broker(1),
        ResourceSpecifier::Topic("never-was"),
    ]);
    let topic = results[0].as_ref().expect("the topic is described");
    assert_eq!(
        topic.specifier,
        OwnedResourceSpecifier::Topic("described".into())
    );
    let retention = topic.get("retention.ms").expect("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert!(!retention.is_read_only && !retention.is_default);
    let segment = topic.get("segment.bytes").expect("segment.bytes");
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert_eq!(segment.source, ConfigSource::Default);
    assert!(segment.is_default);
    assert!(topic.get("cleanup.policy").is_some() && topic.entries.len() > 30);

    let node = results[1].as_ref().expect("the broker is described");
    let partitions = node.get("num.partitions").expect("num.partitions");
    assert_eq!(partitions.value.as_deref(), Some("3"));
    assert_eq!(partitions.source, ConfigSource::StaticBroker);
    assert!(partitions.is_read_only);
    let retention = node.get("log.retention.ms").expect("log.retention.ms");
    assert_eq!(retention.source, ConfigSource::Default);
    assert!(!retention.is_read_only, "a dynamic broker config");

    // The rdkafka crate drops a resource's error code (kafka-python's test checks it):
    // an unknown topic comes back without configs.
    let unknown = results[2].as_ref().expect("a result for the unknown topic");
    assert!(unknown.entries.is_empty(), "{:?}", unknown.entries);

    // AlterConfigs replaces the whole set of overrides: retention.ms goes back to its
    // default.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("described"))
        .set("max.message.bytes", "4096")
        .set("cleanup.policy", "compact");
    let results = futures_lite::future::block_on(admin.alter_configs([&alter], &options()))
        .expect("AlterConfigs");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let bad = AlterConfig::new(ResourceSpecifier::Topic("described")).set("segment.bytes", "12");
    // The rdkafka crate drops a resource's error code here too (kafka-python's tests check
    // INVALID_CONFIG): the refused change must change nothing, as checked below.
    futures_lite::future::block_on(admin.alter_configs([&bad], &options())).expect("AlterConfigs");
    let results = describe(&[ResourceSpecifier::Topic("described")]);
    let topic = results[0].as_ref().expect("the topic is described");
    let overridden: Vec<&str> = topic
        .entries
        .iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(overridden, vec!["cleanup.policy", "max.message.bytes"]);
    assert_eq!(
        topic.get("retention.ms").unwrap().value.as_deref(),
        Some("604800000")
    );
    assert_eq!(
        topic.get("segment.bytes").unwrap().value.as_deref(),
        Some("1073741824"),
        "a refused change changes nothing"
    );
}

#[test]
fn kafka_python_describe_configs_reports_sources_synonyms_and_the_broker() {
    let broker = Broker::start_with(&["--shards", "2", "--set", "log.retention.hours=2"]);
    let script = format!(
        "{PRELUDE}{}",
        r#"
admin.create_topics([NewTopic('py-described', 1, 1, topic_configs={'segment.ms': '60000'})])
described = configs('py-described')
segment_ms = described['segment.ms']
assert segment_ms['value'] == '60000', segment_ms
assert segment_ms['config_source'] == 'DYNAMIC_TOPIC_CONFIG', segment_ms
assert [s['source'] for s in segment_ms['synonyms']] == ['DYNAMIC_TOPIC_CONFIG', 'DEFAULT_CONFIG'], segment_ms
assert segment_ms['synonyms'][1]['name'] == 'log.roll.ms', segment_ms

retention = described['retention.ms']
assert retention['value'] == '7200000', retention
assert retention['config_source'] == 'STATIC_BROKER_CONFIG', retention
assert [(s['name'], s['value'], s['source']) for s in retention['synonyms']] == [
    ('log.retention.ms', '7200000', 'STATIC_BROKER_CONFIG'),
    ('log.retention.ms', '604800000', 'DEFAULT_CONFIG')], retention

policy = described['cleanup.policy']
assert policy['value'] == 'delete' and policy['config_source'] == 'DEFAULT_CONFIG', policy
assert policy['read_only'] is False and policy['is_sensitive'] is False, policy

# A subset of keys; the default filter shows only what was changed.
subset = configs('py-described', ['segment.ms', 'max.message.bytes', 'no.such.config'])
assert sorted(subset) == ['max.message.bytes', 'segment.ms'], subset
modified = admin.describe_configs([ConfigResource('TOPIC', 'py-described')])
assert sorted(modified['topic']['py-described']) == ['segment.ms'], modified

# The broker resource: static and default broker configs, read-only unless dynamic.
node = admin.describe_configs([ConfigResource('BROKER', '1')], include_synonyms=True,
                              config_filter='all')['broker']['1']
assert node['log.retention.ms']['config_source'] == 'STATIC_BROKER_CONFIG', node['log.retention.ms']
assert node['log.retention.ms']['read_only'] is False
assert node['delete.topic.enable']['config_source'] == 'DEFAULT_CONFIG'
assert node['delete.topic.enable']['read_only'] is True
assert node['listeners']['value'] == 'PLAINTEXT://' + bootstrap, node['listeners']
assert node['listeners']['config_source'] == 'STATIC_BROKER_CONFIG'

# Documentation and types (v3+), on request.
from kafka.protocol.admin import DescribeConfigsRequest
[documented] = send(DescribeConfigsRequest(resources=[(2, 'py-described', ['segment.ms'])],
                                           include_synonyms=False,
                                           include_documentation=True)).results
[entry] = documented.configs
assert entry.name == 'segment.ms' and entry.config_type == 5, entry
assert entry.documentation and 'segment' in entry.documentation, entry
[plain] = describe_raw([ConfigResource('TOPIC', 'py-described', ['segment.ms'])])
assert plain.configs[0].documentation is None and plain.configs[0].synonyms == [], plain

# An unknown topic, another broker's id, a resource type corelog does not have
[unknown, other, logger] = describe_raw([ConfigResource('TOPIC', 'never-was'),
                                         ConfigResource('BROKER', '2'),
                                         ConfigResource('BROKER_LOGGER', '1')])
assert unknown.error_code == Errors.UnknownTopicOrPartitionError.errno, unknown
assert unknown.configs == [], unknown
assert other.error_code == Errors.InvalidRequestError.errno, other
assert 'expected 1' in other.error_message, other
assert logger.error_code == Errors.InvalidRequestError.errno, logger
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

#[test]
fn config_changes_take_effect_without_a_restart_and_survive_one() {
    let mut broker = start_broker();
    let data_dir = broker.data_dir.display().to_string();
    let script = format!(
        "{PRELUDE}data_dir = {data_dir:?}\n{}",
        r#"
admin.create_topics([NewTopic('live', 1, 1), NewTopic('seg', 1, 1), NewTopic('policy', 1, 1)])
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
big = os.urandom(5000)
producer.send('live', value=big).get(timeout=30)

# max.message.bytes: lowered, a larger batch is refused at once; raised, it is taken.
assert alter(('TOPIC', 'live'), {'max.message.bytes': '2000'}) == 'OK'
assert configs('live')['max.message.bytes']['value'] == '2000'
try:
    producer.send('live', value=big).get(timeout=30)
    raise AssertionError('a 5000-byte record passed max.message.bytes=2000')
except Errors.MessageSizeTooLargeError:
    pass
producer.close()
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
producer.send('live', value=os.urandom(1000)).get(timeout=30)
assert alter(('TOPIC', 'live'), {'max.message.bytes': '10000'}) == 'OK'
producer.send('live', value=big).get(timeout=30)

# message.timestamp.type: LogAppendTime replaces the producer's timestamps at once.
assert alter(('TOPIC', 'live'), {'message.timestamp.type': 'LogAppendTime'}) == 'OK'
sent = producer.send('live', value=b'stamped', timestamp_ms=1000).get(timeout=30)
consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
partition = TopicPartition('live', 0)
consumer.assign([partition])
consumer.seek(partition, sent.offset)
records, deadline = [], time.time() + 30
while not records:
    assert time.time() < deadline, 'the stamped record was not read within 30 s'
    records = consumer.poll(timeout_ms=500, max_records=1).get(partition, [])
[record] = records
assert record.value == b'stamped', record
assert record.timestamp_type == 1 and record.timestamp > 1000, record
consumer.close()

# Refused changes name the key and change nothing; validate_only changes nothing.
assert 'InvalidConfig' in alter(('TOPIC', 'live'), {'max.message.bytes': 'lots'})
assert 'max.message.bytes' in alter(('TOPIC', 'live'), {'max.message.bytes': 'lots'})
assert 'InvalidConfig' in alter(('TOPIC', 'live'), {'no.such.config': '1'}, raise_on_unknown=False)
assert alter(('TOPIC', 'live'), {'max.message.bytes': '100'}, validate_only=True) == 'OK'
assert configs('live')['max.message.bytes']['value'] == '10000'
assert 'UnknownTopicOrPartition' in alter(('TOPIC', 'never-was'), {'retention.ms': '1'},
                                          raise_on_unknown=False)

# segment.bytes: the active segment rolls by the new size from the next append on.
def segments():
    return len([f for f in os.listdir(os.path.join(data_dir, 'seg-0')) if f.endswith('.log')])
chunk = os.urandom(10000)
for i in range(30):
    producer.send('seg', value=chunk, partition=0)
producer.flush()
assert segments() == 1, segments()
assert alter(('TOPIC', 'seg'), {'segment.bytes': '1048576'}) == 'OK'
for i in range(250):
    producer.send('seg', value=chunk, partition=0)
producer.flush()
rolled = segments()
assert rolled >= 3, rolled
assert alter(('TOPIC', 'seg'), {'segment.bytes': (AlterConfigOp.DELETE, None)}) == 'OK'
assert configs('seg')['segment.bytes']['config_source'] == 'DEFAULT_CONFIG'
for i in range(150):
    producer.send('seg', value=chunk, partition=0)
producer.flush()
assert segments() == rolled, (segments(), rolled)

# cleanup.policy: APPEND compact, and keyless records are refused at once; SUBTRACT it,
# and they are taken again. APPEND to a config that is no list is refused.
assert alter(('TOPIC', 'policy'), {'cleanup.policy': (AlterConfigOp.APPEND, 'compact')}) == 'OK'
assert configs('policy')['cleanup.policy']['value'] == 'delete,compact'
producer.send('policy', key=b'k', value=b'v').get(timeout=30)
try:
    producer.send('policy', value=b'no key').get(timeout=30)
    raise AssertionError('a keyless record reached a compacted topic')
except Errors.InvalidRecordError:
    pass
producer.close()
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
assert alter(('TOPIC', 'policy'), {'cleanup.policy': (AlterConfigOp.SUBTRACT, 'delete')}) == 'OK'
assert configs('policy')['cleanup.policy']['value'] == 'compact'
assert alter(('TOPIC', 'policy'), {'cleanup.policy': (AlterConfigOp.SUBTRACT, 'compact'),
                                   }) != 'OK', 'an empty policy is refused'
assert alter(('TOPIC', 'policy'), {'cleanup.policy': (AlterConfigOp.APPEND, 'delete')}) == 'OK'
assert alter(('TOPIC', 'policy'), {'cleanup.policy': (AlterConfigOp.SUBTRACT, 'compact')}) == 'OK'
assert configs('policy')['cleanup.policy']['value'] == 'delete'
producer.send('policy', value=b'no key').get(timeout=30)
result = alter(('TOPIC', 'policy'), {'retention.ms': (AlterConfigOp.APPEND, '5')})
assert 'InvalidConfig' in result and 'not LIST' in result, result
producer.close()
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);

    // The overrides are persisted: after a kill -9 and a restart, they are described and
    // enforced.
    broker.restart();
    let script = format!(
        "{PRELUDE}{}",
        r#"
live = configs('live')
assert live['max.message.bytes']['value'] == '10000', live['max.message.bytes']
assert live['max.message.bytes']['config_source'] == 'DYNAMIC_TOPIC_CONFIG'
assert configs('policy')['cleanup.policy']['value'] == 'delete'
assert configs('seg')['segment.bytes']['config_source'] == 'DEFAULT_CONFIG'
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
try:
    producer.send('live', value=os.urandom(20000)).get(timeout=30)
    raise AssertionError('a 20000-byte record passed max.message.bytes=10000 after a restart')
except Errors.MessageSizeTooLargeError:
    pass
producer.close()
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

#[test]
fn dynamic_broker_defaults_reach_topics_without_an_override_live_and_persist() {
    let mut broker = start_broker();
    let script = format!(
        "{PRELUDE}{}",
        r#"
admin.create_topics([NewTopic('plain', 1, 1),
                     NewTopic('pinned', 1, 1, topic_configs={'retention.ms': '1000'})])

# The cluster-wide default (broker resource ""), which kafka-python's admin client cannot
# name, through its own request classes.
assert alter_raw([ConfigResource('BROKER', '', {'log.retention.ms': '123456789'})]) == [(0, None)]
retention = configs('plain')['retention.ms']
assert retention['value'] == '123456789', retention
assert retention['config_source'] == 'DYNAMIC_DEFAULT_BROKER_CONFIG', retention
assert configs('pinned')['retention.ms']['config_source'] == 'DYNAMIC_TOPIC_CONFIG'
[default] = describe_raw([ConfigResource('BROKER', '')], include_synonyms=True)
assert default.error_code == 0, default
assert [(c.name, c.value, c.config_source) for c in default.configs] == [
    ('log.retention.ms', '123456789', 3)], default

# This broker's own value wins over the cluster default.
assert alter(('BROKER', '1'), {'log.retention.ms': '222222'}) == 'OK'
retention = configs('plain')['retention.ms']
assert retention['value'] == '222222', retention
assert retention['config_source'] == 'DYNAMIC_BROKER_CONFIG', retention
assert [s['source'] for s in retention['synonyms']] == [
    'DYNAMIC_BROKER_CONFIG', 'DYNAMIC_DEFAULT_BROKER_CONFIG', 'DEFAULT_CONFIG'], retention
node = admin.describe_configs([ConfigResource('BROKER', '1')])['broker']['1']
assert node['log.retention.ms']['config_source'] == 'DYNAMIC_BROKER_CONFIG', node

# A default changes what topics without an override enforce, at once.
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
producer.send('plain', value=os.urandom(5000)).get(timeout=30)
assert alter_raw([ConfigResource('BROKER', '', {'message.max.bytes': '3000'})]) == [(0, None)]
try:
    producer.send('plain', value=os.urandom(5000)).get(timeout=30)
    raise AssertionError('a 5000-byte record passed message.max.bytes=3000')
except Errors.MessageSizeTooLargeError:
    pass
producer.close()

# Static broker configs, unknown ones and bad values are refused as Kafka refuses them.
[(code, message)] = alter_raw([ConfigResource('BROKER', '1', {'num.partitions': '9'})])
assert code == Errors.InvalidRequestError.errno, (code, message)
assert message == 'Cannot update these configs dynamically: Set(num.partitions)', message
[(code, message)] = alter_raw([ConfigResource('BROKER', '', {'log.segment.bytes': '7'})])
assert code == Errors.InvalidRequestError.errno and 'log.segment.bytes' in message, message
[(code, message)] = alter_raw([ConfigResource('BROKER', '7', {'log.retention.ms': '1'})])
assert code == Errors.InvalidRequestError.errno and 'expected 1' in message, message
[(code, _), (code2, _)] = alter_raw([ConfigResource('TOPIC', 'plain', {'retention.ms': '1'}),
                                     ConfigResource('TOPIC', 'plain', {'retention.ms': '2'})])
assert code == code2 == Errors.InvalidRequestError.errno, (code, code2)
assert configs('plain')['retention.ms']['value'] == '222222'
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);

    broker.restart();
    let script = format!(
        "{PRELUDE}{}",
        r#"
retention = configs('plain')['retention.ms']
assert retention['value'] == '222222', retention
assert [s['source'] for s in retention['synonyms']] == [
    'DYNAMIC_BROKER_CONFIG', 'DYNAMIC_DEFAULT_BROKER_CONFIG', 'DEFAULT_CONFIG'], retention
assert configs('plain')['max.message.bytes']['config_source'] == 'DYNAMIC_DEFAULT_BROKER_CONFIG'
# Deleting both dynamic values brings the static default back.
assert alter(('BROKER', '1'), {'log.retention.ms': (AlterConfigOp.DELETE, None)}) == 'OK'
assert alter_raw([ConfigResource('BROKER', '', {'log.retention.ms': (AlterConfigOp.DELETE, None),
                                                'message.max.bytes': (AlterConfigOp.DELETE, None)})]) == [(0, None)]
retention = configs('plain')['retention.ms']
assert retention['value'] == '604800000' and retention['config_source'] == 'DEFAULT_CONFIG', retention
producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all')
producer.send('plain', value=os.urandom(5000)).get(timeout=30)
producer.close()
admin.close()
print('ok')
"#
    );
    run_ok(&broker, &script);
}

// ---- group configs and Kafka's other dynamic broker configs, over the wire ----

const GROUP: i8 = 32;
const BROKER: i8 = 4;

/// DescribeConfigs (v4) of one resource: its error code and (name, value, source) of
/// each config.
fn describe_wire(
    client: &mut WireClient,
    resource_type: i8,
    name: &str,
) -> (i16, Vec<(String, Option<String>, i8)>) {
    let request = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type,
            resource_name: name.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: true,
        ..Default::default()
    };
    let ResponseBody::DescribeConfigs(response) =
        client.request(ApiKey::DescribeConfigs, 4, &request)
    else {
        panic!()
    };
    let result = &response.results[0];
    (
        result.error_code,
        result
            .configs
            .iter()
            .map(|c| (c.name.clone(), c.value.clone(), c.config_source))
            .collect(),
    )
}

/// IncrementalAlterConfigs (v1) SET of each (name, value) on one resource: its error
/// code and message.
fn set_wire(
    client: &mut WireClient,
    resource_type: i8,
    name: &str,
    configs: &[(&str, &str)],
) -> (i16, Option<String>) {
    let request = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs: configs
                .iter()
                .map(|(k, v)| AlterableConfig {
                    name: k.to_string(),
                    config_operation: 0,
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ResponseBody::IncrementalAlterConfigs(response) =
        client.request(ApiKey::IncrementalAlterConfigs, 1, &request)
    else {
        panic!()
    };
    let r = &response.responses[0];
    (r.error_code, r.error_message.clone())
}

/// The heartbeat interval a new KIP-848 member of `group` is given, once the
/// coordinator is up.
fn joined_heartbeat_interval(client: &mut WireClient, group: &str, topic: &str) -> i32 {
    // FindCoordinator creates __consumer_offsets, as a client's first request does.
    let find = FindCoordinatorRequest {
        key: group.into(),
        ..Default::default()
    };
    client.request(ApiKey::FindCoordinator, 3, &find);
    let request = ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: format!("member-{group}"),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        subscribed_topic_names: Some(vec![topic.into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    };
    let mut interval = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let ResponseBody::ConsumerGroupHeartbeat(response) =
                client.request(ApiKey::ConsumerGroupHeartbeat, 1, &request)
            else {
                panic!()
            };
            if response.error_code == 0 {
                interval = Some(response.heartbeat_interval_ms);
            }
            interval.is_some()
        }),
        "the member never joined {group}"
    );
    interval.unwrap()
}

fn find(configs: &[(String, Option<String>, i8)], name: &str) -> (Option<String>, i8) {
    let (_, value, source) = configs
        .iter()
        .find(|(n, _, _)| n == name)
        .unwrap_or_else(|| panic!("{name} is not described: {configs:?}"));
    (value.clone(), *source)
}

#[test]
fn group_configs_are_described_set_applied_to_kip_848_members_and_survive_a_restart() {
    let mut broker = start_broker();
    create_topic(&admin(&broker), "gcfg", 2, &[]);
    let mut client = WireClient::connect(&broker.bootstrap());
    let some = |v: &str| Some(v.to_string());

    // Any group, existing or not, has the broker's values (Kafka's DEFAULT_CONFIG: 5).
    let (code, configs) = describe_wire(&mut client, GROUP, "nobody");
    assert_eq!(code, 0);
    assert_eq!(
        configs,
        vec![
            ("consumer.heartbeat.interval.ms".into(), some("5000"), 5),
            ("consumer.session.timeout.ms".into(), some("45000"), 5),
        ]
    );

    // Out of the broker's bounds: INVALID_CONFIG, Kafka's message; an unknown name too.
    let (code, message) = set_wire(
        &mut client,
        GROUP,
        "hb-group",
        &[("consumer.session.timeout.ms", "70000")],
    );
    assert_eq!(code, ErrorCode::InvalidConfig.code());
    assert_eq!(
        message.as_deref(),
        Some(
            "consumer.session.timeout.ms must be less than or equal to \
             group.consumer.max.session.timeout.ms"
        )
    );
    let (code, _) = set_wire(&mut client, GROUP, "hb-group", &[("share.x", "1")]);
    assert_eq!(code, ErrorCode::InvalidConfig.code());

    // A group's heartbeat interval is what its KIP-848 members are given.
    let (code, message) = set_wire(
        &mut client,
        GROUP,
        "hb-group",
        &[("consumer.heartbeat.interval.ms", "6000")],
    );
    assert_eq!(code, 0, "{message:?}");
    let (_, configs) = describe_wire(&mut client, GROUP, "hb-group");
    assert_eq!(
        find(&configs, "consumer.heartbeat.interval.ms"),
        (some("6000"), 8)
    );
    assert_eq!(
        joined_heartbeat_interval(&mut client, "hb-group", "gcfg"),
        6000
    );
    assert_eq!(
        joined_heartbeat_interval(&mut client, "other-group", "gcfg"),
        5000
    );

    // Kafka's dynamic broker configs corelog has no use for are taken and described.
    let (code, message) = set_wire(
        &mut client,
        BROKER,
        "1",
        &[
            ("background.threads", "9"),
            ("sasl.kerberos.min.time.before.relogin", "58000"),
        ],
    );
    assert_eq!(code, 0, "{message:?}");
    let (_, configs) = describe_wire(&mut client, BROKER, "1");
    assert_eq!(find(&configs, "background.threads"), (some("9"), 2));
    assert_eq!(
        find(&configs, "sasl.kerberos.min.time.before.relogin"),
        (some("58000"), 2)
    );
    // Still refused: keys outside Kafka's dynamic set, per-broker ones on the default.
    let (code, _) = set_wire(&mut client, BROKER, "1", &[("num.partitions", "2")]);
    assert_eq!(code, ErrorCode::InvalidRequest.code());
    let (code, _) = set_wire(
        &mut client,
        BROKER,
        "",
        &[("sasl.kerberos.min.time.before.relogin", "58000")],
    );
    assert_eq!(code, ErrorCode::InvalidRequest.code());

    // Both kinds are persisted.
    broker.restart();
    let mut client = WireClient::connect(&broker.bootstrap());
    let (_, configs) = describe_wire(&mut client, GROUP, "hb-group");
    assert_eq!(
        find(&configs, "consumer.heartbeat.interval.ms"),
        (some("6000"), 8)
    );
    assert_eq!(
        find(&configs, "consumer.session.timeout.ms"),
        (some("45000"), 5)
    );
    assert_eq!(
        joined_heartbeat_interval(&mut client, "hb-group", "gcfg"),
        6000
    );
    let (_, configs) = describe_wire(&mut client, BROKER, "1");
    assert_eq!(find(&configs, "background.threads"), (some("9"), 2));
}
