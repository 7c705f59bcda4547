// The constraint stage: sample() with an allowed-token bitset behaves exactly as sample()
// with every disallowed token banned (same tokens, logprobs, random stream).
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.h"

namespace tachyon::sampling::testing {
namespace {

std::vector<uint32_t> mask_of(int n, uint64_t seed, int keep_one_in) {
  std::vector<uint32_t> w((n + 31) / 32, 0);
  uint64_t s = seed;
  for (int i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    if ((s >> 33) % keep_one_in == 0) w[i >> 5] |= 1u << (i & 31);
  }
  return w;
}

void expect_same_as_banned(SamplingParams p, int n, int keep_one_in, int top) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const auto logits = random_logits(n, seed);
    const auto mask = mask_of(n, seed * 7, keep_one_in);
    SamplingParams pb = p;
    for (int i = 0; i < n; ++i)
      if (!(mask[i >> 5] >> (i & 31) & 1u)) pb.banned_tokens.push_back(i);
    p.seed = pb.seed = seed;
    Sampler a(p), b(pb);
    for (int step = 0; step < 5; ++step) {
      const SampleResult ra = a.sample(logits.data(), n, top, mask.data());
      const SampleResult rb = b.sample(logits.data(), n, top);
      ASSERT_EQ(ra.token, rb.token) << "seed " << seed << " step " << step;
      EXPECT_TRUE(mask[ra.token >> 5] >> (ra.token & 31) & 1u);
      EXPECT_EQ(ra.logprob, rb.logprob);
      ASSERT_EQ(ra.top.size(), rb.top.size());
      for (size_t k = 0; k < ra.top.size(); ++k) EXPECT_EQ(ra.top[k].id, rb.top[k].id);
      a.accept(ra.token);
      b.accept(rb.token);
    }
  }
}

TEST(ConstraintMask, GreedyEqualsBanningTheRest) {
  SamplingParams p;
  p.temperature = 0;
  expect_same_as_banned(p, 1000, 5, 3);
}

TEST(ConstraintMask, SampledWithTruncationEqualsBanningTheRest) {
  SamplingParams p;
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.9f;
  p.min_p = 0.01f;
  p.repetition_penalty = 1.1f;
  expect_same_as_banned(p, 1003, 3, 5);  // not a multiple of 32: the last word is partial
}

TEST(ConstraintMask, OneAllowedTokenIsAlwaysChosen) {
  SamplingParams p;
  p.temperature = 1.0f;
  const int n = 100;
  std::vector<uint32_t> mask((n + 31) / 32, 0);
  mask[77 >> 5] |= 1u << (77 & 31);
  Sampler s(p);
  const auto logits = random_logits(n, 3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(logits.data(), n, 0, mask.data()).token, 77);
}

TEST(ConstraintMask, NothingFiniteAllowedGivesTheLowestAllowedId) {
  SamplingParams p;
  const int n = 64;
  std::vector<float> logits(n, -std::numeric_limits<float>::infinity());
  logits[3] = 1.0f;  // finite, but not allowed
  std::vector<uint32_t> mask(2, 0);
  mask[1] = 1u << 9;  // id 41
  Sampler s(p);
  const SampleResult r = s.sample(logits.data(), n, 0, mask.data());
  EXPECT_EQ(r.token, 41);
  EXPECT_TRUE(std::isinf(r.logprob));
}

}  // namespace
}  // namespace tachyon::sampling::testing

namespace tachyon::sampling::testing {
namespace {

// greedy_token is sample()'s greedy token, with and without a mask, through NaN, +-inf and
// ties; with penalties or bans it is sample()'s path itself.
TEST(GreedyToken, EqualsGreedySample) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    const int n = 997;
    auto logits = random_logits(n, seed);
    if (seed % 3 == 0) logits[seed * 7 % n] = std::numeric_limits<float>::quiet_NaN();
    if (seed % 4 == 0) logits[seed * 11 % n] = std::numeric_limits<float>::infinity();
    if (seed % 5 == 0) logits[seed * 13 % n] = logits[seed * 17 % n];  // a tie
    if (seed % 7 == 0)
      for (auto& l : logits) l = -std::numeric_limits<float>::infinity();
    const auto mask = mask_of(n, seed, 4);
    SamplingParams p;
    p.temperature = 0;
    if (seed % 6 == 0) p.repetition_penalty = 1.3f;
    if (seed % 8 == 0) p.banned_tokens = {1, 2, 3};
    Sampler a(p), b(p);
    for (int step = 0; step < 3; ++step) {
      const uint32_t* m = step == 1 ? mask.data() : nullptr;
      const int32_t ga = a.greedy_token(logits.data(), n, m);
      const int32_t sb = b.sample(logits.data(), n, 0, m).token;
      ASSERT_EQ(ga, sb) << "seed " << seed << " step " << step;
      a.accept(ga);
      b.accept(sb);
    }
  }
}

}  // namespace
}  // namespace tachyon::sampling::testing
