// `tachyon quantize` against llama.cpp's quantizer: the mini-llama files in
// ../shared/data/models were made by llama.cpp (68f30663) from mini-llama-F16, the IQ1 /
// IQ2 / IQ3_XXS ones with mini-llama.imatrix.gguf (their quantize.imatrix.file key says
// so) and the others without, so quantizing that F16 file to the same mix (with the same
// matrix) must choose the same type for every tensor and write the same blocks. Printed
// per file: blocks identical to llama.cpp's, per weight type.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "golden_util.h"
#include "gguf/gguf.h"
#include "model/imatrix.h"
#include "model/quantize.h"

namespace {

using tachyon::DType;
using tachyon::dtype_info;
using tachyon::golden::kData;

class QuantizeGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantizeGolden, SameBlocksAsLlamaCpp) {
  const std::string mix = GetParam();
  const std::string ref_path = kData + "/models/mini-llama-" + mix + ".gguf";
  const std::string out = ::testing::TempDir() + "tachyon-quantize-" + mix + ".gguf";
  auto target = tachyon::model::parse_quant_target(mix);
  ASSERT_TRUE(target.is_ok());
  auto ref = tachyon::gguf::File::open(ref_path);
  ASSERT_TRUE(ref.is_ok());
  tachyon::model::QuantizeOptions opt;
  opt.n_threads = 2;
  std::optional<tachyon::model::Imatrix> imatrix;
  if (ref.value()->get_string("quantize.imatrix.file")) {
    auto m = tachyon::model::load_imatrix(kData + "/models/mini-llama.imatrix.gguf");
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    imatrix = std::move(m.value());
    opt.imatrix = &*imatrix;
  }
  const auto st = tachyon::model::quantize_file(kData + "/models/mini-llama-F16.gguf", out, target.value(), opt);
  ASSERT_TRUE(st.is_ok()) << st.message();
  auto mine = tachyon::gguf::File::open(out);
  ASSERT_TRUE(mine.is_ok());
  struct Count {
    int64_t same = 0, all = 0;
  };
  std::map<std::string, Count> by_type;
  for (const auto& t : ref.value()->tensors()) {
    const auto* m = mine.value()->tensor(std::string(t.name));
    ASSERT_NE(m, nullptr) << t.name;
    ASSERT_EQ(dtype_info(m->type).name, dtype_info(t.type).name) << t.name;
    ASSERT_EQ(m->n_bytes, t.n_bytes) << t.name;
    const auto info = dtype_info(t.type);
    Count& c = by_type[std::string(info.name)];
    for (size_t off = 0; off < t.n_bytes; off += info.block_bytes) {
      c.same += std::memcmp(m->data + off, t.data + off, info.block_bytes) == 0;
      ++c.all;
    }
  }
  std::string line;
  bool exact = true;
  for (const auto& [name, c] : by_type) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "  %s %.2f%% of %lld", name.c_str(), 100.0 * c.same / c.all, static_cast<long long>(c.all));
    line += buf;
    exact &= c.same == c.all;
  }
  std::printf("[quantize] %-7s blocks identical to llama.cpp's:%s\n", mix.c_str(), line.c_str());
  EXPECT_TRUE(exact) << mix;
  std::filesystem::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Mixes, QuantizeGolden,
                         ::testing::Values("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q1_0", "Q2_K", "Q3_K_M", "Q4_K_M",
                                           "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "IQ3_S", "IQ3_XXS",
                                           "IQ2_S", "IQ2_XS", "IQ2_XXS", "IQ1_M", "IQ1_S"),
                         [](const auto& info) { return info.param; });

}  // namespace
