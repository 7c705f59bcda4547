// StreamDecoder: one token at a time gives exactly decode(all), and no chunk ever ends
// inside a UTF-8 character.
#include "tok_test_util.h"
#include "tokenizer/unicode.h"

namespace tachyon::tok::testing {
namespace {

const std::vector<std::string>& stream_strings() {
  static const std::vector<std::string> s = {
      "Hello world! How are you?",
      "日本語のテキストと中文文本，还有한국어 텍스트。",
      "emoji 🚀🔥 family 👨‍👩‍👧‍👦 flag 🇺🇳 skin 👍🏽 end",
      "RTL مرحبا بالعالم — שלום עולם",
      "Hello , world ! It 's a ' quote ' . we 're I 'll   spaced   out ?",
      "code:\n\tif (a != b) { return 'x'; }\n",
      "Привет, мир! Ünïcödé façade",
      "  leading and trailing  ",
  };
  return s;
}

struct StreamResult {
  std::string text;
  size_t n_chunks = 0;
  bool all_valid = true;
};

StreamResult stream(const Tokenizer& tok, const std::vector<int32_t>& ids, StreamDecoder::Options opts = {}) {
  StreamDecoder sd(tok, opts);
  StreamResult r;
  for (int32_t id : ids) {
    const std::string chunk = sd.push(id);
    if (!chunk.empty()) ++r.n_chunks;
    r.all_valid = r.all_valid && is_valid_utf8(chunk);
    r.text += chunk;
  }
  const std::string tail = sd.flush();
  r.all_valid = r.all_valid && is_valid_utf8(tail);
  r.text += tail;
  return r;
}

class StreamTest : public ::testing::TestWithParam<std::string> {};

TEST_P(StreamTest, EqualsDecodeAndNeverSplitsCharacters) {
  const Tokenizer* tok = cached(GetParam());
  ASSERT_NE(tok, nullptr);
  for (const std::string& s : stream_strings()) {
    for (bool add_special : {false, true}) {
      for (bool render_special : {false, true}) {
        for (LeadingSpace ls : {LeadingSpace::kLlamaCpp, LeadingSpace::kSkipBos, LeadingSpace::kKeep}) {
          const auto ids = tok->encode(s, add_special, false);
          const std::string want = tok->decode(ids, render_special, ls);
          StreamDecoder::Options o;
          o.render_special = render_special;
          o.leading = ls;
          const StreamResult r = stream(*tok, ids, o);
          EXPECT_EQ(r.text, want) << GetParam() << ": '" << s << "'";
          if (is_valid_utf8(want)) {
            EXPECT_TRUE(r.all_valid) << GetParam() << ": a chunk split a character in '" << s << "'";
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, StreamTest,
                         ::testing::Values("llama-spm", "phi-3", "gpt-2", "deepseek-llm", "falcon", "bert-bge",
                                           TACHYON_SHARED_DATA "/models/mini-qwen2-F16.gguf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           n = n.substr(n.find_last_of('/') + 1);
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

// The 4k vocab spells CJK and emoji with <0xNN> byte tokens: characters arrive in pieces
// and must be held back until complete.
TEST(Stream, ByteFallbackIsHeldBack) {
  const Tokenizer* tok = cached(TACHYON_SHARED_DATA "/models/mini-llama-F16.gguf");
  ASSERT_NE(tok, nullptr);
  const std::string s = "a 🚀 b 你好 c";
  const auto ids = tok->encode(s, false, false);
  size_t n_byte_tokens = 0;
  for (int32_t id : ids) n_byte_tokens += tok->token_type(id) == TokenType::kByte;
  EXPECT_GE(n_byte_tokens, 10u);
  StreamDecoder sd(*tok);
  std::string out;
  std::vector<std::string> chunks;
  for (int32_t id : ids) {
    chunks.push_back(sd.push(id));
    EXPECT_TRUE(is_valid_utf8(chunks.back()));
    out += chunks.back();
  }
  out += sd.flush();
  EXPECT_EQ(out, tok->decode(ids));
  // the rocket's four byte tokens produce one chunk with the whole character
  EXPECT_NE(std::find(chunks.begin(), chunks.end(), "\xF0\x9F\x9A\x80"), chunks.end());
}

TEST(Stream, LeadingSpaceModes) {
  const Tokenizer* tok = cached("llama-spm");
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("Paris is nice", false, false);
  std::vector<int32_t> with_bos{tok->bos_id()};
  with_bos.insert(with_bos.end(), ids.begin(), ids.end());
  StreamDecoder::Options keep, skip_bos;
  keep.leading = LeadingSpace::kKeep;
  skip_bos.leading = LeadingSpace::kSkipBos;
  // generation after a prompt: the first token's space is real
  EXPECT_EQ(stream(*tok, ids, keep).text, " Paris is nice");
  // llama.cpp: the first token loses its space, but a leading BOS consumes that rule
  EXPECT_EQ(stream(*tok, ids).text, "Paris is nice");
  EXPECT_EQ(stream(*tok, with_bos).text, " Paris is nice");
  EXPECT_EQ(tok->decode(with_bos), " Paris is nice");
  // SentencePiece / HF: strip the space of the first token after BOS
  EXPECT_EQ(stream(*tok, with_bos, skip_bos).text, "Paris is nice");
  EXPECT_EQ(tok->decode(with_bos, false, LeadingSpace::kSkipBos), "Paris is nice");
  EXPECT_EQ(tok->decode(with_bos, true, LeadingSpace::kSkipBos), "<s>Paris is nice");
}

TEST(Stream, InvalidBytesPassThroughOrAreReplaced) {
  const Tokenizer* tok = cached("llama-spm");
  ASSERT_NE(tok, nullptr);
  // <0xE4> (lead of a 3-byte character) followed by a plain token: never completes
  const int32_t lead = tok->find_token("<0xE4>");
  const int32_t a = tok->find_token("a");
  ASSERT_GE(lead, 0);
  ASSERT_GE(a, 0);
  const std::vector<int32_t> ids{a, lead, a};
  EXPECT_EQ(stream(*tok, ids).text, "a\xE4" "a");
  StreamDecoder::Options o;
  o.replace_invalid_utf8 = true;
  const StreamResult r = stream(*tok, ids, o);
  EXPECT_EQ(r.text, "a\xEF\xBF\xBD" "a");
  EXPECT_TRUE(r.all_valid);
  // a dangling lead byte at the end is released by flush()
  StreamDecoder sd(*tok);
  EXPECT_EQ(sd.push(a), "a");
  EXPECT_EQ(sd.push(lead), "");
  EXPECT_EQ(sd.flush(), "\xE4");
}

TEST(Stream, CleanUpHoldsTrailingSpace) {
  const Tokenizer* tok = cached("gpt-2");
  ASSERT_NE(tok, nullptr);
  StreamDecoder sd(*tok);
  std::string out;
  for (int32_t id : tok->encode("Hello ,", false, false)) out += sd.push(id);
  EXPECT_EQ(out + sd.flush(), "Hello,");
}

}  // namespace
}  // namespace tachyon::tok::testing
