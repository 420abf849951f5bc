//! `corelog group ...`: list, describe and delete consumer groups and reset their
//! committed offsets, as kafka-consumer-groups.sh does, over the wire only.
//!
//! - list: ListGroups asked of every broker (each lists the groups it coordinates).
//! - describe: the group's coordinator (FindCoordinator), then ConsumerGroupDescribe
//!   when the broker serves it (KIP-848 groups) and DescribeGroups otherwise or for a
//!   classic group, whose members' assignments are decoded from the consumer protocol;
//!   OffsetFetch for the committed offsets; ListOffsets (latest) on each partition's
//!   leader for the log end offsets.
//! - delete: DeleteGroups (an active group is NON_EMPTY_GROUP, explained).
//! - reset-offsets: a plan (new offset per partition) computed by [`new_offset`] from
//!   the committed, earliest, latest and by-timestamp offsets; printed (dry run) or, with
//!   `--execute`, committed by OffsetCommit as an admin commit (generation -1, no
//!   member), only while the group is inactive, as Kafka's tool requires.

use super::client::{Client, ClientError, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, Target};
use super::output::{Report, Table, emit, or_dash};
use super::{CliError, ConnectArgs};
use crate::protocol::ErrorCode;
use crate::protocol::codec::{Decodable, Message};
use crate::protocol::generated::ApiKey;
use crate::protocol::generated::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use crate::protocol::generated::data::consumer_protocol_assignment::ConsumerProtocolAssignment;
use crate::protocol::generated::delete_groups_request::DeleteGroupsRequest;
use crate::protocol::generated::describe_groups_request::DescribeGroupsRequest;
use crate::protocol::generated::list_groups_request::ListGroupsRequest;
use crate::protocol::generated::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::generated::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup,
};
use crate::protocol::wire::Reader;
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The consumer protocol's `protocol_type`: members whose assignments we can read.
const CONSUMER_PROTOCOL: &str = "consumer";

