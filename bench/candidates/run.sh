#!/usr/bin/env bash
# The engine-candidates table (docs/BENCHMARKS.md): builds and runs the candle candidate on the
# default chat model. lutece's engine (llama.cpp through llama-cpp-2) and llama.cpp's own server
# are measured by bench/engine.py.
# Usage: bench/candidates/run.sh MODEL.gguf [THREADS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/candle"
time cargo build --release
for run in 1 2; do ./target/release/candle-candidate "$1" 128 "${2:-2}"; done
