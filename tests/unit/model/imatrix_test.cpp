// Importance matrices (llama-imatrix's GGUF): the reader's errors, and the weighted fits
// of every type that takes one. Byte equality with llama-quantize --imatrix is checked
// outside CI by bench/imatrix_check.sh (it needs llama.cpp's binaries).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "kernels/traits.h"
#include "model/imatrix.h"
#include "model/quantize.h"

using namespace tachyon;
using namespace tachyon::model;
namespace fs = std::filesystem;

namespace {

const std::string kModels = std::string(TACHYON_SHARED_DATA) + "/models/";

class ImatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("tachyon_imatrix_" + std::to_string(::getpid()) + "_" + info->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // An imatrix file as llama-imatrix writes it: per entry `name.in_sum2` [n_cols][n_mat] and
  // `name.counts` [1][n_mat], plus the imatrix.* keys (dropped when with_keys is false).
  struct Entry {
    std::string name;
    int64_t n_cols, n_mat;
    std::vector<float> sums, counts;
  };
  std::string write_imatrix(const std::string& file, const std::vector<Entry>& entries, bool with_keys = true) {
    gguf::Writer w;
    w.set_str("general.type", "imatrix");
    if (with_keys) {
      w.set_arr_str("imatrix.datasets", {"synthetic"});
      w.set_u32("imatrix.chunk_count", 3);
      w.set_u32("imatrix.chunk_size", 512);
    }
    for (const auto& e : entries) {
      if (!e.sums.empty())
        EXPECT_TRUE(w.add_tensor(e.name + ".in_sum2", DType::F32, {e.n_cols, e.n_mat}, e.sums.data(), e.sums.size() * 4).is_ok());
      if (!e.counts.empty())
        EXPECT_TRUE(w.add_tensor(e.name + ".counts", DType::F32, {1, e.n_mat}, e.counts.data(), e.counts.size() * 4).is_ok());
    }
    const std::string p = path(file);
    EXPECT_TRUE(w.write(p).is_ok());
    return p;
  }

  fs::path dir_;
};

// Deterministic weight-like values (a fixed LCG, roughly N(0, 1) with some outliers).
std::vector<float> test_rows(int64_t n, uint32_t seed) {
  std::vector<float> x(n);
  uint32_t s = seed;
  auto u = [&] {
    s = s * 1664525u + 1013904223u;
    return ((s >> 8) + 0.5f) / 16777216.f;
  };
  for (auto& v : x) {
    const float a = u(), b = u();
    v = std::sqrt(-2 * std::log(a)) * std::cos(6.2831853f * b) * (u() < 0.02f ? 4.f : 1.f);
  }
  return x;
}

TEST_F(ImatrixTest, ReadsEntriesAsSumsOverCounts) {
  Entry a{"blk.0.attn_q.weight", 4, 1, {4, 8, 12, 0}, {4}};
  // a 3-D weight of 2 experts; the second never reached: importance 1 as llama.cpp
  Entry b{"blk.0.ffn_up_exps.weight", 2, 2, {6, 3, 5, 5}, {3, 0}};
  auto m = load_imatrix(write_imatrix("ok.gguf", {a, b}));
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  ASSERT_EQ(m->entries.size(), 2u);
  EXPECT_EQ(m->chunk_count, 3u);
  ASSERT_EQ(m->datasets.size(), 1u);
  EXPECT_EQ(m->datasets[0], "synthetic");
  auto q = m->for_tensor("blk.0.attn_q.weight", 4, 1);
  ASSERT_TRUE(q.is_ok());
  ASSERT_NE(*q, nullptr);
  EXPECT_EQ(std::vector<float>(*q, *q + 4), (std::vector<float>{1, 2, 3, 0}));
  auto e = m->for_tensor("blk.0.ffn_up_exps.weight", 2, 2);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(std::vector<float>(*e, *e + 4), (std::vector<float>{2, 1, 1, 1}));
  // no entry: quantized without weights
  auto none = m->for_tensor("blk.0.attn_k.weight", 4, 1);
  ASSERT_TRUE(none.is_ok());
  EXPECT_EQ(*none, nullptr);
  // another length: an error naming the tensor
  auto bad = m->for_tensor("blk.0.attn_q.weight", 8, 1);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("blk.0.attn_q.weight"), std::string::npos) << bad.status().message();
}

