//! tgw-route-propagator, "L-BGP" (Lambda-Based Gateway Protocol).
//!
//! Transit gateway peering attachments carry no dynamic routing. For every
//! member TGW `T` and every `available` peering attachment `P` to another
//! member `U`, this keeps one static route in `T`'s target route tables for
//! every prefix `U` originates, pointing at `P`, and withdraws it when the
//! prefix goes away.
//!
//! Loop freedom: a TGW originates its VPCs' CIDRs, its propagated routes and
//! its static routes toward non-peering attachments. Routes toward peering
//! attachments (which is every route we install) are learned, never
//! re-exported, so a prefix travels exactly one peering hop.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use futures::future::join_all;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::{PeeringAttachment, TAG_MESH, TgwRoute, TgwRouteTable, TransitGateway};
use lbgp_aws::runtime::{Observation, Reconciler, read_each_region};
use lbgp_core::config::{CommonConfig, Env, PropagatorConfig};
use lbgp_core::prefix::aggregate;
use lbgp_core::report::{ConflictReport, SkipReport};
use lbgp_core::trigger::Subscriptions;
use lbgp_core::{
    Cidr, DesiredRoute, OwnershipLedger, Plan, Region, Route, RouteKey, RouteOrigin, RouteState,
    RouteTableRef, RouteTarget, TableKind,
};

/// The binary and function name.
pub const FUNCTION: &str = "tgw-route-propagator";

/// CloudTrail events that can change what any TGW originates or peers with.
pub const API_CALLS: &[&str] = &[
    "CreateTransitGatewayVpcAttachment",
    "DeleteTransitGatewayVpcAttachment",
    "AcceptTransitGatewayPeeringAttachment",
    "DeleteTransitGatewayPeeringAttachment",
    "RejectTransitGatewayPeeringAttachment",
    "CreateTransitGatewayRoute",
    "DeleteTransitGatewayRoute",
    "EnableTransitGatewayRouteTablePropagation",
    "DisableTransitGatewayRouteTablePropagation",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "CreateTags",
    "DeleteTags",
];

/// The propagator's reconcile logic.
#[derive(Debug, Clone)]
pub struct Propagator {
    /// Its configuration.
    pub config: PropagatorConfig,
}

/// The function: the propagator and its clients, built once per process.
pub type App = lbgp_aws::runtime::App<Propagator>;

/// Builds the function from the process environment.
pub async fn app_from_env() -> App {
    App::from_env(|| Env::process().propagator().map(|config| Propagator { config })).await
}

/// One member TGW as read.
#[derive(Debug, Clone)]
struct Member {
    tgw: TransitGateway,
    /// Tables routes are installed in.
    targets: Vec<TgwRouteTable>,
    /// Every route of every table of this TGW.
    routes: Vec<TgwRoute>,
    /// prefix → where it comes from (for reports).
    originates: BTreeMap<Cidr, BTreeSet<String>>,
}

/// One region as read.
#[derive(Debug)]
struct RegionView {
    region: Region,
    members: Vec<Member>,
    peerings: Vec<PeeringAttachment>,
    /// Routes of tables in the ledger but no longer targets.
    leftover_routes: Vec<TgwRoute>,
}

