// Installers of the weight types added after the first seven, one pair per family of
// formats: *_ref fills the scalar reference entries of a traits table (both tables start
// from them), *_avx2 overwrites the fields it accelerates in the "best" table (called only
// when the CPU has AVX2+FMA+F16C). Each family lives in its own files:
//   legacy  (quant_legacy*.cpp): Q4_1, Q5_0, Q5_1, Q8_1 (activations), IQ4_NL, MXFP4, Q1_0
//   kq      (quant_kq*.cpp):     Q2_K, Q3_K, IQ4_XS
//   iq23    (quant_iq23*.cpp):   IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S
//   iq1tq   (quant_iq1tq*.cpp):  IQ1_S, IQ1_M, TQ1_0, TQ2_0
#pragma once
#include "kernels/traits.h"

namespace tachyon::kernels {

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
