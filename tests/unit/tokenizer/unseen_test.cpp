// Input none of the golden files cover: it must never crash, must produce valid ids, and
// must follow llama.cpp's documented handling (SentencePiece keeps invalid bytes through
// <0xNN> tokens; byte-level BPE and WordPiece see each bad byte as U+FFFD).
#include <thread>

#include "tok_test_util.h"
#include "tokenizer/unicode.h"

namespace tachyon::tok::testing {
namespace {

const std::vector<std::string>& unseen() {
  static const std::vector<std::string> s = [] {
    std::vector<std::string> v = {
        "漢字仮名交じり文と简体中文以及繁體中文、그리고 한국어",
        "👨‍👩‍👧‍👦👩🏽‍💻🏳️‍🌈🇯🇵🇺🇳 ZWJ and flags",
        "العربية من اليمين إلى اليسار ‏עברית‎ mixed 123 ١٢٣",
        "\t\t\n\n\r\n \u00a0\u2003\u3000\u0085 odd spaces",
        "def f(x):\n    return {k: v for k, v in x.items() if v is not None}  # comment\n",
        "#include <stdio.h>\nint main(void){printf(\"%d\\n\",42);}",
        "Ǆǅǆ ﬁ ﬀ Ⅻ ½ ² ㊿ combining: e\u0301 a\u0308 ñ",
        "\x01\x02\x1b[31mcontrol\x1b[0m\x7f",
        std::string(5000, ' '),
        std::string(3000, '\n') + "x",
        std::string(20000, 'a'),
        std::string(2000, '!') + std::string(2000, '9'),
    };
    // invalid UTF-8: stray continuation, truncated sequences, overlong, surrogate, bytes F5..FF
    v.push_back("bad \x80 \xBF cont");
    v.push_back("truncated \xE4\xBD and \xF0\x9F\x9A");
    v.push_back("overlong \xC0\x80 \xE0\x80\x80");
    v.push_back("surrogate \xED\xA0\x80 \xED\xBF\xBF");
    v.push_back("high \xF5\x80\x80\x80 \xF8\x88\x80\x80\x80 \xFF\xFE");
    v.push_back(std::string("nul\0inside", 10));
    return v;
  }();
  return s;
}

class UnseenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(UnseenTest, NeverCrashesAndStaysInVocab) {
  const Tokenizer* tok = cached(GetParam());
  ASSERT_NE(tok, nullptr);
  for (const std::string& s : unseen()) {
    for (bool parse_special : {false, true}) {
      const auto ids = tok->encode(s, true, parse_special);
      for (int32_t id : ids) ASSERT_TRUE(tok->valid_id(id)) << GetParam() << " id " << id;
      const std::string text = tok->decode(ids);
      if (tok->type() == VocabType::kSpm) {
        // Every byte is kept (BOS keeps the prefix space). One llama.cpp quirk: a broken
        // sequence's lead byte swallows the next bytes by its declared length, so an escaped
        // space ("▁") right after it is split into <0xNN> tokens and decodes as "▁".
        std::string unescaped;
        for (size_t i = 0; i < text.size(); ++i) {
          if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
            unescaped += ' ';
            i += 2;
          } else {
            unescaped += text[i];
          }
        }
        EXPECT_EQ(unescaped, " " + s) << "SentencePiece must keep every byte";
      } else if (tok->type() == VocabType::kBpe && is_valid_utf8(s)) {
        std::string joined;
        for (int32_t id : ids) joined += tok->token_to_piece(id);
        EXPECT_EQ(joined, s);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, UnseenTest, ::testing::ValuesIn(golden_vocabs()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n) {
    if (c == '-') c = '_';
  }
  return n;
});

TEST(Unseen, ByteLevelBpeReplacesInvalidBytesLikeLlamaCpp) {
  const Tokenizer* tok = cached("deepseek-llm");  // no space clean-up, so decode is exact
  ASSERT_NE(tok, nullptr);
  const std::string fffd = "\xEF\xBF\xBD";
  const auto rt = [&](const std::string& s) { return tok->decode(tok->encode(s, false, false)); };
  EXPECT_EQ(rt("a\xFF" "b"), "a" + fffd + "b");
  // llama.cpp's decoder: a truncated sequence yields one U+FFFD per byte
  EXPECT_EQ(rt("x\xE4\xBD"), "x" + fffd + fffd);
  // ... but accepts overlong forms and surrogates as they decode
  EXPECT_EQ(rt("\xC0\x80"), std::string(1, '\0'));
  EXPECT_EQ(rt("\xED\xA0\x80"), "\xED\xA0\x80");
  // code points above U+10FFFF (llama.cpp throws) become U+FFFD
  EXPECT_EQ(rt("\xF7\xBF\xBF\xBF"), fffd);
}

TEST(Unseen, ConcurrentEncodeIsSafe) {
  const Tokenizer* tok = cached("gpt-2");
  ASSERT_NE(tok, nullptr);
  const std::string text = unseen()[0] + unseen()[4] + unseen()[6];
  const auto want = tok->encode(text, true, true);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) bad += tok->encode(text, true, true) != want;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace tachyon::tok::testing
