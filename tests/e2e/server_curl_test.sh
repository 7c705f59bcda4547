#!/usr/bin/env bash
# tachyon serve driven by curl: endpoints, streaming, cached prefixes, every error
# status, and a clean SIGTERM with a stream in flight. Servers are started on port 0 and
# always stopped (trap), also when a check fails.
# usage: server_curl_test.sh TACHYON_BIN MODEL
set -uo pipefail
BIN=$1
MODEL=$2
if [ ! -f "$MODEL" ]; then
  echo "skipped: model $MODEL not found"
  exit 77
fi

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

FAILS=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }

# start_server NAME ARGS... -> sets URL_<NAME> and PID_<NAME>
start_server() {
  local name=$1
  shift
  "$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 -t 2 "$@" 2>"$TMP/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  local url=""
  for _ in $(seq 300); do
    url=$(grep -o 'listening on http://[^ ]*' "$TMP/$name.log" | sed 's/listening on //')
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "server $name did not start:"
    cat "$TMP/$name.log"
    exit 1
  fi
  printf -v "URL_$name" '%s' "$url"
  printf -v "PID_$name" '%s' "$pid"
}

# req ARGS... -> prints the status code; body in $TMP/body
req() { curl -s -o "$TMP/body" -w '%{http_code}' "$@"; }
body() { cat "$TMP/body"; }

# expect STATUS 'grep -E pattern on the body' DESCRIPTION -- curl args
expect() {
  local want=$1 pattern=$2 what=$3
  shift 4
  local got
  got=$(req "$@")
  if [ "$got" != "$want" ]; then
    fail "$what: status $got, want $want: $(head -c 300 "$TMP/body")"
  elif [ -n "$pattern" ] && ! grep -Eq -- "$pattern" "$TMP/body"; then
    fail "$what: body does not match /$pattern/: $(head -c 300 "$TMP/body")"
  else
    pass "$what"
  fi
}

start_server main
U=$URL_main
J=(-H 'Content-Type: application/json')
ERR='^\{"error":\{"message":".*","type":"[a-z_]+","param":(null|"[^"]*"),"code":(null|"[a-z_]+")\}\}$'

expect 200 '^\{"status":"ok"\}$' "GET /health" -- "$U/health"
expect 200 '"quantization":"Q8_0".*"context_length":[0-9]+' "GET /v1/models" -- "$U/v1/models"
expect 200 'tachyon_kv_pages_total [0-9]+' "GET /metrics" -- "$U/metrics"

expect 200 '"object":"chat.completion".*"finish_reason":"length".*"cached_tokens":[0-9]+' "chat, non-stream" -- \
  "${J[@]}" "$U/v1/chat/completions" -d '{"model":"any","messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"ignore_eos":true}'
expect 200 '"object":"text_completion".*"completion_tokens":5' "completions, non-stream" -- \
  "${J[@]}" "$U/v1/completions" -d '{"prompt":"Hello","max_tokens":5,"ignore_eos":true}'

# streaming: SSE framing, role chunk first, [DONE] last
code=$(curl -sN -o "$TMP/sse" -w '%{http_code}' "${J[@]}" "$U/v1/chat/completions" \
  -d '{"messages":[{"role":"user","content":"Stream"}],"max_tokens":8,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}')
n_data=$(grep -c '^data: ' "$TMP/sse")
if [ "$code" = 200 ] && [ "$(grep -v '^$' "$TMP/sse" | tail -1)" = "data: [DONE]" ] && [ "$n_data" -ge 4 ] &&
  grep -q '"delta":{"role":"assistant"' "$TMP/sse" && grep -q '"choices":\[\],"usage":{"prompt_tokens"' "$TMP/sse" &&
  [ "$(grep -vc -e '^data: ' -e '^$' "$TMP/sse")" = 0 ]; then
  pass "chat, stream (SSE, $n_data events)"
else
  fail "chat, stream: status $code: $(head -c 400 "$TMP/sse")"
fi

# a repeated long prefix is served from the prefix cache
PROMPT=$(for i in $(seq 150); do printf 'word%d ' "$i"; done)
req "${J[@]}" "$U/v1/completions" -d "{\"prompt\":\"$PROMPT\",\"max_tokens\":2}" >/dev/null
req "${J[@]}" "$U/v1/completions" -d "{\"prompt\":\"$PROMPT and more\",\"max_tokens\":2}" >/dev/null
cached=$(grep -o '"cached_tokens":[0-9]*' "$TMP/body" | head -1 | cut -d: -f2)
if [ "${cached:-0}" -gt 0 ]; then pass "cached_tokens $cached on a repeated prefix"; else fail "cached_tokens ${cached:-none}: $(body)"; fi

