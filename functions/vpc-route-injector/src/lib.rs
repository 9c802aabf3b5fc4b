//! vpc-route-injector: for every region in `LBGP_REGIONS`, every transit
//! gateway tagged `lbgp:mesh=<LBGP_MESH>`, every VPC attached to it and
//! every route table of that VPC not tagged `lbgp:ignore=true`, keeps one
//! route per mesh prefix pointing at that transit gateway.
//!
//! This crate is wiring and I/O: what to read ([`Injector::read`]); the
//! rules are `lbgp_core::inject`'s, the loop `lbgp_runtime`'s.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::RouteTableQuery;
use lbgp_core::accounts::{AccountId, AccountsView};
use lbgp_core::config::{CommonConfig, Env, InjectorConfig};
use lbgp_core::inject::{self, InjectorView, RegionView};
use lbgp_core::migrate::MeshVpc;
use lbgp_core::topology::{Vpc, VpcAttachment, VpcRouteTable};
use lbgp_core::trigger::Subscriptions;
use lbgp_core::{OwnershipLedger, Region, RouteTableRef, TableKind};
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

/// A VPC with its tags.
type TaggedVpc = (Vpc, BTreeMap<String, String>);

/// What one region's read found.
struct RegionRead {
    view: RegionView,
    mesh_vpcs: Vec<MeshVpc>,
    accounts: Option<AccountsView>,
}

fn table_ref(region: &Region, id: &str) -> RouteTableRef {
    RouteTableRef {
        region: region.clone(),
        kind: TableKind::Vpc,
        id: id.to_owned(),
    }
}

/// The VPC tables of `region` the ledger names that `tables` does not hold
/// (the VPC detached, the TGW untagged…): read so that our routes go.
fn ledger_tables_not_read<'l>(
    ledger: &'l OwnershipLedger,
    region: &Region,
    tables: &[VpcRouteTable],
) -> Vec<&'l str> {
    let read: BTreeSet<&str> = tables.iter().map(|t| t.id.as_str()).collect();
    let extra: BTreeSet<&str> = ledger
        .iter()
        .filter(|e| &e.key.table.region == region && e.key.table.kind == TableKind::Vpc)
        .map(|e| e.key.table.id.as_str())
        .filter(|id| !read.contains(id))
        .collect();
    extra.into_iter().collect()
}