TEST_F(ImatrixTest, RejectsFilesThatAreNotImatrices) {
  {
    std::ofstream(path("text.gguf")) << "not a gguf file at all";
    auto m = load_imatrix(path("text.gguf"));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("not a GGUF imatrix"), std::string::npos) << m.status().message();
  }
  {
    auto m = load_imatrix(kModels + "code-tiny-draft-F16.gguf");  // a model, not an imatrix
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("in_sum2"), std::string::npos) << m.status().message();
  }
  {
    auto m = load_imatrix(write_imatrix("nokeys.gguf", {{"w", 4, 1, {1, 1, 1, 1}, {1}}}, false));
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("imatrix.datasets"), std::string::npos) << m.status().message();
  }
}

TEST_F(ImatrixTest, RejectsBadEntries) {
  auto expect_error = [&](const std::string& file, const Entry& e, const std::string& needle) {
    auto m = load_imatrix(write_imatrix(file, {e}));
    ASSERT_FALSE(m.is_ok()) << file;
    EXPECT_NE(m.status().message().find(needle), std::string::npos) << m.status().message();
  };
  expect_error("nocounts.gguf", {"blk.1.ffn_down.weight", 4, 1, {1, 2, 3, 4}, {}}, "blk.1.ffn_down.weight.counts");
  expect_error("nosums.gguf", {"blk.1.ffn_down.weight", 4, 1, {}, {2}}, "blk.1.ffn_down.weight.in_sum2");
  expect_error("nan.gguf", {"blk.2.attn_v.weight", 4, 1, {1, NAN, 3, 4}, {2}}, "blk.2.attn_v.weight.in_sum2");
  expect_error("inf.gguf", {"blk.2.attn_v.weight", 4, 1, {1, 2, INFINITY, 4}, {2}}, "must be finite");
  expect_error("neg.gguf", {"blk.2.attn_v.weight", 4, 1, {1, -2, 3, 4}, {2}}, "blk.2.attn_v.weight.in_sum2");
  expect_error("negcount.gguf", {"blk.2.attn_v.weight", 4, 1, {1, 2, 3, 4}, {-1}}, "blk.2.attn_v.weight.counts");
}

// Weighting a few columns 1000x must lower the squared error of those columns against the
// unweighted fit, for every type with a weighted quantizer; the output is deterministic.
TEST(ImatrixFits, HeavyColumnsFitBetter) {
  const int64_t n_cols = 512, n_rows = 16;
  const std::vector<float> x = test_rows(n_cols * n_rows, 7);
  std::vector<float> importance(n_cols);
  for (int64_t c = 0; c < n_cols; ++c) importance[c] = (c % 5 == 0) ? 1000.f : 0.5f + 0.001f * c;
  const DType types[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K,
                         DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS};
  for (DType t : types) {
    SCOPED_TRACE(dtype_info(t).name);
    const auto* tr = kernels::type_traits_ref(t);
    ASSERT_NE(tr, nullptr);
    ASSERT_NE(tr->quantize_weighted, nullptr);
    // the fastest table carries the same entry
    EXPECT_EQ(kernels::type_traits(t)->quantize_weighted, tr->quantize_weighted);
    const size_t rb = row_bytes(t, n_cols);
    std::vector<uint8_t> plain(rb * n_rows), weighted(rb * n_rows), again(rb * n_rows);
    for (int64_t r = 0; r < n_rows; ++r) tr->weight_quantizer()(x.data() + r * n_cols, plain.data() + r * rb, n_cols);
    tr->quantize_weighted(x.data(), weighted.data(), n_cols * n_rows, importance.data(), n_cols);
    tr->quantize_weighted(x.data(), again.data(), n_cols * n_rows, importance.data(), n_cols);
    EXPECT_EQ(weighted, again);
    EXPECT_NE(weighted, plain);
    std::vector<float> yp(n_cols), yw(n_cols);
    double err_plain = 0, err_weighted = 0;
    for (int64_t r = 0; r < n_rows; ++r) {
      tr->to_float(plain.data() + r * rb, yp.data(), n_cols);
      tr->to_float(weighted.data() + r * rb, yw.data(), n_cols);
      for (int64_t c = 0; c < n_cols; c += 5) {
        const double v = x[r * n_cols + c];
        err_plain += (yp[c] - v) * (yp[c] - v);
        err_weighted += (yw[c] - v) * (yw[c] - v);
      }
    }
    EXPECT_LT(err_weighted, 0.8 * err_plain) << "weighted " << err_weighted << " plain " << err_plain;
  }
  // Q8_0: llama.cpp ignores the matrix, so there is no weighted entry
  EXPECT_EQ(kernels::type_traits_ref(DType::Q8_0)->quantize_weighted, nullptr);
}

