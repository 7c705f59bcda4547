// llama.cpp's tokenizer golden files: every string of every vocabulary must produce
// exactly the recorded ids (no BOS, special tokens not parsed).
#include <cstdio>

#include "tok_test_util.h"

namespace tachyon::tok::testing {
namespace {

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesLlamaCpp) {
  const std::string name = GetParam();
  const Tokenizer* tok = cached(name);
  ASSERT_NE(tok, nullptr);
  const std::string base = vocab_path(name);
  const auto inputs = read_inp(base + ".inp");
  const auto expected = read_out(base + ".out");
  ASSERT_EQ(inputs.size(), expected.size()) << name;
  ASSERT_GT(inputs.size(), 0u);
  size_t pass = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = tok->encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (got == expected[i]) {
      ++pass;
    } else {
      ADD_FAILURE() << name << " #" << i << " '" << inputs[i] << "'\n  expected: " << ids_str(expected[i])
                    << "\n  got:      " << ids_str(got);
    }
  }
  std::printf("[golden] %-15s %zu/%zu\n", name.c_str(), pass, inputs.size());
  EXPECT_EQ(pass, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(Vocabs, GoldenTest, ::testing::ValuesIn(golden_vocabs()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace tachyon::tok::testing
