//! Loading a GGUF model and starting its batching thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use crate::batcher::{self, Command, Event, GenerateRequest};
use crate::template::ChatTemplate;
use crate::{ChatMessage, EngineError};

/// How to run a model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub model_path: PathBuf,
    /// Sequences decoded together; more requests than this wait for a free slot.
    pub slots: u32,
    /// The most tokens (prompt and completion) one request may use.
    pub context_per_request: u32,
    /// Prompt tokens processed per step, shared by all sequences joining in that step.
    pub batch_tokens: u32,
    /// CPU threads; `None` uses every core.
    pub threads: Option<u32>,
    /// Layers offloaded to the GPU when llama.cpp was built with one (0 on CPU builds).
    pub gpu_layers: u32,
}

impl EngineOptions {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        Self {
            model_path: model_path.into(),
            slots: 8,
            context_per_request: 2048,
            batch_tokens: 512,
            threads: None,
            gpu_layers: 0,
        }
    }
}

/// What the model file says about itself.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// `general.name` from the file.
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    pub size_bytes: u64,
    /// The most tokens one request may use (the smaller of the file's and the engine's).
    pub context_length: usize,
    pub vocab_size: usize,
}

/// A loaded model with its batching thread. Dropping it stops the thread once the requests in
/// flight are done.
#[derive(Debug)]
pub struct Engine {
    model: Arc<LlamaModel>,
    info: ModelInfo,
    template: Option<ChatTemplate>,
    commands: mpsc::Sender<Command>,
}

/// llama.cpp's backend is initialised once per process.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|reason| EngineError::Load {
            path: String::new(),
            reason: reason.clone(),
        })
}

impl Engine {
    /// Loads the model and starts the batching thread.
    pub fn load(options: EngineOptions) -> Result<Self, EngineError> {
        let path = options.model_path.clone();
        let load_error = |reason: String| EngineError::Load {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(load_error("no such file".into()));
        }
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(options.gpu_layers);
        let model = LlamaModel::load_from_file(backend, &path, &params)
            .map_err(|e| load_error(format!("{e} (is it a GGUF file?)")))?;
        let model = Arc::new(model);

        let meta = |key: &str| model.meta_val_str(key).ok();
        let context_length =
            (model.n_ctx_train() as usize).min(options.context_per_request as usize);
        let info = ModelInfo {
            name: meta("general.name").unwrap_or_else(|| file_stem(&path)),
            architecture: meta("general.architecture").unwrap_or_default(),
            parameters: model.n_params(),
            size_bytes: model.size(),
            context_length,
            vocab_size: usize::try_from(model.n_vocab()).unwrap_or(0),
        };
        let template = match meta("tokenizer.chat_template") {
            Some(source) => {
                let piece = |t: LlamaToken| token_text(&model, t);
                let vocab = model.vocab();
                Some(ChatTemplate::new(
                    &source,
                    &piece(vocab.bos()),
                    &piece(vocab.eos()),
                )?)
            }
            None => None,
        };

        let (commands, receiver) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_model = Arc::clone(&model);
        let config = batcher::Config {
            slots: options.slots.max(1),
            context_per_request: u32::try_from(context_length).unwrap_or(u32::MAX),
            batch_tokens: options.batch_tokens.max(options.slots).max(1),
            threads: options.threads,
        };
        thread::Builder::new()
            .name("lutece-engine".into())
            .spawn(move || batcher::run(backend, &thread_model, &config, &receiver, &ready_tx))
            .map_err(|e| load_error(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| EngineError::Stopped)?
            .map_err(load_error)?;
        Ok(Self {
            model,
            info,
            template,
            commands,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Whether the model ships a chat template (chat completions need one).
    pub fn has_chat_template(&self) -> bool {
        self.template.is_some()
    }

    /// Renders a conversation into a prompt with the model's own template.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, EngineError> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| EngineError::Template(crate::TemplateError::missing()))?;
        Ok(template.render(messages, true)?)
    }

    /// The tokens of `text`, with the model's BOS token in front when it wants one and the text
    /// does not start with it already (chat templates often write it). Special tokens written
    /// in the text (`<|im_start|>`) are parsed as such.
    pub fn tokenize(&self, text: &str) -> Vec<i32> {
        let vocab = self.model.vocab();
        let mut tokens: Vec<i32> = vocab
            .tokenize(text.as_bytes(), false, true)
            .into_iter()
            .map(|t| t.0)
            .collect();
        let bos = vocab.bos().0;
        if vocab.should_add_bos() && tokens.first() != Some(&bos) {
            tokens.insert(0, bos);
        }
        tokens
    }

    /// The text of `tokens`, special tokens left out.
    pub fn detokenize(&self, tokens: &[i32]) -> String {
        let tokens: Vec<LlamaToken> = tokens.iter().map(|&t| LlamaToken(t)).collect();
        let bytes = self.model.vocab().detokenize(&tokens, true, false);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Starts a generation; its events arrive on the returned channel. Dropping the receiver
    /// cancels the generation at the next step.
    pub fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<Event>, EngineError> {
        if request.prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let context = self.info.context_length;
        let max_tokens = request.max_tokens.map_or(1, |m| m as usize);
        if request.prompt.len() + max_tokens > context {
            return Err(EngineError::ContextLength {
                prompt: request.prompt.len(),
                max_tokens,
                context,
            });
        }
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.commands
            .send(Command::Generate { request, events })
            .map_err(|_| EngineError::Stopped)?;
        Ok(receiver)
    }
}

fn token_text(model: &LlamaModel, token: LlamaToken) -> String {
    let bytes = model.vocab().token_to_piece(token, true, None);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
