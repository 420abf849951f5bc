//! Consumer group members for the tests: a librdkafka consumer that `subscribe`s with a
//! `group.id`, polled on a thread of its own, recording what it consumes, its current
//! assignment and its rebalances; and the same kind of member in a child process, which
//! a test can `kill -9` to make a member die without leaving.

use super::Broker;
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One record as a member consumed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
}

/// What a member's thread shares with the test.
#[derive(Default)]
pub struct Shared {
    pub consumed: Mutex<Vec<Seen>>,
    pub assignment: Mutex<BTreeSet<i32>>,
    /// Assignments and revocations the client was told of.
    pub rebalances: AtomicUsize,
    pub errors: Mutex<Vec<String>>,
}

struct Recording(Arc<Shared>);

impl ClientContext for Recording {}

impl ConsumerContext for Recording {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if !matches!(rebalance, Rebalance::Error(_)) {
            self.0.rebalances.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A subscribed librdkafka consumer on its own thread. Dropping it closes the
/// consumer, which leaves the group (unless it is a static member).
pub struct Member {
    pub shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Settings every classic-protocol member gets: short sessions so that tests of a
/// dying member stay short, offsets committed automatically (and on revocation).
pub const CLASSIC: &[(&str, &str)] = &[
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "300"),
];

impl Member {
    pub fn start(broker: &Broker, group: &str, topic: &str, settings: &[(&str, &str)]) -> Member {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "200")
            .set("fetch.wait.max.ms", "100");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let consumer: BaseConsumer<Recording> = config
            .create_with_context(Recording(shared.clone()))
            .expect("create a group consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let thread = {
            let (shared, stop, topic) = (shared.clone(), stop.clone(), topic.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match consumer.poll(Duration::from_millis(50)) {
                        Some(Ok(message)) => shared.consumed.lock().unwrap().push(Seen {
                            partition: message.partition(),
                            offset: message.offset(),
                            key: message.key().map(<[u8]>::to_vec),
                        }),
                        Some(Err(e)) => shared.errors.lock().unwrap().push(e.to_string()),
                        None => {}
                    }
                    if let Ok(assignment) = consumer.assignment() {
                        *shared.assignment.lock().unwrap() = assignment
                            .elements_for_topic(&topic)
                            .iter()
                            .map(|e| e.partition())
                            .collect();
                    }
                }
                // Commits what was consumed and leaves the group.
                drop(consumer);
            })
        };
        Member {
            shared,
            stop,
            thread: Some(thread),
        }
    }

    pub fn assignment(&self) -> BTreeSet<i32> {
        self.shared.assignment.lock().unwrap().clone()
    }

    pub fn consumed(&self) -> Vec<Seen> {
        self.shared.consumed.lock().unwrap().clone()
    }

    pub fn rebalances(&self) -> usize {
        self.shared.rebalances.load(Ordering::SeqCst)
    }

    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }

    /// Closes the consumer (commit, leave) and waits for its thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the member thread does not panic");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Polls `condition` until it holds or `timeout` passes; says which.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

/// A librdkafka group member in a child process (this test binary, re-run with
/// `MEMBER_CHILD_ENV` set: see `run_member_child`). It commits each record
/// synchronously and only then prints it (`partition offset`), so every record it
/// printed is committed; a test can `kill -9` it to make a member die without leaving.
pub struct ChildMember {
    child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
}

/// Set (to `bootstrap group topic`) in the child process a `ChildMember` runs.
pub const MEMBER_CHILD_ENV: &str = "CORELOG_TEST_GROUP_MEMBER";

/// The body of the child: call it from a `#[test]` named `child_test`; it returns at
/// once unless this process is a `ChildMember`'s child.
pub fn run_member_child() {
    let Ok(spec) = std::env::var(MEMBER_CHILD_ENV) else {
        return;
    };
    let fields: Vec<&str> = spec.split(' ').collect();
    let [bootstrap, group, topic] = fields[..] else {
        panic!("{MEMBER_CHILD_ENV}={spec:?}: expected 'bootstrap group topic'")
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100");
    for (key, value) in CLASSIC {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().expect("create the child member");
    consumer.subscribe(&[topic]).expect("subscribe");
    use std::io::Write;
    let mut out = std::io::stdout();
    // End the test harness's "test ... " line, so every record gets a line of its own.
    writeln!(out).unwrap();
    loop {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            consumer
                .commit_message(&message, rdkafka::consumer::CommitMode::Sync)
                .expect("commit");
            writeln!(out, "{} {}", message.partition(), message.offset()).unwrap();
            out.flush().unwrap();
        }
    }
}

impl ChildMember {
    /// Runs `run_member_child` through the test `child_test` of this test binary.
    pub fn start(broker: &Broker, group: &str, topic: &str, child_test: &str) -> ChildMember {
        let mut child = Command::new(std::env::current_exe().expect("this test binary"))
            .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(
                MEMBER_CHILD_ENV,
                format!("{} {group} {topic}", broker.bootstrap()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run the child member");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        ChildMember { child, lines }
    }

    /// Records consumed (and committed) so far, as (partition, offset).
    pub fn consumed(&self) -> Vec<(i32, i64)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let partition = fields.next()?.parse().ok()?;
                let offset = fields.next()?.parse().ok()?;
                fields.next().is_none().then_some((partition, offset))
            })
            .collect()
    }

    /// `kill -9`: the member stops heartbeating without leaving the group.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        self.kill();
    }
}
