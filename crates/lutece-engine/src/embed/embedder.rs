//! An [`Embedder`]: a sentence-transformers BERT model (tokenizer, encoder, pooling and
//! normalisation, as its `modules.json` lists them) loaded from its directory, embedding
//! batches across the machine's cores.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use super::EmbedError;
use super::bert::{Bert, BertConfig};
use super::tokenizer::{Encoding, Tokenizer};

/// The most tokens one thread encodes at a time: enough for efficient matrix products, few
/// enough that a batch of 2048 long inputs holds only tens of MB of activations per thread.
const CHUNK_TOKENS: usize = 4096;
/// The fewest tokens worth a thread of their own: below this, reading the weights (~40 MB per
/// pass, whatever the batch) costs more than the arithmetic, so a second thread gains nothing.
const MIN_CHUNK_TOKENS: usize = 64;

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over every token the model read (`[CLS]` and `[SEP]` included).
    Mean,
    /// The first token's vector.
    Cls,
}

/// A loaded sentence-embedding model.
#[derive(Debug)]
pub struct Embedder {
    tokenizer: Tokenizer,
    bert: Bert,
    pooling: Pooling,
    normalize: bool,
    /// sentence-transformers' `do_lower_case`: lowercase the text before tokenising.
    lowercase: bool,
    threads: usize,
}

impl Embedder {
    /// Whether `path` looks like a model this loads: a directory with `config.json` and
    /// `model.safetensors`, or such a directory's `model.safetensors` (not any other file in
    /// it: a GGUF file next to them is a GGUF model). It says nothing about whether loading
    /// succeeds.
    pub fn is_model(path: &Path) -> bool {
        if path.is_file() && path.file_name() != Some("model.safetensors".as_ref()) {
            return false;
        }
        let dir = model_dir(path);
        dir.join("config.json").is_file() && dir.join("model.safetensors").is_file()
    }

    /// Loads the model in `path` (its directory, or its `model.safetensors`). Uses every core
    /// for large batches; see [`Self::with_threads`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let dir = model_dir(path.as_ref());
        let fail = |reason: String| EmbedError::Load {
            path: dir.display().to_string(),
            reason,
        };
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| fail(format!("{name}: {e}")))
        };
        let optional = |name: &str| dir.join(name).is_file().then(|| read(name)).transpose();

        let config: BertConfig = serde_json::from_str(&read("config.json")?)
            .map_err(|e| fail(format!("config.json: {e}")))?;
        let sentence_config: SentenceBertConfig = match optional("sentence_bert_config.json")? {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| fail(format!("sentence_bert_config.json: {e}")))?,
            None => SentenceBertConfig::default(),
        };
        let positions = config.max_position_embeddings;
        let max_tokens = sentence_config
            .max_seq_length
            .unwrap_or(positions)
            .min(positions);
        let tokenizer = Tokenizer::from_json(&read("tokenizer.json")?, max_tokens)
            .map_err(|e| fail(e.to_string()))?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(fail(format!(
                "the tokenizer has {} tokens but the model only {}",
                tokenizer.vocab_size(),
                config.vocab_size
            )));
        }
        let (pooling, normalize) = match optional("modules.json")? {
            Some(json) => modules(&dir, &json).map_err(fail)?,
            // sentence-transformers' default for a plain Hugging Face model.
            None => (Pooling::Mean, false),
        };
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let bert = Bert::load(config, &weights).map_err(fail)?;
        Ok(Self {
            tokenizer,
            bert,
            pooling,
            normalize,
            lowercase: sentence_config.do_lower_case,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        })
    }

    /// Uses at most `threads` threads per batch (at least one).
    #[must_use]
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// The length of every embedding.
    pub fn dimensions(&self) -> usize {
        self.bert.config().hidden_size
    }

    /// The most tokens the model reads of one input, special tokens included; longer inputs
    /// are truncated, as sentence-transformers truncates them.
    pub fn max_tokens(&self) -> usize {
        self.tokenizer.max_tokens()
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// Whether embeddings have unit length.
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// The tokens the model reads for `text`, and how many the whole text has.
    pub fn encode(&self, text: &str) -> Encoding {
        if self.lowercase {
            self.tokenizer.encode(&text.to_lowercase())
        } else {
            self.tokenizer.encode(text)
        }
    }

    /// One embedding per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings: Vec<Encoding> = texts.iter().map(|t| self.encode(t)).collect();
        self.embed_encodings(&encodings)
    }

    /// One embedding per encoding (from [`Self::encode`]), in order. The batch is cut into
    /// chunks of whole inputs that the threads take in turn; an input's embedding does not
    /// depend on the rest of the batch.
    pub fn embed_encodings(&self, encodings: &[Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let vocab = self.bert.config().vocab_size;
        for e in encodings {
            if e.is_empty() || e.len() > self.max_tokens() {
                return Err(EmbedError::Input(format!(
                    "an encoding of {} tokens; this model reads 1 to {}",
                    e.len(),
                    self.max_tokens()
                )));
            }
            if let Some(&id) = e.ids().iter().find(|&&id| id as usize >= vocab) {
                return Err(EmbedError::Input(format!(
                    "token id {id}, outside this model's vocabulary of {vocab}"
                )));
            }
        }
        let total: usize = encodings.iter().map(Encoding::len).sum();
        let per_thread = total
            .div_ceil(self.threads)
            .clamp(MIN_CHUNK_TOKENS, CHUNK_TOKENS);
        let chunks = chunk(encodings, per_thread);
        let threads = self.threads.min(chunks.len());
        let mut out = vec![Vec::new(); encodings.len()];
        if threads <= 1 {
            for range in &chunks {
                self.embed_chunk(&encodings[range.clone()], &mut out[range.clone()]);
            }
            return Ok(out);
        }
        let next = AtomicUsize::new(0);
        let done: Vec<Vec<(usize, Vec<Vec<f32>>)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(range) = chunks.get(i) else {
                                return mine;
                            };
                            let mut vectors = vec![Vec::new(); range.len()];
                            self.embed_chunk(&encodings[range.clone()], &mut vectors);
                            mine.push((range.start, vectors));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for (start, vectors) in done.into_iter().flatten() {
            for (slot, v) in out[start..].iter_mut().zip(vectors) {
                *slot = v;
            }
        }
        Ok(out)
    }

    /// Encodes a few inputs together and pools each into `out`.
    fn embed_chunk(&self, encodings: &[Encoding], out: &mut [Vec<f32>]) {
        let sequences: Vec<&[u32]> = encodings.iter().map(Encoding::ids).collect();
        let hidden = self.bert.forward(&sequences);
        let h = self.dimensions();
        let mut rows = hidden.chunks_exact(h);
        for (sequence, slot) in sequences.iter().zip(out) {
            let tokens: Vec<&[f32]> = rows.by_ref().take(sequence.len()).collect();
            let mut v = match self.pooling {
                Pooling::Mean => {
                    let mut sum = vec![0.0f32; h];
                    for t in &tokens {
                        sum.iter_mut().zip(*t).for_each(|(s, x)| *s += x);
                    }
                    let n = tokens.len().max(1) as f32;
                    sum.iter_mut().for_each(|s| *s /= n);
                    sum
                }
                Pooling::Cls => tokens.first().map_or_else(|| vec![0.0; h], |t| t.to_vec()),
            };
            if self.normalize {
                // As torch.nn.functional.normalize: divide by max(‖v‖, 1e-12).
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
            }
            *slot = v;
        }
    }
}

