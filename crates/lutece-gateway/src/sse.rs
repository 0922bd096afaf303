//! Server-sent events as OpenAI frames them: `data: {json}\n\n` per chunk, `data: [DONE]\n\n`
//! at the end, and an error mid-stream as `data: {"error": …}\n\n`.

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Serialize;

pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// One `data:` event.
pub fn event(value: &impl Serialize) -> Bytes {
    let mut line = b"data: ".to_vec();
    // Serialising our own wire types into a Vec cannot fail.
    serde_json::to_writer(&mut line, value).unwrap_or_default();
    line.extend_from_slice(b"\n\n");
    Bytes::from(line)
}

/// A streaming response with the headers SSE clients expect.
pub fn response(body: axum::body::Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
