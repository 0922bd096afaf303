//! `POST /v1/embeddings`: OpenAI's request and answer over the [`Embedder`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use base64::Engine as _;
use lutece_api::openai::{
    Embedding, EmbeddingInput, EmbeddingList, EmbeddingRequest, EmbeddingUsage, EmbeddingVector,
};
use lutece_engine::embed::Encoding;
use lutece_engine::{EmbedError, Embedder};
use lutece_gateway::body::refuse_unknown;
use lutece_gateway::{OpenAiError, OpenAiJson};

use crate::Worker;
use crate::handlers::check_model;

/// OpenAI's limit on inputs in one request.
pub(crate) const MAX_INPUTS: usize = 2048;
/// OpenAI's limit on tokens summed over one request's inputs.
pub(crate) const MAX_REQUEST_TOKENS: usize = 300_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Float,
    Base64,
}

pub(crate) async fn embeddings(
    State(worker): State<Arc<Worker>>,
    OpenAiJson(request): OpenAiJson<EmbeddingRequest>,
) -> Result<Json<EmbeddingList>, OpenAiError> {
    refuse_unknown(&request.unknown)?;
    check_model(&worker, &request.model)?;
    let Some(embedder) = worker.embedder() else {
        return Err(OpenAiError::invalid_param(
            "model",
            format!(
                "model {} is a generative model: it does not compute embeddings",
                worker.model_id
            ),
        ));
    };
    let format = match request.encoding_format.as_deref() {
        None | Some("float") => Format::Float,
        Some("base64") => Format::Base64,
        Some(other) => {
            return Err(OpenAiError::invalid_param(
                "encoding_format",
                format!("'{other}' is not a valid encoding_format: expected 'float' or 'base64'"),
            ));
        }
    };
    if let Some(dimensions) = request.dimensions {
        if dimensions as usize != embedder.dimensions() {
            return Err(OpenAiError::invalid_param(
                "dimensions",
                format!(
                    "model {} gives vectors of {} dimensions and cannot shorten them; {dimensions} is not supported",
                    worker.model_id,
                    embedder.dimensions()
                ),
            ));
        }
    }
    let texts = texts(request.input)?;

    // One batch at a time on the cores. A client that leaves while waiting gives up its
    // turn; once its batch runs, the permit is held by the computation until it ends.
    let turn = Arc::clone(&worker.embedding_turn)
        .acquire_owned()
        .await
        .map_err(|_| OpenAiError::unavailable("the worker is stopping"))?;
    let job = Arc::clone(&worker);
    let (vectors, prompt_tokens) = tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let embedder = job
            .embedder()
            .ok_or_else(|| OpenAiError::internal("no embedder"))?;
        let encodings = encode(embedder, &texts)?;
        let tokens = encodings.iter().map(Encoding::len).sum::<usize>();
        let vectors = embedder.embed_encodings(&encodings).map_err(|e| match e {
            // An input the model cannot take (no tokens at all, say): the client's.
            EmbedError::Input(reason) => OpenAiError::invalid_param("input", reason),
            other => OpenAiError::internal(other.to_string()),
        })?;
        Ok::<_, OpenAiError>((vectors, tokens))
    })
    .await
    .map_err(|e| OpenAiError::internal(format!("the embedding task failed: {e}")))??;

    let data = vectors
        .into_iter()
        .zip(0..)
        .map(|(v, index)| Embedding {
            object: "embedding".into(),
            index,
            embedding: match format {
                Format::Float => EmbeddingVector::Float(v),
                Format::Base64 => EmbeddingVector::Base64(base64_f32(&v)),
            },
        })
        .collect();
    Ok(Json(EmbeddingList {
        id: crate::generate::new_id("embd"),
        object: "list".into(),
        data,
        model: request.model,
        usage: EmbeddingUsage::new(prompt_tokens as u64),
    }))
}

/// The texts of `input`: one to [`MAX_INPUTS`], none empty. Token ids are refused: clients
/// send them in OpenAI's tokenizer's vocabulary, which is not this model's.
fn texts(input: EmbeddingInput) -> Result<Vec<String>, OpenAiError> {
    let texts = match input {
        EmbeddingInput::Text(text) => vec![text],
        EmbeddingInput::Texts(texts) => texts,
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_) => {
            return Err(OpenAiError::invalid_param(
                "input",
                "this model takes text: token ids are not supported as 'input'",
            ));
        }
    };
    if texts.is_empty() {
        return Err(OpenAiError::invalid_param(
            "input",
            "'input' must not be empty: give a string or a list of 1 to 2048 strings",
        ));
    }
    if texts.len() > MAX_INPUTS {
        return Err(OpenAiError::invalid_param(
            "input",
            format!(
                "'input' has {} items; at most {MAX_INPUTS} are allowed per request",
                texts.len()
            ),
        ));
    }
    if let Some(i) = texts.iter().position(String::is_empty) {
        return Err(OpenAiError::invalid_param(
            &format!("input[{i}]"),
            "an input must not be an empty string",
        ));
    }
    Ok(texts)
}

/// Tokenises every text, refusing (as OpenAI does) an input longer than the model reads and a
/// request over [`MAX_REQUEST_TOKENS`] in all, rather than embedding part of a text silently.
fn encode(embedder: &Embedder, texts: &[String]) -> Result<Vec<Encoding>, OpenAiError> {
    let mut total = 0;
    let mut encodings = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        let encoding = embedder.encode(text);
        if encoding.is_truncated() {
            return Err(OpenAiError::invalid_param(
                &format!("input[{i}]"),
                format!(
                    "This model's maximum context length is {} tokens, however input {i} has {} tokens. Please shorten it or split it.",
                    embedder.max_tokens(),
                    encoding.untruncated_len()
                ),
            )
            .with_code("context_length_exceeded"));
        }
        total += encoding.len();
        if total > MAX_REQUEST_TOKENS {
            return Err(OpenAiError::invalid_param(
                "input",
                format!(
                    "the inputs have more than {MAX_REQUEST_TOKENS} tokens in all; send them in several requests"
                ),
            ));
        }
        encodings.push(encoding);
    }
    Ok(encodings)
}

/// A vector as OpenAI's `base64` encoding gives it: its little-endian f32 bytes.
fn base64_f32(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0 = 0x3f800000 → 00 00 80 3f; -2.0 = 0xc0000000 → 00 00 00 c0.
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
    }

    #[test]
    fn inputs_are_checked() {
        assert_eq!(texts(EmbeddingInput::Text("a".into())).unwrap(), ["a"]);
        let refused = |input| texts(input).unwrap_err().body.error;
        assert_eq!(
            refused(EmbeddingInput::Texts(vec![])).param.as_deref(),
            Some("input")
        );
        let e = refused(EmbeddingInput::Texts(vec!["a".into(), String::new()]));
        assert_eq!(e.param.as_deref(), Some("input[1]"));
        let e = refused(EmbeddingInput::Texts(vec!["a".into(); MAX_INPUTS + 1]));
        assert!(e.message.contains("2049 items"), "{}", e.message);
        let e = refused(EmbeddingInput::Tokens(vec![1, 2]));
        assert!(e.message.contains("token ids"), "{}", e.message);
        assert!(texts(EmbeddingInput::TokenLists(vec![vec![1]])).is_err());
    }
}
