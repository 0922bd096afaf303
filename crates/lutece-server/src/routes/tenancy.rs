//! `/api/v1/tenants`, `/api/v1/keys`, `/api/v1/whoami`.

use crate::auth::{Caller, hash_secret, new_id, new_key_token};
use crate::convert;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::{AppState, now_ms};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lutece_api::{ApiKey, CreateKey, CreateTenant, CreatedKey, ErrorBody, Role, Tenant, WhoAmI};
use lutece_core::validate_name;
use lutece_store::{KeyRow, TenantRow};

#[utoipa::path(post, path = "/api/v1/tenants", request_body = CreateTenant, tag = "tenancy",
    responses((status = 201, body = Tenant), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    caller.require(Role::Operator)?;
    validate_name(&request.name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let row = TenantRow {
        id: new_id("ten")?,
        name: request.name,
        created_at: now_ms(),
    };
    state.store.create_tenant(&row).await?;
    tracing::info!(tenant = %row.name, "tenant created");
    Ok((StatusCode::CREATED, Json(convert::tenant(row))))
}

#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenancy", responses((status = 200, body = Vec<Tenant>)))]
pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Tenant>>, ApiError> {
    let all = state.store.list_tenants().await?;
    let visible = all
        .into_iter()
        .filter(|t| caller.scope().is_none_or(|own| own == t.id));
    Ok(Json(visible.map(convert::tenant).collect()))
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}", tag = "tenancy",
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    let tenant = visible_tenant(&state, &caller, &name).await?;
    Ok(Json(convert::tenant(tenant)))
}

/// The tenant named `name` if the caller may see it; otherwise it does not exist.
pub(super) async fn visible_tenant(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<TenantRow, ApiError> {
    let not_found = || ApiError::NotFound(format!("tenant {name:?}"));
    let tenant = state
        .store
        .tenant_by_name(name)
        .await?
        .ok_or_else(not_found)?;
    match caller.scope() {
        Some(own) if own != tenant.id => Err(not_found()),
        _ => Ok(tenant),
    }
}

#[utoipa::path(post, path = "/api/v1/keys", request_body = CreateKey, tag = "tenancy",
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    caller.require(Role::Admin)?;
    let tenant = match &request.tenant {
        Some(name) => visible_tenant(&state, &caller, name).await?,
        None => TenantRow {
            id: caller.tenant_id.clone(),
            name: caller.tenant_name.clone(),
            created_at: 0,
        },
    };
    let role = request.role.unwrap_or(Role::Member);
    if role > caller.role {
        return Err(ApiError::Forbidden(format!(
            "a {} key cannot create a {} key",
            caller.role.as_str(),
            role.as_str()
        )));
    }
    let name = request.name.unwrap_or_else(|| role.as_str().to_owned());
    validate_name(&name).map_err(|e| ApiError::invalid("name", e.to_string()))?;
    let token = new_key_token()?;
    let row = KeyRow {
        id: new_id("key")?,
        tenant_id: tenant.id,
        tenant_name: tenant.name,
        name,
        role: role.as_str().to_owned(),
        secret_hash: hash_secret(&token),
        created_at: now_ms(),
        revoked_at: None,
    };
    state.store.create_key(&row).await?;
    tracing::info!(key_id = %row.id, tenant = %row.tenant_name, "key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            info: convert::key(row),
            key: token,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "tenancy", responses((status = 200, body = Vec<ApiKey>), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    caller.require(Role::Admin)?;
    let keys = state.store.list_keys(caller.scope()).await?;
    Ok(Json(keys.into_iter().map(convert::key).collect()))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "tenancy",
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    // A key never revokes a stronger one: an admin cannot lock the operator out.
    let revocable: Vec<&str> = [Role::Member, Role::Admin, Role::Operator]
        .into_iter()
        .filter(|role| *role <= caller.role)
        .map(Role::as_str)
        .collect();
    // The gateway forgets keys before and after (a request cut off in between leaves nothing
    // stale).
    state.gateway_keys.clear();
    state
        .store
        .revoke_key(&id, caller.scope(), &revocable, now_ms())
        .await?;
    state.gateway_keys.clear();
    tracing::info!(key_id = %id, "key revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "tenancy", responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)))]
pub(crate) async fn whoami(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        tenant: caller.tenant_name,
        key_id: caller.key_id,
        role: caller.role,
    })
}
