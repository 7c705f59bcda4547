// Penalties change exactly the expected logits: checked through the argmax flip on a
// small vocab and through the logprobs, which are the log-softmax of the penalized logits.
#include <gtest/gtest.h>

#include "test_util.h"

namespace tachyon::sampling::testing {
namespace {

SamplingParams greedy_with(float rep, float presence, float freq, int last_n = 64) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.repetition_penalty = rep;
  p.presence_penalty = presence;
  p.frequency_penalty = freq;
  p.penalty_last_n = last_n;
  return p;
}

// Samples greedily with all logprobs and checks them against `expected` logits.
int32_t check(Sampler& s, const std::vector<float>& logits, const std::vector<float>& expected) {
  const int n = static_cast<int>(logits.size());
  auto r = s.sample(logits.data(), n, n);
  auto ref = log_softmax(expected);
  EXPECT_EQ(r.top.size(), logits.size());
  for (auto& t : r.top) EXPECT_NEAR(t.logprob, ref[t.id], 1e-5) << "token " << t.id;
  EXPECT_EQ(r.token, argmax(expected));
  return r.token;
}

TEST(Penalties, RepetitionDividesPositiveLogits) {
  std::vector<float> logits = {2.0f, 1.9f, -1.0f, 0.0f};
  Sampler s(greedy_with(1.1f, 0, 0));
  EXPECT_EQ(check(s, logits, logits), 0);
  s.accept(0);
  EXPECT_EQ(check(s, logits, {2.0f / 1.1f, 1.9f, -1.0f, 0.0f}), 1);  // flipped
}

TEST(Penalties, RepetitionMultipliesNegativeLogits) {
  std::vector<float> logits = {-1.0f, -1.05f, -3.0f};
  Sampler s(greedy_with(1.1f, 0, 0));
  s.accept(0);
  s.accept(0);  // the count does not matter for repetition_penalty
  s.accept(2);
  EXPECT_EQ(check(s, logits, {-1.1f, -1.05f, -3.3f}), 1);
}

TEST(Penalties, RepetitionBelowOneBoosts) {
  std::vector<float> logits = {1.0f, 1.2f};
  Sampler s(greedy_with(0.8f, 0, 0));
  s.accept(0);
  EXPECT_EQ(check(s, logits, {1.25f, 1.2f}), 0);
}

TEST(Penalties, PresenceSubtractsOnce) {
  std::vector<float> logits = {1.0f, 0.8f, 0.0f};
  Sampler s(greedy_with(1.0f, 0.3f, 0));
  for (int i = 0; i < 3; ++i) s.accept(0);
  EXPECT_EQ(check(s, logits, {0.7f, 0.8f, 0.0f}), 1);
}

TEST(Penalties, FrequencyScalesWithCount) {
  std::vector<float> logits = {1.0f, 0.5f};
  Sampler s(greedy_with(1.0f, 0, 0.2f));
  s.accept(0);
  s.accept(0);
  EXPECT_EQ(check(s, logits, {0.6f, 0.5f}), 0);
  s.accept(0);
  EXPECT_EQ(check(s, logits, {0.4f, 0.5f}), 1);
}

TEST(Penalties, NegativeOpenAIPenaltiesEncourage) {
  std::vector<float> logits = {0.0f, 1.0f};
  Sampler s(greedy_with(1.0f, -0.5f, -0.4f));
  s.accept(0);
  s.accept(0);
  EXPECT_EQ(check(s, logits, {1.3f, 1.0f}), 0);
}

TEST(Penalties, AllCombinedInLlamaCppOrder) {
  // repetition first, then frequency * count + presence
  std::vector<float> logits = {3.0f, -2.0f, 1.0f, 2.5f};
  Sampler s(greedy_with(1.5f, 0.25f, 0.5f));
  s.accept(0);
  s.accept(1);
  s.accept(0);
  EXPECT_EQ(check(s, logits, {3.0f / 1.5f - 2 * 0.5f - 0.25f, -2.0f * 1.5f - 0.5f - 0.25f, 1.0f, 2.5f}),
            3);
}

TEST(Penalties, WindowForgetsOldTokens) {
  std::vector<float> logits = {1.0f, 0.9f, 0.0f, 0.0f};
  Sampler s(greedy_with(2.0f, 0, 0, /*last_n=*/2));
  s.accept(0);
  EXPECT_EQ(check(s, logits, {0.5f, 0.9f, 0.0f, 0.0f}), 1);
  s.accept(2);  // window {0, 2}
  EXPECT_EQ(check(s, logits, {0.5f, 0.9f, 0.0f, 0.0f}), 1);
  s.accept(3);  // window {2, 3}: 0 left
  EXPECT_EQ(check(s, logits, logits), 0);
  s.accept(0);
  s.accept(0);  // window {0, 0}
  EXPECT_EQ(check(s, logits, {0.5f, 0.9f, 0.0f, 0.0f}), 1);
}

TEST(Penalties, WindowCountsForFrequency) {
  std::vector<float> logits = {1.0f, 0.0f};
  Sampler s(greedy_with(1.0f, 0, 0.1f, /*last_n=*/3));
  for (int i = 0; i < 10; ++i) s.accept(0);  // only 3 count
  check(s, logits, {0.7f, 0.0f});
}

TEST(Penalties, WholeHistoryAndDisabled) {
  std::vector<float> logits = {1.0f, 0.0f};
  Sampler all(greedy_with(1.0f, 0, 0.01f, /*last_n=*/-1));
  for (int i = 0; i < 500; ++i) all.accept(0);
  check(all, logits, {-4.0f, 0.0f});

  Sampler none(greedy_with(1.0f, 0, 0.01f, /*last_n=*/0));
  for (int i = 0; i < 500; ++i) none.accept(0);
  check(none, logits, logits);
}

TEST(Penalties, ResetClearsHistory) {
  std::vector<float> logits = {1.0f, 0.9f};
  Sampler s(greedy_with(2.0f, 0, 0));
  s.accept(0);
  EXPECT_EQ(s.sample(logits.data(), 2).token, 1);
  s.reset();
  EXPECT_EQ(s.sample(logits.data(), 2).token, 0);
}

TEST(Penalties, OutOfVocabHistoryIgnored) {
  std::vector<float> logits = {1.0f, 0.9f};
  Sampler s(greedy_with(2.0f, 0.5f, 0.5f));
  s.accept(5);
  s.accept(-1);
  check(s, logits, logits);
}

TEST(Penalties, ApplyBeforeTruncation) {
  // top_k = 1 after penalties: the penalized former argmax is never drawn
  std::vector<float> logits = {2.0f, 1.9f, 0.0f};
  SamplingParams p;
  p.top_k = 1;
  p.repetition_penalty = 1.1f;
  p.seed = 3;
  Sampler s(p);
  s.accept(0);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s.sample(logits.data(), 3).token, 1);
}

}  // namespace
}  // namespace tachyon::sampling::testing
