//! `ApiError`: every way a request can fail, and the one place that picks its HTTP status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use lutece_api::{ErrorBody, ErrorDetail};
use lutece_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is out of range; `field` says where.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("missing or invalid API key")]
    Unauthenticated,
    /// The caller is known but its role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or another tenant's: the two are indistinguishable on purpose.
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// It existed, and is gone for good (a file whose key was destroyed).
    #[error("{0}")]
    Gone(String),
    /// The action cannot be recorded in the audit log, so it was not done.
    #[error("the audit log cannot record this action, so it was not done; try again later")]
    AuditUnavailable,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict { what } => ApiError::Conflict(format!("{what} already exists")),
            StoreError::NotFound { what } => ApiError::NotFound(what),
            StoreError::Denied { reason } => ApiError::Forbidden(reason),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            // Logged where it is handled: here, the edge of the request.
            tracing::error!(error = %detail, "request failed");
        }
        let field = match &self {
            ApiError::Invalid { field, .. } => field.clone(),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
                field,
            },
        };
        (status, Json(body)).into_response()
    }
}
