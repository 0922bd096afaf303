//! The batching loop: one thread owns the llama.cpp context and, at each step, decodes one
//! token for every running sequence plus a share of the prompts of sequences joining, in one
//! batch. A request that arrives mid-generation joins at the next step.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::mpsc;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;

use crate::sampling::{Sampler, SamplingParams};
use crate::text::{StopMatcher, Utf8Stream};

/// One generation.
#[derive(Debug, Clone, Default)]
pub struct GenerateRequest {
    /// Prompt tokens (see [`crate::Engine::tokenize`]).
    pub prompt: Vec<i32>,
    /// Tokens to generate at most; `None` runs to the end of the context.
    pub max_tokens: Option<u32>,
    pub sampling: SamplingParams,
    /// Generation ends before the first of these strings; they are not returned.
    pub stop: Vec<String>,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn, or a stop sequence was reached.
    Stop,
    /// `max_tokens` or the context length was reached.
    Length,
}

/// Tokens counted for one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// What a generation sends back, in order: any number of `Token`, then one `Done` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A generated token and the text it completes (empty while a character or a possible stop
    /// sequence is incomplete). Text still held back when generation ends comes in a last
    /// `Token` with id -1.
    Token {
        id: i32,
        text: String,
    },
    Done {
        reason: FinishReason,
        usage: Usage,
    },
    Failed(String),
}

pub(crate) enum Command {
    Generate {
        request: GenerateRequest,
        events: UnboundedSender<Event>,
    },
}

pub(crate) struct Config {
    pub(crate) slots: u32,
    pub(crate) context_per_request: u32,
    pub(crate) batch_tokens: u32,
    pub(crate) threads: Option<u32>,
}

/// A sequence holding a slot of the KV cache.
struct Sequence {
    slot: i32,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens already decoded.
    prefilled: usize,
    /// Position of the next token in the sequence.
    position: i32,
    /// The last sampled token, fed in at the next step.
    last: Option<LlamaToken>,
    generated: u32,
    max_tokens: u32,
    sampler: Sampler,
    utf8: Utf8Stream,
    stop: StopMatcher,
    events: UnboundedSender<Event>,
    /// Where this sequence's logits are in the current batch.
    logits_at: Option<i32>,
    stopped_by_sequence: bool,
}

impl Sequence {
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: u32::try_from(self.prompt.len()).unwrap_or(u32::MAX),
            completion_tokens: self.generated,
        }
    }
}

pub(crate) fn run(
    backend: &LlamaBackend,
    model: &LlamaModel,
    config: &Config,
    commands: &mpsc::Receiver<Command>,
    ready: &mpsc::Sender<Result<(), String>>,
) {
    let threads = config.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let threads = i32::try_from(threads).unwrap_or(1);
    let n_ctx = config.slots.saturating_mul(config.context_per_request);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(config.batch_tokens)
        .with_n_ubatch(config.batch_tokens)
        .with_n_seq_max(config.slots)
        // One KV stream per sequence: attention never spans another sequence's cells, so a
        // sequence computes the same numbers batched or alone (seeded output is repeatable
        // under load), and each request gets `context_per_request` tokens of its own.
        .with_kv_unified(false)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => ctx,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot create a context: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let batch_tokens = config.batch_tokens as usize;
    let mut batch = LlamaBatch::new(batch_tokens, i32::try_from(config.slots).unwrap_or(1));
    let mut waiting: VecDeque<(GenerateRequest, UnboundedSender<Event>)> = VecDeque::new();
    let mut free_slots: Vec<i32> = (0..i32::try_from(config.slots).unwrap_or(1))
        .rev()
        .collect();
    let mut running: Vec<Sequence> = Vec::new();

    loop {
        // Take new requests: wait for one when idle, otherwise just look.
        if running.is_empty() && waiting.is_empty() {
            match commands.recv() {
                Ok(Command::Generate { request, events }) => waiting.push_back((request, events)),
                Err(_) => return,
            }
        }
        while let Ok(Command::Generate { request, events }) = commands.try_recv() {
            waiting.push_back((request, events));
        }
        while let Some(slot) = free_slots.pop() {
            let Some((request, events)) = waiting.pop_front() else {
                free_slots.push(slot);
                break;
            };
            if events.is_closed() {
                free_slots.push(slot);
                continue;
            }
            running.push(admit(slot, request, events, config.context_per_request));
        }

        // Cancelled requests (the receiver is gone) leave before the step.
        running.retain(|seq| {
            let keep = !seq.events.is_closed();
            if !keep {
                release(&mut ctx, &mut free_slots, seq.slot);
            }
            keep
        });
        if running.is_empty() {
            continue;
        }

        fill_batch(&mut batch, &mut running);
        if let Err(e) = ctx.decode(&mut batch) {
            // Nothing of this step is usable: fail every sequence in it, keep serving others.
            for seq in running.drain(..) {
                let _ = seq
                    .events
                    .send(Event::Failed(format!("decoding failed: {e}")));
                release(&mut ctx, &mut free_slots, seq.slot);
            }
            continue;
        }

        let mut finished = Vec::new();
        for (i, seq) in running.iter_mut().enumerate() {
            let Some(at) = seq.logits_at.take() else {
                continue;
            };
            let token = LlamaToken(sample(&ctx, at, &mut seq.sampler));
            if let Some(reason) = accept(model, seq, token) {
                finish(seq, reason);
                finished.push(i);
            }
        }
        for i in finished.into_iter().rev() {
            let seq = running.swap_remove(i);
            release(&mut ctx, &mut free_slots, seq.slot);
        }
    }
}

