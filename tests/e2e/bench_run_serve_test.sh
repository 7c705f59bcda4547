#!/usr/bin/env bash
# tachyon bench run against tachyon serve: a small closed-loop workload on each API, and
# the JSON report checked for completeness and consistency (every request succeeded,
# client token counts equal the server's usage, TTFT <= E2E, TPOT from its definition,
# throughputs > 0, the server-timing split of TTFT present and within the client's view).
# Runs "chat" and "completions" ask for logprobs, so the client counts tokens exactly
# and must agree with usage; run "completions-chunks" counts one token per chunk (a
# token that completes no character shares the next chunk), so a discrepancy with usage
# (or a chunk carries only held-back text) may occur and must then be flagged, with usage
# winning.
# The server starts on port 0 and is always stopped (trap).
# usage: bench_run_serve_test.sh TACHYON_BIN MODEL
set -uo pipefail
BIN=$1
MODEL=$2
if [ ! -f "$MODEL" ]; then
  echo "skipped: model $MODEL not found"
  exit 77
fi
if ! command -v python3 >/dev/null; then
  echo "skipped: python3 not found"
  exit 77
fi

TMP=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 -t 2 2>"$TMP/server.log" &
PID=$!
URL=""
for _ in $(seq 300); do
  URL=$(grep -o 'listening on http://[^ ]*' "$TMP/server.log" | sed 's/listening on //')
  [ -n "$URL" ] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$URL" ]; then
  echo "server did not start:"
  cat "$TMP/server.log"
  exit 1
fi

FAILS=0
for run in chat completions completions-chunks; do
  case $run in
    chat) args=(--api chat --extra-body '{"logprobs":true}') ;;
    completions) args=(--api completions --extra-body '{"logprobs":0}') ;;
    *) args=(--api completions) ;;
  esac
  timeout 120 "$BIN" bench run --url "$URL" "${args[@]}" --num-requests 8 --concurrency 4 --input-len 48 \
    --output-len 12 --ignore-eos --seed 7 --no-progress --save-text --output-json "$TMP/$run.json" >"$TMP/$run.txt" 2>&1
  rc=$?
  cat "$TMP/$run.txt"
  if [ "$rc" != 0 ]; then
    echo "FAIL $run: bench run exited $rc"
    FAILS=$((FAILS + 1))
    continue
  fi
  python3 - "$TMP/$run.json" "$run" "$URL" <<'PY' || FAILS=$((FAILS + 1))
import json, sys

path, label, url = sys.argv[1:4]
api = label.split("-")[0]
exact = label != "completions-chunks"
rep = json.load(open(path))
fails = []

def check(cond, what):
    print(("ok   " if cond else "FAIL ") + label + ": " + what)
    if not cond:
        fails.append(what)

N, MAX_TOKENS, EPS = 8, 12, 0.01
check(rep.get("command") == "run", "command is run")
prov = rep.get("provenance", {})
for k in ("tool", "version", "started_at", "command_line", "client_host", "workload", "arrival"):
    check(k in prov, "provenance." + k + " present")
check(prov.get("arrival", {}).get("concurrency") == 4, "provenance records concurrency 4")
check(prov.get("workload", {}).get("seed") == 7, "provenance records the seed")
runs = rep.get("runs", [])
check(len(runs) == 1, "one run")
run = runs[0]
check(run["endpoint"]["url"] == url and run["endpoint"]["api"] == api, "endpoint url and api recorded")
check(run["endpoint"].get("model"), "served model name recorded")
check(run.get("max_in_flight", 0) <= 4, "never more than 4 requests in flight")
reqs = run["requests"]
s = run["summary"]
check(len(reqs) == N and s["requests"] == N and s["completed"] == N, "8 requests sent and completed")
check(s["failed"] == 0 and s["timeouts"] == 0 and not s["errors"], "no failures, timeouts or errors")
check(all(r["status"] == "ok" for r in reqs), "every record has status ok")
check(all(r["finish_reason"] == "length" for r in reqs), "every request finished by length (ignore_eos)")
# token counts: exactly max_tokens each; the client's count == usage when exact, else
# every discrepancy flagged
check(all(r["usage"]["completion_tokens"] == MAX_TOKENS and r["output_tokens"] == MAX_TOKENS for r in reqs),
      "12 output tokens per request (usage and report)")
