//! The ownership ledger: `ledger#<function>#<mesh>#<region>`,
//! `sk = <route-table-id>#<destination>`, one item per route we own.
//!
//! Items written before this release have no `previous_target_*`
//! attributes; they read as entries with no replace in flight. Items
//! without `account` (every item of a single-account deployment, and
//! every one written before accounts existed) are the home account's.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use lbgp_core::accounts::AccountId;
use lbgp_core::writeahead::{LedgerWrite, WRITES_PER_TRANSACTION};
use lbgp_core::{
    Cidr, LedgerEntry, LedgerStatus, OwnershipLedger, Region, RouteKey, RouteTableRef, RouteTarget, TableKind,
};

use super::{Fence, Store, get_n, get_s, n, s};
use crate::Error;

fn target_parts(t: &RouteTarget) -> (&'static str, &str) {
    match t {
        RouteTarget::TransitGateway(id) => ("transit_gateway", id),
        RouteTarget::TransitGatewayAttachment(id) => ("transit_gateway_attachment", id),
        RouteTarget::NetworkInterface(id) => ("network_interface", id),
        RouteTarget::Instance(id) => ("instance", id),
        RouteTarget::Blackhole => ("blackhole", "blackhole"),
        RouteTarget::Other(id) => ("other", id),
    }
}

fn target_from(kind: &str, id: &str) -> RouteTarget {
    match kind {
        "transit_gateway" => RouteTarget::TransitGateway(id.to_owned()),
        "transit_gateway_attachment" => RouteTarget::TransitGatewayAttachment(id.to_owned()),
        "network_interface" => RouteTarget::NetworkInterface(id.to_owned()),
        "instance" => RouteTarget::Instance(id.to_owned()),
        "blackhole" => RouteTarget::Blackhole,
        _ => RouteTarget::Other(id.to_owned()),
    }
}

/// Reads one ledger item; `None` when it is not one we can trust.
fn parse_entry(item: &HashMap<String, AttributeValue>, region: &Region) -> Option<LedgerEntry> {
    let kind = match get_s(item, "table_kind")? {
        "vpc" => TableKind::Vpc,
        "transit_gateway" => TableKind::TransitGateway,
        _ => return None,
    };
    let destination: Cidr = get_s(item, "destination")?.parse().ok()?;
    let previous = match (
        get_s(item, "previous_target_type"),
        get_s(item, "previous_target_id"),
    ) {
        (Some(kind), Some(id)) => Some(target_from(kind, id)),
        _ => None,
    };
    Some(LedgerEntry {
        key: RouteKey {
            table: RouteTableRef {
                region: region.clone(),
                kind,
                id: get_s(item, "route_table_id")?.to_owned(),
            },
            destination,
        },
        target: target_from(get_s(item, "target_type")?, get_s(item, "target_id")?),
        status: match get_s(item, "status")? {
            "pending" => LedgerStatus::Pending,
            _ => LedgerStatus::Owned,
        },
        previous,
        account: get_s(item, "account").and_then(AccountId::new),
    })
}

impl Store {
    fn ledger_pk(function: &str, mesh: &str, region: &Region) -> String {
        format!("ledger#{function}#{mesh}#{region}")
    }

    fn ledger_sk(key: &RouteKey) -> String {
        format!("{}#{}", key.table.id, key.destination)
    }

