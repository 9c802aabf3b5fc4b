//! Migration onto the mesh, one VPC at a time: the injector's **legacy
//! overlay** and the safe order of a cutover or rollback.
//!
//! - A VPC tagged `lbgp:migration=legacy` keeps its traffic on the legacy
//!   network: every route table of it gets, for every CIDR of every *other*
//!   legacy mesh VPC (any region), one route toward the member of its
//!   legacy group (`lbgp:legacy-group=<name>`: instances tagged
//!   `lbgp:failover-group=<name>` in that VPC) that serves the table. More
//!   specific than the mesh aggregates, those routes win while both exist.
//! - `lbgp:migration=migrated` VPCs get no overlay and appear in no one's;
//!   untagged VPCs are plain mesh members, as before.
//! - *Who serves a table* is what the failover-watcher decided for the
//!   group (its saved state: the active member, or in `az` mode the table's
//!   member); before the watcher has decided, the same rule applied to the
//!   members' health. So after a failover the injector finds every overlay
//!   route where the watcher moved it, and writes no route.
//! - Order: removing the overlay of a VPC (cutover) takes its own egress
//!   routes first, then its CIDRs out of the others' tables; adding it
//!   (rollback) puts its CIDRs in the others' tables first, then its own.
//!   [`stage`] assigns every change its stage; a run applies the earliest
//!   stage that has changes and plans again, so a crash in between resumes
//!   in order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::failover::{
    AlarmReading, FailoverMode, Group, GroupState, Member, groups_from_instances, table_zone,
};
use crate::model::{DesiredRoute, Region, RouteKey, RouteTableRef, RouteTarget, TableKind};
use crate::plan::{Change, ChangeOp, OwnershipLedger};
use crate::prefix::Cidr;
use crate::report::SkipReport;
use crate::topology::{Instance, Vpc, VpcRouteTable};

/// VPC tag: `legacy` or `migrated` (absent: a plain mesh member).
pub const TAG_MIGRATION: &str = "lbgp:migration";
/// VPC tag: the failover group of the VPC's legacy routers.
pub const TAG_LEGACY_GROUP: &str = "lbgp:legacy-group";

/// Where a VPC stands in the migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// On the legacy network (overlay routes toward its legacy routers).
    Legacy,
    /// On the mesh only.
    Migrated,
}

impl MigrationState {
    /// The tag value.
    pub fn as_tag(self) -> &'static str {
        match self {
            MigrationState::Legacy => "legacy",
            MigrationState::Migrated => "migrated",
        }
    }

    /// Parses a tag value (case and surrounding spaces ignored).
    pub fn from_tag(value: &str) -> Option<MigrationState> {
        match value.trim().to_ascii_lowercase().as_str() {
            "legacy" => Some(MigrationState::Legacy),
            "migrated" => Some(MigrationState::Migrated),
            _ => None,
        }
    }
}

/// A mesh VPC as the overlay sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshVpc {
    /// The VPC.
    pub vpc: Vpc,
    /// Its region.
    pub region: Region,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl MeshVpc {
    /// Its migration state: `None` untagged, `Err` a value we cannot use.
    pub fn migration(&self) -> Result<Option<MigrationState>, String> {
        match self.tags.get(TAG_MIGRATION) {
            None => Ok(None),
            Some(v) => MigrationState::from_tag(v).map(Some).ok_or_else(|| {
                format!(
                    "{}: {TAG_MIGRATION}={v:?} is neither legacy nor migrated; its routes are kept as they are",
                    self.vpc.id
                )
            }),
        }
    }

    /// Its legacy group's name.
    pub fn legacy_group(&self) -> Option<&str> {
        self.tags
            .get(TAG_LEGACY_GROUP)
            .map(|g| g.trim())
            .filter(|g| !g.is_empty())
    }
}

/// What the overlay reads besides the tables: every mesh VPC of every
/// region (with tags), the router instances of legacy VPCs (with their
/// status checks), their subnets' zones, and the watcher's saved state of
/// each legacy group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LegacyView {
    /// Every mesh VPC read, every region.
    pub vpcs: Vec<MeshVpc>,
    /// Instances tagged `lbgp:failover-group`, per region.
    pub routers: BTreeMap<Region, Vec<Instance>>,
    /// Subnet → availability zone, for the legacy VPCs' tables.
    pub zones: BTreeMap<String, String>,
    /// The failover-watcher's saved state, by (region, group).
    pub states: BTreeMap<(Region, String), GroupState>,
    /// The routers' health alarms (`lbgp:health-alarm`) as read, by region
    /// and alarm name: a router whose alarm fails is not healthy, as for
    /// the watcher.
    pub alarms: BTreeMap<Region, BTreeMap<String, AlarmReading>>,
    /// Every mesh region was read (the overlay of one region's tables
    /// carries every other region's legacy CIDRs).
    pub complete: bool,
}

