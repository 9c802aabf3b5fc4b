//! CloudWatch metrics of every invocation, in the Embedded Metric Format
//! (EMF): no API call, a log line.
//!
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>:
//! a log event whose message is a JSON object with an `_aws` member
//! (`Timestamp`, `CloudWatchMetrics`: namespace, dimension sets, metric
//! definitions) and, at its root, the dimension values (strings) and the
//! metric values (numbers) the directives name. CloudWatch Logs extracts the
//! metrics from the function's log group as the log events arrive.
//!
//! Why a line of its own on stdout, outside `tracing`: the JSON formatter of
//! `tracing-subscriber` nests an event's fields under `fields`, and EMF wants
//! them at the root. Lambda's JSON log format keeps a line that already is a
//! JSON object as it is (it does not encode JSON twice), so the EMF object
//! reaches CloudWatch Logs whole. Lambda's log-level filter
//! (`ApplicationLogLevel`) reads a `level` member and takes a line without
//! one as INFO: the line carries the level the filter keeps
//! (`AWS_LAMBDA_LOG_LEVEL`), so quieter logs never drop the metrics an alarm
//! depends on.
//!
//! A typed writer rather than a crate: `metrics_cloudwatch_embedded` keeps
//! a process-wide recorder (invocations of several apps in one process, as
//! in the tests and `lbgpctl`, would mix) and `metrique` is a framework;
//! lbgp's metrics are a handful of numbers read off one response.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_smithy_types::date_time::{DateTime, Format};
use lbgp_core::report::InvokeResponse;
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every lbgp metric.
pub const NAMESPACE: &str = "lbgp";

/// Dimension: the function (binary) name.
pub const DIM_FUNCTION: &str = "function";
/// Dimension: the mesh (`LBGP_MESH`).
pub const DIM_MESH: &str = "mesh";
/// Dimension: a failover group, `<region>#<group>` (its lease scope).
pub const DIM_GROUP: &str = "group";

/// CloudWatch's longest dimension value.
const DIMENSION_VALUE_MAX: usize = 1024;

/// The units lbgp uses (CloudWatch `MetricDatum` unit names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One metric of a document.
#[derive(Debug, Clone, PartialEq)]
struct Metric {
    name: &'static str,
    unit: Unit,
    value: u64,
}

/// One EMF document: one directive in namespace [`NAMESPACE`] with one
/// dimension set, its metrics, and a few properties for people reading the
/// logs. Names are `&'static str` constants, values are numbers and
/// non-empty strings: a document is valid EMF by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    timestamp_ms: u64,
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<Metric>,
    properties: Map<String, Value>,
}

