#include "base/cpu.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace tachyon {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    unsigned a = 0, b = 0, cx = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &cx, &d)) c.f16c = (cx >> 29) & 1;  // F16C (clang has no builtin name for it)
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d)) c.avxvnni = (a >> 4) & 1;
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
#endif
    // TACHYON_NO_AVX512=1 runs the AVX2 kernels on an AVX-512 machine: to test them here
    // (the suite runs the kernel tests both ways) and to measure what AVX2-only CPUs get.
    if (const char* e = std::getenv("TACHYON_NO_AVX512"); e && *e && std::string(e) != "0")
      c.avx512f = c.avx512vnni = c.avx512vl = c.avx512bw = false;
    // TACHYON_NO_AVXVNNI=1 likewise leaves AVX2 without VNNI (maddubs + madd kernels).
    if (const char* e = std::getenv("TACHYON_NO_AVXVNNI"); e && *e && std::string(e) != "0") c.avxvnni = false;
    return c;
  }();
  return f;
}

std::string cpu_features_string() {
  const auto& f = cpu_features();
  std::string s;
  if (f.avx2) s += "AVX2 ";
  if (f.fma) s += "FMA ";
  if (f.f16c) s += "F16C ";
  if (f.avxvnni) s += "AVX_VNNI ";
  if (f.avx512f) s += "AVX512F ";
  if (f.avx512vnni) s += "AVX512_VNNI ";
  if (s.empty()) s = "scalar";
  else s.pop_back();
  return s;
}

}  // namespace tachyon
