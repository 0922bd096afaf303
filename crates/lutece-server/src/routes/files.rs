//! `/v1/files`, as OpenAI's files API: upload (multipart, streamed and encrypted on the way in),
//! list, inspect, download (decrypted on the way out) and delete. A file is listed only once
//! its encrypted object is wholly stored; an upload cut short leaves nothing.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{AppState, now_ms};
use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use lutece_api::{ErrorBody, FileDeleted, FileList, FileObject};
use lutece_blob::{BlobError, Location};
use lutece_core::residency::ResidencyPolicy;
use lutece_store::FileRow;
use serde::Deserialize;
use utoipa::IntoParams;

#[utoipa::path(post, path = "/v1/files", tag = "files",
    request_body(content_type = "multipart/form-data", description = "fields `purpose`, `file`, and optionally `location` (before `file`)"),
    responses((status = 200, body = FileObject), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    multipart: Multipart,
) -> Result<Json<FileObject>, ApiError> {
    let policy = state.store.residency(&caller.tenant_id).await?;
    // The file whose object is stored, until its row is: if the upload fails after all, the
    // object goes too.
    let mut stored = None;
    let result = record_upload(&state, &caller, &policy, multipart, &mut stored).await;
    if result.is_err() {
        forget(&state, stored);
    }
    result.map(Json)
}

/// Removes the object of a file that will not be recorded.
fn forget(state: &AppState, file: Option<FileRow>) {
    if let Some(file) = file {
        let blobs = state.blobs.clone();
        tokio::spawn(async move {
            let _ = blobs.delete(&file.location, &object_path(&file)).await;
        });
    }
}

/// Reads the form, storing its file as it arrives, then records the file.
async fn record_upload(
    state: &AppState,
    caller: &Caller,
    policy: &ResidencyPolicy,
    mut multipart: Multipart,
    stored: &mut Option<FileRow>,
) -> Result<FileObject, ApiError> {
    let (mut purpose, mut location) = (None, None);
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        match field.name().unwrap_or_default() {
            "purpose" => purpose = Some(valid_purpose(&small_text(field, "purpose").await?)?),
            "location" if stored.is_some() => {
                return Err(ApiError::invalid(
                    "location",
                    "the location field must come before the file field",
                ));
            }
            "location" => location = Some(small_text(field, "location").await?),
            "file" if stored.is_some() => {
                return Err(ApiError::invalid("file", "one file per upload"));
            }
            "file" => {
                let place = choose_location(state, caller, policy, location.as_deref()).await?;
                *stored = Some(store_file(state, caller, policy, &place, field).await?);
            }
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown field; an upload has the fields purpose, file and location",
                ));
            }
        }
    }
    let purpose = purpose.ok_or_else(|| {
        ApiError::invalid(
            "purpose",
            "the upload has no purpose field (for example fine-tune or batch)",
        )
    })?;
    let file = stored
        .as_mut()
        .ok_or_else(|| ApiError::invalid("file", "the upload has no file field"))?;
    file.purpose = purpose;
    state.store.insert_file(file).await?;
    Ok(file_object(file.clone()))
}

async fn store_file(
    state: &AppState,
    caller: &Caller,
    policy: &ResidencyPolicy,
    location: &Location,
    field: Field<'_>,
) -> Result<FileRow, ApiError> {
    let filename = filename(field.file_name())?;
    let id = format!("file-{}", crate::auth::random_hex(12)?);
    let (key_id, key) = state.keyring.active(&caller.tenant_id).await?;
    state
        .audit
        .note(
            &caller.key_id,
            Some(&caller.tenant_id),
            "key.use seal",
            Some(&format!("{id} under {key_id}")),
            "ok",
        )
        .await?;
    let mut file = FileRow {
        id,
        tenant_id: caller.tenant_id.clone(),
        filename,
        purpose: String::new(),
        bytes: 0,
        stored_bytes: 0,
        sha256: String::new(),
        location: location.name.clone(),
        jurisdiction: location.jurisdiction.to_string(),
        key_id: key_id.clone(),
        created_at: now_ms(),
    };
    let stored = state
        .blobs
        .put(
            &location.name,
            &object_path(&file),
            policy,
            &key_id,
            &key,
            field,
        )
        .await
        .map_err(blob_error)?;
    file.bytes = stored.plaintext_bytes;
    file.stored_bytes = stored.stored_bytes;
    file.sha256 = stored.sha256;
    Ok(file)
}

/// The location asked for, or the operator's default, or the first the policy allows; a
/// location the tenant's residency policy does not allow is refused, and the refusal recorded.
async fn choose_location(
    state: &AppState,
    caller: &Caller,
    policy: &ResidencyPolicy,
    requested: Option<&str>,
) -> Result<Location, ApiError> {
    let locations = state.blobs.locations().list();
    let default = &state.blobs.locations().default_location().name;
    let chosen = match requested {
        Some(name) => locations.iter().find(|l| l.name == name).ok_or_else(|| {
            let names: Vec<&str> = locations.iter().map(|l| l.name.as_str()).collect();
            ApiError::invalid(
                "location",
                format!(
                    "there is no storage location {name:?}; there are: {}",
                    names.join(", ")
                ),
            )
        })?,
        None => locations
            .iter()
            .find(|l| l.name == *default && policy.allows(&l.jurisdiction))
            .or_else(|| locations.iter().find(|l| policy.allows(&l.jurisdiction)))
            .unwrap_or(state.blobs.locations().default_location()),
    };
    if !policy.allows(&chosen.jurisdiction) {
        let reason = format!(
            "location {} is in {}; this tenant's data may be stored only in {}",
            chosen.name,
            chosen.jurisdiction,
            policy.describe()
        );
        state
            .audit
            .note(
                &caller.key_id,
                Some(&caller.tenant_id),
                "residency.refused write",
                Some(&chosen.name),
                &reason,
            )
            .await?;
        return Err(ApiError::Forbidden(reason));
    }
    Ok(chosen.clone())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Only files of this purpose.
    purpose: Option<String>,
}

