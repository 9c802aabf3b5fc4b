//! `lbgp-runtime`: the one reconcile loop all three functions (and
//! `lbgpctl`) run, like kube-rs keeps its controller runtime apart from its
//! client.
//!
//! Whatever woke it, an invocation: classifies the payload
//! ([`lbgp_core::trigger`]); asks the function which units of work it
//! concerns (the mesh, or failover groups); takes each unit's lease (holder:
//! the invocation's request id); reads and decides each unit (I/O in the
//! function crate, rules in `lbgp-core`); guards the whole plan against the
//! blast-radius limit; applies it write-ahead (ownership ledger, or fenced
//! group state) within the invocation's deadline; reports; notifies; and
//! releases, running again while other triggers asked for more.
//!
//! - [`unit`]: the [`Reconciler`] trait, units of work and their plans;
//! - [`reconcile`]: the loop;
//! - [`apply`]: write-ahead application of a unit's plan;
//! - [`budget`]: the deadline and lease margin every EC2 write checks;
//! - [`app`]: the Lambda handler, built once per process;
//! - [`metrics`]: CloudWatch metrics of every invocation (EMF log lines);
//! - [`read`]: reading every region at once, failures confined;
//! - [`prefix_lists`]: applying a plan's prefix-list steps.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod app;
pub mod apply;
pub mod budget;
pub mod metrics;
pub mod notify;
pub mod prefix_lists;
pub mod read;
pub mod reconcile;
pub mod unit;

pub use app::{App, init_tracing};
pub use budget::Budget;
pub use reconcile::{OwnedExtras, Pass, Reconciler, Request, Selection, TagWrite, Unit, UnitPlan, Writes};

use lambda_runtime::Diagnostic;
use lbgp_core::config::ConfigError;
use lbgp_core::failover::DecideError;
use lbgp_core::trigger::MalformedPayload;

/// Why an invocation failed as a whole. Partial failures (one region, one
/// table, one group) are reported in the response instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The payload is neither an event we know nor a valid manual invoke.
    #[error(transparent)]
    Malformed(#[from] MalformedPayload),
    /// The function's environment is invalid; every invocation says so
    /// until it is fixed.
    #[error("invalid configuration: {0}. Fix the function's environment variables")]
    Config(#[source] ConfigError),
    /// AWS could not be reached or answered with an error.
    #[error(transparent)]
    Aws(#[from] lbgp_aws::Error),
    /// An operator's switch that cannot be carried out (unknown group or
    /// member, unhealthy member): nothing changed.
    #[error(transparent)]
    Refused(#[from] DecideError),
}

impl Error {
    /// The Lambda error type: what failed, and whether a retry can help.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "lbgp.MalformedPayload.NonRetryable",
            Error::Config(_) => "lbgp.InvalidConfiguration.NonRetryable",
            Error::Aws(lbgp_aws::Error::Fenced { .. }) => "lbgp.LeaseLost.Retryable",
            Error::Aws(_) => "lbgp.Aws.Retryable",
            Error::Refused(_) => "lbgp.ActivateRefused.NonRetryable",
        }
    }
}

/// The message of an error with its whole chain of causes.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        // `transparent` and context-printing errors repeat their source.
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Diagnostic {
        let error_type = e.error_type();
        let message = error_chain(&e);
        tracing::error!(error_type, error = %message, "invocation failed");
        Diagnostic {
            error_type: error_type.to_owned(),
            error_message: message,
        }
    }
}
