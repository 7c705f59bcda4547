// AVX2 kernels for the K-quants: dot products with Q8_K activations (as rows x tokens
// micro-kernels), the Q8_K activation quantizer and the dequantizers. Each has a _ref
// twin in quant_ref.cpp.
//
// Float rounding follows what llama.cpp (CPU backend, AVX2) does with the same weights,
// so that logits agree with it as closely as possible:
//  - Q4_K: llama.cpp repacks Q4_K matrices (rows a multiple of 8) into 8-row interleaved
//    blocks; its GEMM (4 tokens at a time: all of a batch but its last n % 4 tokens)
//    keeps, per row and token, two FMA chains over the sub-block pairs (64 weights):
//    acc += float(sc_2j * dot_2j + sc_2j+1 * dot_2j+1) * (d * d8), accm +=
//    float(m_2j * bsum_2j + m_2j+1 * bsum_2j+1) * (dmin * d8); result acc - accm. We do
//    this for every token, so that results do not depend on the batch (its GEMV, used
//    for the last n % 4 tokens and so for single-token decode, adds once per 256
//    weights instead and can differ in the last bits);
//  - Q5_K, Q6_K: its AVX2 vec_dot: 8 float lanes accumulated by FMA over super-blocks
//    (one lane per 4-byte column of the integer products), summed at the end in the
//    order of a 256-bit horizontal add; Q5_K adds its min terms as a scalar FMA chain.
// Integer parts are exact, so only these float steps have to match.
#if defined(__x86_64__)
#include <cstring>

#include "kernels/avx2_common.h"
#include "kernels/quant.h"

namespace tachyon::kernels {

namespace {

using namespace avx2;

// The 8 six-bit scales and 8 mins of a Q4_K/Q5_K block as bytes: sc[0..1] hold scales
// 0..7, mn[0..1] mins 0..7 (the layout get_scale_min_k4 decodes, done 4 at a time).
inline void k4_scales(const uint8_t* s, uint32_t sc[2], uint32_t mn[2]) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, s, 4);
  std::memcpy(&w1, s + 4, 4);
  std::memcpy(&w2, s + 8, 4);
  sc[0] = w0 & 0x3f3f3f3fu;
  mn[0] = w1 & 0x3f3f3f3fu;
  sc[1] = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
  mn[1] = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
}

// Scales as 16-bit lanes, the 8 values repeated in both 128-bit halves.
inline __m256i scales16x2(const uint32_t sc[2]) {
  return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(sc[1]), static_cast<int>(sc[0]))));
}
inline __m128i mins16(const uint32_t mn[2]) {
  return _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(mn[1]), static_cast<int>(mn[0])));
}
// Broadcasts 16-bit lane j of a scales16x2 vector to all lanes.
inline __m256i bcast16(__m256i s, int j) {
  return _mm256_shuffle_epi8(s, _mm256_set1_epi16(static_cast<short>(((2 * j + 1) << 8) | (2 * j))));
}

// Sums of the Q8_K group sums in pairs: the 8 sums over 32 quants, as 16-bit lanes.
inline __m128i q8k_pair_sums(const BlockQ8_K* y) {
  return _mm_hadd_epi16(load128(y->bsums), load128(y->bsums + 8));
}

struct Q4K {
  // NR is 1 or a multiple of 4: the float chains of 4 rows run in the lanes of one
  // vector (the same operations per lane as the scalar chain of a single row).
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    static_assert(NR == 1 || NR % 4 == 0);
    constexpr int NG = NR >= 4 ? NR / 4 : 1;  // lane groups of rows
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m128 acc[NC][NG], accm[NC][NG];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) acc[c][g] = accm[c][g] = _mm_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ4_K* x[NR];
      const BlockQ8_K* y[NC];
      __m256i scl[NR];
      __m128i mns[NR];
      alignas(16) float dx[4 * NG], dmx[4 * NG];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = row_block<BlockQ4_K>(w, ws, r, i);
        uint32_t sc[2], mn[2];
        k4_scales(x[r]->scales, sc, mn);
        scl[r] = scales16x2(sc);
        mns[r] = mins16(mn);
        dx[r] = half_to_float(x[r]->d);
        dmx[r] = half_to_float(x[r]->dmin);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) y[c] = row_block<BlockQ8_K>(a, as, c, i);
      // per pair, the integer sums of the 4 sub-block pairs: [s0 s1 s2 s3]
      __m128i part[NC][NR], sums[NC][NR];
