#!/usr/bin/env bash
# Fidelity on files the golden tests have not seen: synthesizes gemma3, phi3 and gemma2
# (and llama / qwen for comparison) models at other shapes - windows, layer patterns, soft-caps,
# rotary dims, head sizes, GQA ratios, tied or untied output - with
# ../shared/tools/gguf_synth.py, quantizes them with llama-quantize, and compares
# tachyon's token distributions with llama.cpp's on each file over a text:
# llama-perplexity --kl-divergence-base saves llama.cpp's log-probabilities, then
# `tachyon perplexity --kl-base` scores tachyon against them (mean/max KLD, top-1
# agreement, both perplexities). llama.cpp's file stores log-probabilities in 16 bits
# over a 16-nat range, so ~2e-4 of KLD is its rounding floor.
#
#   bench/unseen_families.sh --llama DIR [--types "F16 Q8_0 Q4_0 Q4_K_M"] [--ctx 256] [--chunks 4]
#                            [--only REGEX]   (configs whose name matches, e.g. --only qwen3moe)
#
# DIR holds a llama.cpp build's binaries (llama-quantize, llama-perplexity; never part of
# this repo). Prints a markdown table. (general.name stays "synthetic": llama.cpp looks up
# Phi-3 chat tokens in the vocabulary when a phi3 model's name mentions phi.)
set -euo pipefail
cd "$(dirname "$0")/.."
llama=""; types="F16 Q8_0 Q4_0 Q4_K_M"; ctx=256; chunks=4; threads=2; only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --llama) llama="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --ctx) ctx="$2"; shift 2 ;;
    --chunks) chunks="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$llama" ] || { echo "--llama DIR (a llama.cpp build's bin directory) is required" >&2; exit 2; }
tachyon=./build/tachyon
[ -x "$tachyon" ] || { echo "build tachyon first (scripts/build.sh)" >&2; exit 2; }
export LD_LIBRARY_PATH="$llama${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
synth=../shared/tools/gguf_synth.py
vocab=../shared/data/tokenizer/ggml-vocab-llama-spm.gguf
text=../shared/data/text/code-heldout.py.txt
dir=$(mktemp -d /tmp/tachyon-unseen.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# name | gguf_synth.py arguments
configs=(
  "gemma3-w32p4|--arch gemma3 --n-embd 384 --n-layer 8 --n-head 6 --n-head-kv 2 --head-dim 64 --n-ff 1024 --swa 32 --swa-pattern 4 --rope-base 1000000 --rope-base-swa 10000 --eps 1e-6 --tied"
  "gemma3-w7p2-cap|--arch gemma3 --n-embd 256 --n-layer 5 --n-head 8 --n-head-kv 8 --head-dim 32 --n-ff 768 --swa 7 --swa-pattern 2 --rope-base 500000 --rope-base-swa 20000 --softcap 50 --eps 1e-6"
  "gemma3-global|--arch gemma3 --n-embd 512 --n-layer 3 --n-head 2 --n-head-kv 1 --head-dim 256 --n-ff 1536 --eps 1e-6"
  "phi3-r16|--arch phi3 --n-embd 320 --n-layer 3 --n-head 10 --n-head-kv 5 --head-dim 32 --n-rot 16 --n-ff 640"
  "phi3-mha-r48|--arch phi3 --n-embd 384 --n-layer 4 --n-head 6 --n-head-kv 6 --head-dim 64 --n-rot 48 --n-ff 1024 --tied"
  "llama-gqa4|--arch llama --n-embd 512 --n-layer 3 --n-head 8 --n-head-kv 2 --n-ff 1024"
  "qwen3-hd128|--arch qwen3 --n-embd 256 --n-layer 3 --n-head 4 --n-head-kv 2 --head-dim 128 --n-ff 768 --eps 1e-6"
  "gemma2-w16p2-caps|gen:gemma2-test-tiny"
  "qwen3moe-e16k4|--arch qwen3moe --n-embd 384 --n-layer 3 --n-head 6 --n-head-kv 2 --head-dim 64 --n-ff 1024 --n-expert 16 --n-expert-used 4 --n-ff-exp 192 --eps 1e-6"
  "qwen3moe-e4k1|--arch qwen3moe --n-embd 256 --n-layer 4 --n-head 4 --n-head-kv 4 --head-dim 64 --n-ff 512 --n-expert 4 --n-expert-used 1 --n-ff-exp 512 --eps 1e-6"
)
printf "| file | type | tachyon PPL | llama.cpp PPL | mean KLD | max KLD | same top-1 |\n|---|---|---:|---:|---:|---:|---:|\n"
for c in "${configs[@]}"; do
  name=${c%%|*}; args=${c#*|}
  if [ -n "$only" ] && ! [[ "$name" =~ $only ]]; then continue; fi
  f16="$dir/$name-F16.gguf"
  if [ "${args#gen:}" != "$args" ]; then  # gguf_synth.py has no gemma2: tachyon gen-model's test shape
    "$tachyon" gen-model --preset "${args#gen:}" --type F16 -o "$f16" 2>/dev/null
  else
    # shellcheck disable=SC2086
    python3 "$synth" --vocab "$vocab" --vocab-limit 4096 --ctx 4096 --seed 7 --name synthetic $args -o "$f16" >/dev/null
  fi
  for type in $types; do
    f="$dir/$name-$type.gguf"
    [ "$type" = F16 ] || "$llama/llama-quantize" "$f16" "$f" "$type" "$threads" >/dev/null 2>&1
    "$llama/llama-perplexity" -m "$f" -f "$text" -c "$ctx" --chunks "$chunks" -t "$threads" -b "$ctx" \
      --kl-divergence-base "$dir/base.kld" > "$dir/llama.log" 2>&1 || true
    lppl=$(grep -oE "Final estimate: PPL = [0-9.]+" "$dir/llama.log" | grep -oE "[0-9.]+$" || true)
    if [ -z "$lppl" ]; then
      echo "| $name | $type | | llama-perplexity failed: $(tail -c 200 "$dir/llama.log" | tr '\n|' '  ') | | | |"
      continue
    fi
    "$tachyon" perplexity -m "$f" -f "$text" -c "$ctx" --chunks "$chunks" -t "$threads" --kl-base "$dir/base.kld" \
      --json > "$dir/t.json" 2>/dev/null
    python3 - "$name" "$type" "$lppl" "$dir/t.json" <<'PY'
import json, sys
name, typ, lppl, path = sys.argv[1:]
j = json.load(open(path))
k = j["kl"]
print("| %s | %s | %.4f | %s | %.6f | %.6f | %.2f%% |" % (name, typ, j["ppl"], lppl, k["kld_mean"], k["kld_max"], 100 * k["top1_agreement"]))
PY
  done
done