impl LegacyView {
    /// The failover group `name` of `vpc`'s routers, their health alarms
    /// attached (members best first), if it has members.
    pub fn group(&self, vpc: &MeshVpc, name: &str) -> Option<Group> {
        let members: Vec<Instance> = self
            .routers
            .get(&vpc.region)
            .into_iter()
            .flatten()
            .filter(|i| i.vpc_id.as_deref() == Some(vpc.vpc.id.as_str()))
            .cloned()
            .collect();
        let mut group = groups_from_instances(&members)
            .into_iter()
            .find(|g| g.name == name)?;
        let none = BTreeMap::new();
        group.attach_alarms(self.alarms.get(&vpc.region).unwrap_or(&none));
        Some(group)
    }
}

/// A legacy VPC with its group.
#[derive(Debug, Clone)]
struct LegacyVpc<'a> {
    vpc: &'a MeshVpc,
    /// The group's members in this VPC, best first.
    group: Option<Group>,
    state: Option<&'a GroupState>,
}

/// The member that serves `table` (see the module docs), if any.
pub fn serving<'g>(
    group: &'g Group,
    state: Option<&GroupState>,
    table: &VpcRouteTable,
    zones: &BTreeMap<String, String>,
) -> Option<&'g Member> {
    let member = |id: &str| group.members.iter().find(|m| m.instance_id == id);
    let zone = table_zone(table.main, &table.subnet_ids, zones);
    let best_healthy = |zone: Option<&String>| {
        group
            .members
            .iter()
            .filter(|m| m.healthy())
            .find(|m| zone.is_none_or(|z| m.az.as_ref() == Some(z)))
    };
    if let Some(s) = state.filter(|s| s.initialized) {
        if group.mode == FailoverMode::Az {
            if let Some(m) = s.tables.get(&table.id).and_then(|id| member(id)) {
                return Some(m);
            }
            if let Some(m) = zone.as_ref().and_then(|z| best_healthy(Some(z))) {
                return Some(m);
            }
        }
        if let Some(m) = s.active.as_deref().and_then(member) {
            return Some(m);
        }
    }
    if group.mode == FailoverMode::Az
        && let Some(m) = zone.as_ref().and_then(|z| best_healthy(Some(z)))
    {
        return Some(m);
    }
    best_healthy(None)
}

/// The overlay: desired routes in legacy VPCs' tables, the keys to keep as
/// they are (a table no member can serve), and reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// Overlay routes wanted.
    pub desired: Vec<DesiredRoute>,
    /// Keys kept as they are.
    pub frozen: BTreeSet<RouteKey>,
    /// What was left alone, and why.
    pub skipped: Vec<SkipReport>,
    /// Bad tags, one per VPC.
    pub errors: Vec<(Region, String, String)>,
    /// Each mesh VPC's state (after any override).
    pub states: BTreeMap<String, Option<MigrationState>>,
}

