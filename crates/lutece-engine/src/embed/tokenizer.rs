//! BERT's WordPiece tokenizer, read from a Hugging Face `tokenizer.json`: the same ids as the
//! `tokenizers` library gives for a single sequence with special tokens, truncated to the
//! model's length. Only what BERT models use is supported; anything else in the file is
//! refused when it is read, rather than silently tokenised differently.

use std::collections::HashMap;

use serde::Deserialize;

use super::normalize::{Normalizer, for_each_word};

/// A tokenizer that cannot be built from its file.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read tokenizer.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("tokenizer.json uses {0}, which this tokenizer does not support")]
    Unsupported(String),
    #[error("tokenizer.json names the token {0:?}, which is not in its vocabulary")]
    MissingToken(String),
}

/// A WordPiece tokenizer with BERT's normaliser and pre-tokeniser.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    /// Special tokens found verbatim in the raw text (`[CLS]`, `[SEP]`…), longest first.
    added: Vec<(String, u32)>,
    normalizer: Normalizer,
    unk: u32,
    prefix: String,
    max_chars_per_word: usize,
    /// Around every sequence, e.g. `[CLS]` … `[SEP]`.
    before: Vec<u32>,
    after: Vec<u32>,
    max_tokens: usize,
}

/// The tokens of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoding {
    ids: Vec<u32>,
    untruncated_len: usize,
}

