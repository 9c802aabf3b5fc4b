//! The DynamoDB table (`pk`/`sk` strings): the ownership ledger, leases with
//! fencing tokens, and small state records.
//!
//! Item layout (the key schema is public contract):
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | ledger entry | `ledger#<function>#<mesh>#<region>` | `<route-table-id>#<destination>` |
//! | lease | `lease#<function>#<scope>` | `lease` |
//! | state record | `state#<function>#<scope>` | `<name>` |
//!
//! Every ledger and state write is a transaction with a condition check on
//! the lease item: a run whose lease expired and was taken over cannot write.
//!
//! DynamoDB cancels a transaction that touches an item another ongoing
//! transaction touches (`TransactionConflict`; a condition check counts),
//! and refuses a plain write of such an item (`TransactionConflictException`).
//! So a process sends the fenced writes of one lease one at a time, and any
//! write that meets a conflict anyway (another invocation marking work
//! pending on the lease) is sent again after a short pause.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use lbgp_core::{
    Cidr, LedgerEntry, LedgerStatus, OwnershipLedger, Region, RouteKey, RouteTableRef, RouteTarget, TableKind,
};

use crate::Error;

/// Seconds since the epoch; a trait so tests can move time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in whole seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }
}

/// Proof that we hold a lease: checked by every ledger and state write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease item's `pk`.
    pub lease_pk: String,
    /// Our identity.
    pub holder: String,
    /// The fencing token issued with the lease.
    pub token: u64,
}

/// The outcome of trying to take a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// We hold it.
    Held(Fence),
    /// Someone else holds it; we marked work as pending for them.
    Busy {
        /// Who holds it.
        holder: String,
    },
}

/// The outcome of releasing a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Released; nobody asked for more work meanwhile.
    Done,
    /// Another run asked for work while we held it: run again before
    /// releasing (the lease is still ours, the pending mark cleared).
    WorkPending,
}

/// Attempts of a write that meets a transaction conflict.
pub const CONFLICT_ATTEMPTS: u32 = 8;

/// The lbgp table.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    region: Region,
    clock: Arc<dyn Clock>,
    /// One queue per lease item for the fenced transactions that check it.
    fenced: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<u64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A plain write that met an ongoing transaction on its item.
fn is_conflict<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("TransactionConflictException")
}

/// The pause before attempt `attempt + 1` of a conflicting write: 10 ms
/// doubling to 320 ms, plus up to 10 ms of jitter so writers drift apart.
fn conflict_pause(attempt: u32) -> Duration {
    let jitter = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 10_000_000)
        .unwrap_or_default();
    Duration::from_millis(10 << attempt.min(5)) + Duration::from_nanos(u64::from(jitter))
}

