// Throughput on 1 MB of mixed text (prose, code, numbers, CJK, Cyrillic, emoji, long
// whitespace runs) for each tokenizer family. The budget is generous (5 s, optimized
// builds) so that a loaded machine does not flake; the printed figure is the one to watch.
#include <chrono>
#include <random>

#include "tok_test_util.h"

namespace tachyon::tok::testing {
namespace {

std::string mixed_text(size_t n_bytes) {
  static const char* kPieces[] = {
      "The quick brown fox jumps over the lazy dog. ",
      "It's a truth universally acknowledged, isn't it? ",
      "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }\n",
      "    return {\"key\": value, 'list': [1, 2, 3]}\n",
      "3.14159 2718281828 1,000,000 0xDEADBEEF ",
      "日本語のテキストと中文文本，还有한국어。",
      "Привет, как дела? Всё хорошо. ",
      "🚀🔥👍🏽 👨‍👩‍👧‍👦 ",
      "\n\n\t\t  \n",
      "Ünïcödé façade naïve café résumé ",
  };
  static const char* kSyllables[] = {"ka", "lo", "mi", "ne", "tur", "ex", "qua", "zen", "pho", "ri", "st", "ang"};
  std::mt19937 rng(42);
  std::string s;
  s.reserve(n_bytes + 256);
  while (s.size() < n_bytes) {
    const unsigned r = rng() % 14;
    if (r < 10) {
      s += kPieces[r];
    } else {  // made-up words keep the vocabulary of the text large
      const int n = 1 + rng() % 4;
      for (int k = 0; k < n; ++k) s += kSyllables[rng() % 12];
      s += (r == 13) ? "\n" : " ";
    }
  }
  s.resize(n_bytes);
  // do not end inside a UTF-8 character
  while (!s.empty() && (static_cast<unsigned char>(s.back()) & 0xC0) == 0x80) s.pop_back();
  if (!s.empty() && static_cast<unsigned char>(s.back()) >= 0xC0) s.pop_back();
  return s;
}

// The budget applies to optimized builds; -O0 / sanitizer builds are 10-20x slower.
#ifdef NDEBUG
constexpr double kBudgetSeconds = 5.0;
#else
constexpr double kBudgetSeconds = 60.0;
#endif

class PerfTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PerfTest, OneMegabyteWellUnderASecond) {
  const Tokenizer* tok = cached(GetParam());
  ASSERT_NE(tok, nullptr);
  const std::string text = mixed_text(1 << 20);
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok->encode(text, true, true);
  const auto t1 = std::chrono::steady_clock::now();
  const std::string back = tok->decode(ids);
  const auto t2 = std::chrono::steady_clock::now();
  const double enc_s = std::chrono::duration<double>(t1 - t0).count();
  const double dec_s = std::chrono::duration<double>(t2 - t1).count();
  std::printf("[perf] %-15s encode 1 MiB: %7.1f ms (%5.2f MB/s, %zu tokens), decode: %6.1f ms\n", GetParam().c_str(),
              enc_s * 1e3, text.size() / enc_s / 1e6, ids.size(), dec_s * 1e3);
  EXPECT_GT(ids.size(), 100000u);
  EXPECT_LT(enc_s, kBudgetSeconds);
  EXPECT_LT(dec_s, kBudgetSeconds);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, PerfTest,
                         ::testing::Values("llama-spm", "gpt-2", "deepseek-llm", "falcon", "mpt", "bert-bge"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace tachyon::tok::testing
