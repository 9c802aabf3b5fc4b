//! `lbgp-aws`: the adapters between lbgp's pure core and AWS.
//!
//! - [`ec2`]: reads of the mesh and tolerant single-route writes;
//! - [`store`]: the DynamoDB ownership ledger (write-ahead), the lease with
//!   its fencing token, and small state records;
//! - [`notify`]: SNS notifications;
//! - [`apply`]: applies a core [`lbgp_core::Plan`] through the ledger;
//! - [`context`]: SDK clients built once per process;
//! - [`runtime`]: what every function's `main` and handler share.
#![forbid(unsafe_code)]

pub mod apply;
pub mod context;
pub mod ec2;
pub mod notify;
pub mod runtime;
pub mod store;
pub mod throttle;

use lbgp_core::Region;

/// Errors of the AWS adapters: which operation failed, where, and why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An AWS API call failed after the SDK's retries.
    #[error("{operation} failed in {region}: {source}")]
    Aws {
        /// The API operation, e.g. `DescribeRouteTables`.
        operation: &'static str,
        /// The region called.
        region: String,
        /// The SDK error, with its code and message.
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
    /// Wraps an SDK error with the operation and region.
    pub fn aws<E>(operation: &'static str, region: &Region, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Aws {
            operation,
            region: region.to_string(),
            source: Box::new(DisplayErrorContext(source)),
        }
    }
}

/// Shows an SDK error with its whole chain of causes (the SDK's top-level
/// `Display` says only "service error").
#[derive(Debug)]
struct DisplayErrorContext<E>(E);

impl<E: std::error::Error> std::fmt::Display for DisplayErrorContext<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

impl<E: std::error::Error> std::error::Error for DisplayErrorContext<E> {}
