#!/usr/bin/env bash
# Importance-weighted quantization against llama.cpp's: makes an importance matrix with
# llama-imatrix (or takes one), quantizes the model with llama-quantize --imatrix and with
# `tachyon quantize --imatrix` for each type, and compares every tensor's type and data
# checksum (`tachyon inspect --checksums`). Prints one line per type: identical tensors /
# total, then the names of the tensors that differ.
#
#   bench/imatrix_check.sh --llama DIR [--tachyon PATH] [--model F16.gguf] [--text FILE]
#                          [--chunks 20] [--imatrix FILE] [--types "Q4_0 ..."] [-t THREADS]
#
# DIR is a llama.cpp build's bin directory (llama-imatrix, llama-quantize; never part of
# this repo).
set -euo pipefail
cd "$(dirname "$0")/.."
llama=""; tachyon=./build/tachyon; model=../shared/data/models/code-tiny-F16.gguf
text=../shared/data/text/code-heldout.py.txt; chunks=20; imatrix=""; threads=2
types="Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q4_K_S Q4_K_M Q5_K_S Q6_K IQ4_NL IQ4_XS"
while [ $# -gt 0 ]; do
  case "$1" in
    --llama) llama="$2"; shift 2 ;;
    --tachyon) tachyon="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --text) text="$2"; shift 2 ;;
    --chunks) chunks="$2"; shift 2 ;;
    --imatrix) imatrix="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$llama" ] || { echo "usage: $0 --llama LLAMA_CPP_BIN_DIR [...]" >&2; exit 2; }
[ -x "$tachyon" ] || { echo "build first: cmake --build build (or pass --tachyon)" >&2; exit 1; }
export LD_LIBRARY_PATH="$llama${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$imatrix" ]; then
  imatrix="$work/imatrix.gguf"
  "$llama/llama-imatrix" -m "$model" -f "$text" -o "$imatrix" --chunks "$chunks" -t "$threads" >"$work/imatrix.log" 2>&1 ||
    { tail -20 "$work/imatrix.log" >&2; exit 1; }
fi
# "name type checksum" per tensor
sums() { "$tachyon" inspect --checksums "$1" | awk '/^tensors:/ {on=1; next} on && NF >= 6 && $1 != "name" {print $1, $2, $NF} /^$/ && on {on=0}'; }
echo "model $(basename "$model"), imatrix $(basename "$imatrix")"
for t in $types; do
  "$llama/llama-quantize" --imatrix "$imatrix" "$model" "$work/l.gguf" "$t" "$threads" >"$work/lq.log" 2>&1 ||
    { echo "$t: llama-quantize failed"; tail -5 "$work/lq.log"; continue; }
  if ! "$tachyon" quantize --imatrix "$imatrix" "$model" "$work/t.gguf" "$t" -t "$threads" >"$work/tq.log" 2>&1; then
    echo "$t: tachyon quantize failed: $(tail -1 "$work/tq.log")"; continue
  fi
  sums "$work/l.gguf" >"$work/l.sums"
  sums "$work/t.gguf" >"$work/t.sums"
  total=$(wc -l <"$work/l.sums")
  same=$(sort "$work/l.sums" | comm -12 - <(sort "$work/t.sums") | wc -l)
  diff_names=$(sort "$work/l.sums" | comm -23 - <(sort "$work/t.sums") | awk '{print $1 "(" $2 ")"}' | head -8 | tr '\n' ' ')
  printf "%-7s identical tensors %4d / %-4d %s\n" "$t" "$same" "$total" "${diff_names:+differ: $diff_names}"
done