#[derive(Debug, clap::Args)]
pub struct GroupCommand {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub action: GroupAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum GroupAction {
    /// List groups with their type, protocol type and state.
    List,
    /// Committed offsets, log end offsets, lag and owner of every partition of a group.
    Describe(GroupArgs),
    /// Delete an inactive group and its committed offsets.
    Delete(GroupArgs),
    /// Move an inactive group's committed offsets (a dry run without --execute).
    ResetOffsets(ResetArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct GroupArgs {
    #[arg(long, value_name = "GROUP")]
    pub group: String,
}

/// A `--topic` of reset-offsets: a topic, or some of its partitions (`t:0,2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSelection {
    pub topic: String,
    /// None: every partition of the topic.
    pub partitions: Option<Vec<i32>>,
}

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
#[command(group(clap::ArgGroup::new("scenario").required(true)
    .args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"])))]
pub struct ResetArgs {
    #[arg(long, value_name = "GROUP")]
    pub group: String,
    /// A topic, or some of its partitions: T or T:0,1 (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,P]", value_parser = parse_topic_selection)]
    pub topics: Vec<TopicSelection>,
    /// Every topic the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    /// To the log start offset.
    #[arg(long)]
    pub to_earliest: bool,
    /// To the log end offset.
    #[arg(long)]
    pub to_latest: bool,
    /// To this offset (brought within the log's offsets).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub to_offset: Option<i64>,
    /// By this many offsets from the committed one (negative: back).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// To the first offset at or after this time: YYYY-MM-DDTHH:mm:SS.sss, local time
    /// unless it ends with Z or an offset like +02:00.
    #[arg(long, value_name = "DATETIME", value_parser = parse_datetime)]
    pub to_datetime: Option<i64>,
    /// Commit the new offsets (otherwise only print them).
    #[arg(long)]
    pub execute: bool,
    /// Only print the new offsets (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
}

impl ResetArgs {
    pub fn reset_to(&self) -> ResetTo {
        if self.to_earliest {
            ResetTo::Earliest
        } else if self.to_latest {
            ResetTo::Latest
        } else if let Some(offset) = self.to_offset {
            ResetTo::Offset(offset)
        } else if let Some(delta) = self.shift_by {
            ResetTo::ShiftBy(delta)
        } else if let Some(timestamp) = self.to_datetime {
            ResetTo::Datetime(timestamp)
        } else {
            unreachable!("clap requires one scenario (ArgGroup 'scenario')")
        }
    }
}

pub fn run(command: GroupCommand) -> Result<(), CliError> {
    let format = command.connect.format;
    let mut client = command.connect.client()?;
    match command.action {
        GroupAction::List => emit(format, &list(&mut client)?),
        GroupAction::Describe(args) => emit(format, &describe(&mut client, &args.group)?),
        GroupAction::Delete(args) => emit(format, &delete(&mut client, &args.group)?),
        GroupAction::ResetOffsets(args) => emit(format, &reset_offsets(&mut client, &args)?),
    }
    Ok(())
}

/// `T` or `T:0,1`. Kafka's topic names cannot hold ':'.
pub fn parse_topic_selection(text: &str) -> Result<TopicSelection, String> {
    let (topic, partitions) = match text.split_once(':') {
        None => (text, None),
        Some((topic, list)) => {
            let partitions = list
                .split(',')
                .map(|p| {
                    p.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|p| *p >= 0)
                        .ok_or_else(|| format!("'{text}': '{p}' is not a partition number"))
                })
                .collect::<Result<Vec<i32>, String>>()?;
            (topic, Some(partitions))
        }
    };
    if topic.is_empty() {
        return Err(format!("'{text}' names no topic"));
    }
    Ok(TopicSelection {
        topic: topic.to_string(),
        partitions,
    })
}

/// Milliseconds since the Unix epoch of `YYYY-MM-DDTHH:mm:SS[.fraction][Z|±HH:MM]`, as
/// kafka-consumer-groups.sh's `--to-datetime` takes it; without a zone, local time.
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    let bad =
        |why: &str| format!("'{text}' is not a date-time like 2024-01-01T00:00:00.000 ({why})");
    let (date, rest) = text.split_once('T').ok_or_else(|| bad("no 'T'"))?;
    let date: Vec<&str> = date.split('-').collect();
    let [year, month, day] = date[..] else {
        return Err(bad("the date is not YYYY-MM-DD"));
    };
    // The zone: Z, +HH:MM, -HH:MM, +HHMM or none (local time).
    let (time, zone_seconds) = if let Some(time) = rest.strip_suffix('Z') {
        (time, Some(0))
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let (time, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("the zone is not Z or ±HH:MM"));
        }
        let hours: i64 = digits[..2].parse().map_err(|_| bad("zone hours"))?;
        let minutes: i64 = digits[2..].parse().map_err(|_| bad("zone minutes"))?;
        (time, Some(sign * (hours * 3600 + minutes * 60)))
    } else {
        (rest, None)
    };
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, fraction)) => (hms, fraction),
        None => (time, ""),
    };
    if !fraction.chars().all(|c| c.is_ascii_digit()) || fraction.len() > 9 {
        return Err(bad("the fraction of a second is not digits"));
    }
    let millis: i64 = format!("{fraction:0<3}")[..3]
        .parse()
        .map_err(|_| bad("milliseconds"))?;
    let hms: Vec<&str> = hms.split(':').collect();
    let [hour, minute, second] = hms[..] else {
        return Err(bad("the time is not HH:mm:SS"));
    };
    let number = |field: &str, name: &str, range: std::ops::RangeInclusive<i64>| {
        field
            .parse::<i64>()
            .ok()
            .filter(|v| range.contains(v) && field.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| bad(name))
    };
    let year = number(year, "year", 1970..=9999)?;
    let month = number(month, "month", 1..=12)?;
    let day = number(day, "day", 1..=days_in_month(year, month))?;
    let hour = number(hour, "hour", 0..=23)?;
    let minute = number(minute, "minute", 0..=59)?;
    let second = number(second, "second", 0..=59)?;
    let seconds = match zone_seconds {
        Some(offset) => {
            days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        }
        None => local_seconds(year, month, day, hour, minute, second)
            .ok_or_else(|| bad("local time"))?,
    };
    Ok(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the epoch of a local wall-clock time (the process's time zone).
fn local_seconds(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<i64> {
    // SAFETY: tm is plain data; all-zero is a valid value that the fields below complete.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = (year - 1900) as i32;
    tm.tm_mon = (month - 1) as i32;
    tm.tm_mday = day as i32;
    tm.tm_hour = hour as i32;
    tm.tm_min = minute as i32;
    tm.tm_sec = second as i32;
    tm.tm_isdst = -1;
    // SAFETY: mktime reads and normalises the tm we own; this command is single-threaded.
    let seconds = unsafe { libc::mktime(&mut tm) };
    (seconds != -1).then_some(seconds)
}

/// A group as `group list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedGroup {
    pub group: String,
    /// `classic` or `consumer` (KIP-848); None when the broker does not say (ListGroups
    /// before v5).
    pub group_type: Option<String>,
    /// `consumer` for consumer groups, empty for groups of other clients.
    pub protocol_type: String,
    /// None when the broker does not say (ListGroups before v4).
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupList {
    pub groups: Vec<ListedGroup>,
}

impl Report for GroupList {
    fn human(&self) -> String {
        let mut table = Table::new(&["GROUP", "TYPE", "PROTOCOL-TYPE", "STATE"]);
        for g in &self.groups {
            table.row(vec![
                g.group.clone(),
                or_dash(g.group_type.clone()),
                if g.protocol_type.is_empty() {
                    "-".to_string()
                } else {
                    g.protocol_type.clone()
                },
                or_dash(g.state.clone()),
            ]);
        }
        table.render()
    }
}

pub fn list(client: &mut Client) -> Result<GroupList, CliError> {
    let cluster = client.retrying(|client| client.cluster())?;
    let mut groups = BTreeMap::new();
    for node in cluster.brokers.keys() {
        let (version, response) = client.retrying(|client| {
            let (version, response) = client
                .send::<ListGroupsRequest>(Target::Node(*node), |_| ListGroupsRequest::default())?;
            if response.error_code != 0 {
                return Err(ClientError::kafka(
                    ApiKey::ListGroups,
                    response.error_code,
                    format!("broker {node}"),
                    None,
                ));
            }
            Ok((version, response))
        })?;
        for g in response.groups {
            groups.insert(
                g.group_id.clone(),
                ListedGroup {
                    group: g.group_id,
                    group_type: (version >= 5).then_some(g.group_type),
                    protocol_type: g.protocol_type,
                    state: (version >= 4).then_some(g.group_state),
                },
            );
        }
    }
    Ok(GroupList {
        groups: groups.into_values().collect(),
    })
}

/// A member of a group, with the partitions assigned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<(String, i32)>,
}

/// A group's state and members, from ConsumerGroupDescribe or DescribeGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// `consumer` (KIP-848, ConsumerGroupDescribe) or `classic` (DescribeGroups).
    pub group_type: &'static str,
    /// Kafka's state name: Empty, Stable, PreparingRebalance, ..., Dead (no such group).
    pub state: String,
    pub coordinator: i32,
    pub members: Vec<GroupMember>,
    /// Members whose assignment could not be decoded.
    pub notes: Vec<String>,
}

impl GroupState {
    fn is_inactive(&self) -> bool {
        matches!(self.state.as_str(), "Empty" | "Dead")
    }

    fn is_rebalancing(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling"
        )
    }
}

