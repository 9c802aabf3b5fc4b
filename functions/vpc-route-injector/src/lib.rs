//! vpc-route-injector: for every region in `LBGP_REGIONS`, every transit
//! gateway tagged `lbgp:mesh=<LBGP_MESH>`, every VPC attached to it and
//! every route table of that VPC not tagged `lbgp:ignore=true`, keeps one
//! route per mesh prefix pointing at that transit gateway.
//!
//! This crate is wiring and I/O: what to read ([`Injector::read`]); the
//! rules are `lbgp_core::inject`'s, the loop `lbgp_runtime`'s.

use std::collections::BTreeSet;

use async_trait::async_trait;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::RouteTableQuery;
use lbgp_core::config::{CommonConfig, Env, InjectorConfig};
use lbgp_core::inject::{self, InjectorView, RegionView};
use lbgp_core::migrate::MeshVpc;
use lbgp_core::trigger::Subscriptions;
use lbgp_core::{OwnershipLedger, Region, TableKind};
use lbgp_runtime::read::read_each_region;
use lbgp_runtime::{Pass, Reconciler, Request, Selection, Unit, UnitPlan};

pub mod migration;
pub mod prefix_lists;

/// The binary and function name.
pub const FUNCTION: &str = "vpc-route-injector";

/// CloudTrail events that can change what the injector should do.
pub const API_CALLS: &[&str] = &[
    "CreateTransitGatewayVpcAttachment",
    "DeleteTransitGatewayVpcAttachment",
    // Adding a subnet, enabling IPv6 support or appliance mode: the
    // attachment is `modifying`, and what crosses it may change.
    "ModifyTransitGatewayVpcAttachment",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "CreateRouteTable",
    "CreateRoute",
    "DeleteRoute",
    "ReplaceRoute",
    "CreateTags",
    "DeleteTags",
];

/// The events the injector acts on.
pub const SUBSCRIPTIONS: Subscriptions = Subscriptions {
    api_calls: API_CALLS,
    state_changes: false,
    routing_updates: false,
    alarm_changes: false,
};

/// The injector: its configuration.
#[derive(Debug, Clone)]
pub struct Injector {
    /// Its configuration.
    pub config: InjectorConfig,
}

impl Injector {
    /// Reads one region: the mesh TGWs, their VPC attachments, the VPCs
    /// those name and every route table of them, plus the tables holding
    /// routes of ours that are no longer in scope (VPC detached, TGW
    /// untagged), so their routes are removed.
    async fn read_region(
        &self,
        aws: &Aws,
        region: &Region,
        ledger: &OwnershipLedger,
    ) -> Result<(RegionView, Vec<MeshVpc>), Error> {
        let ec2 = aws.ec2(region)?;
        let transit_gateways = ec2.mesh_transit_gateways(&self.config.common.mesh).await?;
        let tgw_ids: Vec<&str> = transit_gateways.iter().map(|t| t.id.as_str()).collect();
        let attachments = ec2.vpc_attachments(&tgw_ids).await?;
        let vpc_ids = inject::vpcs_to_read(&attachments);
        let (tagged, mut tables) = futures::try_join!(
            ec2.vpcs_tagged(&vpc_ids),
            ec2.vpc_route_tables(RouteTableQuery::Vpcs(&vpc_ids)),
        )?;
        let mesh_vpcs: Vec<MeshVpc> = tagged
            .iter()
            .map(|(vpc, tags)| MeshVpc {
                vpc: vpc.clone(),
                region: region.clone(),
                tags: tags.clone(),
            })
            .collect();
        let vpcs = tagged.into_iter().map(|(v, _)| v).collect();
        let read: BTreeSet<&str> = tables.iter().map(|t| t.id.as_str()).collect();
        let extra: BTreeSet<&str> = ledger
            .iter()
            .filter(|e| &e.key.table.region == region && e.key.table.kind == TableKind::Vpc)
            .map(|e| e.key.table.id.as_str())
            .filter(|id| !read.contains(id))
            .collect();
        let extra: Vec<&str> = extra.into_iter().collect();
        tables.extend(ec2.vpc_route_tables(RouteTableQuery::Ids(&extra)).await?);
        Ok((
            RegionView {
                region: region.clone(),
                transit_gateways,
                attachments,
                vpcs,
                tables,
            },
            mesh_vpcs,
        ))
    }