impl Tokenizer {
    /// Reads a `tokenizer.json`; encodings are truncated to `max_tokens`, special tokens
    /// included.
    pub fn from_json(json: &str, max_tokens: usize) -> Result<Self, TokenizerError> {
        let file: File = serde_json::from_str(json)?;
        let NormalizerJson::BertNormalizer {
            clean_text,
            handle_chinese_chars,
            strip_accents,
            lowercase,
        } = file
            .normalizer
            .ok_or_else(|| TokenizerError::Unsupported("no normalizer".into()))?;
        let normalizer = Normalizer {
            clean_text,
            handle_chinese_chars,
            strip_accents: strip_accents.unwrap_or(lowercase),
            lowercase,
        };
        if file.pre_tokenizer.is_none() {
            return Err(TokenizerError::Unsupported("no pre_tokenizer".into()));
        }
        let ModelJson::WordPiece {
            unk_token,
            continuing_subword_prefix,
            max_input_chars_per_word,
            vocab,
        } = file.model;
        let mut added = Vec::new();
        for token in file.added_tokens {
            if token.normalized || token.lstrip || token.rstrip || token.single_word {
                return Err(TokenizerError::Unsupported(format!(
                    "an added token with options ({:?})",
                    token.content
                )));
            }
            if !token.content.is_empty() {
                added.push((token.content, token.id));
            }
        }
        added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let lookup = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| TokenizerError::MissingToken(token.into()))
        };
        let unk = lookup(&unk_token)?;
        let (before, after) = match file.post_processor {
            Some(PostProcessorJson::BertProcessing { cls, sep }) => (vec![cls.1], vec![sep.1]),
            Some(PostProcessorJson::TemplateProcessing {
                single,
                special_tokens,
            }) => template_ids(&single, &special_tokens)?,
            None => (Vec::new(), Vec::new()),
        };
        if before.len() + after.len() >= max_tokens {
            return Err(TokenizerError::Unsupported(format!(
                "a maximum length of {max_tokens} tokens, with no room between the special tokens"
            )));
        }
        Ok(Self {
            vocab,
            added,
            normalizer,
            unk,
            prefix: continuing_subword_prefix,
            max_chars_per_word: max_input_chars_per_word,
            before,
            after,
            max_tokens,
        })
    }

    /// The most tokens an encoding has, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// One more than the largest id an encoding can hold (vocabulary, added and special
    /// tokens): every id is below it.
    pub fn vocab_size(&self) -> usize {
        let added = self.added.iter().map(|(_, id)| id);
        let special = self.before.iter().chain(&self.after);
        self.vocab
            .values()
            .chain(added)
            .chain(special)
            .max()
            .map_or(0, |&m| m as usize + 1)
    }

    /// The tokens of `text`, with the special tokens around them, truncated (at the end) to
    /// [`Self::max_tokens`]. Never fails: what the vocabulary lacks becomes `[UNK]`.
    pub fn encode(&self, text: &str) -> Encoding {
        let mut ids = self.before.clone();
        let mut rest = text;
        let mut normalized = String::new();
        while !rest.is_empty() {
            let (plain, special) = self.next_added(rest);
            self.normalizer.normalize(plain, &mut normalized);
            for_each_word(&normalized, |word| self.word_pieces(word, &mut ids));
            rest = &rest[plain.len()..];
            if let Some((len, id)) = special {
                ids.push(id);
                rest = &rest[len..];
            }
        }
        ids.extend_from_slice(&self.after);
        let untruncated_len = ids.len();
        if untruncated_len > self.max_tokens {
            let keep = self.max_tokens - self.after.len();
            ids.truncate(keep);
            ids.extend_from_slice(&self.after);
        }
        Encoding {
            ids,
            untruncated_len,
        }
    }

    /// The text before the first special token written in `text`, and that token's length and
    /// id (leftmost first, then longest).
    fn next_added<'t>(&self, text: &'t str) -> (&'t str, Option<(usize, u32)>) {
        for (at, _) in text.char_indices() {
            let tail = &text[at..];
            // `added` is sorted longest first, so the first match is the longest.
            if let Some((content, id)) = self.added.iter().find(|(c, _)| tail.starts_with(c)) {
                return (&text[..at], Some((content.len(), *id)));
            }
        }
        (text, None)
    }

    /// Greedy longest-match-first WordPiece: a word that cannot be covered, or is longer than
    /// the limit, is one `[UNK]`.
    fn word_pieces(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_chars_per_word {
            ids.push(self.unk);
            return;
        }
        let first = ids.len();
        let mut piece = String::with_capacity(word.len() + self.prefix.len());
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let found = loop {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.prefix);
                }
                piece.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(piece.as_str()) {
                    break Some(id);
                }
                match word[start..end].chars().next_back() {
                    Some(c) if end - c.len_utf8() > start => end -= c.len_utf8(),
                    _ => break None,
                }
            };
            match found {
                Some(id) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(first);
                    ids.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// The ids a `TemplateProcessing` puts before and after a single sequence.
fn template_ids(
    single: &[TemplatePiece],
    special_tokens: &HashMap<String, SpecialTokenJson>,
) -> Result<(Vec<u32>, Vec<u32>), TokenizerError> {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut sequences = 0;
    for piece in single {
        match piece {
            TemplatePiece::Sequence { .. } => sequences += 1,
            TemplatePiece::SpecialToken { id, type_id } => {
                if *type_id != 0 {
                    return Err(TokenizerError::Unsupported("a non-zero type id".into()));
                }
                let token = special_tokens
                    .get(id)
                    .ok_or_else(|| TokenizerError::MissingToken(id.clone()))?;
                let side = if sequences == 0 {
                    &mut before
                } else {
                    &mut after
                };
                side.extend_from_slice(&token.ids);
            }
        }
    }
    if sequences != 1 {
        return Err(TokenizerError::Unsupported(
            "a template without exactly one sequence".into(),
        ));
    }
    Ok((before, after))
}

impl Encoding {
    /// The token ids the model reads.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Tokens the model reads (at most the tokenizer's maximum).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Never true for a BERT tokenizer, which always adds `[CLS]` and `[SEP]`.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Tokens the whole input would take, special tokens included, before truncation.
    pub fn untruncated_len(&self) -> usize {
        self.untruncated_len
    }

    pub fn is_truncated(&self) -> bool {
        self.untruncated_len > self.ids.len()
    }
}

/// The parts of `tokenizer.json` read here; other fields are ignored.
#[derive(Deserialize)]
struct File {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    normalizer: Option<NormalizerJson>,
    pre_tokenizer: Option<PreTokenizerJson>,
    post_processor: Option<PostProcessorJson>,
    model: ModelJson,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    normalized: bool,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum NormalizerJson {
    BertNormalizer {
        clean_text: bool,
        handle_chinese_chars: bool,
        strip_accents: Option<bool>,
        lowercase: bool,
    },
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum PreTokenizerJson {
    BertPreTokenizer,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum PostProcessorJson {
    BertProcessing {
        cls: (String, u32),
        sep: (String, u32),
    },
    TemplateProcessing {
        single: Vec<TemplatePiece>,
        special_tokens: HashMap<String, SpecialTokenJson>,
    },
}

#[derive(Deserialize)]
enum TemplatePiece {
    SpecialToken {
        id: String,
        type_id: u32,
    },
    Sequence {
        #[expect(dead_code, reason = "a single sequence is always A")]
        id: String,
        #[serde(default)]
        #[expect(dead_code, reason = "sequence A has type 0")]
        type_id: u32,
    },
}

#[derive(Deserialize)]
struct SpecialTokenJson {
    ids: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ModelJson {
    WordPiece {
        unk_token: String,
        continuing_subword_prefix: String,
        max_input_chars_per_word: usize,
        vocab: HashMap<String, u32>,
    },
}

#[cfg(test)]
pub(crate) mod tests;