# seeds reproducible
S='{"prompt":"Seeded","max_tokens":12,"temperature":1,"seed":77,"ignore_eos":true}'
req "${J[@]}" "$U/v1/completions" -d "$S" >/dev/null
a=$(grep -o '"text":"[^"]*"' "$TMP/body")
req "${J[@]}" "$U/v1/completions" -d "$S" >/dev/null
b=$(grep -o '"text":"[^"]*"' "$TMP/body")
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "same seed, same text"; else fail "seeded texts differ: $a vs $b"; fi

# errors
expect 400 "$ERR" "400 invalid JSON" -- "${J[@]}" "$U/v1/chat/completions" -d '{"messages":[{"role":'
expect 400 '"param":"temperature"' "400 wrong type names the field" -- \
  "${J[@]}" "$U/v1/chat/completions" -d '{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}'
expect 400 '"param":"max_tokens"' "400 huge number" -- \
  "${J[@]}" "$U/v1/completions" -d '{"prompt":"x","max_tokens":1e300}'
printf '{"prompt":"\xff\xfe\xc3\x28","max_tokens":2}' >"$TMP/badutf8.json"
expect 400 "$ERR" "400 invalid UTF-8" -- "${J[@]}" "$U/v1/completions" --data-binary "@$TMP/badutf8.json"
expect 400 '"code":"context_length_exceeded"' "400 context_length_exceeded" -- \
  "${J[@]}" "$U/v1/completions" -d '{"prompt":"x","max_tokens":100000000}'
expect 404 "$ERR" "404 unknown route" -- "$U/v1/engines"
expect 405 "$ERR" "405 wrong method" -- -X DELETE "$U/v1/chat/completions"
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$TMP/big.json"
expect 413 "$ERR" "413 10 MB body" -- "${J[@]}" "$U/v1/completions" --data-binary "@$TMP/big.json"
expect 200 '"status":"ok"' "still healthy after bad input" -- "$U/health"

start_server keyed --api-key sekrit
expect 401 '"code":"invalid_api_key"' "401 without a key" -- "${J[@]}" "$URL_keyed/v1/completions" -d '{"prompt":"x","max_tokens":1}'
expect 401 '"code":"invalid_api_key"' "401 with a wrong key" -- -H 'Authorization: Bearer nope' "$URL_keyed/v1/models"
expect 200 '"object":"list"' "200 with the key" -- -H 'Authorization: Bearer sekrit' "$URL_keyed/v1/models"

start_server full --max-queue 0
code=$(curl -s -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' "${J[@]}" "$URL_full/v1/completions" -d '{"prompt":"x","max_tokens":1}')
if [ "$code" = 429 ] && grep -qi '^retry-after: 1' "$TMP/headers" && grep -Eq "$ERR" "$TMP/body"; then
  pass "429 with Retry-After when the queue is full"
else
  fail "429: status $code: $(cat "$TMP/headers" "$TMP/body")"
fi
expect 200 'tachyon_http_requests_total\{code="429"\} 1' "429 counted in /metrics" -- "$URL_full/metrics"

# SIGTERM with a stream in flight: the stream is cut, the server exits 0 promptly
curl -sN "${J[@]}" "$U/v1/completions" -d '{"prompt":"x","max_tokens":3000,"ignore_eos":true,"stream":true}' >"$TMP/cut" &
CURL_PID=$!
for _ in $(seq 100); do grep -q '^data: ' "$TMP/cut" 2>/dev/null && break; sleep 0.1; done
t0=$(date +%s%N)
kill -TERM "$PID_main"
wait "$PID_main"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$CURL_PID"
if [ "$rc" = 0 ] && [ "$ms" -lt 5000 ] && grep -q '^data: ' "$TMP/cut"; then
  pass "SIGTERM mid-stream: exit 0 in $ms ms"
else
  fail "SIGTERM: rc $rc after $ms ms; $(tail -3 "$TMP/main.log")"
fi

echo "$FAILS failure(s)"
[ "$FAILS" = 0 ]
