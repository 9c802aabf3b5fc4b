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

/// A `Network Manager Routing Update` as Global Networks for Transit
/// Gateways sends it (from us-west-2) about `table` in `region`, at `time`
/// (epoch seconds): each route `(destination, attachment, route type)`.
pub fn routing_update(
    region: &str,
    change_type: &str,
    table: &str,
    routes: &[(&str, &str, &str)],
    time: u64,
) -> Value {
    use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};
    let time = DateTime::from_secs(i64::try_from(time).unwrap_or(i64::MAX))
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default();
    let routes: Vec<Value> = routes
        .iter()
        .map(|(destination, attachment, route_type)| {
            json!({"destinationCidrBlock": destination,
                   "attachments": [{"tgwAttachmentId": attachment, "attachmentType": "peering"}],
                   "routeType": route_type, "routeState": "active"})
        })
        .collect();
    json!({"version": "0", "id": "a1b2c3d4-5678-90ab-cdef-0000000000aa",
           "detail-type": "Network Manager Routing Update", "source": "aws.networkmanager",
           "account": "123456789012", "time": time, "region": "us-west-2",
           "resources": ["arn:aws:networkmanager::123456789012:global-network/global-network-0123456789abcdef0"],
           "detail": {"changeType": change_type, "region": region,
                      "transitGatewayRouteTableArns": [format!("arn:aws:ec2:{region}:123456789012:transit-gateway-route-table/{table}")],
                      "routes": routes}})
}

/// What Lambda's SQS event source delivers for one message with `body`.
pub fn sqs_delivery(body: &str, queue_arn: &str) -> Value {
    json!({"Records": [{"messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                        "body": body, "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "eu-west-1"}]})
}

/// The record Lambda's on-failure destination keeps of an asynchronous
/// invocation it gave up on (`condition`: `EventAgeExceeded` or
/// `RetriesExhausted`), with the original event.
pub fn on_failure_record(event: &Value, condition: &str) -> Value {
    json!({"version": "1.0", "timestamp": "2026-11-22T10:06:00.000Z",
           "requestContext": {"requestId": "e4b46cbf-b738-4a9b-8880-a18cdf61200e",
                              "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:lbgp-failover-watcher:$LATEST",
                              "condition": condition, "approximateInvokeCount": 0},
           "requestPayload": event,
           "responseContext": {"statusCode": 0, "executedVersion": null, "functionError": null},
           "responsePayload": null})
}

/// A `CloudWatch Alarm State Change` as CloudWatch sends it (the shape of
/// `events/cloudwatch/*.json`): `alarm` went from `previous` to `state`
/// (`OK`, `ALARM`, `INSUFFICIENT_DATA`) for `reason`, now.
pub fn alarm_change(region: &str, alarm: &str, previous: &str, state: &str, reason: &str) -> Value {
    use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};
    let now = std::time::SystemTime::now();
    let stamp = |t: std::time::SystemTime| {
        let text = DateTime::from(t)
            .fmt(DateTimeFormat::DateTime)
            .unwrap_or_default();
        // CloudWatch's form: `2026-11-20T10:05:12.504+0000`.
        text.trim_end_matches('Z').to_owned() + "+0000"
    };
    let before = now.checked_sub(std::time::Duration::from_secs(60)).unwrap_or(now);
    json!({"version": "0", "id": "7a1f3d5e-2b9c-4e6a-8d0f-1c2b3a4d5e6f",
           "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
           "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": region,
           "resources": [format!("arn:aws:cloudwatch:{region}:123456789012:alarm:{alarm}")],
           "detail": {"alarmName": alarm,
                      "previousState": {"value": previous, "reason": "earlier", "timestamp": stamp(before)},
                      "state": {"value": state, "reason": reason, "timestamp": stamp(now)}}})
}
