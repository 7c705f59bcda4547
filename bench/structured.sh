#!/usr/bin/env bash
# The structured-output cost benchmark (issue 20): what response_format json_schema costs a
# 100k-vocabulary model.
#
#   1. decode tok/s with and without response_format json_schema (bench/schemas/nested.json
#      by default), greedy, same prompts and max_tokens, at 1 stream and at N concurrent
#      streams, on one `tachyon serve` of qwen2.5-0.5b shapes with the deepseek-llm vocabulary
#      (102k tokens, random weights). The rate compared is the per-token decode rate of each
#      request (the response's timings.predicted_per_second), not whole-request totals: a
#      schema's output ends when the document is complete, the unconstrained run uses
#      ignore_eos. Configurations alternate (rep 1 of each, then rep 2 ...): the shared
#      machines this runs on drift by 20-30% within minutes, so only back-to-back ratios mean
#      anything. Every request has its own prompt (no prefix-cache or identical-output
#      effects between streams).
#      Note: the shortest document of nested.json is 108 bytes, and a random-weight model never
#      closes a document on its own, so the engine's token budget (restrict_to_budget) binds for
#      the last ~108 tokens of every schema request: part of what is measured.
#   2. constrain_bench on the same vocabulary and schema: the constraint stage's time per
#      token (p50/p90/p99/max), masks computed vs cache hits, cold vs warm grammar.
#
#   bench/structured.sh [--build DIR] [--schema FILE] [-t THREADS] [-c STREAMS]
#                       [--max-tokens N] [--reps N] [--type TYPE] [--out DIR]
#
# Writes DIR/structured-report.txt (default bench/results/) and prints it. The model goes to
# bench/models/qwen2.5-0.5b-deepseek-vocab-TYPE.gguf (git-ignored), generated once.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build; schema=bench/schemas/nested.json; threads=2; streams=8; max_tokens=128; reps=2; type=Q4_0
out=bench/results
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --schema) schema="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    -c) streams="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --type) type="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out" bench/models
. bench/common.sh
tachyon="$build/tachyon"
bench_bin="$build/constrain_bench"
if [ ! -x "$tachyon" ] || [ ! -x "$bench_bin" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target tachyon constrain_bench
fi

vocab=../shared/data/tokenizer/ggml-vocab-deepseek-llm.gguf
model=bench/models/qwen2.5-0.5b-deepseek-vocab-$type.gguf
if [ ! -f "$model" ]; then
  "$tachyon" gen-model --preset qwen2.5-0.5b --vocab "$vocab" --type "$type" -t "$threads" -o "$model.tmp"
  mv "$model.tmp" "$model"
fi

port=$((18000 + RANDOM % 1000))
log="$out/structured-serve.log"
TACHYON_STEP_LOG=1 "$tachyon" serve -m "$model" --port "$port" -t "$threads" --no-webui >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_health "http://127.0.0.1:$port"

# The client: N concurrent /v1/completions requests, one JSON line per configuration run.
python3 - "http://127.0.0.1:$port" "$schema" "$streams" "$max_tokens" "$reps" "$out/structured-runs.jsonl" "$log" <<'PY'
import json, sys, threading, time, urllib.request
url, schema_path, streams, max_tokens, reps, runs_path, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
schema = json.load(open(schema_path))
seq = [0]

def request(prompt, use_schema, n_tokens):
    body = {"prompt": prompt, "max_tokens": n_tokens, "temperature": 0}
    if use_schema:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "customer", "schema": schema}}
    else:
        body["ignore_eos"] = True
    req = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)

def run(n, use_schema, n_tokens, tag):
    results = [None] * n
    def one(i):
        seq[0] += 1  # distinct prompts: no prefix-cache hits, no identical outputs across streams
        prompt = f"Record {tag}-{i}-{seq[0]}: write the customer record for account {1000 + 37 * i} as JSON."
        results[i] = request(prompt, use_schema, n_tokens)
    log_from = sum(1 for _ in open(log))  # this run's engine steps start here (TACHYON_STEP_LOG)
    t0 = time.time()
    ths = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ths: t.start()
    for t in ths: t.join()
    wall = time.time() - t0
    per = [r["timings"]["predicted_per_second"] for r in results]
    toks = [r["usage"]["completion_tokens"] for r in results]
    parsed = 0
    if use_schema:
        for r in results:
            try:
                json.loads(r["choices"][0]["text"]); parsed += 1
            except Exception:
                pass
    return {"tag": tag, "streams": n, "log_from": log_from, "log_to": sum(1 for _ in open(log)), "schema": use_schema, "wall_s": wall, "decode_tok_s": per,
            "completion_tokens": toks, "parsed": parsed, "finish": [r["choices"][0]["finish_reason"] for r in results],
            "sample": results[0]["choices"][0]["text"][:300]}

out = open(runs_path, "w")
# warm-up: loads the weights into the page cache, builds the TokenIndex and compiles the
# schema's grammar (both once per server); its time is reported, not compared.
w = run(1, True, 8, "warmup-schema"); out.write(json.dumps(w) + "\n")
w = run(1, False, 8, "warmup-plain"); out.write(json.dumps(w) + "\n")
for rep in range(1, reps + 1):
    for n in (1, streams):
        for use_schema in (False, True):
            r = run(n, use_schema, max_tokens, f"c{n}-{'schema' if use_schema else 'plain'}-{rep}")
            r["rep"] = rep
            out.write(json.dumps(r) + "\n"); out.flush()
            print(f"  {r['tag']:<18} wall {r['wall_s']:6.2f} s  tokens {sum(r['completion_tokens']):5d}  "
                  f"decode tok/s per stream {sum(r['decode_tok_s']) / n:6.2f}", file=sys.stderr)
