//! Managed prefix lists and the VPC routes toward them
//! (`DestinationPrefixListId`): reads into `lbgp_core::prefix_list` types
//! and single, paced writes. Which writes to make, and in which order, is
//! the core's; retrying a modification on a version conflict is here,
//! because it needs a fresh read.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    AddPrefixListEntry, Filter, RemovePrefixListEntry, ResourceType, Tag, TagSpecification,
};
use lbgp_core::prefix_list::{Family, ListKey, ListRoute, ListState, ManagedList};
use lbgp_core::{Cidr, RouteOrigin, RouteTableRef, RouteTarget, TableKind};

use super::{Ec2, FILTER_VALUES_PER_CALL, WriteOutcome, filter, tags};
use crate::Error;

/// Error code of a modification naming a version that is not the list's
/// current one (another writer got there first).
pub const VERSION_MISMATCH: &str = "PrefixListVersionMismatch";
/// Error code of a write to a list whose previous write is still under
/// way (`*-in-progress`).
pub const INCORRECT_STATE: &str = "IncorrectState";

impl Ec2 {
    /// The lists of this region tagged `lbgp:mesh=<mesh>`, with their
    /// entries. Ownership is decided by the core on the tags read here.
    pub async fn mesh_prefix_lists(&self, mesh: &str) -> Result<Vec<ManagedList>, Error> {
        let by = filter(&format!("tag:{}", lbgp_core::topology::TAG_MESH), &[mesh]);
        let found = self.describe_prefix_lists(Some(by), &[]).await?;
        self.with_entries(found).await
    }

    /// The lists with these ids (those read tables reference), with their
    /// entries where they can be read (an AWS-managed list's may not be).
    pub async fn prefix_lists_by_id(&self, ids: &[&str]) -> Result<Vec<ManagedList>, Error> {
        let mut found = Vec::new();
        for chunk in ids.chunks(FILTER_VALUES_PER_CALL) {
            found.extend(self.describe_prefix_lists(None, chunk).await?);
        }
        let mut out = Vec::new();
        for mut list in found {
            if list.state != ListState::Deleted {
                list.entries = self.prefix_list_entries(&list.id).await.ok();
            }
            out.push(list);
        }
        Ok(out)
    }

    async fn with_entries(&self, lists: Vec<ManagedList>) -> Result<Vec<ManagedList>, Error> {
        let mut out = Vec::new();
        for mut list in lists {
            if list.state != ListState::Deleted {
                list.entries = Some(self.prefix_list_entries(&list.id).await?);
            }
            out.push(list);
        }
        out.sort();
        Ok(out)
    }

    /// One list, with its entries (after a version conflict).
    pub async fn prefix_list(&self, id: &str) -> Result<Option<ManagedList>, Error> {
        let mut lists = self.describe_prefix_lists(None, &[id]).await?;
        let Some(mut list) = lists.pop() else {
            return Ok(None);
        };
        list.entries = Some(self.prefix_list_entries(id).await?);
        Ok(Some(list))
    }

