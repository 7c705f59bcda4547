#!/usr/bin/env bash
# Installs the Debian packages tachyon needs to build and test. Idempotent: does nothing
# when every package is already installed. Safe to run as root (CI) or with sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libpcre2-dev libboost-dev
  libxxhash-dev  # 128-bit keys of the KV cache tiers (src/kv/cache_key.h)
  libssl-dev  # TLS for bench's https endpoints (Boost.Asio SSL)
  clang libclang-rt-14-dev
  curl nodejs
  python3 python3-jsonschema  # validates structured output in the e2e tests (tests/e2e/structured_test.py)
  chromium  # headless, renders the bench HTML report (tests/unit/bench/html_test.cpp)
)
# Debian's npm package; NodeSource's nodejs bundles npm and conflicts with it
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
