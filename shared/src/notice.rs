//! Notifications: one body per kind of event, for every function, and a
//! rendering that always fits SNS's message limit.
//!
//! Kinds (`event` in the body): `plan_applied`, `plan_refused`,
//! `conflicts_changed`, `peering_unassociated`, and the failover watcher's
//! `failover`, `failback`, `no_healthy_member`, `drift_repaired`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::plan::Change;
use crate::report::{ChangeReport, ConflictReport, ErrorReport};

/// SNS `Publish` takes messages of at most 256 KiB (262,144 bytes).
pub const SNS_MESSAGE_LIMIT: usize = 262_144;

/// A notification: a subject line and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// One line (SNS cuts subjects to 100 characters; the notifier does).
    pub subject: String,
    /// The body: `function`, `event`, and what happened.
    pub body: Value,
}

/// Counts of changes per operation and region: what a summary keeps.
pub fn count_by_op_and_region<'a>(
    changes: impl IntoIterator<Item = &'a ChangeReport>,
) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for c in changes {
        *counts
            .entry(c.op.clone())
            .or_default()
            .entry(c.region.clone())
            .or_default() += 1;
    }
    counts
}

fn base(function: &str, event: &str, trigger: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("function".into(), json!(function));
    body.insert("event".into(), json!(event));
    body.insert("trigger".into(), json!(trigger));
    body
}

/// A plan refused by the blast-radius guard (or a quota).
pub fn plan_refused(
    function: &str,
    trigger: &str,
    scope: Option<&str>,
    reason: &str,
    changes: &[Change],
) -> Notice {
    let reports: Vec<ChangeReport> = changes.iter().map(ChangeReport::from).collect();
    let mut body = base(function, "plan_refused", trigger);
    if let Some(scope) = scope {
        body.insert("scope".into(), json!(scope));
    }
    body.insert("reason".into(), json!(reason));
    body.insert("changes_total".into(), json!(reports.len()));
    body.insert(
        "changes_by_op_and_region".into(),
        json!(count_by_op_and_region(&reports)),
    );
    body.insert("changes".into(), json!(reports));
    Notice {
        subject: format!("lbgp {function}: plan of {} changes refused", changes.len()),
        body: Value::Object(body),
    }
}

/// A plan applied: the changes made and the failures.
pub fn plan_applied(
    function: &str,
    trigger: &str,
    changes: &[ChangeReport],
    errors: &[ErrorReport],
) -> Notice {
    let mut body = base(function, "plan_applied", trigger);
    body.insert("changes_total".into(), json!(changes.len()));
    body.insert(
        "changes_by_op_and_region".into(),
        json!(count_by_op_and_region(changes)),
    );
    body.insert("changes".into(), json!(changes));
    body.insert("errors".into(), json!(errors));
    Notice {
        subject: format!("lbgp {function}: {} route changes applied", changes.len()),
        body: Value::Object(body),
    }
}

/// The set of conflicts changed since the last run.
pub fn conflicts_changed(function: &str, trigger: &str, conflicts: &[ConflictReport]) -> Notice {
    let mut body = base(function, "conflicts_changed", trigger);
    body.insert("conflicts_total".into(), json!(conflicts.len()));
    body.insert("conflicts".into(), json!(conflicts));
    Notice {
        subject: format!("lbgp {function}: {} conflicting routes", conflicts.len()),
        body: Value::Object(body),
    }
}

/// The set of peering attachments with no route table on a side changed:
/// traffic arriving over them is dropped.
pub fn peering_unassociated(function: &str, trigger: &str, attachments: &[String]) -> Notice {
    let mut body = base(function, "peering_unassociated", trigger);
    body.insert("attachments_total".into(), json!(attachments.len()));
    body.insert("attachments".into(), json!(attachments));
    body.insert(
        "what_to_do".into(),
        json!("associate each side with a TGW route table (AssociateTransitGatewayRouteTable); lbgp does not change associations"),
    );
    Notice {
        subject: format!(
            "lbgp {function}: {} peering attachments associated with no route table",
            attachments.len()
        ),
        body: Value::Object(body),
    }
}

