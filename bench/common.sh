# Shared by the bench scripts (source it from the repository root).

# The tachyon binary, built (Release) if it is missing.
tachyon=./build/tachyon
ensure_tachyon() {
  [ -x "$tachyon" ] || { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build --target tachyon; }
}

# Waits up to 2 minutes for URL/health to answer.
wait_health() {  # url
  for _ in $(seq 600); do curl -sf "$1/health" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "server at $1 did not become healthy" >&2; return 1
}
