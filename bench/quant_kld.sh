#!/usr/bin/env bash
# Quantizer quality: KL divergence of quantized models from their F16 base, tachyon's
# quantizer beside llama.cpp's. The base's log-probabilities over a text are saved once
# (`tachyon perplexity --save-logits`); every quantization of the base is then scored
# against them with `tachyon perplexity --kl-base` (one measuring tool for both
# quantizers, so only the quantizers differ).
#
#   bench/quant_kld.sh [--llama-quantize PATH] [--model F16.gguf] [--text FILE] [--ctx 512]
#                      [--chunks 60] [--types "Q4_0 Q4_K_M Q5_K_M Q3_K_M Q2_K IQ4_XS"] [-t THREADS]
#
# --llama-quantize is a llama.cpp build's llama-quantize (never part of this repo); without
# it only tachyon's column is filled. Prints a markdown table: mean KLD of each, their
# ratio, top-1 agreement with the base, and whether the two files' tensors are identical.
set -euo pipefail
cd "$(dirname "$0")/.."
lq=""; model=../shared/data/models/code-tiny-F16.gguf; text=../shared/data/text/code-heldout.py.txt
ctx=512; chunks=60; types="Q4_0 Q4_K_M Q5_K_M Q3_K_M Q2_K IQ4_XS"; threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-quantize) lq="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --text) text="$2"; shift 2 ;;
    --ctx) ctx="$2"; shift 2 ;;
    --chunks) chunks="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
tachyon=./build/tachyon
[ -x "$tachyon" ] || { echo "build first: cmake --build build" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ppl() { "$tachyon" perplexity -m "$1" -f "$text" -c "$ctx" --chunks "$chunks" -t "$threads" --json "${@:2}" 2>/dev/null | tail -1; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))" "$1" "$2"; }

base_json=$(ppl "$model" --save-logits "$work/base.logp")
echo "base: $(basename "$model")  PPL $(field "$base_json" "round(d['ppl'],4)")  ($chunks chunks of $ctx tokens of $(basename "$text"))"
echo
echo "| type | tachyon MiB | tachyon mean KLD | llama.cpp mean KLD | ratio | top-1 tachyon / llama.cpp | same tensors |"
echo "|---|---|---|---|---|---|---|"
for t in $types; do
  "$tachyon" quantize "$model" "$work/t-$t.gguf" "$t" -t "$threads" 2>/dev/null
  tj=$(ppl "$work/t-$t.gguf" --kl-base "$work/base.logp")
  tk=$(field "$tj" "d['kl']['kld_mean']"); tt=$(field "$tj" "round(100*d['kl']['top1_agreement'],2)")
  size=$(python3 -c "import os; print(round(os.path.getsize('$work/t-$t.gguf')/2**20,2))")
  lk="-"; ratio="-"; lt="-"; same="-"
  if [ -n "$lq" ]; then
    "$lq" "$model" "$work/l-$t.gguf" "$t" "$threads" >/dev/null 2>&1
    lj=$(ppl "$work/l-$t.gguf" --kl-base "$work/base.logp")
    lk=$(field "$lj" "d['kl']['kld_mean']"); lt=$(field "$lj" "round(100*d['kl']['top1_agreement'],2)")
    ratio=$(python3 -c "print(round($tk/$lk,4) if $lk>0 else '-')")
    sum() { "$tachyon" inspect --checksums "$1" | sed -n 's/^tensor data checksum.*: //p'; }
    [ "$(sum "$work/t-$t.gguf")" = "$(sum "$work/l-$t.gguf")" ] && same=yes || same=no
    lk=$(printf "%.6f" "$lk")
  fi
  printf "| %s | %s | %.6f | %s | %s | %s%% / %s%% | %s |\n" "$t" "$size" "$tk" "$lk" "$ratio" "$tt" "$lt" "$same"
done
