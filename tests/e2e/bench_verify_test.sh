#!/usr/bin/env bash
# tachyon bench verify against tachyon serve: for each of mini-llama F16 / Q8_0 / Q4_0
# served, verify names the served file among the three (plus mini-qwen2-F16, a different
# model that must be "no match"); a served mini-qwen2-Q8_0 matches none of the llama
# files (exit 3). Servers start on port 0 and are always stopped (trap).
# usage: bench_verify_test.sh TACHYON_BIN MODELS_DIR
set -uo pipefail
BIN=$1
DIR=$2
LLAMA=("$DIR/mini-llama-F16.gguf" "$DIR/mini-llama-Q8_0.gguf" "$DIR/mini-llama-Q4_0.gguf")
QWEN_F16="$DIR/mini-qwen2-F16.gguf"
QWEN_Q8="$DIR/mini-qwen2-Q8_0.gguf"
source "$(dirname "$0")/verify_lib.sh"
skip_unless_files "${LLAMA[@]}" "$QWEN_F16" "$QWEN_Q8"

# verdict_of JSON PATH -> the candidate's verdict
verdict_of() {
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next(c["verdict"] for c in r["candidates"] if c["path"]==sys.argv[2]))' "$1" "$2"
}

VERIFY=(bench verify --probes 4 --max-tokens 12 -t 2 --timeout 30s)
REFS=()
for f in "${LLAMA[@]}" "$QWEN_F16"; do REFS+=(--reference "$f"); done

for served in "${LLAMA[@]}"; do
  name=$(basename "$served")
  start_tachyon "$served"
  timeout 60 "$BIN" "${VERIFY[@]}" --url "$URL" --model "$name" "${REFS[@]}" --json "$TMP/v.json" >"$TMP/out.txt" 2>"$TMP/err.txt"
  rc=$?
  cat "$TMP/out.txt"
  stop_server
  if [ "$rc" != 0 ]; then
    fail "$name served: exit $rc, want 0: $(tail -3 "$TMP/err.txt")"
    continue
  fi
  match=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["match"])' "$TMP/v.json")
  qv=$(verdict_of "$TMP/v.json" "$QWEN_F16")
  if [ "$match" = "$served" ]; then pass "$name served: matched"; else fail "$name served: matched '$match'"; fi
  if [ "$qv" = "no match" ] || [ "$qv" = "mismatch" ]; then pass "$name served: mini-qwen2-F16 rejected ($qv)"; else
    fail "$name served: mini-qwen2-F16 verdict '$qv'"; fi
  for other in "${LLAMA[@]}"; do
    [ "$other" = "$served" ] && continue
    v=$(verdict_of "$TMP/v.json" "$other")
    if [ "$v" = "no match" ]; then pass "$name served: $(basename "$other") no match"; else
      fail "$name served: $(basename "$other") verdict '$v'"; fi
  done
done

# a different model: none of the llama files matches (exit 3)
start_tachyon "$QWEN_Q8"
LREFS=()
for f in "${LLAMA[@]}"; do LREFS+=(--reference "$f"); done
timeout 60 "$BIN" "${VERIFY[@]}" --url "$URL" "${LREFS[@]}" --json "$TMP/n.json" >"$TMP/out.txt" 2>"$TMP/err.txt"
rc=$?
cat "$TMP/out.txt"
if [ "$rc" = 3 ] && grep -q 'matches none of the references' "$TMP/out.txt" &&
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["match"] is None else 1)' "$TMP/n.json"; then
  pass "mini-qwen2-Q8_0 served: no llama reference matches (exit 3)"
else
  fail "mini-qwen2-Q8_0 served: exit $rc, want 3: $(tail -3 "$TMP/err.txt")"
fi
# same endpoint, chat API, with its own file among the candidates: a match
timeout 60 "$BIN" "${VERIFY[@]}" --api chat --url "$URL" --reference "${LLAMA[0]}" --reference "$QWEN_F16" \
  --reference "$QWEN_Q8" >"$TMP/out.txt" 2>"$TMP/err.txt"
rc=$?
if [ "$rc" = 0 ] && grep -q "verdict: the endpoint serves $QWEN_Q8" "$TMP/out.txt"; then
  pass "chat API: mini-qwen2-Q8_0 identified"
else
  fail "chat API: exit $rc: $(cat "$TMP/out.txt") $(tail -3 "$TMP/err.txt")"
fi
stop_server

# errors: unreachable endpoint (non-zero, fast), usage errors (2)
timeout 30 "$BIN" "${VERIFY[@]}" --url "$URL" --reference "${LLAMA[0]}" >"$TMP/out.txt" 2>"$TMP/err.txt"
rc=$?
if [ "$rc" = 1 ] && grep -q 'error: endpoint .*connect' "$TMP/err.txt"; then pass "unreachable endpoint: exit 1 with a message"; else
  fail "unreachable endpoint: exit $rc: $(cat "$TMP/err.txt")"; fi
"$BIN" bench verify --url "$URL" >/dev/null 2>&1
rc=$?
if [ "$rc" = 2 ]; then pass "no --reference: exit 2"; else fail "no --reference: exit $rc"; fi
"$BIN" bench verify --url "$URL" --reference "$TMP/none.gguf" >/dev/null 2>&1
rc=$?
if [ "$rc" = 2 ]; then pass "missing reference file: exit 2"; else fail "missing reference file: exit $rc"; fi

echo "$FAILS failure(s)"
[ "$FAILS" = 0 ]
