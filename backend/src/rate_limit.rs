//! Claims per installer: a token bucket each (in this process; several instances each keep their own,
//! so the limit scales with the instance count — docs/backend.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimitConfig;

/// Token buckets by installer.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before idle full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Buckets of `config.burst` tokens refilled at `config.per_minute`.
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            burst: f64::from(config.burst.max(1)),
            per_second: f64::from(config.per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `installer`'s bucket at `now`: `Ok(())`, or `Err(wait)` until one is there.
    pub fn take(&self, installer: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(installer.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_installer() {
        let limiter = RateLimiter::new(&RateLimitConfig {
            burst: 2,
            per_minute: 60,
        });
        let t0 = Instant::now();
        assert!(limiter.take("a", t0).is_ok());
        assert!(limiter.take("a", t0).is_ok());
        let wait = limiter.take("a", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limiter.take("b", t0).is_ok(), "buckets are per installer");
        assert!(limiter.take("a", t0 + Duration::from_secs(1)).is_ok());
        assert!(limiter.take("a", t0 + Duration::from_secs(1)).is_err());
    }
}