/// The partitions of a consumer-protocol assignment: a 2-byte version, then
/// ConsumerProtocolAssignment at that version (newer versions only add fields, so they
/// are read as the newest this codec knows, as Kafka's clients do).
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<(String, i32)>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = Reader::new(bytes.clone());
    let version = reader.i16().map_err(|e| e.to_string())?;
    if version < 0 {
        return Err(format!("assignment version {version}"));
    }
    let version = version.min(<ConsumerProtocolAssignment as Message>::VERSIONS.max);
    let assignment =
        ConsumerProtocolAssignment::decode(&mut reader, version).map_err(|e| e.to_string())?;
    Ok(assignment
        .assigned_partitions
        .into_iter()
        .flat_map(|tp| {
            let topic = tp.topic;
            tp.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect())
}

/// The state and members of `group`, asked of its coordinator.
pub fn group_state(client: &mut Client, group: &str) -> Result<GroupState, CliError> {
    Ok(client.retrying(|client| {
        let coordinator = client.coordinator(group)?;
        let target = Target::Node(coordinator);
        let subject = format!("group '{group}'");
        if client.serves(target, ApiKey::ConsumerGroupDescribe)? {
            let (_, response) = client.send::<ConsumerGroupDescribeRequest>(target, |_| {
                ConsumerGroupDescribeRequest {
                    group_ids: vec![group.to_string()],
                    include_authorized_operations: false,
                    ..ConsumerGroupDescribeRequest::default()
                }
            })?;
            let described = response.groups.into_iter().find(|g| g.group_id == group);
            match described {
                Some(g) if g.error_code == 0 => {
                    return Ok(GroupState {
                        group_type: "consumer",
                        state: g.group_state,
                        coordinator,
                        members: g
                            .members
                            .into_iter()
                            .map(|m| GroupMember {
                                member_id: m.member_id,
                                client_id: m.client_id,
                                host: m.client_host,
                                assignment: m
                                    .assignment
                                    .topic_partitions
                                    .into_iter()
                                    .flat_map(|tp| {
                                        let topic = tp.topic_name;
                                        tp.partitions.into_iter().map(move |p| (topic.clone(), p))
                                    })
                                    .collect(),
                            })
                            .collect(),
                        notes: Vec::new(),
                    });
                }
                // Not a KIP-848 group (a classic one, or none): DescribeGroups says.
                Some(g) if g.error_code == ErrorCode::GroupIdNotFound.code() => {}
                Some(g) => {
                    return Err(ClientError::kafka(
                        ApiKey::ConsumerGroupDescribe,
                        g.error_code,
                        subject,
                        g.error_message,
                    ));
                }
                None => {}
            }
        }
        let (_, response) =
            client.send::<DescribeGroupsRequest>(target, |_| DescribeGroupsRequest {
                groups: vec![group.to_string()],
                include_authorized_operations: false,
                ..DescribeGroupsRequest::default()
            })?;
        let Some(g) = response.groups.into_iter().find(|g| g.group_id == group) else {
            return Err(ClientError::Cluster(format!(
                "DescribeGroups answered without {subject}"
            )));
        };
        if g.error_code != 0 {
            return Err(ClientError::kafka(
                ApiKey::DescribeGroups,
                g.error_code,
                subject,
                None,
            ));
        }
        let mut notes = Vec::new();
        let members = g
            .members
            .into_iter()
            .map(|m| {
                let assignment = if g.protocol_type == CONSUMER_PROTOCOL {
                    decode_assignment(&m.member_assignment).unwrap_or_else(|e| {
                        notes.push(format!(
                            "Note: the assignment of member {} does not decode: {e}",
                            m.member_id
                        ));
                        Vec::new()
                    })
                } else {
                    Vec::new()
                };
                GroupMember {
                    member_id: m.member_id,
                    client_id: m.client_id,
                    host: m.client_host,
                    assignment,
                }
            })
            .collect();
        Ok(GroupState {
            group_type: "classic",
            state: g.group_state,
            coordinator,
            members,
            notes,
        })
    })?)
}

/// The committed offset of every partition `group` has one for (OffsetFetch of all).
pub fn committed_offsets(
    client: &mut Client,
    group: &str,
) -> Result<BTreeMap<(String, i32), i64>, CliError> {
    let api = ApiKey::OffsetFetch;
    let subject = format!("group '{group}'");
    Ok(client.retrying(|client| {
        let coordinator = client.coordinator(group)?;
        // v1 cannot ask for every topic (null topics): from v2 on.
        let (version, response) =
            client.send_min::<OffsetFetchRequest>(Target::Node(coordinator), 2, |_| {
                OffsetFetchRequest {
                    group_id: group.to_string(),
                    topics: None,
                    groups: vec![OffsetFetchRequestGroup {
                        group_id: group.to_string(),
                        member_id: None,
                        member_epoch: -1,
                        topics: None,
                        ..OffsetFetchRequestGroup::default()
                    }],
                    require_stable: false,
                    ..OffsetFetchRequest::default()
                }
            })?;
        let mut out = BTreeMap::new();
        let mut take = |topic: &str, partition: i32, offset: i64, code: i16| {
            if code != 0 {
                return Err(ClientError::kafka(
                    api,
                    code,
                    format!("{subject}, partition {topic}-{partition}"),
                    None,
                ));
            }
            if offset >= 0 {
                out.insert((topic.to_string(), partition), offset);
            }
            Ok(())
        };
        // v8 batches groups; before, the group is the request's.
        if version >= 8 {
            let Some(g) = response.groups.iter().find(|g| g.group_id == group) else {
                return Err(ClientError::Cluster(format!(
                    "OffsetFetch answered without {subject}"
                )));
            };
            if g.error_code != 0 {
                return Err(ClientError::kafka(api, g.error_code, subject.clone(), None));
            }
            for t in &g.topics {
                for p in &t.partitions {
                    take(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                }
            }
        } else {
            if response.error_code != 0 {
                return Err(ClientError::kafka(
                    api,
                    response.error_code,
                    subject.clone(),
                    None,
                ));
            }
            for t in &response.topics {
                for p in &t.partitions {
                    take(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                }
            }
        }
        Ok(out)
    })?)
}

/// One partition of `group describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
    pub consumer_id: Option<String>,
    pub host: Option<String>,
    pub client_id: Option<String>,
}

/// `group describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    pub group: String,
    pub group_type: String,
    pub state: String,
    pub coordinator: i32,
    pub members: usize,
    pub partitions: Vec<PartitionLag>,
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl Report for GroupDescription {
    fn human(&self) -> String {
        let mut table = Table::new(&[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ]);
        for p in &self.partitions {
            table.row(vec![
                self.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                or_dash(p.current_offset),
                or_dash(p.log_end_offset),
                or_dash(p.lag),
                or_dash(p.consumer_id.clone()),
                or_dash(p.host.clone()),
                or_dash(p.client_id.clone()),
            ]);
        }
        table.render()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

pub fn describe(client: &mut Client, group: &str) -> Result<GroupDescription, CliError> {
    let state = group_state(client, group)?;
    if state.state == "Dead" {
        return Err(CliError::Failed(format!(
            "consumer group '{group}' does not exist"
        )));
    }
    let committed = committed_offsets(client, group)?;
    let mut owners: BTreeMap<(String, i32), &GroupMember> = BTreeMap::new();
    for member in &state.members {
        for tp in &member.assignment {
            owners.insert(tp.clone(), member);
        }
    }
    let partitions: BTreeSet<(String, i32)> =
        owners.keys().chain(committed.keys()).cloned().collect();
    let partitions: Vec<(String, i32)> = partitions.into_iter().collect();
    let log_end = if partitions.is_empty() {
        BTreeMap::new()
    } else {
        client.list_offsets(&partitions, LATEST_TIMESTAMP)?
    };
    let mut notes = state.notes.clone();
    if state.members.is_empty() {
        notes.push(format!("Consumer group '{group}' has no active members."));
    }
    if state.is_rebalancing() {
        notes.push(format!("Warning: Consumer group '{group}' is rebalancing."));
    }
    let rows = partitions
        .into_iter()
        .map(|tp| {
            let current = committed.get(&tp).copied();
            let end = log_end.get(&tp).and_then(|r| r.ok());
            let owner = owners.get(&tp);
            PartitionLag {
                current_offset: current,
                log_end_offset: end,
                lag: current.zip(end).map(|(c, e)| e - c),
                consumer_id: owner.map(|m| m.member_id.clone()),
                host: owner.map(|m| m.host.clone()),
                client_id: owner.map(|m| m.client_id.clone()),
                topic: tp.0,
                partition: tp.1,
            }
        })
        .collect();
    Ok(GroupDescription {
        group: group.to_string(),
        group_type: state.group_type.to_string(),
        members: state.members.len(),
        state: state.state,
        coordinator: state.coordinator,
        partitions: rows,
        notes,
    })
}

/// `group delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDeleted {
    pub group: String,
    pub deleted: bool,
}

impl Report for GroupDeleted {
    fn human(&self) -> String {
        format!(
            "Deletion of requested consumer groups ('{}') was successful.\n",
            self.group
        )
    }
}

pub fn delete(client: &mut Client, group: &str) -> Result<GroupDeleted, CliError> {
    let result = client.retrying(|client| {
        let coordinator = client.coordinator(group)?;
        let (_, response) =
            client.send::<DeleteGroupsRequest>(Target::Node(coordinator), |_| {
                DeleteGroupsRequest {
                    groups_names: vec![group.to_string()],
                    ..DeleteGroupsRequest::default()
                }
            })?;
        match response.results.iter().find(|r| r.group_id == group) {
            Some(r) if r.error_code != 0 => Err(ClientError::kafka(
                ApiKey::DeleteGroups,
                r.error_code,
                format!("group '{group}'"),
                None,
            )),
            Some(_) => Ok(()),
            None => Err(ClientError::Cluster(format!(
                "DeleteGroups answered without group '{group}'"
            ))),
        }
    });
    match result {
        Ok(()) => Ok(GroupDeleted {
            group: group.to_string(),
            deleted: true,
        }),
        Err(e) => Err(match e.code() {
            Some(ErrorCode::NonEmptyGroup) => CliError::Failed(format!(
                "consumer group '{group}' is not empty (NON_EMPTY_GROUP): it still has active \
                 members; stop its consumers (or wait for their sessions to time out) and try again"
            )),
            Some(ErrorCode::GroupIdNotFound) => CliError::Failed(format!(
                "consumer group '{group}' does not exist (GROUP_ID_NOT_FOUND)"
            )),
            _ => e.into(),
        }),
    }
}

/// Where reset-offsets moves each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    ShiftBy(i64),
    /// Milliseconds since the epoch.
    Datetime(i64),
}

/// What the plan of one partition is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub log_start: i64,
    pub log_end: i64,
    pub committed: Option<i64>,
    /// The first offset at or after the `--to-datetime` timestamp (None: no record that
    /// late).
    pub at_timestamp: Option<i64>,
}

/// The new offset of one partition, as kafka-consumer-groups.sh computes it: offsets
/// given or shifted are brought within [log start, log end]; a time after the last
/// record means the log end; shifting needs a committed offset.
pub fn new_offset(to: ResetTo, at: PartitionOffsets) -> Result<i64, String> {
    let within = |offset: i64| offset.clamp(at.log_start, at.log_end.max(at.log_start));
    match to {
        ResetTo::Earliest => Ok(at.log_start),
        ResetTo::Latest => Ok(at.log_end),
        ResetTo::Offset(offset) => Ok(within(offset)),
        ResetTo::ShiftBy(delta) => at
            .committed
            .map(|c| within(c.saturating_add(delta)))
            .ok_or_else(|| "it has no committed offset to shift from".to_string()),
        ResetTo::Datetime(_) => Ok(at.at_timestamp.map_or(at.log_end, within)),
    }
}

/// One partition of the reset plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedOffset {
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub new_offset: i64,
}