/// The legacy overlay for `tables` (the route tables of the scope's VPCs,
/// with their region), given `legacy`. `overrides` sets a VPC's state as a
/// cutover or rollback will (before its tag says so).
pub fn overlay(
    legacy: &LegacyView,
    tables: &[(Region, &VpcRouteTable)],
    overrides: &BTreeMap<String, MigrationState>,
) -> Overlay {
    let mut out = Overlay::default();
    let mut legacy_vpcs: BTreeMap<&str, LegacyVpc<'_>> = BTreeMap::new();
    for v in &legacy.vpcs {
        let state = match overrides.get(&v.vpc.id) {
            Some(s) => Ok(Some(*s)),
            None => v.migration(),
        };
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                out.errors.push((v.region.clone(), v.vpc.id.clone(), e));
                continue;
            }
        };
        out.states.insert(v.vpc.id.clone(), state);
        if state != Some(MigrationState::Legacy) {
            continue;
        }
        let group = v.legacy_group().and_then(|name| legacy.group(v, name));
        let state = v
            .legacy_group()
            .and_then(|name| legacy.states.get(&(v.region.clone(), name.to_owned())));
        legacy_vpcs.insert(v.vpc.id.as_str(), LegacyVpc { vpc: v, group, state });
    }
    // Every legacy VPC's CIDRs: what the others' overlay carries.
    let legacy_cidrs: Vec<(&str, Cidr)> = legacy_vpcs
        .values()
        .flat_map(|l| l.vpc.vpc.cidrs.iter().map(move |c| (l.vpc.vpc.id.as_str(), *c)))
        .collect();
    for (region, table) in tables {
        let Some(own) = legacy_vpcs.get(table.vpc_id.as_str()) else {
            continue;
        };
        let table_ref = RouteTableRef {
            region: region.clone(),
            kind: TableKind::Vpc,
            id: table.id.clone(),
        };
        let wanted: Vec<Cidr> = legacy_cidrs
            .iter()
            .filter(|(vpc, _)| *vpc != own.vpc.vpc.id)
            .filter_map(
                |(vpc, c)| match own.vpc.vpc.cidrs.iter().find(|o| o.overlaps(c)) {
                    Some(o) => {
                        out.skipped.push(SkipReport {
                            region: region.to_string(),
                            resource: table.id.clone(),
                            destination: Some(c.to_string()),
                            reason: format!("legacy overlay: {vpc}'s CIDR overlaps this VPC's own CIDR {o}"),
                            account: None,
                        });
                        None
                    }
                    None => Some(*c),
                },
            )
            .collect();
        let member = own
            .group
            .as_ref()
            .and_then(|g| serving(g, own.state, table, &legacy.zones));
        let Some(member) = member else {
            let why = match (own.vpc.legacy_group(), &own.group) {
                (None, _) => format!("legacy VPC {} has no {TAG_LEGACY_GROUP} tag", own.vpc.vpc.id),
                (Some(name), None) => format!("legacy group {name} has no member in {}", own.vpc.vpc.id),
                (Some(name), Some(_)) => format!("legacy group {name} has no healthy member"),
            };
            for c in wanted {
                out.skipped.push(SkipReport {
                    region: region.to_string(),
                    resource: table.id.clone(),
                    destination: Some(c.to_string()),
                    reason: format!("legacy overlay: {why}; route kept as it is"),
                    account: None,
                });
                out.frozen.insert(RouteKey {
                    table: table_ref.clone(),
                    destination: c,
                });
            }
            continue;
        };
        let target = member.route_target();
        out.desired
            .extend(wanted.into_iter().map(|destination| DesiredRoute {
                key: RouteKey {
                    table: table_ref.clone(),
                    destination,
                },
                target: target.clone(),
            }));
    }
    out
}

/// True for a target the overlay uses (a router), false for the mesh's.
pub fn is_overlay_target(target: &RouteTarget) -> bool {
    matches!(
        target,
        RouteTarget::NetworkInterface(_) | RouteTarget::Instance(_)
    )
}

/// The stage of each change (1 or 2; see the module docs). `table_vpc`
/// maps a table id to its VPC, `owner` a CIDR to the VPC it belongs to,
/// `states` each VPC's state, `established` the VPCs that hold overlay
/// routes of ours now.
pub fn stage(
    change: &Change,
    table_vpc: &BTreeMap<String, String>,
    owner: &BTreeMap<Cidr, String>,
    states: &BTreeMap<String, Option<MigrationState>>,
    established: &BTreeSet<String>,
) -> u8 {
    let overlay =
        is_overlay_target(&change.target) || change.previous.as_ref().is_some_and(is_overlay_target);
    let (Some(vpc), true) = (table_vpc.get(&change.key.table.id), overlay) else {
        return 1;
    };
    let legacy = |v: &str| states.get(v).copied().flatten() == Some(MigrationState::Legacy);
    match change.op {
        // Cutover: the migrating VPC's own egress first, then its CIDRs in
        // the others' tables.
        ChangeOp::Delete => {
            if legacy(vpc) {
                2
            } else {
                1
            }
        }
        // Rollback: its CIDRs in the others' (established) tables first,
        // then its own egress. A watcher's move (replace) is one stage.
        ChangeOp::Create => {
            let toward = owner.get(&change.key.destination);
            if established.contains(vpc) || toward.is_none() {
                1
            } else {
                2
            }
        }
        ChangeOp::Replace => 1,
    }
}

