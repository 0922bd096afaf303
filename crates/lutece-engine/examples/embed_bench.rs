//! Embedding throughput and latency on the real all-MiniLM-L6-v2 (docs/BENCHMARKS.md):
//! `cargo run --release -p lutece-engine --example embed_bench [-- MODEL_DIR]`.
//! Without a directory, the model is fetched like the tests fetch it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lutece_engine::Embedder;

/// 32 short sentences, 6 to 16 words each.
const SENTENCES: [&str; 32] = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "How do I reset my password?",
    "I forgot my login credentials and cannot sign in.",
    "The weather in Paris is mild in the spring.",
    "Quarterly revenue grew by twelve percent over last year.",
    "The train to Lyon leaves at half past seven.",
    "Please send me the invoice for last month.",
    "Our cluster has eighteen thousand GPUs across three sites.",
    "The scheduler places each gang of tasks inside one rack.",
    "She planted tomatoes and basil in the garden this weekend.",
    "A sovereign cloud keeps data within national borders.",
    "The museum opens at nine and closes at six on weekdays.",
    "He fixed the bug by checking the length before indexing.",
    "Embeddings map sentences to points in a vector space.",
    "The recipe calls for two cups of flour and one egg.",
    "Children were playing football in the park after school.",
    "The committee will publish its report next Tuesday.",
    "A cat is sleeping on the warm windowsill.",
    "Interest rates are expected to stay unchanged this quarter.",
    "The library lends laptops to students for a week.",
    "Heavy rain caused delays on the northern railway line.",
    "The new model answers questions about the documentation.",
    "Fresh bread is baked every morning at the corner shop.",
    "The satellite sends images back to the ground station hourly.",
];

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(lutece_engine::testing::embedding_model, PathBuf::from);
    let start = Instant::now();
    let all = Embedder::load(&dir).expect("the model loads");
    println!("load: {:.0} ms", start.elapsed().as_secs_f64() * 1e3);
    let tokens: usize = SENTENCES.iter().map(|s| all.encode(s).len()).sum();
    println!("batch: {} sentences, {tokens} tokens", SENTENCES.len());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for threads in [1, cores] {
        let e = Embedder::load(&dir).unwrap().with_threads(threads);
        for _ in 0..3 {
            e.embed(&SENTENCES).unwrap();
        }
        let batch = median(
            (0..15)
                .map(|_| {
                    let t = Instant::now();
                    e.embed(&SENTENCES).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        let one = median(
            (0..5)
                .flat_map(|_| SENTENCES.iter())
                .map(|s| {
                    let t = Instant::now();
                    e.embed(&[s]).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        let long_text = "The quick brown fox jumps over the lazy dog. ".repeat(40);
        let long = median(
            (0..10)
                .map(|_| {
                    let t = Instant::now();
                    e.embed(&[&long_text]).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "threads {threads}: batch of 32 in {:.1} ms ({:.0} sentences/s); one sentence {:.2} ms; one 256-token input {:.1} ms (medians)",
            batch.as_secs_f64() * 1e3,
            SENTENCES.len() as f64 / batch.as_secs_f64(),
            one.as_secs_f64() * 1e3,
            long.as_secs_f64() * 1e3,
        );
    }
}
