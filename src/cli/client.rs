//! A small blocking Kafka client for the operator commands, over `std::net::TcpStream`
//! and the crate's own generated codec: it speaks only the wire protocol, so the
//! commands work against any Kafka-compatible broker, corelog or Apache Kafka.
//!
//! Owns: one connection per broker (the bootstrap connection until the cluster is
//! known), each opened with ApiVersions so that every request goes at the highest
//! version both sides speak; the cluster's brokers and controller (Metadata); the
//! coordinator of each group (FindCoordinator); bounded retries of retriable errors.
//! Runs on the command's one thread; nothing is shared.
//!
//! Invariants: a response is accepted only with the correlation id of the request it
//! answers, and a connection that failed mid-exchange (I/O error, timeout, a frame that
//! does not decode) is dropped, never reused; every wait is bounded by `--timeout-ms`.
//! Every failure is a [`ClientError`] that names the broker and the API, never a panic.

use crate::protocol::ErrorCode;
use crate::protocol::codec::{Decodable, Message, Request, Truncate, VersionRange};
use crate::protocol::frame::encode_request;
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::api_versions_request::ApiVersionsRequest;
use crate::protocol::generated::api_versions_response::ApiVersionsResponse;
use crate::protocol::generated::find_coordinator_request::FindCoordinatorRequest;
use crate::protocol::generated::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use crate::protocol::generated::metadata_request::{MetadataRequest, MetadataRequestTopic};
use crate::protocol::generated::metadata_response::MetadataResponse;
use crate::protocol::generated::request_header::RequestHeader;
use crate::protocol::generated::response_header::ResponseHeader;
use crate::protocol::wire::Reader;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Where Kafka's tools look for a broker when told nothing.
pub const DEFAULT_BOOTSTRAP: &str = "localhost:9092";
/// Kafka's tools wait 30 s for an answer by default.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// The client id every request carries.
const CLIENT_ID: &str = "corelog-cli";
/// Larger response frames are refused rather than buffered.
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Attempts of an operation that keeps failing with a retriable error.
pub const MAX_ATTEMPTS: u32 = 10;
/// Wait before the first retry; doubled after each, up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// ListOffsets' special timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;

/// Why a call failed. Every variant names the broker address or the API concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// No connection could be made (refused, unreachable, unresolvable, timed out).
    Connect { address: String, reason: String },
    /// The broker did not answer within `--timeout-ms`.
    Timeout {
        address: String,
        api: ApiKey,
        timeout_ms: u64,
    },
    /// The connection failed in the middle of an exchange.
    Io {
        address: String,
        api: ApiKey,
        reason: String,
    },
    /// The broker's bytes are not a valid answer (does not decode, wrong correlation id).
    Protocol {
        address: String,
        api: ApiKey,
        reason: String,
    },
    /// The broker does not serve the API, or no version of it this client speaks.
    Unsupported {
        address: String,
        api: ApiKey,
        /// The broker's versions when it serves the API at all.
        broker_versions: Option<VersionRange>,
    },
    /// The broker answered with a Kafka error code.
    Kafka {
        api: ApiKey,
        code: ErrorCode,
        /// What the request was about (a topic, a group).
        subject: String,
        message: Option<String>,
    },
    /// Something the cluster metadata does not hold (an unknown broker id).
    Cluster(String),
}

