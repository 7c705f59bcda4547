#include "kernels/traits.h"

#include <atomic>
#include <utility>

#include "kernels/quant.h"
#include "kernels/quant_fit_iq.h"
#include "kernels/quant_groups.h"
#include "kernels/simd.h"

namespace tachyon::kernels {

namespace {

void f32_copy(const void* x, float* y, int64_t n) {
  const float* s = static_cast<const float*>(x);
  for (int64_t i = 0; i < n; ++i) y[i] = s[i];
}
void f32_from(const float* x, void* y, int64_t n) {
  float* d = static_cast<float*>(y);
  for (int64_t i = 0; i < n; ++i) d[i] = x[i];
}

constexpr int kMaxType = kDTypeIdEnd;

struct Tables {
  TypeTraits ref[kMaxType] = {};
  TypeTraits avx2[kMaxType] = {};  // ref + the AVX2 stage (when the CPU has it)
  TypeTraits best[kMaxType] = {};  // avx2 + the AVX-512 stage
  bool has[kMaxType] = {};
  bool has_avx2 = false, has_avx512 = false;
  std::vector<DType> weights;
  std::string weight_names;

  Tables() {
    auto put = [&](TypeTraits t) {
      ref[static_cast<int>(t.type)] = t;
    };
    put({DType::F32, DType::F32, f32_copy, f32_from, vec_dot_fn<float, float, vec_dot_f32_ref>, "ref"});
    put({DType::F16, DType::F16, to_float_fn<f16_t, dequantize_f16_ref>, from_float_fn<f16_t, quantize_f16_ref>,
         vec_dot_fn<f16_t, f16_t, vec_dot_f16_ref>, "ref"});
    put({DType::BF16, DType::BF16, to_float_fn<bf16_t, dequantize_bf16_ref>, from_float_fn<bf16_t, quantize_bf16_ref>,
         vec_dot_fn<bf16_t, bf16_t, vec_dot_bf16_ref>, "ref"});
    put({DType::Q4_0, DType::Q8_0, to_float_fn<BlockQ4_0, dequantize_q4_0_ref>, from_float_fn<BlockQ4_0, quantize_q4_0_ref>,
         vec_dot_fn<BlockQ4_0, BlockQ8_0, vec_dot_q4_0_q8_0_ref>, "ref"});
    put({DType::Q8_0, DType::Q8_0, to_float_fn<BlockQ8_0, dequantize_q8_0_ref>, from_float_fn<BlockQ8_0, quantize_q8_0_ref>,
         vec_dot_fn<BlockQ8_0, BlockQ8_0, vec_dot_q8_0_q8_0_ref>, "ref"});
    put({DType::Q4_K, DType::Q8_K, to_float_fn<BlockQ4_K, dequantize_q4_K_ref>, from_float_fn<BlockQ4_K, quantize_q4_K_ref>,
         vec_dot_fn<BlockQ4_K, BlockQ8_K, vec_dot_q4_K_q8_K_ref>, "ref"});
    put({DType::Q5_K, DType::Q8_K, to_float_fn<BlockQ5_K, dequantize_q5_K_ref>, from_float_fn<BlockQ5_K, quantize_q5_K_ref>,
         vec_dot_fn<BlockQ5_K, BlockQ8_K, vec_dot_q5_K_q8_K_ref>, "ref"});
    put({DType::Q6_K, DType::Q8_K, to_float_fn<BlockQ6_K, dequantize_q6_K_ref>, from_float_fn<BlockQ6_K, quantize_q6_K_ref>,
         vec_dot_fn<BlockQ6_K, BlockQ8_K, vec_dot_q6_K_q8_K_ref>, "ref"});
    ref[static_cast<int>(DType::Q8_0)].quantize_weights = from_float_fn<BlockQ8_0, quantize_q8_0_weights_ref>;
    // Q8_K exists only as an activation format.
    put({DType::Q8_K, DType::Q8_K, to_float_fn<BlockQ8_K, dequantize_q8_K_ref>, from_float_fn<BlockQ8_K, quantize_q8_K_ref>,
         nullptr, "ref"});
    install_legacy_ref(ref);
    install_kq_ref(ref);
    install_iq23_ref(ref);
    install_iq1tq_ref(ref);
    const std::pair<DType, decltype(TypeTraits::quantize_weighted)> weighted[] = {
        {DType::Q4_0, quantize_q4_0_weighted_ref},     {DType::Q4_1, quantize_q4_1_weighted_ref},
        {DType::Q5_0, quantize_q5_0_weighted_ref},     {DType::Q5_1, quantize_q5_1_weighted_ref},
        {DType::Q2_K, quantize_q2_K_weighted_ref},     {DType::Q3_K, quantize_q3_K_weighted_ref},
        {DType::Q4_K, quantize_q4_K_weighted_ref},     {DType::Q5_K, quantize_q5_K_weighted_ref},
        {DType::Q6_K, quantize_q6_K_weighted_ref},     {DType::IQ4_NL, quantize_iq4_nl_weighted_ref},
        {DType::IQ4_XS, quantize_iq4_xs_weighted_ref},   {DType::IQ2_XXS, quantize_iq2_xxs_weighted_ref},
        {DType::IQ2_XS, quantize_iq2_xs_weighted_ref},   {DType::IQ2_S, quantize_iq2_s_weighted_ref},
        {DType::IQ3_XXS, quantize_iq3_xxs_weighted_ref}, {DType::IQ3_S, quantize_iq3_s_weighted_ref},
        {DType::IQ1_S, quantize_iq1_s_weighted_ref},     {DType::IQ1_M, quantize_iq1_m_weighted_ref},
    };
    for (const auto& [t, fn] : weighted) ref[static_cast<int>(t)].quantize_weighted = fn;
    // Grid formats llama.cpp also quantizes without a matrix (IQ2_XXS, IQ2_XS, IQ1_S need one).
    const std::pair<DType, decltype(TypeTraits::quantize_weights)> plain[] = {
        {DType::IQ2_S, quantize_iq2_s_ref},
        {DType::IQ3_XXS, quantize_iq3_xxs_ref},
        {DType::IQ3_S, quantize_iq3_s_ref},
        {DType::IQ1_M, quantize_iq1_m_ref},
    };
    for (const auto& [t, fn] : plain) ref[static_cast<int>(t)].quantize_weights = fn;
    for (int i = 0; i < kMaxType; ++i) {
      has[i] = ref[i].to_float != nullptr;
      avx2[i] = ref[i];
    }
    has_avx2 = install_avx2_stage(avx2);
    for (int i = 0; i < kMaxType; ++i) best[i] = avx2[i];
    has_avx512 = has_avx2 && install_avx512_stage(best);
    for (int i = 0; i < kMaxType; ++i) {
      if (!has[i] || !ref[i].vec_dot) continue;
      weights.push_back(static_cast<DType>(i));
      if (!weight_names.empty()) weight_names += ", ";
      weight_names += dtype_info(static_cast<uint32_t>(i)).name;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

std::atomic<bool> g_force_scalar{false};

}  // namespace

const TypeTraits* type_traits(DType t) {
  const int i = static_cast<int>(t);
  if (i < 0 || i >= kMaxType || !tables().has[i]) return nullptr;
  return g_force_scalar.load(std::memory_order_relaxed) ? &tables().ref[i] : &tables().best[i];
}

const TypeTraits* type_traits_ref(DType t) {
  const int i = static_cast<int>(t);
  if (i < 0 || i >= kMaxType || !tables().has[i]) return nullptr;
  return &tables().ref[i];
}

std::vector<KernelVariant> kernel_variants(DType t) {
  std::vector<KernelVariant> v;
  const int i = static_cast<int>(t);
  if (i < 0 || i >= kMaxType || !tables().has[i]) return v;
  const Tables& tb = tables();
  v.push_back({"ref", &tb.ref[i]});
  auto differs = [](const TypeTraits& a, const TypeTraits& b) {
    return a.to_float != b.to_float || a.from_float != b.from_float || a.vec_dot != b.vec_dot ||
           a.vec_dot_tile != b.vec_dot_tile || a.validate != b.validate;
  };
  if (tb.has_avx2 && differs(tb.avx2[i], tb.ref[i])) v.push_back({"avx2", &tb.avx2[i]});
  if (tb.has_avx512 && differs(tb.best[i], tb.avx2[i])) v.push_back({"avx512", &tb.best[i]});
  return v;
}

const std::vector<DType>& weight_types() { return tables().weights; }
const std::string& weight_type_names() { return tables().weight_names; }

void force_scalar_kernels(bool on) { g_force_scalar.store(on); }
bool scalar_kernels_forced() { return g_force_scalar.load(); }

}  // namespace tachyon::kernels
