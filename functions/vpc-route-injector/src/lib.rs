//! vpc-route-injector: for every region in `LBGP_REGIONS`, every transit
//! gateway tagged `lbgp:mesh=<LBGP_MESH>`, every VPC attached to it and
//! every route table of that VPC not tagged `lbgp:ignore=true`, keeps one
//! route per mesh prefix pointing at that transit gateway.
//!
//! The handler is [`App::handle`]; the reconcile logic is [`Injector`],
//! driven by the shared loop in [`lbgp_aws::runtime`].

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use lbgp_aws::Error;
use lbgp_aws::context::Aws;
use lbgp_aws::ec2::{RouteTableQuery, TAG_IGNORE, TransitGateway, Vpc, VpcRouteTable};
use lbgp_aws::runtime::{Observation, Reconciler, read_each_region};
use lbgp_core::config::{CommonConfig, Env, InjectMode, InjectorConfig};
use lbgp_core::prefix::{aggregate, summarize_to_fit};
use lbgp_core::report::{ErrorReport, SkipReport};
use lbgp_core::trigger::Subscriptions;
use lbgp_core::{
    Cidr, DesiredRoute, OwnershipLedger, Region, RouteKey, RouteTableRef, RouteTarget, TableKind,
};

/// The binary and function name.
pub const FUNCTION: &str = "vpc-route-injector";

/// CloudTrail events that can change what the injector should do.
pub const API_CALLS: &[&str] = &[
    "CreateTransitGatewayVpcAttachment",
    "DeleteTransitGatewayVpcAttachment",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "CreateRouteTable",
    "CreateRoute",
    "DeleteRoute",
    "ReplaceRoute",
    "CreateTags",
    "DeleteTags",
];

/// The injector's reconcile logic.
#[derive(Debug, Clone)]
pub struct Injector {
    /// Its configuration.
    pub config: InjectorConfig,
}

/// What one region looks like to the injector.
struct RegionView {
    region: Region,
    /// VPC id → (member TGW, VPC).
    attached: BTreeMap<String, (TransitGateway, Vpc)>,
    tables: Vec<VpcRouteTable>,
}

impl Injector {
    async fn read_region(
        &self,
        aws: &Aws,
        region: &Region,
        ledger: &OwnershipLedger,
    ) -> Result<RegionView, Error> {
        let ec2 = aws.ec2(region)?;
        let tgws = ec2.mesh_transit_gateways(&self.config.common.mesh).await?;
        let tgw_ids: Vec<&str> = tgws.iter().map(|t| t.id.as_str()).collect();
        let attachments = ec2.vpc_attachments(&tgw_ids).await?;
        // A VPC attached to two member TGWs of one region is served by the
        // lowest id: deterministic, and the same answer on every run.
        let mut vpc_tgw: BTreeMap<String, TransitGateway> = BTreeMap::new();
        for a in attachments.iter().filter(|a| a.state == "available") {
            if let Some(tgw) = tgws.iter().find(|t| t.id == a.transit_gateway_id) {
                vpc_tgw
                    .entry(a.vpc_id.clone())
                    .and_modify(|t| {
                        if tgw.id < t.id {
                            *t = tgw.clone();
                        }
                    })
                    .or_insert_with(|| tgw.clone());
            }
        }
        let vpc_ids: Vec<&str> = vpc_tgw.keys().map(String::as_str).collect();
        let vpcs = ec2.vpcs(&vpc_ids).await?;
        let mut tables = ec2.vpc_route_tables(RouteTableQuery::Vpcs(&vpc_ids)).await?;
        // Tables holding routes of ours that are no longer in scope (VPC
        // detached, TGW untagged): read them too, so their routes are removed.
        let read: BTreeSet<&str> = tables.iter().map(|t| t.id.as_str()).collect();
        let extra: BTreeSet<&str> = ledger
            .iter()
            .filter(|e| &e.key.table.region == region && e.key.table.kind == TableKind::Vpc)
            .map(|e| e.key.table.id.as_str())
            .filter(|id| !read.contains(id))
            .collect();
        let extra: Vec<&str> = extra.into_iter().collect();
        tables.extend(ec2.vpc_route_tables(RouteTableQuery::Ids(&extra)).await?);
        let attached = vpcs
            .into_iter()
            .filter_map(|vpc| Some((vpc.id.clone(), (vpc_tgw.get(&vpc.id)?.clone(), vpc))))
            .collect();
        Ok(RegionView {
            region: region.clone(),
            attached,
            tables,
        })
    }

