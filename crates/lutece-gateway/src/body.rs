//! Reading an inference request body, with OpenAI's errors when it is not what it should be.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::OpenAiError;

/// The largest request body accepted (a long conversation fits many times over).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A JSON body; `{"error": …}` with the field's path when it does not parse.
pub struct OpenAiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OpenAiJson<T> {
    type Rejection = OpenAiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, OpenAiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| OpenAiError::invalid(format!("could not read the request body: {e}")))?;
        parse(&bytes).map(OpenAiJson)
    }
}

/// Parses a request body, naming the field at fault.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, OpenAiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(OpenAiError::invalid(
            "We could not parse the JSON body of your request. The body must be a JSON object.",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return OpenAiError::invalid(format!(
                "We could not parse the JSON body of your request: {inner}"
            ));
        }
        if path == "." {
            OpenAiError::invalid(inner.to_string())
        } else {
            OpenAiError::invalid_param(&path, format!("Invalid value for '{path}': {inner}"))
        }
    })
}

/// Refuses fields that neither OpenAI's nor Mistral's API has, as OpenAI does.
pub fn refuse_unknown(unknown: &BTreeMap<String, serde_json::Value>) -> Result<(), OpenAiError> {
    match unknown.keys().next() {
        Some(name) => Err(OpenAiError::invalid_param(
            name,
            format!("Unrecognized request argument supplied: {name}"),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lutece_api::openai::ChatCompletionRequest;

    #[test]
    fn errors_name_the_field() {
        let e = parse::<ChatCompletionRequest>(br#"{"model":"m","messages":[{"role":1}]}"#)
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(e.body.error.param.as_deref(), Some("messages[0].role"));
        let e = parse::<ChatCompletionRequest>(b"{not json").unwrap_err();
        assert!(
            e.body.error.message.contains("could not parse the JSON"),
            "{e:?}"
        );
        let e = parse::<ChatCompletionRequest>(b"[1]").unwrap_err();
        assert!(e.body.error.message.contains("must be a JSON object"));
    }

    #[test]
    fn unknown_fields_are_collected_and_refused() {
        let r: ChatCompletionRequest =
            parse(br#"{"model":"m","messages":[],"temperature":0.5,"bogus":true}"#).unwrap();
        assert_eq!(r.sampling.temperature, Some(0.5));
        let e = refuse_unknown(&r.unknown).unwrap_err();
        assert_eq!(
            e.body.error.message,
            "Unrecognized request argument supplied: bogus"
        );
    }
}