/// Consecutive ranges of inputs of about `tokens` tokens each (an input is never split).
fn chunk(encodings: &[Encoding], tokens: usize) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut filled) = (0, 0);
    for (i, e) in encodings.iter().enumerate() {
        if filled > 0 && filled + e.len() > tokens {
            chunks.push(start..i);
            (start, filled) = (i, 0);
        }
        filled += e.len();
    }
    if start < encodings.len() {
        chunks.push(start..encodings.len());
    }
    chunks
}

fn model_dir(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent().map_or_else(PathBuf::new, Path::to_path_buf)
    } else {
        path.to_path_buf()
    }
}

/// `sentence_bert_config.json`.
#[derive(Debug, Default, Deserialize)]
struct SentenceBertConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

/// One entry of `modules.json`.
#[derive(Debug, Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

/// `1_Pooling/config.json`, the modes this embedder implements.
#[derive(Debug, Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

/// The pooling and normalisation that `modules.json` asks for, refusing modules (a dense
/// projection, say) that this embedder does not implement.
fn modules(dir: &Path, json: &str) -> Result<(Pooling, bool), String> {
    let modules: Vec<Module> =
        serde_json::from_str(json).map_err(|e| format!("modules.json: {e}"))?;
    let (mut pooling, mut normalize) = (None, false);
    for module in &modules {
        match module.kind.rsplit('.').next().unwrap_or_default() {
            "Transformer" => {}
            "Normalize" => normalize = true,
            "Pooling" => {
                let inside = Path::new(&module.path)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
                if !inside {
                    return Err(format!(
                        "modules.json: the pooling module's path {:?} leaves the model's directory",
                        module.path
                    ));
                }
                let name = Path::new(&module.path).join("config.json");
                let text = std::fs::read_to_string(dir.join(&name))
                    .map_err(|e| format!("{}: {e}", name.display()))?;
                let config: PoolingConfig =
                    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", name.display()))?;
                pooling = Some(
                    match (
                        config.pooling_mode_mean_tokens,
                        config.pooling_mode_cls_token,
                        config.pooling_mode_max_tokens
                            || config.pooling_mode_mean_sqrt_len_tokens
                            || config.pooling_mode_weightedmean_tokens
                            || config.pooling_mode_lasttoken,
                    ) {
                        (true, false, false) => Pooling::Mean,
                        (false, true, false) => Pooling::Cls,
                        _ => return Err("only mean or CLS pooling is supported".into()),
                    },
                );
            }
            other => return Err(format!("modules.json: the {other} module is not supported")),
        }
    }
    Ok((pooling.unwrap_or(Pooling::Mean), normalize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_inputs_in_order() {
        let tokenizer = super::super::tokenizer::tests::tiny(16);
        let encodings: Vec<Encoding> = ["a", "a b c d", "b", "c d", "a b c d a b c d a b"]
            .iter()
            .map(|t| tokenizer.encode(t))
            .collect();
        let lens: Vec<usize> = encodings.iter().map(Encoding::len).collect();
        assert_eq!(lens, [3, 6, 3, 4, 12]);
        assert_eq!(chunk(&encodings, 8), [0..1, 1..2, 2..4, 4..5]);
        assert_eq!(chunk(&encodings, 100), vec![0..5]);
        assert_eq!(chunk(&[], 8), []);
    }
}
