#pragma once
#include <string>

namespace tachyon {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avxvnni = false;  // AVX-VNNI: VEX-encoded 256-bit vpdpbusd (no AVX-512 needed)
  bool avx512f = false;
  bool avx512vnni = false;
  bool avx512vl = false;
  bool avx512bw = false;
};

// Detected once; cheap to call.
const CpuFeatures& cpu_features();
std::string cpu_features_string();

}  // namespace tachyon
