#!/usr/bin/env bash
# One command from a fresh clone: install packages, build, and generate text.
#   scripts/run.sh [MODEL.gguf] [PROMPT]
# With no model, it uses a small demo model with RANDOM WEIGHTS from ../shared/data
# (the output is gibberish by design: it shows the engine working, not a trained model).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target tachyon
model="${1:-}"
prompt="${2:-Once upon a time}"
if [ -z "$model" ]; then
  model=../shared/data/models/mini-llama-Q8_0.gguf
  echo "== no model given: using $model (RANDOM WEIGHTS, demo only; pass a real GGUF file as the first argument)" >&2
fi
exec ./build/tachyon run -m "$model" -p "$prompt" -n 64