/// The VPCs and tables of a region in a cross-account mesh: each in the
/// account owning it; the ledger's tables no longer attached, in the
/// account the ledger recorded (unless it is unreadable or no longer a
/// member: those stay frozen).
async fn read_member_vpcs(
    aws: &Aws,
    region: &Region,
    attachments: &[VpcAttachment],
    ledger: &OwnershipLedger,
) -> Result<(Vec<TaggedVpc>, Vec<VpcRouteTable>, AccountsView), Error> {
    let mut accounts = lbgp_runtime::accounts::accounts_view(aws, attachments).await?;
    accounts.tables.record_ledger(ledger);
    let read = lbgp_runtime::accounts::read_owned_vpcs(
        aws,
        region,
        attachments,
        &mut accounts,
        |ec2, ids| async move {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            futures::try_join!(
                ec2.vpcs_tagged(&ids),
                ec2.vpc_route_tables(RouteTableQuery::Vpcs(&ids)),
            )
        },
    )
    .await;
    let (mut tagged, mut tables) = (Vec::new(), Vec::new());
    for (account, (v, t)) in read {
        let owner = account.unwrap_or_else(|| accounts.membership.home().clone());
        for table in &t {
            accounts
                .tables
                .insert(table_ref(region, &table.id), owner.clone());
        }
        tagged.extend(v);
        tables.extend(t);
    }
    // The ledger's tables not read above, by the account it recorded.
    let mut extra: BTreeMap<AccountId, Vec<&str>> = BTreeMap::new();
    for id in ledger_tables_not_read(ledger, region, &tables) {
        let owner = accounts.tables.owner(&table_ref(region, id)).clone();
        extra.entry(owner).or_default().push(id);
    }
    for (owner, ids) in extra {
        if accounts.unreadable.contains_key(&owner) {
            continue;
        }
        if !accounts.membership.contains(&owner) {
            accounts.unreadable.insert(
                owner,
                "no longer a member (LBGP_ACCOUNTS): lbgp's routes there are left as they are".to_owned(),
            );
            continue;
        }
        let home = owner == *accounts.membership.home();
        let read = async {
            let ec2 = aws.ec2_in((!home).then_some(&owner), region).await?;
            ec2.vpc_route_tables(RouteTableQuery::Ids(&ids)).await
        };
        match read.await {
            Ok(more) => tables.extend(more),
            Err(e) => {
                let why = lbgp_runtime::accounts::why_unreadable(&e, &aws.members.config().role);
                accounts.unreadable.insert(owner, why);
            }
        }
    }
    Ok((tagged, tables, accounts))
}

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
    ) -> Result<RegionRead, Error> {
        let ec2 = aws.ec2(region)?;
        let transit_gateways = ec2.mesh_transit_gateways(&self.config.common.mesh).await?;
        let tgw_ids: Vec<&str> = transit_gateways.iter().map(|t| t.id.as_str()).collect();
        let attachments = ec2.vpc_attachments(&tgw_ids).await?;
        let (tagged, tables, accounts) = if aws.members.is_cross_account() {
            let (tagged, tables, accounts) = read_member_vpcs(aws, region, &attachments, ledger).await?;
            (tagged, tables, Some(accounts))
        } else {
            let vpc_ids = inject::vpcs_to_read(&attachments);
            let (tagged, mut tables) = futures::try_join!(
                ec2.vpcs_tagged(&vpc_ids),
                ec2.vpc_route_tables(RouteTableQuery::Vpcs(&vpc_ids)),
            )?;
            let extra = ledger_tables_not_read(ledger, region, &tables);
            tables.extend(ec2.vpc_route_tables(RouteTableQuery::Ids(&extra)).await?);
            (tagged, tables, None)
        };
        let mesh_vpcs: Vec<MeshVpc> = tagged
            .iter()
            .map(|(vpc, tags)| MeshVpc {
                vpc: vpc.clone(),
                region: region.clone(),
                tags: tags.clone(),
            })
            .collect();
        let vpcs = tagged.into_iter().map(|(v, _)| v).collect();
        Ok(RegionRead {
            view: RegionView {
                region: region.clone(),
                transit_gateways,
                attachments,
                vpcs,
                tables,
            },
            mesh_vpcs,
            accounts,
        })
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
        let mut accounts: Option<AccountsView> = None;
        let mut views = Vec::new();
        let mut vpcs = Vec::new();
        for r in read {
            views.push(r.view);
            vpcs.push(r.mesh_vpcs);
            merge_accounts(&mut accounts, r.accounts);
        }
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
            for r in more {
                views.push(r.view);
                vpcs.push(r.mesh_vpcs);
                merge_accounts(&mut accounts, r.accounts);
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
                        account: None,
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
            accounts,
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

    /// Not with the prefix-list style yet: its lists are created in the
    /// home account, where a member's route table cannot reference them.
    fn manages_accounts(&self) -> bool {
        !prefix_lists::enabled(&self.config)
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
        let accounts = view.accounts.take();
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
        if let Some(accounts) = &accounts {
            accounts.guard(&mut desire, &ledger);
        }
        let tables = accounts.map(|a| a.tables);
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
            unit.tables = tables;
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
        unit.tables = tables;
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

/// Adds one region's accounts to what the others found.
fn merge_accounts(all: &mut Option<AccountsView>, region: Option<AccountsView>) {
    match (all.as_mut(), region) {
        (Some(all), Some(r)) => all.merge(r),
        (None, r) => *all = r,
        (Some(_), None) => {}
    }
}

/// The function: the injector and its clients, built once per process.
pub type App = lbgp_runtime::App<Injector>;

/// Builds the function from the process environment.
pub async fn app_from_env() -> App {
    App::from_env(|| Env::process().injector().map(|config| Injector { config })).await
}