    /// Reads what reconciling `scope` depends on. When a VPC there is in a
    /// migration (or `command` is a migration command), every region is
    /// read, with the legacy groups: the overlay of one region's tables
    /// carries every other region's legacy CIDRs.
    pub async fn read(
        &self,
        aws: &Aws,
        scope: &[Region],
        ledger: &OwnershipLedger,
        command: bool,
    ) -> InjectorView {
        let regions = inject::regions_to_read(&self.config, scope);
        let (read, mut unreadable) = read_each_region(&regions, |r| self.read_region(aws, r, ledger)).await;
        let (mut views, mut vpcs): (Vec<RegionView>, Vec<Vec<MeshVpc>>) = read.into_iter().unzip();
        let first: Vec<MeshVpc> = vpcs.iter().flatten().cloned().collect();
        let mut legacy = lbgp_core::migrate::LegacyView::default();
        if migration::needs_overlay(&first, ledger, scope, command) {
            let rest: Vec<Region> = self
                .config
                .common
                .regions
                .iter()
                .filter(|r| !regions.contains(r))
                .cloned()
                .collect();
            let (more, errors) = read_each_region(&rest, |r| self.read_region(aws, r, ledger)).await;
            unreadable.extend(errors);
            for (view, mesh) in more {
                views.push(view);
                vpcs.push(mesh);
            }
            let all: Vec<MeshVpc> = vpcs.into_iter().flatten().collect();
            let tables = migration::all_tables(&views);
            match migration::legacy_view(aws, all.clone(), &tables, unreadable.is_empty()).await {
                Ok(view) => legacy = view,
                Err(e) => {
                    // What the overlay depends on could not be read: it is
                    // kept as it is (incomplete), never emptied.
                    tracing::error!(error = %e, "legacy groups could not be read; the overlay is kept as it is");
                    unreadable.push(lbgp_core::report::ErrorReport {
                        region: "*".to_owned(),
                        resource: Some("legacy overlay".to_owned()),
                        error: e.to_string(),
                    });
                    legacy = lbgp_core::migrate::LegacyView {
                        vpcs: all,
                        complete: false,
                        ..lbgp_core::migrate::LegacyView::default()
                    };
                }
            }
        }
        InjectorView {
            scope: scope.to_vec(),
            regions: views,
            unreadable,
            legacy,
            overrides: std::collections::BTreeMap::new(),
        }
    }
}

#[async_trait]
impl Reconciler for Injector {
    type Key = ();

    fn function(&self) -> &'static str {
        FUNCTION
    }

    fn subscriptions(&self) -> Subscriptions {
        SUBSCRIPTIONS
    }

    fn common(&self) -> &CommonConfig {
        &self.config.common
    }

    async fn select(
        &self,
        _aws: &Aws,
        _request: &Request,
        _regions: &[Region],
    ) -> Result<Selection<()>, lbgp_runtime::Error> {
        Ok(Selection::mesh(&self.config.common))
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
        let manual = migration::manual(&pass.request.trigger);
        let migrate = manual.and_then(|m| m.migrate.as_ref());
        let adopt = manual.and_then(|m| m.adopt.as_ref());
        let mut view = self
            .read(aws, pass.regions, &ledger, migrate.is_some() || adopt.is_some())
            .await;
        if let Some(m) = migrate {
            view.overrides.insert(m.vpc.clone(), m.to);
        }
        // The view is consumed by the desire; a copy is kept only when a
        // migration, an adoption or the prefix-list style reads it again
        // (a plain run does not pay for copying every table).
        let again = migrate.is_some()
            || adopt.is_some()
            || !view.legacy.vpcs.is_empty()
            || prefix_lists::enabled(&self.config);
        let kept = again.then(|| view.clone());
        let mut desire = inject::desire(view, &ledger, &prefix_lists::desire_config(&self.config));
        let view = kept.unwrap_or_default();
        desire.settle(&ledger, aws.store.clock().now());
        let lists = match prefix_lists::enabled(&self.config) {
            true => Some(prefix_lists::read(aws, &view, &self.config.common.mesh).await),
            false => None,
        };
        let lists = lists.map(|l| prefix_lists::plan(&self.config, &view, &mut desire, &ledger, &l));
        let plan = inject::plan(&mut desire, &ledger, &self.config);
        if let Some(a) = adopt {
            let wanted: Vec<_> = desire
                .desired
                .iter()
                .map(|d| (d.key.clone(), d.target.clone()))
                .collect();
            let mut unit = UnitPlan::owned(desire, plan);
            migration::adopt(&mut unit, &view, &ledger, &wanted, &a.vpc);
            if let Some(lists) = lists {
                prefix_lists::attach(&mut unit, lists, &self.config.common, pass.request.force);
            }
            return Ok(unit);
        }
        let all_changes = if migrate.is_some() {
            plan.changes.clone()
        } else {
            Vec::new()
        };
        let mut unit = UnitPlan::owned(desire, plan);
        if let Some(m) = migrate {
            let x = view.legacy.vpcs.iter().find(|v| v.vpc.id == m.vpc).cloned();
            // Once the tag says so, the migration was accepted: the runs
            // that follow finish its stages without a new preflight.
            let accepted = x
                .as_ref()
                .is_some_and(|x| x.migration().ok().flatten() == Some(m.to));
            if !accepted {
                let checks =
                    migration::preflight(aws, &view, &m.vpc, m.to, &self.config.common.mesh, &all_changes)
                        .await?;
                match x {
                    Some(x) if checks.iter().all(|c| c.passed) => {
                        migration::accept(&mut unit, &x, m.to, checks)
                    }
                    _ => {
                        migration::refuse(&mut unit, &m.vpc, checks);
                        return Ok(unit);
                    }
                }
            }
        }
        migration::stage(&mut unit, &view, &ledger);
        if let Some(lists) = lists {
            prefix_lists::attach(&mut unit, lists, &self.config.common, pass.request.force);
        }
        Ok(unit)
    }

    fn takes_migration(&self) -> bool {
        true
    }
}

/// The function: the injector and its clients, built once per process.
pub type App = lbgp_runtime::App<Injector>;

/// Builds the function from the process environment.
pub async fn app_from_env() -> App {
    App::from_env(|| Env::process().injector().map(|config| Injector { config })).await
}
