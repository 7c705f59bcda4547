// Packed (8-row interleaved) weight layouts: the SIMD kernels and their scalar twin give
// the bits of the one-row vec_dot kernel for every token count and ragged row counts.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/fp16.h"
#include "base/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "kernels/traits.h"

using namespace tachyon;
using namespace tachyon::kernels;

namespace {

std::vector<uint8_t> random_matrix(DType t, int64_t n_cols, int64_t n_rows, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  const size_t rb = row_bytes(t, n_cols);
  std::vector<uint8_t> w(rb * n_rows);
  std::vector<float> row(n_cols);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (auto& x : row) x = d(rng) * (1.f + 0.1f * static_cast<float>(r % 7));
    type_traits_ref(t)->weight_quantizer()(row.data(), w.data() + r * rb, n_cols);
  }
  return w;
}

struct Packed {
  std::vector<uint8_t> buf;
  MatView view;
};

Packed pack(const PackedKernels* pk, const std::vector<uint8_t>& w, DType t, int64_t n_cols, int64_t n_rows) {
  Packed p;
  const size_t rb = row_bytes(t, n_cols);
  const int64_t groups = n_rows / pk->rows;
  const size_t gb = pk->group_bytes(n_cols);
  p.buf.resize(groups * gb);
  for (int64_t g = 0; g < groups; ++g) pk->pack(w.data() + g * pk->rows * rb, rb, n_cols, p.buf.data() + g * gb);
  p.view = MatView{w.data(), t, n_cols, n_rows, rb};
  p.view.packed = p.buf.data();
  p.view.packed_rows = groups * pk->rows;
  return p;
}

const DType kPackedTypes[] = {DType::Q4_0, DType::Q4_K, DType::Q8_0, DType::Q6_K, DType::Q5_K,
                              DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::IQ3_XXS, DType::IQ3_S};

}  // namespace

TEST(Packed, MatmulOverPackedWeightsIsBitIdenticalToVecDot) {
  ThreadPool pool(2);
  for (DType t : kPackedTypes) {
    const auto variants = packed_kernel_variants(t);
    std::printf("[packed] %s:", std::string(dtype_info(t).name).c_str());
    for (const PackedKernels* v : variants) std::printf(" %s (%d rows)", v->impl, v->rows);
    std::printf("%s\n", variants.empty() ? " no SIMD packed kernel on this CPU" : "");
    // every installed layout (the AVX2 8-row one too where VNNI 16-row is the best)
    for (const PackedKernels* fast : variants) {
      const bool dispatched = fast == packed_kernels(t);
      for (auto [n_cols, n_rows] :
           {std::pair<int64_t, int64_t>{512, 19}, {512, 37}, {512, 51}, {2048, 264}, {1024, 200}, {4096, 40}}) {
        const auto w = random_matrix(t, n_cols, n_rows, 7 + static_cast<uint32_t>(n_rows));
        Packed p = pack(fast, w, t, n_cols, n_rows);
        MatView plain{w.data(), t, n_cols, n_rows, row_bytes(t, n_cols)};
        // 2+ tokens: Q4_0x16's group pairs (odd group counts, 1-3 token tails; 4096 columns:
        // pairs too wide to prefetch the next one)
        for (int n_tok : {1, 2, 3, 5, 8, 13, 17, 22}) {
          std::mt19937 rng(n_tok);
          std::normal_distribution<float> d(0.f, 1.f);
          std::vector<float> x(n_tok * n_cols);
          for (auto& v : x) v = d(rng);
          QuantActs acts;
          quantize_acts(x.data(), n_tok, n_cols, type_traits(t)->vec_dot_type, &acts, pool);
          std::vector<float> y_plain(n_tok * n_rows);
          matmul(plain, acts, y_plain.data(), n_rows, pool);
          if (dispatched) {  // through matmul(): packed groups + the plain tail rows
            std::vector<float> y_packed(n_tok * n_rows);
            matmul(p.view, acts, y_packed.data(), n_rows, pool);
            ASSERT_EQ(std::memcmp(y_packed.data(), y_plain.data(), y_plain.size() * sizeof(float)), 0)
                << dtype_info(t).name << " impl=" << fast->impl << " n_tok=" << n_tok << " n_rows=" << n_rows;
          }
          // the variant's kernel and its scalar twin, on the packed groups
          const int64_t na = fast->aux_count ? fast->aux_count(n_cols) : 0;
          std::vector<int32_t> aux(n_tok * na + 1);
          for (int tk = 0; tk < n_tok && na > 0; ++tk) fast->make_aux(acts.row(tk), n_cols, aux.data() + tk * na);
          for (auto gemm : {fast->gemm, fast->gemm_ref}) {
            std::vector<float> y(n_tok * n_rows, -1.f);
            gemm(n_cols, n_rows / fast->rows, p.buf.data(), n_tok, acts.row(0), acts.row_bytes, aux.data(), na, y.data(),
                 n_rows);
            for (int tk = 0; tk < n_tok; ++tk)
              for (int64_t r = 0; r < p.view.packed_rows; ++r)
                ASSERT_EQ(std::memcmp(&y[tk * n_rows + r], &y_plain[tk * n_rows + r], 4), 0)
                    << dtype_info(t).name << " impl=" << fast->impl << (gemm == fast->gemm ? "" : " (scalar twin)")
                    << " token " << tk << " row " << r;
          }
        }
      }
    }
  }
}