#pragma GCC unroll 4
      for (int j = 0; j < QK_K / 64; ++j) {
        __m256i q8l[NC], q8h[NC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) {
          q8l[c] = load256(y[c]->qs + 64 * j);
          q8h[c] = load256(y[c]->qs + 64 * j + 32);
        }
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256i bits = load256(x[r]->qs + 32 * j);
          const __m256i lo = _mm256_and_si256(bits, m4);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
          const __m256i sl = bcast16(scl[r], 2 * j), sh = bcast16(scl[r], 2 * j + 1);
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c) {
            const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, q8l[c]));
            const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, q8h[c]));
            const __m256i p = _mm256_add_epi32(pl, ph);
            const __m128i f = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
            if (j == 0 || j == 2) {
              part[c][r] = f;
            } else if (j == 1) {
              sums[c][r] = _mm_hadd_epi32(part[c][r], f);
            } else {
              sums[c][r] = _mm_hadd_epi32(sums[c][r], _mm_hadd_epi32(part[c][r], f));
            }
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        const __m128i q8s = q8k_pair_sums(y[c]);
        const float dy = y[c]->d;
        if constexpr (NR == 1) {
          // min terms of the 4 sub-block pairs: [m0 m1 m2 m3]
          const __m128 sf = _mm_cvtepi32_ps(sums[c][0]);
          const __m128 mf = _mm_cvtepi32_ps(_mm_madd_epi16(mns[0], q8s));
          const __m128 dd = _mm_set1_ps(dx[0] * dy), dm = _mm_set1_ps(dmx[0] * dy);
          __m128 s0 = acc[c][0], m0 = accm[c][0];
          s0 = _mm_fmadd_ss(sf, dd, s0);
          m0 = _mm_fmadd_ss(mf, dm, m0);
          s0 = _mm_fmadd_ss(_mm_shuffle_ps(sf, sf, 1), dd, s0);
          m0 = _mm_fmadd_ss(_mm_shuffle_ps(mf, mf, 1), dm, m0);
          s0 = _mm_fmadd_ss(_mm_shuffle_ps(sf, sf, 2), dd, s0);
          m0 = _mm_fmadd_ss(_mm_shuffle_ps(mf, mf, 2), dm, m0);
          s0 = _mm_fmadd_ss(_mm_shuffle_ps(sf, sf, 3), dd, s0);
          m0 = _mm_fmadd_ss(_mm_shuffle_ps(mf, mf, 3), dm, m0);
          acc[c][0] = s0;
          accm[c][0] = m0;
        } else {
          const __m128 dyv = _mm_set1_ps(dy);
#pragma GCC unroll 4
          for (int g = 0; g < NG; ++g) {
            __m128 t0 = _mm_castsi128_ps(sums[c][4 * g]), t1 = _mm_castsi128_ps(sums[c][4 * g + 1]);
            __m128 t2 = _mm_castsi128_ps(sums[c][4 * g + 2]), t3 = _mm_castsi128_ps(sums[c][4 * g + 3]);
            _MM_TRANSPOSE4_PS(t0, t1, t2, t3);  // t_j = sub-block pair j of the 4 rows
            __m128 u0 = _mm_castsi128_ps(_mm_madd_epi16(mns[4 * g], q8s));
            __m128 u1 = _mm_castsi128_ps(_mm_madd_epi16(mns[4 * g + 1], q8s));
            __m128 u2 = _mm_castsi128_ps(_mm_madd_epi16(mns[4 * g + 2], q8s));
            __m128 u3 = _mm_castsi128_ps(_mm_madd_epi16(mns[4 * g + 3], q8s));
            _MM_TRANSPOSE4_PS(u0, u1, u2, u3);
            const __m128 dd = _mm_mul_ps(_mm_load_ps(dx + 4 * g), dyv);
            const __m128 dm = _mm_mul_ps(_mm_load_ps(dmx + 4 * g), dyv);
            __m128 s0 = acc[c][g], m0 = accm[c][g];
            s0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(t0)), dd, s0);
            m0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(u0)), dm, m0);
            s0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(t1)), dd, s0);
            m0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(u1)), dm, m0);
            s0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(t2)), dd, s0);
            m0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(u2)), dm, m0);
            s0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(t3)), dd, s0);
            m0 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_castps_si128(u3)), dm, m0);
            acc[c][g] = s0;
            accm[c][g] = m0;
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c) {
      if constexpr (NR == 1) {
        out[c * ld] = _mm_cvtss_f32(_mm_sub_ss(acc[c][0], accm[c][0]));
      } else {
#pragma GCC unroll 4
        for (int g = 0; g < NG; ++g) _mm_storeu_ps(out + c * ld + 4 * g, _mm_sub_ps(acc[c][g], accm[c][g]));
      }
    }
  }
};

