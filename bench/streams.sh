#!/usr/bin/env bash
# Aggregate output throughput of 8 concurrent streams against one stream, on one
# `tachyon serve` (the serving issue's "8 concurrent decode streams >= 4x a single
# stream"). Alternates single-stream and 8-stream runs (the shared machines this runs on
# drift by 20-30% within minutes: only same-server, back-to-back ratios mean anything),
# each run with its own prompt seed so that no prompt hits the prefix cache.
#
# Prints per pair: output tok/s (whole requests: prefill + decode), the decode rate from
# TPOT (n / mean TPOT), and the engine's steady decode steps (TACHYON_STEP_LOG: median
# forward + gap of the steps where every token is a decode token, all n streams vs one).
#
#   bench/streams.sh MODEL.gguf [-t THREADS] [-c STREAMS] [--input-len N] [--output-len N]
#                    [--reps N] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:?usage: bench/streams.sh MODEL.gguf [-t THREADS] [-c STREAMS] [--input-len N] [--output-len N] [--reps N]}"
shift
threads=2; streams=8; input_len=32; output_len=128; reps=3; out=bench/results
while [ $# -gt 0 ]; do
  case "$1" in
    -t) threads="$2"; shift 2 ;;
    -c) streams="$2"; shift 2 ;;
    --input-len) input_len="$2"; shift 2 ;;
    --output-len) output_len="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
. bench/common.sh
ensure_tachyon

port=$((18000 + RANDOM % 1000))
log="$out/streams-serve.log"
TACHYON_STEP_LOG=1 "$tachyon" serve -m "$model" --port "$port" -t "$threads" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
wait_health "http://127.0.0.1:$port"

seed=$((1000 + RANDOM % 100000))
: >"$out/streams-marks.txt"
run() {  # concurrency n_requests output_len tag
  seed=$((seed + 1))
  echo "$4 $(wc -l <"$log")" >>"$out/streams-marks.txt"  # where this run's steps start in the log
  "$tachyon" bench run --url "http://127.0.0.1:$port" --concurrency "$1" --num-requests "$2" --input-len "$input_len" \
    --output-len "$3" --ignore-eos --seed "$seed" --tokenizer "$model" --no-progress \
    --output-json "$out/streams-$4.json" >/dev/null
}
run "$streams" "$streams" 16 warmup
for r in $(seq "$reps"); do
  run 1 4 "$output_len" "c1-$r"
  run "$streams" $((2 * streams)) "$output_len" "c$streams-$r"
done
kill $pid; wait $pid 2>/dev/null || true
trap - EXIT

python3 - "$out" "$streams" "$reps" "$log" <<'PY'
import json, re, statistics as st, sys
out, n, reps, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
marks = [(l.split()[0], int(l.split()[1])) for l in open(f"{out}/streams-marks.txt")]
def summ(tag):
    s = json.load(open(f"{out}/streams-{tag}.json"))["runs"][0]["summary"]
    k = 1 if tag.startswith("c1-") else n
    return s["output_throughput"], k * 1000.0 / s["tpot_ms"]["mean"], s["total_cached_tokens"], s["completed"]
# steady decode steps per run, from the step log (sections start at "run TAG")
steps, cur = {}, None
starts = {line_no: tag for tag, line_no in marks}
for i, line in enumerate(open(log)):
    if i in starts:
        cur = starts[i]; steps[cur] = []
    m = re.match(r"step ([\d.]+) ms \(([\d.]+) ms since the last\) tokens (\d+):(.*)", line)
    if m and cur and all(p.startswith("1@") for p in m[4].split()):
        steps[cur].append((int(m[3]), float(m[1]) + float(m[2])))
def steady(tag, k):
    xs = [ms for t, ms in steps.get(tag, []) if t == k]
    return k * 1000.0 / st.median(xs) if xs else float("nan")
ro, rd, rs = [], [], []
print(f"{'pair':>4} {'1-stream out':>12} {n:>2}-stream out {'ratio':>6}   decode(TPOT) {'ratio':>6}   steady steps {'ratio':>6}  cached")
for r in range(1, reps + 1):
    o1, d1, c1, _ = summ(f"c1-{r}")
    on, dn, cn, _ = summ(f"c{n}-{r}")
    s1, sn = steady(f"c1-{r}", 1), steady(f"c{n}-{r}", n)
    ro.append(on / o1); rd.append(dn / d1); rs.append(sn / s1)
    print(f"{r:>4} {o1:>12.1f} {on:>14.1f} {on/o1:>6.2f}   {d1:6.1f} {dn:6.1f} {dn/d1:>6.2f}   {s1:6.1f} {sn:6.1f} {sn/s1:>6.2f}  {c1}+{cn}")
print(f"median ratio: output {st.median(ro):.2f}  decode(TPOT) {st.median(rd):.2f}  steady decode steps {st.median(rs):.2f}")
PY
