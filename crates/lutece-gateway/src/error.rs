//! Errors in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`) with the status
//! codes its SDK maps to exception classes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lutece_api::openai::ErrorResponse;

/// An error answered to an inference client.
#[derive(Debug, Clone)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub body: ErrorResponse,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl OpenAiError {
    pub fn new(status: StatusCode, kind: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorResponse::new(kind, message),
            retry_after: None,
        }
    }

    /// 400, `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 about one parameter.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::invalid(message);
        e.body = e.body.with_param(param);
        e
    }

    /// 401 with the message OpenAI gives.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message);
        e.body = e.body.with_code("invalid_api_key");
        e
    }

    /// 404 for a model this caller cannot use.
    pub fn model_not_found(model: &str) -> Self {
        let message =
            format!("The model `{model}` does not exist or you do not have access to it.");
        let mut e = Self::new(StatusCode::NOT_FOUND, "invalid_request_error", message);
        e.body = e.body.with_param("model").with_code("model_not_found");
        e
    }

    /// 429 with `retry-after`.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            message,
        );
        e.body = e.body.with_code("rate_limit_exceeded");
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 429 `insufficient_quota` with `retry-after`: a token budget is used up.
    pub fn quota_exceeded(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "insufficient_quota", message);
        e.body = e.body.with_code("insufficient_quota");
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 503: no healthy replica, or the engine stopped.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.body = self.body.with_code(code);
        self
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let quota = self.body.error.code.as_deref() == Some("insufficient_quota");
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // A used-up budget does not come back within a retry's backoff: OpenAI's SDKs honour
        // this header and do not retry.
        if quota {
            response
                .headers_mut()
                .insert("x-should-retry", HeaderValue::from_static("false"));
        }
        response
    }
}
