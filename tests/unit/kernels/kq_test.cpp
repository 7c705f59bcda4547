// Q2_K, Q3_K, IQ4_XS: dequantizers against llama.cpp's loops written out, reference dots
// against the dequantized floats, SIMD kernels bit for bit against their references,
// quantizers against the bytes llama.cpp wrote into the test models.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel_checks.h"
#include "real_blocks.h"
#include "base/fp16.h"
#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "kernels/quant_kq.h"
#include "kernels/quant_legacy.h"
#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;
using namespace tachyon::test;

namespace {

const DType kTypes[] = {DType::Q2_K, DType::Q3_K, DType::IQ4_XS};

std::vector<uint8_t> q8k(const std::vector<float>& x) {
  std::vector<uint8_t> a(row_bytes(DType::Q8_K, static_cast<int64_t>(x.size())));
  type_traits(DType::Q8_K)->from_float(x.data(), a.data(), static_cast<int64_t>(x.size()));
  return a;
}

// Blocks with every quant and scale bit random and sane f16 super-block scales.
std::vector<uint8_t> random_blocks(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> b(row_bytes(t, n));
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> u(1e-3f, 2e-2f);
  for (int64_t i = 0; i < n / QK_K; ++i) {
    if (t == DType::Q2_K) {
      auto* x = reinterpret_cast<BlockQ2_K*>(b.data()) + i;
      x->d = f32_to_f16(u(rng));
      x->dmin = f32_to_f16(u(rng));
    } else if (t == DType::Q3_K) {
      reinterpret_cast<BlockQ3_K*>(b.data())[i].d = f32_to_f16(u(rng));
    } else {
      reinterpret_cast<BlockIQ4_XS*>(b.data())[i].d = f32_to_f16(u(rng));
    }
  }
  return b;
}

// llama.cpp's dequantize_row_* loops, written out independently of the references.
std::vector<float> dequantize_loops(DType t, const uint8_t* blocks, int64_t n) {
  std::vector<float> out;
  for (int64_t i = 0; i < n / QK_K; ++i) {
    if (t == DType::Q2_K) {
      const auto& x = reinterpret_cast<const BlockQ2_K*>(blocks)[i];
      const float d = f16_to_f32(x.d), m = f16_to_f32(x.dmin);
      int is = 0;
      for (int half = 0; half < 2; ++half)
        for (int shift = 0; shift < 8; shift += 2)
          for (int part = 0; part < 2; ++part) {
            const uint8_t sc = x.scales[is++];
            for (int l = 0; l < 16; ++l)
              out.push_back(d * (sc & 0xF) * ((x.qs[32 * half + 16 * part + l] >> shift) & 3) - m * (sc >> 4));
          }
    } else if (t == DType::Q3_K) {
      const auto& x = reinterpret_cast<const BlockQ3_K*>(blocks)[i];
      uint32_t aux[4];
      std::memcpy(aux, x.scales, 12);
      const uint32_t tmp = aux[2], k1 = 0x03030303, k2 = 0x0f0f0f0f;
      aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
      aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
      aux[0] = (aux[0] & k2) | ((tmp & k1) << 4);
      aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
      int8_t sc[16];
      std::memcpy(sc, aux, 16);
      int is = 0;
      uint8_t m = 1;
      for (int half = 0; half < 2; ++half)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
          for (int part = 0; part < 2; ++part) {
            const float dl = f16_to_f32(x.d) * (sc[is++] - 32);
            for (int l = 16 * part; l < 16 * part + 16; ++l)
              out.push_back(dl * (((x.qs[32 * half + l] >> shift) & 3) - (x.hmask[l] & m ? 0 : 4)));
          }
    } else {
      const auto& x = reinterpret_cast<const BlockIQ4_XS*>(blocks)[i];
      for (int ib = 0; ib < 8; ++ib) {
        const int ls = ((x.scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((x.scales_h >> 2 * ib) & 3) << 4);
        const float dl = f16_to_f32(x.d) * (ls - 32);
        for (int l = 0; l < 32; ++l) {
          const uint8_t q = x.qs[16 * ib + l % 16];
          out.push_back(dl * kIq4nlValues[l < 16 ? q & 0xf : q >> 4]);
        }
      }
    }
  }
  return out;
}

std::vector<float> to_float(const TypeTraits* tt, const uint8_t* blocks, int64_t n) {
  std::vector<float> y(n);
  tt->to_float(blocks, y.data(), n);
  return y;
}

// Every check one row of blocks has to pass against activations a.
void check_row(DType t, const uint8_t* w, const uint8_t* a, int64_t n, const char* what) {
  const TypeTraits* ref = type_traits_ref(t);
  const TypeTraits* fast = type_traits(t);
  SCOPED_TRACE(::testing::Message() << dtype_info(t).name << " " << what << " n=" << n << " impl=" << fast->impl);
  if (has_avx2()) {
    EXPECT_STREQ(fast->impl, "avx2");
  }
  EXPECT_TRUE(ref->validate(w, n));
  const auto wf = to_float(ref, w, n);
  EXPECT_EQ(wf, dequantize_loops(t, w, n));
  EXPECT_EQ(wf, to_float(fast, w, n));
  const auto af = to_float(type_traits_ref(DType::Q8_K), a, n);
  double expect = 0, mag = 0;
  for (int64_t i = 0; i < n; ++i) {
    expect += double(wf[i]) * af[i];
    mag += std::fabs(double(wf[i]) * af[i]);
  }
  const float r = ref->vec_dot(n, w, a);
  EXPECT_NEAR(r, expect, 1e-5 * mag + 1e-6);
  EXPECT_TRUE(same_bits(fast->vec_dot(n, w, a), r)) << fast->vec_dot(n, w, a) << " vs " << r;
}

// The tile form gives vec_dot's bits for every (row, token) of every block shape (token
// groups of 8, of 4 and single tokens included).
void check_tiles(DType t, const std::vector<uint8_t>& w, int n_rows, int64_t n) {
  const TypeTraits* tt = type_traits(t);
  if (!tt->vec_dot_tile) {
    EXPECT_FALSE(has_avx2()) << dtype_info(t).name;
    return;
  }
  const size_t wb = row_bytes(t, n), ab = row_bytes(DType::Q8_K, n);
  for (auto [nr, nc] : {std::pair{1, 1}, {4, 1}, {11, 7}, {8, 16}, {3, 2}, {2, 13}}) {
    ASSERT_LE(nr, n_rows);
    std::vector<uint8_t> a;
    for (int c = 0; c < nc; ++c) {
      const auto row = q8k(random_row(n, 700 + c));
      a.insert(a.end(), row.begin(), row.end());
    }
    ASSERT_NO_FATAL_FAILURE(expect_tile_is_vec_dot(tt, n, w.data(), wb, nr, a.data(), ab, nc)) << dtype_info(t).name;
  }
}

}  // namespace

TEST(Kq, BlockSizesMatchTheGgufTable) {
  EXPECT_EQ(dtype_info(DType::Q2_K).block_bytes, sizeof(BlockQ2_K));
  EXPECT_EQ(dtype_info(DType::Q3_K).block_bytes, sizeof(BlockQ3_K));
  EXPECT_EQ(dtype_info(DType::IQ4_XS).block_bytes, sizeof(BlockIQ4_XS));
  for (DType t : kTypes) {
    ASSERT_NE(type_traits_ref(t), nullptr) << dtype_info(t).name;
    EXPECT_EQ(type_traits_ref(t)->vec_dot_type, DType::Q8_K);
  }
}

TEST(Kq, RandomBlocks) {
  for (DType t : kTypes)
    for (int64_t n : {256, 512, 4096}) {
      const auto w = random_blocks(t, n, 11 + static_cast<uint32_t>(n));
      check_row(t, w.data(), q8k(random_row(n, 12)).data(), n, "random");
    }
}

// Largest scales and quants against activations of largest magnitude: the 16-bit
// intermediate sums of the kernels must not saturate.
TEST(Kq, ExtremeBlocks) {
  const int64_t n = 512;
  for (DType t : kTypes)
    for (uint8_t fill : {0x00, 0xFF, 0x55, 0xAA, 0x88, 0x77}) {
      // every byte but the f16 super-block scales set to fill
      const auto orig = random_blocks(t, n, 5);
      std::vector<uint8_t> w(orig.size(), fill);
      const size_t bb = dtype_info(t).block_bytes;
      const size_t d_at = t == DType::Q2_K ? offsetof(BlockQ2_K, d) : t == DType::Q3_K ? offsetof(BlockQ3_K, d) : 0;
      const size_t d_bytes = t == DType::Q2_K ? 4 : 2;  // Q2_K: d and dmin
      for (size_t o = 0; o < w.size(); o += bb) std::memcpy(&w[o + d_at], &orig[o + d_at], d_bytes);
      for (float sign : {1.f, -1.f}) {
        std::vector<float> x(n, sign);
        for (int64_t i = 0; i < n; i += 3) x[i] = -sign;
        check_row(t, w.data(), q8k(x).data(), n, "extreme");
      }
    }
}

TEST(Kq, TilesAreBitIdenticalToVecDot) {
  for (DType t : kTypes)
    for (int64_t n : {256, 512, 4096}) {
      std::vector<uint8_t> w;
      for (int r = 0; r < 16; ++r) {
        const auto row = random_blocks(t, n, 300 + r);
        w.insert(w.end(), row.begin(), row.end());
      }
      check_tiles(t, w, 16, n);
    }
}

TEST(Kq, ValidateRejectsNonFiniteScales) {
  for (DType t : kTypes) {
    const TypeTraits* tt = type_traits_ref(t);
    const int64_t n = 512;
    auto w = random_blocks(t, n, 9);
    EXPECT_TRUE(tt->validate(w.data(), n));
    // the f16 scale fields of the second block
    const size_t o = dtype_info(t).block_bytes;
    std::vector<size_t> fields;
    if (t == DType::Q2_K) fields = {o + offsetof(BlockQ2_K, d), o + offsetof(BlockQ2_K, dmin)};
    if (t == DType::Q3_K) fields = {o + offsetof(BlockQ3_K, d)};
    if (t == DType::IQ4_XS) fields = {o + offsetof(BlockIQ4_XS, d)};
    for (size_t f : fields)
      for (f16_t bad : {f16_t{0x7C00}, f16_t{0xFC00}, f16_t{0x7E00}}) {
        auto v = w;
        std::memcpy(&v[f], &bad, 2);
        EXPECT_FALSE(tt->validate(v.data(), n)) << dtype_info(t).name << " field " << f << " " << bad;
      }
  }
}

// Real blocks as llama.cpp wrote them: every tensor of the family in the test models is
// valid, and its first rows pass every check.
TEST(Kq, RealBlocksFromModelFiles) {
  int n_checked[3] = {};
  for (const char* file : {"mini-llama-Q2_K", "mini-llama-Q3_K_M", "mini-llama-IQ4_XS"}) {
    const auto g = open_model(file);
    for (const auto& t : g->tensors()) {
      const int k = t.type == DType::Q2_K ? 0 : t.type == DType::Q3_K ? 1 : t.type == DType::IQ4_XS ? 2 : -1;
      if (k < 0) continue;
      ++n_checked[k];
      const TypeTraits* tt = type_traits(t.type);
      const std::string name(t.name);
      const int64_t ne0 = t.ne[0], rows = t.n_elements() / ne0;
      const size_t rb = row_bytes(t.type, ne0);
      EXPECT_TRUE(tt->validate(t.data, ne0 * rows)) << file << " " << name;
      const auto a = q8k(random_row(ne0, 77));
      for (int64_t r = 0; r < std::min<int64_t>(rows, 4); ++r)
        check_row(t.type, t.data + r * rb, a.data(), ne0, name.c_str());
      if (rows >= 16) check_tiles(t.type, std::vector<uint8_t>(t.data, t.data + 16 * rb), 16, ne0);
    }
  }
  for (int k = 0; k < 3; ++k) EXPECT_GT(n_checked[k], 0) << dtype_info(kTypes[k]).name;
}

// The quantizers are llama.cpp's: quantizing the F16 model's weights gives exactly the
// bytes of the quantized models (which llama.cpp made from them without an imatrix).
TEST(Kq, QuantizersReproduceLlamaCppFiles) {
  int n_same[3] = {}, n_all[3] = {};
  for (const char* file : {"mini-llama-Q2_K", "mini-llama-Q3_K_M", "mini-llama-IQ4_XS"}) {
    const auto g = open_model(file);
    for (const auto& t : g->tensors()) {
      const int k = t.type == DType::Q2_K ? 0 : t.type == DType::Q3_K ? 1 : t.type == DType::IQ4_XS ? 2 : -1;
      if (k < 0) continue;
      const auto x = f16_weights(t.name);
      const int64_t n = t.n_elements();
      ASSERT_EQ(static_cast<int64_t>(x.size()), n) << t.name;
      std::vector<uint8_t> q(row_bytes(t.type, n));
      type_traits_ref(t.type)->from_float(x.data(), q.data(), n);
      ++n_all[k];
      if (std::memcmp(q.data(), t.data, q.size()) == 0) ++n_same[k];
      else ADD_FAILURE() << file << " " << t.name << " differs";
    }
  }
  for (int k = 0; k < 3; ++k) {
    std::printf("%s: %d/%d tensors reproduced\n", std::string(dtype_info(kTypes[k]).name).c_str(), n_same[k], n_all[k]);
    EXPECT_GT(n_all[k], 0);
  }
}

// Relative RMS error of quantize -> dequantize on Gaussian weights, with bounds a little
// above what llama.cpp's algorithms reach (measured: see the printed values).
TEST(Kq, QuantizeRoundTripError) {
  const int64_t n = 64 * QK_K;
  const double max_rel[] = {0.305, 0.155, 0.079};  // measured 0.2946, 0.1500, 0.0768
  for (int k = 0; k < 3; ++k) {
    const DType t = kTypes[k];
    const auto x = random_row(n, 31);
    std::vector<uint8_t> q(row_bytes(t, n));
    type_traits_ref(t)->from_float(x.data(), q.data(), n);
    const auto y = to_float(type_traits_ref(t), q.data(), n);
    double e2 = 0, x2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      e2 += double(y[i] - x[i]) * (y[i] - x[i]);
      x2 += double(x[i]) * x[i];
    }
    const double rel = std::sqrt(e2 / x2);
    std::printf("%s: relative RMS error %.4f\n", std::string(dtype_info(t).name).c_str(), rel);
    EXPECT_LE(rel, max_rel[k]) << dtype_info(t).name;
  }
}