// matmul_many over a mix of fully packed, partly packed and plain matrices of different
// types gives, for each, the bits of matmul() on it alone.
TEST(Packed, MatmulManyEqualsSeparateMatmuls) {
  ThreadPool pool(2);
  struct Spec {
    DType t;
    int64_t n_rows;
    bool packed;
  };
  const int64_t n_cols = 1024;
  const Spec specs[] = {{DType::Q4_0, 512, true}, {DType::Q4_0, 64, true}, {DType::Q6_K, 96, true},
                        {DType::Q4_K, 40, true},  {DType::Q8_0, 48, false}, {DType::Q4_0, 37, true},
                        {DType::Q8_0, 32, true},  {DType::Q5_K, 40, true},  {DType::Q5_0, 48, true},
                        {DType::IQ4_NL, 40, true}, {DType::Q4_1, 56, true}, {DType::Q5_1, 24, true},
                        {DType::Q5_0, 19, true},  {DType::IQ3_XXS, 40, true}, {DType::IQ3_S, 19, true}};
  // share: products with the same activation type read one QuantActs (as q, k and v do),
  // whose cached aux integers differ between the Q4_0 and Q8_0 kernels. The partly packed
  // Q5_0 (19 rows) remakes that aux for its own kernel in matmul(): it must not run before
  // the Q4_0 parts that read acts' copy (it once did).
  for (bool share : {false, true})
  for (int n_tok : {1, 3, 8}) {
    std::mt19937 rng(n_tok);
    std::normal_distribution<float> d(0.f, 1.f);
    std::vector<float> x(n_tok * n_cols);
    for (auto& v : x) v = d(rng);
    std::vector<std::vector<uint8_t>> ws;
    std::vector<Packed> packs;
    std::vector<QuantActs> acts(std::size(specs));
    std::vector<std::vector<float>> y_many, y_one;
    std::vector<MatmulJob> jobs;
    packs.reserve(std::size(specs));
    for (size_t i = 0; i < std::size(specs); ++i) {
      const Spec& s = specs[i];
      ws.push_back(random_matrix(s.t, n_cols, s.n_rows, 100 + static_cast<uint32_t>(i)));
      const PackedKernels* pk = packed_kernels(s.t);
      if (s.packed && pk) {
        packs.push_back(pack(pk, ws.back(), s.t, n_cols, s.n_rows));
      } else {
        Packed p;
        p.view = MatView{ws.back().data(), s.t, n_cols, s.n_rows, row_bytes(s.t, n_cols)};
        packs.push_back(std::move(p));
      }
      quantize_acts(x.data(), n_tok, n_cols, type_traits(s.t)->vec_dot_type, &acts[i], pool);
      y_many.emplace_back(n_tok * s.n_rows, -1.f);
      y_one.emplace_back(n_tok * s.n_rows, -2.f);
    }
    std::vector<size_t> src(std::size(specs));
    for (size_t i = 0; i < std::size(specs); ++i) {
      src[i] = i;
      for (size_t j = 0; share && j < i; ++j)
        if (acts[j].type == acts[i].type) {
          src[i] = j;
          break;
        }
      jobs.push_back({&packs[i].view, &acts[src[i]], y_many[i].data(), specs[i].n_rows});
    }
    matmul_many(jobs.data(), static_cast<int>(jobs.size()), pool);
    for (size_t i = 0; i < std::size(specs); ++i) {
      matmul(packs[i].view, acts[src[i]], y_one[i].data(), specs[i].n_rows, pool);
      EXPECT_EQ(std::memcmp(y_many[i].data(), y_one[i].data(), y_one[i].size() * sizeof(float)), 0)
          << "job " << i << " (" << dtype_info(specs[i].t).name << ") n_tok=" << n_tok << " share=" << share;
    }
  }
}