/// Sends a write again, after a growing pause, while `conflicted` says it
/// met another transaction, up to [`CONFLICT_ATTEMPTS`] times.
async fn retry_conflicts<T, E, F, Fut>(
    mut send: F,
    conflicted: impl Fn(&SdkError<E>) -> bool,
) -> Result<T, SdkError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E>>>,
{
    let mut attempt = 1;
    loop {
        match send().await {
            Err(e) if conflicted(&e) && attempt < CONFLICT_ATTEMPTS => {
                tokio::time::sleep(conflict_pause(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Why a fenced transaction was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancelled {
    /// The lease check failed: the lease is not ours any more.
    Fenced,
    /// It met another transaction on one of its items: send it again.
    Conflict,
    /// Anything else (a condition of its own, validation…).
    Other,
}

/// Reads the cancellation reasons of a fenced transaction (the lease check
/// is its first item). Without reasons, a cancellation is taken as fenced:
/// never write on when unsure of the lease.
fn cancelled(e: &SdkError<TransactWriteItemsError>) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(ex) = e.as_service_error()? else {
        return None;
    };
    let codes: Vec<&str> = ex
        .cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None"))
        .collect();
    Some(match codes.as_slice() {
        [] | ["ConditionalCheckFailed", ..] => Cancelled::Fenced,
        _ if codes.contains(&"TransactionConflict") => Cancelled::Conflict,
        _ => Cancelled::Other,
    })
}

fn is_condition_failure<E: ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some("ConditionalCheckFailedException") | Some("TransactionCanceledException")
    )
}

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

impl Store {
    /// The table `table` in the home `region`.
    pub fn new(client: Client, table: impl Into<String>, region: Region, clock: Arc<dyn Clock>) -> Self {
        Store {
            client,
            table: table.into(),
            region,
            clock,
            fenced: Arc::default(),
        }
    }

    /// The clock in use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The raw client, for test fixtures.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn err<E>(&self, operation: &'static str, e: E) -> Error
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::aws(operation, &self.region, e)
    }

    fn fence_check(&self, fence: &Fence) -> Result<TransactWriteItem, Error> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(&fence.lease_pk))
            .key("sk", s("lease"))
            .condition_expression("#token = :token AND #holder = :holder")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_values(":token", n(fence.token))
            .expression_attribute_values(":holder", s(&fence.holder))
            .build()
            .map_err(|e| self.build_err(e))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    async fn fenced_write(&self, fence: &Fence, write: TransactWriteItem) -> Result<(), Error> {
        let call = self
            .client
            .transact_write_items()
            .transact_items(self.fence_check(fence)?)
            .transact_items(write);
        // One at a time per lease item: concurrent transactions checking the
        // same lease would cancel each other.
        let queue = {
            let mut queues = self
                .fenced
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queues.entry(fence.lease_pk.clone()).or_default().clone()
        };
        let _turn = queue.lock().await;
        let result = retry_conflicts(
            || call.clone().send(),
            |e| cancelled(e) == Some(Cancelled::Conflict),
        )
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if cancelled(&e) == Some(Cancelled::Fenced) => Err(Error::Fenced {
                scope: fence.lease_pk.clone(),
                token: fence.token,
            }),
            Err(e) => Err(self.err("TransactWriteItems", e)),
        }
    }

    // ---------------------------------------------------------------- lease

    /// Tries to take the lease `lease#<function>#<scope>` for `ttl_secs`.
    /// When someone else holds it, marks work as pending on it so the holder
    /// runs again before letting go: no trigger is lost.
    pub async fn acquire(
        &self,
        function: &str,
        scope: &str,
        holder: &str,
        ttl_secs: u64,
    ) -> Result<Acquired, Error> {
        let pk = format!("lease#{function}#{scope}");
        let now = self.clock.now();
        let call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s("lease"))
            .update_expression(
                "SET #holder = :me, #expires = :exp, #pending = :false, #token = if_not_exists(#token, :zero) + :one",
            )
            .condition_expression("attribute_not_exists(#holder) OR #expires < :now OR #holder = :me")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#pending", "pending")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":me", s(holder))
            .expression_attribute_values(":exp", n(now + ttl_secs))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        let result = retry_conflicts(|| call.clone().send(), is_conflict).await;
        match result {
            Ok(out) => {
                let token =
                    out.attributes()
                        .and_then(|a| get_n(a, "token"))
                        .ok_or_else(|| Error::Unexpected {
                            operation: "UpdateItem",
                            region: self.region.to_string(),
                            detail: format!("lease {pk} came back without a token"),
                        })?;
                Ok(Acquired::Held(Fence {
                    lease_pk: pk,
                    holder: holder.to_owned(),
                    token,
                }))
            }
            Err(e) if is_condition_failure(&e) => {
                // Held by someone else: ask them for one more pass.
                let call = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(&pk))
                    .key("sk", s("lease"))
                    .update_expression("SET #pending = :true")
                    .condition_expression("attribute_exists(#holder) AND #expires >= :now")
                    .expression_attribute_names("#pending", "pending")
                    .expression_attribute_names("#holder", "holder")
                    .expression_attribute_names("#expires", "expires_at")
                    .expression_attribute_values(":true", AttributeValue::Bool(true))
                    .expression_attribute_values(":now", n(now))
                    .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
                let marked = retry_conflicts(|| call.clone().send(), is_conflict).await;
                match marked {
                    Ok(out) => Ok(Acquired::Busy {
                        holder: out
                            .attributes()
                            .and_then(|a| get_s(a, "holder"))
                            .unwrap_or("unknown")
                            .to_owned(),
                    }),
                    // The holder let go between our two calls: try again.
                    Err(e) if is_condition_failure(&e) => {
                        Box::pin(self.acquire(function, scope, holder, ttl_secs)).await
                    }
                    Err(e) => Err(self.err("UpdateItem", e)),
                }
            }
            Err(e) => Err(self.err("UpdateItem", e)),
        }
    }

    /// Releases the lease unless work was marked pending meanwhile, in which
    /// case the mark is cleared, the lease kept, and [`Released::WorkPending`]
    /// returned so the caller runs once more.
    pub async fn release(&self, fence: &Fence) -> Result<Released, Error> {
        let call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&fence.lease_pk))
            .key("sk", s("lease"))
            .update_expression("REMOVE #holder SET #expires = :zero")
            .condition_expression(
                "#holder = :me AND #token = :token AND (attribute_not_exists(#pending) OR #pending = :false)",
            )
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#pending", "pending")
            .expression_attribute_values(":me", s(&fence.holder))
            .expression_attribute_values(":token", n(fence.token))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        let result = retry_conflicts(|| call.clone().send(), is_conflict).await;
        match result {
            Ok(_) => Ok(Released::Done),
            Err(e) if is_condition_failure(&e) => {
                // Either work is pending, or we lost the lease.
                let call = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(&fence.lease_pk))
                    .key("sk", s("lease"))
                    .update_expression("SET #pending = :false")
                    .condition_expression("#holder = :me AND #token = :token")
                    .expression_attribute_names("#holder", "holder")
                    .expression_attribute_names("#token", "token")
                    .expression_attribute_names("#pending", "pending")
                    .expression_attribute_values(":me", s(&fence.holder))
                    .expression_attribute_values(":token", n(fence.token))
                    .expression_attribute_values(":false", AttributeValue::Bool(false));
                let cleared = retry_conflicts(|| call.clone().send(), is_conflict).await;
                match cleared {
                    Ok(_) => Ok(Released::WorkPending),
                    // Not ours any more. When nobody holds it, our own
                    // release went through and only its answer was lost:
                    // the SDK retried it and the retry found the lease
                    // free. That is a release, not a lost lease (and a
                    // free lease has no pending work: only a live holder
                    // can be asked for more).
                    Err(e) if is_condition_failure(&e) => {
                        if self.lease_is_free(&fence.lease_pk).await? {
                            Ok(Released::Done)
                        } else {
                            Err(Error::Fenced {
                                scope: fence.lease_pk.clone(),
                                token: fence.token,
                            })
                        }
                    }
                    Err(e) => Err(self.err("UpdateItem", e)),
                }
            }
            Err(e) => Err(self.err("UpdateItem", e)),
        }
    }

    /// True when the lease item is absent or has no holder.
    async fn lease_is_free(&self, lease_pk: &str) -> Result<bool, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(lease_pk))
            .key("sk", s("lease"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem", e))?;
        Ok(out.item().is_none_or(|item| !item.contains_key("holder")))
    }

    /// Extends the lease we hold.
    pub async fn renew(&self, fence: &Fence, ttl_secs: u64) -> Result<(), Error> {
        let call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&fence.lease_pk))
            .key("sk", s("lease"))
            .update_expression("SET #expires = :exp")
            .condition_expression("#holder = :me AND #token = :token")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":me", s(&fence.holder))
            .expression_attribute_values(":token", n(fence.token))
            .expression_attribute_values(":exp", n(self.clock.now() + ttl_secs));
        let result = retry_conflicts(|| call.clone().send(), is_conflict).await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(Error::Fenced {
                scope: fence.lease_pk.clone(),
                token: fence.token,
            }),
            Err(e) => Err(self.err("UpdateItem", e)),
        }
    }

    // --------------------------------------------------------------- ledger

    fn ledger_pk(function: &str, mesh: &str, region: &Region) -> String {
        format!("ledger#{function}#{mesh}#{region}")
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
            let items = self
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
                let parsed = (|| {
                    let kind = match get_s(&item, "table_kind")? {
                        "vpc" => TableKind::Vpc,
                        "transit_gateway" => TableKind::TransitGateway,
                        _ => return None,
                    };
                    let destination: Cidr = get_s(&item, "destination")?.parse().ok()?;
                    Some(LedgerEntry {
                        key: RouteKey {
                            table: RouteTableRef {
                                region: region.clone(),
                                kind,
                                id: get_s(&item, "route_table_id")?.to_owned(),
                            },
                            destination,
                        },
                        target: target_from(get_s(&item, "target_type")?, get_s(&item, "target_id")?),
                        status: match get_s(&item, "status")? {
                            "pending" => LedgerStatus::Pending,
                            _ => LedgerStatus::Owned,
                        },
                    })
                })();
                match parsed {
                    Some(entry) => ledger.insert(entry),
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
        let (target_type, target_id) = target_parts(target);
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(Self::ledger_pk(function, mesh, &key.table.region)))
            .item("sk", s(format!("{}#{}", key.table.id, key.destination)))
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
                s(match status {
                    LedgerStatus::Pending => "pending",
                    LedgerStatus::Owned => "owned",
                }),
            )
            .item("updated_at", n(self.clock.now()))
            .item("fence", n(fence.token))
            .build()
            .map_err(|e| self.build_err(e))?;
        self.fenced_write(fence, TransactWriteItem::builder().put(put).build())
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
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(Self::ledger_pk(function, mesh, &key.table.region)))
            .key("sk", s(format!("{}#{}", key.table.id, key.destination)))
            .build()
            .map_err(|e| self.build_err(e))?;
        self.fenced_write(fence, TransactWriteItem::builder().delete(delete).build())
            .await
    }

    fn build_err(&self, e: impl std::fmt::Display) -> Error {
        Error::Unexpected {
            operation: "TransactWriteItems",
            region: self.region.to_string(),
            detail: e.to_string(),
        }
    }

    // ---------------------------------------------------------------- state

    /// Reads a state record (`state#<function>#<scope>`, `name`) as JSON.
    pub async fn load_state(
        &self,
        function: &str,
        scope: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("state#{function}#{scope}")))
            .key("sk", s(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem", e))?;
        Ok(out
            .item()
            .and_then(|i| get_s(i, "body"))
            .and_then(|b| serde_json::from_str(b).ok()))
    }

    /// Writes a state record, fenced by the lease.
    pub async fn save_state(
        &self,
        fence: &Fence,
        function: &str,
        scope: &str,
        name: &str,
        body: &serde_json::Value,
    ) -> Result<(), Error> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("state#{function}#{scope}")))
            .item("sk", s(name))
            .item("body", s(body.to_string()))
            .item("updated_at", n(self.clock.now()))
            .item("fence", n(fence.token))
            .build()
            .map_err(|e| self.build_err(e))?;
        self.fenced_write(fence, TransactWriteItem::builder().put(put).build())
            .await
    }
}
