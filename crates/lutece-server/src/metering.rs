//! The gateway's token counts, summed in memory per tenant, key, model and minute and written
//! to the store once a second: one small transaction however many requests arrive.

use lutece_gateway::{Caller, Meter, TokenUsage};
use lutece_store::{Store, TokenUsageRow};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::state::now_ms;

type Bucket = (String, String, String, i64);

/// Counts not yet written.
#[derive(Default)]
pub(crate) struct TokenMeter {
    pending: Mutex<HashMap<Bucket, (u64, u64, u64)>>,
}

impl Meter for TokenMeter {
    fn record(&self, caller: &Caller, model: &str, usage: TokenUsage) {
        let minute = now_ms() / 60_000 * 60_000;
        let key = (
            caller.tenant_id.clone(),
            caller.key_id.clone(),
            model.to_owned(),
            minute,
        );
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let counts = pending.entry(key).or_default();
        counts.0 += 1;
        counts.1 += usage.prompt_tokens;
        counts.2 += usage.completion_tokens;
    }
}

impl TokenMeter {
    /// Writes what was counted; on failure the counts are kept for the next try.
    pub(crate) async fn flush(&self, store: &Store) {
        let taken: Vec<(Bucket, (u64, u64, u64))> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if taken.is_empty() {
            return;
        }
        let rows: Vec<TokenUsageRow> = taken
            .iter()
            .map(
                |((tenant_id, key_id, model, minute), counts)| TokenUsageRow {
                    tenant_id: tenant_id.clone(),
                    tenant_name: String::new(),
                    key_id: key_id.clone(),
                    model: model.clone(),
                    minute: *minute,
                    requests: counts.0,
                    prompt_tokens: counts.1,
                    completion_tokens: counts.2,
                },
            )
            .collect();
        if let Err(error) = store.add_token_usage(&rows).await {
            tracing::warn!(%error, "token usage not written yet; will retry");
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (bucket, counts) in taken {
                let kept = pending.entry(bucket).or_default();
                kept.0 += counts.0;
                kept.1 += counts.1;
                kept.2 += counts.2;
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
