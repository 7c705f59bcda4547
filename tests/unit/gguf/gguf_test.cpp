#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include "gguf/gguf.h"

using namespace tachyon;

namespace {

const std::string kData = TACHYON_SHARED_DATA;

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Little-endian GGUF builder for hand-made test files.
struct Builder {
  std::vector<uint8_t> b;
  template <class T>
  void put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void header(uint64_t n_tensors, uint64_t n_kv) {
    put<uint32_t>(0x46554747);
    put<uint32_t>(3);
    put<uint64_t>(n_tensors);
    put<uint64_t>(n_kv);
  }
  void pad(size_t align) {
    while (b.size() % align) b.push_back(0);
  }
};

Result<std::unique_ptr<gguf::File>> parse(const std::vector<uint8_t>& b) {
  return gguf::File::parse(b.data(), b.size(), "test.gguf");
}

}  // namespace

TEST(Gguf, OpensEverySharedModel) {
  for (const char* name : {"mini-llama-Q4_0", "mini-llama-Q4_K_M", "mini-llama-Q5_K_M", "mini-llama-Q6_K", "mini-llama-Q8_0",
                           "mini-llama-F16", "mini-llama-BF16", "mini-qwen2-F16", "mini-qwen3-Q4_0", "llama-spm32k-F16"}) {
    auto f = gguf::File::open(kData + "/models/" + name + ".gguf");
    ASSERT_TRUE(f.is_ok()) << name << ": " << f.status().message();
    EXPECT_EQ(f.value()->version(), 3u);
    EXPECT_GT(f.value()->tensors().size(), 10u);
    const auto* emb = f.value()->tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->n_dims, 2u);
    EXPECT_TRUE(f.value()->get_string("general.architecture").has_value());
    const auto* toks = f.value()->get_array("tokenizer.ggml.tokens");
    ASSERT_NE(toks, nullptr);
    EXPECT_EQ(toks->arr_strings.size(), toks->arr_count);
    EXPECT_EQ(toks->arr_strings[1], "<s>");
  }
}

TEST(Gguf, TypedGettersAndArrays) {
  auto f = gguf::File::open(kData + "/models/mini-qwen3-Q4_0.gguf");
  ASSERT_TRUE(f.is_ok());
  const auto& g = *f.value();
  EXPECT_EQ(g.get_uint("qwen3.embedding_length").value(), 256u);
  EXPECT_EQ(g.get_int("qwen3.attention.head_count").value(), 8);
  EXPECT_NEAR(g.get_float("qwen3.rope.freq_base").value(), 1e6, 1e-3);
  EXPECT_EQ(g.get_bool("tokenizer.ggml.add_bos_token").value(), true);
  EXPECT_FALSE(g.get_string("qwen3.embedding_length").has_value());  // wrong kind -> nullopt
  EXPECT_FALSE(g.get_uint("no.such.key").has_value());
  const auto* scores = g.get_array("tokenizer.ggml.scores");
  ASSERT_NE(scores, nullptr);
  EXPECT_EQ(scores->arr_type, gguf::ValueType::FLOAT32);
  const auto* types = g.get_array("tokenizer.ggml.token_type");
  ASSERT_NE(types, nullptr);
  EXPECT_EQ(types->arr_at<int32_t>(1), 3);  // <s> is a control token
  // Tensor views point inside the mapping and are aligned.
  for (const auto& t : g.tensors()) {
    EXPECT_EQ((t.data - reinterpret_cast<const uint8_t*>(g.tensors()[0].data)) % g.alignment(), 0) << t.name;
  }
}

