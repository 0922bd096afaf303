//! `/api/v1/tenants/{name}/limits` (set by an operator) and `/api/v1/keys/{id}/limits` (set by
//! the key's tenant admin): inference rate limits and monthly token budgets; and
//! `/api/v1/tenants/{name}/gpu-quota` (set by an operator): the tenant's GPU quota for jobs.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::tenancy::visible_tenant;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use lutece_api::{ErrorBody, GpuQuota, InferenceLimits, Role};
use lutece_store::{GpuQuotaRow, KeyRow, LimitsRow};

#[utoipa::path(put, path = "/api/v1/tenants/{name}/limits", request_body = InferenceLimits, tag = "tenancy",
    responses((status = 200, body = InferenceLimits), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_tenant_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(limits): JsonBody<InferenceLimits>,
) -> Result<Json<InferenceLimits>, ApiError> {
    caller.require(Role::Operator)?;
    let row = checked(&limits)?;
    let tenant = visible_tenant(&state, &caller, &name).await?;
    // Before and after: a request cut off between the two still leaves nothing stale.
    state.gateway_keys.clear();
    state.store.set_tenant_limits(&tenant.id, &row).await?;
    state.gateway_keys.clear();
    tracing::info!(tenant = %tenant.name, ?limits, "tenant limits set");
    Ok(Json(limits))
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}/limits", tag = "tenancy",
    responses((status = 200, body = InferenceLimits), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_tenant_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<InferenceLimits>, ApiError> {
    let tenant = visible_tenant(&state, &caller, &name).await?;
    Ok(Json(wire(state.store.tenant_limits(&tenant.id).await?)))
}

#[utoipa::path(put, path = "/api/v1/tenants/{name}/gpu-quota", request_body = GpuQuota, tag = "tenancy",
    responses((status = 200, body = GpuQuota), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_gpu_quota(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(quota): JsonBody<GpuQuota>,
) -> Result<Json<GpuQuota>, ApiError> {
    caller.require(Role::Operator)?;
    if !(1..=1000).contains(&quota.weight) {
        return Err(ApiError::invalid("weight", "must be from 1 to 1000"));
    }
    if quota.guaranteed_gpus.is_none() && quota.borrow_limit_gpus.is_some() {
        return Err(ApiError::invalid(
            "borrow_limit_gpus",
            "needs guaranteed_gpus: a tenant without a quota takes what is free anyway",
        ));
    }
    if let Some(cohort) = &quota.cohort {
        lutece_core::validate_name(cohort)
            .map_err(|e| ApiError::invalid("cohort", e.to_string()))?;
    }
    let tenant = visible_tenant(&state, &caller, &name).await?;
    let row = GpuQuotaRow {
        guaranteed_gpus: quota.guaranteed_gpus,
        borrow_limit_gpus: quota.borrow_limit_gpus,
        cohort: quota.cohort.clone(),
        weight: quota.weight,
    };
    state.store.set_gpu_quota(&tenant.id, &row).await?;
    tracing::info!(tenant = %tenant.name, ?quota, "GPU quota set");
    // Jobs it kept waiting may start now.
    state.reconcile.notify_one();
    Ok(Json(quota))
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}/gpu-quota", tag = "tenancy",
    responses((status = 200, body = GpuQuota), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_gpu_quota(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<GpuQuota>, ApiError> {
    let tenant = visible_tenant(&state, &caller, &name).await?;
    let row = state.store.gpu_quota(&tenant.id).await?;
    Ok(Json(GpuQuota {
        guaranteed_gpus: row.guaranteed_gpus,
        borrow_limit_gpus: row.borrow_limit_gpus,
        cohort: row.cohort,
        weight: row.weight,
    }))
}

#[utoipa::path(put, path = "/api/v1/keys/{id}/limits", request_body = InferenceLimits, tag = "tenancy",
    responses((status = 200, body = InferenceLimits), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_key_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(limits): JsonBody<InferenceLimits>,
) -> Result<Json<InferenceLimits>, ApiError> {
    caller.require(Role::Admin)?;
    let row = checked(&limits)?;
    let key = visible_key(&state, &caller, &id).await?;
    // As with revoking: a key never limits a stronger one.
    let role = Role::parse(&key.role).unwrap_or(Role::Operator);
    if role > caller.role {
        return Err(ApiError::Forbidden(format!(
            "a {} key cannot limit a {} key",
            caller.role.as_str(),
            role.as_str()
        )));
    }
    // Before and after: a request cut off between the two still leaves nothing stale.
    state.gateway_keys.clear();
    state.store.set_key_limits(&key.id, &row).await?;
    state.gateway_keys.clear();
    tracing::info!(key_id = %key.id, ?limits, "key limits set");
    Ok(Json(limits))
}

#[utoipa::path(get, path = "/api/v1/keys/{id}/limits", tag = "tenancy",
    responses((status = 200, body = InferenceLimits), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_key_limits(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InferenceLimits>, ApiError> {
    // Any key reads its own limits; an admin reads those of its tenant's keys.
    if id != caller.key_id {
        caller.require(Role::Admin)?;
    }
    let key = visible_key(&state, &caller, &id).await?;
    Ok(Json(wire(state.store.key_limits(&key.id).await?)))
}

/// The key `id` if the caller may see it; otherwise it does not exist.
async fn visible_key(state: &AppState, caller: &Caller, id: &str) -> Result<KeyRow, ApiError> {
    let key = state.store.key_by_id(id).await?;
    key.filter(|key| caller.scope().is_none_or(|own| own == key.tenant_id))
        .ok_or_else(|| ApiError::NotFound(format!("key {id:?}")))
}

/// Limits as stored, once each is known to be at least 1 (a 0 would refuse everything; an
/// absent limit is no limit).
fn checked(limits: &InferenceLimits) -> Result<LimitsRow, ApiError> {
    let fields = [
        (
            "requests_per_minute",
            limits.requests_per_minute.map(u64::from),
        ),
        ("tokens_per_minute", limits.tokens_per_minute),
        ("monthly_token_budget", limits.monthly_token_budget),
    ];
    for (name, value) in fields {
        if value == Some(0) {
            return Err(ApiError::invalid(
                name,
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        if value.is_some_and(|v| v > i64::MAX as u64) {
            return Err(ApiError::invalid(
                name,
                format!("must be at most {} (leave it out for no limit)", i64::MAX),
            ));
        }
    }
    Ok(LimitsRow {
        requests_per_minute: limits.requests_per_minute,
        tokens_per_minute: limits.tokens_per_minute,
        monthly_token_budget: limits.monthly_token_budget,
    })
}

fn wire(row: LimitsRow) -> InferenceLimits {
    InferenceLimits {
        requests_per_minute: row.requests_per_minute,
        tokens_per_minute: row.tokens_per_minute,
        monthly_token_budget: row.monthly_token_budget,
    }
}