/// `group reset-offsets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetPlan {
    pub group: String,
    /// False for a dry run.
    pub executed: bool,
    pub partitions: Vec<PlannedOffset>,
}

impl Report for ResetPlan {
    fn human(&self) -> String {
        let mut table = Table::new(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
        for p in &self.partitions {
            table.row(vec![
                self.group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                p.new_offset.to_string(),
            ]);
        }
        table.render()
    }

    fn notes(&self) -> Vec<String> {
        if self.executed {
            Vec::new()
        } else {
            vec!["Dry run: nothing was committed; add --execute to commit these offsets.".into()]
        }
    }
}

fn inactive_only(group: &str, state: &str) -> CliError {
    CliError::Failed(format!(
        "Assignments can only be reset if the group '{group}' is inactive, but the current \
         state is {state}."
    ))
}

pub fn reset_offsets(client: &mut Client, args: &ResetArgs) -> Result<ResetPlan, CliError> {
    let group = args.group.as_str();
    let to = args.reset_to();
    let state = group_state(client, group)?;
    if !state.is_inactive() {
        return Err(inactive_only(group, &state.state));
    }
    let committed = committed_offsets(client, group)?;
    let partitions = reset_scope(client, args, &committed)?;
    if partitions.is_empty() {
        return Err(CliError::Failed(format!(
            "no partitions to reset: group '{group}' has no committed offsets"
        )));
    }
    let offsets_of = |client: &mut Client, timestamp: i64| {
        let found = client.list_offsets(&partitions, timestamp)?;
        partitions
            .iter()
            .map(|tp| match found.get(tp) {
                Some(Ok(offset)) => Ok((tp.clone(), *offset)),
                Some(Err(code)) => Err(CliError::Failed(format!(
                    "cannot read the offsets of {}-{}: {code}",
                    tp.0, tp.1
                ))),
                None => Err(CliError::Failed(format!(
                    "no offsets for {}-{} from its leader",
                    tp.0, tp.1
                ))),
            })
            .collect::<Result<BTreeMap<(String, i32), i64>, CliError>>()
    };
    let log_start = offsets_of(client, EARLIEST_TIMESTAMP)?;
    let log_end = offsets_of(client, LATEST_TIMESTAMP)?;
    let at_timestamp = match to {
        ResetTo::Datetime(timestamp) => Some(offsets_of(client, timestamp)?),
        _ => None,
    };
    let mut planned = Vec::new();
    for tp in &partitions {
        let at = PartitionOffsets {
            log_start: log_start[tp],
            log_end: log_end[tp],
            committed: committed.get(tp).copied(),
            at_timestamp: at_timestamp
                .as_ref()
                .and_then(|found| found.get(tp).copied())
                .filter(|offset| *offset >= 0),
        };
        let new = new_offset(to, at).map_err(|why| {
            CliError::Failed(format!("cannot reset partition {}-{}: {why}", tp.0, tp.1))
        })?;
        planned.push(PlannedOffset {
            topic: tp.0.clone(),
            partition: tp.1,
            current_offset: at.committed,
            new_offset: new,
        });
    }
    if args.execute {
        commit(client, group, &planned)?;
    }
    Ok(ResetPlan {
        group: group.to_string(),
        executed: args.execute,
        partitions: planned,
    })
}

/// The partitions `--topic`/`--all-topics` name, sorted.
fn reset_scope(
    client: &mut Client,
    args: &ResetArgs,
    committed: &BTreeMap<(String, i32), i64>,
) -> Result<Vec<(String, i32)>, CliError> {
    if args.all_topics {
        return Ok(committed.keys().cloned().collect());
    }
    let names: Vec<String> = args.topics.iter().map(|s| s.topic.clone()).collect();
    let metadata = client.retrying(|client| client.metadata(Some(&names)))?;
    let mut out = BTreeSet::new();
    for selection in &args.topics {
        let topic = metadata
            .topics
            .iter()
            .find(|t| t.name.as_ref() == Some(&selection.topic) && t.error_code == 0)
            .ok_or_else(|| {
                CliError::Failed(format!("topic '{}' does not exist", selection.topic))
            })?;
        let existing: BTreeSet<i32> = topic.partitions.iter().map(|p| p.partition_index).collect();
        match &selection.partitions {
            None => out.extend(existing.iter().map(|p| (selection.topic.clone(), *p))),
            Some(wanted) => {
                for p in wanted {
                    if !existing.contains(p) {
                        return Err(CliError::Failed(format!(
                            "topic '{}' has no partition {p} (it has {})",
                            selection.topic,
                            existing.len()
                        )));
                    }
                    out.insert((selection.topic.clone(), *p));
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Commits the plan as an admin commit: generation -1 and no member, which a broker
/// accepts only while the group has no members.
fn commit(client: &mut Client, group: &str, planned: &[PlannedOffset]) -> Result<(), CliError> {
    let mut by_topic: BTreeMap<&str, Vec<&PlannedOffset>> = BTreeMap::new();
    for p in planned {
        by_topic.entry(p.topic.as_str()).or_default().push(p);
    }
    let subject = format!("group '{group}'");
    let result = client.retrying(|client| {
        let coordinator = client.coordinator(group)?;
        let (_, response) =
            client.send::<OffsetCommitRequest>(Target::Node(coordinator), |_| {
                OffsetCommitRequest {
                    group_id: group.to_string(),
                    generation_id_or_member_epoch: -1,
                    member_id: String::new(),
                    group_instance_id: None,
                    retention_time_ms: -1,
                    topics: by_topic
                        .iter()
                        .map(|(topic, partitions)| OffsetCommitRequestTopic {
                            name: topic.to_string(),
                            partitions: partitions
                                .iter()
                                .map(|p| OffsetCommitRequestPartition {
                                    partition_index: p.partition,
                                    committed_offset: p.new_offset,
                                    committed_leader_epoch: -1,
                                    commit_timestamp: -1,
                                    committed_metadata: Some(String::new()),
                                    ..OffsetCommitRequestPartition::default()
                                })
                                .collect(),
                            ..OffsetCommitRequestTopic::default()
                        })
                        .collect(),
                    ..OffsetCommitRequest::default()
                }
            })?;
        for t in &response.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(ClientError::kafka(
                        ApiKey::OffsetCommit,
                        p.error_code,
                        format!("{subject}, partition {}-{}", t.name, p.partition_index),
                        None,
                    ));
                }
            }
        }
        Ok(())
    });
    result.map_err(|e| match e.code() {
        // The group got members meanwhile: the broker refuses an admin commit.
        Some(
            code @ (ErrorCode::UnknownMemberId
            | ErrorCode::IllegalGeneration
            | ErrorCode::RebalanceInProgress
            | ErrorCode::StaleMemberEpoch),
        ) => CliError::Failed(format!(
            "Assignments can only be reset if the group '{group}' is inactive: the broker \
             refused the commit with {code}, so the group has active members"
        )),
        _ => e.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{AdminCommand, Cli, Command};
    use crate::protocol::codec::{Encodable, Encoder};
    use crate::protocol::generated::data::consumer_protocol_assignment::TopicPartition;
    use clap::Parser;

    fn group(argv: &[&str]) -> Result<GroupAction, clap::Error> {
        let mut full = vec!["corelog", "group"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full)?.command {
            Command::Admin(AdminCommand::Group(command)) => Ok(command.action),
            other => panic!("not a group command: {other:?}"),
        }
    }

    fn reset(argv: &[&str]) -> Result<ResetArgs, clap::Error> {
        let mut full = vec!["reset-offsets", "--group", "g"];
        full.extend_from_slice(argv);
        match group(&full)? {
            GroupAction::ResetOffsets(args) => Ok(args),
            other => panic!("not reset-offsets: {other:?}"),
        }
    }

    #[test]
    fn reset_offsets_takes_one_scope_and_one_scenario() {
        let args = reset(&["--topic", "a", "--topic", "b:0,2", "--shift-by", "-3"]).unwrap();
        assert_eq!(
            args.topics,
            vec![
                TopicSelection {
                    topic: "a".into(),
                    partitions: None
                },
                TopicSelection {
                    topic: "b".into(),
                    partitions: Some(vec![0, 2])
                },
            ]
        );
        assert_eq!(args.reset_to(), ResetTo::ShiftBy(-3));
        assert!(!args.execute);
        let args = reset(&["--all-topics", "--to-earliest", "--execute"]).unwrap();
        assert!(args.all_topics && args.execute);
        assert_eq!(args.reset_to(), ResetTo::Earliest);
        assert_eq!(
            reset(&["--all-topics", "--to-datetime", "2024-01-01T00:00:00.000Z"])
                .unwrap()
                .reset_to(),
            ResetTo::Datetime(1_704_067_200_000)
        );
        for bad in [
            &["--to-earliest"][..],
            &["--all-topics"][..],
            &["--all-topics", "--topic", "a", "--to-latest"][..],
            &["--all-topics", "--to-latest", "--to-earliest"][..],
            &["--all-topics", "--to-latest", "--execute", "--dry-run"][..],
            &["--topic", "a:x", "--to-latest"][..],
            &["--topic", ":1", "--to-latest"][..],
            &["--all-topics", "--to-datetime", "yesterday"][..],
        ] {
            let err = reset(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn group_commands_need_a_group() {
        assert!(matches!(group(&["list"]).unwrap(), GroupAction::List));
        assert_eq!(group(&["describe"]).unwrap_err().exit_code(), 2);
        assert_eq!(group(&["delete"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn datetimes_with_zones_are_exact() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000Z"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.5Z"), Ok(1_500));
        assert_eq!(
            parse_datetime("2024-02-29T12:30:45.123+02:00"),
            Ok(1_709_202_645_123)
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:30:45.123-0130"),
            Ok(1_709_215_245_123)
        );
        for bad in [
            "2024-02-30T00:00:00.000Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.abcZ",
            "2024-01-01T00:00:00+2",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_datetimes_differ_from_utc_by_at_most_a_day() {
        let utc = parse_datetime("2024-06-01T12:00:00.000Z").unwrap();
        let local = parse_datetime("2024-06-01T12:00:00.000").unwrap();
        assert!((utc - local).abs() <= 26 * 3_600_000, "{utc} vs {local}");
    }

    const AT: PartitionOffsets = PartitionOffsets {
        log_start: 10,
        log_end: 100,
        committed: Some(50),
        at_timestamp: Some(70),
    };

    #[test]
    fn the_plan_follows_kafkas_rules() {
        assert_eq!(new_offset(ResetTo::Earliest, AT), Ok(10));
        assert_eq!(new_offset(ResetTo::Latest, AT), Ok(100));
        assert_eq!(new_offset(ResetTo::Offset(42), AT), Ok(42));
        assert_eq!(
            new_offset(ResetTo::Offset(5), AT),
            Ok(10),
            "below the log start"
        );
        assert_eq!(
            new_offset(ResetTo::Offset(500), AT),
            Ok(100),
            "past the log end"
        );
        assert_eq!(new_offset(ResetTo::ShiftBy(-20), AT), Ok(30));
        assert_eq!(new_offset(ResetTo::ShiftBy(-45), AT), Ok(10));
        assert_eq!(new_offset(ResetTo::ShiftBy(i64::MAX), AT), Ok(100));
        assert_eq!(new_offset(ResetTo::Datetime(1), AT), Ok(70));
        let late = PartitionOffsets {
            at_timestamp: None,
            ..AT
        };
        assert_eq!(
            new_offset(ResetTo::Datetime(1), late),
            Ok(100),
            "after the last record"
        );
        let uncommitted = PartitionOffsets {
            committed: None,
            ..AT
        };
        assert!(new_offset(ResetTo::ShiftBy(1), uncommitted).is_err());
        assert_eq!(new_offset(ResetTo::Earliest, uncommitted), Ok(10));
    }

    #[test]
    fn consumer_protocol_assignments_decode_at_any_version() {
        let assignment = ConsumerProtocolAssignment {
            assigned_partitions: vec![TopicPartition {
                topic: "t".into(),
                partitions: vec![0, 3],
                ..TopicPartition::default()
            }],
            user_data: None,
            ..ConsumerProtocolAssignment::default()
        };
        for (written, read_as) in [(0i16, 0i16), (3, 3)] {
            let mut w = Encoder::new();
            assignment.encode(&mut w, read_as).unwrap();
            let mut framed = written.to_be_bytes().to_vec();
            framed.extend_from_slice(&w.into_bytes());
            let bytes = Bytes::from(framed);
            assert_eq!(
                decode_assignment(&bytes).unwrap(),
                vec![("t".to_string(), 0), ("t".to_string(), 3)]
            );
        }
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
        assert!(decode_assignment(&Bytes::from_static(&[0, 0, 0])).is_err());
    }

    fn description() -> GroupDescription {
        GroupDescription {
            group: "g".into(),
            group_type: "classic".into(),
            state: "Stable".into(),
            coordinator: 1,
            members: 1,
            partitions: vec![
                PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    current_offset: Some(3),
                    log_end_offset: Some(10),
                    lag: Some(7),
                    consumer_id: Some("m-1".into()),
                    host: Some("/127.0.0.1".into()),
                    client_id: Some("rdkafka".into()),
                },
                PartitionLag {
                    topic: "t".into(),
                    partition: 1,
                    current_offset: None,
                    log_end_offset: Some(0),
                    lag: None,
                    consumer_id: None,
                    host: None,
                    client_id: None,
                },
            ],
            notes: vec![],
        }
    }

    #[test]
    fn describe_renders_kafkas_columns() {
        assert_eq!(
            description().human(),
            "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID\n\
             g      t      0          3               10              7    m-1          /127.0.0.1  rdkafka\n\
             g      t      1          -               0               -    -            -           -\n"
        );
        let json = serde_json::to_value(description()).unwrap();
        assert_eq!(json["partitions"][0]["current_offset"], 3);
        assert_eq!(json["partitions"][0]["log_end_offset"], 10);
        assert_eq!(json["partitions"][0]["lag"], 7);
        assert_eq!(json["partitions"][0]["consumer_id"], "m-1");
        assert_eq!(json["partitions"][1]["lag"], serde_json::Value::Null);
        assert_eq!(json["group_type"], "classic");
    }

    #[test]
    fn reset_plans_render_as_kafkas_table_and_say_when_nothing_was_committed() {
        let plan = ResetPlan {
            group: "g".into(),
            executed: false,
            partitions: vec![PlannedOffset {
                topic: "t".into(),
                partition: 0,
                current_offset: Some(5),
                new_offset: 0,
            }],
        };
        assert_eq!(
            plan.human(),
            "GROUP  TOPIC  PARTITION  NEW-OFFSET\ng      t      0          0\n"
        );
        assert_eq!(plan.notes().len(), 1);
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["executed"], false);
        assert_eq!(json["partitions"][0]["current_offset"], 5);
        assert_eq!(json["partitions"][0]["new_offset"], 0);
        assert!(
            ResetPlan {
                executed: true,
                ..plan
            }
            .notes()
            .is_empty()
        );
    }
}
