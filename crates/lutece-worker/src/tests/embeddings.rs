//! `/v1/embeddings` over HTTP with the real embedding model (all-MiniLM-L6-v2).

use std::sync::Arc;

use base64::Engine as _;
use lutece_engine::{Embedder, EngineOptions};
use serde_json::{Value, json};

use super::post;
use crate::{Worker, router};

const MODEL: &str = "all-minilm-l6-v2";

async fn start() -> String {
    let worker = tokio::task::spawn_blocking(|| {
        let options = EngineOptions::new(lutece_engine::testing::embedding_model());
        Worker::load(MODEL, options).unwrap()
    })
    .await
    .unwrap();
    assert!(worker.embedder().is_some() && worker.engine().is_none());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(Arc::new(worker))).await });
    format!("http://{addr}")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The error's `param` and `code`, with the status.
fn error(status: u16, body: &str) -> (u16, Value, Value) {
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{body}");
    (
        status,
        v["error"]["param"].clone(),
        v["error"]["code"].clone(),
    )
}

#[tokio::test]
async fn embeddings_as_openai_serves_them() {
    let base = start().await;
    let models: Value = reqwest::get(format!("{base}/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], MODEL);

    // One string: the embedder's own vector, and the tokens it read ([CLS] hello world [SEP]).
    let (status, body) = post(
        &base,
        "/v1/embeddings",
        json!({"model": MODEL, "input": "Hello world"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(one["object"], "list");
    assert_eq!(one["model"], MODEL);
    assert_eq!(one["data"][0]["object"], "embedding");
    assert_eq!(one["data"][0]["index"], 0);
    assert_eq!(one["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
    let hello = floats(&one["data"][0]["embedding"]);
    let direct = Embedder::load(lutece_engine::testing::embedding_model())
        .unwrap()
        .embed(&["Hello world"])
        .unwrap();
    assert_eq!(hello, direct[0]);
    // sentence-transformers' first values for this sentence.
    assert!((hello[0] + 0.034_477_3).abs() < 1e-5 && (hello[5] + 0.160_302_5).abs() < 1e-5);

    // Several, in order, with usage summed; `dimensions` equal to the model's is accepted.
    let texts = [
        "A man is eating food.",
        "Hello world",
        "The girl is carrying a baby.",
    ];
    let (status, body) = post(
        &base,
        "/v1/embeddings",
        json!({"model": MODEL, "input": texts, "dimensions": 384, "user": "someone"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let many: Value = serde_json::from_str(&body).unwrap();
    let data = many["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 384);
    }
    let batched = floats(&data[1]["embedding"]);
    let max_diff = batched
        .iter()
        .zip(&hello)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(max_diff <= 1e-5, "{max_diff}");
    assert_eq!(many["usage"]["prompt_tokens"], 8 + 4 + 9);

    // base64: the same vector as little-endian f32 bytes.
    let (status, body) = post(
        &base,
        "/v1/embeddings",
        json!({"model": MODEL, "input": ["Hello world"], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, hello);

    // Requests at the same time all get their answers.
    let answers = futures_util::future::join_all((0..4).map(|i| {
        let base = base.clone();
        async move {
            post(
                &base,
                "/v1/embeddings",
                json!({"model": MODEL, "input": format!("request {i}")}),
            )
            .await
        }
    }))
    .await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
}

#[tokio::test]
async fn embedding_errors_in_openai_shape() {
    let base = start().await;
    let ask = |extra: Value| {
        let mut body = json!({"model": MODEL, "input": "some text"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (json!({"input": []}), 400, json!("input"), Value::Null),
        (json!({"input": ""}), 400, json!("input[0]"), Value::Null),
        (
            json!({"input": vec!["x"; 2049]}),
            400,
            json!("input"),
            Value::Null,
        ),
        (
            json!({"input": [1, 2, 3]}),
            400,
            json!("input"),
            Value::Null,
        ),
        (
            json!({"input": [[1, 2], [3]]}),
            400,
            json!("input"),
            Value::Null,
        ),
        (
            json!({"input": "word ".repeat(300)}),
            400,
            json!("input[0]"),
            json!("context_length_exceeded"),
        ),
        (
            json!({"dimensions": 256}),
            400,
            json!("dimensions"),
            Value::Null,
        ),
        (
            json!({"encoding_format": "int8"}),
            400,
            json!("encoding_format"),
            Value::Null,
        ),
        (
            json!({"frobnicate": 1}),
            400,
            json!("frobnicate"),
            Value::Null,
        ),
        (
            json!({"model": "text-embedding-3-small"}),
            404,
            json!("model"),
            json!("model_not_found"),
        ),
    ];
    for (extra, status, param, code) in cases {
        let request = ask(extra.clone());
        let (got, body) = post(&base, "/v1/embeddings", request).await;
        assert_eq!(error(got, &body), (status, param, code), "{extra}: {body}");
    }
    let (status, body) = post(&base, "/v1/embeddings", json!({"model": MODEL})).await;
    assert_eq!(status, 400, "{body}");

    // An embedding model does not complete text.
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = post(&base, "/v1/chat/completions", chat).await;
    assert_eq!(error(status, &body).1, "model");
    assert!(
        body.contains("all-minilm-l6-v2 is an embedding model"),
        "{body}"
    );
    let completion = json!({"model": MODEL, "prompt": "hi"});
    let (status, body) = post(&base, "/v1/completions", completion).await;
    assert_eq!(status, 400, "{body}");
}
