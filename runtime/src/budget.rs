//! How long a run may go on starting writes.
//!
//! Two limits, checked before every EC2 write (and every batch of ledger
//! intents):
//!
//! - the invocation's **deadline** (Lambda's `Context::deadline`): a write
//!   is started only with [`DEADLINE_RESERVE`] left, so the run can confirm
//!   what it wrote, record what it did not start as pending, and release
//!   its lease before Lambda stops it;
//! - the **lease**: DynamoDB fences ledger and state writes, but EC2 cannot
//!   check a fencing token. A write is started only while the lease has
//!   [`LEASE_MARGIN`] left: more than a write can take with its retries
//!   ([`lbgp_aws::context::OPERATION_TIMEOUT`]) plus clock skew between
//!   hosts, so no EC2 write of a run can land after another run took its
//!   expired lease.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lbgp_aws::context::OPERATION_TIMEOUT;
use lbgp_aws::store::{Clock, Fence};

/// Time kept free before the deadline: confirming the writes in flight,
/// recording the rest as pending and releasing the lease fit in it.
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(5);

/// Clock skew allowed between the hosts of two runs.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Lease time a write must leave unused: its longest duration plus skew.
pub const LEASE_MARGIN: Duration = Duration::from_secs(OPERATION_TIMEOUT.as_secs() + CLOCK_SKEW.as_secs());

/// The limits of one run.
#[derive(Debug, Clone)]
pub struct Budget {
    /// When the invocation ends, if it ends (Lambda's deadline; none for a
    /// caller that has all the time it needs).
    deadline: Option<SystemTime>,
    clock: Arc<dyn Clock>,
}

impl Budget {
    /// A budget ending at `deadline` (none: no deadline), with the lease
    /// clock `clock`.
    pub fn new(deadline: Option<SystemTime>, clock: Arc<dyn Clock>) -> Self {
        Budget { deadline, clock }
    }

    /// From Lambda's context deadline (milliseconds since the epoch; 0, as
    /// in `Context::default()`, means none).
    pub fn from_deadline_ms(deadline_ms: u64, clock: Arc<dyn Clock>) -> Self {
        let deadline = (deadline_ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(deadline_ms));
        Budget::new(deadline, clock)
    }

    /// Time left before the deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.duration_since(SystemTime::now()).unwrap_or_default())
    }

    /// True when a write may start now under `fence`: enough time before
    /// the deadline, and enough lease left that it cannot outlive it.
    pub fn may_write(&self, fence: &Fence) -> bool {
        let time_left = self.remaining().is_none_or(|r| r > DEADLINE_RESERVE);
        let lease_left = fence.expires_at.saturating_sub(self.clock.now()) > LEASE_MARGIN.as_secs();
        time_left && lease_left
    }

    /// True when a dry run (no lease) may go on reading.
    pub fn may_read(&self) -> bool {
        self.remaining().is_none_or(|r| r > DEADLINE_RESERVE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lbgp_aws::store::SystemClock;

    fn fence(expires_at: u64) -> Fence {
        Fence {
            lease_pk: "lease#f#m".into(),
            holder: "h".into(),
            token: 1,
            expires_at,
        }
    }

    #[test]
    fn writes_stop_before_the_deadline_and_before_the_lease_runs_out() {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now = clock.now();
        let open = Budget::new(None, clock.clone());
        assert!(open.may_write(&fence(now + 180)));
        // The lease would end before a write and its retries could finish.
        assert!(!open.may_write(&fence(now + LEASE_MARGIN.as_secs())));
        let closing = Budget::new(Some(SystemTime::now() + Duration::from_secs(3)), clock.clone());
        assert!(!closing.may_write(&fence(now + 180)));
        let later = Budget::new(Some(SystemTime::now() + Duration::from_secs(60)), clock);
        assert!(later.may_write(&fence(now + 180)));
        assert_eq!(
            Budget::from_deadline_ms(0, Arc::new(SystemClock)).remaining(),
            None
        );
    }
}
