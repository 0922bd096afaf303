//! The gateway's token counts, summed in memory per tenant, project, key, model and minute and
//! written to the store once a second: one small transaction however many requests arrive.
//! The meter also keeps each tenant's and key's total for the month under way, which budgets
//! are checked against: read from the store at start, then counted as answers arrive.

use lutece_gateway::{Caller, Meter, Month, SpentThisMonth, TokenUsage};
use lutece_store::{Store, StoreError, TokenUsageRow};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::state::now_ms;

/// Tenant, project, key, model, minute.
type Bucket = (String, String, String, String, i64);

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Counts {
    /// Adds, saturating: a replica's report is not trusted not to overflow.
    fn add(&mut self, requests: u64, prompt_tokens: u64, completion_tokens: u64) {
        self.requests = self.requests.saturating_add(requests);
        self.prompt_tokens = self.prompt_tokens.saturating_add(prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(completion_tokens);
    }
}

/// Tokens used in one calendar month (UTC), per tenant and per key.
#[derive(Debug, Default)]
struct MonthTotals {
    start_ms: i64,
    tenants: HashMap<String, u64>,
    keys: HashMap<String, u64>,
}

impl MonthTotals {
    /// Starts afresh when a new month began since the last count (never backwards: a clock
    /// stepped back does not wipe the month's totals).
    fn roll(&mut self, now_ms: i64) {
        let start_ms = Month::containing(now_ms.div_euclid(1000)).start_secs * 1000;
        if start_ms > self.start_ms {
            *self = Self {
                start_ms,
                ..Self::default()
            };
        }
    }
}

/// Counts not yet written, and the month's totals.
#[derive(Default)]
pub(crate) struct TokenMeter {
    pending: Mutex<HashMap<Bucket, Counts>>,
    month: Mutex<MonthTotals>,
}

impl Meter for TokenMeter {
    fn record(&self, caller: &Caller, project: &str, model: &str, usage: TokenUsage) {
        let now = now_ms();
        let key = (
            caller.tenant_id.clone(),
            project.to_owned(),
            caller.key_id.clone(),
            model.to_owned(),
            now / 60_000 * 60_000,
        );
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let counts = pending.entry(key).or_default();
            counts.add(1, usage.prompt_tokens, usage.completion_tokens);
        }
        let tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        let mut month = self.month.lock().unwrap_or_else(|p| p.into_inner());
        month.roll(now);
        let tenant = month.tenants.entry(caller.tenant_id.clone()).or_default();
        *tenant = tenant.saturating_add(tokens);
        let key = month.keys.entry(caller.key_id.clone()).or_default();
        *key = key.saturating_add(tokens);
    }
}

impl TokenMeter {
    /// A meter that knows what was used so far this month.
    pub(crate) async fn load(store: &Store) -> Result<Self, StoreError> {
        let mut month = MonthTotals::default();
        month.roll(now_ms());
        for (tenant_id, key_id, tokens) in store.tokens_since(month.start_ms).await? {
            let tenant = month.tenants.entry(tenant_id).or_default();
            *tenant = tenant.saturating_add(tokens);
            let key = month.keys.entry(key_id).or_default();
            *key = key.saturating_add(tokens);
        }
        Ok(Self {
            pending: Mutex::default(),
            month: Mutex::new(month),
        })
    }

    /// Tokens the tenant and the key have used this month.
    pub(crate) fn spent_this_month(&self, tenant_id: &str, key_id: &str) -> SpentThisMonth {
        let mut month = self.month.lock().unwrap_or_else(|p| p.into_inner());
        month.roll(now_ms());
        SpentThisMonth {
            tenant: month.tenants.get(tenant_id).copied().unwrap_or(0),
            key: month.keys.get(key_id).copied().unwrap_or(0),
        }
    }

    /// Writes what was counted; on failure the counts are kept for the next try.
    pub(crate) async fn flush(&self, store: &Store) {
        let taken: Vec<(Bucket, Counts)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if taken.is_empty() {
            return;
        }
        let rows: Vec<TokenUsageRow> = taken
            .iter()
            .map(
                |((tenant_id, project, key_id, model, minute), counts)| TokenUsageRow {
                    tenant_id: tenant_id.clone(),
                    tenant_name: String::new(),
                    project: project.clone(),
                    key_id: key_id.clone(),
                    model: model.clone(),
                    minute: *minute,
                    requests: counts.requests,
                    prompt_tokens: counts.prompt_tokens,
                    completion_tokens: counts.completion_tokens,
                },
            )
            .collect();
        if let Err(error) = store.add_token_usage(&rows).await {
            tracing::warn!(%error, "token usage not written yet; will retry");
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (bucket, counts) in taken {
                pending.entry(bucket).or_default().add(
                    counts.requests,
                    counts.prompt_tokens,
                    counts.completion_tokens,
                );
            }
        }
    }

    /// Flushes every second, forever.
    pub(crate) async fn run(self: Arc<Self>, store: Store) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.flush(&store).await;
        }
    }
}
