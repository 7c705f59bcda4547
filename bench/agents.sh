#!/usr/bin/env bash
# Multi-agent workload from the serving issue: 4 agents share a ~465-token system prompt
# (random words), 3 turns each (every turn re-sends the history), 32 output tokens,
# streaming, temperature 0. Runs it against `tachyon serve` and, when given, llama-server
# on the same GGUF file, and prints TTFT and wall time side by side.
#
#   bench/agents.sh MODEL.gguf [--llama-server PATH] [-t THREADS] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: bench/agents.sh MODEL.gguf [--llama-server PATH] [-t THREADS]}"; shift
llama_server=""; threads=2; out=bench/results
while [ $# -gt 0 ]; do
  case "$1" in
    --llama-server) llama_server="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
. bench/common.sh
ensure_tachyon

workload=(--api chat --prefix-groups 1 --prefix-group-size 4 --prefix-len 465 --input-len 24 --turns 3
          --output-len 32 --temperature 0 --concurrency 4 --tokenizer "$model" --seed 7 --no-progress)

run_one() {  # name url
  "$tachyon" bench run --url "$2" --name "$1" "${workload[@]}" --output-json "$out/agents-$1.json" >"$out/agents-$1.txt"
  python3 - "$out/agents-$1.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
run = d["runs"][0] if "runs" in d else d
s = run.get("summary", run)
def g(*keys):
    x = s
    for k in keys:
        if not isinstance(x, dict) or k not in x: return float("nan")
        x = x[k]
    return x
print("%-12s TTFT p50 %8.0f ms  p90 %8.0f ms  wall %6.2f s  output %6.1f tok/s  cached %d/%d prompt tokens  ok %s" % (
    sys.argv[2], g("ttft_ms", "p50"), g("ttft_ms", "p90"), g("window_s"), g("output_throughput"),
    g("total_cached_tokens"), g("total_input_tokens"), g("completed")))
PY
}

port=$((18000 + RANDOM % 1000))
"$tachyon" serve -m "$model" --port "$port" -t "$threads" >"$out/tachyon-serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_health "http://127.0.0.1:$port"
run_one tachyon "http://127.0.0.1:$port"
kill $pid; wait $pid 2>/dev/null || true

if [ -n "$llama_server" ]; then
  port=$((port + 1))
  "$llama_server" -m "$model" --port "$port" -t "$threads" -np 4 -c 8192 >"$out/llama-server.log" 2>&1 &
  pid=$!
  wait_health "http://127.0.0.1:$port"
  run_one llama-server "http://127.0.0.1:$port"
  kill $pid; wait $pid 2>/dev/null || true
fi
