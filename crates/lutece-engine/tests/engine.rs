//! The engine on the real default model (SmolLM2-135M-Instruct, Q4_1 GGUF).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use lutece_engine::{
    ChatMessage, Engine, EngineError, EngineOptions, Event, FinishReason, GenerateRequest,
    SamplingParams,
};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut options = EngineOptions::new(lutece_engine::testing::default_model());
        options.slots = 4;
        options.context_per_request = 1024;
        Engine::load(options).expect("the default model loads")
    })
}

fn greedy(prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: engine().tokenize(prompt),
        max_tokens: Some(max_tokens),
        sampling: SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            seed: None,
        },
        stop: Vec::new(),
    }
}

struct Output {
    ids: Vec<i32>,
    text: String,
    reason: FinishReason,
    completion_tokens: u32,
}

fn run(request: GenerateRequest) -> Output {
    let mut events = engine().generate(request).unwrap();
    let (mut ids, mut text) = (Vec::new(), String::new());
    loop {
        match events.blocking_recv().expect("the engine answers") {
            Event::Token { id, text: piece } => {
                if id >= 0 {
                    ids.push(id);
                }
                text.push_str(&piece);
            }
            Event::Done { reason, usage } => {
                return Output {
                    ids,
                    text,
                    reason,
                    completion_tokens: usage.completion_tokens,
                };
            }
            Event::Failed(message) => panic!("generation failed: {message}"),
        }
    }
}

fn chat(question: &str) -> String {
    engine()
        .chat_prompt(&[ChatMessage::new("user", question)])
        .unwrap()
}

#[test]
fn the_model_describes_itself() {
    let info = engine().info();
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.vocab_size, 49152);
    assert_eq!(info.context_length, 1024);
    assert!(engine().has_chat_template());
}

#[test]
fn greedy_generation_answers_and_is_repeatable() {
    let prompt = chat("What is 2+2?");
    let a = run(greedy(&prompt, 24));
    let b = run(greedy(&prompt, 24));
    assert_eq!(a.ids, b.ids);
    assert!(a.text.contains('4'), "{:?}", a.text);
    assert_eq!(a.text, engine().detokenize(&a.ids));
}

#[test]
fn max_tokens_and_the_end_of_turn_finish_generation() {
    let out = run(greedy(&chat("Write a long story about a dragon."), 5));
    assert_eq!(out.reason, FinishReason::Length);
    assert_eq!(out.completion_tokens, 5);
    assert_eq!(out.ids.len(), 5);
    let out = run(greedy(&chat("Say just: yes"), 200));
    assert_eq!(
        out.reason,
        FinishReason::Stop,
        "the model ends its turn: {:?}",
        out.text
    );
    assert!(out.completion_tokens < 200);
}

#[test]
fn stop_sequences_end_generation_before_them() {
    let prompt = chat("Count from 1 to 10, separated by commas.");
    let full = run(greedy(&prompt, 40)).text;
    let stop = "5";
    let cut = full.find(stop).expect("the count reaches 5");
    let mut request = greedy(&prompt, 40);
    request.stop = vec![stop.to_string()];
    let out = run(request);
    assert_eq!(out.reason, FinishReason::Stop);
    assert_eq!(out.text, full[..cut]);
}

#[test]
fn the_same_seed_gives_the_same_sample() {
    let sampled = |seed| {
        let mut r = greedy(&chat("Tell me a fun fact."), 24);
        r.sampling = SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            seed: Some(seed),
        };
        run(r).ids
    };
    assert_eq!(sampled(7), sampled(7));
    assert_ne!(sampled(7), sampled(8));
}

#[test]
fn concurrent_requests_are_batched_and_each_gets_its_own_answer() {
    let questions = [
        "What is 2+2?",
        "Name a color.",
        "What is the capital of Italy?",
        "Hi!",
        "Name an animal.",
        "What is water made of?",
    ];
    let alone: Vec<Vec<i32>> = questions
        .iter()
        .map(|q| run(greedy(&chat(q), 16)).ids)
        .collect();
    // More requests than slots, all at once: some wait for a slot, all finish.
    let receivers: Vec<_> = questions
        .iter()
        .map(|q| engine().generate(greedy(&chat(q), 16)).unwrap())
        .collect();
    let together: Vec<Vec<i32>> = receivers
        .into_iter()
        .map(|mut rx| {
            let mut ids = Vec::new();
            while let Some(event) = rx.blocking_recv() {
                match event {
                    Event::Token { id, .. } if id >= 0 => ids.push(id),
                    Event::Failed(m) => panic!("{m}"),
                    _ => {}
                }
            }
            ids
        })
        .collect();
    // Each sequence has its own KV stream, so batching changes no result, not even rounding.
    assert_eq!(alone, together);
}

#[test]
fn a_dropped_request_frees_its_slot() {
    for _ in 0..6 {
        let rx = engine()
            .generate(greedy(&chat("Write a long poem."), 500))
            .unwrap();
        drop(rx);
    }
    // With 4 slots, six abandoned long requests would block this one if slots leaked.
    let out = run(greedy(&chat("Say hi."), 8));
    assert!(!out.ids.is_empty());
}

#[test]
fn requests_beyond_the_context_are_refused() {
    let long = "word ".repeat(2000);
    let err = engine().generate(greedy(&long, 10)).unwrap_err();
    assert!(
        matches!(err, EngineError::ContextLength { context: 1024, .. }),
        "{err}"
    );
    let err = engine().generate(greedy("", 10)).unwrap_err();
    assert!(matches!(err, EngineError::EmptyPrompt));
}

#[test]
fn a_file_that_is_not_a_model_is_an_error() {
    let dir = std::env::temp_dir().join(format!("lutece-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"GGUF but not really").unwrap();
    assert!(matches!(
        Engine::load(EngineOptions::new(&bad)),
        Err(EngineError::Load { .. })
    ));
    assert!(matches!(
        Engine::load(EngineOptions::new(dir.join("missing.gguf"))),
        Err(EngineError::Load { .. })
    ));
}
