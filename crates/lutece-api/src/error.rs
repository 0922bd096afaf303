//! The one error body every `/api/v1` endpoint answers with.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error": {"code": "...", "message": "...", "field": "..."}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `not_found` or `invalid_request`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Where in the request, when one field is to blame (e.g. `resources.memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
