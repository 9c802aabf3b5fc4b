//! Payloads inside payloads: SQS records (the watcher's queue of failed
//! events and follow-ups) and Lambda's on-failure destination records, and
//! Network Manager's events.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

use super::{MalformedPayload, RoutingUpdate, UpdatedRoute, malformed};
use crate::model::Region;

/// The payload an SQS delivery carries, if `fields` is one: the body of
/// its one record, and inside a Lambda destination record (`requestPayload`)
/// the event that failed. The queue delivers one record at a time (batch
/// size 1): more is refused, so none of them is acknowledged unhandled.
pub(super) fn unwrap(fields: &Map<String, Value>) -> Result<Option<Value>, MalformedPayload> {
    let Some(records) = fields.get("Records") else {
        return Ok(None);
    };
    let records = records
        .as_array()
        .ok_or_else(|| malformed("\"Records\" is not an array"))?;
    let [record] = records.as_slice() else {
        return Err(malformed(format!(
            "an SQS delivery of {} records: the event source mapping's batch size must be 1",
            records.len()
        )));
    };
    if record.get("eventSource").and_then(Value::as_str) != Some("aws:sqs") {
        return Err(malformed("a record that is not an SQS message"));
    }
    let body = record
        .get("body")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the SQS record has no \"body\""))?;
    let inner: Value = serde_json::from_str(body)
        .map_err(|e| malformed(format!("the SQS message body is not JSON: {e}")))?;
    // Lambda's on-failure destination record: the original event inside.
    Ok(Some(match inner.get("requestPayload") {
        Some(original) if inner.get("requestContext").is_some() => original.clone(),
        _ => inner,
    }))
}

/// The TGW route table id of an ARN (`…:transit-gateway-route-table/tgw-rtb-…`).
fn resource_id(arn: &str) -> Option<String> {
    arn.rsplit('/')
        .next()
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// A Network Manager routing update or topology change.
pub(super) fn routing_update(
    event: &EventBridgeEvent<Value>,
    event_region: impl Fn() -> Result<Region, MalformedPayload>,
) -> Result<RoutingUpdate, MalformedPayload> {
    let detail = event
        .detail
        .as_object()
        .ok_or_else(|| malformed("the Network Manager event's \"detail\" is not an object"))?;
    let change_type = detail
        .get("changeType")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the Network Manager event has no \"detail.changeType\""))?;
    let region = match detail.get("region").and_then(Value::as_str) {
        Some(r) => {
            Region::new(r).ok_or_else(|| malformed(format!("\"detail.region\" {r:?} is not a region")))?
        }
        None => event_region()?,
    };
    let route_tables = detail
        .get("transitGatewayRouteTableArns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(resource_id)
        .collect();
    let routes = detail
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| UpdatedRoute {
            destination: r
                .get("destinationCidrBlock")
                .and_then(Value::as_str)
                .and_then(|c| c.parse().ok()),
            attachments: r
                .get("attachments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.get("tgwAttachmentId").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
            route_type: r
                .get("routeType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
        .collect();
    Ok(RoutingUpdate {
        region,
        change_type: change_type.to_owned(),
        // Without a time, the change is taken as happening now: it is
        // newer than every run that already started.
        time: event.time.map_or(i64::MAX, |t| t.timestamp()),
        route_tables,
        routes,
    })
}
