#!/usr/bin/env bash
# tachyon bench verify on the trained code-tiny models (the small draft
# model in F16 and Q8_0, and code-tiny, another model with the same vocabulary), against
# tachyon serve or, with --llama-server PATH, llama.cpp's llama-server (built outside the
# repo). References: code-tiny-draft-F16 and code-tiny-draft-Q8_0.
#   served draft-Q8_0 -> names Q8_0; served draft-F16 -> names F16; served code-tiny-Q8_0
#   -> matches none (exit 3). Against tachyon serve the served file's distance is <= 0.01
#   (same engine, same file), through /v1/completions (text-only logprobs, the legacy
#   shape) and /v1/chat/completions (ids and bytes).
# usage: bench_verify_code_tiny.sh TACHYON_BIN MODELS_DIR [--llama-server PATH]
set -uo pipefail
BIN=$1
DIR=$2
LLAMA_SERVER=""
[ "${3:-}" = "--llama-server" ] && LLAMA_SERVER=$4
F16="$DIR/code-tiny-draft-F16.gguf"
Q8="$DIR/code-tiny-draft-Q8_0.gguf"
OTHER="$DIR/code-tiny-Q8_0.gguf"
source "$(dirname "$0")/verify_lib.sh"
skip_unless_files "$F16" "$Q8" "$OTHER"

# start_server MODEL -> sets URL and PID
start_server() {
  if [ -n "$LLAMA_SERVER" ]; then
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    LD_LIBRARY_PATH="$(dirname "$LLAMA_SERVER"):${LD_LIBRARY_PATH:-}" "$LLAMA_SERVER" -m "$1" --host 127.0.0.1 \
      --port "$port" -t 2 -c 2048 >"$TMP/server.log" 2>&1 &
    PID=$!
    URL="http://127.0.0.1:$port"
    for _ in $(seq 300); do
      curl -sf "$URL/health" >/dev/null 2>&1 && return 0
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.1
    done
    echo "llama-server for $1 did not start:"
    tail -20 "$TMP/server.log"
    exit 1
  fi
  start_tachyon "$1"
}

# field JSON PATH KEY -> a candidate's field
field() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next(c[sys.argv[3]] for c in r["candidates"] if c["path"]==sys.argv[2]))' "$1" "$2" "$3"
}

VERIFY=(bench verify --probes 8 --max-tokens 16 -t 2 --timeout 60s --reference "$F16" --reference "$Q8")
APIS=(completions chat)
for served in "$Q8" "$F16" "$OTHER"; do
  name=$(basename "$served")
  start_server "$served"
  for api in "${APIS[@]}"; do
    timeout 120 "$BIN" "${VERIFY[@]}" --api "$api" --url "$URL" --json "$TMP/v.json" >"$TMP/out.txt" 2>"$TMP/err.txt"
    rc=$?
    cat "$TMP/out.txt"
    if [ "$served" = "$OTHER" ]; then
      if [ "$rc" = 3 ]; then pass "$name served ($api): matches none"; else
        fail "$name served ($api): exit $rc, want 3: $(tail -3 "$TMP/err.txt")"; fi
      continue
    fi
    match=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["match"])' "$TMP/v.json" 2>/dev/null)
    if [ "$rc" = 0 ] && [ "$match" = "$served" ]; then pass "$name served ($api): named"; else
      fail "$name served ($api): exit $rc, matched '$match': $(tail -3 "$TMP/err.txt")"; continue; fi
    d=$(field "$TMP/v.json" "$served" distance)
    cov=$(field "$TMP/v.json" "$served" coverage)
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 0.999 else 1)' "$cov"; then
      pass "$name served ($api): every token mapped (coverage $cov)"; else fail "$name served ($api): coverage $cov"; fi
    if [ -z "$LLAMA_SERVER" ]; then
      if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 0.01 else 1)' "$d"; then
        pass "$name served ($api): its own distance $d <= 0.01"; else fail "$name served ($api): own distance $d > 0.01"; fi
    else
      echo "     $name served ($api): its own distance $d"
    fi
  done
  stop_server
done

# bench compare --reference: the leaderboard, JSON and HTML say which file the endpoint serves;
# bench verify --output-html writes its own page.
if [ -z "$LLAMA_SERVER" ]; then
  start_server "$Q8"
  printf '[[endpoint]]\nname = "q8"\nurl = "%s"\nprice_input_per_m = 0.1\nprice_output_per_m = 0.2\n' "$URL" >"$TMP/eps.toml"
  timeout 120 "$BIN" bench compare --config "$TMP/eps.toml" --num-requests 4 --input-len 16 --output-len 8 --no-progress \
    --reference "$F16" --reference "$Q8" --output-json "$TMP/c.json" --output-html "$TMP/c.html" >"$TMP/out.txt" 2>"$TMP/err.txt"
  rc=$?
  cat "$TMP/out.txt"
  if [ "$rc" = 0 ] && grep -q "code-tiny-draft-Q8_0.gguf .*ok" "$TMP/out.txt" &&
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["verify"][0]; sys.exit(0 if v["match"]==sys.argv[2] and v["endpoint"]=="q8" else 1)' "$TMP/c.json" "$Q8" &&
    grep -q 'serves <b>code-tiny-draft-Q8_0.gguf</b>' "$TMP/c.html" && grep -q 'serves (verify)' "$TMP/c.html" &&
    grep -q 'bench verify: it serves code-tiny-draft-Q8_0.gguf' "$TMP/out.txt"; then
    pass "compare --reference: leaderboard, JSON, HTML and recommendation name the served file"
  else
    fail "compare --reference: exit $rc: $(tail -5 "$TMP/err.txt")"
  fi
  timeout 120 "$BIN" "${VERIFY[@]}" --url "$URL" --output-html "$TMP/v.html" >/dev/null 2>&1
  rc=$?
  if [ "$rc" = 0 ] && grep -q 'serves <b>code-tiny-draft-Q8_0.gguf</b>' "$TMP/v.html" && grep -q 'decided by mean |dlogprob|' "$TMP/v.html"; then
    pass "verify --output-html: the page names the served file and the evidence"
  else
    fail "verify --output-html: exit $rc"
  fi
  stop_server
fi

echo "$FAILS failure(s)"
[ "$FAILS" = 0 ]
