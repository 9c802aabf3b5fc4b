//! The invoke response every function returns: the public contract that
//! users' tooling reads. Field names here are never renamed.

use serde::{Deserialize, Serialize};

use crate::plan::{Change, Conflict};

/// One change made (or, in a dry run, that would be made).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChangeReport {
    /// `create`, `replace` or `delete`.
    pub op: String,
    /// Region of the table.
    pub region: String,
    /// VPC route table (`rtb-…`) or TGW route table (`tgw-rtb-…`).
    pub route_table_id: String,
    /// Destination CIDR.
    pub destination: String,
    /// The target after the change (for a delete, the target removed).
    pub target: String,
    /// The target before a replace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_target: Option<String>,
    /// Why.
    pub reason: String,
    /// The account of the table or resource, in a cross-account mesh
    /// (`LBGP_ACCOUNTS` set); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl From<&Change> for ChangeReport {
    fn from(c: &Change) -> Self {
        ChangeReport {
            op: c.op.to_string(),
            region: c.key.table.region.to_string(),
            route_table_id: c.key.table.id.clone(),
            destination: c.key.destination.to_string(),
            target: c.target.to_string(),
            previous_target: c.previous.as_ref().map(ToString::to_string),
            reason: c.reason.to_string(),
            account: None,
        }
    }
}

/// One check of a migration's preflight (public contract: the response's
/// `preflight` entries).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PreflightCheck {
    /// What was checked (`attached`, `aggregates`, `l_bgp_converged`,
    /// `mesh_path`, `legacy_group_healthy`).
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// A desired route not installed because something else holds it, or a
/// prefix that several origins claim.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConflictReport {
    /// Region of the table.
    pub region: String,
    /// The table, when the conflict is about one table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_table_id: Option<String>,
    /// The contested destination.
    pub destination: String,
    /// The target we wanted, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wanted: Option<String>,
    /// What holds the destination, or every origin claiming it.
    pub held_by: Vec<String>,
    /// Why nothing was installed.
    pub reason: String,
    /// The account of the table or resource, in a cross-account mesh
    /// (`LBGP_ACCOUNTS` set); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl From<&Conflict> for ConflictReport {
    fn from(c: &Conflict) -> Self {
        ConflictReport {
            region: c.key.table.region.to_string(),
            route_table_id: Some(c.key.table.id.clone()),
            destination: c.key.destination.to_string(),
            wanted: Some(c.wanted.to_string()),
            held_by: vec![c.held_by.to_string()],
            reason: format!(
                "destination held by a {} route we did not create; left untouched",
                match c.held_by_origin {
                    crate::model::RouteOrigin::Static => "static",
                    crate::model::RouteOrigin::Propagated => "propagated",
                    crate::model::RouteOrigin::Local => "local",
                }
            ),
            account: None,
        }
    }
}

/// Something deliberately not done, with the reason (a prefix inside a VPC's
/// own CIDR, a table tagged `lbgp:ignore`, …).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SkipReport {
    /// Region.
    pub region: String,
    /// The table or resource concerned.
    pub resource: String,
    /// The destination concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Why.
    pub reason: String,
    /// The account of the table or resource, in a cross-account mesh
    /// (`LBGP_ACCOUNTS` set); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// A failure confined to one region or table: the rest of the run went on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ErrorReport {
    /// Region.
    pub region: String,
    /// The table or resource concerned, if the failure is that narrow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What failed and what to do.
    pub error: String,
    /// The account of the table or resource, in a cross-account mesh
    /// (`LBGP_ACCOUNTS` set); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// The response of every invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvokeResponse {
    /// Which function answered.
    pub function: String,
    /// What triggered the run (`scheduled`, `api_call:CreateRoute`, `manual`…).
    pub trigger: String,
    /// True when nothing was written on purpose.
    pub dry_run: bool,
    /// True when the plan was applied (false in a dry run, when refused,
    /// ignored or locked).
    pub applied: bool,
    /// The changes made, or in a dry run the changes that would be made;
    /// `[]` when converged.
    pub changes: Vec<ChangeReport>,
    /// Desired routes not installed because something else holds them.
    pub conflicts: Vec<ConflictReport>,
    /// What was deliberately left alone, and why.
    #[serde(default)]
    pub skipped: Vec<SkipReport>,
    /// Failures confined to a region or table.
    #[serde(default)]
    pub errors: Vec<ErrorReport>,
    /// Set when the plan was refused whole (blast radius, quota).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Set when the payload is a well-formed event this function ignores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// Set when another run holds the lease: the work was recorded as
    /// pending and the holder runs it.
    #[serde(default)]
    pub locked: bool,
    /// Planned changes not started because the invocation's deadline (or
    /// its lease's end) came: left for the next run, which the lease's
    /// pending mark announces.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred: usize,
    /// The follow-up invocation a run that ran out of time sent to continue
    /// at once (its queue message id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
    /// AWS calls throttled during the run (retried by the SDK, which slowed
    /// down; lbgp's own pacing backed off too).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub throttled: u64,
    /// A migration's preflight checks (manual `migrate` invokes), each with
    /// what it found; a cutover or rollback runs only when all pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preflight: Vec<PreflightCheck>,
    /// Routes an `adopt` invoke records as ours (or would, in a dry run):
    /// the old tooling's routes that equal what the overlay wants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<ChangeReport>,
    /// Reconcile passes this invocation ran, over its units: 1 per unit for
    /// its own trigger, more when other triggers asked for work while it
    /// held the lease (those triggers' invocations report `locked` and 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub passes: usize,
    /// Set when `changes` or `conflicts` were cut to fit Lambda's 6 MB
    /// response limit: the full lists are in the logs, one JSON line each.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// With `truncated`: how many changes there are in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_total: Option<usize>,
    /// With `truncated`: how many conflicts there are in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts_total: Option<usize>,
    /// Failover groups (failover-watcher only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<serde_json::Value>,
    /// Prefix-list writes (`LBGP_ROUTE_STYLE=prefix-list`, or a switch
    /// back): applied, or planned in a dry run, with each entry change's
    /// added and removed CIDRs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_lists: Vec<crate::prefix_list::ListStep>,
    /// Wall time of the run.
    pub duration_ms: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Lambda's limit on a synchronous invocation's response: 6 MB.
