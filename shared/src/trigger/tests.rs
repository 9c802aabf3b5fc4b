//! Unit and property tests of payload classification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;
use serde_json::json;

const SUBS: Subscriptions = Subscriptions {
    api_calls: &["CreateRoute"],
    state_changes: true,
    routing_updates: false,
    alarm_changes: true,
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

fn alarm_event(detail: Value) -> Value {
    let mut e = envelope(ALARM_CHANGE, detail);
    e["source"] = json!("aws.cloudwatch");
    e
}

#[test]
fn alarm_state_changes() {
    let event = alarm_event(json!({
        "alarmName": "vpn-a-tunnel",
        "previousState": {"value": "OK", "reason": "up", "timestamp": "2026-11-20T09:31:02.117+0000"},
        "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-11-20T10:05:12.504+0000"}
    }));
    let Classified::Handle(Trigger::AlarmChange(change)) = classify(&event, SUBS).unwrap() else {
        panic!("not an alarm change")
    };
    assert_eq!(change.region.as_str(), "eu-west-1");
    assert_eq!(change.alarm_name, "vpn-a-tunnel");
    assert_eq!(change.state.state, AlarmState::Alarm);
    assert_eq!(change.state.reason.as_deref(), Some("Threshold Crossed"));
    assert_eq!(change.state.updated_ms, Some(1_795_169_112_504));
    assert_eq!(change.previous, Some(AlarmState::Ok));
    assert_eq!(Trigger::AlarmChange(change).label(), "alarm_change:alarm");

    // Not subscribed: ignored, still parsed (a malformed one is an error).
    let off = Subscriptions {
        alarm_changes: false,
        ..SUBS
    };
    assert!(matches!(
        classify(&event, off).unwrap(),
        Classified::Ignore { .. }
    ));
    for bad in [
        json!({"state": {"value": "ALARM"}}),
        json!({"alarmName": "", "state": {"value": "ALARM"}}),
        json!({"alarmName": "a"}),
        json!({"alarmName": "a", "state": {"value": "FIRING"}}),
    ] {
        assert!(classify(&alarm_event(bad.clone()), SUBS).is_err(), "{bad}");
    }
    // Another source with the same detail-type is not CloudWatch's.
    let mut spoof = event.clone();
    spoof["source"] = json!("my.app");
    assert!(matches!(
        classify(&spoof, SUBS).unwrap(),
        Classified::Ignore { .. }
    ));
}

#[test]
fn cloudwatch_timestamps() {
    use super::envelope::cloudwatch_millis;
    assert_eq!(cloudwatch_millis("1970-01-01T00:00:00.000+0000"), Some(0));
    assert_eq!(cloudwatch_millis("1970-01-01T00:00:01Z"), Some(1_000));
    assert_eq!(
        cloudwatch_millis("2026-11-20T10:05:12.504+0000"),
        Some(1_795_169_112_504)
    );
    assert_eq!(
        cloudwatch_millis("2026-11-20T11:05:12.504+01:00"),
        cloudwatch_millis("2026-11-20T10:05:12.504Z")
    );
    assert_eq!(cloudwatch_millis("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    for bad in ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-20 10:05:12"] {
        assert_eq!(cloudwatch_millis(bad), None, "{bad}");
    }
}
