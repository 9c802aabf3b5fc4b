//! The vpc-route-injector's rules: which routes every route table of every
//! VPC attached to a mesh transit gateway should hold.
//!
//! - A VPC is *attached* when an `available` attachment connects it to a
//!   member TGW (tagged `lbgp:mesh=<mesh>`, up); a VPC attached to two
//!   member TGWs of one region is served by the lowest id.
//! - Every route table of an attached VPC, unless tagged `lbgp:ignore=true`,
//!   gets one route per mesh prefix toward that TGW: the `LBGP_PREFIXES`
//!   aggregates, or (specific mode) every other mesh VPC's CIDRs,
//!   aggregated and summarised to fit `LBGP_ROUTE_QUOTA`.
//! - A prefix equal to or inside the VPC's own CIDR is never installed (it
//!   would hijack the VPC's own traffic); IPv6 prefixes only go to VPCs with
//!   an IPv6 block.

use std::collections::BTreeMap;

use crate::config::{InjectMode, InjectorConfig};
use crate::desire::Desire;
use crate::model::{DesiredRoute, Region, RouteKey, RouteTableRef, RouteTarget, TableKind};
use crate::prefix::{Cidr, aggregate, summarize_to_fit};
use crate::report::{ErrorReport, SkipReport};
use crate::topology::{
    AttachmentState, Lifecycle, TAG_IGNORE, TransitGateway, Vpc, VpcAttachment, VpcRouteTable,
};

/// One region as the injector reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionView {
    /// The region.
    pub region: Region,
    /// Transit gateways tagged with the mesh (any state).
    pub transit_gateways: Vec<TransitGateway>,
    /// The VPC attachments of those transit gateways (any state).
    pub attachments: Vec<VpcAttachment>,
    /// The VPCs those attachments name.
    pub vpcs: Vec<Vpc>,
    /// Every route table of those VPCs, and the tables the ledger names.
    pub tables: Vec<VpcRouteTable>,
}

/// What one injector run read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InjectorView {
    /// The regions to reconcile.
    pub scope: Vec<Region>,
    /// The regions read (the scope, and in specific mode every region).
    pub regions: Vec<RegionView>,
    /// Regions that could not be read, with the reason.
    pub unreadable: Vec<ErrorReport>,
}

/// The regions a run must read to reconcile `scope`: specific mode needs
/// every mesh VPC's CIDRs, wherever the event came from.
pub fn regions_to_read(config: &InjectorConfig, scope: &[Region]) -> Vec<Region> {
    match config.inject_mode {
        InjectMode::Specific => config.common.regions.clone(),
        InjectMode::Aggregate => scope.to_vec(),
    }
}

/// The VPCs whose tables a region's read must include: every VPC an
/// attachment of a mesh TGW names, whatever its state (the rules decide).
pub fn vpcs_to_read(attachments: &[VpcAttachment]) -> Vec<&str> {
    let mut ids: Vec<&str> = attachments.iter().map(|a| a.vpc_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Each attached VPC and the member TGW that serves it.
fn attached<'a>(view: &'a RegionView, mesh: &str) -> BTreeMap<&'a str, &'a TransitGateway> {
    let mut served: BTreeMap<&str, &TransitGateway> = BTreeMap::new();
    for a in view
        .attachments
        .iter()
        .filter(|a| a.state == AttachmentState::Available)
    {
        let Some(tgw) = view.transit_gateways.iter().find(|t| {
            t.id == a.transit_gateway_id && t.in_mesh(mesh) && t.state.lifecycle() == Lifecycle::Up
        }) else {
            continue;
        };
        // The lowest id serves a VPC attached twice: the same on every run.
        served
            .entry(a.vpc_id.as_str())
            .and_modify(|t| {
                if tgw.id < t.id {
                    *t = tgw;
                }
            })
            .or_insert(tgw);
    }
    served
}

/// The injector's desired state for what `view` shows.
pub fn desire(view: InjectorView, config: &InjectorConfig) -> Desire {
    let mesh = &config.common.mesh;
    let mut out = Desire {
        errors: view.unreadable,
        ..Desire::default()
    };
    if config.inject_mode == InjectMode::Specific && !out.errors.is_empty() {
        // Without every region the specific prefix set is incomplete:
        // planning on it would delete good routes. Change nothing.
        return out;
    }
    let mesh_cidrs: Vec<(String, Cidr)> = view
        .regions
        .iter()
        .flat_map(|r| {
            let served = attached(r, mesh);
            r.vpcs
                .iter()
                .filter(move |v| served.contains_key(v.id.as_str()))
                .flat_map(|v| v.cidrs.iter().map(|c| (v.id.clone(), *c)))
                .collect::<Vec<_>>()
        })
        .collect();
    for region_view in view.regions {
        let region = region_view.region.clone();
        if !view.scope.contains(&region) {
            continue;
        }
        out.complete_regions.insert(region.clone());
        let served: BTreeMap<String, (String, Vpc)> = attached(&region_view, mesh)
            .into_iter()
            .filter_map(|(vpc_id, tgw)| {
                let vpc = region_view.vpcs.iter().find(|v| v.id == vpc_id)?;
                Some((vpc_id.to_owned(), (tgw.id.clone(), vpc.clone())))
            })
            .collect();
        for table in region_view.tables {
            let table_ref = RouteTableRef {
                region: region.clone(),
                kind: TableKind::Vpc,
                id: table.id.clone(),
            };
            let Some((tgw_id, vpc)) = served.get(&table.vpc_id) else {
                out.actual.extend(table.routes.into_iter().map(|r| r.route));
                continue;
            };
            if table.ignored() {
                out.skipped.push(SkipReport {
                    region: region.to_string(),
                    resource: table.id.clone(),
                    destination: None,
                    reason: format!("route table tagged {TAG_IGNORE}=true"),
                });
            } else {
                match prefixes_for(config, vpc, &mesh_cidrs, &mut out.skipped, &region, &table.id) {
                    Ok(prefixes) => {
                        out.desired
                            .extend(prefixes.into_iter().map(|destination| DesiredRoute {
                                key: RouteKey {
                                    table: table_ref.clone(),
                                    destination,
                                },
                                target: RouteTarget::TransitGateway(tgw_id.clone()),
                            }))
                    }
                    Err(error) => out.refuse(table_ref, error),
                }
            }
            out.actual.extend(table.routes.into_iter().map(|r| r.route));
        }
    }
    out.normalise();
    out
}

/// The prefixes one route table should carry, or the reason it cannot.
fn prefixes_for(
    config: &InjectorConfig,
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
    match config.inject_mode {
        InjectMode::Aggregate => {
            let mut out = Vec::new();
            for p in &config.prefixes {
                if p.is_ipv6() && !has_v6 {
                    continue;
                }
                // A route equal to or inside the VPC's own CIDR would hijack
                // the VPC's own traffic (or be refused by AWS).
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
            if aggregated.len() <= config.route_quota {
                return Ok(aggregated);
            }
            summarize_to_fit(&aggregated, &own.cidrs, config.route_quota).map_err(|e| {
                format!(
                    "{} mesh prefixes do not fit LBGP_ROUTE_QUOTA={} for {table_id}: {e}; table left unchanged",
                    aggregated.len(),
                    config.route_quota
                )
            })
        }
    }
}
