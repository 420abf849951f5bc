//! The error codes of the idempotence and transaction APIs, at the wire: each request
//! built with corelog's generated types over a plain socket, each answer decoded and
//! checked against what Apache Kafka returns.

mod common;

use bytes::Bytes;
use common::Broker;
use common::wire::{WireClient, produce_request};
use corelog::protocol::ErrorCode;
use corelog::protocol::generated::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use corelog::protocol::generated::describe_producers_request::{
    DescribeProducersRequest, TopicRequest,
};
use corelog::protocol::generated::describe_transactions_request::DescribeTransactionsRequest;
use corelog::protocol::generated::end_txn_request::EndTxnRequest;
use corelog::protocol::generated::find_coordinator_request::FindCoordinatorRequest;
use corelog::protocol::generated::init_producer_id_request::InitProducerIdRequest;
use corelog::protocol::generated::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use corelog::protocol::generated::{ApiKey, ResponseBody};
use corelog::protocol::records::{BatchBuilder, Compression};

const TOPIC: &str = "eos-wire";

fn code(c: i16) -> ErrorCode {
    ErrorCode::from_code(c)
}

/// One batch of `count` records from (producer id, epoch) at sequence `seq`.
fn producer_batch(pid: i64, epoch: i16, seq: i32, count: usize, transactional: bool) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(pid, epoch, seq)
        .transactional(transactional);
    for i in 0..count {
        builder.push(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64,
            Some(format!("k{i}").as_bytes()),
            Some(b"v"),
            &[],
        );
    }
    builder.build(0)
}

fn produce(client: &mut WireClient, batch: Bytes) -> (ErrorCode, i64) {
    let response = client.produce(&produce_request(TOPIC, -1, vec![(0, batch)]));
    let p = &response.responses[0].partition_responses[0];
    (code(p.error_code), p.base_offset)
}

fn transactional_produce(client: &mut WireClient, batch: Bytes) -> ErrorCode {
    let mut request = produce_request(TOPIC, -1, vec![(0, batch)]);
    request.transactional_id = Some("wire-txn".to_string());
    let response = client.produce(&request);
    code(response.responses[0].partition_responses[0].error_code)
}

fn init_producer_id(
    client: &mut WireClient,
    id: Option<&str>,
    timeout_ms: i32,
) -> (ErrorCode, i64, i16) {
    let ResponseBody::InitProducerId(r) = client.request(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest {
            transactional_id: id.map(str::to_string),
            transaction_timeout_ms: timeout_ms,
            producer_id: -1,
            producer_epoch: -1,
            ..InitProducerIdRequest::default()
        },
    ) else {
        panic!("not an InitProducerId response")
    };
    (code(r.error_code), r.producer_id, r.producer_epoch)
}

fn setup() -> (Broker, WireClient) {
    let broker = Broker::start_with(&["--set", "num.partitions=1"]);
    let mut client = WireClient::connect(&broker.bootstrap());
    // The topic, auto-created by Metadata.
    client.create_by_metadata(TOPIC);
    (broker, client)
}

