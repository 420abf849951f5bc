//! DescribeLogDirs and OffsetForLeaderEpoch against the real broker: kafka-python's
//! admin client reads each partition's size (matching its segment files on disk) and the
//! file system's space; OffsetForLeaderEpoch answers from the leader epoch cache with
//! Kafka's rules (the epoch's end offset, undefined for a future epoch, current epochs
//! checked, unknown partitions); DescribeCluster reports every cluster operation as
//! allowed when asked (no authorizer), as Kafka does.

mod common;

use common::Broker;
use common::kafka::{base_timestamp, producer, send_all, test_record};
use common::wire::WireClient;
use corelog::protocol::generated::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use corelog::protocol::generated::{ApiKey, ResponseBody};

fn produce(broker: &Broker, topic: &str, count: usize) {
    let producer = producer(broker, &[]);
    let records: Vec<_> = (0..count)
        .map(|i| test_record("d", i, base_timestamp()))
        .collect();
    let deliveries = send_all(&producer, topic, Some(0), &records);
    assert!(deliveries.iter().all(|d| d.error.is_none()));
}

#[test]
fn describe_log_dirs_reports_partition_sizes_and_space() {
    let broker = Broker::start_with(&["--set", "num.partitions=2"]);
    produce(&broker, "sized", 200);
    let out = common::run_python(
        &broker,
        r#"
import sys, json
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=sys.argv[1])
print(json.dumps(admin.describe_log_dirs()))
print(json.dumps(admin.describe_log_dirs(topic_partitions={'sized': [1]})))
"#,
    );
    let mut lines = out.lines();
    let all: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let one: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let dirs = all[0]["log_dirs"].as_array().unwrap();
    assert_eq!(dirs.len(), 1, "{all}");
    let dir = &dirs[0];
    assert_eq!(dir["error_code"], 0);
    assert_eq!(
        dir["log_dir"].as_str().unwrap(),
        broker.data_dir.display().to_string()
    );
    assert!(dir["total_bytes"].as_i64().unwrap() > 0);
    assert!(dir["usable_bytes"].as_i64().unwrap() > 0);
    let topic = dir["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sized")
        .expect("the topic is listed");
    let partitions = topic["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2);
    for p in partitions {
        let index = p["partition_index"].as_i64().unwrap();
        let on_disk: u64 = std::fs::read_dir(broker.data_dir.join(format!("sized-{index}")))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert_eq!(p["partition_size"].as_u64().unwrap(), on_disk, "{p}");
        assert_eq!(p["offset_lag"], 0);
    }
    assert!(
        partitions
            .iter()
            .any(|p| p["partition_index"] == 0 && p["partition_size"].as_u64().unwrap() > 0)
    );
    // Asking for one partition lists that one only.
    let listed = &one[0]["log_dirs"][0]["topics"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{one}");
    assert_eq!(listed[0]["partitions"].as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["partitions"][0]["partition_index"], 1);
}

#[test]
fn offset_for_leader_epoch_answers_from_the_epoch_cache_with_kafkas_rules() {
    let broker = Broker::start_with(&["--set", "num.partitions=1"]);
    produce(&broker, "epochs", 30);
    let mut client = WireClient::connect(&broker.bootstrap());
    let ask = |client: &mut WireClient, topic: &str, current: i32, epoch: i32| {
        let request = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: topic.into(),
                partitions: vec![OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: current,
                    leader_epoch: epoch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let ResponseBody::OffsetForLeaderEpoch(response) =
            client.request(ApiKey::OffsetForLeaderEpoch, 4, &request)
        else {
            panic!("an OffsetForLeaderEpoch response")
        };
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    // The leader's epoch (0): it ends at the log end offset.
    assert_eq!(ask(&mut client, "epochs", -1, 0), (0, 0, 30));
    assert_eq!(ask(&mut client, "epochs", 0, 0), (0, 0, 30));
    // An epoch above the leader's: Kafka's undefined epoch and offset.
    assert_eq!(ask(&mut client, "epochs", -1, 5), (0, -1, -1));
    // The client believes in a newer leader epoch: UNKNOWN_LEADER_EPOCH (75).
    assert_eq!(ask(&mut client, "epochs", 3, 0), (75, -1, -1));
    // Unknown partition: UNKNOWN_TOPIC_OR_PARTITION (3).
    assert_eq!(ask(&mut client, "nope", -1, 0), (3, -1, -1));
    // An empty partition knows the leader's epoch from its log end offset.
    let mut empty = WireClient::connect(&broker.bootstrap());
    common::kcat(&broker, &["-L", "-t", "empty"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let answer = ask(&mut empty, "empty", -1, 0);
        if answer.0 == 0 {
            assert_eq!(answer, (0, 0, 0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{answer:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn describe_cluster_reports_every_cluster_operation_when_asked() {
    use corelog::protocol::generated::describe_cluster_request::DescribeClusterRequest;
    let broker = Broker::start();
    let mut client = WireClient::connect(&broker.bootstrap());
    for (asked, expected) in [(true, 8096), (false, i32::MIN)] {
        let request = DescribeClusterRequest {
            include_cluster_authorized_operations: asked,
            endpoint_type: 1,
            ..Default::default()
        };
        let ResponseBody::DescribeCluster(response) =
            client.request(ApiKey::DescribeCluster, 1, &request)
        else {
            panic!("a DescribeCluster response")
        };
        assert_eq!(response.error_code, 0);
        // CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
        // IDEMPOTENT_WRITE: what librdkafka's admin test expects without an authorizer.
        assert_eq!(response.cluster_authorized_operations, expected);
    }
}
