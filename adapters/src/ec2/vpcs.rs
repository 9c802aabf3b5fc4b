//! VPCs, their route tables and subnets.

use lbgp_core::accounts::AccountId;
use std::collections::BTreeMap;

use lbgp_core::failover::ListRoute;
use lbgp_core::topology::{Vpc, VpcRoute, VpcRouteTable};
use lbgp_core::{Route, RouteKey, RouteOrigin, RouteState, RouteTarget, TableKind};

use super::{Ec2, FILTER_VALUES_PER_CALL, RouteTableQuery, filter, tags};
use crate::Error;

impl Ec2 {
    /// VPCs by id, with every associated CIDR block.
    pub async fn vpcs(&self, vpc_ids: &[&str]) -> Result<Vec<Vpc>, Error> {
        Ok(self
            .vpcs_tagged(vpc_ids)
            .await?
            .into_iter()
            .map(|(v, _)| v)
            .collect())
    }

    /// VPCs by id, with every associated CIDR block and their tags.
    pub async fn vpcs_tagged(&self, vpc_ids: &[&str]) -> Result<Vec<(Vpc, BTreeMap<String, String>)>, Error> {
        if vpc_ids.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        for chunk in vpc_ids.chunks(FILTER_VALUES_PER_CALL) {
            let items = self
                .client
                .describe_vpcs()
                .filters(filter("vpc-id", chunk))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeVpcs", e))?;
            for vpc in items {
                let mut cidrs = Vec::new();
                for assoc in vpc.cidr_block_association_set() {
                    let associated = assoc
                        .cidr_block_state()
                        .and_then(|s| s.state())
                        .is_none_or(|s| s.as_str() == "associated");
                    if let (true, Some(block)) = (associated, assoc.cidr_block()) {
                        cidrs.push(self.parse_cidr(block, "DescribeVpcs")?);
                    }
                }
                if cidrs.is_empty()
                    && let Some(block) = vpc.cidr_block()
                {
                    cidrs.push(self.parse_cidr(block, "DescribeVpcs")?);
                }
                for assoc in vpc.ipv6_cidr_block_association_set() {
                    let associated = assoc
                        .ipv6_cidr_block_state()
                        .and_then(|s| s.state())
                        .is_none_or(|s| s.as_str() == "associated");
                    if let (true, Some(block)) = (associated, assoc.ipv6_cidr_block()) {
                        cidrs.push(self.parse_cidr(block, "DescribeVpcs")?);
                    }
                }
                cidrs.sort();
                cidrs.dedup();
                out.push((
                    Vpc {
                        id: vpc.vpc_id().unwrap_or_default().to_owned(),
                        cidrs,
                    },
                    tags(vpc.tags()),
                ));
            }
        }
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(out)
    }

    /// Route tables of the given VPCs, or with the given ids, with routes.
    pub async fn vpc_route_tables(&self, by: RouteTableQuery<'_>) -> Result<Vec<VpcRouteTable>, Error> {
        Ok(self
            .vpc_route_tables_with_lists(by)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect())
    }

    /// [`Ec2::vpc_route_tables`], each table with its routes whose
    /// destination is a managed prefix list (`DestinationPrefixListId`),
    /// from the same reads.
    pub async fn vpc_route_tables_with_lists(
        &self,
        by: RouteTableQuery<'_>,
    ) -> Result<Vec<(VpcRouteTable, Vec<ListRoute>)>, Error> {
        let (name, ids) = match by {
            RouteTableQuery::Vpcs(ids) => ("vpc-id", ids),
            RouteTableQuery::Ids(ids) => ("route-table-id", ids),
        };
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        for rt in self.route_tables_where(name, ids).await? {
            let id = rt.route_table_id().unwrap_or_default().to_owned();
            let table = self.table_ref(TableKind::Vpc, &id);
            let mut routes = Vec::new();
            let mut lists = Vec::new();
            for r in rt.routes() {
                let destination = match (r.destination_cidr_block(), r.destination_ipv6_cidr_block()) {
                    (Some(c), _) | (None, Some(c)) => Some(self.parse_cidr(c, "DescribeRouteTables")?),
                    (None, None) if r.destination_prefix_list_id().is_some() => None,
                    (None, None) => continue,
                };
                let origin = route_origin(r);
                let target = route_target(r);
                let state = match r.state().map(|s| s.as_str()) {
                    Some("blackhole") => RouteState::Blackhole,
                    _ => RouteState::Active,
                };
                let Some(destination) = destination else {
                    lists.push(ListRoute {
                        prefix_list_id: r.destination_prefix_list_id().unwrap_or_default().to_owned(),
                        target,
                        state,
                        origin,
                        instance_id: r.instance_id().map(str::to_owned),
                        network_interface_id: r.network_interface_id().map(str::to_owned),
                    });
                    continue;
                };
                routes.push(VpcRoute {
                    route: Route {
                        key: RouteKey {
                            table: table.clone(),
                            destination,
                        },
                        target,
                        state,
                        origin,
                    },
                    instance_id: r.instance_id().map(str::to_owned),
                    network_interface_id: r.network_interface_id().map(str::to_owned),
                });
            }
            routes.sort_by(|a, b| a.route.cmp(&b.route));
            lists.sort();
            let read = VpcRouteTable {
                id,
                vpc_id: rt.vpc_id().unwrap_or_default().to_owned(),
                main: rt.associations().iter().any(|a| a.main() == Some(true)),
                subnet_ids: rt
                    .associations()
                    .iter()
                    .filter_map(|a| a.subnet_id().map(str::to_owned))
                    .collect(),
                gateway_ids: rt
                    .associations()
                    .iter()
                    .filter_map(|a| a.gateway_id().map(str::to_owned))
                    .collect(),
                tags: tags(rt.tags()),
                routes,
                owner: rt.owner_id().and_then(AccountId::new),
            };
            out.push((read, lists));
        }
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(out)
    }

