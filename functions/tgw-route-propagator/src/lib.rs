//! tgw-route-propagator, "L-BGP" (Lambda-Based Gateway Protocol).
//!
//! Transit gateway peering attachments carry no dynamic routing. For every
//! member TGW `T` and every `available` peering attachment `P` to another
//! member `U`, this keeps one static route in `T`'s target route tables for
//! every prefix `U` originates, pointing at `P`, and withdraws it when the
//! prefix goes away. With `LBGP_ROUTING=shortest-path` every member learns
//! every prefix it can reach instead, toward the next hop of a shortest path
//! over the mesh (transit, reroute). The rules (origins, contested prefixes,
//! re-export or not, paths, quota) are `lbgp_core::propagate`'s; this crate
//! reads.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use futures::future::join_all;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_core::config::{CommonConfig, Env, PropagatorConfig};
use lbgp_core::propagate::{self, MeshView, RegionView, WakeUp};
use lbgp_core::topology::{Lifecycle, TransitGateway, Vpc, VpcAttachment};
use lbgp_core::trigger::{Subscriptions, Trigger};
use lbgp_core::{Cidr, OwnershipLedger, Region, TableKind};
use lbgp_runtime::read::read_each_region;
use lbgp_runtime::{Pass, Reconciler, Request, Selection, Unit, UnitPlan};

pub mod prefix_lists;

/// The binary and function name.
pub const FUNCTION: &str = "tgw-route-propagator";

