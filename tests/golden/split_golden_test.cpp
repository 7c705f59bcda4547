// A model split into 3 parts (gguf::Writer::write_split, llama-gguf-split's layout) gives
// bit-identical teacher-forced logits to the single file it was split from, and both
// still match llama.cpp's reference.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "golden_util.h"

using namespace tachyon;
using namespace tachyon::golden;
namespace fs = std::filesystem;

TEST(SplitGolden, ThreePartsGiveBitIdenticalLogits) {
  const std::string name = "mini-llama-Q8_0";
  const std::string src = kData + "/models/" + name + ".gguf";
  const fs::path dir = fs::temp_directory_path() / ("tachyon_split_golden_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path d;
    ~Cleanup() { fs::remove_all(d); }
  } cleanup{dir};

  std::vector<std::string> paths;
  {
    auto f = gguf::File::open(src);
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    gguf::Writer w(f.value()->alignment());
    ASSERT_TRUE(w.add_file(*f.value()).is_ok());
    gguf::SplitLimits limits;
    limits.max_tensors = static_cast<int>((f.value()->tensors().size() + 2) / 3);
    const Status st = w.write_split((dir / name).string(), limits, &paths);
    ASSERT_TRUE(st.is_ok()) << st.message();
  }
  ASSERT_EQ(paths.size(), 3u);

  auto single = model::Model::load(src);
  ASSERT_TRUE(single.is_ok()) << single.status().message();
  auto split = model::Model::load(paths[0]);
  ASSERT_TRUE(split.is_ok()) << split.status().message();
  EXPECT_EQ(split.value()->file().n_parts(), 3);
  const int nv = single.value()->hparams().n_vocab;
  ASSERT_EQ(split.value()->hparams().n_vocab, nv);

  const auto ref = load_json(kData + "/reference/" + name + ".ref.json");
  ASSERT_GE(ref["cases"].size(), 3u);
  const Tolerance tol = tolerance_for(name);
  ThreadPool pool(2);
  Comparison c;
  for (size_t k = 0; k < 3; ++k) {
    const auto& cs = ref["cases"][k];
    std::vector<int32_t> toks = cs["prompt_tokens"].get<std::vector<int32_t>>();
    for (int t : cs["greedy_tokens"]) toks.push_back(t);
    const auto a = teacher_forced_logits(*single.value(), toks, pool);
    const auto b = teacher_forced_logits(*split.value(), toks, pool);
    ASSERT_EQ(a.size(), toks.size() * nv);
    ASSERT_EQ(b.size(), a.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << "case " << k;
    compare_case(cs["positions"], b, nv, tol, &c);
  }
  EXPECT_LE(c.worst_abs, tol.max_abs);
  EXPECT_EQ(c.top1_agree, c.top1_checked);
}
