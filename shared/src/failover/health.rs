//! Health sources of a member besides EC2's: CloudWatch alarms (tag
//! `lbgp:health-alarm`), read with the members or delivered by an alarm's
//! state-change event, and what a member's unhealth is made of, for the
//! response, the notification and the log.
//!
//! The appliance (its tunnel checks, or the Site-to-Site VPN `TunnelState`
//! metric, or a CloudWatch agent) feeds a metric; the alarm turns it into
//! health: a member is unhealthy while any of its alarms is `ALARM`, and
//! while one is `INSUFFICIENT_DATA` unless it is tagged
//! `lbgp:health-missing=ignore`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::topology::InstanceState;

/// Tag naming a member's health alarms (comma-separated alarm names).
pub const TAG_HEALTH_ALARM: &str = "lbgp:health-alarm";
/// Tag saying what an alarm without data means (`unhealthy`, the default,
/// or `ignore`).
pub const TAG_HEALTH_MISSING: &str = "lbgp:health-missing";

/// A CloudWatch alarm's state (`StateValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AlarmState {
    /// `OK`.
    #[serde(rename = "OK")]
    Ok,
    /// `ALARM`.
    #[serde(rename = "ALARM")]
    Alarm,
    /// `INSUFFICIENT_DATA`: the metric stopped reporting (or never did).
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    /// Parses CloudWatch's name of the state.
    pub fn from_aws(name: &str) -> Option<AlarmState> {
        Some(match name {
            "OK" => AlarmState::Ok,
            "ALARM" => AlarmState::Alarm,
            "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
            _ => return None,
        })
    }

    /// CloudWatch's name of the state.
    pub fn as_aws(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_aws())
    }
}

/// What `INSUFFICIENT_DATA` means for a member (`lbgp:health-missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingData {
    /// An appliance that stops reporting is treated as down (the default).
    #[default]
    Unhealthy,
    /// An alarm without data does not count.
    Ignore,
}

impl MissingData {
    /// Parses the tag's value (case-insensitive).
    pub fn from_tag(value: &str) -> Option<MissingData> {
        match value.trim().to_ascii_lowercase().as_str() {
            "unhealthy" => Some(MissingData::Unhealthy),
            "ignore" => Some(MissingData::Ignore),
            _ => None,
        }
    }
}

/// A CloudWatch alarm as read (`DescribeAlarms`) or as an event told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmReading {
    /// The alarm's name.
    pub name: String,
    /// Its state.
    pub state: AlarmState,
    /// `StateReason`: why it is in that state, in CloudWatch's words.
    pub reason: Option<String>,
    /// When it took that state (`StateUpdatedTimestamp`, or the event's
    /// `state.timestamp`), in milliseconds since the epoch, by CloudWatch's
    /// clock: only ever compared with another CloudWatch time.
    pub updated_ms: Option<i64>,
}

/// One of a member's alarms, with what this run knows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAlarm {
    /// The alarm's name (from `lbgp:health-alarm`).
    pub name: String,
    /// What CloudWatch says; `None`: no such alarm in the member's region.
    pub reading: Option<AlarmReading>,
    /// True when the reading came from the event that triggered this run
    /// (newer than what was read).
    pub from_event: bool,
}

impl MemberAlarm {
    /// Whether this alarm makes its member unhealthy, given the member's
    /// missing-data setting.
    pub fn fails(&self, missing: MissingData) -> bool {
        match self.reading.as_ref().map(|r| r.state) {
            Some(AlarmState::Ok) => false,
            Some(AlarmState::Alarm) => true,
            // An alarm that does not exist reports nothing either.
            Some(AlarmState::InsufficientData) | None => missing == MissingData::Unhealthy,
        }
    }
}

/// Parses `lbgp:health-alarm`: alarm names, comma-separated, trimmed,
/// deduplicated, in tag order.
pub fn alarm_names(tag: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in tag.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Why a member is not healthy: one entry per failing source (public
/// contract: `source` and the fields beside it appear in the response's
/// members and `failed` entries and in notifications).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum HealthFault {
    /// The instance is not running (`from_event`: a state-change event
    /// said so before DescribeInstances does).
    State {
        /// Its state.
        state: InstanceState,
        /// Learnt from the event that triggered the run.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        from_event: bool,
    },
    /// EC2 did not say what state the instance is in.
    StateUnknown,
    /// A status check is impaired.
    StatusCheck {
        /// `instance` or `system`.
        check: String,
    },
    /// A health alarm is in `ALARM`, or without data (`INSUFFICIENT_DATA`,
    /// or missing) while the member treats missing data as unhealthy.
    Alarm {
        /// The alarm.
        alarm: String,
        /// Its state; absent when the alarm does not exist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<AlarmState>,
        /// CloudWatch's reason for the state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Learnt from the alarm event that triggered the run.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        from_event: bool,
    },
    /// The instance is gone: terminated and no longer described, its routes
    /// blackholed toward the interfaces the group remembers.
    Gone,
}

impl fmt::Display for HealthFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthFault::State {
                state,
                from_event: false,
            } => write!(f, "{state}"),
            HealthFault::State {
                state,
                from_event: true,
            } => write!(f, "{state} (state-change event)"),
            HealthFault::StateUnknown => f.write_str("state unknown"),
            HealthFault::StatusCheck { check } => write!(f, "{check} status check impaired"),
            HealthFault::Alarm {
                alarm, state, reason, ..
            } => {
                match state {
                    Some(s) => write!(f, "alarm {alarm} {s}")?,
                    None => write!(f, "alarm {alarm} not found")?,
                }
                if let Some(r) = reason.as_deref().filter(|r| !r.is_empty()) {
                    write!(f, ": {r}")?;
                }
                Ok(())
            }
            HealthFault::Gone => f.write_str("gone (terminated, interface deleted)"),
        }
    }
}

/// The newer of what was read and what an event said about one alarm: by
/// CloudWatch's own timestamps, the event when it has none (it is what
/// woke the run).
pub fn newer(read: Option<AlarmReading>, event: &AlarmReading) -> (AlarmReading, bool) {
    match read {
        Some(r) if matches!((r.updated_ms, event.updated_ms), (Some(a), Some(b)) if a > b) => (r, false),
        _ => (event.clone(), true),
    }
}
