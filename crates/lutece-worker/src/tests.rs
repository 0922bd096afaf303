//! The worker over HTTP with the real default model.

use std::sync::Arc;

use lutece_engine::EngineOptions;
use serde_json::{Value, json};

use crate::{Worker, router};

mod embeddings;

async fn start() -> String {
    let worker = tokio::task::spawn_blocking(|| {
        let mut options = EngineOptions::new(lutece_engine::testing::default_model());
        options.slots = 4;
        options.context_per_request = 1024;
        Worker::load("smollm2-135m-instruct", options).unwrap()
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(Arc::new(worker))).await });
    format!("http://{addr}")
}

async fn post(base: &str, path: &str, body: Value) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn chat_completions_stream_and_errors() {
    let base = start().await;
    let models: Value = reqwest::get(format!("{base}/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "smollm2-135m-instruct");

    let ask = json!({"model": "smollm2-135m-instruct", "temperature": 0, "max_tokens": 12,
        "messages": [{"role": "user", "content": "What is 2+2?"}]});
    let (status, body) = post(&base, "/v1/chat/completions", ask.clone()).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let text = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains('4'), "{text}");
    assert_eq!(answer["object"], "chat.completion");
    let usage = &answer["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );

    // Streamed: the same text, framed as OpenAI frames it.
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (status, body) = post(&base, "/v1/chat/completions", streamed).await;
    assert_eq!(status, 200);
    let events: Vec<&str> = body.split_terminator("\n\n").collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let joined: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(joined, text);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"], answer["usage"]);
    assert!(chunks.iter().rev().nth(1).unwrap()["choices"][0]["finish_reason"].is_string());

    // Errors in OpenAI's shape.
    let mut wrong_model = ask.clone();
    wrong_model["model"] = json!("gpt-9");
    let (status, body) = post(&base, "/v1/chat/completions", wrong_model).await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "model_not_found"
    );
    let mut unknown = ask.clone();
    unknown["frobnicate"] = json!(1);
    let (status, body) = post(&base, "/v1/chat/completions", unknown).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["param"],
        "frobnicate"
    );
    let mut hot = ask.clone();
    hot["temperature"] = json!(7);
    assert_eq!(post(&base, "/v1/chat/completions", hot).await.0, 400);
    let embed = json!({"model": "smollm2-135m-instruct", "input": "hello"});
    let (status, body) = post(&base, "/v1/embeddings", embed).await;
    assert_eq!(status, 400);
    assert!(body.contains("is a generative model"), "{body}");
    let long = json!({"model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": "word ".repeat(3000)}]});
    let (status, body) = post(&base, "/v1/chat/completions", long).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "context_length_exceeded"
    );
}

#[tokio::test]
async fn completions_with_n_seed_and_stop() {
    let base = start().await;
    let ask = json!({"model": "smollm2-135m-instruct", "prompt": "Once upon a time",
        "max_tokens": 16, "temperature": 0.8, "seed": 11, "n": 3});
    let (status, first) = post(&base, "/v1/completions", ask.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = post(&base, "/v1/completions", ask).await;
    let texts = |body: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(body).unwrap();
        v["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(texts(&first).len(), 3);
    assert_eq!(
        texts(&first),
        texts(&second),
        "the same seed gives the same choices"
    );
    let stop = json!({"model": "smollm2-135m-instruct", "prompt": "1, 2, 3, 4,",
        "max_tokens": 16, "temperature": 0, "stop": [" 7"]});
    let (_, body) = post(&base, "/v1/completions", stop).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert!(
        !v["choices"][0]["text"].as_str().unwrap().contains('7'),
        "{body}"
    );
}
