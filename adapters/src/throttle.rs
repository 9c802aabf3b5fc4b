//! Client-side pacing of mutating EC2 calls. EC2 meters mutating actions per
//! account and region with a token bucket (burst 50, refill 5 per second by
//! default); pacing ourselves to it keeps a large failover from being
//! throttled into a slow one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket shared by every writer of one region.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    inner: Arc<Mutex<State>>,
    burst: f64,
    refill_per_sec: f64,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket holding `burst` tokens, refilled at `refill_per_sec`.
    /// A refill of zero or less disables pacing.
    pub fn new(burst: u32, refill_per_sec: f64) -> Self {
        TokenBucket {
            inner: Arc::new(Mutex::new(State {
                tokens: f64::from(burst),
                last: Instant::now(),
            })),
            burst: f64::from(burst.max(1)),
            refill_per_sec,
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

    /// Waits for one token.
    pub async fn acquire(&self) {
        if self.refill_per_sec <= 0.0 {
            return;
        }
        let wait = {
            let mut state = self.inner.lock().await;
            let now = Instant::now();
            let elapsed = now.duration_since(state.last).as_secs_f64();
            state.tokens = (state.tokens + elapsed * self.refill_per_sec).min(self.burst);
            state.last = now;
            state.tokens -= 1.0;
            if state.tokens >= 0.0 {
                Duration::ZERO
            } else {
                // Reserve the token now; wait until it has been refilled.
                Duration::from_secs_f64(-state.tokens / self.refill_per_sec)
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
}