impl ClientError {
    /// Errors worth retrying: the coordinator or leader moves or is loading.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            ClientError::Kafka {
                code: ErrorCode::NotCoordinator
                    | ErrorCode::CoordinatorLoadInProgress
                    | ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::NotLeaderOrFollower
                    | ErrorCode::NotController,
                ..
            }
        )
    }

    /// The Kafka error code, when the broker answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn kafka(
        api: ApiKey,
        code: i16,
        subject: impl Into<String>,
        message: Option<String>,
    ) -> Self {
        ClientError::Kafka {
            api,
            code: ErrorCode::from_code(code),
            subject: subject.into(),
            message: message.filter(|m| !m.is_empty()),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { address, reason } => {
                write!(f, "cannot connect to {address}: {reason}")
            }
            ClientError::Timeout {
                address,
                api,
                timeout_ms,
            } => write!(
                f,
                "{address} did not answer {} within {timeout_ms} ms (--timeout-ms)",
                api.name()
            ),
            ClientError::Io {
                address,
                api,
                reason,
            } => write!(f, "{} to {address} failed: {reason}", api.name()),
            ClientError::Protocol {
                address,
                api,
                reason,
            } => write!(
                f,
                "{address} sent an invalid {} answer: {reason}",
                api.name()
            ),
            ClientError::Unsupported {
                address,
                api,
                broker_versions: None,
            } => write!(
                f,
                "the broker at {address} does not serve {} (API key {})",
                api.name(),
                api.key()
            ),
            ClientError::Unsupported {
                address,
                api,
                broker_versions: Some(theirs),
            } => write!(
                f,
                "the broker at {address} serves {} versions {theirs}, none of which this \
                 client speaks ({})",
                api.name(),
                api.valid_versions()
            ),
            ClientError::Kafka {
                api,
                code,
                subject,
                message,
            } => {
                write!(f, "{} failed for {subject}: {code}", api.name())?;
                if let Some(message) = message {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            ClientError::Cluster(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ClientError {}

/// How to reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `host:port` addresses tried in order until one answers.
    pub bootstrap: Vec<String>,
    /// Bound on connecting and on each answer.
    pub timeout: Duration,
}

impl ClientConfig {
    /// Parses Kafka's `--bootstrap-server host:port[,host:port]`.
    pub fn parse(bootstrap: &str, timeout_ms: u64) -> Result<ClientConfig, String> {
        let bootstrap: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(String::from)
            .collect();
        if bootstrap.is_empty() {
            return Err("--bootstrap-server needs at least one host:port".into());
        }
        for address in &bootstrap {
            let valid = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(format!("--bootstrap-server: '{address}' is not host:port"));
            }
        }
        if timeout_ms == 0 {
            return Err("--timeout-ms must be positive".into());
        }
        Ok(ClientConfig {
            bootstrap,
            timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// Which broker a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any broker: the bootstrap connection.
    Any,
    /// The broker with this node id.
    Node(i32),
    /// The controller Metadata names (any broker when it names none).
    Controller,
}

/// A broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: i32,
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One open connection: its address, its socket and what the broker serves.
struct Connection {
    address: String,
    stream: TcpStream,
    next_correlation_id: i32,
    /// The broker's version range per API key, from ApiVersions.
    versions: BTreeMap<i16, VersionRange>,
    timeout: Duration,
}

impl Connection {
    /// Connects (trying each resolved address) and asks ApiVersions.
    fn open(address: &str, timeout: Duration) -> Result<Connection, ClientError> {
        let connect_error = |reason: String| ClientError::Connect {
            address: address.to_string(),
            reason,
        };
        let resolved: Vec<_> = address
            .to_socket_addrs()
            .map_err(|e| connect_error(e.to_string()))?
            .collect();
        let mut last = String::from("the name resolves to no address");
        let mut stream = None;
        for socket_address in resolved {
            match TcpStream::connect_timeout(&socket_address, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    last = format!("no answer within {} ms (--timeout-ms)", timeout.as_millis());
                }
                Err(e) => last = e.to_string(),
            }
        }
        let stream = stream.ok_or_else(|| connect_error(last))?;
        let setup = |e: std::io::Error| connect_error(e.to_string());
        stream.set_nodelay(true).map_err(setup)?;
        stream.set_read_timeout(Some(timeout)).map_err(setup)?;
        stream.set_write_timeout(Some(timeout)).map_err(setup)?;
        let mut connection = Connection {
            address: address.to_string(),
            stream,
            next_correlation_id: 0,
            versions: BTreeMap::new(),
            timeout,
        };
        connection.api_versions()?;
        Ok(connection)
    }

    /// Learns the broker's versions. Asks at our newest ApiVersions version; a broker
    /// that does not know it answers UNSUPPORTED_VERSION at v0 with its own range, and
    /// we ask again at the highest version both speak.
    fn api_versions(&mut self) -> Result<(), ClientError> {
        let api = ApiKey::ApiVersions;
        let mut version = ApiVersionsRequest::VERSIONS.max;
        loop {
            let mut request = ApiVersionsRequest {
                client_software_name: "corelog".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
                ..ApiVersionsRequest::default()
            };
            request.truncate_to_version(version);
            let mut body = self.exchange(api, version, &request)?;
            // Every version of the answer starts with the error code.
            let code = body
                .peek()
                .first_chunk::<2>()
                .map(|b| i16::from_be_bytes(*b))
                .unwrap_or(0);
            if code == ErrorCode::UnsupportedVersion.code() && version > 0 {
                let fallback = self.decode::<ApiVersionsResponse>(&mut body, 0, api)?;
                let theirs = fallback
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == api.key())
                    .map_or(0, |k| k.max_version);
                let next = theirs.min(version - 1).max(0);
                version = next;
                continue;
            }
            let response = self.decode::<ApiVersionsResponse>(&mut body, version, api)?;
            if response.error_code != 0 {
                return Err(ClientError::kafka(
                    api,
                    response.error_code,
                    format!("the broker at {}", self.address),
                    None,
                ));
            }
            self.versions = response
                .api_keys
                .iter()
                .map(|k| {
                    (
                        k.api_key,
                        VersionRange {
                            min: k.min_version,
                            max: k.max_version,
                        },
                    )
                })
                .collect();
            return Ok(());
        }
    }

    /// The highest version of `R` both sides speak, at least `min`.
    fn version_of<R: Request>(&self, min: i16) -> Result<i16, ClientError> {
        let api = R::API_KEY;
        let Some(theirs) = self.versions.get(&api.key()).copied() else {
            return Err(ClientError::Unsupported {
                address: self.address.clone(),
                api,
                broker_versions: None,
            });
        };
        let ours = R::VERSIONS;
        let high = ours.max.min(theirs.max);
        let low = ours.min.max(theirs.min).max(min);
        if high < low {
            return Err(ClientError::Unsupported {
                address: self.address.clone(),
                api,
                broker_versions: Some(theirs),
            });
        }
        Ok(high)
    }

    fn serves(&self, api: ApiKey) -> bool {
        self.versions.contains_key(&api.key())
    }

    /// Sends one request and returns the answer's body, its header checked.
    fn exchange(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &impl crate::protocol::codec::Encodable,
    ) -> Result<Reader, ClientError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader {
            request_api_key: api.key(),
            request_api_version: version,
            correlation_id,
            client_id: Some(CLIENT_ID.into()),
            ..RequestHeader::default()
        };
        let frame = encode_request(&header, body).map_err(|e| ClientError::Protocol {
            address: self.address.clone(),
            api,
            reason: format!("cannot encode the request: {e}"),
        })?;
        let deadline = Instant::now() + self.timeout;
        self.stream
            .write_all(frame.bytes())
            .map_err(|e| self.io_error(api, e))?;
        let mut prefix = [0u8; 4];
        self.read_exact(&mut prefix, deadline, api)?;
        let size = i32::from_be_bytes(prefix);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| (4..=MAX_RESPONSE_BYTES).contains(s))
            .ok_or_else(|| {
                self.protocol_error(
                    api,
                    format!("a response frame of {size} bytes: is this a Kafka listener?"),
                )
            })?;
        let mut frame = vec![0u8; size];
        self.read_exact(&mut frame, deadline, api)?;
        let mut reader = Reader::new(Bytes::from(frame));
        let header = ResponseHeader::decode(&mut reader, api.response_header_version(version))
            .map_err(|e| self.protocol_error(api, e.to_string()))?;
        if header.correlation_id != correlation_id {
            return Err(self.protocol_error(
                api,
                format!(
                    "correlation id {} answers request {correlation_id}",
                    header.correlation_id
                ),
            ));
        }
        Ok(reader)
    }

    fn decode<T: Decodable>(
        &self,
        reader: &mut Reader,
        version: i16,
        api: ApiKey,
    ) -> Result<T, ClientError> {
        T::decode(reader, version).map_err(|e| self.protocol_error(api, e.to_string()))
    }

    fn read_exact(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        api: ApiKey,
    ) -> Result<(), ClientError> {
        let mut filled = 0;
        while filled < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout_error(api));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| self.io_error(api, e))?;
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(ClientError::Io {
                        address: self.address.clone(),
                        api,
                        reason: "the broker closed the connection".into(),
                    });
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(api, e)),
            }
        }
        Ok(())
    }

    fn io_error(&self, api: ApiKey, e: std::io::Error) -> ClientError {
        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            return self.timeout_error(api);
        }
        ClientError::Io {
            address: self.address.clone(),
            api,
            reason: e.to_string(),
        }
    }

    fn timeout_error(&self, api: ApiKey) -> ClientError {
        ClientError::Timeout {
            address: self.address.clone(),
            api,
            timeout_ms: self.timeout.as_millis() as u64,
        }
    }

    fn protocol_error(&self, api: ApiKey, reason: String) -> ClientError {
        ClientError::Protocol {
            address: self.address.clone(),
            api,
            reason,
        }
    }
}

