// Scalar reference kernels of the IQ2 / IQ3 formats. Each format decodes a chunk of 32
// weights to signed grid values and two half-chunk scales; dequantization and the dot
// product share that decoding.
#include <cmath>
#include <cstring>

#include "kernels/iq_grids.h"
#include "kernels/packed_ref.h"
#include "kernels/quant_groups.h"
#include "kernels/quant_iq23.h"

namespace tachyon::kernels {

namespace {

// 8 weights from 8 magnitude bytes (element 0 lowest) and a sign byte (bit k negates k).
void signed_group(uint64_t mags, uint8_t signs, int8_t* w) {
  for (int k = 0; k < 8; ++k) {
    const int m = static_cast<int>((mags >> (8 * k)) & 0xFF);
    w[k] = static_cast<int8_t>((signs >> k) & 1 ? -m : m);
  }
}

uint32_t load_u32(const void* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// decode(block, j, w, s): chunk j (0..7) as 32 signed weights and the 4-bit scales of its
// halves (weights 0..15 and 16..31).
void decode_iq2_xxs(const BlockIQ2_XXS& b, int j, int8_t* w, int* s) {
  const uint32_t idx = load_u32(b.qs + 4 * j), sgn = load_u32(b.qs + 4 * j + 2);
  for (int l = 0; l < 4; ++l)
    signed_group(kIq2xxsGrid[(idx >> (8 * l)) & 0xFF], kIq2Signs[(sgn >> (7 * l)) & 127], w + 8 * l);
  s[0] = s[1] = static_cast<int>(sgn >> 28);
}

void decode_iq2_xs(const BlockIQ2_XS& b, int j, int8_t* w, int* s) {
  for (int l = 0; l < 4; ++l) {
    const uint16_t q = b.qs[4 * j + l];
    signed_group(kIq2xsGrid[q & 511], kIq2Signs[q >> 9], w + 8 * l);
  }
  s[0] = b.scales[j] & 0xF;
  s[1] = b.scales[j] >> 4;
}

void decode_iq2_s(const BlockIQ2_S& b, int j, int8_t* w, int* s) {
  for (int l = 0; l < 4; ++l) {
    const int idx = b.qs[4 * j + l] | ((b.qh[j] << (8 - 2 * l)) & 0x300);
    signed_group(kIq2sGrid[idx], b.qs[QK_K / 8 + 4 * j + l], w + 8 * l);
  }
  s[0] = b.scales[j] & 0xF;
  s[1] = b.scales[j] >> 4;
}

void decode_iq3_xxs(const BlockIQ3_XXS& b, int j, int8_t* w, int* s) {
  const uint8_t* q = b.qs + 8 * j;
  const uint32_t sgn = load_u32(b.qs + QK_K / 4 + 4 * j);
  for (int l = 0; l < 4; ++l) {
    const uint64_t mags = kIq3xxsGrid[q[2 * l]] | static_cast<uint64_t>(kIq3xxsGrid[q[2 * l + 1]]) << 32;
    signed_group(mags, kIq2Signs[(sgn >> (7 * l)) & 127], w + 8 * l);
  }
  s[0] = s[1] = static_cast<int>(sgn >> 28);
}

void decode_iq3_s(const BlockIQ3_S& b, int j, int8_t* w, int* s) {
  const uint8_t* q = b.qs + 8 * j;
  for (int l = 0; l < 4; ++l) {
    // bit k of qh[j] is the 9th index bit of group k
    const int i0 = q[2 * l] | ((b.qh[j] << (8 - 2 * l)) & 256);
    const int i1 = q[2 * l + 1] | ((b.qh[j] << (7 - 2 * l)) & 256);
    signed_group(kIq3sGrid[i0] | static_cast<uint64_t>(kIq3sGrid[i1]) << 32, b.signs[4 * j + l], w + 8 * l);
  }
  s[0] = s[1] = (b.scales[j / 2] >> (4 * (j & 1))) & 0xF;
}

// y = db(d, s) * w: the same float as llama.cpp's db * grid * (+-1), the sign flip
// being exact.
template <class Block, void (*Decode)(const Block&, int, int8_t*, int*), float (*Db)(float, int)>
void dequantize(const Block* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < QK_K / 32; ++j) {
      int8_t w[32];
      int s[2];
      Decode(x[i], j, w, s);
      const float db[2] = {Db(d, s[0]), Db(d, s[1])};
      for (int e = 0; e < 32; ++e) *y++ = db[e / 16] * w[e];
    }
  }
}

float db_iq2(float d, int s) { return d * (0.5f + s) * 0.25f; }
float db_iq3_xxs(float d, int s) { return d * (0.5f + s) * 0.5f; }
float db_iq3_s(float d, int s) { return d * (1 + 2 * s); }

// llama.cpp's AVX2 kernels keep 8 integer lanes per super-block, lane k holding the
// products of elements 4k..4k+3 of every chunk times the odd scale 2s+1, and fold them
// into 8 float lanes by FMA with d_w * d_a; the lanes are summed at the end and the sum
// multiplied by the factor that turns 2s+1 into the format's scale. Integer sums are
// exact, so only this float order has to be followed.
template <class Block, void (*Decode)(const Block&, int, int8_t*, int*)>
float dot_lanes(int64_t n, const Block* x, const BlockQ8_K* y, float factor) {
  float acc[8] = {};
  for (int64_t i = 0; i < n / QK_K; ++i) {
    int lane[8] = {};
    for (int j = 0; j < QK_K / 32; ++j) {
      int8_t w[32];
      int s[2];
      Decode(x[i], j, w, s);
      for (int e = 0; e < 32; ++e) lane[lane_of(e)] += (2 * s[e / 16] + 1) * w[e] * y[i].qs[32 * j + e];
    }
    const float d = f16_to_f32(x[i].d) * y[i].d;
    for (int k = 0; k < 8; ++k) acc[k] = std::fma(d, static_cast<float>(lane[k]), acc[k]);
  }
  return factor * sum8_avx2_order(acc);
}

}  // namespace

