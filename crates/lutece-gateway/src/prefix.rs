//! Prefix affinity: requests that begin with the same long text (a shared system prompt, a
//! conversation that goes on, few-shot examples) should reach the replica that already holds
//! that prefix in its KV cache, as engines with prefix caching reuse it.
//!
//! The prompt is cut into blocks of [`BLOCK_BYTES`]; each block gets a hash that covers every
//! byte before it too, so equal hashes mean equal prefixes. An [`Affinity`] index remembers,
//! for each prefix hash, the replica that last served it; a request goes to the replica with
//! the longest remembered prefix unless that replica is much busier than the least busy one.
//! The index is bounded: two generations of maps, the older dropped when the newer fills up,
//! so prefixes not seen for a while are forgotten first.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

use serde::Deserialize;

/// Bytes of prompt text per block: about 64 tokens of English.
pub const BLOCK_BYTES: usize = 256;
/// Prefix blocks considered at most (64 KiB of text).
pub const MAX_BLOCKS: usize = 256;
/// Prefix hashes remembered per generation, per model.
const GENERATION_CAPACITY: usize = 1 << 16;

/// The chained hashes of a prompt's whole blocks, shortest prefix first; empty when the prompt
/// is shorter than one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixHashes(pub Vec<u64>);

/// Cuts text fed piece by piece into blocks and hashes each prefix.
#[derive(Debug, Default)]
struct BlockHasher {
    hasher: DefaultHasher,
    filled: usize,
    hashes: Vec<u64>,
}

impl BlockHasher {
    /// Feeds bytes; false once enough blocks are hashed.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.hashes.len() == MAX_BLOCKS {
                return false;
            }
            let take = (BLOCK_BYTES - self.filled).min(bytes.len());
            self.hasher.write(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled == BLOCK_BYTES {
                self.hashes.push(self.hasher.finish());
                self.filled = 0;
            }
        }
        self.hashes.len() < MAX_BLOCKS
    }
}

/// The prompt of a chat or completion request, as far as routing reads it.
#[derive(Deserialize)]
struct Prompted {
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    prompt: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    content: Option<serde_json::Value>,
}

impl PrefixHashes {
    /// The prefix hashes of a request body: its messages (role and text, in order) or its
    /// prompt. Anything else (embeddings, bodies the replica will refuse) has none.
    pub fn of_request(body: &[u8]) -> Self {
        let Ok(request) = serde_json::from_slice::<Prompted>(body) else {
            return Self::default();
        };
        let mut blocks = BlockHasher::default();
        if let Some(messages) = request.messages {
            for message in messages {
                let role = message.role.as_deref().unwrap_or("");
                if !(blocks.feed(role.as_bytes()) && blocks.feed(b"\x1e")) {
                    break;
                }
                if !feed_text(&mut blocks, message.content.as_ref()) || !blocks.feed(b"\x1f") {
                    break;
                }
            }
        } else if let Some(serde_json::Value::String(prompt)) = &request.prompt {
            blocks.feed(prompt.as_bytes());
        }
        Self(blocks.hashes)
    }
}

/// Feeds a message's text: a string, or the text parts of a list of content parts.
fn feed_text(blocks: &mut BlockHasher, content: Option<&serde_json::Value>) -> bool {
    match content {
        Some(serde_json::Value::String(text)) => blocks.feed(text.as_bytes()),
        Some(serde_json::Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(|t| t.as_str()))
            .all(|text| blocks.feed(text.as_bytes())),
        _ => true,
    }
}

/// Which replica served which prefix last, for one model.
#[derive(Debug, Default)]
pub struct Affinity {
    current: HashMap<u64, String>,
    previous: HashMap<u64, String>,
}

impl Affinity {
    /// The replica (base URL) that served the longest of these prefixes, among `alive`, with
    /// the number of blocks it holds.
    pub fn best(
        &self,
        hashes: &PrefixHashes,
        alive: impl Fn(&str) -> bool,
    ) -> Option<(String, usize)> {
        hashes.0.iter().enumerate().rev().find_map(|(i, hash)| {
            let url = self.current.get(hash).or_else(|| self.previous.get(hash))?;
            alive(url).then(|| (url.clone(), i + 1))
        })
    }