impl Propagator {
    async fn read_region(
        &self,
        aws: &Aws,
        region: &Region,
        ledger: &OwnershipLedger,
    ) -> Result<RegionView, Error> {
        let ec2 = aws.ec2(region)?;
        let mesh = &self.config.common.mesh;
        let tgws = ec2.mesh_transit_gateways(mesh).await?;
        let tgw_refs: Vec<&TransitGateway> = tgws.iter().collect();
        let tgw_ids: Vec<&str> = tgws.iter().map(|t| t.id.as_str()).collect();
        let (attachments, tables, peerings) = futures::try_join!(
            ec2.vpc_attachments(&tgw_ids),
            ec2.tgw_route_tables(&tgw_refs),
            ec2.peering_attachments(),
        )?;
        let available: Vec<_> = attachments.iter().filter(|a| a.state == "available").collect();
        let vpc_ids: BTreeSet<&str> = available.iter().map(|a| a.vpc_id.as_str()).collect();
        let vpc_ids: Vec<&str> = vpc_ids.into_iter().collect();
        let vpcs = ec2.vpcs(&vpc_ids).await?;
        // What each table should hold: the routes our ledger has there and
        // the region's VPC CIDRs (propagated). It only shapes the searches;
        // the read is complete whatever the table holds.
        let vpc_cidrs: Vec<Cidr> = vpcs.iter().flat_map(|v| v.cidrs.iter().copied()).collect();
        let mut expected: BTreeMap<&str, Vec<Cidr>> = BTreeMap::new();
        for entry in ledger.iter().filter(|e| &e.key.table.region == region) {
            expected
                .entry(entry.key.table.id.as_str())
                .or_insert_with(|| vpc_cidrs.clone())
                .push(entry.key.destination);
        }
        let table_routes = join_all(tables.iter().map(|t| {
            let expected = expected.get(t.id.as_str()).map_or(&vpc_cidrs[..], Vec::as_slice);
            ec2.tgw_routes_expecting(&t.id, expected)
        }))
        .await;
        let mut routes_by_table: BTreeMap<String, Vec<TgwRoute>> = BTreeMap::new();
        for (table, routes) in tables.iter().zip(table_routes) {
            routes_by_table.insert(table.id.clone(), routes?);
        }

        let mut members = Vec::new();
        for tgw in &tgws {
            let own_tables: Vec<&TgwRouteTable> =
                tables.iter().filter(|t| t.transit_gateway_id == tgw.id).collect();
            let tagged: Vec<TgwRouteTable> = own_tables
                .iter()
                .filter(|t| t.tags.get(TAG_MESH) == Some(mesh))
                .map(|t| (*t).clone())
                .collect();
            let targets = if tagged.is_empty() {
                own_tables
                    .iter()
                    .filter(|t| t.default_association)
                    .map(|t| (*t).clone())
                    .collect()
            } else {
                tagged
            };
            let routes: Vec<TgwRoute> = own_tables
                .iter()
                .flat_map(|t| routes_by_table.get(&t.id).cloned().unwrap_or_default())
                .collect();
            let mut originates: BTreeMap<Cidr, BTreeSet<String>> = BTreeMap::new();
            for a in available.iter().filter(|a| a.transit_gateway_id == tgw.id) {
                if let Some(vpc) = vpcs.iter().find(|v| v.id == a.vpc_id) {
                    for c in &vpc.cidrs {
                        originates
                            .entry(*c)
                            .or_default()
                            .insert(format!("{region}/{}/{}", tgw.id, vpc.id));
                    }
                }
            }
            for r in &routes {
                let owned = ledger.get(&r.route.key).is_some();
                let via_peering = r.attachments.iter().any(|a| a.resource_type == "peering");
                let exportable = !owned
                    && !via_peering
                    && r.route.state == RouteState::Active
                    && !r.attachments.is_empty()
                    && matches!(r.route.origin, RouteOrigin::Propagated | RouteOrigin::Static);
                if exportable {
                    let via = &r.attachments[0];
                    originates
                        .entry(r.route.key.destination)
                        .or_default()
                        .insert(format!(
                            "{region}/{}/{} ({})",
                            tgw.id, via.attachment_id, via.resource_type
                        ));
                }
            }
            members.push(Member {
                tgw: tgw.clone(),
                targets,
                routes,
                originates,
            });
        }

        // Tables where the ledger says we have routes but that are no longer
        // targets (untagged, TGW left the mesh): read them so ours go.
        let known: BTreeSet<&str> = tables.iter().map(|t| t.id.as_str()).collect();
        let leftovers: BTreeSet<&str> = ledger
            .iter()
            .filter(|e| &e.key.table.region == region && e.key.table.kind == TableKind::TransitGateway)
            .map(|e| e.key.table.id.as_str())
            .filter(|id| !known.contains(id))
            .collect();
        let mut leftover_routes = Vec::new();
        for id in leftovers {
            leftover_routes.extend(ec2.tgw_routes(id).await?);
        }
        Ok(RegionView {
            region: region.clone(),
            members,
            peerings,
            leftover_routes,
        })
    }
}

