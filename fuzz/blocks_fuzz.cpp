// libFuzzer target: every weight type's block decoders on arbitrary bytes. The first byte
// picks a weight type from the kernel registry, the rest are whole blocks of it; every
// variant of the type (reference and each SIMD stage this CPU runs) validates,
// dequantizes and dots them with a fixed activation row. Nothing may read or write out of
// bounds or hit undefined behaviour, whatever the scales and indices hold; blocks that a
// type's validate() accepts must dequantize to finite values.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& types = weight_types();
  if (size < 1 || types.empty()) return 0;
  const DType t = types[data[0] % types.size()];
  const DTypeInfo info = dtype_info(t);
  const TypeTraits* ref = type_traits_ref(t);
  // a row of whole super-blocks of the activation format (256 elements covers every type)
  const int64_t unit = std::max<int64_t>(info.block_elems, 256);
  const int64_t n_units = static_cast<int64_t>((size - 1) / (unit / info.block_elems * info.block_bytes));
  if (n_units == 0 || n_units > 16) return 0;
  const int64_t n = n_units * unit;
  std::vector<uint8_t> w(data + 1, data + 1 + row_bytes(t, n));
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  const DType at = ref->vec_dot_type;
  std::vector<uint8_t> a(row_bytes(at, n));
  type_traits_ref(at)->from_float(x.data(), a.data(), n);
  std::vector<float> y(n);
  for (const KernelVariant& v : kernel_variants(t)) {
    const bool ok = v.traits->validate && v.traits->validate(w.data(), n);
    v.traits->to_float(w.data(), y.data(), n);
    if (ok)
      for (float f : y)
        if (!std::isfinite(f)) std::abort();
    (void)v.traits->vec_dot(n, w.data(), a.data());
    if (v.traits->vec_dot_tile) {
      float out[2];
      std::vector<uint8_t> a2(a);
      a2.insert(a2.end(), a.begin(), a.end());
      v.traits->vec_dot_tile(n, 1, 2, w.data(), w.size(), a2.data(), a.size(), out, 1);
    }
  }
  return 0;
}