    /// Loads the ledger entries of `function` in `mesh` for `regions`.
    pub async fn load_ledger(
        &self,
        function: &str,
        mesh: &str,
        regions: &[Region],
    ) -> Result<OwnershipLedger, Error> {
        let mut ledger = OwnershipLedger::new();
        for region in regions {
            let items: Vec<HashMap<String, AttributeValue>> = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(Self::ledger_pk(function, mesh, region)))
                .consistent_read(true)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| self.err("Query", e))?;
            for item in items {
                match parse_entry(&item, region) {
                    Some(entry) => match get_n(&item, "updated_at") {
                        Some(at) => ledger.insert_written(entry, at),
                        None => ledger.insert(entry),
                    },
                    None => tracing::warn!(
                        pk = get_s(&item, "pk").unwrap_or_default(),
                        sk = get_s(&item, "sk").unwrap_or_default(),
                        "unreadable ledger item skipped; it will not be treated as ours"
                    ),
                }
            }
        }
        Ok(ledger)
    }

    fn put_entry(
        &self,
        fence: &Fence,
        function: &str,
        mesh: &str,
        entry: &LedgerEntry,
    ) -> Result<TransactWriteItem, Error> {
        let key = &entry.key;
        let (target_type, target_id) = target_parts(&entry.target);
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(Self::ledger_pk(function, mesh, &key.table.region)))
            .item("sk", s(Self::ledger_sk(key)))
            .item(
                "table_kind",
                s(match key.table.kind {
                    TableKind::Vpc => "vpc",
                    TableKind::TransitGateway => "transit_gateway",
                }),
            )
            .item("route_table_id", s(&key.table.id))
            .item("destination", s(key.destination.to_string()))
            .item("target_type", s(target_type))
            .item("target_id", s(target_id))
            .item(
                "status",
                s(match entry.status {
                    LedgerStatus::Pending => "pending",
                    LedgerStatus::Owned => "owned",
                }),
            )
            .item("updated_at", n(self.clock.now()))
            .item("fence", n(fence.token));
        if let Some(account) = &entry.account {
            put = put.item("account", s(account.as_str()));
        }
        if let Some(previous) = &entry.previous {
            let (kind, id) = target_parts(previous);
            put = put
                .item("previous_target_type", s(kind))
                .item("previous_target_id", s(id));
        }
        let put = put.build().map_err(|e| self.build_err(e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_entry(&self, function: &str, mesh: &str, key: &RouteKey) -> Result<TransactWriteItem, Error> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(Self::ledger_pk(function, mesh, &key.table.region)))
            .key("sk", s(Self::ledger_sk(key)))
            .build()
            .map_err(|e| self.build_err(e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Writes `writes` to the ledger, fenced by the lease: one transaction
    /// per [`WRITES_PER_TRANSACTION`] writes. Two writes of one route in one
    /// call keep the last (a transaction takes one action per item). A
    /// fenced batch stops the rest.
    pub async fn write_ledger(
        &self,
        fence: &Fence,
        function: &str,
        mesh: &str,
        writes: &[LedgerWrite],
    ) -> Result<(), Error> {
        let mut last: HashMap<&RouteKey, &LedgerWrite> = HashMap::new();
        let mut order: Vec<&RouteKey> = Vec::new();
        for w in writes {
            if last.insert(w.key(), w).is_none() {
                order.push(w.key());
            }
        }
        let items: Vec<TransactWriteItem> = order
            .into_iter()
            .filter_map(|k| last.get(k).copied())
            .map(|w| match w {
                LedgerWrite::Record(entry) => self.put_entry(fence, function, mesh, entry),
                LedgerWrite::Forget(key) => self.delete_entry(function, mesh, key),
            })
            .collect::<Result<_, _>>()?;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let batch: Vec<TransactWriteItem> = items.by_ref().take(WRITES_PER_TRANSACTION).collect();
            self.fenced_write(fence, batch).await?;
        }
        Ok(())
    }

    /// Records `key → target` with `status`, fenced by the lease.
    pub async fn record(
        &self,
        fence: &Fence,
        function: &str,
        mesh: &str,
        key: &RouteKey,
        target: &RouteTarget,
        status: LedgerStatus,
    ) -> Result<(), Error> {
        let entry = LedgerEntry::new(key.clone(), target.clone(), status);
        self.write_ledger(fence, function, mesh, &[LedgerWrite::Record(entry)])
            .await
    }

    /// Forgets `key`, fenced by the lease.
    pub async fn forget(
        &self,
        fence: &Fence,
        function: &str,
        mesh: &str,
        key: &RouteKey,
    ) -> Result<(), Error> {
        self.write_ledger(fence, function, mesh, &[LedgerWrite::Forget(key.clone())])
            .await
    }
}
