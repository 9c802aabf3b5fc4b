//! What an invocation asks for. Lambda hands us arbitrary JSON; it becomes a
//! typed [`Trigger`] here, once, or a clear error, before anything is read
//! from AWS.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Region;

/// `detail-type` of EventBridge scheduled events.
pub const SCHEDULED: &str = "Scheduled Event";
/// `detail-type` of CloudTrail management events delivered by EventBridge.
pub const API_CALL: &str = "AWS API Call via CloudTrail";
/// `detail-type` of EC2 instance state changes.
pub const STATE_CHANGE: &str = "EC2 Instance State-change Notification";

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
}

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
    /// A manual invocation.
    Manual(ManualInvoke),
}

impl Trigger {
    /// A short name for responses and logs.
    pub fn label(&self) -> String {
        match self {
            Trigger::Scheduled => "scheduled".to_owned(),
            Trigger::ApiCall { event_name, .. } => format!("api_call:{event_name}"),
            Trigger::StateChange { state, .. } => format!("state_change:{state:?}").to_lowercase(),
            Trigger::Manual(_) => "manual".to_owned(),
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

fn malformed(reason: impl Into<String>) -> MalformedPayload {
    MalformedPayload {
        reason: reason.into(),
    }
}

/// Reads an invocation payload.
pub fn classify(payload: &Value, subs: Subscriptions) -> Result<Classified, MalformedPayload> {
    let Value::Object(fields) = payload else {
        return Err(malformed(format!(
            "the payload is {}, not a JSON object",
            kind_of(payload)
        )));
    };
    if !fields.contains_key("detail-type") {
        let manual: ManualInvoke = serde_json::from_value(payload.clone())
            .map_err(|e| malformed(format!("not a valid manual invoke: {e}")))?;
        if manual.group.is_some() != manual.activate.is_some() {
            return Err(malformed("\"group\" and \"activate\" go together"));
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const SUBS: Subscriptions = Subscriptions {
        api_calls: &["CreateRoute"],
        state_changes: true,
    };

    fn envelope(detail_type: &str, detail: Value) -> Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type, "source": "aws.ec2", "account": "123456789012",
            "time": "2026-11-22T10:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": detail
        })
    }

    #[test]
    fn manual_payloads() {
        assert_eq!(
            classify(&json!({}), SUBS).unwrap(),
            Classified::Handle(Trigger::Manual(ManualInvoke::default()))
        );
        let Classified::Handle(Trigger::Manual(m)) =
            classify(&json!({"dry_run": true, "force": true}), SUBS).unwrap()
        else {
            panic!("not manual")
        };
        assert_eq!(m.dry_run, Some(true));
        assert!(m.force);
        for bad in [
            json!({"dryrun": true}),
            json!({"dry_run": "yes"}),
            json!({"group": "g"}),
            json!([]),
            json!("run"),
            json!(42),
            Value::Null,
        ] {
            assert!(classify(&bad, SUBS).is_err(), "{bad}");
        }
    }

    #[test]
    fn events() {
        let call = envelope(
            API_CALL,
            json!({"eventName": "CreateRoute", "awsRegion": "us-east-1"}),
        );
        let Classified::Handle(Trigger::ApiCall { region, .. }) = classify(&call, SUBS).unwrap() else {
            panic!()
        };
        assert_eq!(region.as_str(), "us-east-1");
        let other = envelope(
            API_CALL,
            json!({"eventName": "RunInstances", "awsRegion": "us-east-1"}),
        );
        assert!(matches!(
            classify(&other, SUBS).unwrap(),
            Classified::Ignore { .. }
        ));
        let failed = envelope(
            API_CALL,
            json!({"eventName": "CreateRoute", "awsRegion": "us-east-1", "errorCode": "Client.RouteAlreadyExists"}),
        );
        assert!(matches!(
            classify(&failed, SUBS).unwrap(),
            Classified::Ignore { .. }
        ));
        assert!(classify(&envelope(API_CALL, json!("x")), SUBS).is_err());
        assert!(classify(&envelope(API_CALL, json!({})), SUBS).is_err());
        let stop = envelope(STATE_CHANGE, json!({"instance-id": "i-0abc", "state": "stopped"}));
        assert!(matches!(
            classify(&stop, SUBS).unwrap(),
            Classified::Handle(Trigger::StateChange {
                state: InstanceState::Stopped,
                ..
            })
        ));
        assert!(classify(&envelope(STATE_CHANGE, json!({"state": "stopped"})), SUBS).is_err());
        assert!(
            classify(
                &envelope(STATE_CHANGE, json!({"instance-id": "i-1", "state": "melted"})),
                SUBS
            )
            .is_err()
        );
        assert_eq!(
            classify(&envelope(SCHEDULED, json!({})), SUBS).unwrap(),
            Classified::Handle(Trigger::Scheduled)
        );
        assert!(matches!(
            classify(&envelope("Object Created", json!({})), SUBS).unwrap(),
            Classified::Ignore { .. }
        ));
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z-]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("detail-type"),
                Just("detail"),
                Just("dry_run"),
                Just("force"),
                Just(SCHEDULED),
                Just(API_CALL),
                Just(STATE_CHANGE),
                Just("eventName"),
                Just("instance-id"),
                Just("state"),
                Just("region"),
                Just("eu-west-1")
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("detail-type".to_owned()),
                        Just("detail".to_owned()),
                        Just("dry_run".to_owned()),
                        Just("region".to_owned()),
                        Just("eventName".to_owned()),
                        Just("source".to_owned()),
                        "[a-z_-]{1,8}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON gets an answer, never a panic; only objects can be handled.
        #[test]
        fn random_json_never_panics(payload in arb_json()) {
            if let Ok(Classified::Handle(_)) = classify(&payload, SUBS) {
                prop_assert!(payload.is_object());
            }
        }
    }
}
