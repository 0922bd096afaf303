#!/usr/bin/env bash
# Builds llama.cpp's own server (llama-server), the peer of bench/engine.py, from the llama.cpp
# sources that the PyPI package llama-cpp-python vendors (PyPI is the registry this machine
# reaches). Built for x86-64-v3 like lutece's engine (.cargo/config.toml), CPU only.
# Usage: bench/llama_cpp_peer.sh [DIR]   (default /tmp/llama-cpp-peer; prints the binary's path)
set -euo pipefail
dir=${1:-/tmp/llama-cpp-peer}
version=0.3.36
mkdir -p "$dir"
cd "$dir"
if [[ ! -d llama_cpp_python-$version ]]; then
  python3 -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$version" -d .
  tar xzf "llama_cpp_python-$version.tar.gz"
fi
src=llama_cpp_python-$version/vendor/llama.cpp
cmake -S "$src" -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DCMAKE_C_FLAGS=-march=x86-64-v3 -DCMAKE_CXX_FLAGS=-march=x86-64-v3 \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF >&2
cmake --build build -j"$(nproc)" --target llama-server >&2
echo "$dir/build/bin/llama-server"