impl Document {
    /// An empty document stamped `timestamp_ms` (since the epoch).
    pub fn new(timestamp_ms: u64) -> Document {
        Document {
            timestamp_ms,
            dimensions: Vec::new(),
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds a dimension (CloudWatch takes 1 to 1,024 characters: an empty
    /// value is written `-`, a longer one cut).
    pub fn dimension(mut self, key: &'static str, value: &str) -> Document {
        let value: String = if value.is_empty() {
            "-".to_owned()
        } else {
            value.chars().take(DIMENSION_VALUE_MAX).collect()
        };
        self.dimensions.push((key, value));
        self
    }

    /// Adds a metric.
    pub fn metric(mut self, name: &'static str, unit: Unit, value: u64) -> Document {
        self.metrics.push(Metric { name, unit, value });
        self
    }

    /// Adds a property: a root member that is no metric and no dimension.
    pub fn property(mut self, key: &str, value: Value) -> Document {
        self.properties.insert(key.to_owned(), value);
        self
    }

    /// The metrics, by name, for tests and reports.
    pub fn value(&self, name: &str) -> Option<u64> {
        self.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// The document as the JSON object CloudWatch Logs reads.
    pub fn to_json(&self) -> Value {
        let mut root = self.properties.clone();
        let definitions: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| json!({"Name": m.name, "Unit": m.unit.name()}))
            .collect();
        let keys: Vec<&str> = self.dimensions.iter().map(|(k, _)| *k).collect();
        for (key, value) in &self.dimensions {
            root.insert((*key).to_owned(), json!(value));
        }
        for m in &self.metrics {
            root.insert(m.name.to_owned(), json!(m.value));
        }
        root.insert(
            "_aws".to_owned(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [keys],
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root)
    }
}

/// Where an app's metric documents go.
#[derive(Debug, Clone, Default)]
pub enum MetricsSink {
    /// Nowhere (tests, `lbgpctl`: their stdout is someone's terminal).
    #[default]
    Off,
    /// One line each on stdout: the Lambda function's log stream.
    Stdout {
        /// The `level` member of each line.
        level: String,
    },
    /// Kept in memory, one JSON line each, for tests.
    Memory(Arc<Mutex<Vec<String>>>),
}

impl MetricsSink {
    /// Stdout, each line at the level Lambda's log filter keeps.
    pub fn stdout() -> MetricsSink {
        let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
            .ok()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| "INFO".to_owned());
        MetricsSink::Stdout { level }
    }

    /// A memory sink and the lines it receives.
    pub fn memory() -> (MetricsSink, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (MetricsSink::Memory(lines.clone()), lines)
    }

    /// Writes `documents`, one line each. A failed write is logged: metrics
    /// never fail an invocation.
    pub fn write(&self, documents: &[Document]) {
        match self {
            MetricsSink::Off => {}
            MetricsSink::Stdout { level } => {
                let mut text = String::new();
                for d in documents {
                    let mut line = d.to_json();
                    if let Value::Object(root) = &mut line {
                        root.insert("level".to_owned(), json!(level));
                    }
                    text.push_str(&line.to_string());
                    text.push('\n');
                }
                // One write under the lock: no log line of another thread
                // lands inside a document.
                let mut out = std::io::stdout().lock();
                if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                    tracing::warn!(error = %e, "metrics not written");
                }
            }
            MetricsSink::Memory(lines) => {
                let mut lines = lines.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                lines.extend(documents.iter().map(|d| d.to_json().to_string()));
            }
        }
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// When the event that triggered an invocation happened: its EventBridge
/// `time` (milliseconds since the epoch), also inside an SQS delivery and a
/// Lambda on-failure record; `None` for a manual invoke.
pub fn event_time_ms(payload: &Value) -> Option<u64> {
    if let Some(body) = payload.pointer("/Records/0/body").and_then(Value::as_str) {
        let inner: Value = serde_json::from_str(body).ok()?;
        return match inner.get("requestPayload") {
            Some(original) if inner.get("requestContext").is_some() => event_time_ms(original),
            _ => event_time_ms(&inner),
        };
    }
    let time = payload.get("time")?.as_str()?;
    let millis = DateTime::from_str(time, Format::DateTimeWithOffset)
        .ok()?
        .to_millis()
        .ok()?;
    u64::try_from(millis).ok()
}

/// What one invocation did, as its metrics see it.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// The function.
    pub function: &'a str,
    /// The mesh (`LBGP_MESH`).
    pub mesh: &'a str,
    /// The request id (the lease holder).
    pub request_id: &'a str,
    /// Its response, or the error type of a failed invocation.
    pub outcome: Result<&'a InvokeResponse, &'a str>,
    /// When it started (milliseconds since the epoch).
    pub started_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// EC2 requests sent during it, retries included.
    pub ec2_calls: u64,
    /// AWS answers that were throttling errors during it.
    pub throttled: u64,
    /// When its triggering event happened (milliseconds since the epoch).
    pub event_ms: Option<u64>,
}

fn text<'v>(entry: &'v Value, key: &str) -> &'v str {
    entry.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Invocation<'_> {
    /// From the event (or, without one, the invocation's start) to the
    /// acknowledgement of a group's last route move, for a group that moved
    /// routes `last_write_ms` after the start.
    fn event_to_write(&self, last_write_ms: u64) -> u64 {
        let from = self.event_ms.unwrap_or(self.started_ms);
        (self.started_ms + last_write_ms).saturating_sub(from)
    }

    /// The invocation's documents: one with dimensions function and mesh,
    /// and for the watcher one per group that failed over, failed back,
    /// found no healthy member or moved routes (dimensions function, mesh,
    /// group).
    pub fn documents(&self, timestamp_ms: u64) -> Vec<Document> {
        let base = || {
            Document::new(timestamp_ms)
                .dimension(DIM_FUNCTION, self.function)
                .dimension(DIM_MESH, self.mesh)
                .property("request_id", json!(self.request_id))
        };
        let mut doc = base()
            .metric("Invocations", Unit::Count, 1)
            .metric("Duration", Unit::Milliseconds, self.duration_ms)
            .metric("Ec2Calls", Unit::Count, self.ec2_calls)
            .metric("ThrottledCalls", Unit::Count, self.throttled);
        let response = match self.outcome {
            Ok(response) => response,
            Err(error_type) => {
                let doc = doc
                    .metric("Errors", Unit::Count, 1)
                    .property("error_type", json!(error_type));
                return vec![doc];
            }
        };
        let len = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let changes = len(response.changes_total.unwrap_or(response.changes.len()));
        let ops = |op: &str| len(response.changes.iter().filter(|c| c.op == op).count());
        let written = !response.dry_run && response.refused.is_none();
        doc = doc
            .property("trigger", json!(response.trigger))
            .property("dry_run", json!(response.dry_run))
            .metric(
                "RoutesCreated",
                Unit::Count,
                if written { ops("create") } else { 0 },
            )
            .metric(
                "RoutesReplaced",
                Unit::Count,
                if written { ops("replace") } else { 0 },
            )
            .metric(
                "RoutesDeleted",
                Unit::Count,
                if written { ops("delete") } else { 0 },
            )
            .metric("RoutesChanged", Unit::Count, if written { changes } else { 0 })
            .metric("ChangesPlanned", Unit::Count, if written { 0 } else { changes })
            .metric(
                "Conflicts",
                Unit::Count,
                len(response.conflicts_total.unwrap_or(response.conflicts.len())),
            )
            .metric("RefusedPlans", Unit::Count, u64::from(response.refused.is_some()))
            .metric("Skipped", Unit::Count, len(response.skipped.len()))
            .metric("Errors", Unit::Count, len(response.errors.len()))
            .metric("Deferred", Unit::Count, len(response.deferred))
            .metric("Locked", Unit::Count, u64::from(response.locked));
        if response.groups.is_empty() {
            return vec![doc];
        }
        let mut totals = [0u64; 3];
        let mut slowest: Option<u64> = None;
        let mut groups = Vec::new();
        for g in &response.groups {
            let decision = text(g, "decision");
            let counts = [
                u64::from(decision == "failover" && written),
                u64::from(decision == "failback" && written),
                u64::from(decision == "no_healthy_member"),
            ];
            for (total, n) in totals.iter_mut().zip(counts) {
                *total += n;
            }
            let moved = g.get("routes_moved").and_then(Value::as_u64).unwrap_or(0);
            let latency = g
                .get("last_write_ms")
                .and_then(Value::as_u64)
                .map(|ms| self.event_to_write(ms));
            if let Some(ms) = latency {
                slowest = Some(slowest.map_or(ms, |s| s.max(ms)));
            }
            if counts.iter().all(|n| *n == 0) && moved == 0 {
                continue;
            }
            let scope = format!("{}#{}", text(g, "region"), text(g, "group"));
            let mut group = base()
                .dimension(DIM_GROUP, &scope)
                .property("decision", json!(decision))
                .metric("Failovers", Unit::Count, counts[0])
                .metric("Failbacks", Unit::Count, counts[1])
                .metric("NoHealthyMember", Unit::Count, counts[2])
                .metric("RoutesMoved", Unit::Count, moved);
            if let Some(ms) = latency {
                group = group.metric("EventToLastWrite", Unit::Milliseconds, ms);
            }
            groups.push(group);
        }
        doc = doc
            .metric("Failovers", Unit::Count, totals[0])
            .metric("Failbacks", Unit::Count, totals[1])
            .metric("NoHealthyMember", Unit::Count, totals[2]);
        if let Some(ms) = slowest {
            doc = doc.metric("EventToLastWrite", Unit::Milliseconds, ms);
        }
        let mut all = vec![doc];
        all.extend(groups);
        all
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use lbgp_core::report::{ChangeReport, ConflictReport};

    /// CloudWatch's `MetricDatum` units, the values EMF's `Unit` takes.
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    fn only_keys(object: &Map<String, Value>, allowed: &[&str], what: &str) {
        for key in object.keys() {
            assert!(
                allowed.contains(&key.as_str()),
                "{what} has a member {key:?} the spec does not define"
            );
        }
    }

    /// One metric value found in a document: its dimension values, its
    /// name, its value.
    type Found = (Vec<(String, String)>, String, f64);

    /// Checks one log line against the EMF specification's MUSTs; returns
    /// the metric values found, by dimension values and name.
    fn check_emf(line: &str) -> Vec<Found> {
        assert!(line.len() <= 1024 * 1024, "an EMF event is at most 1 MB");
        assert!(!line.contains('\n'), "one log event per line");
        let root: Value = serde_json::from_str(line).expect("the log event message is a JSON object");
        let root = root.as_object().expect("the root node is an object");
        let meta = root["_aws"].as_object().expect("_aws is an object");
        only_keys(meta, &["Timestamp", "CloudWatchMetrics"], "_aws");
        assert!(
            meta["Timestamp"].as_u64().is_some(),
            "Timestamp: milliseconds since the epoch"
        );
        let directives = meta["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics is an array");
        let mut found = Vec::new();
        for d in directives {
            let d = d.as_object().expect("a MetricDirective is an object");
            only_keys(d, &["Namespace", "Dimensions", "Metrics"], "MetricDirective");
            let ns = d["Namespace"].as_str().expect("Namespace is a string");
            assert!(!ns.is_empty() && ns.len() <= 1024);
            let metrics = d["Metrics"].as_array().expect("Metrics is an array");
            assert!(metrics.len() <= 100, "at most 100 metrics per directive");
            for set in d["Dimensions"]
                .as_array()
                .expect("Dimensions is an array of sets")
            {
                let set = set.as_array().expect("a DimensionSet is an array");
                assert!(set.len() <= 30, "at most 30 dimensions per set");
                let mut dims = Vec::new();
                for key in set {
                    let key = key.as_str().expect("dimension keys are strings");
                    let value = root
                        .get(key)
                        .unwrap_or_else(|| panic!("dimension {key} has no root member"))
                        .as_str()
                        .unwrap_or_else(|| panic!("dimension {key}'s value is not a string"));
                    assert!((1..=1024).contains(&value.chars().count()));
                    dims.push((key.to_owned(), value.to_owned()));
                }
                for m in metrics {
                    let m = m.as_object().expect("a MetricDefinition is an object");
                    only_keys(m, &["Name", "Unit", "StorageResolution"], "MetricDefinition");
                    let name = m["Name"].as_str().expect("Name is a string");
                    assert!((1..=1024).contains(&name.len()));
                    if let Some(unit) = m.get("Unit") {
                        assert!(UNITS.contains(&unit.as_str().unwrap()), "unit {unit}");
                    }
                    if let Some(r) = m.get("StorageResolution") {
                        assert!(r == 1 || r == 60);
                    }
                    assert!(
                        !set.iter().any(|k| k == name),
                        "{name} is both a metric and a dimension"
                    );
                    let value = match &root[name] {
                        Value::Number(n) => n.as_f64().unwrap(),
                        Value::Array(values) => {
                            assert!(values.len() <= 100);
                            values.iter().map(|v| v.as_f64().unwrap()).sum()
                        }
                        other => panic!("metric {name}'s value {other} is not a number"),
                    };
                    found.push((dims.clone(), name.to_owned(), value));
                }
            }
            assert_eq!(ns, NAMESPACE);
        }
        found
    }

    fn change(op: &str) -> ChangeReport {
        ChangeReport {
            op: op.into(),
            region: "eu-west-1".into(),
            route_table_id: "rtb-1".into(),
            destination: "10.0.0.0/8".into(),
            target: "tgw-1".into(),
            previous_target: None,
            reason: "r".into(),
            account: None,
        }
    }

    fn invocation(response: &InvokeResponse) -> Invocation<'_> {
        Invocation {
            function: "failover-watcher",
            mesh: "prod",
            request_id: "req-1",
            outcome: Ok(response),
            started_ms: 1_790_000_000_000,
            duration_ms: 420,
            ec2_calls: 7,
            throttled: 1,
            event_ms: Some(1_789_999_999_000),
        }
    }

    fn lines(documents: &[Document]) -> Vec<String> {
        let (sink, lines) = MetricsSink::memory();
        sink.write(documents);
        lines.lock().unwrap().clone()
    }

    #[test]
    fn an_applied_run_is_valid_emf_with_the_routes_it_changed() {
        let mut response = InvokeResponse::new("vpc-route-injector", "scheduled", false);
        response.applied = true;
        response.changes = vec![
            change("create"),
            change("create"),
            change("replace"),
            change("delete"),
        ];
        response.conflicts = vec![ConflictReport {
            region: "eu-west-1".into(),
            route_table_id: None,
            destination: "10.0.0.0/8".into(),
            wanted: None,
            held_by: vec!["tgw-a".into(), "tgw-b".into()],
            reason: "contested".into(),
            account: None,
        }];
        let mut inv = invocation(&response);
        inv.function = "vpc-route-injector";
        let lines = lines(&inv.documents(1));
        assert_eq!(lines.len(), 1);
        let metrics = check_emf(&lines[0]);
        let dims = vec![
            ("function".to_owned(), "vpc-route-injector".to_owned()),
            ("mesh".to_owned(), "prod".to_owned()),
        ];
        let get = |name: &str| {
            metrics
                .iter()
                .find(|(d, n, _)| *d == dims && n == name)
                .map(|(_, _, v)| *v)
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(get("RoutesCreated"), 2.0);
        assert_eq!(get("RoutesReplaced"), 1.0);
        assert_eq!(get("RoutesDeleted"), 1.0);
        assert_eq!(get("ChangesPlanned"), 0.0);
        assert_eq!(get("Conflicts"), 1.0);
        assert_eq!(get("Ec2Calls"), 7.0);
        assert_eq!(get("ThrottledCalls"), 1.0);
        assert_eq!(get("Duration"), 420.0);
        // No watcher metrics outside the watcher.
        assert!(!metrics.iter().any(|(_, n, _)| n == "Failovers"));
    }

    #[test]
    fn a_dry_run_plans_and_writes_no_route() {
        let mut response = InvokeResponse::new("vpc-route-injector", "manual", true);
        response.changes = vec![change("create"); 3];
        response.refused = Some("3 changes exceed LBGP_MAX_CHANGES=2".into());
        let lines = lines(&invocation(&response).documents(1));
        let metrics = check_emf(&lines[0]);
        let get = |name: &str| metrics.iter().find(|(_, n, _)| n == name).unwrap().2;
        assert_eq!(get("RoutesCreated"), 0.0);
        assert_eq!(get("ChangesPlanned"), 3.0);
        assert_eq!(get("RefusedPlans"), 1.0);
    }

    #[test]
    fn the_watcher_reports_each_group_that_acted_and_the_time_to_its_last_write() {
        let mut response = InvokeResponse::new("failover-watcher", "state_change:stopped", false);
        response.applied = true;
        response.changes = vec![change("replace"); 4];
        response.groups = vec![
            json!({"group": "vpn", "region": "eu-west-1", "decision": "failover", "routes_moved": 4, "last_write_ms": 380}),
            json!({"group": "edge", "region": "eu-west-1", "decision": "no_healthy_member", "routes_moved": 0}),
            json!({"group": "quiet", "region": "us-east-1", "decision": "none", "routes_moved": 0}),
        ];
        let lines = lines(&invocation(&response).documents(1));
        assert_eq!(lines.len(), 3, "the run, and the two groups that acted");
        let all: Vec<_> = lines.iter().flat_map(|l| check_emf(l)).collect();
        let get = |group: Option<&str>, name: &str| {
            all.iter()
                .find(|(d, n, _)| {
                    n == name && d.iter().find(|(k, _)| k == "group").map(|(_, v)| v.as_str()) == group
                })
                .map(|(_, _, v)| *v)
        };
        assert_eq!(get(None, "Failovers"), Some(1.0));
        assert_eq!(get(None, "NoHealthyMember"), Some(1.0));
        assert_eq!(get(Some("eu-west-1#vpn"), "Failovers"), Some(1.0));
        assert_eq!(get(Some("eu-west-1#vpn"), "RoutesMoved"), Some(4.0));
        // The event came 1 s before the start; the last move 380 ms after it.
        assert_eq!(get(Some("eu-west-1#vpn"), "EventToLastWrite"), Some(1380.0));
        assert_eq!(get(None, "EventToLastWrite"), Some(1380.0));
        assert_eq!(get(Some("eu-west-1#edge"), "NoHealthyMember"), Some(1.0));
        assert_eq!(get(Some("eu-west-1#edge"), "EventToLastWrite"), None);
        assert_eq!(get(Some("us-east-1#quiet"), "Failovers"), None);
    }

    #[test]
    fn a_failed_invocation_counts_as_an_error() {
        let response = InvokeResponse::default();
        let mut inv = invocation(&response);
        inv.outcome = Err("lbgp.Aws.Retryable");
        let lines = lines(&inv.documents(1));
        let metrics = check_emf(&lines[0]);
        assert_eq!(metrics.iter().find(|(_, n, _)| n == "Errors").unwrap().2, 1.0);
        let root: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(root["error_type"], "lbgp.Aws.Retryable");
    }

    #[test]
    fn dimension_values_stay_within_cloudwatchs_limits() {
        let doc = Document::new(1)
            .dimension(DIM_FUNCTION, "")
            .dimension(DIM_MESH, &"m".repeat(2000))
            .metric("Invocations", Unit::Count, 1);
        check_emf(&doc.to_json().to_string());
    }

    #[test]
    fn event_times_are_read_from_events_and_their_envelopes() {
        let event =
            json!({"detail-type": "EC2 Instance State-change Notification", "time": "2026-11-22T10:05:00Z"});
        let at = 1_795_341_900_000;
        assert_eq!(event_time_ms(&event), Some(at));
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": event.to_string()}]});
        assert_eq!(event_time_ms(&sqs), Some(at));
        let failed = json!({"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event});
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": failed.to_string()}]});
        assert_eq!(event_time_ms(&sqs), Some(at));
        assert_eq!(event_time_ms(&json!({"dry_run": true})), None);
    }

    /// Every metric name the documents of `responses` define.
    fn emitted(responses: &[InvokeResponse]) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for response in responses {
            for doc in invocation(response).documents(1) {
                names.extend(doc.metrics.iter().map(|m| m.name.to_owned()));
            }
        }
        names
    }

    /// The names of the `lbgp` metrics `template.yaml` charts and alarms
    /// on: dashboard rows `["lbgp", "<name>", …]` and `[".", "<name>", …]`,
    /// `SEARCH(… MetricName=\"<name>\" …)` and alarms' `MetricName: <name>`
    /// under `Namespace: lbgp`.
    fn charted(template: &str) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        // `"."` repeats the row above's name.
        let second = |row: &str| row.split('"').nth(3).filter(|n| *n != ".").map(str::to_owned);
        let mut in_lbgp = false;
        for line in template.lines().map(str::trim) {
            if line.starts_with("[\"lbgp\", \"") || line.starts_with("[\".\", \"") {
                names.extend(second(line));
            }
            if let Some((_, rest)) = line.split_once("MetricName=\\\"") {
                names.extend(rest.split('\\').next().map(str::to_owned));
            }
            if let Some(ns) = line.strip_prefix("Namespace: ") {
                in_lbgp = ns == NAMESPACE;
            } else if let Some(name) = line.strip_prefix("MetricName: ")
                && in_lbgp
            {
                names.insert(name.to_owned());
            }
        }
        names
    }

    #[test]
    fn the_dashboard_and_the_alarms_use_metrics_that_are_emitted() {
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
            .expect("template.yaml");
        let charted = charted(&template);
        let mut watcher = InvokeResponse::new("failover-watcher", "scheduled", false);
        watcher.groups = vec![
            json!({"group": "vpn", "region": "eu-west-1", "decision": "failover",
            "routes_moved": 1, "last_write_ms": 5}),
        ];
        let emitted = emitted(&[
            InvokeResponse::new("vpc-route-injector", "scheduled", false),
            watcher,
        ]);
        for name in [
            "RefusedPlans",
            "Conflicts",
            "NoHealthyMember",
            "Errors",
            "RoutesMoved",
            "EventToLastWrite",
        ] {
            assert!(
                charted.contains(name),
                "template.yaml does not chart {name}: {charted:?}"
            );
        }
        let unknown: Vec<&String> = charted.difference(&emitted).collect();
        assert!(
            unknown.is_empty(),
            "template.yaml charts metrics lbgp never emits: {unknown:?}"
        );
    }
}
