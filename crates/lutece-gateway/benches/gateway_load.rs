//! The gateway benchmark's two programs in one (`bench/gateway.sh` drives them):
//!
//! - `upstream --port P --latency-ms L [--chunks N --chunk-ms M]`: a fixed-latency
//!   OpenAI-compatible server. `POST /v1/chat/completions` answers after L ms; a stream sends N
//!   chunks M ms apart after the first L ms, then the usage chunk and `[DONE]`.
//! - `requests --url U --key K --model M --concurrency C --seconds S`: C connections send chat
//!   requests back to back for S seconds; prints one JSON line with requests/s and latency
//!   percentiles (µs).
//! - `streams --url U --key K --model M --streams N`: N streamed requests at once; prints how
//!   many completed and the longest wait between two chunks of any stream.
//!
//! Run with `cargo bench -p lutece-gateway --bench gateway_load -- MODE …`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Failure> {
    // `cargo bench` adds `--bench`; it is not ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let number = |name: &str| -> Result<u64, Failure> { Ok(flag(&args, name)?.parse()?) };
    let runtime = tokio::runtime::Runtime::new()?;
    match args.first().map(String::as_str) {
        Some("upstream") => {
            let shape = Shape {
                latency: Duration::from_millis(number("--latency-ms")?),
                chunks: number("--chunks").unwrap_or(16),
                chunk_gap: Duration::from_millis(number("--chunk-ms").unwrap_or(10)),
            };
            runtime.block_on(upstream(number("--port")?, shape))
        }
        Some("requests") => {
            let target = Target::from_args(&args)?;
            let (concurrency, seconds) = (number("--concurrency")?, number("--seconds")?);
            runtime.block_on(requests(target, concurrency, Duration::from_secs(seconds)))
        }
        Some("streams") => {
            let target = Target::from_args(&args)?;
            runtime.block_on(streams(target, number("--streams")?))
        }
        _ => Err("usage: gateway_load upstream|requests|streams …".into()),
    }
}

/// The value after `--name`.
fn flag(args: &[String], name: &str) -> Result<String, Failure> {
    let at = args.iter().position(|a| a == name);
    let value = at.and_then(|i| args.get(i + 1)).cloned();
    value.ok_or_else(|| format!("missing {name} VALUE").into())
}

/// How the fixed-latency upstream answers.
#[derive(Clone, Copy)]
struct Shape {
    latency: Duration,
    chunks: u64,
    chunk_gap: Duration,
}

async fn upstream(port: u64, shape: Shape) -> Result<(), Failure> {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/v1/chat/completions",
            post(move |body: Bytes| answer(shape, body)),
        );
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

const USAGE: &str = r#""usage":{"prompt_tokens":12,"completion_tokens":16,"total_tokens":28}"#;

async fn answer(shape: Shape, body: Bytes) -> Response {
    let streamed = serde_json::from_slice::<serde_json::Value>(&body)
        .is_ok_and(|v| v["stream"] == serde_json::Value::Bool(true));
    // Even a zero sleep waits for the timer's next millisecond tick.
    if !shape.latency.is_zero() {
        tokio::time::sleep(shape.latency).await;
    }
    if !streamed {
        let text = format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion","created":0,"model":"fixed","choices":[{{"index":0,"message":{{"role":"assistant","content":"a fixed answer"}},"finish_reason":"stop"}}],{USAGE}}}"#
        );
        return response("application/json", Body::from(text));
    }
    let chunks = futures_util::stream::unfold(0, move |sent| async move {
        let event = if sent < shape.chunks {
            if sent > 0 {
                tokio::time::sleep(shape.chunk_gap).await;
            }
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"fixed\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{sent} \"}},\"finish_reason\":null}}]}}\n\n"
            )
        } else if sent == shape.chunks {
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"fixed\",\"choices\":[],{USAGE}}}\n\ndata: [DONE]\n\n"
            )
        } else {
            return None;
        };
        Some((Ok::<_, std::convert::Infallible>(event), sent + 1))
    });
    response("text/event-stream", Body::from_stream(chunks))
}

fn response(content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    response
}

/// Where the load goes.
#[derive(Clone)]
struct Target {
    url: String,
    key: String,
    model: String,
}

impl Target {
    fn from_args(args: &[String]) -> Result<Self, Failure> {
        Ok(Self {
            url: format!("{}/v1/chat/completions", flag(args, "--url")?),
            key: flag(args, "--key")?,
            model: flag(args, "--model")?,
        })
    }

    fn body(&self, stream: bool) -> String {
        serde_json::json!({
            "model": self.model,
            "messages": [{"role": "user", "content": "Say something."}],
            "max_tokens": 16,
            "stream": stream,
        })
        .to_string()
    }
}

fn client(connections: usize) -> Result<reqwest::Client, Failure> {
    Ok(reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(120))
        .build()?)
}

async fn requests(target: Target, concurrency: u64, length: Duration) -> Result<(), Failure> {
    let http = client(concurrency as usize)?;
    let body = Bytes::from(target.body(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, target, body) = (http.clone(), target.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<u64> = Vec::new();
            let mut errors = 0u64;
            while started.elapsed() < length {
                let sent = Instant::now();
                let answer = http
                    .post(&target.url)
                    .bearer_auth(&target.key)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let ok = match answer {
                    Ok(answer) if answer.status().is_success() => answer.bytes().await.is_ok(),
                    _ => false,
                };
                if ok {
                    latencies.push(sent.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut some, failed) = worker.await?;
        latencies.append(&mut some);
        errors += failed;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or(0)
    };
    println!(
        "{}",
        serde_json::json!({
            "concurrency": concurrency,
            "requests": latencies.len(),
            "errors": errors,
            "rps": latencies.len() as f64 / elapsed,
            "p50_us": at(0.50),
            "p90_us": at(0.90),
            "p99_us": at(0.99),
            "max_us": latencies.last().copied().unwrap_or(0),
        })
    );
    Ok(())
}

async fn streams(target: Target, count: u64) -> Result<(), Failure> {
    let http = client(count as usize)?;
    let body = Bytes::from(target.body(true));
    let started = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..count {
        let (http, target, body) = (http.clone(), target.clone(), body.clone());
        streams.push(tokio::spawn(async move {
            let answer = http
                .post(&target.url)
                .bearer_auth(&target.key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .ok()
                .filter(|a| a.status().is_success())?;
            let mut chunks = answer.bytes_stream();
            let mut last = Instant::now();
            let mut longest_gap = Duration::ZERO;
            let mut text = Vec::new();
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.ok()?;
                longest_gap = longest_gap.max(last.elapsed());
                last = Instant::now();
                text.extend_from_slice(&chunk);
            }
            text.ends_with(b"data: [DONE]\n\n").then_some(longest_gap)
        }));
    }
    let mut gaps = Vec::new();
    for stream in streams {
        if let Some(gap) = stream.await? {
            gaps.push(gap.as_millis() as u64);
        }
    }
    gaps.sort_unstable();
    let p99 = gaps
        .get((gaps.len() as f64 * 0.99) as usize)
        .or(gaps.last())
        .copied();
    println!(
        "{}",
        serde_json::json!({
            "streams": count,
            "completed": gaps.len(),
            "seconds": started.elapsed().as_secs_f64(),
            "p99_longest_gap_ms": p99,
            "longest_gap_ms": gaps.last(),
            "stalled_over_1s": gaps.iter().filter(|g| **g > 1000).count(),
        })
    );
    Ok(())
}
