// Installers of the weight types added after the first seven, one pair per family of
// formats: *_ref fills the scalar reference entries of a traits table (both tables start
// from them), *_avx2 overwrites the fields it accelerates in the "best" table (called only
// when the CPU has AVX2+FMA+F16C). Each family lives in its own files:
//   legacy  (quant_legacy*.cpp): Q4_1, Q5_0, Q5_1, Q8_1 (activations), IQ4_NL, MXFP4, Q1_0,
//                                and the AVX2 kernels of Q4_0 (the 32-element micro-kernel)
//   kq      (quant_kq*.cpp):     Q2_K, Q3_K, IQ4_XS
//   iq23    (quant_iq23*.cpp):   IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S
//   iq1tq   (quant_iq1tq*.cpp):  IQ1_S, IQ1_M, TQ1_0, TQ2_0
//
// The typed reference kernels enter a table through the adapters below, which take the
// type-erased pointers of TypeTraits; most validate() entries are scales_finite.
#pragma once
#include <cstdint>

#include "base/fp16.h"
#include "kernels/traits.h"

namespace tachyon::kernels {

template <class Blk, void (*F)(const Blk*, float*, int64_t)>
void to_float_fn(const void* x, float* y, int64_t n) {
  F(static_cast<const Blk*>(x), y, n);
}
template <class Blk, void (*F)(const float*, Blk*, int64_t)>
void from_float_fn(const float* x, void* y, int64_t n) {
  F(x, static_cast<Blk*>(y), n);
}
template <class W, class A, float (*F)(int64_t, const W*, const A*)>
float vec_dot_fn(int64_t n, const void* w, const void* a) {
  return F(n, static_cast<const W*>(w), static_cast<const A*>(a));
}

// False when a block of x (n elements, QK per block) holds a NaN or infinite f16 scale d,
// or min (m, dmin) where the format has one: for the formats whose every other bit pattern
// is valid.
template <class Blk, int QK>
bool scales_finite(const void* x, int64_t n) {
  const auto finite = [](f16_t h) { return (h & 0x7C00) != 0x7C00; };
  const Blk* b = static_cast<const Blk*>(x);
  for (int64_t i = 0; i < n / QK; ++i) {
    if (!finite(b[i].d)) return false;
    if constexpr (requires { b[i].m; })
      if (!finite(b[i].m)) return false;
    if constexpr (requires { b[i].dmin; })
      if (!finite(b[i].dmin)) return false;
  }
  return true;
}

void install_legacy_ref(TypeTraits* table);
void install_kq_ref(TypeTraits* table);
void install_iq23_ref(TypeTraits* table);
void install_iq1tq_ref(TypeTraits* table);

#if defined(__x86_64__)
void install_legacy_avx2(TypeTraits* table);
void install_kq_avx2(TypeTraits* table);
void install_iq23_avx2(TypeTraits* table);
void install_iq1tq_avx2(TypeTraits* table);
#endif

}  // namespace tachyon::kernels
