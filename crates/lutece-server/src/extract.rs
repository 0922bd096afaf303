//! A JSON body extractor whose errors say where: `resources.memory: invalid type...`.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::Invalid {
                field: None,
                message: format!("could not read the request body: {rejection}"),
            })?;
        if bytes.is_empty() {
            return Err(ApiError::Invalid {
                field: None,
                message: "the request body is empty; expected a JSON object".into(),
            });
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            let message = if first.is_some_and(|b| b"[\"-0123456789tfn".contains(b)) {
                "invalid type: the body must be a JSON object, not another JSON value"
            } else {
                "the body is not valid JSON; expected a JSON object"
            };
            return Err(ApiError::Invalid {
                field: None,
                message: message.into(),
            });
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Ok(JsonBody(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                let message = if inner.is_syntax() || inner.is_eof() {
                    format!("the body is not valid JSON: {inner}")
                } else {
                    inner.to_string()
                };
                let field = (path != ".").then_some(path);
                Err(ApiError::Invalid { field, message })
            }
        }
    }
}