/// CloudTrail events that can change what any TGW originates or peers with.
pub const API_CALLS: &[&str] = &[
    "CreateTransitGatewayVpcAttachment",
    "DeleteTransitGatewayVpcAttachment",
    // Adding a subnet, enabling IPv6 support or appliance mode: the
    // attachment is `modifying`, and what crosses it may change.
    "ModifyTransitGatewayVpcAttachment",
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

/// The events L-BGP acts on: Network Manager routing updates and topology
/// changes wake it too (as a wake-up only), when the deployment forwards them.
pub const SUBSCRIPTIONS: Subscriptions = Subscriptions {
    api_calls: API_CALLS,
    state_changes: false,
    routing_updates: true,
    alarm_changes: false,
};

/// The propagator: its configuration.
#[derive(Debug, Clone)]
pub struct Propagator {
    /// Its configuration.
    pub config: PropagatorConfig,
}

/// The function: the propagator and its clients, built once per process.
pub type App = lbgp_runtime::App<Propagator>;

/// Builds the function from the process environment.
pub async fn app_from_env() -> App {
    App::from_env(|| Env::process().propagator().map(|config| Propagator { config })).await
}

/// The VPCs of a region's attachments in a cross-account mesh, each read in
/// the account owning it; a non-member's VPC is not read (it originates
/// nothing, as before accounts existed). A member that cannot be read
/// fails the region: its VPCs' origins are unknown, so what they
/// originate is frozen everywhere rather than withdrawn.
async fn member_vpcs(aws: &Aws, region: &Region, attachments: &[VpcAttachment]) -> Result<Vec<Vpc>, Error> {
    let live: Vec<VpcAttachment> = attachments
        .iter()
        .filter(|a| a.state.lifecycle() != Lifecycle::Gone)
        .cloned()
        .collect();
    let mut accounts = lbgp_runtime::accounts::accounts_view(aws, &live).await?;
    let read =
        lbgp_runtime::accounts::read_owned_vpcs(aws, region, &live, &mut accounts, |ec2, ids| async move {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            ec2.vpcs(&ids).await
        })
        .await;
    if let Some((account, why)) = accounts.unreadable.iter().next() {
        return Err(Error::Unexpected {
            operation: "AssumeRole",
            region: region.to_string(),
            detail: format!(
                "account {account} could not be read ({why}); what its VPCs originate is left as it is"
            ),
        });
    }
    for (_, account, vpc) in &accounts.not_members {
        tracing::info!(account = %account, vpc_id = %vpc, region = %region,
            "attached VPC of a non-member account: not read, originates nothing");
    }
    Ok(read.into_iter().flat_map(|(_, v)| v).collect())
}

impl Propagator {
    /// Reads one region: the mesh TGWs, their attachments, VPCs, route
    /// tables and every route of them, the peerings, and the routes of
    /// tables the ledger names that are no longer targets.
    async fn read_region(
        &self,
        aws: &Aws,
        region: &Region,
        ledger: &OwnershipLedger,
    ) -> Result<RegionView, Error> {
        let ec2 = aws.ec2(region)?;
        let transit_gateways = ec2.mesh_transit_gateways(&self.config.common.mesh).await?;
        let tgw_refs: Vec<&TransitGateway> = transit_gateways.iter().collect();
        let tgw_ids: Vec<&str> = transit_gateways.iter().map(|t| t.id.as_str()).collect();
        let (attachments, route_tables, peerings) = futures::try_join!(
            ec2.vpc_attachments(&tgw_ids),
            ec2.tgw_route_tables(&tgw_refs),
            ec2.peering_attachments(),
        )?;
        // The VPCs of every attachment not gone: those up originate their
        // CIDRs, those in transition freeze them.
        let vpc_ids: BTreeSet<&str> = attachments
            .iter()
            .filter(|a| a.state.lifecycle() != Lifecycle::Gone)
            .map(|a| a.vpc_id.as_str())
            .collect();
        let vpc_ids: Vec<&str> = vpc_ids.into_iter().collect();
        let vpcs = if aws.members.is_cross_account() {
            member_vpcs(aws, region, &attachments).await?
        } else {
            ec2.vpcs(&vpc_ids).await?
        };
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
        let known: BTreeSet<&str> = route_tables.iter().map(|t| t.id.as_str()).collect();
        // Tables where the ledger says we have routes but that are no longer
        // targets (untagged, TGW left the mesh): read them so ours go.
        let leftovers: BTreeSet<&str> = ledger
            .iter()
            .filter(|e| &e.key.table.region == region && e.key.table.kind == TableKind::TransitGateway)
            .map(|e| e.key.table.id.as_str())
            .filter(|id| !known.contains(id))
            .collect();
        let reads = join_all(known.iter().chain(leftovers.iter()).map(|id| {
            let expected = expected.get(id).map_or(&vpc_cidrs[..], Vec::as_slice);
            ec2.tgw_routes_expecting(id, expected)
        }))
        .await;
        let mut routes = Vec::new();
        for read in reads {
            routes.extend(read?);
        }
        Ok(RegionView {
            region: region.clone(),
            transit_gateways,
            attachments,
            vpcs,
            route_tables,
            routes,
            peerings,
        })
    }

    /// Reads every region of the mesh.
    pub async fn read(&self, aws: &Aws, regions: &[Region], ledger: &OwnershipLedger) -> MeshView {
        let (regions, unreadable) = read_each_region(regions, |r| self.read_region(aws, r, ledger)).await;
        MeshView { regions, unreadable }
    }
}

#[async_trait]
impl Reconciler for Propagator {
    type Key = ();

    fn function(&self) -> &'static str {
        FUNCTION
    }

    fn subscriptions(&self) -> Subscriptions {
        SUBSCRIPTIONS
    }

    fn manages_accounts(&self) -> bool {
        true
    }

    fn common(&self) -> &CommonConfig {
        &self.config.common
    }

    /// What one region originates reaches every peer region: always
    /// reconcile the whole mesh.
    fn scope(&self, _regions: Vec<Region>) -> Vec<Region> {
        self.config.common.regions.clone()
    }

    /// The mesh; for a Network Manager event only when it is news: not
    /// the echo of L-BGP's own installs, not a change a run that started
    /// after it has read already (bursts coalesce into one run).
    async fn select(
        &self,
        aws: &Aws,
        request: &Request,
        _regions: &[Region],
    ) -> Result<Selection<()>, lbgp_runtime::Error> {
        let common = &self.config.common;
        if let Trigger::RoutingUpdate(update) = &request.trigger {
            let (ledger, lease) = futures::try_join!(
                aws.store
                    .load_ledger(FUNCTION, &common.mesh, std::slice::from_ref(&update.region)),
                aws.store.read_lease(FUNCTION, &common.mesh),
            )?;
            match propagate::wake_up(update, &ledger, lease.started_at) {
                WakeUp::Reconcile => {}
                WakeUp::Echo => {
                    return Ok(Selection::Ignore(format!(
                        "{} of {} routes installed by L-BGP itself (its echo)",
                        update.change_type,
                        update.routes.len()
                    )));
                }
                WakeUp::AlreadySeen { started_at } => {
                    return Ok(Selection::Ignore(format!(
                        "{}: a reconcile that started at {started_at}, after the change, has read it",
                        update.change_type
                    )));
                }
            }
        }
        Ok(Selection::mesh(common))
    }

    async fn plan(
        &self,
        aws: &Aws,
        _unit: &Unit<()>,
        pass: &Pass<'_>,
    ) -> Result<UnitPlan, lbgp_runtime::Error> {
        let ledger = aws
            .store
            .load_ledger(FUNCTION, &self.config.common.mesh, pass.regions)
            .await?;
        let view = self.read(aws, pass.regions, &ledger).await;
        if !prefix_lists::enabled(&self.config) {
            let mut desire = propagate::desire(view, &ledger, &self.config);
            desire.settle(&ledger, aws.store.clock().now());
            let plan = propagate::plan(&mut desire, &ledger, &self.config);
            return Ok(UnitPlan::owned(desire, plan));
        }
        let seen = prefix_lists::seen(&view);
        let read = prefix_lists::read(aws, &seen, &self.config.common.mesh).await;
        let mut desire = propagate::desire(view, &ledger, &self.config);
        desire.settle(&ledger, aws.store.clock().now());
        let lists = prefix_lists::plan(&self.config, &seen, &mut desire, &ledger, &read);
        let plan = propagate::plan(&mut desire, &ledger, &self.config);
        let mut unit = UnitPlan::owned(desire, plan);
        prefix_lists::attach(&mut unit, lists, &self.config.common, pass.request.force);
        Ok(unit)
    }
}
