#!/usr/bin/env bash
# Runs the OpenAI-SDK e2e tests (node/*.test.mjs) against the built tachyon binary.
# usage: run_node_tests.sh TACHYON_BIN MODEL WORKDIR
# The pinned SDK (node/package-lock.json) is installed with `npm ci` into WORKDIR (the
# build tree), never into the source tree, and only again when the lock file changes.
set -euo pipefail
bin=$1
model=$2
work=$3
src="$(cd "$(dirname "$0")" && pwd)/node"
if [ ! -f "$model" ]; then
  echo "skipped: model $model not found"
  exit 77
fi
mkdir -p "$work"
if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" || [ ! -f "$work/node_modules/openai/package.json" ]; then
  rm -f "$work/package-lock.json"
  cp "$src/package.json" "$src/package-lock.json" "$work/"
  if ! (cd "$work" && npm ci --no-audit --no-fund --prefer-offline); then
    rm -f "$work/package-lock.json"  # retry next time
    echo "error: npm ci failed (the npm registry or cache must be reachable)"
    exit 1
  fi
fi
cp "$src"/*.mjs "$work/"
cd "$work"
export TACHYON_BIN="$bin" TACHYON_MODEL="$model"
exec node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs
