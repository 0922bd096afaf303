//! Token metering: every answer's `usage` (prompt and completion tokens) is recorded against
//! the caller's tenant, key and model. A streamed answer reports usage only when asked
//! (`stream_options.include_usage`), so the gateway always asks the replica for it and drops
//! the usage chunk again when the client did not ask.

use axum::body::Bytes;
use serde::Deserialize;

use crate::error::OpenAiError;
use crate::proxy::Caller;

/// Tokens one request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct TokenUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

impl TokenUsage {
    /// A replica's report, held to what one request can use: a replica (a tenant's own
    /// engine, say) is not trusted to report sane numbers, and sums must not overflow.
    fn capped(self) -> Self {
        let cap = u64::from(u32::MAX);
        Self {
            prompt_tokens: self.prompt_tokens.min(cap),
            completion_tokens: self.completion_tokens.min(cap),
        }
    }
}

/// Where metered usage goes (the server aggregates it into the usage records).
pub trait Meter: Send + Sync + 'static {
    /// Counts one answer's tokens against the caller's tenant and key, `project` and `model`.
    fn record(&self, caller: &Caller, project: &str, model: &str, usage: TokenUsage);
}

/// What the gateway asked of a stream that the client did not, to undo in the answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Asked {
    /// Drop the last chunk, which carries the whole usage.
    pub strip_last: bool,
    /// Remove the usage so far from every other chunk.
    pub strip_running: bool,
}

/// The request as the replica should see it: a stream always asks for the usage chunk and,
/// from a replica that can report it (`running`: the built-in engine), for the usage so far in
/// every chunk (`continuous_usage_stats`), so that a stream its client abandons is metered for
/// what was generated. Returns the body to send and what to undo on the way back. A body that
/// is not an object is passed through for the replica to refuse; a `stream_options` that is
/// neither an object nor null is refused here (it would stream unmetered otherwise).
pub fn ask_for_usage(body: &Bytes, running: bool) -> Result<(Bytes, Asked), OpenAiError> {
    #[derive(Deserialize)]
    struct Streaming {
        #[serde(default)]
        stream: Option<serde_json::Value>,
        #[serde(default)]
        stream_options: Option<serde_json::Value>,
    }
    let unchanged = Ok((body.clone(), Asked::default()));
    let Ok(view) = serde_json::from_slice::<Streaming>(body) else {
        return unchanged;
    };
    if view.stream != Some(serde_json::Value::Bool(true)) {
        return unchanged;
    }
    let asked = |name: &str| match &view.stream_options {
        None | Some(serde_json::Value::Null) => Some(false),
        Some(serde_json::Value::Object(options)) => {
            Some(options.get(name) == Some(&serde_json::Value::Bool(true)))
        }
        Some(_) => None,
    };
    let (Some(last), Some(so_far)) = (asked("include_usage"), asked("continuous_usage_stats"))
    else {
        return Err(OpenAiError::invalid_param(
            "stream_options",
            "'stream_options' must be an object",
        ));
    };
    let wanted = Asked {
        strip_last: !last,
        strip_running: running && !so_far,
    };
    if wanted == Asked::default() {
        return unchanged;
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return unchanged;
    };
    let Some(object) = value.as_object_mut() else {
        return unchanged;
    };
    let options = object
        .entry("stream_options")
        .or_insert_with(|| serde_json::json!({}));
    if options.is_null() {
        *options = serde_json::json!({});
    }
    if let Some(options) = options.as_object_mut() {
        options.insert("include_usage".into(), true.into());
        if running {
            options.insert("continuous_usage_stats".into(), true.into());
        }
    }
    match serde_json::to_vec(&value) {
        Ok(bytes) => Ok((Bytes::from(bytes), wanted)),
        Err(_) => unchanged,
    }
}

/// The usage in a complete (not streamed) answer.
pub fn usage_of_answer(body: &[u8]) -> Option<TokenUsage> {
    #[derive(Deserialize)]
    struct Answer {
        usage: Option<TokenUsage>,
    }
    Some(serde_json::from_slice::<Answer>(body).ok()?.usage?.capped())
}

/// Splits a streamed answer into its events as bytes arrive, to read the usage (the latest
/// seen: so far, or the whole) and take out what the client did not ask for.
#[derive(Debug, Default)]
pub struct UsageTap {
    pending: Vec<u8>,
    asked: Asked,
    pub usage: Option<TokenUsage>,
}