    async fn describe_prefix_lists(
        &self,
        by: Option<Filter>,
        ids: &[&str],
    ) -> Result<Vec<ManagedList>, Error> {
        let mut call = self.client.describe_managed_prefix_lists();
        if let Some(f) = by {
            call = call.filters(f);
        }
        for id in ids {
            call = call.prefix_list_ids(*id);
        }
        let items = call
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("DescribeManagedPrefixLists", e))?;
        Ok(items
            .into_iter()
            .map(|l| ManagedList {
                region: self.region.clone(),
                id: l.prefix_list_id().unwrap_or_default().to_owned(),
                name: l.prefix_list_name().unwrap_or_default().to_owned(),
                family: l.address_family().and_then(Family::from_aws),
                max_entries: l.max_entries().and_then(|m| usize::try_from(m).ok()),
                version: l.version().and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
                state: l
                    .state()
                    .map_or(ListState::Ready, |s| ListState::from_aws(s.as_str())),
                state_message: l.state_message().unwrap_or_default().to_owned(),
                tags: tags(l.tags()),
                entries: None,
            })
            .collect())
    }

    async fn prefix_list_entries(&self, id: &str) -> Result<Vec<Cidr>, Error> {
        let items = self
            .client
            .get_managed_prefix_list_entries()
            .prefix_list_id(id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| self.err("GetManagedPrefixListEntries", e))?;
        let mut out = Vec::new();
        for e in items {
            if let Some(c) = e.cidr() {
                out.push(self.parse_cidr(c, "GetManagedPrefixListEntries")?);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The prefix-list routes of these tables, and of every table that
    /// references one of `lists` (a table out of the mesh may still hold a
    /// route toward one of ours).
    pub async fn prefix_list_routes(&self, tables: &[&str], lists: &[&str]) -> Result<Vec<ListRoute>, Error> {
        let mut out = Vec::new();
        for (name, values) in [
            ("route-table-id", tables),
            ("route.destination-prefix-list-id", lists),
        ] {
            let items = self.route_tables_where(name, values).await?;
            for rt in items {
                let table = self.table_ref(TableKind::Vpc, rt.route_table_id().unwrap_or_default());
                for r in rt.routes() {
                    let Some(list) = r.destination_prefix_list_id() else {
                        continue;
                    };
                    let target = super::vpcs::route_target(r);
                    // A list route is never `local`: static or propagated.
                    let origin = match super::vpcs::route_origin(r) {
                        RouteOrigin::Local => RouteOrigin::Static,
                        other => other,
                    };
                    out.push(ListRoute {
                        table: table.clone(),
                        prefix_list_id: list.to_owned(),
                        target,
                        origin,
                    });
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Creates a list of ours, tagged in the same call (so a list of ours
    /// never exists untagged), with up to 100 entries; returns its id and
    /// version. `client_token` makes a retried create return the same list.
    pub async fn create_prefix_list(
        &self,
        (key, mesh, name): (&ListKey, &str, &str),
        max_entries: usize,
        entries: &[Cidr],
        client_token: &str,
    ) -> Result<(String, u64), Error> {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::PrefixList);
        for (k, v) in key.tags(mesh) {
            spec = spec.tags(Tag::builder().key(k).value(v).build());
        }
        let mut call = self
            .client
            .create_managed_prefix_list()
            .prefix_list_name(name)
            .address_family(key.family.as_aws())
            .max_entries(i32::try_from(max_entries).unwrap_or(i32::MAX))
            .tag_specifications(spec.build())
            .client_token(client_token);
        for e in entries {
            call = call.entries(AddPrefixListEntry::builder().cidr(e.to_string()).build());
        }
        self.writes.acquire().await;
        let out = call
            .send()
            .await
            .map_err(|e| self.err("CreateManagedPrefixList", e))?;
        let list = out.prefix_list();
        let id = list
            .and_then(|l| l.prefix_list_id())
            .ok_or_else(|| Error::Unexpected {
                operation: "CreateManagedPrefixList",
                region: self.region.to_string(),
                detail: "no prefix list id in the response".to_owned(),
            })?;
        let version = list
            .and_then(|l| l.version())
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(1);
        Ok((id.to_owned(), version))
    }

    /// One entry change (at most 100 added and 100 removed), naming the
    /// version it was computed from; returns the new version.
    pub async fn modify_prefix_list_entries(
        &self,
        id: &str,
        version: u64,
        add: &[Cidr],
        remove: &[Cidr],
    ) -> Result<u64, Error> {
        let mut call = self
            .client
            .modify_managed_prefix_list()
            .prefix_list_id(id)
            .current_version(i64::try_from(version).unwrap_or(i64::MAX));
        for e in add {
            call = call.add_entries(AddPrefixListEntry::builder().cidr(e.to_string()).build());
        }
        for e in remove {
            call = call.remove_entries(RemovePrefixListEntry::builder().cidr(e.to_string()).build());
        }
        self.writes.acquire().await;
        let out = call
            .send()
            .await
            .map_err(|e| self.err("ModifyManagedPrefixList", e))?;
        Ok(out
            .prefix_list()
            .and_then(|l| l.version())
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(version + 1))
    }

    /// Changes a list's max entries (alone: AWS takes no entry change in
    /// the same call). AWS refuses it when a referencing resource cannot
    /// hold the new size.
    pub async fn resize_prefix_list(&self, id: &str, max_entries: usize) -> Result<(), Error> {
        self.writes.acquire().await;
        self.client
            .modify_managed_prefix_list()
            .prefix_list_id(id)
            .max_entries(i32::try_from(max_entries).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("ModifyManagedPrefixList", e))
    }

    /// Deletes a list. `NotFound` when it is already gone.
    pub async fn delete_prefix_list(&self, id: &str) -> Result<WriteOutcome, Error> {
        self.writes.acquire().await;
        match self
            .client
            .delete_managed_prefix_list()
            .prefix_list_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("InvalidPrefixListID.NotFound") => Ok(WriteOutcome::NotFound),
            Err(e) => Err(self.err("DeleteManagedPrefixList", e)),
        }
    }

    /// Creates the route toward a list in a table. `AlreadyExists` when
    /// the table holds one.
    pub async fn create_list_route(
        &self,
        table: &RouteTableRef,
        list: &str,
        target: &RouteTarget,
    ) -> Result<WriteOutcome, Error> {
        let RouteTarget::TransitGateway(tgw) = target else {
            return Err(self.not_a_tgw("CreateRoute", target));
        };
        self.writes.acquire().await;
        let sent = self
            .client
            .create_route()
            .route_table_id(&table.id)
            .destination_prefix_list_id(list)
            .transit_gateway_id(tgw)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("RouteAlreadyExists") => Ok(WriteOutcome::AlreadyExists),
            Err(e) => Err(self.err("CreateRoute", e)),
        }
    }

    /// Repoints the route toward a list.
    pub async fn replace_list_route(
        &self,
        table: &RouteTableRef,
        list: &str,
        target: &RouteTarget,
    ) -> Result<(), Error> {
        let RouteTarget::TransitGateway(tgw) = target else {
            return Err(self.not_a_tgw("ReplaceRoute", target));
        };
        self.writes.acquire().await;
        self.client
            .replace_route()
            .route_table_id(&table.id)
            .destination_prefix_list_id(list)
            .transit_gateway_id(tgw)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("ReplaceRoute", e))
    }

    /// Deletes the route toward a list. `NotFound` when it is gone.
    pub async fn delete_list_route(&self, table: &RouteTableRef, list: &str) -> Result<WriteOutcome, Error> {
        self.writes.acquire().await;
        let sent = self
            .client
            .delete_route()
            .route_table_id(&table.id)
            .destination_prefix_list_id(list)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(WriteOutcome::Applied),
            Err(e) if e.code() == Some("InvalidRoute.NotFound") => Ok(WriteOutcome::NotFound),
            Err(e) => Err(self.err("DeleteRoute", e)),
        }
    }

    fn not_a_tgw(&self, operation: &'static str, target: &RouteTarget) -> Error {
        Error::Unexpected {
            operation,
            region: self.region.to_string(),
            detail: format!("a prefix-list route of lbgp points at a transit gateway, not {target}"),
        }
    }
}
