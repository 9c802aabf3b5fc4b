//! Transit gateways, their attachments, peerings and route tables.

use lbgp_core::accounts::AccountId;
use std::collections::BTreeMap;

use lbgp_core::Region;
use lbgp_core::topology::{
    AttachmentState, GatewayState, PeeringAttachment, PeeringEnd, TAG_MESH, TgwRouteTable, TransitGateway,
    VpcAttachment,
};

use super::{Ec2, FILTER_VALUES_PER_CALL, filter, tags};
use crate::Error;

impl Ec2 {
    /// Transit gateways tagged `lbgp:mesh=<mesh>`, in every state (the rules
    /// decide what a state means).
    pub async fn mesh_transit_gateways(&self, mesh: &str) -> Result<Vec<TransitGateway>, Error> {
        let tag_filter = format!("tag:{TAG_MESH}");
        let items = self
            .client
            .describe_transit_gateways()
            .filters(filter(&tag_filter, &[mesh]))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeTransitGateways", e))?;
        let mut out: Vec<TransitGateway> = items
            .into_iter()
            .map(|tgw| {
                let options = tgw.options();
                TransitGateway {
                    id: tgw.transit_gateway_id().unwrap_or_default().to_owned(),
                    region: self.region.clone(),
                    state: GatewayState::from_aws(tgw.state().map(|s| s.as_str()).unwrap_or_default()),
                    default_association_route_table: options
                        .and_then(|o| o.association_default_route_table_id())
                        .filter(|_| {
                            options
                                .and_then(|o| o.default_route_table_association())
                                .is_some_and(|v| v.as_str() == "enable")
                        })
                        .map(str::to_owned),
                    tags: tags(tgw.tags()),
                }
            })
            // The filter is applied again here: a member must carry the
            // exact tag, whatever the server's filtering does.
            .filter(|t| t.in_mesh(mesh))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// VPC attachments of the given transit gateways (every state).
    pub async fn vpc_attachments(&self, tgw_ids: &[&str]) -> Result<Vec<VpcAttachment>, Error> {
        let mut out = Vec::new();
        for chunk in tgw_ids.chunks(FILTER_VALUES_PER_CALL) {
            let items = self
                .client
                .describe_transit_gateway_vpc_attachments()
                .filters(filter("transit-gateway-id", chunk))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeTransitGatewayVpcAttachments", e))?;
            out.extend(
                items
                    .into_iter()
                    .filter(|a| a.transit_gateway_id().is_some_and(|t| chunk.contains(&t)))
                    .map(|a| VpcAttachment {
                        id: a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                        transit_gateway_id: a.transit_gateway_id().unwrap_or_default().to_owned(),
                        vpc_id: a.vpc_id().unwrap_or_default().to_owned(),
                        state: AttachmentState::from_aws(a.state().map(|s| s.as_str()).unwrap_or_default()),
                        ipv6_support: a
                            .options()
                            .and_then(|o| o.ipv6_support())
                            .is_some_and(|v| v.as_str() == "enable"),
                        vpc_owner: a.vpc_owner_id().and_then(AccountId::new),
                    }),
            );
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every peering attachment visible in this region, with the route
    /// table this region's side is associated with (DescribeTransitGateway-
    /// PeeringAttachments does not say; DescribeTransitGatewayAttachments
    /// does, and both are read together).
    pub async fn peering_attachments(&self) -> Result<Vec<PeeringAttachment>, Error> {
        let (items, sides) = futures::try_join!(
            async {
                self.client
                    .describe_transit_gateway_peering_attachments()
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| self.err("DescribeTransitGatewayPeeringAttachments", e))
            },
            async {
                self.client
                    .describe_transit_gateway_attachments()
                    .filters(filter("resource-type", &["peering", "tgw-peering"]))
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect()
                    .await
                    .map_err(|e| self.err("DescribeTransitGatewayAttachments", e))
            },
        )?;
        // An association on its way in counts: only none (or one on its
        // way out) drops traffic.
        let route_tables: BTreeMap<String, String> = sides
            .iter()
            .filter_map(|a| {
                let assoc = a.association()?;
                let state = assoc.state().map(|s| s.as_str()).unwrap_or("associated");
                matches!(state, "associated" | "associating").then(|| {
                    (
                        a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                        assoc
                            .transit_gateway_route_table_id()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
            })
            .collect();
        let end = |info: Option<&aws_sdk_ec2::types::PeeringTgwInfo>| PeeringEnd {
            transit_gateway_id: info
                .and_then(|i| i.transit_gateway_id())
                .unwrap_or_default()
                .to_owned(),
            region: info.and_then(|i| i.region()).and_then(Region::new),
        };
        let mut out: Vec<PeeringAttachment> = items
            .iter()
            .map(|p| {
                let id = p.transit_gateway_attachment_id().unwrap_or_default().to_owned();
                PeeringAttachment {
                    route_table: route_tables.get(&id).cloned(),
                    id,
                    region: self.region.clone(),
                    requester: end(p.requester_tgw_info()),
                    accepter: end(p.accepter_tgw_info()),
                    state: AttachmentState::from_aws(p.state().map(|s| s.as_str()).unwrap_or_default()),
                }
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Route tables of the given transit gateways.
    pub async fn tgw_route_tables(&self, tgws: &[&TransitGateway]) -> Result<Vec<TgwRouteTable>, Error> {
        let mut out = Vec::new();
        for chunk in tgws.chunks(FILTER_VALUES_PER_CALL) {
            let ids: Vec<&str> = chunk.iter().map(|t| t.id.as_str()).collect();
            let items = self
                .client
                .describe_transit_gateway_route_tables()
                .filters(filter("transit-gateway-id", &ids))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeTransitGatewayRouteTables", e))?;
            out.extend(
                items
                    .into_iter()
                    .filter(|t| {
                        t.transit_gateway_id().is_some_and(|id| ids.contains(&id))
                            && t.state().is_none_or(|s| s.as_str() == "available")
                    })
                    .map(|t| {
                        let id = t.transit_gateway_route_table_id().unwrap_or_default().to_owned();
                        let tgw_id = t.transit_gateway_id().unwrap_or_default().to_owned();
                        let default_association = t.default_association_route_table() == Some(true)
                            || chunk.iter().any(|g| {
                                g.id == tgw_id
                                    && g.default_association_route_table.as_deref() == Some(id.as_str())
                            });
                        TgwRouteTable {
                            id,
                            transit_gateway_id: tgw_id,
                            default_association,
                            tags: tags(t.tags()),
                        }
                    }),
            );
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