// begin_acts + act_row (row by row, as the forward pass fills them inside its per-token
// passes) give quantize_acts' bytes, and the aux integers they make along the way are the
// ones matmul would make: the same products, bit for bit, on every packed type.
TEST(Packed, RowByRowActivationsEqualQuantizeActs) {
  ThreadPool pool(2);
  const int64_t n_cols = 1024;
  for (DType t : kPackedTypes) {
    const auto w = random_matrix(t, n_cols, 80, 5);
    const PackedKernels* pk = packed_kernels(t);
    Packed p;
    if (pk) p = pack(pk, w, t, n_cols, 80);
    else p.view = MatView{w.data(), t, n_cols, 80, row_bytes(t, n_cols)};
    for (int n_tok : {1, 5, 8}) {
      std::mt19937 rng(n_tok);
      std::normal_distribution<float> d(0.f, 1.f);
      std::vector<float> x(n_tok * n_cols);
      for (auto& v : x) v = d(rng);
      const DType at = type_traits(t)->vec_dot_type;
      QuantActs whole, rows;
      quantize_acts(x.data(), n_tok, n_cols, at, &whole, pool);
      begin_acts(&rows, n_tok, n_cols, at, &p.view);
      for (int tk = n_tok - 1; tk >= 0; --tk) act_row(&rows, tk, x.data() + tk * n_cols);  // any order
      ASSERT_EQ(rows.buf, whole.buf) << dtype_info(t).name;
      if (pk && pk->aux_count && pk->aux_count(n_cols) > 0) {
        ASSERT_EQ(rows.aux.size(), static_cast<size_t>(n_tok * pk->aux_count(n_cols)));
        std::vector<int32_t> aux(rows.aux.size());
        for (int tk = 0; tk < n_tok; ++tk)
          pk->make_aux(whole.row(tk), n_cols, aux.data() + tk * pk->aux_count(n_cols));
        EXPECT_EQ(rows.aux, aux) << dtype_info(t).name;
      }
      std::vector<float> y_whole(n_tok * 80, -1.f), y_rows(n_tok * 80, -2.f);
      matmul(p.view, whole, y_whole.data(), 80, pool);
      matmul(p.view, rows, y_rows.data(), 80, pool);
      EXPECT_EQ(std::memcmp(y_whole.data(), y_rows.data(), y_rows.size() * sizeof(float)), 0)
          << dtype_info(t).name << " n_tok=" << n_tok;
    }
  }
}

// The Q5_Kx8 layout's scalar kernel and AVX2 kernel, installed on local entries (so the
// check runs whether or not the tables dispatch to them): every row and token the bits
// of vec_dot, on quantized weights and on arbitrary bytes (every scale, min and fifth-bit
// pattern), for widths from one super-block to ffn_down's and ragged token counts.
TEST(Packed, Q5KxInstallsMatchVecDot) {
  PackedKernels ref_k;
  install_packed_q5k_ref(&ref_k);
  std::vector<const PackedKernels*> kernels{&ref_k};
  PackedKernels avx2_k = ref_k;
#if defined(__x86_64__)
  const auto& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) {
    install_packed_q5k_avx2(&avx2_k);
    kernels.push_back(&avx2_k);
  }