check(all(sum(r["chunk_tokens"]) == r["output_tokens"] for r in reqs), "chunk token counts sum to the output tokens")
check(s["token_counts"]["usage_missing"] == 0, "usage reported on every request")
n_diff = sum(r["output_tokens_client"] != r["usage"]["completion_tokens"] for r in reqs)
if exact:
    check(all(r["token_source"] == "logprobs" for r in reqs) and s["token_counts"]["source"] == "logprobs",
          "tokens counted from logprobs")
    check(n_diff == 0, "client-counted output tokens == usage.completion_tokens on every request")
    for r in reqs:
        if r["token_source"] != "logprobs" or r["output_tokens_client"] != r["usage"]["completion_tokens"]:
            print("     record:", json.dumps(r)[:1500])
    check(s["token_counts"]["mismatched"] == 0, "summary: no token-count mismatch")
else:
    check(all(r["token_source"] == "chunks" for r in reqs), "tokens counted by chunks")
    check(s["token_counts"]["mismatched"] == n_diff, "summary flags the %d chunk-count discrepancies" % n_diff)
check(s["total_output_tokens"] == sum(r["output_tokens"] for r in reqs), "total_output_tokens is the sum of records")
check(s["total_input_tokens"] == sum(r["usage"]["prompt_tokens"] for r in reqs),
      "total_input_tokens is the sum of usage.prompt_tokens")
# latencies
check(all(0 < r["ttft_ms"] <= r["e2e_ms"] + EPS for r in reqs), "0 < TTFT <= E2E for each record")
check(all(abs(r["e2e_ms"] - r["chunk_ms"][-1]) <= EPS and abs(r["ttft_ms"] - r["chunk_ms"][0]) <= EPS for r in reqs),
      "TTFT and E2E are the first and last token-bearing chunk")
check(all(r["e2e_ms"] <= r["end_ms"] + EPS for r in reqs), "E2E <= end of the response")
check(all(abs(r["tpot_ms"] - (r["e2e_ms"] - r["ttft_ms"]) / (r["output_tokens"] - 1)) < 1e-3 for r in reqs),
      "TPOT == (E2E - TTFT) / (N - 1)")
check(all(c2 >= c1 for r in reqs for c1, c2 in zip(r["chunk_ms"], r["chunk_ms"][1:])), "chunk times non-decreasing")
for m in ("ttft_ms", "e2e_ms", "tpot_ms", "itl_ms"):
    d = s[m]
    check(d["n"] > 0 and d["min"] <= d["p50"] <= d["p90"] <= d["p99"] <= d["max"] + EPS, m + " percentiles ordered")
check(s["ttft_ms"]["max"] <= s["e2e_ms"]["max"] + EPS, "max TTFT <= max E2E")
# chunk-aware ITL: each later chunk's gap counts once per token it carries
check(s["itl_ms"]["n"] == sum(r["output_tokens"] - r["chunk_tokens"][0] for r in reqs),
      "ITL has one gap per token after the first chunk")
# throughputs
for k in ("output_throughput", "request_throughput", "total_token_throughput", "window_s"):
    check(s[k] > 0, k + " > 0")
check(abs(s["request_throughput"] - N / s["window_s"]) / s["request_throughput"] < 0.01,
      "request throughput == completed / window")
check(abs(s["output_throughput"] - s["total_output_tokens"] / s["window_s"]) / s["output_throughput"] < 0.01,
      "output throughput == output tokens / window")
# the server-timing split of TTFT
b = s.get("ttft_breakdown_ms", {})
for k in ("queue", "prefill", "network_and_other"):
    check(k in b and b[k]["n"] == N, "ttft_breakdown_ms." + k + " over all requests")
for r in reqs:
    t = r.get("timings", {})
    ok = all(k in t for k in ("prompt_ms", "predicted_n", "queue_ms", "prompt_n", "cached_n"))
    ok = ok and t["predicted_n"] == r["usage"]["completion_tokens"]
    ok = ok and t["prompt_n"] + t["cached_n"] == r["usage"]["prompt_tokens"]
    ok = ok and t["cached_n"] == r["usage"]["cached_tokens"]
    ok = ok and t["queue_ms"] + t["prompt_ms"] <= r["ttft_ms"] + 0.5  # server time within the client's view
    if not ok:
        check(False, "server timings of request %d consistent with usage and TTFT: %s" % (r["index"], t))
        break
else:
    check(True, "server timings consistent with usage and within TTFT on every request")
sys.exit(1 if fails else 0)
PY
done

# bad endpoint: a clear message and a non-zero exit, promptly
timeout 30 "$BIN" bench run --url "http://127.0.0.1:1" --num-requests 2 --no-progress >"$TMP/bad.txt" 2>&1
rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qi 'connect' "$TMP/bad.txt"; then
  echo "ok   unreachable endpoint: exit $rc with a message"
else
  echo "FAIL unreachable endpoint: exit $rc: $(head -5 "$TMP/bad.txt")"
  FAILS=$((FAILS + 1))
fi

echo "$FAILS failure(s)"
[ "$FAILS" = 0 ]
