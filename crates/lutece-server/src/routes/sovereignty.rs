//! A tenant's sovereignty over its data: its encryption keys (rotate, bring your own,
//! destroy), where its data and work may be, its deletion with a signed certificate, and the
//! audit log (export and public key).

use super::tenancy::visible_tenant;
use crate::auth::Caller;
use crate::convert::time;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::{AppState, now_ms};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use lutece_api::{
    AuditKey, DataPlacement, EncryptionKey, ErrorBody, NewEncryptionKey, Residency,
    ResidencyReport, Role, StorageLocation, TenantDeletion, WorkloadPlacement,
};
use lutece_core::residency::{Jurisdiction, ResidencyPolicy};
use lutece_store::{DeletionRow, EncryptionKeyRow, TenantRow};
use lutece_vault::Key;
use lutece_vault::certificate::{self, Deletion};
use serde::Deserialize;
use std::collections::HashMap;
use utoipa::IntoParams;

/// The tenant `name`, for a caller that must be its admin (or an operator).
async fn administered(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<TenantRow, ApiError> {
    let tenant = visible_tenant(state, caller, name).await?;
    caller.require(Role::Admin)?;
    Ok(tenant)
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}/encryption-keys", tag = "data",
    responses((status = 200, body = Vec<EncryptionKey>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<EncryptionKey>>, ApiError> {
    let tenant = administered(&state, &caller, &name).await?;
    let rows = state.store.encryption_keys(&tenant.id).await?;
    let active = match crate::keyring::sealing(&rows) {
        crate::keyring::Sealing::By(key) => Some(key.id.clone()),
        _ => None,
    };
    Ok(Json(
        rows.into_iter()
            .map(|k| encryption_key(k, active.as_deref()))
            .collect(),
    ))
}

#[utoipa::path(post, path = "/api/v1/tenants/{name}/encryption-keys", request_body = NewEncryptionKey, tag = "data",
    responses((status = 201, body = EncryptionKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn add_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<NewEncryptionKey>,
) -> Result<(StatusCode, Json<EncryptionKey>), ApiError> {
    let tenant = administered(&state, &caller, &name).await?;
    let material = match &request.key {
        Some(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() == lutece_vault::KEY_LEN)
                .ok_or_else(|| ApiError::invalid("key", "a key is 64 hex digits (256 bits)"))?;
            Some(Key::from_bytes(&bytes).map_err(|e| ApiError::invalid("key", e.to_string()))?)
        }
        None => None,
    };
    let row = state.keyring.add(&tenant.id, material).await?;
    state
        .audit
        .note(
            &caller.key_id,
            Some(&tenant.id),
            "key.create",
            Some(&row.id),
            &row.kind,
        )
        .await?;
    let id = row.id.clone();
    Ok((StatusCode::CREATED, Json(encryption_key(row, Some(&id)))))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{name}/encryption-keys/{id}", tag = "data",
    responses((status = 200, body = EncryptionKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn destroy_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<EncryptionKey>, ApiError> {
    let tenant = administered(&state, &caller, &name).await?;
    let not_found = || ApiError::NotFound(format!("encryption key {id:?}"));
    let key = state
        .store
        .encryption_key(&id)
        .await?
        .ok_or_else(not_found)?;
    if key.tenant_id != tenant.id {
        return Err(not_found());
    }
    state
        .audit
        .note(
            &caller.key_id,
            Some(&tenant.id),
            "key.destroy",
            Some(&id),
            &format!("ok: {} objects sealed by it", key.objects),
        )
        .await?;
    let row = state
        .store
        .destroy_encryption_key(&tenant.id, &id, now_ms())
        .await?;
    tracing::info!(tenant = %tenant.name, key = %id, "encryption key destroyed");
    Ok(Json(encryption_key(row, None)))
}

fn encryption_key(row: EncryptionKeyRow, active: Option<&str>) -> EncryptionKey {
    let state = match (row.destroyed_at, active) {
        (Some(_), _) => "destroyed",
        (None, Some(a)) if a == row.id => "active",
        (None, _) => "retired",
    };
    EncryptionKey {
        id: row.id,
        kind: row.kind,
        state: state.to_owned(),
        created_at: time(row.created_at),
        destroyed_at: row.destroyed_at.map(time),
        fingerprint: row.fingerprint,
        objects: row.objects,
    }
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}/residency", tag = "data",
    responses((status = 200, body = Residency), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_residency(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Residency>, ApiError> {
    let tenant = visible_tenant(&state, &caller, &name).await?;
    Ok(Json(Residency {
        allowed: state.store.residency(&tenant.id).await?.allowed().to_vec(),
    }))
}

#[utoipa::path(put, path = "/api/v1/tenants/{name}/residency", request_body = Residency, tag = "data",
    responses((status = 200, body = Residency), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn set_residency(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(request): JsonBody<Residency>,
) -> Result<Json<Residency>, ApiError> {
    let tenant = administered(&state, &caller, &name).await?;
    let policy = ResidencyPolicy::parse(&request.allowed)
        .map_err(|e| ApiError::invalid("allowed", e.to_string()))?;
    state.store.set_residency(&tenant.id, &policy).await?;
    let allowed = policy.allowed().to_vec();
    // Scheduling and the gateway's routing follow the new policy at once.
    state.gateway_keys.clear();
    state.reconcile.notify_one();
    Ok(Json(Residency { allowed }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}/residency/report", tag = "data",
    responses((status = 200, body = ResidencyReport), (status = 404, body = ErrorBody)))]
pub(crate) async fn residency_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ResidencyReport>, ApiError> {
    let tenant = visible_tenant(&state, &caller, &name).await?;
    let policy = state.store.residency(&tenant.id).await?;
    let allows = |code: &str| Jurisdiction::parse(code).is_ok_and(|j| policy.allows(&j));
    let data = state
        .store
        .data_placements(&tenant.id)
        .await?
        .into_iter()
        .map(|p| DataPlacement {
            allowed: allows(&p.jurisdiction),
            class: p.purpose,
            location: p.location,
            jurisdiction: p.jurisdiction,
            objects: p.objects,
            bytes: p.bytes,
        })
        .collect();
    let nodes: HashMap<String, (String, Option<String>)> = state
        .store
        .list_nodes()
        .await?
        .into_iter()
        .map(|n| (n.id, (n.name, n.jurisdiction)))
        .collect();
    let mut workloads = Vec::new();
    for job in state.store.list_jobs(Some(&tenant.id), None, 1000).await? {
        let tasks = state.store.tasks_of(&job.spec.id).await?;
        let mut names = Vec::new();
        let mut places = Vec::new();
        for task in &tasks {
            let (name, place) = nodes
                .get(&task.node_id)
                .cloned()
                .unwrap_or_else(|| (task.node_id.clone(), None));
            names.push(name);
            places.push(place.unwrap_or_else(|| "unknown".to_owned()));
        }
        workloads.push(WorkloadPlacement {
            kind: "job".to_owned(),
            allowed: places.iter().all(|p| allows(p) || policy.is_anywhere()),
            id: job.spec.id,
            name: job.spec.name,
            state: job.state.as_str().to_owned(),
            nodes: names,
            jurisdictions: places,
        });
    }
    Ok(Json(ResidencyReport {
        tenant: tenant.name,
        allowed: policy.allowed().to_vec(),
        data,
        workloads,
    }))
}

#[utoipa::path(get, path = "/api/v1/storage/locations", tag = "data",
    responses((status = 200, body = Vec<StorageLocation>)))]
pub(crate) async fn locations(
    State(state): State<AppState>,
    _caller: Caller,
) -> Json<Vec<StorageLocation>> {
    let locations = state.blobs.locations();
    let default = &locations.default_location().name;
    Json(
        locations
            .list()
            .iter()
            .map(|l| StorageLocation {
                name: l.name.clone(),
                jurisdiction: l.jurisdiction.to_string(),
                default: l.name == *default,
            })
            .collect(),
    )
}

#[utoipa::path(delete, path = "/api/v1/tenants/{name}", tag = "data",
    responses((status = 200, body = TenantDeletion), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TenantDeletion>, ApiError> {
    caller.require(Role::Operator)?;
    let tenant = visible_tenant(&state, &caller, &name).await?;
    if tenant.id == caller.tenant_id {
        return Err(ApiError::Conflict(format!(
            "tenant {name} is the caller's own: an operator cannot delete the tenant it acts from"
        )));
    }
    let keys: Vec<String> = state
        .store
        .encryption_keys(&tenant.id)
        .await?
        .into_iter()
        .map(|k| k.id)
        .collect();
    let objects = state.store.files(Some(&tenant.id), None).await?.len() as u64;
    let recorded = state
        .audit
        .note(
            &caller.key_id,
            Some(&tenant.id),
            "tenant.delete",
            Some(&tenant.name),
            &format!("{} keys destroyed, {objects} objects", keys.len()),
        )
        .await?;
    let at = now_ms();
    let deletion = Deletion {
        tenant: tenant.name.clone(),
        keys: keys.clone(),
        at_ms: at,
        objects,
        audit_seq: recorded.seq,
        audit_hash: recorded.hash,
    };
    let certificate = certificate::issue(&deletion, state.audit.signing_key())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let row = DeletionRow {
        tenant_id: tenant.id.clone(),
        deleted_at: at,
        keys_destroyed: keys,
        objects,
        certificate,
    };
    let files = state.store.delete_tenant(&row).await?;
    state.gateway_keys.clear();
    // Unreadable already; removing the objects frees their space.
    for file in files {
        if let Err(error) = state
            .blobs
            .delete(&file.location, &super::files::object_path(&file))
            .await
        {
            tracing::warn!(%error, file = %file.id, "could not delete the object of a deleted tenant");
        }
    }
    tracing::info!(tenant = %tenant.name, "tenant deleted: its keys are destroyed");
    Ok(Json(deletion_of(&tenant.name, row)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{name}/deletion-certificate", tag = "data",
    responses((status = 200, body = TenantDeletion), (status = 404, body = ErrorBody)))]
pub(crate) async fn deletion_certificate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TenantDeletion>, ApiError> {
    caller.require(Role::Operator)?;
    let not_deleted = || ApiError::NotFound(format!("a deletion of tenant {name:?}"));
    let (tenant, _) = state
        .store
        .any_tenant_by_name(&name)
        .await?
        .ok_or_else(not_deleted)?;
    let row = state
        .store
        .tenant_deletion(&tenant.id)
        .await?
        .ok_or_else(not_deleted)?;
    Ok(Json(deletion_of(&tenant.name, row)))
}

fn deletion_of(name: &str, row: DeletionRow) -> TenantDeletion {
    TenantDeletion {
        tenant: name.to_owned(),
        deleted_at: time(row.deleted_at),
        keys_destroyed: row.keys_destroyed,
        objects: row.objects,
        certificate: row.certificate,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    /// An operator's export of one tenant's trail (by name) instead of the whole log.
    tenant: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/audit/export", params(ExportQuery), tag = "audit",
    responses((status = 200, description = "the export: one line per entry and checkpoint, sealed", content_type = "text/plain"),
        (status = 403, body = ErrorBody)))]
pub(crate) async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ExportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Admin)?;
    let tenant = match (&query.tenant, caller.role) {
        (None, Role::Operator) => None,
        (Some(name), Role::Operator) => Some(
            state
                .store
                .any_tenant_by_name(name)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("tenant {name:?}")))?
                .0
                .id,
        ),
        (Some(name), _) if *name != caller.tenant_name => {
            return Err(ApiError::NotFound(format!("tenant {name:?}")));
        }
        _ => Some(caller.tenant_id.clone()),
    };
    let text = state.audit.export(tenant.as_deref()).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

#[utoipa::path(get, path = "/api/v1/audit/public-key", tag = "audit",
    responses((status = 200, body = AuditKey)))]
pub(crate) async fn public_key(State(state): State<AppState>, _caller: Caller) -> Json<AuditKey> {
    Json(AuditKey {
        algorithm: "ed25519".to_owned(),
        public_key: state.audit.public_key_hex(),
    })
}