impl UsageTap {
    pub fn new(asked: Asked) -> Self {
        Self {
            asked,
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
            match usage_of_event(event) {
                None => out.extend_from_slice(event),
                Some((usage, last)) => {
                    self.usage = Some(usage);
                    match (last, self.asked) {
                        (
                            true,
                            Asked {
                                strip_last: true, ..
                            },
                        ) => {}
                        (
                            false,
                            Asked {
                                strip_running: true,
                                ..
                            },
                        ) => match without_usage(event) {
                            Some(stripped) => out.extend_from_slice(&stripped),
                            None => out.extend_from_slice(event),
                        },
                        _ => out.extend_from_slice(event),
                    }
                }
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

/// The usage an event carries, and whether it is the last chunk (no choices, the whole
/// usage) rather than a chunk with the usage so far; None for any other event.
fn usage_of_event(event: &[u8]) -> Option<(TokenUsage, bool)> {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Vec<serde::de::IgnoredAny>,
        usage: Option<TokenUsage>,
    }
    let json = event
        .strip_prefix(b"data: ")
        .or_else(|| event.strip_prefix(b"data:"))?;
    // Cheap test first: most chunks of most streams carry text, not usage.
    if !contains(json, b"\"usage\"") {
        return None;
    }
    let chunk = serde_json::from_slice::<Chunk>(json.trim_ascii()).ok()?;
    Some((chunk.usage?.capped(), chunk.choices.is_empty()))
}

/// The event without its `"usage":{…}` member, written last by the built-in engine (a flat
/// object of counts, then the chunk's closing brace); None when the event is not so shaped.
fn without_usage(event: &[u8]) -> Option<Vec<u8>> {
    let marker = b",\"usage\":{";
    let start = event.windows(marker.len()).rposition(|w| w == marker)?;
    let end = start + event[start..].iter().position(|b| *b == b'}')? + 1;
    if !event[end..].trim_ascii_start().starts_with(b"}") {
        return None;
    }
    let mut out = Vec::with_capacity(event.len());
    out.extend_from_slice(&event[..start]);
    out.extend_from_slice(&event[end..]);
    Some(out)
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
    fn streams_always_ask_for_usage_and_remember_what_the_client_did_not() {
        let body = |s: &str| Bytes::from(s.to_owned());
        let sent_as = |sent: &Bytes| serde_json::from_slice::<serde_json::Value>(sent).unwrap();
        let (sent, asked) = ask_for_usage(&body(r#"{"model":"m","stream":true}"#), false).unwrap();
        assert_eq!(
            asked,
            Asked {
                strip_last: true,
                strip_running: false
            }
        );
        assert_eq!(
            sent_as(&sent)["stream_options"],
            serde_json::json!({"include_usage": true})
        );
        assert_eq!(sent_as(&sent)["model"], "m");
        // A replica that reports usage so far is asked for it too; the client's own choice of
        // include_usage: false is overridden and undone on the way back.
        let own = r#"{"model":"m","stream":true,"stream_options":{"include_usage":false}}"#;
        let (sent, asked) = ask_for_usage(&body(own), true).unwrap();
        assert_eq!(
            asked,
            Asked {
                strip_last: true,
                strip_running: true
            }
        );
        assert_eq!(
            sent_as(&sent)["stream_options"],
            serde_json::json!({"include_usage": true, "continuous_usage_stats": true})
        );
        let both = r#"{"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}"#;
        for unchanged in [
            (r#"{"model":"m"}"#, true),
            (r#"{"model":"m","stream":false}"#, true),
            (
                r#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#,
                false,
            ),
            (both, true),
            (r#"not json"#, true),
        ] {
            let (sent, asked) = ask_for_usage(&body(unchanged.0), unchanged.1).unwrap();
            assert_eq!(
                (sent.as_ref(), asked),
                (unchanged.0.as_bytes(), Asked::default()),
                "{unchanged:?}"
            );
        }
        // A null is no options; anything else that is not an object is refused.
        let null = r#"{"stream":true,"stream_options":null}"#;
        let (sent, asked) = ask_for_usage(&body(null), false).unwrap();
        assert!(asked.strip_last);
        assert_eq!(sent_as(&sent)["stream_options"]["include_usage"], true);
        for odd in [r#""odd""#, "[false]", "3"] {
            let sent = format!(r#"{{"stream":true,"stream_options":{odd}}}"#);
            assert!(ask_for_usage(&body(&sent), true).is_err(), "{odd}");
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
                let mut tap = UsageTap::new(Asked {
                    strip_last: strip,
                    strip_running: false,
                });
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

    #[test]
    fn usage_so_far_is_kept_from_every_chunk_and_taken_out_when_not_asked() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        )
        .as_bytes();
        let mut tap = UsageTap::new(Asked {
            strip_last: true,
            strip_running: true,
        });
        let out = String::from_utf8(tap.feed(stream).to_vec()).unwrap();
        assert_eq!(
            out,
            concat!(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"}}]}\n\n",
            )
        );
        // A client that hangs up now is metered for what was generated so far.
        assert_eq!(
            tap.usage,
            Some(TokenUsage {
                prompt_tokens: 5,
                completion_tokens: 2
            })
        );
        let mut kept = UsageTap::new(Asked::default());
        assert_eq!(kept.feed(stream).as_ref(), stream);
    }
}
