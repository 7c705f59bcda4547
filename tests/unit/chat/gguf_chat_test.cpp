// read_gguf_chat_info on GGUF files built in memory.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "gguf/gguf.h"

namespace tachyon::chat {
namespace {

// A minimal GGUF v3 writer for metadata-only files.
class GgufBuilder {
 public:
  void string_kv(const std::string& key, const std::string& value) {
    kv_header(key, 8);
    str(value);
    ++n_kv_;
  }
  void u32_kv(const std::string& key, uint32_t value) {
    kv_header(key, 4);
    pod(value);
    ++n_kv_;
  }
  void f32_kv(const std::string& key, float value) {
    kv_header(key, 6);
    pod(value);
    ++n_kv_;
  }
  void string_array_kv(const std::string& key, const std::vector<std::string>& values) {
    kv_header(key, 9);
    pod(uint32_t{8});
    pod(static_cast<uint64_t>(values.size()));
    for (const auto& v : values) str(v);
    ++n_kv_;
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out;
    auto put = [&](const void* p, size_t n) {
      const auto* b = static_cast<const uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    };
    const uint32_t magic = 0x46554747, version = 3;
    const uint64_t n_tensors = 0;
    put(&magic, 4);
    put(&version, 4);
    put(&n_tensors, 8);
    put(&n_kv_, 8);
    out.insert(out.end(), body_.begin(), body_.end());
    while (out.size() % 32) out.push_back(0);
    return out;
  }

 private:
  template <class T>
  void pod(T v) {
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    body_.insert(body_.end(), b, b + sizeof(T));
  }
  void str(const std::string& s) {
    pod(static_cast<uint64_t>(s.size()));
    body_.insert(body_.end(), s.begin(), s.end());
  }
  void kv_header(const std::string& key, uint32_t type) {
    str(key);
    pod(type);
  }
  std::vector<uint8_t> body_;
  uint64_t n_kv_ = 0;
};

Result<GgufChatInfo> info_of(const GgufBuilder& b) {
  auto bytes = b.bytes();
  auto file = gguf::File::parse(bytes.data(), bytes.size(), "test.gguf");
  if (!file) return file.status();
  return read_gguf_chat_info(*file.value());
}

TEST(ChatGguf, ReadsTemplateAndSpecialTokens) {
  GgufBuilder b;
  b.string_kv("tokenizer.chat_template", "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}");
  b.string_array_kv("tokenizer.ggml.tokens", {"<unk>", "<|begin|>", "<|end|>", "hi"});
  b.u32_kv("tokenizer.ggml.bos_token_id", 1);
  b.u32_kv("tokenizer.ggml.eos_token_id", 2);
  auto info = info_of(b);
  ASSERT_TRUE(info.is_ok()) << info.status().message();
  EXPECT_TRUE(info->has_template);
  EXPECT_EQ(info->bos_token, "<|begin|>");
  EXPECT_EQ(info->eos_token, "<|end|>");
  // and it renders with them
  auto t = ChatTemplate::parse(info->chat_template);
  ASSERT_TRUE(t.is_ok());
  RenderOptions opts;
  opts.bos_token = info->bos_token;
  opts.eos_token = info->eos_token;
  auto out = t->render(nlohmann::json::parse(R"([{"role": "user", "content": "x"}])"), nullptr, opts);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(*out, "<|begin|>x<|end|>");
}

TEST(ChatGguf, MissingTemplateFallsBackToChatML) {
  GgufBuilder b;
  b.string_array_kv("tokenizer.ggml.tokens", {"a", "b"});
  auto info = info_of(b);
  ASSERT_TRUE(info.is_ok()) << info.status().message();
  EXPECT_FALSE(info->has_template);
  EXPECT_EQ(info->chat_template, default_template());
  EXPECT_EQ(info->bos_token, "");
  EXPECT_EQ(info->eos_token, "");
}

TEST(ChatGguf, MalformedKeysAreCorrupt) {
  {
    GgufBuilder b;
    b.string_array_kv("tokenizer.ggml.tokens", {"a", "b"});
    b.u32_kv("tokenizer.ggml.bos_token_id", 7);
    auto info = info_of(b);
    ASSERT_FALSE(info.is_ok());
    EXPECT_EQ(info.status().code(), ErrorCode::kCorrupt);
    EXPECT_NE(info.status().message().find("out of range"), std::string::npos) << info.status().message();
  }
  {
    GgufBuilder b;
    b.f32_kv("tokenizer.chat_template", 1.0f);
    auto info = info_of(b);
    ASSERT_FALSE(info.is_ok());
    EXPECT_EQ(info.status().code(), ErrorCode::kCorrupt);
  }
  {
    GgufBuilder b;  // an eos id without a vocabulary
    b.u32_kv("tokenizer.ggml.eos_token_id", 0);
    auto info = info_of(b);
    ASSERT_FALSE(info.is_ok());
    EXPECT_EQ(info.status().code(), ErrorCode::kCorrupt);
  }
}

}  // namespace
}  // namespace tachyon::chat
