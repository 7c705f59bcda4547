#!/usr/bin/env bash
# One command from a fresh clone: install packages, build, and serve a model over the
# OpenAI API on http://127.0.0.1:${PORT:-8080}.
#   scripts/run.sh [MODEL.gguf] [more `tachyon serve` flags]
# With no model it generates a small DEMO MODEL WITH RANDOM WEIGHTS (SmolLM2-135M shape,
# with a made-up vocabulary of its own, so nothing outside the repository is needed): its
# text is gibberish by design; it shows the server working, not a trained model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target tachyon
model="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$model" ]; then
  model=build/demo/demo-smollm2-135m-random-Q8_0-v2.gguf
  if [ ! -f "$model" ]; then
    mkdir -p build/demo
    ./build/tachyon gen-model --preset smollm2-135m --type Q8_0 -o "$model"
  fi
  echo "== no model given: serving $model (RANDOM WEIGHTS, demo only; pass a real GGUF file as the first argument)" >&2
fi
echo "== chat page: http://127.0.0.1:${PORT:-8080}/ (in a browser)" >&2
echo "== try: curl http://127.0.0.1:${PORT:-8080}/v1/chat/completions -H 'Content-Type: application/json' -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":16}'" >&2
exec ./build/tachyon serve -m "$model" --port "${PORT:-8080}" "$@"