TEST(Gguf, EveryValueTypeParses) {
  Builder b;
  b.header(1, 14);
  b.str("k.u8"); b.put<uint32_t>(0); b.put<uint8_t>(200);
  b.str("k.i8"); b.put<uint32_t>(1); b.put<int8_t>(-5);
  b.str("k.u16"); b.put<uint32_t>(2); b.put<uint16_t>(60000);
  b.str("k.i16"); b.put<uint32_t>(3); b.put<int16_t>(-30000);
  b.str("k.u32"); b.put<uint32_t>(4); b.put<uint32_t>(4000000000u);
  b.str("k.i32"); b.put<uint32_t>(5); b.put<int32_t>(-2000000000);
  b.str("k.f32"); b.put<uint32_t>(6); b.put<float>(1.5f);
  b.str("k.bool"); b.put<uint32_t>(7); b.put<uint8_t>(1);
  b.str("k.str"); b.put<uint32_t>(8); b.str("héllo");
  b.str("k.arr"); b.put<uint32_t>(9); b.put<uint32_t>(5); b.put<uint64_t>(3); b.put<int32_t>(1); b.put<int32_t>(-2); b.put<int32_t>(3);
  b.str("k.u64"); b.put<uint32_t>(10); b.put<uint64_t>(1ull << 40);
  b.str("k.i64"); b.put<uint32_t>(11); b.put<int64_t>(-(1ll << 40));
  b.str("k.f64"); b.put<uint32_t>(12); b.put<double>(2.25);
  b.str("k.nested"); b.put<uint32_t>(9); b.put<uint32_t>(9); b.put<uint64_t>(2);
  b.put<uint32_t>(8); b.put<uint64_t>(1); b.str("a");
  b.put<uint32_t>(8); b.put<uint64_t>(2); b.str("b"); b.str("c");
  b.str("t0"); b.put<uint32_t>(2); b.put<int64_t>(32); b.put<int64_t>(2); b.put<uint32_t>(0); b.put<uint64_t>(0);
  b.pad(32);
  for (int i = 0; i < 64; ++i) b.put<float>(static_cast<float>(i));
  auto f = parse(b.b);
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  const auto& g = *f.value();
  EXPECT_EQ(g.get_uint("k.u8").value(), 200u);
  EXPECT_EQ(g.get_int("k.i8").value(), -5);
  EXPECT_EQ(g.get_uint("k.u16").value(), 60000u);
  EXPECT_EQ(g.get_int("k.i16").value(), -30000);
  EXPECT_EQ(g.get_uint("k.u32").value(), 4000000000u);
  EXPECT_EQ(g.get_int("k.i32").value(), -2000000000);
  EXPECT_FLOAT_EQ(static_cast<float>(g.get_float("k.f32").value()), 1.5f);
  EXPECT_TRUE(g.get_bool("k.bool").value());
  EXPECT_EQ(g.get_string("k.str").value(), "héllo");
  EXPECT_EQ(g.get_array("k.arr")->arr_at<int>(1), -2);
  EXPECT_EQ(g.get_uint("k.u64").value(), 1ull << 40);
  EXPECT_EQ(g.get_int("k.i64").value(), -(1ll << 40));
  EXPECT_DOUBLE_EQ(g.get_float("k.f64").value(), 2.25);
  EXPECT_FALSE(g.get_uint("k.i8").has_value());  // negative does not fit unsigned
  const auto* nested = g.get_array("k.nested");
  ASSERT_EQ(nested->arr_values.size(), 2u);
  EXPECT_EQ(nested->arr_values[1].arr_strings[1], "c");
  const auto* t = g.tensor("t0");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->n_bytes, 256u);
  float v;
  std::memcpy(&v, t->data + 4 * 63, 4);
  EXPECT_EQ(v, 63.f);
}

namespace {
std::string error_of(const std::vector<uint8_t>& b) {
  auto f = parse(b);
  return f.is_ok() ? "" : f.status().message();
}
}  // namespace

TEST(Gguf, ClearErrorsForBadFiles) {
  EXPECT_NE(error_of({}).find("too small"), std::string::npos);
  EXPECT_NE(error_of({'G', 'G', 'U', 'X', 3, 0, 0, 0}).find("bad magic"), std::string::npos);
  {
    Builder b;
    b.put<uint32_t>(0x46554747);
    b.put<uint32_t>(7);
    EXPECT_NE(error_of(b.b).find("unsupported GGUF version 7"), std::string::npos);
  }
  {
    Builder b;
    b.header(0, 1000000000000ull);
    EXPECT_NE(error_of(b.b).find("metadata count"), std::string::npos);
  }
  {
    Builder b;
    b.header(0, 1);
    b.str("key");
    b.put<uint32_t>(8);
    b.put<uint64_t>(1ull << 60);  // string length far past the end
    const std::string e = error_of(b.b);
    EXPECT_NE(e.find("test.gguf: key 'key'"), std::string::npos) << e;
    EXPECT_NE(e.find("exceeds the file"), std::string::npos) << e;
  }
  {
    Builder b;
    b.header(0, 1);
    b.str("key");
    b.put<uint32_t>(77);
    EXPECT_NE(error_of(b.b).find("invalid value type 77"), std::string::npos);
  }
  {
    Builder b;
    b.header(0, 2);
    b.str("a"); b.put<uint32_t>(4); b.put<uint32_t>(1);
    b.str("a"); b.put<uint32_t>(4); b.put<uint32_t>(1);
    EXPECT_NE(error_of(b.b).find("duplicate key"), std::string::npos);
  }
  {  // row length not a multiple of the block size
    Builder b;
    b.header(1, 0);
    b.str("w"); b.put<uint32_t>(2); b.put<int64_t>(33); b.put<int64_t>(1); b.put<uint32_t>(2); b.put<uint64_t>(0);
    b.pad(32);
    b.b.resize(b.b.size() + 64);
    const std::string e = error_of(b.b);
    EXPECT_NE(e.find("tensor 'w'"), std::string::npos) << e;
    EXPECT_NE(e.find("not a multiple of Q4_0's block size 32"), std::string::npos) << e;
  }
  {  // tensor data past the end
    Builder b;
    b.header(1, 0);
    b.str("w"); b.put<uint32_t>(2); b.put<int64_t>(64); b.put<int64_t>(64); b.put<uint32_t>(0); b.put<uint64_t>(0);
    b.pad(32);
    b.b.resize(b.b.size() + 100);
    const std::string e = error_of(b.b);
    EXPECT_NE(e.find("extends past the end"), std::string::npos) << e;
  }
  {  // unaligned offset, unknown type, too many dims, negative dim, overlap
    Builder b;
    b.header(1, 0);
    b.str("w"); b.put<uint32_t>(1); b.put<int64_t>(4); b.put<uint32_t>(0); b.put<uint64_t>(3);
    EXPECT_NE(error_of(b.b).find("not aligned"), std::string::npos);
    Builder c;
    c.header(1, 0);
    c.str("w"); c.put<uint32_t>(1); c.put<int64_t>(4); c.put<uint32_t>(99); c.put<uint64_t>(0);
    EXPECT_NE(error_of(c.b).find("unknown tensor type 99"), std::string::npos);
    Builder d;
    d.header(1, 0);
    d.str("w"); d.put<uint32_t>(5);
    d.b.resize(d.b.size() + 256);
    EXPECT_NE(error_of(d.b).find("5 dimensions"), std::string::npos);
    Builder e;
    e.header(1, 0);
    e.str("w"); e.put<uint32_t>(1); e.put<int64_t>(-4);
    e.b.resize(e.b.size() + 256);
    EXPECT_NE(error_of(e.b).find("negative dimension"), std::string::npos);
    Builder o;
    o.header(2, 0);
    o.str("a"); o.put<uint32_t>(1); o.put<int64_t>(16); o.put<uint32_t>(0); o.put<uint64_t>(0);
    o.str("b"); o.put<uint32_t>(1); o.put<int64_t>(16); o.put<uint32_t>(0); o.put<uint64_t>(32);
    o.pad(32);
    o.b.resize(o.b.size() + 128);
    EXPECT_NE(error_of(o.b).find("overlaps"), std::string::npos);
  }
  {  // element count overflow
    Builder b;
    b.header(1, 0);
    b.str("w"); b.put<uint32_t>(4);
    for (int i = 0; i < 4; ++i) b.put<int64_t>(1ll << 40);
    b.put<uint32_t>(0); b.put<uint64_t>(0);
    EXPECT_NE(error_of(b.b).find("overflows"), std::string::npos);
  }
  {  // missing file
    auto f = gguf::File::open("/nonexistent/model.gguf");
    ASSERT_FALSE(f.is_ok());
    EXPECT_NE(f.status().message().find("/nonexistent/model.gguf"), std::string::npos);
  }
}

