// decode(encode(s)) == s where the vocabulary is lossless, and the byte-exactness of the
// pieces everywhere else.
//
// Lossless: the SentencePiece vocabs (llama-spm, phi-3, baichuan, the 32k model vocab:
// every byte has a <0xNN> fallback token and decode() removes exactly the one space
// encode() prefixed) and the byte-level BPE vocabs that do not clean up spaces
// (deepseek-coder, deepseek-llm), for valid UTF-8.
// Not lossless: gpt-2, gpt-neox, mpt, falcon, refact, starcoder decode with
// clean_up_tokenization_spaces (" ," -> ",", " 's" -> "'s", ...) although their pieces
// concatenate to the exact input; bert-bge lowercases, strips accents and drops
// whitespace; byte-level BPE turns invalid UTF-8 into U+FFFD before tokenizing; the
// mini-* models' 4096-token SentencePiece vocab has no "▁" token, so a space that merges
// with nothing falls back to the bytes of U+2581, which decode as "▁" (llama.cpp too).
#include "tok_test_util.h"

namespace tachyon::tok::testing {
namespace {

const std::vector<std::string>& extra_strings() {
  static const std::vector<std::string> s = {
      "Hello world",
      " leading space",
      "  two leading spaces and trailing  ",
      "Ünïcödé façade — naïve café",
      "日本語のテキストと中文文本，还有한국어 텍스트。",
      "emoji: 🚀🔥 family 👨‍👩‍👧‍👦 flag 🇺🇳 skin 👍🏽",
      "RTL: مرحبا بالعالم — שלום עולם",
      "tabs\tand\nnewlines\r\n\n\n   indented",
      "int main() {\n    return a[i] >= b ? x : y; // ok\n}\n",
      "numbers 3.14159 1,000,000 0x1F 12345678901234567890",
      "quotes 'single' \"double\" `back` it's we're I'll",
      std::string(300, ' ') + "x" + std::string(50, '\n'),
  };
  return s;
}

std::vector<std::string> all_strings(const std::string& vocab) {
  // model files reuse the llama-spm strings
  auto v = read_inp(vocab_path(vocab.find('/') == std::string::npos ? vocab : "llama-spm") + ".inp");
  for (const auto& s : extra_strings()) v.push_back(s);
  return v;
}

class LosslessTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LosslessTest, DecodeEncodeIsIdentity) {
  const std::string name = GetParam();
  const Tokenizer* tok = cached(name);
  ASSERT_NE(tok, nullptr);
  size_t n = 0;
  for (const std::string& s : all_strings(name)) {
    const auto ids = tok->encode(s, false, false);
    EXPECT_EQ(tok->decode(ids), s) << name << ": '" << s << "'";
    // with BOS, llama.cpp keeps the SentencePiece prefix space (the BOS consumes the strip)
    if (tok->add_bos() && tok->add_space_prefix() && !s.empty()) {
      EXPECT_EQ(tok->decode(tok->encode(s, true, false)), " " + s);
    }
    ++n;
  }
  std::printf("[roundtrip] %-15s %zu strings\n", name.substr(name.find_last_of('/') + 1).c_str(), n);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, LosslessTest,
                         ::testing::Values("llama-spm", "phi-3", "baichuan", "deepseek-coder", "deepseek-llm",
                                           TACHYON_SHARED_DATA "/models/llama-spm32k-F16.gguf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           n = n.substr(n.find_last_of('/') + 1);
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

TEST(Roundtrip, SpmKeepsInvalidUtf8Bytes) {
  const Tokenizer* tok = cached("llama-spm");
  ASSERT_NE(tok, nullptr);
  for (const std::string& s : {std::string("a\xFF" "b"), std::string("\xE4\xBD"), std::string("x\xC0\x80y"),
                              std::string("\xED\xA0\x80"), std::string("\x80\x80\x80"), std::string("nul\0byte", 8)}) {
    EXPECT_EQ(tok->decode(tok->encode(s, false, false)), s);
  }
}

// Byte-level BPE vocabs that clean up spaces: the pieces are still byte-exact.
class PiecesTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PiecesTest, PiecesConcatenateToInput) {
  const std::string name = GetParam();
  const Tokenizer* tok = cached(name);
  ASSERT_NE(tok, nullptr);
  for (const std::string& s : all_strings(name)) {
    std::string joined;
    for (int32_t id : tok->encode(s, false, false)) joined += tok->token_to_piece(id, true);
    EXPECT_EQ(joined, s) << name;
    const bool cleanable = s.find(" ,") != std::string::npos || s.find(" .") != std::string::npos ||
                           s.find(" !") != std::string::npos || s.find(" ?") != std::string::npos ||
                           s.find(" '") != std::string::npos;
    if (!cleanable) {
      EXPECT_EQ(tok->decode(tok->encode(s, false, false)), s) << name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, PiecesTest,
                         ::testing::Values("gpt-2", "gpt-neox", "mpt", "falcon", "refact", "starcoder"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

TEST(Roundtrip, CleanUpSpacesLikeLlamaCpp) {
  const Tokenizer* tok = cached("gpt-2");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->decode(tok->encode("Hello , world ! It 's a ' quote ' .", false, false)),
            "Hello, world! It's a'quote '.");
  EXPECT_EQ(tok->decode(tok->encode("we 're they 've I 'll it 'd", false, false)), "we're they've I 'll it 'd");
}

TEST(Roundtrip, WordPieceNormalizes) {
  // llama.cpp renders every WordPiece word start as " word" and BERT vocabs add no prefix
  // space, so the decoded text starts with a space.
  const Tokenizer* tok = cached("bert-bge");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->decode(tok->encode("Hello World", false, false)), " hello world");
  EXPECT_EQ(tok->decode(tok->encode("Äpfel  café", false, false)), " apfel cafe");
}

TEST(Roundtrip, TruncatedSpmVocabKeepsU2581Bytes) {
  const Tokenizer* tok = cached(TACHYON_SHARED_DATA "/models/mini-llama-F16.gguf");
  ASSERT_NE(tok, nullptr);
  ASSERT_EQ(tok->find_token("\xE2\x96\x81"), -1);
  EXPECT_EQ(tok->decode(tok->encode("你好", false, false)), "\xE2\x96\x81你好");
}

}  // namespace
}  // namespace tachyon::tok::testing
