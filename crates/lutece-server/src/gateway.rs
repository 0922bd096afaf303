//! The inference gateway (`/v1`), authenticated by the same tenant API keys as `/api/v1`.

use std::sync::Arc;

use axum::Router;
use lutece_gateway::{Authenticator, Caller, Gateway, Limits, Routes};
use lutece_store::{LimitsRow, Store};

use crate::auth::hash_secret;
use crate::metering::TokenMeter;
use crate::state::AppState;

/// Looks keys up in the store, as the API does, with their limits and their tenant's, and
/// what both used this month.
struct StoreKeys {
    store: Store,
    meter: Arc<TokenMeter>,
}

impl Authenticator for StoreKeys {
    async fn authenticate(&self, token: &str) -> Result<Option<Caller>, String> {
        let key = self
            .store
            .gateway_key(&hash_secret(token))
            .await
            .map_err(|e| e.to_string())?;
        let Some(key) = key.filter(|key| !key.revoked) else {
            return Ok(None);
        };
        let spent_this_month = self.meter.spent_this_month(&key.tenant_id, &key.key_id);
        Ok(Some(Caller {
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
    };
    lutece_gateway::proxy::router(Arc::new(Gateway::new(auth, routes, meter)))
}
