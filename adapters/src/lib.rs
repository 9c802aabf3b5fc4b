//! `lbgp-aws`: the adapters between lbgp's pure core and AWS. They only do
//! I/O: every rule is in `lbgp-core`.
//!
//! - [`accounts`]: one SDK configuration per member account (assume-role);
//! - [`ec2`]: reads of the mesh into `lbgp_core::topology` types, and
//!   tolerant single-route writes;
//! - [`store`]: the DynamoDB ownership ledger (write-ahead, batched), the
//!   lease with its fencing token, and small state records;
//! - [`cloudwatch`]: the state of failover members' health alarms;
//! - [`notify`]: SNS notifications;
//! - [`queue`]: the follow-up queue (SQS) of runs that ran out of time;
//! - [`telemetry`]: throttled attempts, counted;
//! - [`context`]: SDK clients built once per process;
//! - [`first_use`]: clients built when first called;
//! - [`throttle`]: client-side pacing of EC2 writes.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod cloudwatch;
pub mod context;
pub mod ec2;
pub mod first_use;
pub mod http;
pub mod notify;
pub mod queue;
pub mod store;
pub mod telemetry;
pub mod throttle;

use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lbgp_core::Region;

/// Errors of the AWS adapters: which operation failed, where, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS API call failed after the SDK's retries.
    #[error("{operation} failed in {region}: {}", DisplayErrorContext(source.as_ref()))]
    Aws {
        /// The API operation, e.g. `DescribeRouteTables`.
        operation: &'static str,
        /// The region called.
        region: String,
        /// The error code AWS answered (`RouteAlreadyExists`…), when it
        /// answered one.
        code: Option<String>,
        /// The SDK error, whole: its chain of causes is kept.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// AWS answered something we cannot use.
    #[error("{operation} in {region}: {detail}")]
    Unexpected {
        /// The API operation.
        operation: &'static str,
        /// The region called.
        region: String,
        /// What was wrong.
        detail: String,
    },
    /// A write was refused because our lease was lost (another run took
    /// over after ours expired): nothing more is written by this run.
    #[error(
        "lease {scope} lost (fencing token {token} is stale); this run stops writing, the holder carries on"
    )]
    Fenced {
        /// The lease scope.
        scope: String,
        /// Our stale token.
        token: u64,
    },
    /// A region has no client: it is not in `LBGP_REGIONS`.
    #[error("region {0} is not in LBGP_REGIONS; add it to manage it")]
    UnknownRegion(String),
}

impl Error {
    /// Wraps an SDK error with the operation and region, keeping its code.
    pub fn aws<E>(operation: &'static str, region: &Region, source: E) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        Error::Aws {
            operation,
            region: region.to_string(),
            code: source.code().map(str::to_owned),
            source: Box::new(source),
        }
    }

    /// The error code AWS answered, if this is an AWS error with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// True when AWS still throttled the call after every retry: the
    /// account's budget is spent by someone; the call is worth trying again
    /// later, it is not wrong.
    pub fn is_throttled(&self) -> bool {
        matches!(
            self.code(),
            Some("RequestLimitExceeded" | "Throttling" | "ThrottlingException" | "TooManyRequestsException")
        )
    }

    /// True when the lease was lost: stop writing.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Error::Fenced { .. })
    }
}