/// The brokers of the cluster and its controller, from the last Metadata answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cluster {
    pub brokers: BTreeMap<i32, BrokerAddress>,
    /// -1 when the broker names none.
    pub controller_id: i32,
}

/// A partition's offset by ListOffsets, or the error its leader answered.
pub type OffsetResult = Result<i64, ErrorCode>;

/// The client: connections, cluster metadata and coordinators. See the module doc.
pub struct Client {
    config: ClientConfig,
    /// The bootstrap connection, and the node it turned out to be (when known).
    bootstrap: Option<Connection>,
    bootstrap_node: Option<i32>,
    nodes: BTreeMap<i32, Connection>,
    cluster: Option<Cluster>,
    coordinators: BTreeMap<String, i32>,
}

impl Client {
    /// Connects to the first bootstrap address that answers ApiVersions.
    pub fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let mut failures = Vec::new();
        for address in &config.bootstrap {
            match Connection::open(address, config.timeout) {
                Ok(connection) => {
                    return Ok(Client {
                        config,
                        bootstrap: Some(connection),
                        bootstrap_node: None,
                        nodes: BTreeMap::new(),
                        cluster: None,
                        coordinators: BTreeMap::new(),
                    });
                }
                Err(e) => failures.push(e),
            }
        }
        Err(match failures.len() {
            1 => failures.remove(0),
            _ => ClientError::Connect {
                address: config.bootstrap.join(","),
                reason: failures
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        })
    }

    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// The timeout as the `timeout_ms` field of an admin request.
    pub fn timeout_ms(&self) -> i32 {
        self.config.timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// Whether the broker `target` names serves `api` at all.
    pub fn serves(&mut self, target: Target, api: ApiKey) -> Result<bool, ClientError> {
        Ok(self.connection(target)?.serves(api))
    }

    /// Sends a request built for the highest version both sides speak and returns that
    /// version with the answer. `build` gets the version; fields the version does not
    /// carry are reset before encoding (`Truncate`), so a builder fills in the newest
    /// fields and only branches where an older version means something else.
    pub fn send<R: Request + Truncate>(
        &mut self,
        target: Target,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), ClientError> {
        self.send_min(target, R::VERSIONS.min, build)
    }

    /// As [`Client::send`], refusing versions below `min` (where older versions lack
    /// what the caller needs).
    pub fn send_min<R: Request + Truncate>(
        &mut self,
        target: Target,
        min: i16,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), ClientError> {
        let connection = self.connection(target)?;
        let version = connection.version_of::<R>(min)?;
        let mut request = build(version);
        request.truncate_to_version(version);
        let result = connection
            .exchange(R::API_KEY, version, &request)
            .and_then(|mut body| connection.decode::<R::Response>(&mut body, version, R::API_KEY));
        if result.is_err() {
            // Unknown state: the answer may still be on its way. Never reuse it.
            self.drop_connection(target);
        }
        result.map(|response| (version, response))
    }

    /// Runs `operation` again while it fails with a retriable error, a bounded number of
    /// times with a growing pause; forgets cached coordinators and metadata in between,
    /// since the usual cause is that they moved.
    pub fn retrying<T>(
        &mut self,
        mut operation: impl FnMut(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut backoff = FIRST_BACKOFF;
        let deadline = Instant::now() + self.config.timeout;
        let mut attempt = 1;
        loop {
            match operation(self) {
                Err(e)
                    if e.is_retriable() && attempt < MAX_ATTEMPTS && Instant::now() < deadline =>
                {
                    self.coordinators.clear();
                    self.cluster = None;
                    std::thread::sleep(
                        backoff.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Metadata for `topics` (`None`: every topic), never creating one. Refreshes what
    /// the client knows of the cluster.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse, ClientError> {
        let named = topics.map(|t| t.to_vec());
        // Before v4 a Metadata request naming a topic may create it: ask for every topic
        // there and keep the named ones.
        let (version, mut response) = self.send::<MetadataRequest>(Target::Any, |version| {
            let topics = if version < 4 && named.as_ref().is_some_and(|t| !t.is_empty()) {
                None
            } else {
                named.as_ref().map(|names| {
                    names
                        .iter()
                        .map(|name| MetadataRequestTopic {
                            name: Some(name.clone()),
                            ..MetadataRequestTopic::default()
                        })
                        .collect()
                })
            };
            MetadataRequest {
                topics,
                allow_auto_topic_creation: false,
                ..MetadataRequest::default()
            }
        })?;
        if version < 4
            && let Some(names) = topics.filter(|t| !t.is_empty())
        {
            response
                .topics
                .retain(|t| t.name.as_ref().is_some_and(|n| names.contains(n)));
        }
        self.learn(&response);
        Ok(response)
    }

    /// The cluster's brokers and controller (one Metadata call the first time).
    pub fn cluster(&mut self) -> Result<Cluster, ClientError> {
        if let Some(cluster) = &self.cluster {
            return Ok(cluster.clone());
        }
        self.metadata(Some(&[]))?;
        Ok(self.cluster.clone().unwrap_or_default())
    }

    fn learn(&mut self, response: &MetadataResponse) {
        let brokers: BTreeMap<i32, BrokerAddress> = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id,
                    BrokerAddress {
                        host: b.host.clone(),
                        port: b.port,
                    },
                )
            })
            .collect();
        if let Some(bootstrap) = &self.bootstrap {
            self.bootstrap_node = brokers
                .iter()
                .find(|(_, address)| address.to_string() == bootstrap.address)
                .map(|(id, _)| *id);
        }
        self.cluster = Some(Cluster {
            brokers,
            controller_id: response.controller_id,
        });
    }

    /// The node coordinating `group` (FindCoordinator, retried while the coordinator
    /// loads or moves), cached until a retry forgets it.
    pub fn coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        if let Some(node) = self.coordinators.get(group) {
            return Ok(*node);
        }
        let node = self.retrying(|client| client.find_coordinator(group))?;
        self.coordinators.insert(group.to_string(), node);
        Ok(node)
    }

    fn find_coordinator(&mut self, group: &str) -> Result<i32, ClientError> {
        let api = ApiKey::FindCoordinator;
        let subject = format!("group '{group}'");
        let (version, response) =
            self.send::<FindCoordinatorRequest>(Target::Any, |_| FindCoordinatorRequest {
                key: group.to_string(),
                key_type: 0,
                coordinator_keys: vec![group.to_string()],
                ..FindCoordinatorRequest::default()
            })?;
        let (node, host, port) = if version >= 4 {
            let Some(coordinator) = response.coordinators.iter().find(|c| c.key == group) else {
                return Err(ClientError::Protocol {
                    address: self.bootstrap_address(),
                    api,
                    reason: format!("no coordinator listed for group '{group}'"),
                });
            };
            if coordinator.error_code != 0 {
                return Err(ClientError::kafka(
                    api,
                    coordinator.error_code,
                    subject,
                    coordinator.error_message.clone(),
                ));
            }
            (
                coordinator.node_id,
                coordinator.host.clone(),
                coordinator.port,
            )
        } else {
            if response.error_code != 0 {
                return Err(ClientError::kafka(
                    api,
                    response.error_code,
                    subject,
                    response.error_message.clone(),
                ));
            }
            (response.node_id, response.host.clone(), response.port)
        };
        // The coordinator may be a broker the last Metadata did not list yet.
        let cluster = self.cluster.get_or_insert_with(Cluster::default);
        cluster
            .brokers
            .entry(node)
            .or_insert(BrokerAddress { host, port });
        Ok(node)
    }

    /// The offset of each partition for ListOffsets `timestamp` (`LATEST_TIMESTAMP`,
    /// `EARLIEST_TIMESTAMP` or milliseconds), asked of each partition's leader. A
    /// partition that cannot be asked (unknown topic, no leader) carries its error.
    pub fn list_offsets(
        &mut self,
        partitions: &[(String, i32)],
        timestamp: i64,
    ) -> Result<BTreeMap<(String, i32), OffsetResult>, ClientError> {
        let mut results = BTreeMap::new();
        let mut pending: Vec<(String, i32)> = partitions.to_vec();
        let mut attempt = 1;
        while !pending.is_empty() {
            let retry = self.list_offsets_once(&pending, timestamp, &mut results)?;
            let retriable: Vec<(String, i32)> = retry
                .into_iter()
                .filter(|tp| {
                    matches!(
                        results.get(tp),
                        Some(Err(
                            ErrorCode::LeaderNotAvailable | ErrorCode::NotLeaderOrFollower
                        ))
                    )
                })
                .collect();
            if retriable.is_empty() || attempt >= MAX_ATTEMPTS {
                break;
            }
            attempt += 1;
            self.cluster = None;
            std::thread::sleep(FIRST_BACKOFF * attempt);
            pending = retriable;
        }
        Ok(results)
    }

    /// One round of ListOffsets; returns the partitions that failed.
    fn list_offsets_once(
        &mut self,
        partitions: &[(String, i32)],
        timestamp: i64,
        results: &mut BTreeMap<(String, i32), OffsetResult>,
    ) -> Result<Vec<(String, i32)>, ClientError> {
        let mut topics: Vec<String> = partitions.iter().map(|(t, _)| t.clone()).collect();
        topics.sort();
        topics.dedup();
        let metadata = self.metadata(Some(&topics))?;
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        let mut failed = Vec::new();
        for (topic, partition) in partitions {
            let leader = metadata
                .topics
                .iter()
                .find(|t| t.name.as_deref() == Some(topic))
                .map(|t| {
                    if t.error_code != 0 {
                        return Err(ErrorCode::from_code(t.error_code));
                    }
                    t.partitions
                        .iter()
                        .find(|p| p.partition_index == *partition)
                        .map_or(Err(ErrorCode::UnknownTopicOrPartition), |p| {
                            if p.leader_id < 0 {
                                Err(ErrorCode::LeaderNotAvailable)
                            } else {
                                Ok(p.leader_id)
                            }
                        })
                })
                .unwrap_or(Err(ErrorCode::UnknownTopicOrPartition));
            match leader {
                Ok(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .entry(topic.clone())
                    .or_default()
                    .push(*partition),
                Err(code) => {
                    results.insert((topic.clone(), *partition), Err(code));
                    failed.push((topic.clone(), *partition));
                }
            }
        }
        let timeout_ms = self.timeout_ms();
        for (leader, topics) in by_leader {
            // v0 answers with a list of offsets: ask from v1 on.
            let (_, response) =
                self.send_min::<ListOffsetsRequest>(Target::Node(leader), 1, |_| {
                    ListOffsetsRequest {
                        replica_id: -1,
                        isolation_level: 0,
                        topics: topics
                            .iter()
                            .map(|(name, partitions)| ListOffsetsTopic {
                                name: name.clone(),
                                partitions: partitions
                                    .iter()
                                    .map(|p| ListOffsetsPartition {
                                        partition_index: *p,
                                        current_leader_epoch: -1,
                                        timestamp,
                                        max_num_offsets: 1,
                                        ..ListOffsetsPartition::default()
                                    })
                                    .collect(),
                                ..ListOffsetsTopic::default()
                            })
                            .collect(),
                        timeout_ms,
                        ..ListOffsetsRequest::default()
                    }
                })?;
            for topic in &response.topics {
                for p in &topic.partitions {
                    let key = (topic.name.clone(), p.partition_index);
                    if p.error_code == 0 {
                        results.insert(key, Ok(p.offset));
                    } else {
                        results.insert(key.clone(), Err(ErrorCode::from_code(p.error_code)));
                        failed.push(key);
                    }
                }
            }
        }
        Ok(failed)
    }

    fn bootstrap_address(&self) -> String {
        self.bootstrap
            .as_ref()
            .map_or_else(|| self.config.bootstrap.join(","), |c| c.address.clone())
    }

    /// The open connection to `target`, connecting first when needed.
    fn connection(&mut self, target: Target) -> Result<&mut Connection, ClientError> {
        let node = match target {
            Target::Any => None,
            Target::Node(id) => Some(id),
            Target::Controller => {
                let controller = self.cluster()?.controller_id;
                (controller >= 0).then_some(controller)
            }
        };
        let node = match node {
            Some(id) if Some(id) != self.bootstrap_node || self.bootstrap.is_none() => id,
            _ => return self.bootstrap_connection(),
        };
        if !self.nodes.contains_key(&node) {
            let cluster = self.cluster()?;
            let Some(address) = cluster.brokers.get(&node) else {
                return Err(ClientError::Cluster(format!(
                    "broker {node} is not in the cluster metadata (brokers: {:?})",
                    cluster.brokers.keys().collect::<Vec<_>>()
                )));
            };
            let connection = Connection::open(&address.to_string(), self.config.timeout)?;
            self.nodes.insert(node, connection);
        }
        Ok(self.nodes.get_mut(&node).expect("inserted above"))
    }

    fn bootstrap_connection(&mut self) -> Result<&mut Connection, ClientError> {
        if self.bootstrap.is_none() {
            let mut last = None;
            for address in &self.config.bootstrap {
                match Connection::open(address, self.config.timeout) {
                    Ok(connection) => {
                        self.bootstrap = Some(connection);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if self.bootstrap.is_none() {
                return Err(
                    last.unwrap_or_else(|| ClientError::Cluster("no bootstrap server".into()))
                );
            }
            self.bootstrap_node = None;
        }
        Ok(self.bootstrap.as_mut().expect("connected above"))
    }

    fn drop_connection(&mut self, target: Target) {
        match target {
            Target::Node(id) if self.nodes.remove(&id).is_some() => {}
            Target::Controller => {
                let controller = self.cluster.as_ref().map(|c| c.controller_id);
                if let Some(id) = controller
                    && self.nodes.remove(&id).is_some()
                {
                    return;
                }
                self.bootstrap = None;
            }
            _ => self.bootstrap = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_servers_are_host_port_lists() {
        let config = ClientConfig::parse("a:1, b:2", 500).unwrap();
        assert_eq!(config.bootstrap, vec!["a:1", "b:2"]);
        assert_eq!(config.timeout, Duration::from_millis(500));
        assert!(
            ClientConfig::parse("a", 500)
                .unwrap_err()
                .contains("'a' is not host:port")
        );
        assert!(ClientConfig::parse("a:x", 500).is_err());
        assert!(ClientConfig::parse(",", 500).is_err());
        assert!(ClientConfig::parse("a:1", 0).is_err());
    }

    #[test]
    fn errors_name_the_api_and_the_broker() {
        let unsupported = ClientError::Unsupported {
            address: "h:1".into(),
            api: ApiKey::IncrementalAlterConfigs,
            broker_versions: None,
        };
        assert_eq!(
            unsupported.to_string(),
            "the broker at h:1 does not serve IncrementalAlterConfigs (API key 44)"
        );
        let kafka = ClientError::kafka(ApiKey::DeleteGroups, 68, "group 'g'", Some(String::new()));
        assert_eq!(
            kafka.to_string(),
            "DeleteGroups failed for group 'g': NON_EMPTY_GROUP (68)"
        );
        assert!(!kafka.is_retriable());
        assert!(ClientError::kafka(ApiKey::OffsetFetch, 16, "g", None).is_retriable());
        assert!(ClientError::kafka(ApiKey::OffsetFetch, 14, "g", None).is_retriable());
        assert!(ClientError::kafka(ApiKey::ListOffsets, 5, "t", None).is_retriable());
    }

    #[test]
    fn a_silent_broker_is_a_timeout_naming_api_versions() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let config = ClientConfig::parse(&address, 200).unwrap();
        let err = Client::connect(config).err().expect("no answer");
        assert_eq!(
            err,
            ClientError::Timeout {
                address,
                api: ApiKey::ApiVersions,
                timeout_ms: 200
            }
        );
        drop(listener);
    }
}