struct Q5K {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i one = _mm256_set1_epi8(1);
    __m256 acc[NC][NR];
    float summs[NC][NR] = {};
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ5_K* x[NR];
      const BlockQ8_K* y[NC];
      __m256i scl[NR];
      __m128i mns[NR];
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = row_block<BlockQ5_K>(w, ws, r, i);
        uint32_t sc[2], mn[2];
        k4_scales(x[r]->scales, sc, mn);
        scl[r] = scales16x2(sc);
        mns[r] = mins16(mn);
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        y[c] = row_block<BlockQ8_K>(a, as, c, i);
        const __m128i q8s = q8k_pair_sums(y[c]);
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const int sm = hsum_i32(_mm_madd_epi16(mns[r], q8s));
          const float dmin = -y[c]->d * half_to_float(x[r]->dmin);
          // llama.cpp's `summs += dmin * sm` (contracted to one FMA by the compiler)
          summs[c][r] = fmaf1(dmin, static_cast<float>(sm), summs[c][r]);
        }
      }
      __m256i isum[NC][NR];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) isum[c][r] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int j = 0; j < QK_K / 64; ++j) {
        __m256i q8l[NC], q8h[NC];
#pragma GCC unroll 8
        for (int c = 0; c < NC; ++c) {
          q8l[c] = load256(y[c]->qs + 64 * j);
          q8h[c] = load256(y[c]->qs + 64 * j + 32);
        }
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256i bits = load256(x[r]->qs + 32 * j);
          const __m256i hb = load256(x[r]->qh);
          const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4);
          const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4);
          const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
          const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
          const __m256i sl = bcast16(scl[r], 2 * j), sh = bcast16(scl[r], 2 * j + 1);
#pragma GCC unroll 8
          for (int c = 0; c < NC; ++c) {
            const __m256i pl = _mm256_madd_epi16(sl, _mm256_maddubs_epi16(lo, q8l[c]));
            const __m256i ph = _mm256_madd_epi16(sh, _mm256_maddubs_epi16(hi, q8h[c]));
            isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_add_epi32(pl, ph));
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256 d = _mm256_set1_ps(y[c]->d * half_to_float(x[r]->d));
          acc[c][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]) + summs[c][r];
  }
};

struct Q6K {
  template <int NR, int NC>
  static void run(int64_t n, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* out, int64_t ld) {
    const int64_t nb = n / QK_K;
    const __m256i m15 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
    const __m256i m48 = _mm256_set1_epi8(48), m192 = _mm256_set1_epi8(static_cast<char>(0xC0));
    __m256 acc[NC][NR];
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) acc[c][r] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; ++i) {
      const BlockQ6_K* x[NR];
      const BlockQ8_K* y[NC];
      __m256i s16[NR];  // the 16 scales as 16-bit lanes
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) {
        x[r] = row_block<BlockQ6_K>(w, ws, r, i);
        s16[r] = _mm256_cvtepi8_epi16(load128(x[r]->scales));
      }
      __m256i isum[NC][NR];
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c) {
        y[c] = row_block<BlockQ8_K>(a, as, c, i);
        const __m256i bs = load256(y[c]->bsums);
        // the -32 offset of the quants, through the group sums: 32 * sc_g * bsum_g
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r)
          isum[c][r] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bs, s16[r]), 5));
      }
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256i ql0 = load256(x[r]->ql + 64 * h);
          const __m256i ql1 = load256(x[r]->ql + 64 * h + 32);
          const __m256i qh = load256(x[r]->qh + 32 * h);
          __m256i q[4];
          q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m15), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
          q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m15), _mm256_slli_epi16(_mm256_and_si256(qh, m12), 2));
          q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m15), _mm256_and_si256(qh, m48));
          q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m15),
                                 _mm256_srli_epi16(_mm256_and_si256(qh, m192), 2));
          const __m256i sh = half_scales(s16[r], h);
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) {
            // vector k covers sub-blocks 2k and 2k+1 of this half: lanes 0..7 and 8..15
            const __m256i sv = chunk_scales(sh, k);
#pragma GCC unroll 8
            for (int c = 0; c < NC; ++c) {
              const __m256i q8 = load256(y[c]->qs + 128 * h + 32 * k);
              isum[c][r] = _mm256_add_epi32(isum[c][r], _mm256_madd_epi16(sv, _mm256_maddubs_epi16(q[k], q8)));
            }
          }
        }
      }