    /// The prefixes one route table should carry, or the reason it cannot.
    fn prefixes_for(
        &self,
        own: &Vpc,
        mesh_cidrs: &[(String, Cidr)],
        skipped: &mut Vec<SkipReport>,
        region: &Region,
        table_id: &str,
    ) -> Result<Vec<Cidr>, String> {
        let has_v6 = own.cidrs.iter().any(Cidr::is_ipv6);
        let mut skip = |p: &Cidr, reason: String| {
            skipped.push(SkipReport {
                region: region.to_string(),
                resource: table_id.to_owned(),
                destination: Some(p.to_string()),
                reason,
            })
        };
        match self.config.inject_mode {
            InjectMode::Aggregate => {
                let mut out = Vec::new();
                for p in &self.config.prefixes {
                    if p.is_ipv6() && !has_v6 {
                        continue;
                    }
                    // A route equal to or inside the VPC's own CIDR would
                    // hijack the VPC's own traffic (or be refused by AWS).
                    if let Some(c) = own.cidrs.iter().find(|c| c.contains(p)) {
                        skip(p, format!("inside the VPC's own CIDR {c} ({})", own.id));
                        continue;
                    }
                    out.push(*p);
                }
                Ok(out)
            }
            InjectMode::Specific => {
                let mut cover = Vec::new();
                for (vpc_id, c) in mesh_cidrs.iter().filter(|(v, _)| v != &own.id) {
                    if c.is_ipv6() && !has_v6 {
                        continue;
                    }
                    if let Some(o) = own.cidrs.iter().find(|o| o.overlaps(c)) {
                        skip(c, format!("{vpc_id}'s CIDR overlaps this VPC's own CIDR {o}"));
                        continue;
                    }
                    cover.push(*c);
                }
                let aggregated = aggregate(&cover);
                if aggregated.len() <= self.config.route_quota {
                    return Ok(aggregated);
                }
                summarize_to_fit(&aggregated, &own.cidrs, self.config.route_quota).map_err(|e| {
                    format!(
                        "{} mesh prefixes do not fit LBGP_ROUTE_QUOTA={} for {table_id}: {e}; table left unchanged",
                        aggregated.len(),
                        self.config.route_quota
                    )
                })
            }
        }
    }
}

#[async_trait]
impl Reconciler for Injector {
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

    async fn observe(&self, aws: &Aws, regions: &[Region], ledger: &OwnershipLedger) -> Observation {
        let mut obs = Observation::default();
        // Specific mode needs every mesh VPC's CIDRs, whatever the scope.
        let read_regions: Vec<Region> = match self.config.inject_mode {
            InjectMode::Specific => self.config.common.regions.clone(),
            InjectMode::Aggregate => regions.to_vec(),
        };
        let ok_views = read_each_region(&read_regions, &mut obs.errors, |r| {
            self.read_region(aws, r, ledger)
        })
        .await;
        let all_read = ok_views.len() == read_regions.len();
        if self.config.inject_mode == InjectMode::Specific && !all_read {
            // Without every region the specific prefix set is incomplete:
            // planning on it would delete good routes. Change nothing.
            return obs;
        }
        let mesh_cidrs: Vec<(String, Cidr)> = ok_views
            .iter()
            .flat_map(|v| v.attached.values())
            .flat_map(|(_, vpc)| vpc.cidrs.iter().map(|c| (vpc.id.clone(), *c)))
            .collect();
        for view in ok_views.into_iter().filter(|v| regions.contains(&v.region)) {
            obs.complete_regions.insert(view.region.clone());
            for table in &view.tables {
                let table_ref = RouteTableRef {
                    region: view.region.clone(),
                    kind: TableKind::Vpc,
                    id: table.id.clone(),
                };
                obs.actual.extend(table.routes.iter().map(|r| r.route.clone()));
                let Some((tgw, vpc)) = view.attached.get(&table.vpc_id) else {
                    continue;
                };
                if table
                    .tags
                    .get(TAG_IGNORE)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                {
                    obs.skipped.push(SkipReport {
                        region: view.region.to_string(),
                        resource: table.id.clone(),
                        destination: None,
                        reason: format!("route table tagged {TAG_IGNORE}=true"),
                    });
                    continue;
                }
                match self.prefixes_for(vpc, &mesh_cidrs, &mut obs.skipped, &view.region, &table.id) {
                    Ok(prefixes) => {
                        obs.desired
                            .extend(prefixes.into_iter().map(|destination| DesiredRoute {
                                key: RouteKey {
                                    table: table_ref.clone(),
                                    destination,
                                },
                                target: RouteTarget::TransitGateway(tgw.id.clone()),
                            }))
                    }
                    Err(error) => {
                        tracing::error!(region = %view.region, route_table_id = %table.id, error = %error, "table refused");
                        obs.frozen_tables.insert(table_ref.clone());
                        obs.errors.push(ErrorReport {
                            region: view.region.to_string(),
                            resource: Some(table.id.clone()),
                            error,
                        });
                    }
                }
            }
        }
        obs.skipped.sort();
        obs.skipped.dedup();
        obs
    }
}

/// The function: the injector and its clients, built once per process.
pub type App = lbgp_aws::runtime::App<Injector>;

/// Builds the function from the process environment.
pub async fn app_from_env() -> App {
    App::from_env(|| Env::process().injector().map(|config| Injector { config })).await
}
