//! Client-side pacing of mutating EC2 calls. EC2 meters mutating actions per
//! account and region with a token bucket (burst 50, refill 5 per second by
//! default), shared with every other tool of the account; pacing ourselves
//! to it keeps a large failover from being throttled into a slow one, and
//! backing off when EC2 throttles anyway (another tool is spending the
//! budget) stops lbgp from retrying into the same wall.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// The lowest refill a throttled bucket backs off to, per second.
pub const MIN_RATE: f64 = 0.5;
/// What one throttling answer leaves of the refill (TCP's and the SDK's
/// CUBIC multiplicative decrease).
pub const DECREASE: f64 = 0.7;
/// Throttling answers inside this window after a decrease are the same
/// congestion (calls already in flight): one decrease per window.
pub const DECREASE_WINDOW: Duration = Duration::from_secs(1);
/// Without further throttling the refill climbs back to the configured one
/// linearly over this long, from nothing.
pub const RECOVERY: Duration = Duration::from_secs(5);

/// A token bucket shared by every writer of one region.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    inner: Arc<Mutex<State>>,
    burst: f64,
    /// The configured refill: the ceiling the rate recovers to.
    configured: f64,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
    /// The refill now: the configured one, or less after throttling.
    rate: f64,
    /// When the refill last came down.
    decreased: Option<Instant>,
}

impl TokenBucket {
    /// A bucket holding `burst` tokens, refilled at `refill_per_sec`.
    /// A refill of zero or less disables pacing.
    pub fn new(burst: u32, refill_per_sec: f64) -> Self {
        TokenBucket {
            inner: Arc::new(Mutex::new(State {
                tokens: f64::from(burst),
                last: Instant::now(),
                rate: refill_per_sec,
                decreased: None,
            })),
            burst: f64::from(burst.max(1)),
            configured: refill_per_sec,
        }
    }

    /// How many calls the bucket lets through at once when full: how many a
    /// writer should keep in flight, so a burst goes out in one round trip.
    pub fn burst(&self) -> usize {
        // `burst` is a `u32` made float in `new`: the cast is exact.
        self.burst as usize
    }

    /// EC2's published defaults for mutating actions: burst 50, 5 per second.
    pub fn ec2_mutating_default() -> Self {
        TokenBucket::new(50, 5.0)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The refill now, per second.
    pub fn rate(&self) -> f64 {
        self.state().rate
    }

    /// EC2 throttled a call: the account's budget is spent by someone. The
    /// refill drops to [`DECREASE`] of itself (not below [`MIN_RATE`]), at
    /// most once per [`DECREASE_WINDOW`], and what is left in the bucket
    /// goes; it climbs back over [`RECOVERY`] while EC2 stops throttling.
    /// (AIMD: a fixed decrease per answer would collapse to the floor
    /// whenever another tool keeps the budget half spent.)
    pub fn throttled(&self) {
        if self.configured <= 0.0 {
            return;
        }
        let now = Instant::now();
        let mut state = self.state();
        if state
            .decreased
            .is_some_and(|at| now.duration_since(at) < DECREASE_WINDOW)
        {
            return;
        }
        self.refill(&mut state, now);
        state.rate = (state.rate * DECREASE).max(MIN_RATE.min(self.configured));
        state.tokens = state.tokens.min(0.0);
        state.decreased = Some(now);
    }

    /// Adds the tokens refilled since the last look, and lets the refill
    /// climb back (additive recovery, by time: the configured rate in
    /// [`RECOVERY`]).
    fn refill(&self, state: &mut State, now: Instant) {
        let elapsed = now.duration_since(state.last).as_secs_f64();
        state.tokens = (state.tokens + elapsed * state.rate).min(self.burst);
        state.last = now;
        state.rate = (state.rate + self.configured * elapsed / RECOVERY.as_secs_f64()).min(self.configured);
    }

    /// Waits for one token.
    pub async fn acquire(&self) {
        if self.configured <= 0.0 {
            return;
        }
        let wait = {
            let mut state = self.state();
            self.refill(&mut state, Instant::now());
            state.tokens -= 1.0;
            if state.tokens >= 0.0 {
                Duration::ZERO
            } else {
                // Reserve the token now; wait until it has been refilled.
                Duration::from_secs_f64(-state.tokens / state.rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_refill_rate() {
        let bucket = TokenBucket::new(50, 5.0);
        let start = Instant::now();
        for _ in 0..50 {
            bucket.acquire().await;
        }
        assert!(start.elapsed() < Duration::from_millis(1));
        for _ in 0..10 {
            bucket.acquire().await;
        }
        // Ten more tokens at 5/s take two seconds.
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1990) && took <= Duration::from_millis(2100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_slows_the_refill_once_per_window_and_time_wins_it_back() {
        let bucket = TokenBucket::new(5, 4.0);
        bucket.throttled();
        assert!((bucket.rate() - 2.8).abs() < 1e-9, "{}", bucket.rate());
        // The calls in flight answer throttled too: the same congestion.
        bucket.throttled();
        bucket.throttled();
        assert!((bucket.rate() - 2.8).abs() < 1e-9, "{}", bucket.rate());
        // Throttled in every window: the refill settles where a window's
        // recovery (4/5 per second) meets the decrease, r = 0.7 (r + 0.8),
        // about 1.87 per second - slowed, not collapsed to the floor.
        for _ in 0..40 {
            tokio::time::advance(DECREASE_WINDOW).await;
            bucket.throttled();
        }
        let settled = bucket.rate();
        assert!((settled - 0.56 / 0.3).abs() < 0.01, "{settled}");
        // The bucket was emptied: the next token waits for the low refill.
        let start = Instant::now();
        bucket.acquire().await;
        let first = start.elapsed();
        assert!(first >= Duration::from_millis(500), "{first:?}");
        tokio::time::advance(RECOVERY).await;
        bucket.acquire().await;
        assert!((bucket.rate() - 4.0).abs() < 1e-9, "{}", bucket.rate());
        // Pacing off: throttling changes nothing.
        let off = TokenBucket::new(5, 0.0);
        off.throttled();
        off.acquire().await;
        assert_eq!(off.rate(), 0.0);
    }
}
