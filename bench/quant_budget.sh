#!/usr/bin/env bash
# Quantization to a size budget vs llama.cpp-style uniform mixes (issue 23): for each mix,
# `tachyon quantize F16 MIX`, then `tachyon quantize F16 --budget <that file's size>`, and
# the mean KL divergence of both from the F16 model over a text (`tachyon perplexity
# --kl-base`, llama-perplexity's method).
#
#   bench/quant_budget.sh [-m F16.gguf] [-f TEXT] [--mixes "Q3_K_M Q2_K"] [--chunks N] [-t 2]
#
# Defaults: ../shared/data/models/code-tiny-F16.gguf (a trained model) over
# ../shared/data/text/code-heldout.py.txt, all chunks. Files go to a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
model=../shared/data/models/code-tiny-F16.gguf
text=../shared/data/text/code-heldout.py.txt
mixes="Q3_K_M Q2_K"; chunks=""; threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    -m) model="$2"; shift 2 ;;
    -f) text="$2"; shift 2 ;;
    --mixes) mixes="$2"; shift 2 ;;
    --chunks) chunks="--chunks $2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
tachyon=./build/tachyon
[ -x "$tachyon" ] || { echo "build tachyon first (scripts/build.sh)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086
"$tachyon" perplexity -m "$model" -f "$text" $chunks --save-logits "$tmp/base.bin" -t "$threads" >/dev/null 2>&1
kld() {  # file -> "mean_kld top1"
  # shellcheck disable=SC2086
  "$tachyon" perplexity -m "$1" -f "$text" $chunks --kl-base "$tmp/base.bin" -t "$threads" 2>&1 |
    awk '/mean KLD/ {k=$3} /same top-1/ {p=$3} END {print k, p}'
}
echo "model $model, text $text"
printf "| mix | bytes | mean KLD | same top-1 | --budget (same bytes) | mean KLD | same top-1 | KLD ratio |\n|---|---|---|---|---|---|---|---|\n"
for mix in $mixes; do
  "$tachyon" quantize "$model" "$tmp/$mix.gguf" "$mix" >/dev/null 2>&1
  size=$(stat -c %s "$tmp/$mix.gguf")
  "$tachyon" quantize "$model" "$tmp/b-$mix.gguf" --budget "$size" 2>"$tmp/b-$mix.log" >/dev/null
  bsize=$(stat -c %s "$tmp/b-$mix.gguf")
  read -r k1 p1 < <(kld "$tmp/$mix.gguf")
  read -r k2 p2 < <(kld "$tmp/b-$mix.gguf")
  printf "| %s | %s | %s | %s | %s | %s | %s | %.2fx |\n" "$mix" "$size" "$k1" "$p1" "$bsize" "$k2" "$p2" \
    "$(echo "$k2 / $k1" | bc -l)"
  sed 's/^/    /' "$tmp/b-$mix.log" | grep "mix" || true
done
