//! From OpenAI parameters to engine requests, and from engine events back to choices.

use axum::http::StatusCode;
use lutece_api::openai::Sampling;
use lutece_engine::{
    Engine, EngineError, Event, FinishReason, GenerateRequest, SamplingParams, Usage,
};
use lutece_gateway::OpenAiError;
use tokio::sync::mpsc::UnboundedReceiver;

/// The most choices one request may ask for.
const MAX_N: u32 = 16;
/// OpenAI accepts at most four stop sequences.
const MAX_STOPS: usize = 4;

/// Checks the sampling parameters and makes `n` engine requests for `prompt`; choice `i` is
/// seeded with `seed + i`, so a seeded request gives the same choices every time.
pub(crate) fn requests(
    sampling: &Sampling,
    max_tokens: Option<u32>,
    prompt: Vec<i32>,
) -> Result<Vec<GenerateRequest>, OpenAiError> {
    let temperature = sampling.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(OpenAiError::invalid_param(
            "temperature",
            format!("{temperature} is not valid for 'temperature': it must be between 0 and 2"),
        ));
    }
    let top_p = sampling.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(OpenAiError::invalid_param(
            "top_p",
            format!("{top_p} is not valid for 'top_p': it must be greater than 0 and at most 1"),
        ));
    }
    let n = sampling.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(OpenAiError::invalid_param(
            "n",
            format!("{n} is not valid for 'n': it must be between 1 and {MAX_N}"),
        ));
    }
    if max_tokens == Some(0) {
        return Err(OpenAiError::invalid_param(
            "max_tokens",
            "'max_tokens' must be at least 1",
        ));
    }
    let stop = sampling
        .stop
        .clone()
        .map(|s| s.into_vec())
        .unwrap_or_default();
    if stop.len() > MAX_STOPS {
        return Err(OpenAiError::invalid_param(
            "stop",
            format!(
                "'stop' has {} sequences; at most {MAX_STOPS} are allowed",
                stop.len()
            ),
        ));
    }
    let seed = sampling.seed();
    Ok((0..n)
        .map(|i| GenerateRequest {
            prompt: prompt.clone(),
            max_tokens,
            sampling: SamplingParams {
                temperature,
                top_p,
                seed: seed.map(|s| s.wrapping_add(u64::from(i))),
            },
            stop: stop.clone(),
        })
        .collect())
}

/// Starts every request; none runs if one is refused.
pub(crate) fn start(
    engine: &Engine,
    requests: Vec<GenerateRequest>,
) -> Result<Vec<UnboundedReceiver<Event>>, OpenAiError> {
    requests
        .into_iter()
        .map(|r| engine.generate(r).map_err(engine_error))
        .collect()
}

pub(crate) fn engine_error(e: EngineError) -> OpenAiError {
    match e {
        EngineError::ContextLength { .. } => OpenAiError::invalid_param("messages", e.to_string())
            .with_code("context_length_exceeded"),
        EngineError::EmptyPrompt => OpenAiError::invalid_param("prompt", e.to_string()),
        EngineError::Template(t) => OpenAiError::invalid_param("messages", t.to_string()),
        EngineError::Stopped | EngineError::Load { .. } => OpenAiError::unavailable(e.to_string()),
    }
}

/// What one choice produced, when waited for to the end.
pub(crate) struct Finished {
    pub(crate) text: String,
    pub(crate) reason: FinishReason,
    pub(crate) usage: Usage,
}

pub(crate) async fn collect(mut events: UnboundedReceiver<Event>) -> Result<Finished, OpenAiError> {
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Token { text: piece, .. } => text.push_str(&piece),
            Event::Done { reason, usage } => {
                return Ok(Finished {
                    text,
                    reason,
                    usage,
                });
            }
            Event::Failed(message) => return Err(OpenAiError::internal(message)),
        }
    }
    Err(OpenAiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_error",
        "the engine stopped",
    ))
}

pub(crate) fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// Prompt tokens count once per prompt, however many choices it has (as OpenAI counts them).
pub(crate) fn total_usage(
    prompt_tokens: u64,
    completion: impl Iterator<Item = Usage>,
) -> lutece_api::openai::Usage {
    let completion_tokens = completion.map(|u| u64::from(u.completion_tokens)).sum();
    lutece_api::openai::Usage::new(prompt_tokens, completion_tokens)
}

/// A fresh id such as `chatcmpl-…`.
pub(crate) fn new_id(prefix: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{nanos:x}{:04x}",
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff
    )
}