    /// Availability zone of each subnet.
    pub async fn subnet_zones(&self, subnet_ids: &[&str]) -> Result<BTreeMap<String, String>, Error> {
        self.subnet_zones_by("subnet-id", subnet_ids).await
    }

    /// Availability zone of every subnet of these VPCs: for a caller that
    /// knows the VPCs before it has read their route tables.
    pub async fn vpc_subnet_zones(&self, vpc_ids: &[&str]) -> Result<BTreeMap<String, String>, Error> {
        self.subnet_zones_by("vpc-id", vpc_ids).await
    }

    async fn subnet_zones_by(&self, name: &str, values: &[&str]) -> Result<BTreeMap<String, String>, Error> {
        if values.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut zones = BTreeMap::new();
        for chunk in values.chunks(FILTER_VALUES_PER_CALL) {
            let items = self
                .client
                .describe_subnets()
                .filters(filter(name, chunk))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeSubnets", e))?;
            zones.extend(
                items
                    .into_iter()
                    .filter_map(|s| Some((s.subnet_id()?.to_owned(), s.availability_zone()?.to_owned()))),
            );
        }
        Ok(zones)
    }
}

impl Ec2 {
    /// Every route table whose `name` filter matches one of `values`, every
    /// page, in calls of at most [`FILTER_VALUES_PER_CALL`] values.
    pub(super) async fn route_tables_where(
        &self,
        name: &str,
        values: &[&str],
    ) -> Result<Vec<aws_sdk_ec2::types::RouteTable>, Error> {
        let mut out = Vec::new();
        for chunk in values.chunks(FILTER_VALUES_PER_CALL) {
            let items: Vec<_> = self
                .client
                .describe_route_tables()
                .filters(filter(name, chunk))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeRouteTables", e))?;
            out.extend(items);
        }
        Ok(out)
    }
}

/// Where a VPC route points, as DescribeRouteTables says.
pub(super) fn route_target(r: &aws_sdk_ec2::types::Route) -> RouteTarget {
    if let Some(t) = r.transit_gateway_id() {
        RouteTarget::TransitGateway(t.to_owned())
    } else if let Some(eni) = r.network_interface_id() {
        RouteTarget::NetworkInterface(eni.to_owned())
    } else if let Some(i) = r.instance_id() {
        RouteTarget::Instance(i.to_owned())
    } else {
        RouteTarget::Other(
            [
                r.gateway_id(),
                r.nat_gateway_id(),
                r.vpc_peering_connection_id(),
                r.local_gateway_id(),
                r.carrier_gateway_id(),
                r.egress_only_internet_gateway_id(),
                r.core_network_arn(),
            ]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or("unknown")
            .to_owned(),
        )
    }
}

/// How a VPC route came to be, as DescribeRouteTables says.
pub(super) fn route_origin(r: &aws_sdk_ec2::types::Route) -> RouteOrigin {
    match r.origin().map(|o| o.as_str()) {
        Some("CreateRouteTable") => RouteOrigin::Local,
        Some("EnableVgwRoutePropagation") => RouteOrigin::Propagated,
        _ => RouteOrigin::Static,
    }
}
