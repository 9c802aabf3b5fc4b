//! What an invocation asks for. Lambda hands us arbitrary JSON; it becomes a
//! typed [`Trigger`] here, once, or a clear error, before anything is read
//! from AWS.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Region;
use crate::prefix::Cidr;

mod envelope;
#[cfg(test)]
mod tests;

/// `detail-type` of EventBridge scheduled events.
pub const SCHEDULED: &str = "Scheduled Event";
/// `detail-type` of CloudTrail management events delivered by EventBridge.
pub const API_CALL: &str = "AWS API Call via CloudTrail";
/// `detail-type` of EC2 instance state changes.
pub const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
/// `detail-type` of Network Manager's routing updates (TGW route tables of
/// a global network changed).
pub const ROUTING_UPDATE: &str = "Network Manager Routing Update";
/// `detail-type` of Network Manager's topology changes (attachments,
/// peerings, VPN connections of a global network).
pub const TOPOLOGY_CHANGE: &str = "Network Manager Topology Change";
/// `detail-type` of CloudWatch's alarm state changes (source
/// `aws.cloudwatch`).
pub const ALARM_CHANGE: &str = "CloudWatch Alarm State Change";

/// A manual invocation: `{"dry_run": bool, "force": bool}`, plus the
/// failover watcher's operator switch `{"group": "…", "activate": "i-…"}`.
/// Unknown fields are refused: a typo such as `dryrun` must not turn a
/// rehearsal into a real run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualInvoke {
    /// Plan and report, write nothing. Absent: `LBGP_DRY_RUN` decides.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Apply a plan even above the blast-radius limit.
    #[serde(default)]
    pub force: bool,
    /// Failover group of an operator's switch.
    #[serde(default)]
    pub group: Option<String>,
    /// Instance to make active in `group`.
    #[serde(default)]
    pub activate: Option<String>,
    /// Set by a run that stopped before its deadline with work left: this
    /// invocation continues it at once.
    #[serde(default)]
    pub follow_up: Option<FollowUp>,
    /// The injector's cutover or rollback of one VPC.
    #[serde(default)]
    pub migrate: Option<MigrateRequest>,
    /// The injector's adoption of the old tooling's overlay routes of one
    /// VPC.
    #[serde(default)]
    pub adopt: Option<AdoptRequest>,
}

/// `{"migrate": {"vpc": "vpc-…", "to": "migrated" | "legacy"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateRequest {
    /// The VPC.
    pub vpc: String,
    /// Where it goes.
    pub to: crate::migrate::MigrationState,
}

/// `{"adopt": {"vpc": "vpc-…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptRequest {
    /// The VPC whose tables' matching routes become ours.
    pub vpc: String,
}

/// What a follow-up invocation continues.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowUp {
    /// The request id of the run that left the work.
    pub after: String,
    /// How many changes it left.
    pub deferred: usize,
}

/// A Network Manager event about the mesh: a routing update of some TGW
/// route tables, or a topology change. Only a wake-up: the run reads the
/// tables again and trusts none of the event's deltas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingUpdate {
    /// The region of the transit gateway concerned (`detail.region`; the
    /// event itself comes from Network Manager's home, us-west-2).
    pub region: Region,
    /// `detail.changeType`, e.g. `TGW-ROUTE-INSTALLED`.
    pub change_type: String,
    /// When the change happened (seconds since the epoch).
    pub time: i64,
    /// The TGW route tables concerned (ids).
    pub route_tables: Vec<String>,
    /// The routes that changed.
    pub routes: Vec<UpdatedRoute>,
}

/// One route of a routing update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedRoute {
    /// Its destination, when it is a CIDR.
    pub destination: Option<Cidr>,
    /// The attachments it points at.
    pub attachments: Vec<String>,
    /// `route_static` or `route_propagated`.
    pub route_type: String,
}

/// A CloudWatch alarm's change of state: a member's health source moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmChange {
    /// The alarm's region (alarms are regional: the member's region).
    pub region: Region,
    /// `detail.alarmName`.
    pub alarm_name: String,
    /// `detail.state.value`, with its reason and time.
    pub state: AlarmReading,
    /// `detail.previousState.value`, when the event says.
    pub previous: Option<AlarmState>,
}

use crate::failover::{AlarmReading, AlarmState};
pub use crate::topology::InstanceState;

