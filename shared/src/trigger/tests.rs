//! Unit and property tests of payload classification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;
use serde_json::json;

const SUBS: Subscriptions = Subscriptions {
    api_calls: &["CreateRoute"],
    state_changes: true,
    routing_updates: false,
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
