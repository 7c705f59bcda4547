#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (what CI runs).
#   1. Debian packages (scripts/setup.sh, idempotent)
#   2. Release build + every test through CTest
#   3. on an AVX-512 machine, the kernel, model and golden tests again on the plain AVX2
#      kernels (TACHYON_NO_AVX512=1 TACHYON_NO_AVXVNNI=1), and where the CPU has AVX-VNNI
#      the kernel tests once more dispatching to the AVX-VNNI kernels, so that every
#      dispatch path is checked here
#   4. the file-parsing and kernel tests again under ASan+UBSan
#   5. a bounded libFuzzer run of the GGUF parser
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
./scripts/setup.sh

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900)

if grep -q avx512f /proc/cpuinfo 2>/dev/null; then
  for t in test_kernels test_model test_golden; do
    echo "== $t (AVX2 kernels: TACHYON_NO_AVX512=1 TACHYON_NO_AVXVNNI=1)"
    # the full-text perplexity and quantizer goldens check tools, not dispatch: once is enough
    TACHYON_NO_AVX512=1 TACHYON_NO_AVXVNNI=1 ./build/tests/"$t" --gtest_brief=1 \
      --gtest_filter='-CodeTiny/PerplexityGolden.*:Mixes/QuantizeGolden.*'
  done
  if grep -q avx_vnni /proc/cpuinfo 2>/dev/null; then
    echo "== test_kernels (AVX2 + AVX-VNNI kernels: TACHYON_NO_AVX512=1)"
    TACHYON_NO_AVX512=1 ./build/tests/test_kernels --gtest_brief=1
  fi
fi

# Sanitizer configuration: everything that parses untrusted bytes.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTACHYON_SANITIZE=ON >/dev/null
asan_targets=(test_gguf test_kernels test_kv)
for t in test_tokenizer test_chat test_sampling test_constrain test_server test_router; do
  grep -q "^$t:" <(cmake --build build-asan --target help 2>/dev/null | sed 's/ .*//') && asan_targets+=("$t")
done
cmake --build build-asan -j"$jobs" --target "${asan_targets[@]}"
for t in "${asan_targets[@]}"; do
  echo "== $t (ASan+UBSan)"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./build-asan/tests/"$t" --gtest_brief=1
done

./scripts/fuzz.sh "${TACHYON_FUZZ_SECONDS:-30}"
echo "all tests passed"
