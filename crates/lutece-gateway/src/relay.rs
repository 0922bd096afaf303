//! One request's exchange with a replica, and its answer relayed to the client with its usage
//! metered. The exchange runs as a task of its own, so a client that leaves before the answer
//! arrives does not stop it being metered. A stream is metered for the latest usage the
//! gateway read: the whole at its end, or, from the built-in engine (which reports usage so
//! far in every chunk), what it had sent until the client hung up or the replica broke off.
//! The replica's connection is dropped with the client's, so the engine stops generating. An
//! external engine that reports usage only at the end is not metered for a stream its client
//! abandons.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::error::OpenAiError;
use crate::limits::Limiter;
use crate::metering::{self, Asked, Meter, TokenUsage, UsageTap};
use crate::proxy::Caller;
use crate::routing::InFlight;

/// Where an answer's usage goes, once: the meter and the limiter's token buckets.
pub(crate) struct Recorder {
    pub(crate) meter: Arc<dyn Meter>,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) caller: Caller,
    pub(crate) project: String,
    pub(crate) model: String,
}

impl Recorder {
    fn record(self, usage: Option<TokenUsage>) {
        let Some(usage) = usage else {
            return;
        };
        self.meter
            .record(&self.caller, &self.project, &self.model, usage);
        let tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        self.limiter
            .spend_tokens(&self.caller.subject(), tokens, Instant::now());
    }
}

/// One request for a replica: where, what, and for whom.
pub(crate) struct Exchange {
    pub(crate) http: reqwest::Client,
    pub(crate) url: String,
    pub(crate) body: Bytes,
    /// What the gateway asked of a stream that the client did not.
    pub(crate) asked: Asked,
    pub(crate) recorder: Recorder,
    /// Counts the request against its replica until the answer is through.
    pub(crate) in_flight: InFlight,
}

impl Exchange {
    /// Sends the request and relays the answer, in a task of its own: a client that leaves
    /// before the answer arrives does not stop it being metered.
    pub(crate) async fn run(self) -> Result<Response, OpenAiError> {
        tokio::spawn(self.send())
            .await
            .unwrap_or_else(|_| Err(OpenAiError::internal("the request's relay failed")))
    }

    async fn send(self) -> Result<Response, OpenAiError> {
        let upstream = self
            .http
            .post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(self.body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "replica unreachable");
                OpenAiError::new(
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    "the model replica did not answer",
                )
            })?;
        let status = upstream.status();
        let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
        let streamed = content_type
            .as_ref()
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let body = if streamed {
            let relay = Relay {
                stream: Some(upstream.bytes_stream().boxed()),
                tap: UsageTap::new(self.asked),
                recorder: Some(self.recorder),
                in_flight: Some(self.in_flight),
            };
            Body::from_stream(futures_util::stream::unfold(relay, Relay::next))
        } else {
            let bytes = upstream.bytes().await.map_err(|e| {
                tracing::warn!(error = %e, "replica answer cut short");
                OpenAiError::new(
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    "the model replica's answer was cut short",
                )
            })?;
            drop(self.in_flight);
            if status.is_success() {
                self.recorder.record(metering::usage_of_answer(&bytes));
            }
            Body::from(bytes)
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        if let Some(content_type) = content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        Ok(response)
    }
}

/// A streamed answer on its way to the client, its usage read (and what the client did not
/// ask for taken out).
struct Relay {
    stream: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    tap: UsageTap,
    /// Taken when the usage is recorded.
    recorder: Option<Recorder>,
    in_flight: Option<InFlight>,
}

impl Relay {
    /// The next bytes for the client; at the end, the usage is recorded.
    async fn next(mut self) -> Option<(reqwest::Result<Bytes>, Self)> {
        let stream = self.stream.as_mut()?;
        match stream.next().await {
            Some(Ok(chunk)) => {
                let out = self.tap.feed(&chunk);
                Some((Ok(out), self))
            }
            Some(Err(error)) => {
                // The replica broke off: what it reported is all there is.
                self.end();
                Some((Err(error), self))
            }
            None => {
                self.end();
                let rest = self.tap.finish();
                Some((Ok(rest), self))
            }
        }
    }

    /// Records the latest usage seen (once) and lets the replica go.
    fn end(&mut self) {
        self.stream = None;
        self.in_flight = None;
        if let Some(recorder) = self.recorder.take() {
            recorder.record(self.tap.usage);
        }
    }
}

impl Drop for Relay {
    /// The client left (or the stream ended): the usage so far is recorded, and the replica's
    /// connection closes, which stops its generation.
    fn drop(&mut self) {
        self.end();
    }
}
