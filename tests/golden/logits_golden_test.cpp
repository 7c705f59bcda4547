// Fidelity against llama.cpp: teacher-forced logits of every model in
// ../shared/data/models compared with the recorded reference (see its README).
#include <gtest/gtest.h>

#include <filesystem>

#include "golden_util.h"

using namespace tachyon;
using namespace tachyon::golden;

namespace {

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(kData + "/models")) {
    const auto p = e.path();
    if (p.extension() == ".gguf" && std::filesystem::exists(kData + "/reference/" + p.stem().string() + ".ref.json"))
      names.push_back(p.stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Reference files the shared data holds for capabilities still open in the tracker
// (weight types: issue 18; gemma3/phi3: 19; qwen3moe: 23). Loading them must fail with a
// one-line "not supported" error, never a crash; the test is skipped with that line, and
// fails once a file loads, so that whoever adds the capability moves it to the checked
// set by deleting its entry here.
bool not_yet_supported(const std::string& name) {
  static const char* const kOpen[] = {
      "(none open)",
  };
  for (const char* k : kOpen)
    if (name.find(k) != std::string::npos) return true;
  return false;
}

class LogitsGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LogitsGolden, MatchesLlamaCpp) {
  const std::string name = GetParam();
  auto m = model::Model::load(kData + "/models/" + name + ".gguf");
  if (not_yet_supported(name)) {
    ASSERT_FALSE(m.is_ok()) << name << " loads now: remove it from not_yet_supported() so that it is checked";
    const std::string msg = m.status().message();
    EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    GTEST_SKIP() << msg;
  }
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto ref = load_json(kData + "/reference/" + name + ".ref.json");
  const Tolerance tol = tolerance_for(name);
  ThreadPool pool(2);
  Comparison c;
  for (const auto& cs : ref["cases"]) {
    std::vector<int32_t> toks = cs["prompt_tokens"].get<std::vector<int32_t>>();
    for (int t : cs["greedy_tokens"]) toks.push_back(t);
    const auto logits = teacher_forced_logits(*m.value(), toks, pool);
    ASSERT_EQ(logits.size(), toks.size() * m.value()->hparams().n_vocab);
    compare_case(cs["positions"], logits, m.value()->hparams().n_vocab, tol, &c);
  }
  std::printf("[golden] %-22s positions %4d  max|dlogit| top8 %.4f (tol %.2f, pos %d)  max|dlse| %.4f  top1 %d/%d (margin > %.2f)\n",
              name.c_str(), c.positions, c.worst_abs, tol.max_abs, c.worst_pos, c.worst_lse, c.top1_agree, c.top1_checked,
              tol.top1_margin);
  EXPECT_LE(c.worst_abs, tol.max_abs);
  EXPECT_EQ(c.top1_agree, c.top1_checked);
}

INSTANTIATE_TEST_SUITE_P(AllModels, LogitsGolden, ::testing::ValuesIn(model_names()),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

// Long context (3,659 tokens, evaluated in 512-token ubatches as llama.cpp did).
class LongGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(LongGolden, MatchesLlamaCppAtEveryPosition) {
  const std::string name = GetParam();
  auto m = model::Model::load(kData + "/models/" + name + ".gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto ref = load_json(kData + "/reference/" + name + ".long.ref.json");
  const Tolerance tol = tolerance_for(name);
  ThreadPool pool(2);
  Comparison c;
  const auto& cs = ref["cases"][0];
  std::vector<int32_t> toks = cs["prompt_tokens"].get<std::vector<int32_t>>();
  for (int t : cs["greedy_tokens"]) toks.push_back(t);
  const auto logits = teacher_forced_logits(*m.value(), toks, pool);
  ASSERT_FALSE(logits.empty());
  compare_case(cs["positions"], logits, m.value()->hparams().n_vocab, tol, &c);
  std::printf("[golden-long] %-18s positions %4d  max|dlogit| top8 %.4f (tol %.2f, pos %d)  max|dlse| %.4f  top1 %d/%d\n",
              name.c_str(), c.positions, c.worst_abs, tol.max_abs, c.worst_pos, c.worst_lse, c.top1_agree, c.top1_checked);
  EXPECT_LE(c.worst_abs, tol.max_abs);
  EXPECT_EQ(c.top1_agree, c.top1_checked);
}

// The optional Q8_0 KV cache: not llama.cpp's numerics, so its distance from the
// reference is measured and reported (README), with a bound that catches breakage: the
// cache rounds K and V to 8 bits, which moves logits by a few tenths at most on these
// files and keeps the confident top-1 choices.
TEST_P(LongGolden, Q8CacheStaysCloseToReference) {
  const std::string name = GetParam();
  auto m = model::Model::load(kData + "/models/" + name + ".gguf");
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto ref = load_json(kData + "/reference/" + name + ".long.ref.json");
  ThreadPool pool(2);
  Comparison c;
  const auto& cs = ref["cases"][0];
  std::vector<int32_t> toks = cs["prompt_tokens"].get<std::vector<int32_t>>();
  for (int t : cs["greedy_tokens"]) toks.push_back(t);
  const auto logits = teacher_forced_logits(*m.value(), toks, pool, 512, kv::KvType::kQ8_0);
  ASSERT_FALSE(logits.empty());
  Tolerance tol = tolerance_for(name);
  compare_case(cs["positions"], logits, m.value()->hparams().n_vocab, tol, &c);
  std::printf("[golden-long q8_0 KV] %-18s positions %4d  max|dlogit| top8 %.4f (pos %d)  max|dlse| %.4f  top1 %d/%d\n",
              name.c_str(), c.positions, c.worst_abs, c.worst_pos, c.worst_lse, c.top1_agree, c.top1_checked);
  EXPECT_LE(c.worst_abs, 1.0f);
  EXPECT_GE(c.top1_agree, c.top1_checked * 95 / 100);
}

INSTANTIATE_TEST_SUITE_P(LongModels, LongGolden, ::testing::Values("mini-llama-Q8_0", "mini-qwen3-F16", "mini-gemma3-F16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