/// A failover group's decision (failover, failback, no healthy member, a
/// drift repaired): `fields` are the decision's own (group, region, from,
/// to, reason…), `changes` the routes moved.
pub fn group_decision(
    function: &str,
    trigger: &str,
    event: &str,
    subject: String,
    fields: Map<String, Value>,
    changes: &[ChangeReport],
    errors: &[ErrorReport],
) -> Notice {
    let mut body = base(function, event, trigger);
    body.extend(fields);
    body.insert("routes_moved".into(), json!(changes.len()));
    body.insert("changes".into(), json!(changes));
    body.insert("errors".into(), json!(errors));
    Notice {
        subject,
        body: Value::Object(body),
    }
}

impl Notice {
    /// The message, pretty-printed, within `limit` bytes: when the whole
    /// body does not fit, its longest lists are cut (keeping their first
    /// entries) until it does, and `truncated` says where the full lists
    /// are. Counts (`changes_total`, `changes_by_op_and_region`…) are kept
    /// whole, so a summary still says what happened.
    pub fn render(&self, limit: usize) -> String {
        let whole = pretty(&self.body);
        if whole.len() <= limit {
            return whole;
        }
        let Value::Object(mut body) = self.body.clone() else {
            return whole.chars().take(limit).collect();
        };
        body.insert(
            "truncated".into(),
            json!("lists cut to fit the SNS message limit; every change is in the function's logs, one JSON line each"),
        );
        loop {
            let text = pretty(&Value::Object(body.clone()));
            if text.len() <= limit {
                return text;
            }
            let longest = body
                .iter()
                .filter_map(|(k, v)| v.as_array().map(|a| (a.len(), k.clone())))
                .filter(|(n, _)| *n > 0)
                .max();
            let Some((n, key)) = longest else {
                // Nothing left to cut: the scalars alone are over the
                // limit, which no body of ours is; cut the text.
                return text.chars().take(limit).collect();
            };
            if let Some(Value::Array(list)) = body.get_mut(&key) {
                list.truncate(n / 2);
            }
        }
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn change(n: usize) -> ChangeReport {
        ChangeReport {
            op: "create".into(),
            region: if n.is_multiple_of(2) {
                "eu-west-1"
            } else {
                "us-east-1"
            }
            .into(),
            route_table_id: format!("rtb-{n:08}"),
            destination: "10.0.0.0/8".into(),
            target: "tgw-0123456789abcdef0".into(),
            previous_target: None,
            reason: "desired route is missing".into(),
            account: None,
        }
    }

    #[test]
    fn a_huge_plan_is_summarised_within_the_sns_limit() {
        let changes: Vec<ChangeReport> = (0..48_000).map(change).collect();
        let notice = plan_applied("vpc-route-injector", "scheduled", &changes, &[]);
        assert!(pretty(&notice.body).len() > SNS_MESSAGE_LIMIT);
        let text = notice.render(SNS_MESSAGE_LIMIT);
        assert!(text.len() <= SNS_MESSAGE_LIMIT, "{}", text.len());
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["changes_total"], 48_000);
        assert_eq!(body["changes_by_op_and_region"]["create"]["eu-west-1"], 24_000);
        let kept = body["changes"].as_array().unwrap().len();
        assert!(kept > 100 && kept < 48_000, "{kept}");
        assert!(body["truncated"].is_string());
        // A small one is left whole.
        let small = plan_applied("vpc-route-injector", "scheduled", &changes[..3], &[]);
        let body: Value = serde_json::from_str(&small.render(SNS_MESSAGE_LIMIT)).unwrap();
        assert_eq!(body["changes"].as_array().unwrap().len(), 3);
        assert!(body.get("truncated").is_none());
    }
}
