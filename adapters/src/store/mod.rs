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
//! Ledger writes go in batches of up to 99 per transaction (DynamoDB takes
//! 100 actions, one is the lease check).
//!
//! DynamoDB cancels a transaction that touches an item another ongoing
//! transaction touches (`TransactionConflict`; a condition check counts),
//! and refuses a plain write of such an item (`TransactionConflictException`).
//! So a process sends the fenced writes of one lease one at a time, and any
//! write that meets a conflict anyway (another invocation marking work
//! pending on the lease) is sent again after a short pause.
//!
//! The table has no TTL (the template disables it; it used to sit on the
//! lease's `expires_at`): a lease item lives for ever, so its fencing token
//! never goes backwards. Expiry is the lease protocol's business.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
use lbgp_core::Region;

use crate::Error;

mod inspect;
mod lease;
mod ledger;
mod state;

pub use inspect::{ControlRecords, LeaseItem, StateItem};

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
    /// When the lease ends, by our clock (seconds since the epoch): no EC2
    /// write, which DynamoDB cannot fence, may start close to it.
    pub expires_at: u64,
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
/// never write on when unsure of the lease. The reasons' codes are data in
/// DynamoDB's typed exception, not error codes: they are read as given.
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
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata
            + std::error::Error
            + Send
            + Sync
            + 'static,
    {
        Error::aws(operation, &self.region, e)
    }

    fn build_err(&self, e: impl std::fmt::Display) -> Error {
        Error::Unexpected {
            operation: "TransactWriteItems",
            region: self.region.to_string(),
            detail: e.to_string(),
        }
    }

    fn fenced_err(fence: &Fence) -> Error {
        Error::Fenced {
            scope: fence.lease_pk.clone(),
            token: fence.token,
        }
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

    /// One transaction: the lease check, then `writes` (at most 99, on
    /// distinct items).
    async fn fenced_write(&self, fence: &Fence, writes: Vec<TransactWriteItem>) -> Result<(), Error> {
        if writes.is_empty() {
            return Ok(());
        }
        let first = self
            .client
            .transact_write_items()
            .transact_items(self.fence_check(fence)?);
        let call = writes.into_iter().fold(first, |call, w| call.transact_items(w));
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
            Err(e) if cancelled(&e) == Some(Cancelled::Fenced) => Err(Self::fenced_err(fence)),
            Err(e) => Err(self.err("TransactWriteItems", e)),
        }
    }
}