fn admit(
    slot: i32,
    request: GenerateRequest,
    events: UnboundedSender<Event>,
    context: u32,
) -> Sequence {
    let prompt_len = u32::try_from(request.prompt.len()).unwrap_or(u32::MAX);
    let room = context.saturating_sub(prompt_len);
    Sequence {
        slot,
        prompt: request.prompt.into_iter().map(LlamaToken).collect(),
        prefilled: 0,
        position: 0,
        last: None,
        generated: 0,
        max_tokens: request.max_tokens.map_or(room, |m| m.min(room)),
        sampler: Sampler::new(&request.sampling),
        utf8: Utf8Stream::default(),
        stop: StopMatcher::new(request.stop),
        events,
        logits_at: None,
        stopped_by_sequence: false,
    }
}

/// Puts this step's tokens in the batch: first the next token of every generating sequence,
/// then as much prompt as fits; a prompt that does not fit goes on at the next step.
fn fill_batch(batch: &mut LlamaBatch, running: &mut [Sequence]) {
    batch.clear();
    let mut used = 0usize;
    let mut add = |batch: &mut LlamaBatch, token, position, slot, logits| -> Option<i32> {
        let index = i32::try_from(used).ok()?;
        batch.add(token, position, &[slot], logits).ok()?;
        used += 1;
        Some(index)
    };
    for seq in running.iter_mut() {
        if let Some(token) = seq.last {
            seq.logits_at = add(batch, token, seq.position, seq.slot, true);
            seq.position += 1;
        }
    }
    for seq in running.iter_mut().filter(|s| s.last.is_none()) {
        while seq.prefilled < seq.prompt.len() {
            let is_last = seq.prefilled + 1 == seq.prompt.len();
            let Some(index) = add(
                batch,
                seq.prompt[seq.prefilled],
                seq.position,
                seq.slot,
                is_last,
            ) else {
                return; // the batch is full
            };
            seq.prefilled += 1;
            seq.position += 1;
            if is_last {
                seq.logits_at = Some(index);
            }
        }
    }
}

fn sample(ctx: &LlamaContext<'_>, at: i32, sampler: &mut Sampler) -> i32 {
    let logits = ctx.get_logits_ith(at);
    i32::try_from(sampler.sample(logits)).unwrap_or(0)
}

/// Records `token` for `seq` and sends its text; says whether the sequence is done.
fn accept(model: &LlamaModel, seq: &mut Sequence, token: LlamaToken) -> Option<FinishReason> {
    let vocab = model.vocab();
    if vocab.is_eog(token) {
        return Some(FinishReason::Stop);
    }
    seq.generated += 1;
    seq.last = Some(token);
    let bytes = vocab.token_to_piece(token, false, None);
    let released = seq.stop.push(&seq.utf8.push(&bytes));
    let _ = seq.events.send(Event::Token {
        id: token.0,
        text: released.text,
    });
    if released.stopped {
        seq.stopped_by_sequence = true;
        return Some(FinishReason::Stop);
    }
    (seq.generated >= seq.max_tokens).then_some(FinishReason::Length)
}

fn finish(seq: &mut Sequence, reason: FinishReason) {
    // Text held back (an unfinished character, the start of a stop sequence that never came)
    // is sent now, unless a stop sequence ended the generation.
    if !seq.stopped_by_sequence {
        let tail = seq.utf8.finish();
        let released = seq.stop.push(&tail);
        let mut text = released.text;
        if !released.stopped {
            text.push_str(&seq.stop.finish());
        }
        if !text.is_empty() {
            let _ = seq.events.send(Event::Token { id: -1, text });
        }
    }
    let _ = seq.events.send(Event::Done {
        reason,
        usage: seq.usage(),
    });
}

fn release(ctx: &mut LlamaContext<'_>, free_slots: &mut Vec<i32>, slot: i32) {
    let _ = ctx.clear_kv_cache_seq(u32::try_from(slot).ok(), None, None);
    free_slots.push(slot);
}
