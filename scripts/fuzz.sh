#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ASan/UBSan) and runs each for a bounded time:
# the GGUF parser, the block decoders of every weight type, and structured output's inputs
# (GBNF, JSON Schema, regex) with the tool-call output parser.
# usage: scripts/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
./scripts/setup.sh
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTACHYON_FUZZ=ON -DTACHYON_TESTS=OFF \
  -DTACHYON_SANITIZE=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz --target fuzz_gguf fuzz_blocks fuzz_structured -j"$(nproc)"
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
# Structured output: seeds from the schema suite, a JSON grammar, regexes, tool-call outputs.
corpus=build-fuzz/corpus-structured
mkdir -p "$corpus"
for f in tests/e2e/schemas/*.json; do
  { printf '\001\000\000'; cat "$f"; } > "$corpus/schema-$(basename "$f")"
done
printf '\000\000\000root ::= obj\nobj ::= "{" ( str ":" val ( "," str ":" val )* )? "}"\nval ::= obj | str | [0-9]+ | "[" val? "]"\nstr ::= "\\"" [^"\\\\]* "\\""\n' > "$corpus/gbnf-json"
printf '\002\000\000[A-Z][a-z]{2,5} (x|yz)*[0-9]{3}-\\d{4}' > "$corpus/regex"
printf '\003\001\200<think>hm</think>Sure.<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>' > "$corpus/hermes"
./build-fuzz/fuzz/fuzz_structured "$corpus" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 -artifact_prefix=build-fuzz/ 2>&1 | tail -n 60
echo "fuzz: structured output ran ${secs}s without a finding"
