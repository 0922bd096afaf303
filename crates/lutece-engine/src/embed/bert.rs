//! A BERT encoder's forward pass in plain Rust, over f32 weights read from safetensors.
//!
//! A batch is packed, not padded: the sequences' tokens are stacked into one `tokens × hidden`
//! matrix, so every dense layer is one matrix product over the whole batch, and attention runs
//! per sequence over that sequence's own rows. That is what padding plus an attention mask
//! computes, without the padded rows: a sequence's numbers do not depend on its neighbours.

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::gemm::{Mat, MatMut, gemm};
use super::math::{self, gelu, softmax};

/// The parts of a Hugging Face `config.json` that shape a BERT encoder.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    #[serde(default)]
    model_type: Option<String>,
    pub(crate) vocab_size: usize,
    pub(crate) hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    pub(crate) max_position_embeddings: usize,
    #[serde(default = "default_types")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f32,
    #[serde(default = "default_act")]
    hidden_act: String,
    #[serde(default)]
    position_embedding_type: Option<String>,
}

fn default_types() -> usize {
    2
}

fn default_eps() -> f32 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Refuses what this encoder does not implement.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.model_type.as_deref().is_some_and(|t| t != "bert") {
            return Err(format!("model_type {:?} is not bert", self.model_type));
        }
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act {:?} is not gelu", self.hidden_act));
        }
        if self
            .position_embedding_type
            .as_deref()
            .is_some_and(|p| p != "absolute")
        {
            return Err("only absolute position embeddings are supported".into());
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return Err(format!("{field} is 0"));
            }
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err("hidden_size is not a multiple of num_attention_heads".into());
        }
        Ok(())
    }
}

