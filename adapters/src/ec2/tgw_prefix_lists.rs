//! TGW prefix-list references (the propagator's prefix-list route style):
//! reads into `lbgp_core::propagate::lists` types and single, paced writes.
//! The lists themselves are written by `prefix_lists.rs`.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use lbgp_core::propagate::lists::TgwReference;
use lbgp_core::{RouteTableRef, TableKind};

use super::{Ec2, WriteOutcome};
use crate::Error;

impl Ec2 {
    /// Every prefix-list reference of these TGW route tables (ours and
    /// others': the core tells them apart by the list's tags).
    pub async fn tgw_prefix_list_references(&self, tables: &[&str]) -> Result<Vec<TgwReference>, Error> {
        let mut out = Vec::new();
        for id in tables {
            let items = self
                .client
                .get_transit_gateway_prefix_list_references()
                .transit_gateway_route_table_id(*id)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("GetTransitGatewayPrefixListReferences", e))?;
            for r in items {
                let Some(list) = r.prefix_list_id() else { continue };
                let attachment_id = if r.blackhole() == Some(true) {
                    None
                } else {
                    r.transit_gateway_attachment()
                        .and_then(|a| a.transit_gateway_attachment_id())
                        .map(str::to_owned)
                };
                out.push(TgwReference {
                    table: self.table_ref(TableKind::TransitGateway, id),
                    prefix_list_id: list.to_owned(),
                    attachment_id,
                });
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Creates a reference toward an attachment. `AlreadyExists` when the
    /// table references the list already (AWS's code for it is not
    /// documented: any refusal naming the list as referenced counts).
    pub async fn create_tgw_reference(
        &self,
        table: &RouteTableRef,
        list: &str,
        attachment: &str,
    ) -> Result<WriteOutcome, Error> {
        self.writes.acquire().await;
        let sent = self
            .client
            .create_transit_gateway_prefix_list_reference()
            .transit_gateway_route_table_id(&table.id)
            .prefix_list_id(list)
            .transit_gateway_attachment_id(attachment)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(e) if e.message().is_some_and(|m| m.contains("already referenced")) => {
                Ok(WriteOutcome::AlreadyExists)
            }
            Err(e) => Err(self.err("CreateTransitGatewayPrefixListReference", e)),
        }
    }

    /// Repoints a reference.
    pub async fn modify_tgw_reference(
        &self,
        table: &RouteTableRef,
        list: &str,
        attachment: &str,
    ) -> Result<(), Error> {
        self.writes.acquire().await;
        self.client
            .modify_transit_gateway_prefix_list_reference()
            .transit_gateway_route_table_id(&table.id)
            .prefix_list_id(list)
            .transit_gateway_attachment_id(attachment)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("ModifyTransitGatewayPrefixListReference", e))
    }

    /// Deletes a reference. `NotFound` when it is gone.
    pub async fn delete_tgw_reference(
        &self,
        table: &RouteTableRef,
        list: &str,
    ) -> Result<WriteOutcome, Error> {
        self.writes.acquire().await;
        let sent = self
            .client
            .delete_transit_gateway_prefix_list_reference()
            .transit_gateway_route_table_id(&table.id)
            .prefix_list_id(list)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("InvalidRoute.NotFound") => Ok(WriteOutcome::NotFound),
            Err(e) => Err(self.err("DeleteTransitGatewayPrefixListReference", e)),
        }
    }
}