/// The VPCs holding overlay routes of ours now (per the ledger).
pub fn established(ledger: &OwnershipLedger, table_vpc: &BTreeMap<String, String>) -> BTreeSet<String> {
    ledger
        .iter()
        .filter(|e| e.key.table.kind == TableKind::Vpc && is_overlay_target(&e.target))
        .filter_map(|e| table_vpc.get(&e.key.table.id).cloned())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::topology::InstanceState;

    fn region() -> Region {
        Region::new("eu-west-1").unwrap()
    }

    fn vpc(id: &str, cidr: &str, tags: &[(&str, &str)]) -> MeshVpc {
        MeshVpc {
            vpc: Vpc {
                id: id.into(),
                cidrs: vec![cidr.parse().unwrap()],
            },
            region: region(),
            tags: tags.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        }
    }

    // Field by field from the default: the instance model grows fields
    // (health sources) these tests do not care about.
    #[allow(clippy::field_reassign_with_default)]
    fn router(id: &str, vpc: &str, priority: i64, zone: &str, up: bool) -> Instance {
        let mut i = Instance::default();
        i.id = id.into();
        i.vpc_id = Some(vpc.into());
        i.availability_zone = Some(zone.into());
        i.state = Some(if up {
            InstanceState::Running
        } else {
            InstanceState::Stopped
        });
        i.primary_interface_id = Some(format!("eni-{id}"));
        i.interface_ids = vec![format!("eni-{id}")];
        i.tags = [
            ("lbgp:failover-group".to_owned(), format!("legacy-{vpc}")),
            ("lbgp:priority".to_owned(), priority.to_string()),
        ]
        .into_iter()
        .collect();
        i
    }

    fn table(id: &str, vpc: &str) -> VpcRouteTable {
        VpcRouteTable {
            id: id.into(),
            vpc_id: vpc.into(),
            main: true,
            subnet_ids: vec![],
            gateway_ids: vec![],
            tags: BTreeMap::new(),
            routes: vec![],
            owner: None,
        }
    }

    fn view() -> LegacyView {
        LegacyView {
            vpcs: vec![
                vpc(
                    "vpc-a",
                    "10.1.0.0/16",
                    &[(TAG_MIGRATION, "legacy"), (TAG_LEGACY_GROUP, "legacy-vpc-a")],
                ),
                vpc(
                    "vpc-b",
                    "10.2.0.0/16",
                    &[(TAG_MIGRATION, "legacy"), (TAG_LEGACY_GROUP, "legacy-vpc-b")],
                ),
                vpc("vpc-c", "10.3.0.0/16", &[(TAG_MIGRATION, "migrated")]),
                vpc("vpc-d", "10.4.0.0/16", &[]),
            ],
            routers: BTreeMap::from([(
                region(),
                vec![
                    router("i-a1", "vpc-a", 200, "eu-west-1a", true),
                    router("i-a2", "vpc-a", 100, "eu-west-1b", true),
                    router("i-b1", "vpc-b", 100, "eu-west-1a", true),
                ],
            )]),
            complete: true,
            ..LegacyView::default()
        }
    }

    #[test]
    fn legacy_vpcs_carry_each_others_cidrs_toward_their_serving_router() {
        let (ta, tb, tc) = (
            table("rtb-a", "vpc-a"),
            table("rtb-b", "vpc-b"),
            table("rtb-c", "vpc-c"),
        );
        let tables = [(region(), &ta), (region(), &tb), (region(), &tc)];
        let o = overlay(&view(), &tables, &BTreeMap::new());
        let got: Vec<(String, String, String)> = o
            .desired
            .iter()
            .map(|d| {
                (
                    d.key.table.id.clone(),
                    d.key.destination.to_string(),
                    d.target.to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("rtb-a".into(), "10.2.0.0/16".into(), "eni-i-a1".into()),
                ("rtb-b".into(), "10.1.0.0/16".into(), "eni-i-b1".into()),
            ]
        );
    }

    #[test]
    fn the_watchers_decision_serves_the_table_and_overrides_move_vpcs() {
        let ta = table("rtb-a", "vpc-a");
        let mut v = view();
        v.states.insert(
            (region(), "legacy-vpc-a".into()),
            GroupState {
                initialized: true,
                active: Some("i-a2".into()),
                ..GroupState::default()
            },
        );
        let o = overlay(&v, &[(region(), &ta)], &BTreeMap::new());
        assert_eq!(o.desired[0].target.to_string(), "eni-i-a2");
        // vpc-b cut over: vpc-a's overlay is empty.
        let cut = overlay(
            &v,
            &[(region(), &ta)],
            &BTreeMap::from([("vpc-b".to_owned(), MigrationState::Migrated)]),
        );
        assert!(cut.desired.is_empty());
        // vpc-c rolled back (it has no group): others carry its CIDR, its
        // own tables cannot be served and are kept as they are.
        let tc = table("rtb-c", "vpc-c");
        let back = overlay(
            &v,
            &[(region(), &ta), (region(), &tc)],
            &BTreeMap::from([("vpc-c".to_owned(), MigrationState::Legacy)]),
        );
        assert!(
            back.desired
                .iter()
                .any(|d| d.key.destination.to_string() == "10.3.0.0/16")
        );
        assert!(back.frozen.iter().all(|k| k.table.id == "rtb-c"));
    }

    #[test]
    fn no_healthy_member_keeps_the_table_and_bad_tags_are_errors() {
        let mut v = view();
        v.routers.get_mut(&region()).unwrap().retain(|i| i.id != "i-b1");
        v.vpcs
            .push(vpc("vpc-e", "10.5.0.0/16", &[(TAG_MIGRATION, "halfway")]));
        let tb = table("rtb-b", "vpc-b");
        let o = overlay(&v, &[(region(), &tb)], &BTreeMap::new());
        assert!(o.desired.is_empty());
        assert_eq!(o.frozen.len(), 1);
        assert_eq!(o.errors.len(), 1);
        assert!(o.errors[0].2.contains("halfway"));
    }

    #[test]
    fn stages_order_cutover_and_rollback() {
        let table_vpc: BTreeMap<String, String> = [("rtb-a", "vpc-a"), ("rtb-b", "vpc-b")]
            .iter()
            .map(|(t, v)| ((*t).into(), (*v).into()))
            .collect();
        let owner: BTreeMap<Cidr, String> = [("10.1.0.0/16", "vpc-a"), ("10.2.0.0/16", "vpc-b")]
            .iter()
            .map(|(c, v)| (c.parse().unwrap(), (*v).into()))
            .collect();
        let change = |table: &str, dest: &str, op: ChangeOp| Change {
            key: RouteKey {
                table: RouteTableRef {
                    region: region(),
                    kind: TableKind::Vpc,
                    id: table.into(),
                },
                destination: dest.parse().unwrap(),
            },
            op,
            target: RouteTarget::NetworkInterface("eni-x".into()),
            previous: None,
            reason: crate::plan::ChangeReason::NoLongerDesired,
        };
        // vpc-a cut over: its own egress first.
        let states = BTreeMap::from([
            ("vpc-a".to_owned(), Some(MigrationState::Migrated)),
            ("vpc-b".to_owned(), Some(MigrationState::Legacy)),
        ]);
        let both: BTreeSet<String> = ["vpc-a".into(), "vpc-b".into()].into();
        assert_eq!(
            stage(
                &change("rtb-a", "10.2.0.0/16", ChangeOp::Delete),
                &table_vpc,
                &owner,
                &states,
                &both
            ),
            1
        );
        assert_eq!(
            stage(
                &change("rtb-b", "10.1.0.0/16", ChangeOp::Delete),
                &table_vpc,
                &owner,
                &states,
                &both
            ),
            2
        );
        // vpc-a rolled back: vpc-b (established) learns it first.
        let legacy = BTreeMap::from([
            ("vpc-a".to_owned(), Some(MigrationState::Legacy)),
            ("vpc-b".to_owned(), Some(MigrationState::Legacy)),
        ]);
        let only_b: BTreeSet<String> = ["vpc-b".into()].into();
        assert_eq!(
            stage(
                &change("rtb-b", "10.1.0.0/16", ChangeOp::Create),
                &table_vpc,
                &owner,
                &legacy,
                &only_b
            ),
            1
        );
        assert_eq!(
            stage(
                &change("rtb-a", "10.2.0.0/16", ChangeOp::Create),
                &table_vpc,
                &owner,
                &legacy,
                &only_b
            ),
            2
        );
    }
}
