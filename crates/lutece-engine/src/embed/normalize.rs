//! BERT's text normalisation and pre-tokenisation, character for character as the `tokenizers`
//! library does them (`BertNormalizer`, `BertPreTokenizer`), with the same Unicode category
//! tables (the `unicode_categories` crate, which `tokenizers` uses too): a character that an
//! older table leaves out is treated exactly as the reference treats it.

use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

/// The `BertNormalizer` of a `tokenizer.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Normalizer {
    /// Drop control characters, NUL and U+FFFD; turn every whitespace character into a space.
    pub(crate) clean_text: bool,
    /// Put spaces around CJK ideographs, so each one is a word of its own.
    pub(crate) handle_chinese_chars: bool,
    /// Decompose (NFD) and drop non-spacing marks: `é` → `e`.
    pub(crate) strip_accents: bool,
    pub(crate) lowercase: bool,
}

impl Normalizer {
    /// The normalised form of `text`, written into `out` (cleared first).
    pub(crate) fn normalize(&self, text: &str, out: &mut String) {
        out.clear();
        let mut cleaned = String::with_capacity(text.len());
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    cleaned.push(' ');
                    continue;
                }
            }
            if self.handle_chinese_chars && is_chinese_char(c) {
                cleaned.push(' ');
                cleaned.push(c);
                cleaned.push(' ');
            } else {
                cleaned.push(c);
            }
        }
        let stripped: String = if self.strip_accents {
            cleaned.nfd().filter(|c| !c.is_mark_nonspacing()).collect()
        } else {
            cleaned
        };
        if self.lowercase {
            // Character by character, as `tokenizers` does: no final-sigma rule (which
            // `str::to_lowercase` would apply).
            out.extend(stripped.chars().flat_map(char::to_lowercase));
        } else {
            out.push_str(&stripped);
        }
    }
}

/// Calls `word` for each word of normalised text: whitespace separates words and is dropped,
/// and every punctuation character is a word of its own (`BertPreTokenizer`).
pub(crate) fn for_each_word<'a>(text: &'a str, mut word: impl FnMut(&'a str)) {
    let mut start = None;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space || is_punctuation(c) {
            if let Some(s) = start.take() {
                word(&text[s..i]);
            }
            if !space {
                word(&text[i..i + c.len_utf8()]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        word(&text[s..]);
    }
}

/// Tab, newline and carriage return count as whitespace, not as control characters.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Cc, Cf and Co in the reference's tables (not unassigned code points).
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// ASCII punctuation (`$`, `+`, `^` included, which Unicode files as symbols) and Unicode's P*.
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK ideograph blocks that BERT splits into single characters.
fn is_chinese_char(c: char) -> bool {
    matches!(
        u32::from(c),
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERT: Normalizer = Normalizer {
        clean_text: true,
        handle_chinese_chars: true,
        strip_accents: true,
        lowercase: true,
    };

    fn normalize(text: &str) -> String {
        let mut out = String::new();
        BERT.normalize(text, &mut out);
        out
    }

    fn words(text: &str) -> Vec<&str> {
        let mut words = Vec::new();
        for_each_word(text, |w| words.push(w));
        words
    }

    #[test]
    fn normalizes_like_bert() {
        assert_eq!(normalize("Héllo\tWÖRLD\u{0}\u{fffd}"), "hello world");
        assert_eq!(normalize("中文"), " 中  文 ");
        assert_eq!(normalize("a\u{200b}b"), "ab", "zero-width space is Cf");
        // Per character: a final capital sigma lowercases to σ, not ς.
        assert_eq!(normalize("ΟΔΟΣ"), "οδοσ");
    }

    #[test]
    fn splits_words_and_punctuation() {
        assert_eq!(
            words("hello, world!! it's $5"),
            ["hello", ",", "world", "!", "!", "it", "'", "s", "$", "5"]
        );
        assert_eq!(words("   "), Vec::<&str>::new());
        assert_eq!(words("a¿b"), ["a", "¿", "b"]);
    }
}