// matmul over these types gives every dispatched vec_dot's bits, whatever the batch.
TEST(Kq, MatmulIsBatchInvariant) {
  ThreadPool pool(2);
  const int64_t n_cols = 512, n_rows = 37, n_tok = 6;
  for (DType t : kTypes) {
    const size_t rb = row_bytes(t, n_cols);
    std::vector<uint8_t> w;
    for (int64_t r = 0; r < n_rows; ++r) {
      const auto row = random_blocks(t, n_cols, 100 + static_cast<uint32_t>(r));
      w.insert(w.end(), row.begin(), row.end());
    }
    MatView m{w.data(), t, n_cols, n_rows, rb};
    const auto x = random_row(n_tok * n_cols, 900);
    QuantActs scratch;
    std::vector<float> y(n_tok * n_rows), y1(n_rows);
    matmul(m, x.data(), n_tok, y.data(), n_rows, pool, &scratch);
    for (int64_t tk = 0; tk < n_tok; ++tk)
      for (int64_t r = 0; r < n_rows; ++r)
        ASSERT_TRUE(same_bits(type_traits(t)->vec_dot(n_cols, w.data() + r * rb, scratch.row(tk)), y[tk * n_rows + r]))
            << dtype_info(t).name;
    for (int64_t tk = 0; tk < n_tok; ++tk) {
      matmul(m, x.data() + tk * n_cols, 1, y1.data(), n_rows, pool, &scratch);
      for (int64_t r = 0; r < n_rows; ++r) ASSERT_TRUE(same_bits(y[tk * n_rows + r], y1[r])) << dtype_info(t).name;
    }
  }
}