// Every truncation of a real file is rejected (or, past the header, still fully
// validated); no crash, no out-of-bounds read (run under ASan in CI).
TEST(Gguf, TruncatedFilesAreRejected) {
  const auto bytes = read_all(kData + "/models/mini-qwen3-Q4_0.gguf");
  ASSERT_GT(bytes.size(), 100000u);
  auto full = parse(bytes);
  ASSERT_TRUE(full.is_ok());
  const size_t data_off = full.value()->data_offset();
  int rejected = 0;
  for (size_t len = 0; len < bytes.size(); len += (len < data_off ? 61 : 49999)) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + len);
    auto f = parse(cut);
    EXPECT_FALSE(f.is_ok()) << "accepted a file truncated to " << len << " bytes";
    if (!f.is_ok()) {
      ++rejected;
      EXPECT_EQ(f.status().message().rfind("test.gguf: ", 0), 0u);
      EXPECT_EQ(f.status().message().find('\n'), std::string::npos);
    }
  }
  EXPECT_GT(rejected, 1000);
}

// Flipping bytes of the header, metadata and tensor table never crashes the parser.
TEST(Gguf, CorruptedBytesNeverCrash) {
  const auto bytes = read_all(kData + "/models/mini-llama-Q4_0.gguf");
  auto full = parse(bytes);
  ASSERT_TRUE(full.is_ok());
  const size_t data_off = full.value()->data_offset();
  std::mt19937 rng(1234);
  std::vector<uint8_t> copy = bytes;
  int errors = 0, accepted = 0;
  auto trial = [&](size_t pos, uint8_t val) {
    const uint8_t old = copy[pos];
    copy[pos] = val;
    auto f = parse(copy);
    if (f.is_ok()) {
      ++accepted;  // e.g. a changed character inside a token string
      for (const auto& t : f.value()->tensors()) ASSERT_LE(t.data + t.n_bytes, copy.data() + copy.size());
    } else {
      ++errors;
    }
    copy[pos] = old;
  };
  for (size_t pos = 0; pos < 512; ++pos) {
    trial(pos, static_cast<uint8_t>(copy[pos] ^ 0xFF));
    trial(pos, 0x7F);
  }
  std::uniform_int_distribution<size_t> any(0, data_off - 1);
  for (int i = 0; i < 3000; ++i) trial(any(rng), static_cast<uint8_t>(rng()));
  // the tensor table sits just before the data section
  for (size_t pos = data_off > 3000 ? data_off - 3000 : 0; pos < data_off; pos += 3) trial(pos, static_cast<uint8_t>(rng()));
  EXPECT_GT(errors, 500);
  std::printf("corruption trials: %d rejected, %d accepted\n", errors, accepted);
}