#pragma GCC unroll 8
      for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
        for (int r = 0; r < NR; ++r) {
          const __m256 d = _mm256_set1_ps(y[c]->d * half_to_float(x[r]->d));
          acc[c][r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(isum[c][r]), acc[c][r]);
        }
    }
#pragma GCC unroll 8
    for (int c = 0; c < NC; ++c)
#pragma GCC unroll 8
      for (int r = 0; r < NR; ++r) out[c * ld + r] = hsum(acc[c][r]);
  }
};

// ---------------------------------------------------------------- Q8_K activations

// Bit-identical to quantize_q8_K_ref: the scale comes from the first element of largest
// magnitude (with its sign), quants are rounded to nearest even and capped at 127.
void quantize_q8_K_avx2(const float* x, void* vy, int64_t n) {
  BlockQ8_K* y = static_cast<BlockQ8_K*>(vy);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
    __m256 amax8 = _mm256_setzero_ps();
    for (int k = 0; k < QK_K / 8; ++k) amax8 = _mm256_max_ps(amax8, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
    const float amax = hmax(amax8);
    if (amax == 0) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof y[i].qs);
      std::memset(y[i].bsums, 0, sizeof y[i].bsums);
      continue;
    }
    const __m256 am = _mm256_set1_ps(amax);
    float max = 0;
    for (int k = 0; k < QK_K / 8; ++k) {
      const int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), am, _CMP_EQ_OQ));
      if (m) {
        max = x[8 * k + __builtin_ctz(static_cast<unsigned>(m))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 is = _mm256_set1_ps(iscale);
    const __m256i cap = _mm256_set1_epi32(127);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int g = 0; g < QK_K / 64; ++g) {  // 64 quants and 4 group sums at a time
      __m256i q[8];
      for (int k = 0; k < 8; ++k)
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 64 * g + 8 * k), is)), cap);
      for (int h = 0; h < 2; ++h) {
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[4 * h], q[4 * h + 1]), _mm256_packs_epi32(q[4 * h + 2], q[4 * h + 3]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + 64 * g + 32 * h), _mm256_permutevar8x32_epi32(p, perm));
      }
      // sums of 16: [q0+q1], [q2+q3], [q4+q5], [q6+q7] reduced across lanes
      const __m256i s0 = _mm256_add_epi32(q[0], q[1]), s1 = _mm256_add_epi32(q[2], q[3]);
      const __m256i s2 = _mm256_add_epi32(q[4], q[5]), s3 = _mm256_add_epi32(q[6], q[7]);
      const __m256i hh = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
      const __m128i tot = _mm_add_epi32(_mm256_castsi256_si128(hh), _mm256_extracti128_si256(hh, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(y[i].bsums + 4 * g), _mm_packs_epi32(tot, tot));
    }
    y[i].d = 1 / iscale;
  }
}

// ---------------------------------------------------------------- dequantize

// 8 bytes -> 8 floats
inline __m256 u8x8_to_f32(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)); }

void dequantize_q4_K_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ4_K* x = static_cast<const BlockQ4_K*>(vx);
  const __m128i m4 = _mm_set1_epi8(0xF);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = half_to_float(x[i].d), dmin = half_to_float(x[i].dmin);
    uint32_t sc32[2], mn32[2];
    k4_scales(x[i].scales, sc32, mn32);
    uint8_t sc[8], mn[8];
    std::memcpy(sc, sc32, 8);
    std::memcpy(mn, mn32, 8);
    for (int j = 0; j < QK_K / 64; ++j) {
      for (int half = 0; half < 2; ++half) {
        const __m256 dd = _mm256_set1_ps(d * sc[2 * j + half]);
        const __m256 mm = _mm256_set1_ps(dmin * mn[2 * j + half]);
        for (int l = 0; l < 32; l += 16) {
          __m128i q = load128(x[i].qs + 32 * j + l);
          q = _mm_and_si128(half ? _mm_srli_epi16(q, 4) : q, m4);
          _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(dd, u8x8_to_f32(q)), mm));
          _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(dd, u8x8_to_f32(_mm_srli_si128(q, 8))), mm));
          y += 16;
        }
      }
    }
  }
}