#[test]
fn idempotent_produce_answers_retries_gaps_and_old_epochs_as_kafka_does() {
    let (_broker, mut client) = setup();
    let (ok, pid, epoch) = init_producer_id(&mut client, None, 60_000);
    assert_eq!((ok, epoch), (ErrorCode::None, 0));
    let (again, other, _) = init_producer_id(&mut client, None, 60_000);
    assert_eq!(again, ErrorCode::None);
    assert_ne!(pid, other, "every idempotent producer gets its own id");

    assert_eq!(
        produce(&mut client, producer_batch(pid, 0, 0, 3, false)),
        (ErrorCode::None, 0)
    );
    assert_eq!(
        produce(&mut client, producer_batch(pid, 0, 3, 2, false)),
        (ErrorCode::None, 3)
    );
    // A retry of an earlier batch: its original offset, nothing appended.
    assert_eq!(
        produce(&mut client, producer_batch(pid, 0, 0, 3, false)),
        (ErrorCode::None, 0)
    );
    // A gap in the sequence.
    assert_eq!(
        produce(&mut client, producer_batch(pid, 0, 9, 1, false)).0,
        ErrorCode::OutOfOrderSequenceNumber
    );
    // A new epoch starts at 0; then the old epoch is refused.
    assert_eq!(
        produce(&mut client, producer_batch(pid, 1, 4, 1, false)).0,
        ErrorCode::OutOfOrderSequenceNumber
    );
    assert_eq!(
        produce(&mut client, producer_batch(pid, 1, 0, 1, false)),
        (ErrorCode::None, 5)
    );
    assert_eq!(
        produce(&mut client, producer_batch(pid, 0, 5, 1, false)).0,
        ErrorCode::InvalidProducerEpoch
    );

    let ResponseBody::DescribeProducers(described) = client.request(
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest {
            topics: vec![TopicRequest {
                name: TOPIC.to_string(),
                partition_indexes: vec![0, 7],
                ..TopicRequest::default()
            }],
            ..DescribeProducersRequest::default()
        },
    ) else {
        panic!("not a DescribeProducers response")
    };
    let partitions = &described.topics[0].partitions;
    let state = &partitions[0].active_producers[0];
    assert_eq!(
        (state.producer_id, state.producer_epoch, state.last_sequence),
        (pid, 1, 0)
    );
    assert_eq!(
        code(partitions[1].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
}

#[test]
fn transaction_apis_refuse_what_kafka_refuses() {
    let (_broker, mut client) = setup();
    let ResponseBody::FindCoordinator(found) = client.request(
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest {
            key_type: 1,
            coordinator_keys: vec!["wire-txn".to_string()],
            ..FindCoordinatorRequest::default()
        },
    ) else {
        panic!("not a FindCoordinator response")
    };
    assert_eq!(code(found.coordinators[0].error_code), ErrorCode::None);

    // A timeout above transaction.max.timeout.ms (900000 by default).
    assert_eq!(
        init_producer_id(&mut client, Some("wire-txn"), 900_001).0,
        ErrorCode::InvalidTransactionTimeout
    );
    let (ok, pid, epoch) = init_producer_id(&mut client, Some("wire-txn"), 60_000);
    assert_eq!(ok, ErrorCode::None);

    let add = |topic: &str, pid: i64, epoch: i16| AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: "wire-txn".to_string(),
        v3_and_below_producer_id: pid,
        v3_and_below_producer_epoch: epoch,
        v3_and_below_topics: vec![AddPartitionsToTxnTopic {
            name: topic.to_string(),
            partitions: vec![0],
            ..AddPartitionsToTxnTopic::default()
        }],
        ..AddPartitionsToTxnRequest::default()
    };
    let add_code = |client: &mut WireClient, request: &AddPartitionsToTxnRequest| {
        let ResponseBody::AddPartitionsToTxn(r) =
            client.request(ApiKey::AddPartitionsToTxn, 3, request)
        else {
            panic!("not an AddPartitionsToTxn response")
        };
        code(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code)
    };
    assert_eq!(
        add_code(&mut client, &add("no-such-topic", pid, epoch)),
        ErrorCode::UnknownTopicOrPartition
    );
    assert_eq!(
        add_code(&mut client, &add(TOPIC, pid + 1, epoch)),
        ErrorCode::InvalidProducerIdMapping
    );
    assert_eq!(
        add_code(&mut client, &add(TOPIC, pid, epoch)),
        ErrorCode::None
    );

    let end = |client: &mut WireClient, id: &str, pid: i64, epoch: i16, commit: bool| {
        let ResponseBody::EndTxn(r) = client.request(
            ApiKey::EndTxn,
            3,
            &EndTxnRequest {
                transactional_id: id.to_string(),
                producer_id: pid,
                producer_epoch: epoch,
                committed: commit,
                ..EndTxnRequest::default()
            },
        ) else {
            panic!("not an EndTxn response")
        };
        code(r.error_code)
    };
    assert_eq!(
        end(&mut client, "unknown-txn", pid, epoch, true),
        ErrorCode::InvalidProducerIdMapping
    );
    // The transaction's data, then its commit.
    assert_eq!(
        transactional_produce(&mut client, producer_batch(pid, epoch, 0, 2, true)),
        ErrorCode::None
    );
    assert_eq!(
        end(&mut client, "wire-txn", pid, epoch, true),
        ErrorCode::None
    );
    // A retried commit succeeds; an abort of the committed transaction does not.
    assert_eq!(
        end(&mut client, "wire-txn", pid, epoch, true),
        ErrorCode::None
    );
    assert_eq!(
        end(&mut client, "wire-txn", pid, epoch, false),
        ErrorCode::InvalidTxnState
    );
    // Data for a transaction that has ended is refused (KIP-890), not left hanging.
    assert_eq!(
        transactional_produce(&mut client, producer_batch(pid, epoch, 2, 2, true)),
        ErrorCode::InvalidTxnState
    );
    // Transactional data without a transactional id is an invalid request.
    assert_eq!(
        produce(&mut client, producer_batch(pid, epoch, 2, 2, true)).0,
        ErrorCode::InvalidRequest
    );

    // A newer producer of the same id fences this one.
    let (ok, _, new_epoch) = init_producer_id(&mut client, Some("wire-txn"), 60_000);
    assert_eq!((ok, new_epoch), (ErrorCode::None, epoch + 1));
    assert_eq!(
        end(&mut client, "wire-txn", pid, epoch, true),
        ErrorCode::ProducerFenced
    );

    let ResponseBody::DescribeTransactions(described) = client.request(
        ApiKey::DescribeTransactions,
        0,
        &DescribeTransactionsRequest {
            transactional_ids: vec!["wire-txn".to_string(), "never-seen".to_string()],
            ..DescribeTransactionsRequest::default()
        },
    ) else {
        panic!("not a DescribeTransactions response")
    };
    let states = &described.transaction_states;
    assert_eq!(code(states[0].error_code), ErrorCode::None);
    // The new producer's InitProducerId left the id Empty, as in Kafka.
    assert_eq!(states[0].transaction_state, "Empty");
    assert_eq!(states[0].producer_epoch, new_epoch);
    assert_eq!(
        code(states[1].error_code),
        ErrorCode::TransactionalIdNotFound
    );

    let ResponseBody::WriteTxnMarkers(written) = client.request(
        ApiKey::WriteTxnMarkers,
        1,
        &WriteTxnMarkersRequest {
            markers: vec![WritableTxnMarker {
                producer_id: 4242,
                producer_epoch: 0,
                transaction_result: false,
                coordinator_epoch: 0,
                topics: vec![
                    WritableTxnMarkerTopic {
                        name: TOPIC.to_string(),
                        partition_indexes: vec![0],
                        ..WritableTxnMarkerTopic::default()
                    },
                    WritableTxnMarkerTopic {
                        name: "no-such-topic".to_string(),
                        partition_indexes: vec![0],
                        ..WritableTxnMarkerTopic::default()
                    },
                ],
                ..WritableTxnMarker::default()
            }],
            ..WriteTxnMarkersRequest::default()
        },
    ) else {
        panic!("not a WriteTxnMarkers response")
    };
    let topics = &written.markers[0].topics;
    assert_eq!(code(topics[0].partitions[0].error_code), ErrorCode::None);
    assert_eq!(
        code(topics[1].partitions[0].error_code),
        ErrorCode::UnknownTopicOrPartition
    );
}