// quantize_file with an importance matrix: the tensors with an entry change, the others keep
// the unweighted bytes, and an entry of the wrong length fails naming the tensor.
TEST_F(ImatrixTest, QuantizeFileUsesTheMatrix) {
  const std::string in = kModels + "code-tiny-draft-F16.gguf";
  auto f = gguf::File::open(in);
  ASSERT_TRUE(f.is_ok());
  const gguf::TensorInfo* q = f.value()->tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  const int64_t n_cols = q->ne[0];
  std::vector<float> sums(n_cols);
  for (int64_t c = 0; c < n_cols; ++c) sums[c] = c % 3 == 0 ? 3000.f : 3.f;
  auto m = load_imatrix(write_imatrix("q.gguf", {{"blk.0.attn_q.weight", n_cols, 1, sums, {3}}}));
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  auto target = parse_quant_target("Q4_K_M");
  ASSERT_TRUE(target.is_ok());
  QuantizeOptions plain_opt, imat_opt;
  imat_opt.imatrix = &m.value();
  ASSERT_TRUE(quantize_file(in, path("plain.gguf"), *target, plain_opt).is_ok());
  const Status st = quantize_file(in, path("imat.gguf"), *target, imat_opt);
  ASSERT_TRUE(st.is_ok()) << st.message();
  auto a = gguf::File::open(path("plain.gguf"));
  auto b = gguf::File::open(path("imat.gguf"));
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  int n_same = 0, n_diff = 0;
  for (const auto& t : a.value()->tensors()) {
    const gguf::TensorInfo* u = b.value()->tensor(t.name);
    ASSERT_NE(u, nullptr);
    ASSERT_EQ(t.type, u->type) << t.name;
    const bool same = t.n_bytes == u->n_bytes && std::memcmp(t.data, u->data, t.n_bytes) == 0;
    if (t.name == "blk.0.attn_q.weight") EXPECT_FALSE(same);
    else same ? ++n_same : ++n_diff;
  }
  EXPECT_EQ(n_diff, 0);
  EXPECT_GT(n_same, 0);
  EXPECT_EQ(b.value()->get_string("quantize.imatrix.dataset").value_or(""), "synthetic");

  auto wrong = load_imatrix(write_imatrix("wrong.gguf", {{"blk.0.attn_q.weight", n_cols / 2, 1,
                                                           std::vector<float>(n_cols / 2, 1.f), {1}}}));
  ASSERT_TRUE(wrong.is_ok());
  imat_opt.imatrix = &wrong.value();
  const Status bad = quantize_file(in, path("bad.gguf"), *target, imat_opt);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.message().find("blk.0.attn_q.weight"), std::string::npos) << bad.message();
}

// llama-quantize refuses the 1- and 2-bit grid types without a matrix ("the result will be
// garbage"); so does tachyon, naming the tensor. A matrix without an entry for one fails too.
TEST_F(ImatrixTest, LowBitGridTypesNeedTheMatrix) {
  const std::string in = kModels + "code-tiny-F16.gguf";  // rows of 256 (the draft's 128 fall back to IQ4_NL)
  for (const char* mix : {"IQ2_XXS", "IQ2_XS", "IQ2_M", "IQ1_S", "IQ1_M"}) {
    auto target = parse_quant_target(mix);
    ASSERT_TRUE(target.is_ok());
    const Status st = quantize_file(in, path("x.gguf"), *target, QuantizeOptions{});
    ASSERT_FALSE(st.is_ok()) << mix;
    EXPECT_NE(st.message().find("needs an importance matrix"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("blk.0."), std::string::npos) << st.message();
  }
  auto f = gguf::File::open(in);
  ASSERT_TRUE(f.is_ok());
  const int64_t n_cols = f.value()->tensor("blk.0.attn_q.weight")->ne[0];
  auto partial = load_imatrix(write_imatrix("p.gguf", {{"blk.0.attn_q.weight", n_cols, 1, std::vector<float>(n_cols, 1.f), {1}}}));
  ASSERT_TRUE(partial.is_ok());
  QuantizeOptions opt;
  opt.imatrix = &partial.value();
  const Status st = quantize_file(in, path("y.gguf"), *parse_quant_target("IQ2_XXS"), opt);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("has no entry"), std::string::npos) << st.message();
  // IQ3_XXS and IQ3_S quantize without one (llama.cpp's x^2-weighted fits).
  auto iq3 = parse_quant_target("IQ3_S");
  ASSERT_TRUE(quantize_file(in, path("z.gguf"), *iq3, QuantizeOptions{}).is_ok());
}

}  // namespace
