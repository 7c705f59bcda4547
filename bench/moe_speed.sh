#!/usr/bin/env bash
# MoE speed beside llama-bench (issue 23): a Qwen3-30B-A3B-shaped file with fewer layers
# (n_embd 2048, 32/4 heads of 128, 64 experts of width 768, 8 used per token; 6 layers:
# ~4 GB F16, 1.2 GB Q4_K_M, 2.2 GB Q8_0), random weights from ../shared/tools/gguf_synth.py,
# quantized by llama-quantize; then pp512 and tg128 at 2 threads from llama-bench and from
# `tachyon perf` (AVX-512 path, and the AVX2 path with TACHYON_NO_AVX512=1 TACHYON_NO_AVXVNNI=1).
#
#   bench/moe_speed.sh --llama DIR [--llama-avx2 DIR] [--types "Q4_K_M Q8_0"] [--layers 6] [-r 2]
#
# DIR: a llama.cpp build's bin directory (never part of this repo); --llama-avx2: a build
# without AVX-512 to compare the AVX2 path with. Files are kept in bench/models (git-ignored)
# and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
llama=""; llama_avx2=""; types="Q4_K_M Q8_0"; layers=6; reps=2
while [ $# -gt 0 ]; do
  case "$1" in
    --llama) llama="$2"; shift 2 ;;
    --llama-avx2) llama_avx2="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --layers) layers="$2"; shift 2 ;;
    -r) reps="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$llama" ] || { echo "--llama DIR (a llama.cpp build's bin directory) is required" >&2; exit 2; }
tachyon=./build/tachyon
[ -x "$tachyon" ] || { echo "build tachyon first (scripts/build.sh)" >&2; exit 2; }
mkdir -p bench/models
base=bench/models/qwen3moe-a3b-${layers}l
if [ ! -f "$base-F16.gguf" ]; then
  python3 ../shared/tools/gguf_synth.py --vocab ../shared/data/tokenizer/ggml-vocab-llama-spm.gguf --arch qwen3moe \
    --n-embd 2048 --n-layer "$layers" --n-head 32 --n-head-kv 4 --head-dim 128 --n-ff 6144 --n-expert 64 \
    --n-expert-used 8 --n-ff-exp 768 --eps 1e-6 --ctx 4096 --seed 3 --name synthetic -o "$base-F16.gguf" >/dev/null
fi
bench() {  # dir file -> "pp tg"
  LD_LIBRARY_PATH="$1" "$1/llama-bench" -m "$2" -t 2 -p 512 -n 128 -r "$reps" 2>/dev/null |
    awk -F'|' '/pp512/ {split($8, a, " "); pp=a[1]} /tg128/ {split($8, a, " "); tg=a[1]} END {print pp, tg}'
}
perf() {  # file [env] -> "pp tg"
  env ${2:-} "$tachyon" perf -m "$1" -t 2 -p 512 -n 128 -r "$reps" 2>/dev/null |
    awk -F'|' '/pp512/ {split($4, a, " "); pp=a[1]} /tg128/ {split($4, a, " "); tg=a[1]} END {print pp, tg}'
}
printf "| type | path | llama.cpp pp512 / tg128 | tachyon pp512 / tg128 | ratio pp / tg |\n|---|---|---|---|---|\n"
for t in $types; do
  f="$base-$t.gguf"
  [ -f "$f" ] || LD_LIBRARY_PATH="$llama" "$llama/llama-quantize" "$base-F16.gguf" "$f" "$t" 2 >/dev/null 2>&1
  read -r lp lt < <(bench "$llama" "$f")
  read -r tp tt < <(perf "$f")
  printf "| %s | default | %s / %s | %s / %s | %.2fx / %.2fx |\n" "$t" "$lp" "$lt" "$tp" "$tt" \
    "$(echo "$tp / $lp" | bc -l)" "$(echo "$tt / $lt" | bc -l)"
  if [ -n "$llama_avx2" ]; then
    read -r lp lt < <(bench "$llama_avx2" "$f")
    read -r tp tt < <(perf "$f" "TACHYON_NO_AVX512=1 TACHYON_NO_AVXVNNI=1")
    printf "| %s | AVX2 | %s / %s | %s / %s | %.2fx / %.2fx |\n" "$t" "$lp" "$lt" "$tp" "$tt" \
      "$(echo "$tp / $lp" | bc -l)" "$(echo "$tt / $lt" | bc -l)"
  fi
done
