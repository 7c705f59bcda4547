#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ASan/UBSan) and runs each for a bounded time:
# the GGUF parser and the block decoders of every weight type.
# usage: scripts/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
./scripts/setup.sh
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTACHYON_FUZZ=ON -DTACHYON_TESTS=OFF \
  -DTACHYON_SANITIZE=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz --target fuzz_gguf fuzz_blocks -j"$(nproc)"
# Seed corpus: real files (headers only, to keep runs fast) from the shared test data.
corpus=build-fuzz/corpus-gguf
mkdir -p "$corpus"
for f in ../shared/data/models/mini-qwen3-Q4_0.gguf ../shared/data/tokenizer/ggml-vocab-gpt-2.gguf; do
  [ -f "$f" ] && head -c 200000 "$f" > "$corpus/$(basename "$f").head"
done
./build-fuzz/fuzz/fuzz_gguf "$corpus" -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 -artifact_prefix=build-fuzz/ 2>&1 | tail -n 60
echo "fuzz: gguf parser ran ${secs}s without a finding"
# Block decoders of every weight type (first byte: the type), from an empty corpus.
mkdir -p build-fuzz/corpus-blocks
./build-fuzz/fuzz/fuzz_blocks build-fuzz/corpus-blocks -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 -artifact_prefix=build-fuzz/ 2>&1 | tail -n 60
echo "fuzz: block decoders ran ${secs}s without a finding"
