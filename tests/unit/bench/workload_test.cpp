#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "bench/workload.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::bench {
namespace {

TEST(Workload, SameSeedSamePrompts) {
  WorkloadConfig c;
  c.input_len = 32;
  c.seed = 7;
  auto a = Workload::create(c, nullptr), b = Workload::create(c, nullptr);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*a)->next().turns[0].user, (*b)->next().turns[0].user);
  WorkloadConfig c2 = c;
  c2.seed = 8;
  auto d = Workload::create(c2, nullptr), a2 = Workload::create(c, nullptr);
  EXPECT_NE((*d)->next().turns[0].user, (*a2)->next().turns[0].user);
}

TEST(Workload, WordApproximation) {
  WorkloadConfig c;
  c.input_len = 100;
  auto w = Workload::create(c, nullptr);
  const auto s = (*w)->next();
  const std::string& u = s.turns[0].user;
  EXPECT_EQ(std::count(u.begin(), u.end(), ' ') + 1, 100);  // kTokensPerWord = 1
  EXPECT_EQ(s.turns[0].prompt_tokens, 100);
  EXPECT_EQ(s.turns[0].max_tokens, 128);
}

TEST(Workload, LengthDistributions) {
  for (LenDist d : {LenDist::kUniform, LenDist::kNormal}) {
    WorkloadConfig c;
    c.input_len = 40;
    c.output_len = 200;
    c.len_dist = d;
    c.len_range = 0.5;
    auto w = Workload::create(c, nullptr);
    double sum = 0;
    int lo = 1 << 30, hi = 0;
    for (int i = 0; i < 400; ++i) {
      const int m = (*w)->next().turns[0].max_tokens;
      sum += m;
      lo = std::min(lo, m);
      hi = std::max(hi, m);
    }
    EXPECT_NEAR(sum / 400, 200, 12) << len_dist_name(d);
    EXPECT_GE(lo, 1);
    if (d == LenDist::kUniform) {
      EXPECT_GE(lo, 100);
      EXPECT_LE(hi, 300);
    }
    EXPECT_GT(hi - lo, 100) << "lengths vary";
  }
}

TEST(Workload, BadConfigs) {
  WorkloadConfig c;
  c.input_len = 0;
  EXPECT_FALSE(Workload::create(c, nullptr).is_ok());
  c = {};
  c.prefix_groups = 2;
  EXPECT_FALSE(Workload::create(c, nullptr).is_ok());  // no prefix length
  c = {};
  c.turns = 0;
  EXPECT_FALSE(Workload::create(c, nullptr).is_ok());
  EXPECT_FALSE(parse_len_dist("zipf").is_ok());
}

TEST(Workload, DatasetFormatsAndErrors) {
  const std::string path = "/tmp/tachyon_bench_ds_" + std::to_string(getpid()) + ".jsonl";
  {
    std::ofstream f(path);
    f << "{\"prompt\": \"hello world\", \"max_tokens\": 7}\n\n# comment\n"
      << "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"}, {\"role\": \"user\", \"content\": \"hi\"}]}\n"
      << "{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"a b c\"}]}\n";
  }
  WorkloadConfig c;
  c.dataset_path = path;
  c.output_len = 5;
  auto w = Workload::create(c, nullptr);
  ASSERT_TRUE(w.is_ok()) << w.status().message();
  EXPECT_EQ((*w)->n_dataset_entries(), 3u);
  EXPECT_EQ((*w)->natural_size(), 3);
  int seen = 0;
  for (int i = 0; i < 3; ++i) {
    const SessionSpec s = (*w)->next();
    const TurnSpec& t = s.turns[0];
    if (t.user == "hello world") {
      seen |= 1;
      EXPECT_EQ(t.max_tokens, 7);
    } else if (t.user == "hi") {
      seen |= 2;
      EXPECT_EQ(s.preset.size(), 1u);
      EXPECT_EQ(t.max_tokens, 5);
    } else if (t.user == "q") {
      seen |= 4;
      EXPECT_EQ(t.max_tokens, 3);  // the reply's length
    }
  }
  EXPECT_EQ(seen, 7);
  {
    std::ofstream f(path);
    f << "{\"prompt\": \"ok\"}\n{\"text\": 5}\n";
  }
  auto bad = Workload::create(c, nullptr);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find(path + ":2"), std::string::npos) << bad.status().message();
  std::filesystem::remove(path);
}

TEST(Workload, TokenizerSizesPromptsExactly) {
  const std::string model = std::string(TACHYON_SHARED_DATA) + "/models/llama-spm32k-F16.gguf";
  auto f = gguf::File::open(model);
  if (!f.is_ok()) GTEST_SKIP() << model << ": " << f.status().message();
  auto t = tok::Tokenizer::from_gguf(**f);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  PromptBuilder b(t->get());
  std::mt19937_64 rng(3);
  for (int n : {1, 17, 128, 1000}) {
    int got = 0;
    const std::string text = b.make(n, rng, &got);
    const int real = static_cast<int>((*t)->encode(text, false, false).size());
    EXPECT_EQ(got, real);
    EXPECT_NEAR(real, n, 1) << text.substr(0, 80);
  }
}

}  // namespace
}  // namespace tachyon::bench
