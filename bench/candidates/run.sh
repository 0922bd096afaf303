#!/usr/bin/env bash
# The engine-candidates table (docs/BENCHMARKS.md): builds (timed, into their own target
# directories) and runs the candle and mistral.rs candidates on a GGUF model. lutece's engine
# (llama.cpp through llama-cpp-2) and llama.cpp's own server are measured by bench/engine.py.
# Usage: bench/candidates/run.sh MODEL.gguf [THREADS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
threads=${2:-2}
(cd candle && time cargo build --release)
for run in 1 2; do candle/target/release/candle-candidate "$1" 128 "$threads"; done
(cd mistralrs && time cargo build --release)
for run in 1 2; do RAYON_NUM_THREADS=$threads mistralrs/target/release/mistralrs-candidate "$1"; done
