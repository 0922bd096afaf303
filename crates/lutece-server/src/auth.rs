//! API keys and node credentials: how they are made, stored (as hashes) and checked.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use lutece_api::{KEY_PREFIX, Role};
use sha2::{Digest, Sha256};

/// Who is calling, established from the bearer key.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) tenant_id: String,
    pub(crate) tenant_name: String,
    pub(crate) key_id: String,
    pub(crate) role: Role,
}

impl Caller {
    /// The tenant whose objects this caller may see; None for the operator, who sees all.
    pub(crate) fn scope(&self) -> Option<&str> {
        (self.role != Role::Operator).then_some(self.tenant_id.as_str())
    }

    pub(crate) fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; the key has {}",
                role.as_str(),
                self.role.as_str()
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The audit layer already looked the key up.
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        Caller::authenticate(parts, state).await
    }
}

impl Caller {
    /// The caller the request's bearer key names, if the key is valid.
    pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let key = state
            .store
            .key_by_hash(&hash_secret(token))
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if key.revoked_at.is_some() {
            return Err(ApiError::Unauthenticated);
        }
        let role = Role::parse(&key.role)
            .ok_or_else(|| ApiError::Internal(format!("stored role {:?}", key.role)))?;
        Ok(Caller {
            tenant_id: key.tenant_id,
            tenant_name: key.tenant_name,
            key_id: key.id,
            role,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then_some(token)
}

/// SHA-256 of a secret, hex. Secrets are 160 random bits, so a fast hash is enough.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `n` random bytes, hex-encoded, from the operating system's generator.
pub(crate) fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// A new id such as `job_3f9a0c…`: a prefix and 64 random bits.
pub(crate) fn new_id(prefix: &str) -> Result<String, ApiError> {
    Ok(format!("{prefix}_{}", random_hex(8)?))
}

/// A new API key token: `lut_` and 160 random bits.
pub(crate) fn new_key_token() -> Result<String, ApiError> {
    Ok(format!("{KEY_PREFIX}{}", random_hex(20)?))
}

/// Compares two strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
