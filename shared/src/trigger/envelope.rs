//! Payloads inside payloads: SQS records (the watcher's queue of failed
//! events and follow-ups) and Lambda's on-failure destination records, and
//! Network Manager's and CloudWatch's events.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde_json::{Map, Value};

use super::{AlarmChange, MalformedPayload, RoutingUpdate, UpdatedRoute, malformed};
use crate::failover::{AlarmReading, AlarmState};
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

/// A CloudWatch alarm state change (`detail.alarmName`, `detail.state`,
/// `detail.previousState`; <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html>).
pub(super) fn alarm_change(
    event: &EventBridgeEvent<Value>,
    event_region: impl Fn() -> Result<Region, MalformedPayload>,
) -> Result<AlarmChange, MalformedPayload> {
    let detail = event
        .detail
        .as_object()
        .ok_or_else(|| malformed("the alarm event's \"detail\" is not an object"))?;
    let alarm_name = detail
        .get("alarmName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| malformed("the alarm event has no \"detail.alarmName\""))?;
    let state = detail
        .get("state")
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("the alarm event has no \"detail.state\""))?;
    let value = state
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("the alarm event has no \"detail.state.value\""))?;
    let value = AlarmState::from_aws(value).ok_or_else(|| {
        malformed(format!(
            "\"detail.state.value\" {value:?} is not an alarm state (OK, ALARM, INSUFFICIENT_DATA)"
        ))
    })?;
    let previous = detail
        .get("previousState")
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
        .and_then(AlarmState::from_aws);
    Ok(AlarmChange {
        region: event_region()?,
        alarm_name: alarm_name.to_owned(),
        state: AlarmReading {
            name: alarm_name.to_owned(),
            state: value,
            reason: state.get("reason").and_then(Value::as_str).map(str::to_owned),
            updated_ms: state
                .get("timestamp")
                .and_then(Value::as_str)
                .and_then(cloudwatch_millis),
        },
        previous,
    })
}

/// Milliseconds since the epoch of a CloudWatch event timestamp
/// (`2026-11-22T10:00:00.123+0000`; `Z` and `+00:00` accepted), `None` when
/// it is not one.
pub(super) fn cloudwatch_millis(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let offset_min = match zone.trim() {
        "" | "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            let (h, mm) = (
                digits.get(0..2)?.parse::<i64>().ok()?,
                digits.get(2..4).unwrap_or("0").parse::<i64>().ok()?,
            );
            sign * (h * 60 + mm)
        }
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mi, ss) = (hms.next()??, hms.next()??, hms.next()??);
    let millis: i64 = format!("{frac:0<3}").get(0..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mi > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3_600 + mi * 60 + ss) - offset_min * 60) * 1_000 + millis)
}
