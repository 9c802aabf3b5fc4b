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
use lbgp_core::trigger::Subscriptions;
use lbgp_core::{OwnershipLedger, Region, TableKind};
use lbgp_runtime::read::read_each_region;
use lbgp_runtime::{Pass, Reconciler, Request, Selection, Unit, UnitPlan};

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
    ) -> Result<RegionView, Error> {
        let ec2 = aws.ec2(region)?;
        let transit_gateways = ec2.mesh_transit_gateways(&self.config.common.mesh).await?;
        let tgw_ids: Vec<&str> = transit_gateways.iter().map(|t| t.id.as_str()).collect();
        let attachments = ec2.vpc_attachments(&tgw_ids).await?;
        let vpc_ids = inject::vpcs_to_read(&attachments);
        let (vpcs, mut tables) = futures::try_join!(
            ec2.vpcs(&vpc_ids),
            ec2.vpc_route_tables(RouteTableQuery::Vpcs(&vpc_ids)),
        )?;
        let read: BTreeSet<&str> = tables.iter().map(|t| t.id.as_str()).collect();
        let extra: BTreeSet<&str> = ledger
            .iter()
            .filter(|e| &e.key.table.region == region && e.key.table.kind == TableKind::Vpc)
            .map(|e| e.key.table.id.as_str())
            .filter(|id| !read.contains(id))
            .collect();
        let extra: Vec<&str> = extra.into_iter().collect();
        tables.extend(ec2.vpc_route_tables(RouteTableQuery::Ids(&extra)).await?);
        Ok(RegionView {
            region: region.clone(),
            transit_gateways,
            attachments,
            vpcs,
            tables,
        })
    }

    /// Reads what reconciling `scope` depends on.
    pub async fn read(&self, aws: &Aws, scope: &[Region], ledger: &OwnershipLedger) -> InjectorView {
        let regions = inject::regions_to_read(&self.config, scope);
        let (regions, unreadable) = read_each_region(&regions, |r| self.read_region(aws, r, ledger)).await;
        InjectorView {
            scope: scope.to_vec(),
            regions,
            unreadable,
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
        let view = self.read(aws, pass.regions, &ledger).await;
        let mut desire = inject::desire(view, &ledger, &self.config);
        desire.settle(&ledger, aws.store.clock().now());
        let plan = inject::plan(&mut desire, &ledger, &self.config);
        Ok(UnitPlan::owned(desire, plan))
    }
}

/// The function: the injector and its clients, built once per process.
pub type App = lbgp_runtime::App<Injector>;

/// Builds the function from the process environment.
pub async fn app_from_env() -> App {
    App::from_env(|| Env::process().injector().map(|config| Injector { config })).await
}
