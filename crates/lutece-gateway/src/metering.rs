//! Token metering: every answer's `usage` (prompt and completion tokens) is recorded against
//! the caller's tenant, key and model. A streamed answer reports usage only when asked
//! (`stream_options.include_usage`), so the gateway always asks the replica for it and drops
//! the usage chunk again when the client did not ask.

use axum::body::Bytes;
use serde::Deserialize;

use crate::proxy::Caller;

/// Tokens one request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct TokenUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// Where metered usage goes (the server aggregates it into the usage records).
pub trait Meter: Send + Sync + 'static {
    /// Counts one answer's tokens against the caller's tenant and key, `project` and `model`.
    fn record(&self, caller: &Caller, project: &str, model: &str, usage: TokenUsage);
}

/// The request as the replica should see it: a stream always asks for usage. Returns the body
/// to send and whether the usage chunk must be dropped on the way back (the client did not
/// ask for it). A body that is not an object is passed through for the replica to refuse.
pub fn ask_for_usage(body: &Bytes) -> (Bytes, bool) {
    #[derive(Deserialize)]
    struct Streaming {
        #[serde(default)]
        stream: Option<serde_json::Value>,
        #[serde(default)]
        stream_options: Option<serde_json::Value>,
    }
    let Ok(view) = serde_json::from_slice::<Streaming>(body) else {
        return (body.clone(), false);
    };
    // Not a stream, or the client said what it wants: the body goes as it is.
    if view.stream != Some(serde_json::Value::Bool(true)) || view.stream_options.is_some() {
        return (body.clone(), false);
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (body.clone(), false);
    };
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "stream_options".into(),
            serde_json::json!({ "include_usage": true }),
        );
    }
    match serde_json::to_vec(&value) {
        Ok(bytes) => (Bytes::from(bytes), true),
        Err(_) => (body.clone(), false),
    }
}

/// The usage in a complete (not streamed) answer.
pub fn usage_of_answer(body: &[u8]) -> Option<TokenUsage> {
    #[derive(Deserialize)]
    struct Answer {
        usage: Option<TokenUsage>,
    }
    serde_json::from_slice::<Answer>(body).ok()?.usage
}

/// Splits a streamed answer into its events as bytes arrive, to find the usage chunk.
#[derive(Debug, Default)]
pub struct UsageTap {
    pending: Vec<u8>,
    /// Drop the usage chunk (the gateway asked for it, the client did not).
    pub strip: bool,
    pub usage: Option<TokenUsage>,
}

impl UsageTap {
    pub fn new(strip: bool) -> Self {
        Self {
            strip,
            ..Self::default()
        }
    }

    /// Takes the next bytes of the stream; returns the bytes to pass on (whole events only,
    /// the rest waits for the next call).
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::with_capacity(self.pending.len());
        let mut start = 0;
        while let Some(end) = find_event_end(&self.pending[start..]) {
            let event = &self.pending[start..start + end];
            let usage = usage_of_event(event);
            if usage.is_none() || !self.strip {
                out.extend_from_slice(event);
            }
            if usage.is_some() {
                self.usage = usage;
            }
            start += end;
        }
        self.pending.drain(..start);
        Bytes::from(out)
    }

    /// Whatever is left when the stream ends (an unterminated event passes as it is).
    pub fn finish(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.pending))
    }
}

/// The usage of a usage chunk (`"choices": []` with `usage`); None for any other event.
fn usage_of_event(event: &[u8]) -> Option<TokenUsage> {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Vec<serde_json::Value>,
        usage: Option<TokenUsage>,
    }
    let json = event
        .strip_prefix(b"data: ")
        .or_else(|| event.strip_prefix(b"data:"))?;
    // Cheap test first: most chunks carry text, not usage.
    if !contains(json, b"\"usage\"") {
        return None;
    }
    match serde_json::from_slice::<Chunk>(json.trim_ascii()) {
        Ok(Chunk {
            choices,
            usage: Some(usage),
        }) if choices.is_empty() => Some(usage),
        _ => None,
    }
}

/// The length of the first complete event (through its blank line), if there is one.
fn find_event_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n").map(|i| i + 2)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_ask_for_usage_only_when_the_client_did_not_say() {
        let body = |s: &str| Bytes::from(s.to_owned());
        let (sent, strip) = ask_for_usage(&body(r#"{"model":"m","stream":true}"#));
        assert!(strip);
        let sent: serde_json::Value = serde_json::from_slice(&sent).unwrap();
        assert_eq!(sent["stream_options"]["include_usage"], true);
        assert_eq!(sent["model"], "m");
        for unchanged in [
            r#"{"model":"m"}"#,
            r#"{"model":"m","stream":false}"#,
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
            r#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#,
            r#"{"model":"m","stream":true,"stream_options":"odd"}"#,
            r#"not json"#,
        ] {
            let (sent, strip) = ask_for_usage(&body(unchanged));
            assert_eq!(
                (sent.as_ref(), strip),
                (unchanged.as_bytes(), false),
                "{unchanged}"
            );
        }
    }

    #[test]
    fn the_usage_chunk_is_read_and_stripped_across_any_split() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"the \\\"usage\\\" word\"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n",
            "data: [DONE]\n\n",
        )
        .as_bytes();
        for strip in [false, true] {
            for split in 0..stream.len() {
                let mut tap = UsageTap::new(strip);
                let mut out = tap.feed(&stream[..split]).to_vec();
                out.extend_from_slice(&tap.feed(&stream[split..]));
                out.extend_from_slice(&tap.finish());
                assert_eq!(
                    tap.usage,
                    Some(TokenUsage {
                        prompt_tokens: 7,
                        completion_tokens: 3
                    })
                );
                let text = String::from_utf8(out).unwrap();
                assert_eq!(text.contains("prompt_tokens"), !strip, "{text}");
                assert!(
                    text.contains("the \\\"usage\\\" word") && text.ends_with("data: [DONE]\n\n")
                );
            }
        }
        assert_eq!(
            usage_of_answer(br#"{"usage":{"prompt_tokens":2,"completion_tokens":5}}"#),
            Some(TokenUsage {
                prompt_tokens: 2,
                completion_tokens: 5
            })
        );
        assert_eq!(usage_of_answer(b"{}"), None);
    }
}
