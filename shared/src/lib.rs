//! `lbgp-core`: the pure core of lbgp.
//!
//! Prefix math, the route model, the reconcile planner with its ownership
//! rules, configuration and trigger parsing, and the invoke response. Nothing
//! here performs I/O or knows an AWS SDK type: adapters translate at the edge,
//! so everything here is tested without AWS, and planning is deterministic.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod config;
pub mod desire;
pub mod failover;
pub mod inject;
pub mod lease;
pub mod migrate;
pub mod model;
pub mod notice;
pub mod paths;
pub mod plan;
pub mod prefix;
pub mod prefix_list;
pub mod preflight;
pub mod propagate;
pub mod report;
pub mod topology;
pub mod trace;
pub mod trigger;
pub mod writeahead;

pub use model::{
    DesiredRoute, Region, Route, RouteKey, RouteOrigin, RouteState, RouteTableRef, RouteTarget, TableKind,
};
pub use plan::{
    Change, ChangeOp, ChangeReason, Conflict, LedgerEntry, LedgerFix, LedgerStatus, OwnershipLedger, Plan,
    PlanError, plan, plan_from_iter,
};
pub use prefix::{Cidr, PrefixError};