    /// Remembers that `url` now holds these prefixes.
    pub fn remember(&mut self, hashes: &PrefixHashes, url: &str) {
        for hash in &hashes.0 {
            if self.current.len() >= GENERATION_CAPACITY {
                self.previous = std::mem::take(&mut self.current);
            }
            match self.current.get_mut(hash) {
                Some(held) if held == url => {}
                Some(held) => url.clone_into(held),
                None => {
                    self.current.insert(*hash, url.to_owned());
                }
            }
        }
    }

    /// Prefix hashes remembered (both generations, counting repeats once per generation).
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(system: &str, user: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": [{"type": "text", "text": user}]},
            ],
        }))
        .unwrap()
    }

    #[test]
    fn equal_prefixes_hash_equal_and_a_difference_ends_the_match() {
        let system = "You are a careful assistant. ".repeat(40); // 1160 bytes
        let a = PrefixHashes::of_request(&chat(&system, "What is 2+2?"));
        let b = PrefixHashes::of_request(&chat(&system, "Name a colour."));
        // system\x1e + 1160 bytes + \x1f + user\x1e + the question: four whole blocks.
        assert_eq!(a.0.len(), 4);
        assert_eq!(a.0[..4], b.0[..4]);
        let other = PrefixHashes::of_request(&chat(&"Be brief. ".repeat(120), "What is 2+2?"));
        assert!(other.0.iter().zip(&a.0).all(|(x, y)| x != y));
        // A completion prompt, a short request and a body without a prompt.
        let prompt = serde_json::json!({"model": "m", "prompt": "x".repeat(600)});
        let prompt = PrefixHashes::of_request(&serde_json::to_vec(&prompt).unwrap());
        assert_eq!(prompt.0.len(), 2);
        assert!(PrefixHashes::of_request(&chat("Hi", "Hello")).0.is_empty());
        assert!(
            PrefixHashes::of_request(br#"{"model":"e","input":"text"}"#)
                .0
                .is_empty()
        );
        assert!(PrefixHashes::of_request(b"not json").0.is_empty());
        // Very long prompts are hashed up to MAX_BLOCKS.
        let huge = PrefixHashes::of_request(&chat(&"y".repeat(200_000), "?"));
        assert_eq!(huge.0.len(), MAX_BLOCKS);
    }

    #[test]
    fn the_longest_remembered_prefix_on_a_live_replica_wins() {
        let hashes = |n: u64| PrefixHashes((0..n).collect());
        let mut affinity = Affinity::default();
        assert_eq!(affinity.best(&hashes(3), |_| true), None);
        affinity.remember(&hashes(2), "http://a");
        affinity.remember(&hashes(4), "http://b");
        // b served the longer prefix last; it also took over blocks 0 and 1.
        assert_eq!(
            affinity.best(&hashes(5), |_| true),
            Some(("http://b".into(), 4))
        );
        assert_eq!(
            affinity.best(&hashes(5), |u| u != "http://b"),
            None,
            "a's blocks were taken over by b"
        );
        affinity.remember(&PrefixHashes(vec![0, 1, 9]), "http://a");
        assert_eq!(
            affinity.best(&hashes(5), |u| u != "http://b"),
            Some(("http://a".into(), 2))
        );
    }

    #[test]
    fn the_index_stays_bounded_and_forgets_the_oldest_first() {
        let mut affinity = Affinity::default();
        let total = 3 * GENERATION_CAPACITY as u64;
        for i in 0..total {
            affinity.remember(&PrefixHashes(vec![i]), "http://a");
        }
        assert!(affinity.len() <= 2 * GENERATION_CAPACITY);
        assert!(affinity.best(&PrefixHashes(vec![0]), |_| true).is_none());
        assert!(
            affinity
                .best(&PrefixHashes(vec![total - 1]), |_| true)
                .is_some()
        );
    }
}
