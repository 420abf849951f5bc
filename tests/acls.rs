//! ACLs and SCRAM credentials through real clients against the real binary:
//! kafka-python's admin client (CreateAcls, DescribeAcls, DeleteAcls,
//! AlterUserScramCredentials, DescribeUserScramCredentials) and a librdkafka producer
//! with default settings, whose deliveries an ACL denies and then allows again; ACLs and
//! credentials kept across a restart.
//!
//! The Python scripts assert in Python and print `ok` last; a failed assertion fails the
//! test with the script's traceback.

mod common;

use common::kafka::{Recorder, TestProducer, base_timestamp, send_all, test_record};
use common::{Broker, run_python};
use rdkafka::ClientConfig;

const STANDARD_AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";

fn run_ok(broker: &Broker, script: &str) -> String {
    let output = run_python(broker, &format!("{PRELUDE}{script}"));
    assert!(
        output.trim_end().ends_with("ok"),
        "the script did not finish: {output}"
    );
    output
}

/// Imports and helpers every script starts with.
const PRELUDE: &str = r#"
import sys
from kafka.admin import (KafkaAdminClient, NewTopic, ACL, ACLFilter, ACLOperation,
    ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourcePatternFilter,
    ResourceType, ScramMechanism, UserScramCredentialDeletion, UserScramCredentialUpsertion)
import kafka.errors as Errors
bootstrap = sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=bootstrap)

LITERAL = ACLResourcePatternType.LITERAL
PREFIXED = ACLResourcePatternType.PREFIXED

def acl(principal, operation, permission, resource_type, name, pattern=LITERAL, host='*'):
    return ACL(principal, host, operation, permission, ResourcePattern(resource_type, name, pattern))

def acl_filter(resource_type=ResourceType.ANY, name=None, pattern=ACLResourcePatternType.ANY,
               principal=None, operation=ACLOperation.ANY):
    return ACLFilter(principal, None, operation, ACLPermissionType.ANY,
                     ResourcePatternFilter(resource_type, name, pattern))

def described(f):
    acls, error = admin.describe_acls(f)
    assert error is Errors.NoError, error
    return sorted((a.resource_pattern.resource_type, a.resource_pattern.resource_name,
                   a.resource_pattern.pattern_type, a.principal, a.host, a.operation,
                   a.permission_type) for a in acls)
"#;

/// A librdkafka producer with librdkafka's defaults (only the bootstrap servers set).
fn default_producer(broker: &Broker) -> TestProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create_with_context(Recorder::default())
        .expect("create an rdkafka producer")
}

/// The error of each delivery of a few records sent to `topic` by a new default
/// producer (`None`: delivered).
fn produce(broker: &Broker, topic: &str) -> Vec<Option<String>> {
    let records: Vec<_> = (0..3)
        .map(|i| test_record(topic, i, base_timestamp()))
        .collect();
    send_all(&default_producer(broker), topic, None, &records)
        .into_iter()
        .map(|d| d.error)
        .collect()
}

#[test]
fn without_an_authorizer_the_acl_apis_answer_security_disabled() {
    let broker = Broker::start();
    run_ok(
        &broker,
        r#"
result = admin.create_acls([acl('User:alice', ACLOperation.READ, ACLPermissionType.ALLOW,
                                ResourceType.TOPIC, 't')])
assert not result['succeeded'], result
assert result['failed'] == [Errors.SecurityDisabledError], result
try:
    admin.describe_acls(acl_filter())
    raise AssertionError('DescribeAcls succeeded')
except Errors.SecurityDisabledError as e:
    assert 'No Authorizer is configured' in str(e), e
[(_, matched, error)] = admin.delete_acls([acl_filter()])
assert error is Errors.SecurityDisabledError and not matched, (matched, error)
print('ok')
"#,
    );
}