/// A loaded encoder.
#[derive(Debug)]
pub(crate) struct Bert {
    config: BertConfig,
    words: Vec<f32>,
    positions: Vec<f32>,
    /// Token type 0: every token of a single sequence has it.
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

#[derive(Debug)]
struct Layer {
    /// Query, key and value in one `3·hidden × hidden` weight.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    output: Linear,
    output_norm: Norm,
}

/// `y = x · Wᵀ + b`, with `W` as PyTorch stores it (`outputs × inputs`).
#[derive(Debug)]
struct Linear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

#[derive(Debug)]
struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

/// Buffers reused across layers.
#[derive(Default)]
struct Scratch {
    qkv: Vec<f32>,
    context: Vec<f32>,
    projected: Vec<f32>,
    intermediate: Vec<f32>,
    scores: Vec<f32>,
}

impl Bert {
    /// Reads the weights of `config`'s encoder from a safetensors file's bytes. Names may carry
    /// a `bert.` prefix (as `BertFor…` checkpoints write them); the pooler is not read.
    pub(crate) fn load(config: BertConfig, bytes: &[u8]) -> Result<Self, String> {
        config.check()?;
        let tensors = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
        let read = |name: &str, shape: &[usize]| read_f32(&tensors, name, shape);
        let h = config.hidden_size;
        let eps = config.layer_norm_eps;
        let norm = |name: &str| -> Result<Norm, String> {
            Ok(Norm {
                weight: read(&format!("{name}.weight"), &[h])?,
                bias: read(&format!("{name}.bias"), &[h])?,
                eps,
            })
        };
        let linear = |name: &str, inputs: usize, outputs: usize| -> Result<Linear, String> {
            Ok(Linear {
                weight: read(&format!("{name}.weight"), &[outputs, inputs])?,
                bias: read(&format!("{name}.bias"), &[outputs])?,
                inputs,
                outputs,
            })
        };
        let mut token_type = read(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        token_type.truncate(h);
        // Not `with_capacity`: the count comes from config.json; each layer is checked
        // against the weights file as it is read.
        let mut layers = Vec::new();
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let (q, k, v) = (
                linear(&format!("{p}.attention.self.query"), h, h)?,
                linear(&format!("{p}.attention.self.key"), h, h)?,
                linear(&format!("{p}.attention.self.value"), h, h)?,
            );
            let qkv = Linear {
                weight: [q.weight, k.weight, v.weight].concat(),
                bias: [q.bias, k.bias, v.bias].concat(),
                inputs: h,
                outputs: 3 * h,
            };
            let inter = config.intermediate_size;
            layers.push(Layer {
                qkv,
                attention_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"), h, inter)?,
                output: linear(&format!("{p}.output.dense"), inter, h)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            words: read("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            positions: read(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            config,
        })
    }

    pub(crate) fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The last hidden state of every token of every sequence, stacked in order
    /// (`Σ len × hidden`). Every id must be in the vocabulary and every sequence within the
    /// position embeddings (the embedder checks both).
    pub(crate) fn forward(&self, sequences: &[&[u32]]) -> Vec<f32> {
        let h = self.config.hidden_size;
        let tokens: usize = sequences.iter().map(|s| s.len()).sum();
        let mut x = Vec::with_capacity(tokens * h);
        for sequence in sequences {
            for (position, &id) in sequence.iter().enumerate() {
                let word = &self.words[id as usize * h..][..h];
                let pos = &self.positions[position * h..][..h];
                x.extend(
                    word.iter()
                        .zip(pos)
                        .zip(&self.token_type)
                        .map(|((w, p), t)| w + p + t),
                );
            }
        }
        self.embedding_norm.apply(&mut x);
        let mut scratch = Scratch::default();
        for layer in &self.layers {
            self.layer(layer, sequences, &mut x, &mut scratch);
        }
        x
    }

    fn layer(&self, layer: &Layer, sequences: &[&[u32]], x: &mut [f32], s: &mut Scratch) {
        let h = self.config.hidden_size;
        let tokens = x.len() / h;
        layer.qkv.forward(x, tokens, &mut s.qkv);
        self.attention(sequences, &s.qkv, &mut s.context, &mut s.scores);
        layer
            .attention_out
            .forward(&s.context, tokens, &mut s.projected);
        add_assign(x, &s.projected);
        layer.attention_norm.apply(x);
        layer.intermediate.forward(x, tokens, &mut s.intermediate);
        s.intermediate.iter_mut().for_each(|v| *v = gelu(*v));
        layer
            .output
            .forward(&s.intermediate, tokens, &mut s.projected);
        add_assign(x, &s.projected);
        layer.output_norm.apply(x);
    }

    /// Scaled dot-product attention of every head of every sequence: `context` gets
    /// `softmax(Q·Kᵀ/√d)·V`, each head in its own columns.
    fn attention(
        &self,
        sequences: &[&[u32]],
        qkv: &[f32],
        context: &mut Vec<f32>,
        scores: &mut Vec<f32>,
    ) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let d = h / heads;
        let scale = 1.0 / (d as f32).sqrt();
        let tokens = qkv.len() / (3 * h);
        context.clear();
        context.resize(tokens * h, 0.0);
        let mut start = 0;
        for sequence in sequences {
            let len = sequence.len();
            scores.clear();
            scores.resize(len * len, 0.0);
            let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
            let out = &mut context[start * h..(start + len) * h];
            for head in 0..heads {
                let q = Mat::new(&rows[head * d..], len, d, 3 * h);
                let k = Mat::new(&rows[h + head * d..], len, d, 3 * h);
                let v = Mat::new(&rows[2 * h + head * d..], len, d, 3 * h);
                gemm(scale, q, k.t(), 0.0, MatMut::new(scores, len, len, len));
                scores.chunks_exact_mut(len).for_each(softmax);
                let p = Mat::new(scores, len, len, len);
                gemm(1.0, p, v, 0.0, MatMut::new(&mut out[head * d..], len, d, h));
            }
            start += len;
        }
    }
}

impl Linear {
    /// `out` (resized to `rows × outputs`) gets `x · Wᵀ + b`.
    fn forward(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        out.clear();
        for _ in 0..rows {
            out.extend_from_slice(&self.bias);
        }
        let x = Mat::new(x, rows, self.inputs, self.inputs);
        let w = Mat::new(&self.weight, self.outputs, self.inputs, self.inputs);
        gemm(
            1.0,
            x,
            w.t(),
            1.0,
            MatMut::new(out, rows, self.outputs, self.outputs),
        );
    }
}

impl Norm {
    fn apply(&self, x: &mut [f32]) {
        math::layer_norm(x, &self.weight, &self.bias, self.eps);
    }
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}

/// A tensor as f32s, checking its type and shape.
fn read_f32(tensors: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
    let view = tensors
        .tensor(name)
        .or_else(|_| tensors.tensor(&format!("bert.{name}")))
        .map_err(|_| format!("the weights have no tensor {name}"))?;
    if view.dtype() != Dtype::F32 {
        return Err(format!(
            "{name} is {:?}; only F32 weights are supported",
            view.dtype()
        ));
    }
    if view.shape() != shape {
        return Err(format!(
            "{name} has shape {:?}, expected {shape:?}",
            view.shape()
        ));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}
