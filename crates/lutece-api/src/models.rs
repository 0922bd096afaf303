//! The platform's models: files the built-in engine serves, imported by an operator.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/models` (operator): bring a model into the platform's models, checked on
/// the way: a copy of one the control plane's machine can read (`path`; for an air-gapped
/// platform, the way models arrive), or a GGUF file it downloads (`url`). Give one of the two.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportModel {
    /// An absolute path on the control plane's machine: a GGUF file (a generative model) or a
    /// sentence-transformers directory (`config.json`, `model.safetensors`, `tokenizer.json`:
    /// an embedding model).
    #[serde(default)]
    pub path: Option<String>,
    /// A GGUF file to download: `https://…` (or `http://…`) with its `sha256`, or a Hugging
    /// Face file `hf:ORG/REPO[@REVISION]/FILE` from the hub or the mirror the control plane's
    /// `HF_ENDPOINT` names (checked against the digest the hub sends when `sha256` is absent).
    #[serde(default)]
    pub url: Option<String>,
    /// The model's id in `/v1` and in deployments; derived from the file or directory name
    /// (the URL's last part) when absent (lowercased, other characters turned into `-`).
    #[serde(default)]
    pub name: Option<String>,
    /// The SHA-256 the file must have (hex); for a directory, that of `model.safetensors`.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// What a model is, told by its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A GGUF file: chat and text completions.
    Generative,
    /// A BERT sentence-transformers directory: embeddings.
    Embedding,
}

/// A model of the platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlatformModel {
    pub name: String,
    pub kind: ModelKind,
    /// Bytes on disk, all files together.
    pub bytes: u64,
    /// SHA-256 of the weights (the GGUF file, or `model.safetensors`); present in the answer
    /// to an import, which reads them anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
