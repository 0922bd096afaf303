//! Prefix affinity: requests that begin with the same long text (a shared system prompt, a
//! conversation that goes on, few-shot examples) should reach the replica that already holds
//! that prefix in its KV cache, as engines with prefix caching reuse it.
//!
//! The prompt is cut into blocks of [`BLOCK_BYTES`], and at the end of every message (so a
//! shared system prompt, or the turns of a conversation so far, match whatever their length);
//! each point gets a hash that covers every byte before it too, so equal hashes mean equal
//! prefixes. The hashes start from the tenant's id: tenants never share affinity, so the
//! router does not send one tenant's guess at another's prompt to where that prompt is cached
//! (replicas of a shared deployment still share their engine's cache). An [`Affinity`] index
//! remembers, for each prefix hash, the replica that last served it; a request goes to the
//! replica with the longest remembered prefix unless that replica is much busier than the
//! least busy one. The index is bounded: two generations of maps, the older dropped when the
//! newer fills up, so prefixes not seen for a while are forgotten first.
//!
//! It helps engines that keep prefixes cached between requests (vLLM, SGLang, llama.cpp's
//! server); the built-in engine does not yet.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

use serde::Deserialize;

/// Bytes of prompt text per block: about 64 tokens of English.
pub const BLOCK_BYTES: usize = 256;
/// A message boundary is a match point once this much text comes before it.
pub const MIN_PREFIX_BYTES: usize = 64;
/// Prefix hashes (blocks and message ends) considered at most: up to 64 KiB of text.
pub const MAX_BLOCKS: usize = 256;
/// Prefix hashes remembered per generation, per model.
const GENERATION_CAPACITY: usize = 1 << 16;

/// The chained hashes of a prompt's prefixes (whole blocks, ends of messages), shortest first;
/// empty when the prompt is short.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixHashes(pub Vec<u64>);

/// Cuts text fed piece by piece into blocks and hashes each prefix.
#[derive(Debug, Default)]
struct BlockHasher {
    hasher: DefaultHasher,
    filled: usize,
    fed: usize,
    hashes: Vec<u64>,
}

impl BlockHasher {
    /// Starts from `seed` (not part of any prefix's length).
    fn seeded(seed: &str) -> Self {
        let mut hasher = DefaultHasher::new();
        hasher.write(seed.as_bytes());
        hasher.write_u8(0xff);
        Self {
            hasher,
            ..Self::default()
        }
    }

    /// A match point here (the end of a message), unless too little text comes before it or
    /// a block just ended; false once enough points are hashed.
    fn boundary(&mut self) -> bool {
        if self.hashes.len() == MAX_BLOCKS {
            return false;
        }
        if self.fed >= MIN_PREFIX_BYTES && self.filled > 0 {
            self.hashes.push(self.hasher.finish());
        }
        self.hashes.len() < MAX_BLOCKS
    }

    /// Feeds bytes; false once enough blocks are hashed.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.hashes.len() == MAX_BLOCKS {
                return false;
            }
            let take = (BLOCK_BYTES - self.filled).min(bytes.len());
            self.hasher.write(&bytes[..take]);
            self.filled += take;
            self.fed += take;
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
    /// The prefix hashes of `tenant`'s request body: its messages (role and text, in order) or
    /// its prompt. Anything else (embeddings, bodies the replica will refuse) has none.
    pub fn of_request(body: &[u8], tenant: &str) -> Self {
        let Ok(request) = serde_json::from_slice::<Prompted>(body) else {
            return Self::default();
        };
        let mut blocks = BlockHasher::seeded(tenant);
        if let Some(messages) = request.messages {
            for message in messages {
                let role = message.role.as_deref().unwrap_or("");
                if !(blocks.feed(role.as_bytes()) && blocks.feed(b"\x1e")) {
                    break;
                }
                if !feed_text(&mut blocks, message.content.as_ref()) || !blocks.feed(b"\x1f") {
                    break;
                }
                if !blocks.boundary() {
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
        let of = |body: &[u8]| PrefixHashes::of_request(body, "t");
        let system = "You are a careful assistant. ".repeat(40); // 1160 bytes
        let a = of(&chat(&system, "What is 2+2?"));
        let b = of(&chat(&system, "Name a colour."));
        // system\x1e + 1160 bytes + \x1f: four whole blocks and the system message's end;
        // then user\x1e + the question: the user message's end.
        assert_eq!(a.0.len(), 6);
        assert_eq!(a.0[..5], b.0[..5]);
        assert_ne!(a.0[5], b.0[5]);
        let other = of(&chat(&"Be brief. ".repeat(120), "What is 2+2?"));
        assert!(other.0.iter().zip(&a.0).all(|(x, y)| x != y));
        // A short system prompt is a match point of its own.
        let short = "Answer in French, briefly and politely, whatever the question.";
        assert!(short.len() + 8 >= MIN_PREFIX_BYTES);
        let (x, y) = (of(&chat(short, "Hi")), of(&chat(short, "Bye")));
        assert_eq!((x.0.len(), x.0[0]), (2, y.0[0]));
        // Another tenant's same request shares nothing.
        let theirs = PrefixHashes::of_request(&chat(&system, "What is 2+2?"), "u");
        assert!(theirs.0.iter().zip(&a.0).all(|(x, y)| x != y));
        // A completion prompt, a short request and a body without a prompt.
        let prompt = serde_json::json!({"model": "m", "prompt": "x".repeat(600)});
        assert_eq!(of(&serde_json::to_vec(&prompt).unwrap()).0.len(), 2);
        assert!(of(&chat("Hi", "Hello")).0.is_empty());
        assert!(of(br#"{"model":"e","input":"text"}"#).0.is_empty());
        assert!(of(b"not json").0.is_empty());
        // Very long prompts are hashed up to MAX_BLOCKS.
        assert_eq!(of(&chat(&"y".repeat(200_000), "?")).0.len(), MAX_BLOCKS);
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