void dequantize_iq2_xxs_ref(const BlockIQ2_XXS* x, float* y, int64_t n) {
  dequantize<BlockIQ2_XXS, decode_iq2_xxs, db_iq2>(x, y, n);
}
void dequantize_iq2_xs_ref(const BlockIQ2_XS* x, float* y, int64_t n) {
  dequantize<BlockIQ2_XS, decode_iq2_xs, db_iq2>(x, y, n);
}
void dequantize_iq2_s_ref(const BlockIQ2_S* x, float* y, int64_t n) {
  dequantize<BlockIQ2_S, decode_iq2_s, db_iq2>(x, y, n);
}
void dequantize_iq3_xxs_ref(const BlockIQ3_XXS* x, float* y, int64_t n) {
  dequantize<BlockIQ3_XXS, decode_iq3_xxs, db_iq3_xxs>(x, y, n);
}
void dequantize_iq3_s_ref(const BlockIQ3_S* x, float* y, int64_t n) {
  dequantize<BlockIQ3_S, decode_iq3_s, db_iq3_s>(x, y, n);
}

float vec_dot_iq2_xxs_q8_K_ref(int64_t n, const BlockIQ2_XXS* x, const BlockQ8_K* y) {
  return dot_lanes<BlockIQ2_XXS, decode_iq2_xxs>(n, x, y, 0.125f);
}
float vec_dot_iq2_xs_q8_K_ref(int64_t n, const BlockIQ2_XS* x, const BlockQ8_K* y) {
  return dot_lanes<BlockIQ2_XS, decode_iq2_xs>(n, x, y, 0.125f);
}
float vec_dot_iq2_s_q8_K_ref(int64_t n, const BlockIQ2_S* x, const BlockQ8_K* y) {
  return dot_lanes<BlockIQ2_S, decode_iq2_s>(n, x, y, 0.125f);
}
float vec_dot_iq3_xxs_q8_K_ref(int64_t n, const BlockIQ3_XXS* x, const BlockQ8_K* y) {
  return dot_lanes<BlockIQ3_XXS, decode_iq3_xxs>(n, x, y, 0.25f);
}
float vec_dot_iq3_s_q8_K_ref(int64_t n, const BlockIQ3_S* x, const BlockQ8_K* y) {
  return dot_lanes<BlockIQ3_S, decode_iq3_s>(n, x, y, 1.0f);
}

void decode_iq3_xxs_chunk(const BlockIQ3_XXS& b, int j, int8_t* w, int* s) { decode_iq3_xxs(b, j, w, s); }
void decode_iq3_s_chunk(const BlockIQ3_S& b, int j, int8_t* w, int* s) { decode_iq3_s(b, j, w, s); }

// Grid and sign indices are bit fields as wide as their tables, so only d can be bad.
bool validate_iq2_xxs(const void* x, int64_t n) { return scales_finite<BlockIQ2_XXS, QK_K>(x, n); }
bool validate_iq2_xs(const void* x, int64_t n) { return scales_finite<BlockIQ2_XS, QK_K>(x, n); }
bool validate_iq2_s(const void* x, int64_t n) { return scales_finite<BlockIQ2_S, QK_K>(x, n); }
bool validate_iq3_xxs(const void* x, int64_t n) { return scales_finite<BlockIQ3_XXS, QK_K>(x, n); }
bool validate_iq3_s(const void* x, int64_t n) { return scales_finite<BlockIQ3_S, QK_K>(x, n); }

void install_iq23_ref(TypeTraits* table) {
  auto put = [&](TypeTraits t) { table[static_cast<int>(t.type)] = t; };
  put({DType::IQ2_XXS, DType::Q8_K, to_float_fn<BlockIQ2_XXS, dequantize_iq2_xxs_ref>, nullptr,
       vec_dot_fn<BlockIQ2_XXS, BlockQ8_K, vec_dot_iq2_xxs_q8_K_ref>, "ref", nullptr, validate_iq2_xxs});
  put({DType::IQ2_XS, DType::Q8_K, to_float_fn<BlockIQ2_XS, dequantize_iq2_xs_ref>, nullptr,
       vec_dot_fn<BlockIQ2_XS, BlockQ8_K, vec_dot_iq2_xs_q8_K_ref>, "ref", nullptr, validate_iq2_xs});
  put({DType::IQ2_S, DType::Q8_K, to_float_fn<BlockIQ2_S, dequantize_iq2_s_ref>, nullptr,
       vec_dot_fn<BlockIQ2_S, BlockQ8_K, vec_dot_iq2_s_q8_K_ref>, "ref", nullptr, validate_iq2_s});
  put({DType::IQ3_XXS, DType::Q8_K, to_float_fn<BlockIQ3_XXS, dequantize_iq3_xxs_ref>, nullptr,
       vec_dot_fn<BlockIQ3_XXS, BlockQ8_K, vec_dot_iq3_xxs_q8_K_ref>, "ref", nullptr, validate_iq3_xxs});
  put({DType::IQ3_S, DType::Q8_K, to_float_fn<BlockIQ3_S, dequantize_iq3_s_ref>, nullptr,
       vec_dot_fn<BlockIQ3_S, BlockQ8_K, vec_dot_iq3_s_q8_K_ref>, "ref", nullptr, validate_iq3_s});
}

}  // namespace tachyon::kernels