void dequantize_q5_K_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ5_K* x = static_cast<const BlockQ5_K*>(vx);
  const __m128i m4 = _mm_set1_epi8(0xF), one = _mm_set1_epi8(1);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = half_to_float(x[i].d), dmin = half_to_float(x[i].dmin);
    uint32_t sc32[2], mn32[2];
    k4_scales(x[i].scales, sc32, mn32);
    uint8_t sc[8], mn[8];
    std::memcpy(sc, sc32, 8);
    std::memcpy(mn, mn32, 8);
    for (int j = 0; j < QK_K / 64; ++j) {
      for (int half = 0; half < 2; ++half) {
        const int bit = 2 * j + half;
        const __m256 dd = _mm256_set1_ps(d * sc[bit]);
        const __m256 mm = _mm256_set1_ps(dmin * mn[bit]);
        for (int l = 0; l < 32; l += 16) {
          __m128i q = load128(x[i].qs + 32 * j + l);
          q = _mm_and_si128(half ? _mm_srli_epi16(q, 4) : q, m4);
          const __m128i h = _mm_and_si128(_mm_srli_epi16(load128(x[i].qh + l), bit), one);
          q = _mm_or_si128(q, _mm_slli_epi16(h, 4));
          _mm256_storeu_ps(y, _mm256_sub_ps(_mm256_mul_ps(dd, u8x8_to_f32(q)), mm));
          _mm256_storeu_ps(y + 8, _mm256_sub_ps(_mm256_mul_ps(dd, u8x8_to_f32(_mm_srli_si128(q, 8))), mm));
          y += 16;
        }
      }
    }
  }
}

void dequantize_q6_K_avx2(const void* vx, float* y, int64_t n) {
  const BlockQ6_K* x = static_cast<const BlockQ6_K*>(vx);
  const __m128i m4 = _mm_set1_epi8(0xF), m3 = _mm_set1_epi8(3), off = _mm_set1_epi8(32);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    const float d = half_to_float(x[i].d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = x[i].ql + 64 * half;
      const uint8_t* qh = x[i].qh + 32 * half;
      const int8_t* sc = x[i].scales + 8 * half;
      for (int k = 0; k < 4; ++k) {  // elements 32k..32k+31 of this half
        for (int l = 0; l < 32; l += 16) {
          __m128i lo = load128(ql + 32 * (k & 1) + l);
          lo = _mm_and_si128(k >> 1 ? _mm_srli_epi16(lo, 4) : lo, m4);
          const __m128i hi = _mm_and_si128(_mm_srli_epi16(load128(qh + l), 2 * k), m3);
          const __m128i q = _mm_sub_epi8(_mm_or_si128(lo, _mm_slli_epi16(hi, 4)), off);
          const __m256 dd = _mm256_set1_ps(d * sc[2 * k + l / 16]);
          _mm256_storeu_ps(y + 32 * k + l, _mm256_mul_ps(dd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
          _mm256_storeu_ps(y + 32 * k + l + 8,
                           _mm256_mul_ps(dd, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)))));
        }
      }
      y += 128;
    }
  }
}

}  // namespace

void install_kquant_avx2_kernels(TypeTraits* t) {
  auto& q4k = t[static_cast<int>(DType::Q4_K)];
  q4k.vec_dot = dot_1x1<Q4K>;
  q4k.vec_dot_tile = tile_driver<Q4K, 4, 2, 4>;
  q4k.to_float = dequantize_q4_K_avx2;
  q4k.impl = "avx2";
  auto& q5k = t[static_cast<int>(DType::Q5_K)];
  q5k.vec_dot = dot_1x1<Q5K>;
  q5k.vec_dot_tile = tile_driver<Q5K, 1, 4, 4>;
  q5k.to_float = dequantize_q5_K_avx2;
  q5k.impl = "avx2";
  auto& q6k = t[static_cast<int>(DType::Q6_K)];
  q6k.vec_dot = dot_1x1<Q6K>;
  q6k.vec_dot_tile = tile_driver<Q6K, 1, 4, 4>;
  q6k.to_float = dequantize_q6_K_avx2;
  q6k.impl = "avx2";
  auto& q8k = t[static_cast<int>(DType::Q8_K)];
  q8k.from_float = quantize_q8_K_avx2;
  q8k.impl = "avx2";
}

}  // namespace tachyon::kernels
#endif  // __x86_64__
