//! The built-in model runtime.
//!
//! An [`Engine`] loads one GGUF model through llama.cpp and serves many generations at once:
//! every request gets a sequence slot in one shared KV cache, and each step decodes one token
//! for every running sequence in a single batch while new prompts join the same batch as they
//! arrive (continuous batching). Tokens stream back through a channel per request.
//!
//! Everything that touches llama.cpp lives in `model.rs` and `batcher.rs`; the rest (sampling,
//! stop sequences, UTF-8 streaming, chat templates) is plain Rust, tested on its own.
//!
//! An [`Embedder`] (in [`embed`]) is the other kind of model: a BERT sentence-embedding model
//! (safetensors), tokenised and run in plain Rust, without llama.cpp.

mod batcher;
pub mod embed;
mod model;
pub mod sampling;
pub mod template;
pub mod testing;
pub mod text;

pub use batcher::{Event, FinishReason, GenerateRequest, Usage};
pub use embed::{EmbedError, Embedder};
pub use model::{Engine, EngineOptions, ModelInfo};
pub use sampling::SamplingParams;
pub use template::{ChatMessage, ChatTemplate, TemplateError};

/// Why the engine could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot load model {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error(
        "the prompt has {prompt} tokens and asks for {max_tokens} more; this model serves at most {context} tokens per request"
    )]
    ContextLength {
        prompt: usize,
        max_tokens: usize,
        context: usize,
    },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the engine has stopped")]
    Stopped,
}