PY
curl -s "http://127.0.0.1:$port/metrics" >"$out/structured-metrics.txt" || true
kill $pid; wait $pid 2>/dev/null || true
trap - EXIT

report="$out/structured-report.txt"
{
  echo "# structured output cost: $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+dirty')"
  echo "# model $model, $threads threads, max_tokens $max_tokens, schema $schema, $(nproc) cores"
  python3 - "$out/structured-runs.jsonl" "$streams" "$log" <<'PY'
import json, re, statistics as st, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
n = int(sys.argv[2])
log = open(sys.argv[3]).read().splitlines()
def steps(r):
    """(forward ms, gap ms) of the run's steady decode steps: every sequence decoding, all streams in the batch."""
    xs = []
    for line in log[r["log_from"]:r["log_to"]]:
        m = re.match(r"step ([\d.]+) ms \(([\d.]+) ms since the last\) tokens (\d+):(.*)", line)
        if m and int(m[3]) == r["streams"] and all(p.startswith("1@") for p in m[4].split()):
            xs.append((float(m[1]), float(m[2])))
    return xs
for w in runs:
    if w["tag"].startswith("warmup"):
        print(f"{w['tag']}: first request {w['wall_s'] * 1000:.0f} ms wall (8 tokens)")
by = {}
for r in runs:
    if "rep" in r: by[(r["streams"], r["schema"], r["rep"])] = r
print(f"\n{'streams':>7} {'rep':>3} {'plain tok/s':>11} {'schema tok/s':>12} {'ratio':>6}   {'plain agg':>9} {'schema agg':>10}   tokens plain/schema  schema parsed  finish")
ratios = {}
for (s, use, rep), r in sorted(by.items()):
    if use: continue
    j = by.get((s, True, rep))
    if not j: continue
    p = sum(r["decode_tok_s"]) / s   # per-stream decode rate (timings.predicted_per_second), mean over streams
    q = sum(j["decode_tok_s"]) / s
    pa = sum(r["completion_tokens"]) / r["wall_s"]  # aggregate, wall clock, prefill included
    qa = sum(j["completion_tokens"]) / j["wall_s"]
    ratios.setdefault(s, []).append(q / p)
    print(f"{s:>7} {rep:>3} {p:>11.2f} {q:>12.2f} {q / p:>6.3f}   {pa:>9.1f} {qa:>10.1f}   "
          f"{sum(r['completion_tokens']):>6}/{sum(j['completion_tokens']):<6}      {j['parsed']}/{s}        {','.join(sorted(set(j['finish'])))}")
for s, rs in sorted(ratios.items()):
    verdict = "ok" if st.median(rs) >= 0.95 else "BELOW 0.95"
    print(f"json_schema / plain decode tok/s at {s} stream{'s' if s > 1 else ''}: median {st.median(rs):.3f} "
          f"(runs {', '.join(f'{x:.3f}' for x in rs)})  [{verdict}]")
print(f"\nengine steps (TACHYON_STEP_LOG), steady decode steps with all streams in the batch, median ms:")
print(f"{'streams':>7} {'rep':>3} {'plain fwd':>9} {'gap':>6} {'step':>6}   {'schema fwd':>10} {'gap':>6} {'step':>6}   {'step ratio':>10} {'gap delta':>9}  steps")
for (s, use, rep), r in sorted(by.items()):
    if use or (s, True, rep) not in by: continue
    a, b = steps(r), steps(by[(s, True, rep)])
    if not a or not b: continue
    fa, ga = st.median(x[0] for x in a), st.median(x[1] for x in a)
    fb, gb = st.median(x[0] for x in b), st.median(x[1] for x in b)
    sa, sb = st.median(x[0] + x[1] for x in a), st.median(x[0] + x[1] for x in b)
    print(f"{s:>7} {rep:>3} {fa:>9.2f} {ga:>6.2f} {sa:>6.2f}   {fb:>10.2f} {gb:>6.2f} {sb:>6.2f}   {sa / sb:>10.3f} {gb - ga:>+9.2f}  {len(a)}/{len(b)}")
print("(step ratio = plain step / schema step: the decode rate ratio without client, HTTP and prefill effects;")
print(" gap = ms between two forwards: sampling, the constraint stage, commit, notify, scheduling)")
m = {}
try:
    for line in open(sys.argv[3].replace("structured-serve.log", "structured-metrics.txt")):
        if line.startswith("tachyon_constrain"):
            k, v = line.split()[:2]; m[k] = float(v)
except OSError:
    pass
t = m.get("tachyon_constrained_tokens_total", 0)
if t:
    masks = m.get("tachyon_constraint_masks_total", 0); hits = m.get("tachyon_constraint_mask_cache_hits_total", 0)
    print(f"\nserver /metrics (all schema requests, warm-up included): {t:.0f} constrained tokens, "
          f"{m.get('tachyon_constraint_seconds_total', 0) * 1e6 / t:.0f} us/token in the constraint stage "
          f"(its draws included), masks {masks:.0f} ({100 * masks / t:.0f}% of tokens), cache hits {hits:.0f} "
          f"({100 * hits / max(1, masks):.0f}%), budget restricts {m.get('tachyon_constraint_budget_restricts_total', 0):.0f}")
sample = next((r["sample"] for r in runs if r.get("schema") and "rep" in r), "")
print(f"sample schema output: {sample!r}")
PY
  echo
  echo "# constrain_bench --vocab $vocab --schema $schema --tokens $((max_tokens * 2))"
  "$bench_bin" --vocab "$vocab" --schema "$schema" --tokens $((max_tokens * 2)) --requests 6 --grammars 2
} >"$report" 2>&1
cat "$report"