#[test]
fn acls_are_created_described_with_filters_deleted_and_kept_across_a_restart() {
    let mut broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        STANDARD_AUTHORIZER,
        "--set",
        "allow.everyone.if.no.acl.found=true",
    ]);
    run_ok(
        &broker,
        r#"
T, G, C = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
READ, WRITE, ALTER = ACLOperation.READ, ACLOperation.WRITE, ACLOperation.ALTER
ALLOW, DENY = ACLPermissionType.ALLOW, ACLPermissionType.DENY
result = admin.create_acls([
    acl('User:alice', READ, ALLOW, T, 'orders'),
    acl('User:alice', WRITE, ALLOW, T, 'orders-', PREFIXED),
    acl('User:bob', READ, DENY, G, 'billing', host='10.0.0.1'),
    acl('User:*', ALTER, ALLOW, C, 'kafka-cluster'),
    acl('User:bob', READ, ALLOW, C, 'not-the-cluster'),
    acl('bob', READ, ALLOW, T, 'orders'),
])
assert len(result['succeeded']) == 4, result
# A CLUSTER resource not named kafka-cluster, and a principal without a type.
assert result['failed'] == [Errors.InvalidRequestError] * 2, result
# Creating an existing binding succeeds and adds nothing.
again = admin.create_acls([acl('User:alice', READ, ALLOW, T, 'orders')])
assert len(again['succeeded']) == 1 and not again['failed'], again
assert len(described(acl_filter())) == 4
assert described(acl_filter(T)) == sorted([
    (T, 'orders', LITERAL, 'User:alice', '*', READ, ALLOW),
    (T, 'orders-', PREFIXED, 'User:alice', '*', WRITE, ALLOW)])
assert [a[1] for a in described(acl_filter(T, 'orders', LITERAL))] == ['orders']
# MATCH: the bindings that apply to a resource (the prefixed one covers orders-eu).
assert [a[1] for a in described(acl_filter(T, 'orders-eu', ACLResourcePatternType.MATCH))] \
    == ['orders-']
assert [a[3] for a in described(acl_filter(principal='User:bob'))] == ['User:bob']
assert described(acl_filter(G, 'billing'))[0][4] == '10.0.0.1'
[(_, matched, error)] = admin.delete_acls([acl_filter(C)])
assert error is Errors.NoError and len(matched) == 1, (matched, error)
assert matched[0].principal == 'User:*'
assert len(described(acl_filter())) == 3
print('ok')
"#,
    );
    broker.restart();
    run_ok(
        &broker,
        r#"
assert sorted(a[1] for a in described(acl_filter())) == ['billing', 'orders', 'orders-'], \
    described(acl_filter())
print('ok')
"#,
    );
}

#[test]
fn a_deny_acl_fails_a_default_producers_deliveries_until_it_is_deleted() {
    let mut broker = Broker::start_with(&[
        "--shards",
        "2",
        "--set",
        STANDARD_AUTHORIZER,
        "--set",
        "allow.everyone.if.no.acl.found=true",
    ]);
    run_ok(
        &broker,
        r#"
admin.create_topics([NewTopic('closed', 2, 1), NewTopic('open', 2, 1)])
result = admin.create_acls([acl('User:ANONYMOUS', ACLOperation.WRITE, ACLPermissionType.DENY,
                                ResourceType.TOPIC, 'closed')])
assert len(result['succeeded']) == 1, result
# The topic now has ACLs and none allows DESCRIBE: an all-topics Metadata leaves it out.
topics = admin.list_topics()
assert 'open' in topics and 'closed' not in topics, topics
print('ok')
"#,
    );
    for error in produce(&broker, "closed") {
        let error = error.expect("the deny ACL fails the delivery");
        assert!(
            error.contains("TopicAuthorizationFailed")
                || error.contains("Topic authorization failed"),
            "{error}"
        );
    }
    assert_eq!(produce(&broker, "open"), vec![None; 3]);

    // Kept across a restart.
    broker.restart();
    assert!(produce(&broker, "closed").iter().all(Option::is_some));

    run_ok(
        &broker,
        r#"
[(_, matched, error)] = admin.delete_acls([acl_filter(ResourceType.TOPIC, 'closed')])
assert error is Errors.NoError and len(matched) == 1, (matched, error)
print('ok')
"#,
    );
    assert_eq!(produce(&broker, "closed"), vec![None; 3]);
}