/// Why the function runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// EventBridge schedule: full reconcile of every region.
    Scheduled,
    /// A CloudTrail API-call event from `region`: reconcile that region.
    ApiCall {
        /// Region the call was made in.
        region: Region,
        /// The API action, e.g. `CreateRoute`.
        event_name: String,
        /// The call's `requestParameters`, for logs and narrowing.
        request: Value,
    },
    /// An EC2 instance state change.
    StateChange {
        /// Region of the instance.
        region: Region,
        /// The instance.
        instance_id: String,
        /// Its new state.
        state: InstanceState,
    },
    /// A manual invocation (or a follow-up of a run that ran out of time).
    Manual(ManualInvoke),
    /// A Network Manager routing update or topology change.
    RoutingUpdate(RoutingUpdate),
    /// A CloudWatch alarm changed state.
    AlarmChange(AlarmChange),
}

impl Trigger {
    /// A short name for responses and logs.
    pub fn label(&self) -> String {
        match self {
            Trigger::Scheduled => "scheduled".to_owned(),
            Trigger::ApiCall { event_name, .. } => format!("api_call:{event_name}"),
            Trigger::StateChange { state, .. } => format!("state_change:{state:?}").to_lowercase(),
            Trigger::Manual(m) if m.follow_up.is_some() => "follow_up".to_owned(),
            Trigger::Manual(m) if m.migrate.is_some() => "migrate".to_owned(),
            Trigger::Manual(m) if m.adopt.is_some() => "adopt".to_owned(),
            Trigger::Manual(_) => "manual".to_owned(),
            Trigger::RoutingUpdate(u) => format!("routing_update:{}", u.change_type),
            Trigger::AlarmChange(a) => format!("alarm_change:{}", a.state.state.as_aws().to_lowercase()),
        }
    }

    /// The region a regional trigger concerns.
    pub fn region(&self) -> Option<&Region> {
        match self {
            Trigger::ApiCall { region, .. } | Trigger::StateChange { region, .. } => Some(region),
            Trigger::RoutingUpdate(u) => Some(&u.region),
            Trigger::AlarmChange(a) => Some(&a.region),
            Trigger::Scheduled | Trigger::Manual(_) => None,
        }
    }
}

/// The result of reading a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Something this function acts on.
    Handle(Trigger),
    /// A well-formed event this function does not act on.
    Ignore {
        /// Why, for the response.
        reason: String,
    },
}

/// What a function listens to.
#[derive(Debug, Clone, Copy)]
pub struct Subscriptions {
    /// CloudTrail `eventName`s acted on.
    pub api_calls: &'static [&'static str],
    /// Whether EC2 state changes are acted on.
    pub state_changes: bool,
    /// Whether Network Manager routing updates and topology changes are
    /// acted on (as wake-ups).
    pub routing_updates: bool,
    /// Whether CloudWatch alarm state changes are acted on (failover
    /// members' health alarms).
    pub alarm_changes: bool,
}

/// A payload that is neither a known event shape nor a valid manual invoke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "malformed invocation payload: {reason}. Expected an EventBridge event or {{\"dry_run\": true|false, \"force\": true|false}}"
)]
pub struct MalformedPayload {
    /// What is wrong.
    pub reason: String,
}

pub(crate) fn malformed(reason: impl Into<String>) -> MalformedPayload {
    MalformedPayload {
        reason: reason.into(),
    }
}

