#!/usr/bin/env bash
# Throughput of lutece-blob's encrypted put and open through a local location, beside plain
# object_store puts and gets and std::fs writes and reads of the same bytes (docs/BENCHMARKS.md).
# Usage: bench/blob.sh [--mib 256] [--runs 5] [--fsync] [--dir DIR]
# The directory (default: a temporary one) decides the filesystem measured; it is removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p lutece-blob --example blob_bench
# A build on the other core would skew the figures: wait for it.
while pgrep -x rustc >/dev/null || pgrep -f 'rustc ' >/dev/null; do
  echo "waiting for a running rustc to finish…" >&2
  sleep 10
done
exec target/release/examples/blob_bench "$@"
