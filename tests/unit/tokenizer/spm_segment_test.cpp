// The SentencePiece merge runs on independent segments cut where no token can span
// (spm.cpp); it must give exactly what one global queue over the whole text gives.
#include <random>

#include "tok_test_util.h"
#include "tokenizer/vocab.h"

namespace tachyon::tok::testing {
namespace {

TEST(SpmSegments, SameAsOneGlobalQueue) {
  static const char* kPool[] = {"\xE2\x96\x81", "\xE2\x96\x81", "\xE2\x96\x81", "a", "e", "t", "h", "in", "er",
                                "the", "ing", "S", "T", "0", "1", "9", ".", ",", "'", "\n", "\t", "<", ">", "/",
                                "é", "ü", "中", "文", "日", "🚀", "👍", "\xF0\x9F", "\x80", "\xE4", "\xFF", "x",
                                "\xE2\x96\x81\xE2\x96\x81", "  ", "ab", "ba", "ll", "o"};
  std::mt19937 rng(7);
  for (const std::string& path : {vocab_path("llama-spm"), vocab_path("baichuan"), vocab_path("phi-3"),
                                 data_dir() + "/models/mini-llama-F16.gguf"}) {
    auto f = gguf::File::open(path);
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    auto v = detail::load_vocab(*f.value());
    ASSERT_TRUE(v.is_ok()) << v.status().message();
    EXPECT_GT(v.value()->spm_inner_pairs.size(), 1000u);
    size_t n_checked = 0;
    for (int iter = 0; iter < 3000; ++iter) {
      std::string s;
      const int n = 1 + rng() % 60;
      for (int k = 0; k < n; ++k) s += kPool[rng() % (sizeof(kPool) / sizeof(kPool[0]))];
      std::vector<int32_t> seg, global;
      detail::spm_tokenize(*v.value(), s, &seg, true);
      detail::spm_tokenize(*v.value(), s, &global, false);
      ASSERT_EQ(seg, global) << path << ": '" << s << "'";
      ++n_checked;
    }
    std::string prose;  // the golden strings, spaces escaped as encode() does
    for (const auto& s : read_inp(vocab_path("llama-spm") + ".inp")) {
      for (char c : s) prose += (c == ' ') ? std::string("\xE2\x96\x81") : std::string(1, c);
    }
    std::vector<int32_t> seg, global;
    detail::spm_tokenize(*v.value(), prose, &seg, true);
    detail::spm_tokenize(*v.value(), prose, &global, false);
    EXPECT_EQ(seg, global);
    EXPECT_EQ(n_checked, 3000u);
  }
}

}  // namespace
}  // namespace tachyon::tok::testing
