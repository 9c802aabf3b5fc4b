//! Leases: `lease#<function>#<scope>`, `sk = lease`. Each method is one
//! conditional update implementing the transition of the same name in
//! `lbgp_core::lease::LeaseRecord`, with the same condition.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{Acquired, Fence, Released, Store, get_n, get_s, n, retry_conflicts, s};
use crate::Error;

/// A plain write that met an ongoing transaction on its item.
fn is_conflict(e: &SdkError<UpdateItemError>) -> bool {
    e.as_service_error()
        .is_some_and(UpdateItemError::is_transaction_conflict_exception)
}

/// The update's condition did not hold.
fn is_condition_failure(e: &SdkError<UpdateItemError>) -> bool {
    e.as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

impl Store {
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
        loop {
            let now = self.clock.now();
            let expires_at = now + ttl_secs;
            let call = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s("lease"))
                .update_expression(
                    "SET #holder = :me, #expires = :exp, #pending = :false, #started = :now, #token = if_not_exists(#token, :zero) + :one",
                )
                .condition_expression("attribute_not_exists(#holder) OR #expires < :now OR #holder = :me")
                .expression_attribute_names("#holder", "holder")
                .expression_attribute_names("#expires", "expires_at")
                .expression_attribute_names("#pending", "pending")
                .expression_attribute_names("#token", "token")
                .expression_attribute_names("#started", "started_at")
                .expression_attribute_values(":me", s(holder))
                .expression_attribute_values(":exp", n(expires_at))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":false", AttributeValue::Bool(false))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::AllNew);
            match retry_conflicts(|| call.clone().send(), is_conflict).await {
                Ok(out) => {
                    let token = out.attributes().and_then(|a| get_n(a, "token")).ok_or_else(|| {
                        Error::Unexpected {
                            operation: "UpdateItem",
                            region: self.region.to_string(),
                            detail: format!("lease {pk} came back without a token"),
                        }
                    })?;
                    return Ok(Acquired::Held(Fence {
                        lease_pk: pk,
                        holder: holder.to_owned(),
                        token,
                        expires_at,
                    }));
                }
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(self.err("UpdateItem", e)),
            }
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
                .return_values(ReturnValue::AllNew);
            match retry_conflicts(|| call.clone().send(), is_conflict).await {
                Ok(out) => {
                    return Ok(Acquired::Busy {
                        holder: out
                            .attributes()
                            .and_then(|a| get_s(a, "holder"))
                            .unwrap_or("unknown")
                            .to_owned(),
                    });
                }
                // The holder let go between our two calls: try again.
                Err(e) if is_condition_failure(&e) => continue,
                Err(e) => return Err(self.err("UpdateItem", e)),
            }
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
        match retry_conflicts(|| call.clone().send(), is_conflict).await {
            Ok(_) => return Ok(Released::Done),
            Err(e) if is_condition_failure(&e) => {}
            Err(e) => return Err(self.err("UpdateItem", e)),
        }
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
        match retry_conflicts(|| call.clone().send(), is_conflict).await {
            Ok(_) => Ok(Released::WorkPending),
            // Not ours any more. When nobody holds it, our own release went
            // through and only its answer was lost: the SDK retried it and
            // the retry found the lease free. That is a release, not a lost
            // lease (and a free lease has no pending work: only a live
            // holder can be asked for more).
            Err(e) if is_condition_failure(&e) => {
                if self.lease_is_free(&fence.lease_pk).await? {
                    Ok(Released::Done)
                } else {
                    Err(Self::fenced_err(fence))
                }
            }
            Err(e) => Err(self.err("UpdateItem", e)),
        }
    }

    /// Releases the lease even if work was marked pending, and leaves the
    /// mark set: for a run that stops with work left (its deadline came),
    /// so the next run knows there is some.
    pub async fn release_leaving_work(&self, fence: &Fence) -> Result<(), Error> {
        let call = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&fence.lease_pk))
            .key("sk", s("lease"))
            .update_expression("REMOVE #holder SET #expires = :zero, #pending = :true")
            .condition_expression("#holder = :me AND #token = :token")
            .expression_attribute_names("#holder", "holder")
            .expression_attribute_names("#expires", "expires_at")
            .expression_attribute_names("#token", "token")
            .expression_attribute_names("#pending", "pending")
            .expression_attribute_values(":me", s(&fence.holder))
            .expression_attribute_values(":token", n(fence.token))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        match retry_conflicts(|| call.clone().send(), is_conflict).await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => {
                if self.lease_is_free(&fence.lease_pk).await? {
                    Ok(())
                } else {
                    Err(Self::fenced_err(fence))
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

    /// Extends the lease we hold to `ttl_secs` from now.
    pub async fn renew(&self, fence: &mut Fence, ttl_secs: u64) -> Result<(), Error> {
        let expires_at = self.clock.now() + ttl_secs;
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
            .expression_attribute_values(":exp", n(expires_at));
        match retry_conflicts(|| call.clone().send(), is_conflict).await {
            Ok(_) => {
                fence.expires_at = expires_at;
                Ok(())
            }
            Err(e) if is_condition_failure(&e) => Err(Self::fenced_err(fence)),
            Err(e) => Err(self.err("UpdateItem", e)),
        }
    }

    /// The lease item as stored, for operators (`lbgpctl status`) and tests:
    /// holder, token, expiry, pending mark.
    pub async fn read_lease(
        &self,
        function: &str,
        scope: &str,
    ) -> Result<lbgp_core::lease::LeaseRecord, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("lease#{function}#{scope}")))
            .key("sk", s("lease"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(lbgp_core::lease::LeaseRecord::default());
        };
        Ok(lbgp_core::lease::LeaseRecord {
            holder: get_s(item, "holder").map(str::to_owned),
            token: get_n(item, "token").unwrap_or(0),
            expires_at: get_n(item, "expires_at").unwrap_or(0),
            started_at: get_n(item, "started_at").unwrap_or(0),
            pending: item
                .get("pending")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        })
    }
}
