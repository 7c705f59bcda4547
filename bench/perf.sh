#!/usr/bin/env bash
# Speed benchmark: generates random-weight models at real shapes with `tachyon gen-model`
# and measures them with `tachyon perf`; with --llama-cpp DIR (a llama.cpp build, never
# part of this repo) it runs llama-bench on the same files, alternating the two engines,
# and prints the ratios.
#
#   bench/perf.sh [--llama-cpp BUILD_DIR] [--llama-cpp-avx2 BUILD_DIR] [--paths "native avx2"]
#                 [--presets "tinyllama-1.1b"] [--types "Q4_0 Q8_0 Q4_K_M Q5_K_M Q6_K"]
#                 [-t THREADS] [-p 512] [-n 128] [-d "0 1024 4096"] [-r 3] [--rounds 2] [--models-dir DIR]
#
# -p takes a comma list (pp512,pp4096: -p 512,4096); -d a list of KV depths at which the
# tg test runs (llama-bench's -d), e.g. -p 0 -n 64 -d "0 1024 4096" for the long-context
# table.
#
# Kernel paths: --llama-cpp-avx2 DIR (a llama.cpp build with AVX2 + FMA + F16C and no
# AVX-512 or AVX-VNNI) measures every type twice: on this CPU's best kernels against
# --llama-cpp, and on tachyon's plain AVX2 kernels (TACHYON_NO_AVX512=1
# TACHYON_NO_AVXVNNI=1: what AMD Zen 2/3 and older Intel CPUs run) against DIR, the runs
# of all four alternating. --paths "native" or "avx2" restricts it to one path.
set -euo pipefail
cd "$(dirname "$0")/.."
llama=""; llama_avx2=""; paths=""; presets="tinyllama-1.1b"; types="Q4_0 Q8_0 Q4_K_M Q5_K_M Q6_K"; threads=2; pp=512; tg=128; reps=3; rounds=2
depths="0"
models=bench/models
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-cpp) llama="$2"; shift 2 ;;
    --llama-cpp-avx2) llama_avx2="$2"; shift 2 ;;
    --paths) paths="$2"; shift 2 ;;
    --presets) presets="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    -p) pp="$2"; shift 2 ;;
    -n) tg="$2"; shift 2 ;;
    -d) depths="$2"; shift 2 ;;
    -r) reps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --models-dir) models="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
. bench/common.sh
ensure_tachyon
mkdir -p "$models"
vocab_for() {  # a real tokenizer of the same family from the shared test data
  case "$1" in
    qwen*) echo ../shared/data/tokenizer/ggml-vocab-deepseek-llm.gguf ;;
    phi-3*) echo ../shared/data/tokenizer/ggml-vocab-phi-3.gguf ;;
    gemma*|phi-4*) echo "" ;;  # none in the test data: the preset's vocabulary size, placeholder pieces
    *) echo ../shared/data/tokenizer/ggml-vocab-llama-spm.gguf ;;
  esac
}
dcsv=$(echo $depths | tr ' ' ',')
if [ -z "$paths" ]; then paths="native"; [ -n "$llama_avx2" ] && paths="native avx2"; fi
# Runs tachyon on one path: native (the CPU's best kernels) or avx2 (AVX-512 and AVX-VNNI
# off, the kernels an AVX2-only CPU runs).
run_tachyon() {  # path args...
  local path="$1"; shift
  if [ "$path" = avx2 ]; then TACHYON_NO_AVX512=1 TACHYON_NO_AVXVNNI=1 "$tachyon" "$@"; else "$tachyon" "$@"; fi
}
llama_for() { if [ "$1" = avx2 ]; then echo "$llama_avx2"; else echo "$llama"; fi; }
printf "%-16s %-7s %-6s %-14s | %12s | %12s | %7s | %6s\n" preset type path test tachyon llama.cpp ratio roofl
for preset in $presets; do
  for type in $types; do
    f="$models/$preset-$type.gguf"
    vocab=$(vocab_for "$preset")
    [ -f "$f" ] || "$tachyon" gen-model --preset "$preset" --type "$type" ${vocab:+--vocab "$vocab"} -o "$f" -t "$threads"
    declare -A ours=() theirs=() roof=()
    for round in $(seq "$rounds"); do
      # the engines (and paths) alternate, round after round, on the same file
      for path in $paths; do
        out=$(run_tachyon "$path" perf -m "$f" -p "$pp" -n "$tg" -d "$dcsv" -t "$threads" -r "$reps" --json)
        while read -r test tps pct; do
          ours[$path/$test]="${ours[$path/$test]:-} $tps"; roof[$path/$test]="${roof[$path/$test]:-} $pct"
        done < <(python3 -c 'import json,sys; d=json.load(sys.stdin)
for r in d["results"]: print("%s@d%d" % (r["test"], r.get("depth", 0)), r["tokens_per_s"], r["roofline_pct"])' <<<"$out")
        lc=$(llama_for "$path")
        if [ -n "$lc" ]; then
          # -d only where asked: llama-bench builds before mid-2025 do not know it
          dflag=(); [ "$dcsv" != "0" ] && dflag=(-d "$dcsv")
          lb=$("$lc/bin/llama-bench" -m "$f" -t "$threads" -p "$pp" -n "$tg" "${dflag[@]}" -r "$reps" -o json 2>/dev/null)
          while read -r test tps; do theirs[$path/$test]="${theirs[$path/$test]:-} $tps"; done < <(python3 -c 'import json,sys
for r in json.load(sys.stdin):
    t = "pp%d" % r["n_prompt"] if r["n_prompt"] > 0 else "tg%d" % r["n_gen"]
    print("%s@d%d" % (t, r.get("n_depth", 0)), r["avg_ts"])' <<<"$lb")
        fi
      done
    done
    mean() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print("%.2f" % (sum(v)/len(v)) if v else "-")' $1; }
    for key in $(printf "%s\n" "${!ours[@]}" | sort -t@ -k1,1 -k2.2n); do
      path=${key%%/*}; test=${key#*/}
      o=$(mean "${ours[$key]:-}"); l=$(mean "${theirs[$key]:-}")
      r=$(python3 -c "import sys; o,l=sys.argv[1],sys.argv[2]; print('%.2fx' % (float(o)/float(l)) if l!='-' and o!='-' else '-')" "$o" "$l")
      case "$test" in pp*) rf="-" ;; *) rf=$(printf "%.0f%%" "$(mean "${roof[$key]:-0}")") ;; esac
      printf "%-16s %-7s %-6s %-14s | %8s t/s | %8s t/s | %7s | %6s\n" "$preset" "$type" "$path" "$test" "$o" "$l" "$r" "$rf"
    done
    unset ours theirs roof
  done
done
