//! The embedder on the real all-MiniLM-L6-v2 (`testing::embedding_model`), against the
//! reference implementations: the `tokenizers` library's ids and sentence-transformers' vectors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use lutece_engine::Embedder;
use lutece_engine::embed::Pooling;
use proptest::prelude::*;
use serde_json::Value;

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        Embedder::load(lutece_engine::testing::embedding_model()).expect("the model loads")
    })
}

/// Token ids of tricky strings, produced once with the Python `tokenizers` package (0.23.3,
/// from PyPI) on the model's own `tokenizer.json`:
/// `Tokenizer.from_file(p); t.no_padding(); t.enable_truncation(256); t.encode(text).ids`.
/// (During development the same comparison passed on 130,000 random strings as well.)
const REFERENCE_IDS: &[(&str, &[u32])] = &[
    (
        "Héllo, Wörld! Ça va? naïve façade",
        &[
            101, 7592, 1010, 2088, 999, 6187, 12436, 1029, 15743, 8508, 102,
        ],
    ),
    (
        "don't stop—U.S.A. (e.g.) 3.14 $5 #hash @at ~tilde",
        &[
            101, 2123, 1005, 1056, 2644, 1517, 1057, 1012, 1055, 1012, 1037, 1012, 1006, 1041,
            1012, 1043, 1012, 1007, 1017, 1012, 2403, 1002, 1019, 1001, 23325, 1030, 2012, 1066,
            18681, 3207, 102,
        ],
    ),
    (
        "中文字符和日本語のテキスト、한국어",
        &[
            101, 1746, 1861, 100, 100, 1796, 1864, 1876, 1950, 1671, 30239, 30227, 30233, 30240,
            1635, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008, 102,
        ],
    ),
    (
        "emoji 👍🏽 🤖 👨\u{200d}👩\u{200d}👧 ❤\u{fe0f} 🥰 🫠",
        &[101, 7861, 29147, 2072, 100, 100, 100, 100, 100, 100, 102],
    ),
    (
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        &[
            101, 1052, 2638, 2819, 17175, 11314, 6444, 2594, 7352, 26461, 27572, 11261, 6767,
            15472, 6761, 8663, 10735, 2483, 102,
        ],
    ),
    ("", &[101, 102]),
    (" \u{9}\u{a}\u{3000}\u{2028} ", &[101, 102]),
    (
        "[CLS] special [SEP] tokens[MASK]in text [unk] [PAD",
        &[
            101, 101, 2569, 102, 19204, 2015, 103, 1999, 3793, 1031, 4895, 2243, 1033, 1031, 11687,
            102,
        ],
    ),
    (
        "ΟΔΟΣ İstanbul straße ﬁnal ½ Ⅻ",
        &[
            101, 1169, 29722, 29730, 29733, 9960, 2358, 27807, 1984, 12032, 1092, 100, 102,
        ],
    ),
    (
        "zero\u{200b}width\u{feff} soft\u{ad}hyphen \u{0}nul \u{fffd}replacement \u{7}bell",
        &[
            101, 5717, 9148, 11927, 2232, 3730, 10536, 8458, 2368, 16371, 2140, 6110, 4330, 102,
        ],
    ),
    (
        "e\u{301} vs é and A\u{30a}",
        &[101, 1041, 5443, 1041, 1998, 1037, 102],
    ),
    (
        "नमस\u{94d}त\u{947} द\u{941}न\u{93f}य\u{93e}, สว\u{e31}สด\u{e35}คร\u{e31}บ",
        &[
            101, 1327, 29867, 29874, 29859, 1325, 29863, 29877, 29868, 29876, 1010, 100, 102,
        ],
    ),
    (
        "private \u{e000}\u{e001}\u{f8ff} \u{10fffd}",
        &[101, 2797, 102],
    ),
    (
        "ＦＵＬＬＷＩＤＴＨ\u{3000}ｔｅｘｔ！",
        &[101, 100, 100, 1986, 102],
    ),
];

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let e = embedder();
    for (text, expected) in REFERENCE_IDS {
        let encoding = e.encode(text);
        assert_eq!(encoding.ids(), *expected, "{text:?}");
        assert!(!encoding.is_truncated());
    }
    // A word of exactly 100 characters is split (`aaa` + 48 × `##aa` + `##a`); one of 101
    // characters is [UNK] (same reference).
    let long_words = format!("{} {}", "a".repeat(100), "b".repeat(101));
    let mut expected = vec![101, 13360];
    expected.extend([11057; 48]);
    expected.extend([2050, 100, 102]);
    assert_eq!(e.encode(&long_words).ids(), expected);
    // Truncated to 256 at the end, [SEP] kept; the reference gives 302 ids untruncated.
    let long = e.encode(&"hello ".repeat(300));
    let mut expected = vec![101];
    expected.extend([7592; 254]);
    expected.push(102);
    assert_eq!(long.ids(), expected);
    assert_eq!(long.untruncated_len(), 302);
    assert!(long.is_truncated());
}

