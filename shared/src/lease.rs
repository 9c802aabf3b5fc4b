//! The lease protocol: one run at a time per scope, with a fencing token
//! that every ledger and state write checks.
//!
//! [`LeaseRecord`] is the lease item's content and its transitions, as pure
//! functions. The DynamoDB store implements each transition as one
//! conditional update with the same condition (see `adapters/src/store/`);
//! the protocol model check drives these functions, and an adapter test
//! drives both side by side and compares them.
//!
//! - A lease is free when it has no holder or its expiry has passed; taking
//!   it increments the token, which never goes backwards (the item is never
//!   deleted, so the counter survives every expiry).
//! - A run that finds the lease held marks work as *pending* on it; the
//!   holder, on release, sees the mark and runs once more instead.
//! - A write is admitted only with the current holder and token: a run
//!   whose lease expired and was taken over writes nothing more.
//! - Route writes to EC2 cannot be fenced by DynamoDB: a run only starts one
//!   while its lease has a safety margin left (`Budget` in the runtime).

/// The lease item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseRecord {
    /// Who holds it, if anyone.
    pub holder: Option<String>,
    /// The fencing token of the last acquisition.
    pub token: u64,
    /// When the holder's lease ends (seconds since the epoch).
    pub expires_at: u64,
    /// Another run asked for work while it was held.
    pub pending: bool,
    /// When the last holder took it (seconds since the epoch): a run that
    /// started after a change has seen it.
    pub started_at: u64,
}

/// The outcome of taking a lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Acquisition {
    /// Ours, with this token, until `expires_at`.
    Held {
        /// The fencing token.
        token: u64,
        /// When it ends.
        expires_at: u64,
    },
    /// Someone else's: work was marked pending for them.
    Busy {
        /// Who holds it.
        holder: String,
    },
}

/// The outcome of releasing a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Release {
    /// Released; nobody asked for more work meanwhile.
    Done,
    /// Work was asked for meanwhile: the lease is kept, the mark cleared,
    /// and the holder runs once more.
    WorkPending,
    /// The lease is not ours any more.
    Lost,
}

impl LeaseRecord {
    /// True when `holder` with `token` holds the lease now: the condition of
    /// every fenced write.
    pub fn admits(&self, holder: &str, token: u64) -> bool {
        self.holder.as_deref() == Some(holder) && self.token == token
    }

    /// True when nobody holds it at `now`.
    pub fn is_free(&self, now: u64) -> bool {
        self.holder.is_none() || self.expires_at < now
    }

    /// Takes the lease for `me` at `now` for `ttl` seconds, or marks work
    /// pending for its holder.
    pub fn acquire(&mut self, me: &str, now: u64, ttl: u64) -> Acquisition {
        if self.is_free(now) || self.holder.as_deref() == Some(me) {
            self.holder = Some(me.to_owned());
            self.expires_at = now + ttl;
            self.pending = false;
            self.token += 1;
            self.started_at = now;
            Acquisition::Held {
                token: self.token,
                expires_at: self.expires_at,
            }
        } else {
            self.pending = true;
            Acquisition::Busy {
                holder: self.holder.clone().unwrap_or_default(),
            }
        }
    }

    /// Extends the lease of `holder` with `token` to `now + ttl`.
    pub fn renew(&mut self, holder: &str, token: u64, now: u64, ttl: u64) -> bool {
        if !self.admits(holder, token) {
            return false;
        }
        self.expires_at = now + ttl;
        true
    }

    /// Releases the lease of `holder` with `token`, unless work is pending.
    pub fn release(&mut self, holder: &str, token: u64) -> Release {
        if !self.admits(holder, token) {
            // A free lease: our own release went through and only its
            // answer was lost.
            return if self.holder.is_none() {
                Release::Done
            } else {
                Release::Lost
            };
        }
        if self.pending {
            self.pending = false;
            return Release::WorkPending;
        }
        self.holder = None;
        self.expires_at = 0;
        Release::Done
    }

    /// Releases the lease and leaves a pending mark: a run that stopped
    /// before its work was done records it for the next one.
    pub fn release_leaving_work(&mut self, holder: &str, token: u64) -> Release {
        if !self.admits(holder, token) {
            return Release::Lost;
        }
        self.holder = None;
        self.expires_at = 0;
        self.pending = true;
        Release::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_tokens_grow_and_pending_work_is_handed_back() {
        let mut lease = LeaseRecord::default();
        assert_eq!(
            lease.acquire("a", 100, 60),
            Acquisition::Held {
                token: 1,
                expires_at: 160
            }
        );
        assert_eq!(
            lease.acquire("b", 120, 60),
            Acquisition::Busy { holder: "a".into() }
        );
        assert_eq!(lease.release("a", 1), Release::WorkPending);
        assert_eq!(lease.release("a", 1), Release::Done);
        assert!(matches!(
            lease.acquire("b", 130, 60),
            Acquisition::Held { token: 2, .. }
        ));
        // Expired: taken over; the old holder is fenced.
        assert!(matches!(
            lease.acquire("c", 200, 60),
            Acquisition::Held { token: 3, .. }
        ));
        assert!(!lease.admits("b", 2));
        assert!(!lease.renew("b", 2, 200, 60));
        assert_eq!(lease.release("b", 2), Release::Lost);
        assert_eq!(lease.release_leaving_work("c", 3), Release::Done);
        assert!(lease.pending && lease.holder.is_none());
        // A new holder starts with no pending mark and a higher token.
        assert!(matches!(
            lease.acquire("d", 201, 60),
            Acquisition::Held { token: 4, .. }
        ));
        assert!(!lease.pending);
    }
}
