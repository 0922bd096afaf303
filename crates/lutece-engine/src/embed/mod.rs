//! Sentence embeddings in plain Rust: a BERT WordPiece tokenizer read from `tokenizer.json`,
//! a BERT encoder over f32 safetensors weights, and sentence-transformers' pooling, giving the
//! vectors sentence-transformers gives (all-MiniLM-L6-v2 and models shaped like it).
//!
//! Independent of the generation engine: no llama.cpp here, and nothing of this module there.

mod bert;
mod embedder;
mod gemm;
mod math;
mod normalize;
mod tokenizer;

pub use embedder::{Embedder, Pooling};
pub use tokenizer::{Encoding, Tokenizer, TokenizerError};

/// Why an embedding model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("cannot load embedding model {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("cannot embed {0}")]
    Input(String),
}