pub const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// The response size kept under [`LAMBDA_RESPONSE_LIMIT`], with room for
/// the runtime's framing.
pub const RESPONSE_BUDGET: usize = LAMBDA_RESPONSE_LIMIT - 64 * 1024;

impl InvokeResponse {
    /// Cuts `changes` and `conflicts` (keeping their first entries, in
    /// order) until the response serialises within `limit` bytes, and says
    /// so with `truncated` and the full counts. Returns true when it cut.
    pub fn fit(&mut self, limit: usize) -> bool {
        let size = |r: &InvokeResponse| serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
        if size(self) <= limit {
            return false;
        }
        let (changes, conflicts) = (self.changes.len(), self.conflicts.len());
        self.truncated = true;
        self.changes_total = Some(changes);
        self.conflicts_total = Some(conflicts);
        while size(self) > limit && !(self.changes.is_empty() && self.conflicts.is_empty()) {
            if self.changes.len() >= self.conflicts.len() {
                self.changes.truncate(self.changes.len() / 2);
            } else {
                self.conflicts.truncate(self.conflicts.len() / 2);
            }
        }
        true
    }

    /// A response skeleton for `function` and `trigger`.
    pub fn new(function: &str, trigger: impl Into<String>, dry_run: bool) -> Self {
        InvokeResponse {
            function: function.to_owned(),
            trigger: trigger.into(),
            dry_run,
            ..Default::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_48000_route_dry_run_fits_lambdas_response_limit() {
        let mut response = InvokeResponse::new("vpc-route-injector", "manual", true);
        response.changes = (0..48_000)
            .map(|n| ChangeReport {
                op: "create".into(),
                region: "eu-west-1".into(),
                route_table_id: format!("rtb-{n:017x}"),
                destination: "172.16.0.0/12".into(),
                target: "tgw-0123456789abcdef0".into(),
                previous_target: None,
                reason: "desired route is missing".into(),
                account: None,
            })
            .collect();
        response.conflicts = (0..20_000)
            .map(|n| ConflictReport {
                region: "eu-west-1".into(),
                route_table_id: Some(format!("rtb-{n:017x}")),
                destination: "10.0.0.0/8".into(),
                wanted: Some("tgw-0123456789abcdef0".into()),
                held_by: vec!["i-0123456789abcdef0".into()],
                reason: "destination held by a static route we did not create; left untouched".into(),
                account: None,
            })
            .collect();
        let whole = serde_json::to_vec(&response).unwrap().len();
        assert!(whole > LAMBDA_RESPONSE_LIMIT, "{whole}");
        assert!(response.fit(RESPONSE_BUDGET));
        let text = serde_json::to_vec(&response).unwrap();
        assert!(text.len() <= RESPONSE_BUDGET, "{}", text.len());
        let back: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(back["truncated"], true);
        assert_eq!(back["changes_total"], 48_000);
        assert_eq!(back["conflicts_total"], 20_000);
        assert!(back["changes"].as_array().unwrap().len() > 10_000);
        // A small one is left as it is, without the new fields.
        let mut small = InvokeResponse::new("vpc-route-injector", "manual", true);
        assert!(!small.fit(RESPONSE_BUDGET));
        let back = serde_json::to_value(&small).unwrap();
        assert!(back.get("truncated").is_none() && back.get("changes_total").is_none());
    }
}
