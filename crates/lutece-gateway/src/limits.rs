//! Limits on inference, per tenant and per key: requests per minute and tokens per minute, as
//! token buckets that refill continuously (a burst of a minute's allowance, then a steady
//! rate), and a token budget per calendar month (UTC). A request must pass its key's limits and
//! its tenant's. It is let in while every bucket holds something; its tokens are taken once its
//! answer says how many it used, so one large answer may leave a bucket in debt and hold the
//! next requests back. The same goes for budgets: the request that crosses one is served, the
//! ones after it are refused until the month ends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::month::Month;

/// The limits of a tenant or of one key; None is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
    /// Prompt and completion tokens per calendar month (UTC).
    pub monthly_token_budget: Option<u64>,
}

/// Tokens used so far in the current calendar month, for budgets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpentThisMonth {
    pub tenant: u64,
    pub key: u64,
}

/// Whose limits: the caller's key, or its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holder {
    Key,
    Tenant,
}

impl Holder {
    fn name(self) -> &'static str {
        match self {
            Holder::Key => "key",
            Holder::Tenant => "tenant",
        }
    }
}

/// Why a request must wait, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub message: String,
    pub retry_after: Duration,
    /// A budget is used up (`insufficient_quota`), rather than a rate reached.
    pub quota: bool,
}

/// What the limiter needs to know of one request's caller.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tenant_id: &'a str,
    pub key_id: &'a str,
    pub tenant: Limits,
    pub key: Limits,
    pub spent: SpentThisMonth,
}

impl Subject<'_> {
    /// The key's limits first: the narrower ones name the reason.
    fn holders(&self) -> [(Holder, &str, Limits); 2] {
        [
            (Holder::Key, self.key_id, self.key),
            (Holder::Tenant, self.tenant_id, self.tenant),
        ]
    }
}

#[derive(Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn full(per_minute: f64, now: Instant) -> Self {
        Self {
            level: per_minute,
            at: now,
        }
    }

    /// The level now, refilled at `per_minute` per minute up to `per_minute`.
    fn refill(&mut self, per_minute: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * per_minute / 60.0).min(per_minute);
        self.at = now;
    }

    /// How long until the level reaches `wanted`.
    fn wait_for(&self, wanted: f64, per_minute: f64) -> Duration {
        let missing = (wanted - self.level).max(0.0);
        Duration::try_from_secs_f64(missing * 60.0 / per_minute).unwrap_or(Duration::MAX)
    }
}

#[derive(Debug, Default)]
struct Buckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

/// The buckets of every key and tenant that has rate limits.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<(Holder, String), Buckets>>,
}