#[utoipa::path(get, path = "/v1/files", params(ListQuery), tag = "files",
    responses((status = 200, body = FileList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<FileList>, ApiError> {
    let files = state
        .store
        .files(caller.scope(), query.purpose.as_deref())
        .await?;
    let owners = files.iter().map(|f| f.tenant_id.as_str());
    state.audit.operator_lists(&caller, owners, "files").await?;
    Ok(Json(FileList {
        object: "list".to_owned(),
        data: files.into_iter().map(file_object).collect(),
        has_more: false,
    }))
}

#[utoipa::path(get, path = "/v1/files/{id}", tag = "files",
    responses((status = 200, body = FileObject), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FileObject>, ApiError> {
    let file = visible_file(&state, &caller, &id, "read").await?;
    Ok(Json(file_object(file)))
}

#[utoipa::path(get, path = "/v1/files/{id}/content", tag = "files",
    responses((status = 200, description = "the file's content", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody), (status = 410, body = ErrorBody)))]
pub(crate) async fn content(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let file = visible_file(&state, &caller, &id, "read").await?;
    state
        .audit
        .note(
            &caller.key_id,
            Some(&file.tenant_id),
            "key.use open",
            Some(&format!("{} under {}", file.id, file.key_id)),
            "ok",
        )
        .await?;
    let key = state.keyring.get(&file.tenant_id, &file.key_id).await?;
    let expected = file.key_id.clone();
    let plaintext = state
        .blobs
        .open(&file.location, &object_path(&file), move |named: &str| {
            if named == expected {
                Ok(key)
            } else {
                Err(format!("the object names the key {named}, not {expected}"))
            }
        })
        .await
        .map_err(blob_error)?;
    let body = Body::from_stream(plaintext.map(|chunk| chunk.map_err(std::io::Error::other)));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.filename.replace(['"', '\\'], "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, file.bytes.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

#[utoipa::path(delete, path = "/v1/files/{id}", tag = "files",
    responses((status = 200, body = FileDeleted), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<FileDeleted>, ApiError> {
    let file = visible_file(&state, &caller, &id, "delete").await?;
    if !state.store.delete_file(&file.id, caller.scope()).await? {
        return Err(ApiError::NotFound(format!("file {id:?}")));
    }
    if let Err(error) = state
        .blobs
        .delete(&file.location, &object_path(&file))
        .await
    {
        // Forgotten already: the object is swept at the next start.
        tracing::warn!(%error, file = %file.id, "could not delete a file's object");
    }
    Ok(Json(FileDeleted {
        id: file.id,
        object: "file".to_owned(),
        deleted: true,
    }))
}

/// A file the caller may see, for `action` (`read`, `delete`); an operator's action on another
/// tenant's is recorded in that tenant's trail first.
async fn visible_file(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
) -> Result<FileRow, ApiError> {
    let file = state
        .store
        .file(id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("file {id:?}")))?;
    state
        .audit
        .operator_acts(caller, &file.tenant_id, action, &file.id)
        .await?;
    Ok(file)
}

/// Where a file's object is, in its location.
pub(crate) fn object_path(file: &FileRow) -> String {
    format!("{}/files/{}", file.tenant_id, file.id)
}

pub(crate) fn file_object(file: FileRow) -> FileObject {
    FileObject {
        id: file.id,
        object: "file".to_owned(),
        bytes: file.bytes,
        created_at: file.created_at / 1000,
        filename: file.filename,
        purpose: file.purpose,
        status: "processed".to_owned(),
        location: file.location,
        jurisdiction: file.jurisdiction,
        sha256: file.sha256,
    }
}

fn blob_error(error: BlobError) -> ApiError {
    match error {
        BlobError::Residency { .. } => ApiError::Forbidden(error.to_string()),
        BlobError::Input(message) => {
            ApiError::invalid("file", format!("the upload broke off: {message}"))
        }
        BlobError::Key(message) => ApiError::Gone(message),
        other => ApiError::Internal(other.to_string()),
    }
}

fn bad_multipart(error: MultipartError) -> ApiError {
    ApiError::Invalid {
        field: None,
        message: format!(
            "the body is not a readable multipart form: {}",
            error.body_text()
        ),
    }
}

/// A short text field, read with a bound.
async fn small_text(mut field: Field<'_>, name: &str) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > 256 {
            return Err(ApiError::invalid(name, "at most 256 bytes"));
        }
    }
    String::from_utf8(bytes).map_err(|_| ApiError::invalid(name, "not UTF-8 text"))
}

/// A purpose (data class): 1–64 of lowercase letters, digits, '-' and '_', such as `fine-tune`.
fn valid_purpose(text: &str) -> Result<String, ApiError> {
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ApiError::invalid(
            "purpose",
            format!(
                "{text:?} is not a purpose: use 1 to 64 lowercase letters, digits, '-' or '_' (fine-tune, batch, assistants…)"
            ),
        ))
    }
}

fn filename(name: Option<&str>) -> Result<String, ApiError> {
    let name = name.unwrap_or("upload");
    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "file",
            "the file name must be 1 to 255 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}
