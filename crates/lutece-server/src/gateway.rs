//! The inference gateway (`/v1`), authenticated by the same tenant API keys as `/api/v1`.

use std::sync::Arc;

use axum::Router;
use lutece_gateway::{Authenticator, Caller, Gateway, RateLimits, Routes};
use lutece_store::Store;

use crate::auth::hash_secret;
use crate::state::AppState;

/// Looks keys up in the store, as the API does.
struct StoreKeys {
    store: Store,
}

impl Authenticator for StoreKeys {
    async fn authenticate(&self, token: &str) -> Result<Option<Caller>, String> {
        let key = self
            .store
            .key_by_hash(&hash_secret(token))
            .await
            .map_err(|e| e.to_string())?;
        let Some(key) = key.filter(|key| key.revoked_at.is_none()) else {
            return Ok(None);
        };
        let (requests_per_minute, tokens_per_minute) = self
            .store
            .tenant_limits(&key.tenant_id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(Caller {
            tenant_id: key.tenant_id,
            key_id: key.id,
            limits: RateLimits {
                requests_per_minute,
                tokens_per_minute,
            },
        }))
    }
}

pub(crate) fn router(
    state: &AppState,
    routes: Arc<Routes>,
    meter: Arc<crate::metering::TokenMeter>,
) -> Router {
    let auth = StoreKeys {
        store: state.store.clone(),
    };
    lutece_gateway::proxy::router(Arc::new(Gateway::new(auth, routes, meter)))
}
