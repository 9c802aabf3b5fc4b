//! A group's decision as the loop's plan: the moves, the state to save
//! first, the group's entry of the response (public contract: `group`,
//! `vpc`, `active`, `decision`, `failed`), its notification and its log
//! line. Each says which source failed: the state, a status check, or which
//! alarm and CloudWatch's reason.

use std::collections::{BTreeMap, BTreeSet};

use lbgp_core::failover::{Decision, DecisionKind, FailedMember, GroupState};
use lbgp_core::report::ErrorReport;
use lbgp_runtime::apply::StateRecord;
use lbgp_runtime::reconcile::DecisionNotice;
use lbgp_runtime::{UnitPlan, Writes};
use serde_json::{Map, Value, json};

use lbgp_core::accounts::{AccountId, TableOwners};

use crate::{FUNCTION, GroupKey, STATE_RECORD};

fn entry_base(key: &GroupKey) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("group".into(), json!(key.name));
    entry.insert("region".into(), json!(key.region));
    if let Some((_, account)) = &key.account {
        entry.insert("account".into(), json!(account));
    }
    entry
}

/// The tables a plan of a member account's group writes: all `account`'s
/// (a group's routes are in its members' VPC).
pub fn tables_of(plan: &UnitPlan, home: &AccountId, account: &AccountId) -> TableOwners {
    let mut tables = TableOwners::new(home.clone());
    for c in &plan.changes {
        tables.insert(c.key.table.clone(), account.clone());
    }
    if let Writes::Moved { lists, .. } = &plan.writes {
        for l in lists {
            tables.insert(l.table.clone(), account.clone());
        }
    }
    tables
}

fn empty(report: Option<Map<String, Value>>, errors: Vec<ErrorReport>) -> UnitPlan {
    UnitPlan {
        changes: vec![],
        writes: Writes::Moved {
            state: None,
            unsettled: None,
            settled: None,
            lists: vec![],
        },
        conflicts: vec![],
        skipped: vec![],
        errors,
        unassociated: vec![],
        report,
        headline: false,
        notice: None,
        tables: None,
    }
}

/// A group that could not be evaluated: reported, nothing moved.
pub fn failed(key: &GroupKey, before: &GroupState, error: String) -> UnitPlan {
    tracing::error!(group = %key.name, region = %key.region, error = %error, "group not evaluated");
    let mut entry = entry_base(key);
    entry.insert("vpc".into(), json!(key.vpc));
    entry.insert("active".into(), json!(before.active));
    entry.insert("decision".into(), json!(DecisionKind::None));
    entry.insert("reason".into(), json!("not evaluated"));
    entry.insert("routes_moved".into(), json!(0));
    entry.insert("error".into(), json!(error));
    let errors = vec![ErrorReport {
        region: key.region.to_string(),
        resource: Some(format!("failover group {}", key.name)),
        error,
        account: None,
    }];
    empty(Some(entry), errors)
}

/// A group gone between two passes (untagged, terminated): nothing to do.
pub fn gone() -> UnitPlan {
    empty(None, vec![])
}

/// The entry of a group another run holds the lease of.
pub fn locked(key: &GroupKey, holder: &str) -> Map<String, Value> {
    let mut entry = entry_base(key);
    entry.insert("vpc".into(), json!(key.vpc));
    entry.insert("active".into(), Value::Null);
    entry.insert("decision".into(), json!(DecisionKind::Locked));
    entry.insert(
        "reason".into(),
        json!(format!(
            "another run ({holder}) holds the group's lease; it evaluates the group again before letting go"
        )),
    );
    entry.insert("routes_moved".into(), json!(0));
    entry
}

