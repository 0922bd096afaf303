//! Rate limits per tenant: requests per minute and tokens per minute, as token buckets that
//! refill continuously (a burst of a minute's allowance, then a steady rate). A request is let
//! in while both buckets hold something; its tokens are taken once its answer says how many it
//! used, so one large answer may leave the bucket in debt and hold the next requests back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A tenant's limits; None is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
}

/// Why a request must wait, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub message: String,
    pub retry_after: Duration,
}

#[derive(Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    /// The level now, refilled at `per_minute` per minute up to `per_minute`.
    fn refill(&mut self, per_minute: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * per_minute / 60.0).min(per_minute);
        self.at = now;
    }

    /// How long until the level reaches `wanted`.
    fn wait_for(&self, wanted: f64, per_minute: f64) -> Duration {
        let missing = (wanted - self.level).max(0.0);
        Duration::from_secs_f64(missing * 60.0 / per_minute)
    }
}

#[derive(Debug, Default)]
struct TenantBuckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

/// The buckets of every tenant that has limits.
#[derive(Debug, Default)]
pub struct Limiter {
    tenants: Mutex<HashMap<String, TenantBuckets>>,
}

impl Limiter {
    /// Lets a request in (taking one from the request bucket) or says how long to wait.
    pub fn admit(&self, tenant: &str, limits: RateLimits, now: Instant) -> Result<(), Limited> {
        if limits == RateLimits::default() {
            return Ok(());
        }
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let buckets = tenants.entry(tenant.to_owned()).or_default();
        if let Some(tpm) = limits.tokens_per_minute {
            let tpm = tpm as f64;
            let bucket = buckets.tokens.get_or_insert(Bucket {
                level: tpm,
                at: now,
            });
            bucket.refill(tpm, now);
            if bucket.level <= 0.0 {
                return Err(Limited {
                    message: format!(
                        "Rate limit reached: {} tokens per minute for this tenant.",
                        tpm as u64
                    ),
                    retry_after: bucket.wait_for(1.0, tpm),
                });
            }
        }
        if let Some(rpm) = limits.requests_per_minute {
            let rpm = f64::from(rpm);
            let bucket = buckets.requests.get_or_insert(Bucket {
                level: rpm,
                at: now,
            });
            bucket.refill(rpm, now);
            if bucket.level < 1.0 {
                return Err(Limited {
                    message: format!(
                        "Rate limit reached: {} requests per minute for this tenant.",
                        rpm as u64
                    ),
                    retry_after: bucket.wait_for(1.0, rpm),
                });
            }
            bucket.level -= 1.0;
        }
        Ok(())
    }

    /// Takes the tokens an answer used from the tenant's token bucket.
    pub fn spend_tokens(&self, tenant: &str, limits: RateLimits, tokens: u64, now: Instant) {
        let Some(tpm) = limits.tokens_per_minute else {
            return;
        };
        let tpm = tpm as f64;
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let buckets = tenants.entry(tenant.to_owned()).or_default();
        let bucket = buckets.tokens.get_or_insert(Bucket {
            level: tpm,
            at: now,
        });
        bucket.refill(tpm, now);
        bucket.level -= tokens as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn requests_burst_to_the_minute_then_flow_at_the_rate() {
        let limiter = Limiter::default();
        let limits = RateLimits {
            requests_per_minute: Some(60),
            tokens_per_minute: None,
        };
        let t0 = Instant::now();
        for _ in 0..60 {
            limiter.admit("a", limits, t0).unwrap();
        }
        let refused = limiter.admit("a", limits, t0).unwrap_err();
        assert_eq!(refused.retry_after, S);
        assert!(refused.message.contains("60 requests per minute"));
        // Other tenants and unlimited tenants are not affected.
        limiter.admit("b", limits, t0).unwrap();
        limiter.admit("a", RateLimits::default(), t0).unwrap();
        // One request per second flows again.
        limiter.admit("a", limits, t0 + S).unwrap();
        assert!(limiter.admit("a", limits, t0 + S).is_err());
        // A long pause refills to the minute's allowance, no more.
        let later = t0 + 600 * S;
        for _ in 0..60 {
            limiter.admit("a", limits, later).unwrap();
        }
        assert!(limiter.admit("a", limits, later).is_err());
    }

    #[test]
    fn tokens_are_spent_after_the_answer_and_debt_holds_requests_back() {
        let limiter = Limiter::default();
        let limits = RateLimits {
            requests_per_minute: None,
            tokens_per_minute: Some(600),
        };
        let t0 = Instant::now();
        limiter.admit("a", limits, t0).unwrap();
        limiter.spend_tokens("a", limits, 900, t0);
        // 300 in debt at 10 tokens a second: 30 s until the bucket holds a token again.
        let refused = limiter.admit("a", limits, t0 + 10 * S).unwrap_err();
        assert_eq!(refused.retry_after.as_secs_f64().round(), 20.0);
        assert!(limiter.admit("a", limits, t0 + 31 * S).is_ok());
    }
}
