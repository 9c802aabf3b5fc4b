//! The write-ahead protocol of the ownership ledger: which ledger writes go
//! before a burst of route writes (in one fenced transaction), and which
//! confirm them after (in another).
//!
//! - **create**: `pending(target)` → create the route → `owned(target)`.
//!   A crash in between leaves a pending entry that the next plan adopts
//!   (the route is there with our target) or drops (it is not).
//! - **replace** of a route at a target we installed: `owned(new,
//!   previous = old)` → replace → `owned(new)`. A crash in between leaves an
//!   entry that recognises both targets: the next plan finishes the replace,
//!   or deletes the route if it is no longer wanted. Nothing is orphaned.
//! - **replace** repairing a drift or a blackhole: `owned(new)` → replace.
//!   The stranger's target is not recorded: if the route is no longer
//!   wanted after a crash, it is let go, as before the repair.
//! - **delete**: delete the route → forget it. A crash in between leaves
//!   an entry whose route is gone: the next plan drops it.
//!
//! The adapters execute these writes; the protocol model check
//! (`shared/tests/protocol_model.rs`) executes the same ones.

use crate::model::RouteKey;
use crate::plan::{Change, ChangeOp, ChangeReason, LedgerEntry, LedgerFix, LedgerStatus, OwnershipLedger};

/// Ledger writes per fenced transaction: DynamoDB's `TransactWriteItems`
/// takes 100 actions, one of which is the check of the lease.
pub const WRITES_PER_TRANSACTION: usize = 99;

/// One write to the ownership ledger.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerWrite {
    /// Put this entry (insert or overwrite).
    Record(LedgerEntry),
    /// Delete the entry of this route.
    Forget(RouteKey),
}

impl LedgerWrite {
    /// The route the write is about.
    pub fn key(&self) -> &RouteKey {
        match self {
            LedgerWrite::Record(entry) => &entry.key,
            LedgerWrite::Forget(key) => key,
        }
    }

    /// Applies the write to an in-memory ledger, as DynamoDB would.
    pub fn apply_to(&self, ledger: &mut OwnershipLedger) {
        match self {
            LedgerWrite::Record(entry) => ledger.insert(entry.clone()),
            LedgerWrite::Forget(key) => {
                ledger.remove(key);
            }
        }
    }
}

/// The ledger write a plan's bookkeeping fix makes.
pub fn fix(fix: &LedgerFix) -> LedgerWrite {
    match fix {
        LedgerFix::Record { key, target } => {
            LedgerWrite::Record(LedgerEntry::new(key.clone(), target.clone(), LedgerStatus::Owned))
        }
        LedgerFix::Drop { key, .. } => LedgerWrite::Forget(key.clone()),
    }
}

/// The ledger write recorded before `change` is sent to EC2, if any.
pub fn intent(change: &Change) -> Option<LedgerWrite> {
    let entry = |status, previous| LedgerEntry {
        key: change.key.clone(),
        target: change.target.clone(),
        status,
        previous,
        account: None,
    };
    match change.op {
        ChangeOp::Create => Some(LedgerWrite::Record(entry(LedgerStatus::Pending, None))),
        ChangeOp::Replace => {
            let previous = match change.reason.base() {
                ChangeReason::Retarget { from } => Some(from.clone()),
                _ => None,
            };
            Some(LedgerWrite::Record(entry(LedgerStatus::Owned, previous)))
        }
        ChangeOp::Delete => None,
    }
}

/// The ledger write that confirms `change` once EC2 has applied it, if any.
pub fn confirmation(change: &Change) -> Option<LedgerWrite> {
    match change.op {
        ChangeOp::Create => Some(LedgerWrite::Record(LedgerEntry::new(
            change.key.clone(),
            change.target.clone(),
            LedgerStatus::Owned,
        ))),
        // Only a replace that recorded the previous target has something to
        // clear; the others' intent already says all there is.
        ChangeOp::Replace => intent(change)
            .filter(|w| matches!(w, LedgerWrite::Record(e) if e.previous.is_some()))
            .map(|_| {
                LedgerWrite::Record(LedgerEntry::new(
                    change.key.clone(),
                    change.target.clone(),
                    LedgerStatus::Owned,
                ))
            }),
        ChangeOp::Delete => Some(LedgerWrite::Forget(change.key.clone())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{Region, RouteTableRef, RouteTarget, TableKind};

    fn key() -> RouteKey {
        RouteKey {
            table: RouteTableRef {
                region: Region::new("eu-west-1").unwrap(),
                kind: TableKind::Vpc,
                id: "rtb-1".into(),
            },
            destination: "10.0.0.0/8".parse().unwrap(),
        }
    }

    fn change(op: ChangeOp, reason: ChangeReason) -> Change {
        Change {
            key: key(),
            op,
            target: RouteTarget::TransitGateway("tgw-new".into()),
            previous: Some(RouteTarget::TransitGateway("tgw-old".into())),
            reason,
        }
    }

    #[test]
    fn a_retarget_records_both_targets_until_confirmed() {
        let old = RouteTarget::TransitGateway("tgw-old".into());
        let c = change(ChangeOp::Replace, ChangeReason::Retarget { from: old.clone() });
        let Some(LedgerWrite::Record(e)) = intent(&c) else {
            panic!("no intent")
        };
        assert_eq!(e.previous, Some(old.clone()));
        assert!(e.recognises(&old) && e.recognises(&c.target));
        let Some(LedgerWrite::Record(done)) = confirmation(&c) else {
            panic!("no confirmation")
        };
        assert_eq!(done.previous, None);
        // A drift repair records no stranger's target and needs no confirm.
        let d = change(ChangeOp::Replace, ChangeReason::Drifted { from: old });
        assert!(matches!(intent(&d), Some(LedgerWrite::Record(e)) if e.previous.is_none()));
        assert_eq!(confirmation(&d), None);
    }

    #[test]
    fn creates_are_pending_then_owned_and_deletes_are_forgotten_after() {
        let c = change(ChangeOp::Create, ChangeReason::Missing);
        assert!(matches!(intent(&c), Some(LedgerWrite::Record(e)) if e.status == LedgerStatus::Pending));
        assert!(matches!(confirmation(&c), Some(LedgerWrite::Record(e)) if e.status == LedgerStatus::Owned));
        let d = change(ChangeOp::Delete, ChangeReason::NoLongerDesired);
        assert_eq!(intent(&d), None);
        assert_eq!(confirmation(&d), Some(LedgerWrite::Forget(key())));
    }
}
