//! The candle candidate: loads a GGUF model with candle's quantized llama and generates greedily
//! from a fixed prompt, one stream (candle has no batching scheduler of its own). Prints one
//! JSON line: load time, prompt and generation tokens/s, peak resident memory.
//!
//! Usage: candle-candidate MODEL.gguf [TOKENS] [THREADS]

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: candle-candidate MODEL.gguf [TOKENS] [THREADS]")?;
    let tokens: usize = args.get(2).map_or(Ok(128), |t| t.parse())?;
    if let Some(threads) = args.get(3) {
        // candle's CPU kernels use rayon's pool.
        rayon_threads(threads.parse()?);
    }
    let device = Device::Cpu;
    let started = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let content = gguf_file::Content::read(&mut file)?;
    let mut model = ModelWeights::from_gguf(content, &mut file, &device)?;
    let load_s = started.elapsed().as_secs_f64();

    // A fixed prompt of ordinary token ids: speed does not depend on the text.
    let prompt: Vec<u32> = vec![
        504, 3575, 282, 4649, 314, 2103, 30, 378, 1345, 3012, 6129, 28,
    ];
    let started = Instant::now();
    let input = Tensor::new(prompt.as_slice(), &device)?.unsqueeze(0)?;
    let logits = model.forward(&input, 0)?;
    let mut next = logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?;
    let prompt_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for i in 0..tokens {
        let input = Tensor::new(&[next], &device)?.unsqueeze(0)?;
        let logits = model.forward(&input, prompt.len() + i)?;
        next = logits.squeeze(0)?.argmax(0)?.to_scalar::<u32>()?;
    }
    let generate_s = started.elapsed().as_secs_f64();
    println!(
        "{{\"load_s\": {load_s:.3}, \"prompt_tokens_per_s\": {:.1}, \"generation_tokens_per_s\": {:.1}, \"peak_rss_mib\": {:.0}}}",
        prompt.len() as f64 / prompt_s,
        tokens as f64 / generate_s,
        peak_rss_mib()
    );
    Ok(())
}

fn rayon_threads(threads: usize) {
    // RAYON_NUM_THREADS is read when the global pool starts, at the first parallel kernel;
    // this runs before this program starts any thread.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
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