#[test]
fn the_model_is_described_by_its_files() {
    let e = embedder();
    assert_eq!(e.dimensions(), 384);
    assert_eq!(
        e.max_tokens(),
        256,
        "sentence_bert_config.json's max_seq_length"
    );
    assert_eq!(e.pooling(), Pooling::Mean);
    assert!(e.normalizes(), "modules.json lists Normalize");
    assert!(Embedder::is_model(
        &lutece_engine::testing::embedding_model()
    ));
    assert!(!Embedder::is_model(&lutece_engine::testing::default_model()));
}

struct Case {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

/// `tests/data/all-minilm-l6-v2.json`: sentence-transformers' own vectors (see
/// `tests/data/make_reference.py` for how they were made).
fn reference() -> Vec<Case> {
    let json: Value = serde_json::from_str(include_str!("data/all-minilm-l6-v2.json")).unwrap();
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().unwrap().to_owned(),
            tokens: c["tokens"].as_u64().unwrap() as usize,
            embedding: c["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn embeddings_match_sentence_transformers() {
    let e = embedder();
    let cases = reference();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let vectors = e.embed(&texts).unwrap();
    for (case, v) in cases.iter().zip(&vectors) {
        assert_eq!(v.len(), 384);
        assert_eq!(e.encode(&case.text).len(), case.tokens, "{:?}", case.text);
        let similarity = cosine(v, &case.embedding);
        assert!(
            similarity >= 0.99999,
            "{:?}: cosine {similarity}",
            case.text
        );
        let max_diff = v
            .iter()
            .zip(&case.embedding)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            max_diff < 1e-5,
            "{:?}: max difference {max_diff}",
            case.text
        );
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // The first dimensions, as sentence-transformers printed them, for a reader to compare.
    let first = [
        0.033_241_61,
        0.004_406_03,
        -0.006_276_97,
        0.048_378_66,
        -0.138_702_3,
        -0.033_617_39,
        0.101_128_31,
        -0.054_384_88,
    ];
    assert_eq!(cases[0].text, "A man is eating food.");
    for (a, b) in vectors[0].iter().zip(first) {
        assert!((a - b).abs() < 1e-5, "{:?}", &vectors[0][..8]);
    }
}

#[test]
fn similar_sentences_are_closer_than_dissimilar_ones() {
    let v = embedder()
        .embed(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
            "How do I reset my password?",
            "I forgot my login credentials and cannot sign in.",
        ])
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
    assert!(cosine(&v[3], &v[4]) > cosine(&v[3], &v[0]) + 0.2);
    assert!(cosine(&v[3], &v[4]) > cosine(&v[3], &v[2]) + 0.2);
}

#[test]
fn a_batch_gives_the_vectors_of_its_inputs_one_at_a_time() {
    let cases = reference();
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let load = || Embedder::load(lutece_engine::testing::embedding_model()).unwrap();
    let one_thread = load().with_threads(1);
    // Several threads: the batch is cut into chunks of whole inputs (here two) that run at once.
    let batched = load().with_threads(3).embed(&texts).unwrap();
    let mut reversed = texts.clone();
    reversed.reverse();
    let mut in_reverse = one_thread.embed(&reversed).unwrap();
    in_reverse.reverse();
    for (i, text) in texts.iter().enumerate() {
        let alone = &one_thread.embed(&[text]).unwrap()[0];
        for other in [&batched[i], &in_reverse[i]] {
            let diff = alone
                .iter()
                .zip(other)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff <= 1e-5, "{text:?}: {diff}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any string: no panic, [CLS] … [SEP] within the model's length, ids in the vocabulary.
    #[test]
    fn any_text_tokenizes(text in any::<String>()) {
        let e = embedder().encode(&text);
        prop_assert!(e.len() >= 2 && e.len() <= 256);
        prop_assert_eq!(e.ids()[0], 101);
        prop_assert_eq!(e.ids()[e.len() - 1], 102);
        prop_assert!(e.ids().iter().all(|&id| id < 30522));
    }
}
