//! The tokenizer on a tiny hand-written vocabulary; the real model's ids are checked against
//! the reference library in `tests/embeddings.rs`.

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A BERT-shaped `tokenizer.json` over a vocabulary of a few words.
fn tiny_json() -> serde_json::Value {
    let words = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "un", "##aff", "##able",
        "aff", "!", ",", "中", "cafe", "##s", "e",
    ];
    let vocab: serde_json::Map<String, serde_json::Value> = words
        .iter()
        .zip(0u32..)
        .map(|(w, i)| ((*w).to_owned(), json!(i)))
        .collect();
    let added: Vec<_> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .zip(0u32..)
        .map(|(t, i)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 10, "vocab": vocab}
    })
}

pub(crate) fn tiny(max_tokens: usize) -> Tokenizer {
    Tokenizer::from_json(&tiny_json().to_string(), max_tokens).expect("the tiny tokenizer loads")
}

#[test]
fn encodes_word_pieces_between_cls_and_sep() {
    let t = tiny(64);
    let ids = |text: &str| t.encode(text).ids().to_vec();
    assert_eq!(ids("unaffable"), [2, 9, 10, 11, 3]);
    assert_eq!(ids("UNAFFABLE, a!"), [2, 9, 10, 11, 14, 5, 13, 3]);
    assert_eq!(ids("Cafés"), [2, 16, 17, 3], "accents stripped");
    assert_eq!(ids("a中b"), [2, 5, 15, 6, 3], "CJK characters are words");
    assert_eq!(ids("unaffx"), [2, 1, 3], "an uncoverable word is one [UNK]");
    assert_eq!(ids("aaaaaaaaaaa"), [2, 1, 3], "over 10 characters: [UNK]");
    assert_eq!(ids(""), [2, 3]);
    assert_eq!(ids(" \t\n "), [2, 3]);
    assert_eq!(
        ids("a[SEP]b [MASK]"),
        [2, 5, 3, 6, 4, 3],
        "special tokens in the text"
    );
    assert_eq!(
        ids("[sep]"),
        [2, 1, 1, 1, 3],
        "only the exact special token is special"
    );
}

#[test]
fn truncates_at_the_end_and_keeps_the_count() {
    let t = tiny(5);
    let e = t.encode("a b c d e");
    assert_eq!(e.ids(), [2, 5, 6, 7, 3]);
    assert_eq!(e.untruncated_len(), 7);
    assert!(e.is_truncated());
    assert!(!t.encode("a b c").is_truncated());
}

#[test]
fn refuses_what_it_does_not_implement() {
    let mut json = tiny_json();
    json["model"]["type"] = json!("BPE");
    assert!(Tokenizer::from_json(&json.to_string(), 16).is_err());
    let mut json = tiny_json();
    json["added_tokens"][4]["lstrip"] = json!(true);
    let e = Tokenizer::from_json(&json.to_string(), 16).unwrap_err();
    assert!(e.to_string().contains("[MASK]"), "{e}");
    let mut json = tiny_json();
    json["model"]["unk_token"] = json!("<unk>");
    assert!(matches!(
        Tokenizer::from_json(&json.to_string(), 16),
        Err(TokenizerError::MissingToken(_))
    ));
    assert!(Tokenizer::from_json(&tiny_json().to_string(), 2).is_err());
}

proptest! {
    /// Any string at all: no panic, and a well-formed encoding.
    #[test]
    fn any_text_encodes(text in any::<String>(), max in 3usize..40) {
        let t = tiny(max);
        let e = t.encode(&text);
        prop_assert!(e.len() >= 2 && e.len() <= max);
        prop_assert_eq!(e.ids()[0], 2);
        prop_assert_eq!(*e.ids().last().unwrap(), 3);
        prop_assert!(e.ids().iter().all(|&id| (id as usize) < t.vocab_size()));
        prop_assert!(e.untruncated_len() >= e.len());
    }

    /// Text built from the tricky parts: specials, accents, CJK, punctuation, controls.
    #[test]
    fn tricky_pieces_encode(parts in prop::collection::vec(prop::sample::select(vec![
        "[CLS]", "[SEP", "]", "é", "\u{301}", "中", "!", " ", "\u{0}", "\u{fffd}", "\u{200b}",
        "unaff", "able", "İ", "ß", "🦀", "\r\n", "##",
    ]), 0..30)) {
        let t = tiny(32);
        let e = t.encode(&parts.concat());
        prop_assert!(e.len() >= 2 && e.len() <= 32);
    }
}