impl Limiter {
    /// Lets a request in (taking one from each request bucket) or says how long to wait.
    /// `unix_secs` is the wall-clock time, for the month of budgets.
    pub fn admit(&self, who: &Subject, now: Instant, unix_secs: i64) -> Result<(), Limited> {
        budgets_allow(who, unix_secs)?;
        let holders = who.holders();
        if holders.iter().all(|(_, _, l)| rate_free(l)) {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // Check every bucket before taking from any: a refused request costs nothing.
        for (holder, id, limits) in holders {
            if rate_free(&limits) {
                continue;
            }
            let held = buckets.entry((holder, id.to_owned())).or_default();
            if let Some(tpm) = limits.tokens_per_minute {
                let tpm = tpm as f64;
                let bucket = held.tokens.get_or_insert_with(|| Bucket::full(tpm, now));
                bucket.refill(tpm, now);
                if bucket.level <= 0.0 {
                    return Err(Limited {
                        message: format!(
                            "Rate limit reached: {} tokens per minute for this {}.",
                            tpm as u64,
                            holder.name()
                        ),
                        retry_after: bucket.wait_for(1.0, tpm),
                        quota: false,
                    });
                }
            }
            if let Some(rpm) = limits.requests_per_minute {
                let rpm = f64::from(rpm);
                let bucket = held.requests.get_or_insert_with(|| Bucket::full(rpm, now));
                bucket.refill(rpm, now);
                if bucket.level < 1.0 {
                    return Err(Limited {
                        message: format!(
                            "Rate limit reached: {} requests per minute for this {}.",
                            rpm as u64,
                            holder.name()
                        ),
                        retry_after: bucket.wait_for(1.0, rpm),
                        quota: false,
                    });
                }
            }
        }
        for (holder, id, limits) in holders {
            if limits.requests_per_minute.is_none() {
                continue;
            }
            let held = buckets.get_mut(&(holder, id.to_owned()));
            if let Some(bucket) = held.and_then(|held| held.requests.as_mut()) {
                bucket.level -= 1.0;
            }
        }
        Ok(())
    }

    /// Takes the tokens an answer used from the key's and the tenant's token buckets.
    pub fn spend_tokens(&self, who: &Subject, tokens: u64, now: Instant) {
        let holders = who.holders();
        if holders
            .iter()
            .all(|(_, _, l)| l.tokens_per_minute.is_none())
        {
            return;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for (holder, id, limits) in holders {
            let Some(tpm) = limits.tokens_per_minute else {
                continue;
            };
            let tpm = tpm as f64;
            let held = buckets.entry((holder, id.to_owned())).or_default();
            let bucket = held.tokens.get_or_insert_with(|| Bucket::full(tpm, now));
            bucket.refill(tpm, now);
            bucket.level -= tokens as f64;
        }
    }
}

fn rate_free(limits: &Limits) -> bool {
    limits.requests_per_minute.is_none() && limits.tokens_per_minute.is_none()
}

/// Refuses a request whose key or tenant has used up its monthly budget, until the month ends.
fn budgets_allow(who: &Subject, unix_secs: i64) -> Result<(), Limited> {
    let spent = [who.spent.key, who.spent.tenant];
    for ((holder, _, limits), spent) in who.holders().into_iter().zip(spent) {
        let Some(budget) = limits.monthly_token_budget else {
            continue;
        };
        if spent >= budget {
            let month = Month::containing(unix_secs);
            let left = u64::try_from(month.end_secs - unix_secs).unwrap_or(1);
            return Err(Limited {
                message: format!(
                    "This {}'s monthly budget of {budget} tokens is used up ({spent} used); it renews on {} (UTC).",
                    holder.name(),
                    month.next_start_date()
                ),
                retry_after: Duration::from_secs(left),
                quota: true,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    /// 2026-11-29T18:50:04Z.
    const NOW: i64 = 1_795_978_204;

    fn tenant_only(limits: Limits) -> Subject<'static> {
        Subject {
            tenant_id: "a",
            key_id: "ka",
            tenant: limits,
            key: Limits::default(),
            spent: SpentThisMonth::default(),
        }
    }

    fn rpm(n: u32) -> Limits {
        Limits {
            requests_per_minute: Some(n),
            ..Limits::default()
        }
    }

    #[test]
    fn requests_burst_to_the_minute_then_flow_at_the_rate() {
        let limiter = Limiter::default();
        let a = tenant_only(rpm(60));
        let t0 = Instant::now();
        for _ in 0..60 {
            limiter.admit(&a, t0, NOW).unwrap();
        }
        let refused = limiter.admit(&a, t0, NOW).unwrap_err();
        assert_eq!(refused.retry_after, S);
        assert!(
            refused
                .message
                .contains("60 requests per minute for this tenant")
        );
        assert!(!refused.quota);
        // Other tenants and unlimited tenants are not affected.
        let b = Subject {
            tenant_id: "b",
            key_id: "kb",
            ..a
        };
        limiter.admit(&b, t0, NOW).unwrap();
        limiter
            .admit(&tenant_only(Limits::default()), t0, NOW)
            .unwrap();
        // One request per second flows again.
        limiter.admit(&a, t0 + S, NOW).unwrap();
        assert!(limiter.admit(&a, t0 + S, NOW).is_err());
        // A long pause refills to the minute's allowance, no more.
        let later = t0 + 600 * S;
        for _ in 0..60 {
            limiter.admit(&a, later, NOW).unwrap();
        }
        assert!(limiter.admit(&a, later, NOW).is_err());
    }

    #[test]
    fn tokens_are_spent_after_the_answer_and_debt_holds_requests_back() {
        let limiter = Limiter::default();
        let a = tenant_only(Limits {
            tokens_per_minute: Some(600),
            ..Limits::default()
        });
        let t0 = Instant::now();
        limiter.admit(&a, t0, NOW).unwrap();
        limiter.spend_tokens(&a, 900, t0);
        // 300 in debt at 10 tokens a second: 30 s until the bucket holds a token again.
        let refused = limiter.admit(&a, t0 + 10 * S, NOW).unwrap_err();
        assert_eq!(refused.retry_after.as_secs_f64().round(), 20.0);
        assert!(limiter.admit(&a, t0 + 31 * S, NOW).is_ok());
    }

    #[test]
    fn a_key_is_held_to_its_own_limits_and_to_its_tenants() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        // Two keys of one tenant allowed 3 requests a minute; the first key alone 1.
        let first = Subject {
            key: rpm(1),
            ..tenant_only(rpm(3))
        };
        let second = Subject {
            key_id: "kb",
            key: Limits::default(),
            ..first
        };
        limiter.admit(&first, t0, NOW).unwrap();
        let refused = limiter.admit(&first, t0, NOW).unwrap_err();
        assert!(
            refused
                .message
                .contains("1 requests per minute for this key")
        );
        // The refusal took nothing from the tenant: the second key still has two.
        limiter.admit(&second, t0, NOW).unwrap();
        limiter.admit(&second, t0, NOW).unwrap();
        let refused = limiter.admit(&second, t0, NOW).unwrap_err();
        assert!(
            refused
                .message
                .contains("3 requests per minute for this tenant")
        );
        // Tokens count against both the key's and the tenant's buckets.
        let tokens = Limits {
            tokens_per_minute: Some(100),
            ..Limits::default()
        };
        let key_tokens = Subject {
            key_id: "kc",
            key: tokens,
            ..tenant_only(tokens)
        };
        limiter.spend_tokens(&key_tokens, 100, t0);
        let other_key = Subject {
            key_id: "kd",
            key: Limits::default(),
            ..key_tokens
        };
        let refused = limiter.admit(&other_key, t0, NOW).unwrap_err();
        assert!(
            refused
                .message
                .contains("100 tokens per minute for this tenant")
        );
    }

    #[test]
    fn a_used_up_budget_refuses_until_the_month_ends() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        let budget = |n| Limits {
            monthly_token_budget: Some(n),
            ..Limits::default()
        };
        let mut who = Subject {
            key: budget(1_000),
            ..tenant_only(budget(5_000))
        };
        who.spent = SpentThisMonth {
            tenant: 999,
            key: 999,
        };
        limiter.admit(&who, t0, NOW).unwrap();
        who.spent.key = 1_000;
        let refused = limiter.admit(&who, t0, NOW).unwrap_err();
        assert!(refused.quota);
        assert!(
            refused
                .message
                .contains("key's monthly budget of 1000 tokens")
                && refused.message.contains("2026-12-01"),
            "{}",
            refused.message
        );
        // Until 2026-12-01T00:00:00Z.
        assert_eq!(refused.retry_after.as_secs(), 1_796_083_200 - 1_795_978_204);
        who.key = Limits::default();
        who.spent.tenant = 7_000;
        let refused = limiter.admit(&who, t0, NOW).unwrap_err();
        assert!(refused.message.contains("tenant's monthly budget of 5000"));
    }
}
