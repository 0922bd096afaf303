//! The inference gateway (`/v1`), authenticated by the same tenant API keys as `/api/v1`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use lutece_gateway::{Authenticator, Caller, Gateway, Limits, Routes};
use lutece_store::{GatewayKey, LimitsRow, Store};

use crate::auth::hash_secret;
use crate::metering::TokenMeter;
use crate::state::AppState;

/// How long a key looked up stays cached; changes made through the API empty the cache at
/// once, so this only bounds what another writer of the store could leave stale.
const KEY_TTL: Duration = Duration::from_secs(5);
/// Keys cached at most; beyond, the cache starts afresh.
const KEY_CACHE_CAPACITY: usize = 100_000;

/// Keys the gateway looked up lately (by secret hash), so that a request costs no store query.
/// Revoking a key or changing any limits empties it ([`KeyCache::clear`]); a lookup that was
/// under way when it was emptied is not kept, so a revoked key never comes back from it.
#[derive(Default)]
pub(crate) struct KeyCache {
    inner: Mutex<CachedKeys>,
}

#[derive(Default)]
struct CachedKeys {
    generation: u64,
    keys: HashMap<String, (GatewayKey, Instant)>,
}

impl KeyCache {
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.generation += 1;
        inner.keys.clear();
    }

    /// The cached key, or the cache's generation to hand back to [`KeyCache::put`].
    fn get(&self, hash: &str) -> Result<GatewayKey, u64> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.keys.get(hash) {
            Some((key, at)) if at.elapsed() < KEY_TTL => Ok(key.clone()),
            _ => Err(inner.generation),
        }
    }

    fn put(&self, hash: String, key: GatewayKey, generation: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.generation != generation {
            return;
        }
        if inner.keys.len() >= KEY_CACHE_CAPACITY {
            inner.keys.clear();
        }
        inner.keys.insert(hash, (key, Instant::now()));
    }
}

/// Looks keys up in the store (through the cache), as the API does, with their limits and
/// their tenant's, and what both used this month.
struct StoreKeys {
    store: Store,
    meter: Arc<TokenMeter>,
    cache: Arc<KeyCache>,
}

impl Authenticator for StoreKeys {
    async fn authenticate(&self, token: &str) -> Result<Option<Caller>, String> {
        let hash = hash_secret(token);
        let key = match self.cache.get(&hash) {
            Ok(key) => key,
            Err(generation) => {
                let found = self
                    .store
                    .gateway_key(&hash)
                    .await
                    .map_err(|e| e.to_string())?;
                // Unknown keys are not cached: anyone can send any number of them.
                let Some(found) = found else {
                    return Ok(None);
                };
                self.cache.put(hash, found.clone(), generation);
                found
            }
        };
        if key.revoked {
            return Ok(None);
        }
        let spent_this_month = self.meter.spent_this_month(&key.tenant_id, &key.key_id);
        Ok(Some(Caller {
            residency: key.residency,
            tenant_id: key.tenant_id,
            key_id: key.key_id,
            tenant_limits: limits(key.tenant),
            key_limits: limits(key.key),
            spent_this_month,
        }))
    }
}

fn limits(row: LimitsRow) -> Limits {
    Limits {
        requests_per_minute: row.requests_per_minute,
        tokens_per_minute: row.tokens_per_minute,
        monthly_token_budget: row.monthly_token_budget,
    }
}

pub(crate) fn router(state: &AppState, routes: Arc<Routes>, meter: Arc<TokenMeter>) -> Router {
    let auth = StoreKeys {
        store: state.store.clone(),
        meter: Arc::clone(&meter),
        cache: Arc::clone(&state.gateway_keys),
    };
    lutece_gateway::proxy::router(Arc::new(Gateway::new(auth, routes, meter)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_under_way_when_keys_change_is_not_kept() {
        let cache = KeyCache::default();
        let key = GatewayKey {
            key_id: "k".into(),
            tenant_id: "t".into(),
            revoked: false,
            key: LimitsRow::default(),
            tenant: LimitsRow::default(),
            residency: lutece_core::residency::ResidencyPolicy::anywhere(),
        };
        // A revocation lands while the store is read: what was read is not cached.
        let generation = cache.get("h").unwrap_err();
        cache.clear();
        cache.put("h".into(), key.clone(), generation);
        assert!(cache.get("h").is_err());
        let generation = cache.get("h").unwrap_err();
        cache.put("h".into(), key.clone(), generation);
        assert_eq!(cache.get("h"), Ok(key));
        cache.clear();
        assert!(cache.get("h").is_err());
    }
}