/// Reads an invocation payload: an EventBridge event, a manual invoke, or
/// either of those delivered through an SQS queue (a record of the queue the
/// watcher's failed events and follow-ups go to, unwrapped here).
pub fn classify(payload: &Value, subs: Subscriptions) -> Result<Classified, MalformedPayload> {
    let Value::Object(fields) = payload else {
        return Err(malformed(format!(
            "the payload is {}, not a JSON object",
            kind_of(payload)
        )));
    };
    if let Some(inner) = envelope::unwrap(fields)? {
        return classify(&inner, subs);
    }
    if !fields.contains_key("detail-type") {
        let manual: ManualInvoke = serde_json::from_value(payload.clone())
            .map_err(|e| malformed(format!("not a valid manual invoke: {e}")))?;
        if manual.group.is_some() != manual.activate.is_some() {
            return Err(malformed("\"group\" and \"activate\" go together"));
        }
        let commands = usize::from(manual.activate.is_some())
            + usize::from(manual.migrate.is_some())
            + usize::from(manual.adopt.is_some());
        if commands > 1 {
            return Err(malformed(
                "one command at a time: \"activate\", \"migrate\" or \"adopt\"",
            ));
        }
        let vpcs = manual
            .migrate
            .as_ref()
            .map(|m| &m.vpc)
            .into_iter()
            .chain(manual.adopt.as_ref().map(|a| &a.vpc));
        for vpc in vpcs {
            if !vpc.starts_with("vpc-") || vpc.len() < 5 {
                return Err(malformed(format!("{vpc:?} is not a VPC id (vpc-…)")));
            }
        }
        return Ok(Classified::Handle(Trigger::Manual(manual)));
    }
    let event: EventBridgeEvent<Value> = serde_json::from_value(payload.clone())
        .map_err(|e| malformed(format!("not a valid EventBridge event: {e}")))?;
    let region = || {
        event
            .region
            .as_deref()
            .and_then(Region::new)
            .ok_or_else(|| malformed("the event has no valid \"region\""))
    };
    match event.detail_type.as_str() {
        SCHEDULED => Ok(Classified::Handle(Trigger::Scheduled)),
        API_CALL => {
            let detail = event
                .detail
                .as_object()
                .ok_or_else(|| malformed("the CloudTrail event's \"detail\" is not an object"))?;
            let event_name = detail
                .get("eventName")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("the CloudTrail event has no \"detail.eventName\""))?;
            let call_region = match detail.get("awsRegion").and_then(Value::as_str) {
                Some(r) => Region::new(r)
                    .ok_or_else(|| malformed(format!("\"detail.awsRegion\" {r:?} is not a region")))?,
                None => region()?,
            };
            if !subs.api_calls.contains(&event_name) {
                return Ok(Classified::Ignore {
                    reason: format!("CloudTrail event {event_name} is not one this function acts on"),
                });
            }
            if detail.get("errorCode").is_some() {
                return Ok(Classified::Ignore {
                    reason: format!("CloudTrail event {event_name} records a failed call"),
                });
            }
            Ok(Classified::Handle(Trigger::ApiCall {
                region: call_region,
                event_name: event_name.to_owned(),
                request: detail.get("requestParameters").cloned().unwrap_or(Value::Null),
            }))
        }
        STATE_CHANGE => {
            // The shape is checked even by functions that ignore state
            // changes: a malformed event is an error wherever it lands.
            let detail = event
                .detail
                .as_object()
                .ok_or_else(|| malformed("the state-change event's \"detail\" is not an object"))?;
            let instance_id = detail
                .get("instance-id")
                .and_then(Value::as_str)
                .filter(|id| id.starts_with("i-"))
                .ok_or_else(|| malformed("the state-change event has no \"detail.instance-id\""))?;
            let state: InstanceState = detail
                .get("state")
                .cloned()
                .ok_or_else(|| malformed("the state-change event has no \"detail.state\""))
                .and_then(|s| {
                    serde_json::from_value(s).map_err(|e| malformed(format!("\"detail.state\": {e}")))
                })?;
            if !subs.state_changes {
                return Ok(Classified::Ignore {
                    reason: "EC2 state changes are not something this function acts on".to_owned(),
                });
            }
            Ok(Classified::Handle(Trigger::StateChange {
                region: region()?,
                instance_id: instance_id.to_owned(),
                state,
            }))
        }
        ROUTING_UPDATE | TOPOLOGY_CHANGE if event.source == "aws.networkmanager" => {
            let update = envelope::routing_update(&event, region)?;
            if !subs.routing_updates {
                return Ok(Classified::Ignore {
                    reason: "Network Manager events are not something this function acts on".to_owned(),
                });
            }
            Ok(Classified::Handle(Trigger::RoutingUpdate(update)))
        }
        ALARM_CHANGE if event.source == "aws.cloudwatch" => {
            let change = envelope::alarm_change(&event, region)?;
            if !subs.alarm_changes {
                return Ok(Classified::Ignore {
                    reason: "CloudWatch alarm state changes are not something this function acts on"
                        .to_owned(),
                });
            }
            Ok(Classified::Handle(Trigger::AlarmChange(change)))
        }
        other => Ok(Classified::Ignore {
            reason: format!("events of type {other:?} are not something this function acts on"),
        }),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
