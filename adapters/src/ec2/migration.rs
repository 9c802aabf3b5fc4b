//! What a migration reads and writes besides routes: the route table each
//! VPC attachment is associated with (the path tracer follows it), and the
//! `lbgp:migration` tag a cutover or rollback sets.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Tag;

use super::{Ec2, FILTER_VALUES_PER_CALL, filter};
use crate::Error;

impl Ec2 {
    /// The TGW route table each VPC attachment of `tgw_ids` is associated
    /// with (`None`: none, or one on its way out — what arrives over it is
    /// dropped).
    pub async fn vpc_attachment_associations(
        &self,
        tgw_ids: &[&str],
    ) -> Result<BTreeMap<String, Option<String>>, Error> {
        let mut out = BTreeMap::new();
        for chunk in tgw_ids.chunks(FILTER_VALUES_PER_CALL) {
            let items: Vec<_> = self
                .client
                .describe_transit_gateway_attachments()
                .filters(filter("transit-gateway-id", chunk))
                .filters(filter("resource-type", &["vpc"]))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("DescribeTransitGatewayAttachments", e))?;
            for a in items {
                let table = a.association().and_then(|assoc| {
                    let state = assoc.state().map(|s| s.as_str()).unwrap_or("associated");
                    matches!(state, "associated" | "associating")
                        .then(|| assoc.transit_gateway_route_table_id().map(str::to_owned))
                        .flatten()
                });
                out.insert(
                    a.transit_gateway_attachment_id().unwrap_or_default().to_owned(),
                    table,
                );
            }
        }
        Ok(out)
    }

    /// Sets one tag on a resource (a mutating call: it waits for the
    /// region's write token like the route writes).
    pub async fn set_tag(&self, resource: &str, key: &str, value: &str) -> Result<(), Error> {
        self.writes.acquire().await;
        self.client
            .create_tags()
            .resources(resource)
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("CreateTags", e))
    }
}