#[test]
fn scram_credentials_are_upserted_described_deleted_and_stored_as_kafka_stores_them() {
    let mut broker = Broker::start_with(&["--shards", "2"]);
    let output = run_ok(
        &broker,
        r#"
import hashlib, hmac
def info(user):
    return admin.describe_user_scram_credentials([user])[user]
assert info('alice')['error'], info('alice')
upsert = UserScramCredentialUpsertion('alice', ScramMechanism.SCRAM_SHA_256, 'secret',
                                      iterations=8192)
errors = admin.alter_user_scram_credentials([
    upsert,
    UserScramCredentialUpsertion('bob', ScramMechanism.SCRAM_SHA_512, 'pw', iterations=100),
    UserScramCredentialDeletion('carol', ScramMechanism.SCRAM_SHA_256),
])
assert errors['alice'] is None, errors
assert 'Too few iterations' in errors['bob'], errors
assert 'does not exist' in errors['carol'], errors
described = info('alice')
assert described['error'] is None, described
[credential] = described['credential_infos']
assert int(credential['mechanism']) == 1 and credential['iterations'] == 8192, credential
everyone = admin.describe_user_scram_credentials()
assert list(everyone) == ['alice'], everyone
salted = upsert.salted_password
stored = hashlib.sha256(hmac.new(salted, b'Client Key', 'sha256').digest()).hexdigest()
print('stored_key', stored)
print('ok')
"#,
    );
    let stored_key = output
        .lines()
        .find_map(|l| l.strip_prefix("stored_key "))
        .expect("the script prints the stored key")
        .to_string();
    let file = std::fs::read_to_string(broker.data_dir.join("corelog-security.json"))
        .expect("the credentials are persisted");
    assert!(file.contains(&stored_key), "{file}");
    assert!(!file.contains("secret"), "{file}");

    broker.restart();
    run_ok(
        &broker,
        r#"
described = admin.describe_user_scram_credentials(['alice'])['alice']
assert described['credential_infos'][0]['iterations'] == 8192, described
errors = admin.alter_user_scram_credentials([
    UserScramCredentialDeletion('alice', ScramMechanism.SCRAM_SHA_256)])
assert errors == {'alice': None}, errors
assert admin.describe_user_scram_credentials(['alice'])['alice']['error'], 'deleted'
print('ok')
"#,
    );
}

#[test]
fn group_acls_refuse_group_operations_with_group_authorization_failed() {
    let broker = Broker::start_with(&[
        "--set",
        STANDARD_AUTHORIZER,
        "--set",
        "allow.everyone.if.no.acl.found=true",
    ]);
    run_ok(
        &broker,
        r#"
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
admin.create_topics([NewTopic('events', 1, 1)])
result = admin.create_acls([acl('User:ANONYMOUS', ACLOperation.ALL, ACLPermissionType.DENY,
                                ResourceType.GROUP, 'locked')])
assert len(result['succeeded']) == 1, result
# FindCoordinator (DESCRIBE) or DeleteGroups (DELETE) refuses it.
try:
    [(group, error)] = admin.delete_groups(['locked'])
    assert error is Errors.GroupAuthorizationFailedError, error
except Errors.GroupAuthorizationFailedError:
    pass
assert 'locked' not in [g[0] for g in admin.list_groups()]
for group_id, refused in (('open', False), ('locked', True)):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id,
                             enable_auto_commit=False)
    consumer.assign([TopicPartition('events', 0)])
    try:
        consumer.commit({TopicPartition('events', 0): OffsetAndMetadata(0, '', -1)})
        assert not refused, 'committed for a denied group'
    except Errors.GroupAuthorizationFailedError:
        assert refused
    finally:
        consumer.close()
print('ok')
"#,
    );
}

#[test]
fn a_transactional_producer_denied_its_transactional_id_cannot_initialize() {
    use rdkafka::producer::{BaseProducer, Producer};
    let broker = Broker::start_with(&[
        "--set",
        STANDARD_AUTHORIZER,
        "--set",
        "allow.everyone.if.no.acl.found=true",
    ]);
    run_ok(
        &broker,
        r#"
result = admin.create_acls([acl('User:ANONYMOUS', ACLOperation.WRITE, ACLPermissionType.DENY,
                                ResourceType.TRANSACTIONAL_ID, 'denied-', PREFIXED)])
assert len(result['succeeded']) == 1, result
print('ok')
"#,
    );
    let init = |transactional_id: &str| {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("transactional.id", transactional_id)
            .create()
            .expect("create a transactional producer");
        producer
            .init_transactions(std::time::Duration::from_secs(30))
            .map_err(|e| e.to_string())
    };
    let refused = init("denied-1").expect_err("the deny ACL refuses the transactional id");
    assert!(
        refused.contains("TransactionalIdAuthorizationFailed")
            || refused.contains("Transactional Id authorization failed"),
        "{refused}"
    );
    init("allowed-1").expect("another transactional id initializes");
}