/// The plan of a decision.
pub fn plan(
    key: &GroupKey,
    scope: &str,
    d: Decision,
    before: &GroupState,
    warnings: Vec<String>,
    first_pass: bool,
) -> UnitPlan {
    let mut entry = entry_base(key);
    entry.insert("vpc".into(), json!(d.vpc_id));
    entry.insert("mode".into(), json!(d.mode));
    entry.insert("active".into(), json!(d.active));
    entry.insert("previous".into(), json!(d.previous));
    entry.insert("decision".into(), json!(d.kind));
    entry.insert("reason".into(), json!(d.reason));
    entry.insert("route_tables".into(), json!(d.targets));
    entry.insert("routes_managed".into(), json!(d.managed_routes));
    entry.insert("routes_moved".into(), json!(0));
    entry.insert("members".into(), json!(d.members));
    if !d.failed.is_empty() {
        entry.insert("failed".into(), json!(d.failed));
    }
    if let Some(p) = &d.pending_failback {
        entry.insert("failback_pending".into(), json!(p));
    }
    if !warnings.is_empty() {
        entry.insert("warnings".into(), json!(warnings));
    }
    let record = |state: &GroupState| StateRecord {
        name: STATE_RECORD.to_owned(),
        body: serde_json::to_value(state).unwrap_or(Value::Null),
    };
    let state = d.state_changed(before).then(|| record(&d.state));
    // Cut by the deadline, the moves not made are work left: no settling.
    let unsettled = (!d.moves.is_empty() || !d.list_moves.is_empty()).then(|| {
        record(&GroupState {
            moved_at: None,
            ..d.state.clone()
        })
    });
    let settled = d.settled.as_ref().map(record);
    let notice = d.notify.then(|| notice(key, &d));
    tracing::debug!(scope, "group decided");
    UnitPlan {
        changes: d.moves,
        writes: Writes::Moved {
            state,
            unsettled,
            settled,
            lists: d.list_moves,
        },
        conflicts: vec![],
        skipped: vec![],
        errors: vec![],
        unassociated: vec![],
        report: Some(entry),
        // A later pass tells the story when it changed members.
        headline: first_pass || d.kind != DecisionKind::None,
        notice,
        tables: None,
    }
}

fn notice(key: &GroupKey, d: &Decision) -> DecisionNotice {
    let event = match d.kind {
        DecisionKind::None => "drift_repaired".to_owned(),
        kind => kind.to_string(),
    };
    let from = d.previous.as_deref().unwrap_or("-");
    let to = match d.kind {
        DecisionKind::NoHealthyMember => "-",
        _ => d.active.as_deref().unwrap_or("-"),
    };
    let tables: BTreeMap<&str, &str> = d
        .moves
        .iter()
        .map(|c| c.key.table.id.as_str())
        .chain(d.list_moves.iter().map(|l| l.table.id.as_str()))
        .filter_map(|id| d.targets.get(id).map(|m| (id, m.as_str())))
        .collect();
    let mut fields = Map::new();
    fields.insert("group".into(), json!(key.name));
    fields.insert("region".into(), json!(key.region));
    fields.insert("vpc".into(), json!(d.vpc_id));
    fields.insert("from".into(), json!(d.previous));
    fields.insert(
        "to".into(),
        if d.kind == DecisionKind::NoHealthyMember {
            Value::Null
        } else {
            json!(d.active)
        },
    );
    fields.insert("route_tables".into(), json!(tables));
    fields.insert("reason".into(), json!(d.reason));
    if !d.failed.is_empty() {
        fields.insert("failed".into(), json!(d.failed));
    }
    if !d.list_moves.is_empty() {
        fields.insert("prefix_list_moves".into(), json!(d.list_moves));
    }
    fields.insert("members".into(), json!(d.members));
    DecisionNotice {
        subject: format!(
            "lbgp {FUNCTION}: {} {event} {from} -> {to} ({})",
            key.name, key.region
        ),
        event,
        fields,
    }
}

/// One structured line per decision.
pub fn log(key: &GroupKey, plan: &UnitPlan, routes_moved: usize, planned_only: bool) {
    let Some(entry) = &plan.report else {
        return;
    };
    if entry.contains_key("error") && !entry.contains_key("mode") {
        // Not evaluated: already logged as an error.
        return;
    }
    let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let moved_tables: BTreeSet<&str> = plan
        .changes
        .iter()
        .map(|c| c.key.table.id.as_str())
        .chain(plan.list_moves().iter().map(|l| l.table.id.as_str()))
        .collect();
    let routes_managed = entry.get("routes_managed").and_then(Value::as_u64).unwrap_or(0);
    let cause = cause(entry.get("failed"));
    tracing::info!(
        group = %key.name,
        region = %key.region,
        vpc = %text("vpc"),
        decision = %text("decision"),
        from = %text("previous"),
        to = %text("active"),
        routes_managed,
        routes_planned = plan.changes.len() + plan.list_moves().len(),
        routes_moved,
        route_tables = ?moved_tables,
        planned_only,
        cause = %cause,
        reason = %text("reason"),
        "failover decision"
    );
}

/// The sources that failed, in one line: `i-… alarm vpn-a ALARM: …`.
fn cause(failed: Option<&Value>) -> String {
    let failed: Vec<FailedMember> = failed
        .and_then(|f| serde_json::from_value(f.clone()).ok())
        .unwrap_or_default();
    if failed.is_empty() {
        return "-".to_owned();
    }
    failed
        .iter()
        .map(|f| {
            let faults: Vec<String> = f.faults.iter().map(ToString::to_string).collect();
            format!("{} {}", f.instance_id, faults.join("; "))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
