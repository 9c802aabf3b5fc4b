//! Event payloads as EventBridge delivers them, for tests, the demo and the
//! benchmarks (the samples in `events/` are the documented ones).

use serde_json::{Value, json};

/// A `Scheduled Event`.
pub fn scheduled() -> Value {
    json!({"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events",
           "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
           "resources": ["arn:aws:events:us-east-1:123456789012:rule/lbgp"], "detail": {}})
}

/// An `AWS API Call via CloudTrail` event for `event_name` in `region`, with
/// its `requestParameters`.
pub fn cloudtrail(event_name: &str, region: &str, request: Value) -> Value {
    json!({"version": "0", "id": "2", "detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2",
           "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": region, "resources": [],
           "detail": {"eventVersion": "1.09", "eventSource": "ec2.amazonaws.com", "eventName": event_name,
                      "awsRegion": region, "requestParameters": request, "eventType": "AwsApiCall"}})
}

/// An `EC2 Instance State-change Notification`.
pub fn state_change(region: &str, instance: &str, state: &str) -> Value {
    json!({"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
           "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
           "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": region,
           "resources": [format!("arn:aws:ec2:{region}:123456789012:instance/{instance}")],
           "detail": {"instance-id": instance, "state": state}})
}
