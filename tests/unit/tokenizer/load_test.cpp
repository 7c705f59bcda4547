// from_gguf on synthetic GGUF files: clear errors for missing or inconsistent metadata, and
// the algorithms on tiny vocabularies whose answer can be worked out by hand.
#include <cstring>

#include "tok_test_util.h"

namespace tachyon::tok::testing {
namespace {

// Minimal GGUF v3 writer for metadata-only files.
class GgufBuilder {
 public:
  GgufBuilder& str(const std::string& key, const std::string& v) {
    kv_header(key, 8);
    put_str(v);
    return *this;
  }
  GgufBuilder& u32(const std::string& key, uint32_t v) {
    kv_header(key, 4);
    put(v);
    return *this;
  }
  GgufBuilder& boolean(const std::string& key, bool v) {
    kv_header(key, 7);
    put(static_cast<uint8_t>(v));
    return *this;
  }
  GgufBuilder& strs(const std::string& key, const std::vector<std::string>& v) {
    kv_header(key, 9);
    put(uint32_t{8});
    put(static_cast<uint64_t>(v.size()));
    for (const auto& s : v) put_str(s);
    return *this;
  }
  GgufBuilder& f32s(const std::string& key, const std::vector<float>& v) {
    kv_header(key, 9);
    put(uint32_t{6});
    put(static_cast<uint64_t>(v.size()));
    for (float x : v) put(x);
    return *this;
  }
  GgufBuilder& i32s(const std::string& key, const std::vector<int32_t>& v) {
    kv_header(key, 9);
    put(uint32_t{5});
    put(static_cast<uint64_t>(v.size()));
    for (int32_t x : v) put(x);
    return *this;
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    const auto app = [&](const void* p, size_t n) {
      out.insert(out.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
    };
    app("GGUF", 4);
    const uint32_t version = 3;
    const uint64_t n_tensors = 0;
    app(&version, 4);
    app(&n_tensors, 8);
    app(&n_kv_, 8);
    out.insert(out.end(), body_.begin(), body_.end());
    while (out.size() % 32) out.push_back(0);
    return out;
  }

 private:
  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    body_.insert(body_.end(), p, p + sizeof(T));
  }
  void put_str(const std::string& s) {
    put(static_cast<uint64_t>(s.size()));
    body_.insert(body_.end(), s.begin(), s.end());
  }
  void kv_header(const std::string& key, uint32_t type) {
    ++n_kv_;
    put_str(key);
    put(type);
  }
  uint64_t n_kv_ = 0;
  std::vector<uint8_t> body_;
};

struct Parsed {
  std::vector<uint8_t> bytes;
  std::unique_ptr<gguf::File> file;
  Result<std::unique_ptr<Tokenizer>> tok = Status(ErrorCode::kInternal, "not loaded");
};

std::unique_ptr<Parsed> parse(const GgufBuilder& b) {
  auto p = std::make_unique<Parsed>();
  p->bytes = b.bytes();
  auto f = gguf::File::parse(p->bytes.data(), p->bytes.size(), "test.gguf");
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  if (!f.is_ok()) return p;
  p->file = std::move(f.value());
  p->tok = Tokenizer::from_gguf(*p->file);
  return p;
}

// A tiny SentencePiece vocab: <unk> <s> </s>, all 256 byte tokens, then scored pieces.
GgufBuilder spm_vocab(const std::vector<std::pair<std::string, float>>& pieces) {
  std::vector<std::string> toks = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    toks.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  for (const auto& [t, s] : pieces) {
    toks.push_back(t);
    scores.push_back(s);
    types.push_back(1);
  }
  GgufBuilder b;
  b.str("tokenizer.ggml.model", "llama").strs("tokenizer.ggml.tokens", toks).f32s("tokenizer.ggml.scores", scores)
      .i32s("tokenizer.ggml.token_type", types);
  return b;
}

void expect_error(const GgufBuilder& b, ErrorCode code, const std::string& needle) {
  auto p = parse(b);
  ASSERT_NE(p->file, nullptr);
  ASSERT_FALSE(p->tok.is_ok()) << "expected an error mentioning " << needle;
  EXPECT_EQ(p->tok.status().code(), code) << p->tok.status().message();
  EXPECT_NE(p->tok.status().message().find(needle), std::string::npos) << p->tok.status().message();
  EXPECT_NE(p->tok.status().message().find("test.gguf"), std::string::npos) << p->tok.status().message();
}

TEST(Load, MissingOrInconsistentMetadata) {
  expect_error(GgufBuilder().str("general.name", "x"), ErrorCode::kNotFound, "tokenizer.ggml.model");
  expect_error(GgufBuilder().u32("tokenizer.ggml.model", 1), ErrorCode::kCorrupt, "tokenizer.ggml.model");
  expect_error(GgufBuilder().str("tokenizer.ggml.model", "t5").strs("tokenizer.ggml.tokens", {"a"}),
               ErrorCode::kUnsupported, "t5");
  expect_error(GgufBuilder().str("tokenizer.ggml.model", "llama"), ErrorCode::kNotFound, "tokenizer.ggml.tokens");
  expect_error(GgufBuilder().str("tokenizer.ggml.model", "llama").strs("tokenizer.ggml.tokens", {}),
               ErrorCode::kCorrupt, "empty");
  expect_error(GgufBuilder()
                   .str("tokenizer.ggml.model", "llama")
                   .strs("tokenizer.ggml.tokens", {"a", "b", "c"})
                   .f32s("tokenizer.ggml.scores", {0.f, 1.f}),
               ErrorCode::kCorrupt, "2 scores for 3 tokens");
  expect_error(GgufBuilder()
                   .str("tokenizer.ggml.model", "llama")
                   .strs("tokenizer.ggml.tokens", {"a", "b", "c"})
                   .i32s("tokenizer.ggml.token_type", {1}),
               ErrorCode::kCorrupt, "1 token types for 3 tokens");
  expect_error(GgufBuilder().str("tokenizer.ggml.model", "llama").strs("tokenizer.ggml.tokens", {"a", "b", "a"}),
               ErrorCode::kCorrupt, "duplicate token text 'a'");
  expect_error(GgufBuilder().str("tokenizer.ggml.model", "gpt2").strs("tokenizer.ggml.tokens", {"a", "b"}),
               ErrorCode::kNotFound, "tokenizer.ggml.merges");
  expect_error(GgufBuilder()
                   .str("tokenizer.ggml.model", "gpt2")
                   .str("tokenizer.ggml.pre", "no-such-pre")
                   .strs("tokenizer.ggml.tokens", {"a", "b"})
                   .strs("tokenizer.ggml.merges", {"a b"}),
               ErrorCode::kUnsupported, "no-such-pre");
  expect_error(GgufBuilder()
                   .str("tokenizer.ggml.model", "gpt2")
                   .str("tokenizer.ggml.pre", "gpt-2")
                   .strs("tokenizer.ggml.tokens", {"a", "b"})
                   .strs("tokenizer.ggml.merges", {"a b"})
                   .boolean("tokenizer.ggml.add_bos_token", true),
               ErrorCode::kCorrupt, "add_bos_token");
  expect_error(spm_vocab({}).u32("tokenizer.ggml.add_bos_token", 1), ErrorCode::kCorrupt, "expected a bool");
}

TEST(Load, BadSpecialIdKeepsDefaultWithWarning) {
  auto p = parse(spm_vocab({{"\xE2\x96\x81" "a", -1.f}}).u32("tokenizer.ggml.eos_token_id", 99999));
  ASSERT_TRUE(p->tok.is_ok()) << p->tok.status().message();
  EXPECT_EQ(p->tok.value()->eos_id(), 2);
  ASSERT_FALSE(p->tok.value()->warnings().empty());
  EXPECT_NE(p->tok.value()->warnings()[0].find("eos_token_id"), std::string::npos);
}

TEST(Load, SpmMergesByScoreLeftmostFirst) {
  const std::string sp = "\xE2\x96\x81";
  // "▁ab" can form via "▁a"+"b" or "▁"+"ab"; the higher-scored bigram merges first
  auto p = parse(spm_vocab({{sp, -5.f}, {"a", -5.f}, {"b", -5.f}, {sp + "a", -1.f}, {"ab", -2.f}, {sp + "ab", -3.f}}));
  ASSERT_TRUE(p->tok.is_ok()) << p->tok.status().message();
  const Tokenizer& t = *p->tok.value();
  EXPECT_EQ(t.encode("ab", false, false), (std::vector<int32_t>{t.find_token(sp + "ab")}));
  EXPECT_EQ(t.encode("ab", true, false), (std::vector<int32_t>{1, t.find_token(sp + "ab")}));
  // "▁ba": neither "▁b" nor "ba" is a piece; unknown characters fall back to bytes
  EXPECT_EQ(t.encode("ba", false, false),
            (std::vector<int32_t>{t.find_token(sp), t.find_token("b"), t.find_token("a")}));
  EXPECT_EQ(t.encode("z", false, false), (std::vector<int32_t>{t.find_token(sp), t.find_token("<0x7A>")}));
  EXPECT_EQ(t.decode(t.encode("z ab", false, false)), "z ab");
}

TEST(Load, BpeMergesByRank) {
  // byte-level BPE with merges "a b" (rank 0), "b c" (rank 1), "ab c" (rank 2)
  auto p = parse(GgufBuilder()
                     .str("tokenizer.ggml.model", "gpt2")
                     .str("tokenizer.ggml.pre", "gpt-2")
                     .strs("tokenizer.ggml.tokens", {"a", "b", "c", "ab", "bc", "abc", "\xC4\xA0"})
                     .strs("tokenizer.ggml.merges", {"a b", "b c", "ab c"}));
  ASSERT_TRUE(p->tok.is_ok()) << p->tok.status().message();
  const Tokenizer& t = *p->tok.value();
  EXPECT_EQ(t.encode("abc", false, false), (std::vector<int32_t>{5}));
  EXPECT_EQ(t.encode("bca", false, false), (std::vector<int32_t>{4, 0}));
  EXPECT_EQ(t.encode("abc abc", false, false), (std::vector<int32_t>{5, 6, 5}));  // " " is "Ġ", no merge
  EXPECT_EQ(t.decode(t.encode("abc abc", false, false)), "abc abc");
  EXPECT_EQ(t.encode("abd", false, false), (std::vector<int32_t>{3}));  // "d" has no token: dropped
}

}  // namespace
}  // namespace tachyon::tok::testing