#endif
  ASSERT_EQ(ref_k.type, DType::Q5_K);
  ASSERT_EQ(ref_k.rows, 8);
  const DType t = DType::Q5_K;
  const auto* tt = type_traits(t);
  ThreadPool pool(1);
  for (int64_t n_cols : {256, 512, 768, 2048, 5632}) {
    const int64_t n_rows = n_cols >= 2048 ? 24 : 40;
    const size_t rb = row_bytes(t, n_cols);
    for (bool raw : {false, true}) {
      std::vector<uint8_t> w = random_matrix(t, n_cols, n_rows, 11 + static_cast<uint32_t>(n_cols));
      if (raw) {
        std::mt19937 rng(static_cast<uint32_t>(n_cols));
        std::uniform_int_distribution<int> byte(0, 255);
        std::uniform_real_distribution<float> scale(0.f, 0.02f);
        for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
        for (int64_t r = 0; r < n_rows; ++r)
          for (int64_t i = 0; i < n_cols / QK_K; ++i) {
            BlockQ5_K* x = reinterpret_cast<BlockQ5_K*>(w.data() + r * rb) + i;
            x->d = f32_to_f16(scale(rng));
            x->dmin = f32_to_f16(scale(rng));
          }
      }
      for (const PackedKernels* k : kernels) {
        const Packed p = pack(k, w, t, n_cols, n_rows);
        for (int n_tok = 1; n_tok <= 22; n_tok += (n_cols >= 2048 && n_tok >= 9 ? 4 : 1)) {
          std::mt19937 rng(static_cast<uint32_t>(n_tok));
          std::normal_distribution<float> d(0.f, 1.f);
          std::vector<float> x(n_tok * n_cols);
          for (auto& v : x) v = d(rng);
          QuantActs acts;
          quantize_acts(x.data(), n_tok, n_cols, tt->vec_dot_type, &acts, pool);
          const int64_t na = k->aux_count(n_cols);
          std::vector<int32_t> aux(n_tok * na);
          for (int tk = 0; tk < n_tok; ++tk) k->make_aux(acts.row(tk), n_cols, aux.data() + tk * na);
          const int64_t ld = n_rows + 3;
          for (auto gemm : {k->gemm, k->gemm_ref}) {
            std::vector<float> y(n_tok * ld, -1.f);
            // the groups in two calls, as matmul hands over runs of them
            const int64_t n_groups = n_rows / 8, g1 = n_groups / 2;
            gemm(n_cols, g1, p.buf.data(), n_tok, acts.row(0), acts.row_bytes, aux.data(), na, y.data(), ld);
            gemm(n_cols, n_groups - g1, p.buf.data() + g1 * k->group_bytes(n_cols), n_tok, acts.row(0), acts.row_bytes,
                 aux.data(), na, y.data() + 8 * g1, ld);
            for (int tk = 0; tk < n_tok; ++tk) {
              for (int64_t r = 0; r < n_rows; ++r) {
                const float want = tt->vec_dot(n_cols, w.data() + r * rb, acts.row(tk));
                ASSERT_EQ(std::memcmp(&y[tk * ld + r], &want, 4), 0)
                    << "impl=" << k->impl << (gemm == k->gemm ? "" : " (scalar twin)") << " raw=" << raw
                    << " n_cols=" << n_cols << " n_tok=" << n_tok << " token " << tk << " row " << r << ": "
                    << y[tk * ld + r] << " vs " << want;
              }
              for (int64_t r = n_rows; r < ld; ++r) ASSERT_EQ(y[tk * ld + r], -1.f) << "wrote past the rows";
            }
          }
        }
      }
    }
  }
}