/// Routes `T` learns from peer `U` over `P`: every prefix `U` originates
/// that nobody else originates, summarised losslessly when asked, without
/// covering anyone else's prefix.
fn learned(prefixes: &BTreeSet<Cidr>, others: &BTreeSet<Cidr>, summarize: bool) -> Vec<Cidr> {
    let list: Vec<Cidr> = prefixes.iter().copied().collect();
    if !summarize {
        return list;
    }
    let mut out = Vec::new();
    for agg in aggregate(&list) {
        if !prefixes.contains(&agg) && others.iter().any(|o| agg.contains(o)) {
            out.extend(list.iter().filter(|p| agg.contains(p)).copied());
        } else {
            out.push(agg);
        }
    }
    out
}

#[async_trait]
impl Reconciler for Propagator {
    fn function(&self) -> &'static str {
        FUNCTION
    }

    fn subscriptions(&self) -> Subscriptions {
        Subscriptions {
            api_calls: API_CALLS,
            state_changes: false,
        }
    }

    fn common(&self) -> &CommonConfig {
        &self.config.common
    }

    /// What one region originates reaches every peer region: always
    /// reconcile the whole mesh.
    fn scope(&self, _regions: Vec<Region>) -> Vec<Region> {
        self.config.common.regions.clone()
    }

    async fn observe(&self, aws: &Aws, regions: &[Region], ledger: &OwnershipLedger) -> Observation {
        let mut obs = Observation::default();
        let ok = read_each_region(regions, &mut obs.errors, |r| self.read_region(aws, r, ledger)).await;
        // What an unreadable region originates is unknown: tables that learn
        // from a peer there are frozen, never emptied by a failed read.
        let unreadable: BTreeSet<&Region> = regions
            .iter()
            .filter(|r| !ok.iter().any(|v: &RegionView| &v.region == *r))
            .collect();
        let members: BTreeMap<&str, (&Region, &Member)> = ok
            .iter()
            .flat_map(|v| v.members.iter().map(move |m| (m.tgw.id.as_str(), (&v.region, m))))
            .collect();

        // Mesh-wide origins: a prefix two TGWs originate is installed nowhere,
        // the same way on every run (no flapping between two origins).
        let mut origins: BTreeMap<Cidr, BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
        for (tgw, (_, m)) in &members {
            for (p, why) in &m.originates {
                origins.entry(*p).or_default().insert(tgw, why.clone());
            }
        }
        let contested: BTreeSet<Cidr> = origins
            .iter()
            .filter(|(_, o)| o.len() > 1)
            .map(|(p, _)| *p)
            .collect();
        for p in &contested {
            // One entry per originating TGW, with every way it originates it.
            let held_by: Vec<String> = origins[p]
                .values()
                .map(|why| why.iter().cloned().collect::<Vec<_>>().join(", "))
                .collect();
            obs.conflicts.push(ConflictReport {
                region: "*".to_owned(),
                route_table_id: None,
                destination: p.to_string(),
                wanted: None,
                held_by,
                reason: "originated by more than one transit gateway; installed nowhere".to_owned(),
            });
        }

        for view in &ok {
            obs.complete_regions.insert(view.region.clone());
            obs.actual
                .extend(view.leftover_routes.iter().map(|r| r.route.clone()));
            for t in &view.members {
                obs.actual.extend(t.routes.iter().map(|r| r.route.clone()));
                let peers_unreadable = view.peerings.iter().any(|p| {
                    p.peer_of(&t.tgw.id)
                        .and_then(|end| end.region.as_ref())
                        .is_some_and(|r| unreadable.contains(r))
                });
                if peers_unreadable {
                    for table in &t.targets {
                        obs.frozen_tables.insert(RouteTableRef {
                            region: view.region.clone(),
                            kind: TableKind::TransitGateway,
                            id: table.id.clone(),
                        });
                    }
                    continue;
                }
                if t.targets.is_empty() {
                    obs.skipped.push(SkipReport {
                        region: view.region.to_string(),
                        resource: t.tgw.id.clone(),
                        destination: None,
                        reason: format!(
                            "no route table tagged {TAG_MESH}={} and no default association table",
                            self.config.common.mesh
                        ),
                    });
                    continue;
                }
                // Peers over available attachments, one attachment per peer.
                let mut peers: BTreeMap<&str, &PeeringAttachment> = BTreeMap::new();
                for p in view.peerings.iter().filter(|p| p.state == "available") {
                    if let Some(end) = p.peer_of(&t.tgw.id)
                        && members.contains_key(end.transit_gateway_id.as_str())
                        && end.transit_gateway_id != t.tgw.id
                    {
                        peers.entry(end.transit_gateway_id.as_str()).or_insert(p);
                    }
                }
                for (peer_id, attachment) in &peers {
                    let Some((_, u)) = members.get(peer_id) else {
                        continue;
                    };
                    let mut exported = BTreeSet::new();
                    for p in u.originates.keys() {
                        if contested.contains(p) {
                            continue;
                        }
                        exported.insert(*p);
                    }
                    let others: BTreeSet<Cidr> = origins
                        .iter()
                        .filter(|(_, o)| o.keys().any(|tgw| tgw != peer_id))
                        .map(|(p, _)| *p)
                        .collect();
                    for destination in learned(&exported, &others, self.config.summarize) {
                        for table in &t.targets {
                            obs.desired.push(DesiredRoute {
                                key: RouteKey {
                                    table: RouteTableRef {
                                        region: view.region.clone(),
                                        kind: TableKind::TransitGateway,
                                        id: table.id.clone(),
                                    },
                                    destination,
                                },
                                target: RouteTarget::TransitGatewayAttachment(attachment.id.clone()),
                            });
                        }
                    }
                }
            }
        }
        obs
    }

    fn over_quota(&self, obs: &Observation, plan: &Plan) -> BTreeMap<RouteTableRef, String> {
        let mut count: BTreeMap<&RouteTableRef, i64> = BTreeMap::new();
        let unique: BTreeSet<(&RouteTableRef, &Cidr)> = obs
            .actual
            .iter()
            .map(|r: &Route| (&r.key.table, &r.key.destination))
            .collect();
        for (table, _) in unique {
            *count.entry(table).or_default() += 1;
        }
        for c in &plan.changes {
            let delta = match c.op {
                lbgp_core::ChangeOp::Create => 1,
                lbgp_core::ChangeOp::Delete => -1,
                lbgp_core::ChangeOp::Replace => 0,
            };
            *count.entry(&c.key.table).or_default() += delta;
        }
        let quota = i64::try_from(self.config.tgw_route_quota).unwrap_or(i64::MAX);
        count
            .into_iter()
            .filter(|(_, n)| *n > quota)
            .map(|(table, n)| {
                (
                    table.clone(),
                    format!(
                        "{}: the plan would leave {n} routes, above LBGP_TGW_ROUTE_QUOTA={quota}; table left unchanged. \
                         Raise the AWS quota and the variable, or enable LBGP_SUMMARIZE",
                        table.id
                    ),
                )
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<Cidr> {
        items.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn summarising_never_covers_someone_elses_prefix() {
        let mine = set(&["10.0.0.0/17", "10.0.128.0/17", "10.2.0.0/16", "10.3.0.0/16"]);
        let none = set(&[]);
        let plain: Vec<String> = learned(&mine, &none, false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(plain.len(), 4);
        let summary: Vec<String> = learned(&mine, &none, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(summary, vec!["10.0.0.0/16", "10.2.0.0/15"]);
        // Someone else originates 10.2.5.0/24: 10.2.0.0/15 would cover it.
        let other = set(&["10.2.5.0/24"]);
        let careful: Vec<String> = learned(&mine, &other, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(careful, vec!["10.0.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]);
    }
}
