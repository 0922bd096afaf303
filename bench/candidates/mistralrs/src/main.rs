//! The mistral.rs candidate: loads a GGUF model with mistral.rs as a library (CPU) and measures
//! greedy chat generation, one stream (four requests one after another) and eight at once
//! (its own scheduler batches them). Prints one JSON line: load time, tokens/s, peak memory.
//!
//! Usage: RAYON_NUM_THREADS=2 mistralrs-candidate MODEL.gguf

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use mistralrs::{GgufModelBuilder, Model, RequestBuilder, TextMessageRole};

const PROMPTS: [&str; 8] = [
    "What is the capital of France?",
    "Tell me a short story about a robot who learns to paint.",
    "Write a Python function that computes Fibonacci numbers.",
    "What are the three primary colours?",
    "Explain photosynthesis to a child.",
    "Name some European rivers.",
    "Describe a small village by the sea.",
    "What are the main ingredients of a pancake?",
];

#[tokio::main]
async fn main() -> Result<()> {
    let path = std::env::args().nth(1).context("usage: mistralrs-candidate MODEL.gguf")?;
    let path = std::path::Path::new(&path);
    let dir = path.parent().context("a file path")?.display().to_string();
    let file = path.file_name().context("a file path")?.to_string_lossy().into_owned();
    let started = Instant::now();
    let model = GgufModelBuilder::new(dir, vec![file])
        .with_force_cpu()
        .with_max_num_seqs(8)
        .build()
        .await?;
    let load_s = started.elapsed().as_secs_f64();
    let model = Arc::new(model);
    generate(&model, PROMPTS[0], 8).await?; // warm-up

    let (mut tokens, started) = (0, Instant::now());
    for prompt in &PROMPTS[..4] {
        tokens += generate(&model, prompt, 128).await?;
    }
    let one_stream = tokens as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let all = futures_join(&model).await?;
    let eight_streams = all as f64 / started.elapsed().as_secs_f64();
    println!(
        "{{\"load_s\": {load_s:.3}, \"single_stream_tokens_per_s\": {one_stream:.1}, \"eight_streams_tokens_per_s\": {eight_streams:.1}, \"peak_rss_mib\": {:.0}}}",
        peak_rss_mib()
    );
    Ok(())
}

/// One greedy chat answer of at most `tokens` tokens; returns the tokens generated.
async fn generate(model: &Model, prompt: &str, tokens: usize) -> Result<usize> {
    let request = RequestBuilder::new()
        .add_message(TextMessageRole::User, prompt)
        .set_deterministic_sampler()
        .set_sampler_max_len(tokens);
    let response = model.send_chat_request(request).await?;
    Ok(response.usage.completion_tokens)
}

async fn futures_join(model: &Arc<Model>) -> Result<usize> {
    let tasks: Vec<_> = PROMPTS
        .iter()
        .map(|prompt| {
            let model = Arc::clone(model);
            tokio::spawn(async move { generate(&model, prompt, 128).await })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
