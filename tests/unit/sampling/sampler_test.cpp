// Sampler behaviour: greedy, seeding, distributions, truncation, edge-case logits.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "test_util.h"

namespace tachyon::sampling::testing {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

int sample_token(const SamplingParams& p, const std::vector<float>& logits) {
  Sampler s(p);
  return s.sample(logits.data(), static_cast<int>(logits.size())).token;
}

TEST(Greedy, PicksArgmax) {
  for (uint64_t seed = 0; seed < 50; ++seed) {
    auto logits = random_logits(1000, seed);
    EXPECT_EQ(sample_token(greedy_params(), logits), argmax(logits));
  }
}

TEST(Greedy, TiesGoToLowestId) {
  std::vector<float> logits = {0.5f, 2.0f, 1.0f, 2.0f, 2.0f};
  EXPECT_EQ(sample_token(greedy_params(), logits), 1);
  std::vector<float> equal(100, 3.0f);
  EXPECT_EQ(sample_token(greedy_params(), equal), 0);
}

TEST(Greedy, NegativeTemperatureIsGreedyAndIgnoresTruncation) {
  SamplingParams p = greedy_params();
  p.temperature = -1.0f;
  p.top_k = 5;
  p.top_p = 0.5f;
  p.min_p = 0.2f;
  auto logits = random_logits(500, 7);
  EXPECT_EQ(sample_token(p, logits), argmax(logits));
}

TEST(Greedy, IsIndependentOfSeed) {
  auto logits = random_logits(300, 3);
  for (uint64_t seed : {0ull, 1ull, 12345ull, ~0ull}) {
    SamplingParams p = greedy_params();
    p.seed = seed;
    Sampler s(p);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(logits.data(), 300).token, argmax(logits));
  }
}

std::vector<int32_t> draw_sequence(uint64_t seed, int n, const SamplingParams& base = {}) {
  SamplingParams p = base;
  p.seed = seed;
  Sampler s(p);
  auto logits = random_logits(1000, 99, 1.0f);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.sample(logits.data(), 1000).token);
  return out;
}

TEST(Seed, SameSeedSameSequence) {
  EXPECT_EQ(draw_sequence(42, 200), draw_sequence(42, 200));
  SamplingParams p;
  p.top_k = 50;
  p.top_p = 0.9f;
  p.min_p = 0.01f;
  p.temperature = 0.7f;
  EXPECT_EQ(draw_sequence(7, 200, p), draw_sequence(7, 200, p));
}

TEST(Seed, DifferentSeedDifferentSequence) {
  auto a = draw_sequence(1, 200);
  EXPECT_NE(a, draw_sequence(2, 200));
  EXPECT_NE(a, draw_sequence(0, 200));
  // and the sequence itself is not constant
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 50u);
}

TEST(Seed, KnownFirstDrawsArePinned) {
  // Pins the PRNG + float conversion + draw order: a change here breaks reproducibility
  // of seeded requests across versions.
  std::vector<float> logits(16, 0.0f);  // uniform
  SamplingParams p;
  p.seed = 1234;
  Sampler s(p);
  std::vector<int32_t> got;
  for (int i = 0; i < 8; ++i) got.push_back(s.sample(logits.data(), 16).token);
  std::vector<int32_t> again;
  s.reset();
  for (int i = 0; i < 8; ++i) again.push_back(s.sample(logits.data(), 16).token);
  EXPECT_EQ(got, again);
  // xoshiro256** seeded by splitmix64(1234): floor(16 * u), computed independently in Python
  EXPECT_EQ(got, (std::vector<int32_t>{0, 13, 11, 13, 1, 14, 7, 3}));
}

TEST(Seed, ResetRepeatsTheSequence) {
  SamplingParams p;
  p.seed = 5;
  p.repetition_penalty = 1.3f;
  Sampler s(p);
  auto logits = random_logits(200, 1, 1.0f);
  std::vector<int32_t> first, second;
  for (int i = 0; i < 50; ++i) {
    first.push_back(s.sample(logits.data(), 200).token);
    s.accept(first.back());
  }
  s.reset();
  for (int i = 0; i < 50; ++i) {
    second.push_back(s.sample(logits.data(), 200).token);
    s.accept(second.back());
  }
  EXPECT_EQ(first, second);
}

TEST(Distribution, TemperatureOneMatchesSoftmax) {
  std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -3.0f};
  SamplingParams p;
  p.seed = 2024;
  Sampler s(p);
  auto counts = histogram(s, logits, 200000);
  double chi = chi_square(counts, softmax(logits));
  std::printf("[ chi2 ] T=1, 8 tokens, 200k draws: %.2f (bound %.1f)\n", chi, chi_bound(7));
  EXPECT_LT(chi, chi_bound(7));
}

TEST(Distribution, TemperatureScalesLogits) {
  std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f};
  for (float t : {0.5f, 2.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 11;
    Sampler s(p);
    auto counts = histogram(s, logits, 100000);
    EXPECT_LT(chi_square(counts, softmax(logits, t)), chi_bound(5)) << "temperature " << t;
  }
}

TEST(Distribution, AllEqualLogitsAreUniform) {
  std::vector<float> logits(10, -7.25f);
  SamplingParams p;
  p.seed = 3;
  Sampler s(p);
  auto counts = histogram(s, logits, 100000);
  EXPECT_LT(chi_square(counts, std::vector<double>(10, 0.1)), chi_bound(9));
}

// The truncated, renormalized distribution (at temperature t) of the tokens in `keep`.
std::vector<double> restricted(const std::vector<float>& logits, const std::set<int>& keep, double t) {
  std::vector<float> masked(logits.size(), -kInf);
  for (int i : keep) masked[i] = logits[i];
  return softmax(masked, t);
}

TEST(TopK, OneEqualsGreedy) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    auto logits = random_logits(2000, seed);
    logits[17] = logits[1500] = *std::max_element(logits.begin(), logits.end()) + 1.0f;  // a tie
    SamplingParams p;
    p.top_k = 1;
    p.seed = seed;
    p.temperature = 5.0f;
    Sampler s(p);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(s.sample(logits.data(), 2000).token, 17);
  }
}

TEST(TopK, DistributionIsRenormalizedOverTheK) {
  std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 3.0f, 0.0f, 2.5f, -3.0f};
  SamplingParams p;
  p.top_k = 3;
  p.temperature = 1.5f;
  p.seed = 8;
  Sampler s(p);
  auto counts = histogram(s, logits, 100000);
  EXPECT_LT(chi_square(counts, restricted(logits, {4, 6, 1}, 1.5)), chi_bound(2));
}

TEST(TopK, TiesAtTheCutKeepLowestIds) {
  std::vector<float> logits = {1.0f, 5.0f, 1.0f, 1.0f, 1.0f};
  SamplingParams p;
  p.top_k = 3;  // 1, then two of the four 1.0s: ids 0 and 2
  p.seed = 1;
  Sampler s(p);
  auto counts = histogram(s, logits, 50000);
  EXPECT_GT(counts[0], 0);
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_EQ(counts[4], 0);
}

TEST(TopP, TinyEqualsGreedy) {
  for (uint64_t seed = 0; seed < 30; ++seed) {
    auto logits = random_logits(5000, seed, 0.5f);
    SamplingParams p;
    p.top_p = 1e-6f;
    p.seed = seed;
    Sampler s(p);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(logits.data(), 5000).token, argmax(logits));
  }
}

TEST(TopP, KeepsSmallestPrefixReachingP) {
  // probabilities ~ .5, .25, .125, .0625, ... (logits log2-spaced)
  std::vector<float> logits;
  for (int i = 0; i < 10; ++i) logits.push_back(-0.6931472f * i);
  // shuffle the ids so order != id order
  std::vector<float> shuffled = {logits[3], logits[0], logits[7], logits[1], logits[9],
                                 logits[2], logits[5], logits[4], logits[8], logits[6]};
  // best-first: ids 1 (.50), 3 (.25), 5 (.125), 0, ... ; cum .5, .75, .875
  SamplingParams p;
  p.top_p = 0.8f;  // needs 1, 3, 5
  p.seed = 4;
  Sampler s(p);
  auto counts = histogram(s, shuffled, 100000);
  EXPECT_LT(chi_square(counts, restricted(shuffled, {1, 3, 5}, 1.0)), chi_bound(2));
}

TEST(TopP, IsNormalizedOverTopK) {
  // top_k=2 keeps {a: .5, b: .25} of the full softmax -> renormalized 2/3, 1/3, so
  // top_p = 0.6 keeps only a (2/3 >= .6), while over the full vocab it would need both.
  std::vector<float> logits;
  for (int i = 0; i < 10; ++i) logits.push_back(-0.6931472f * i);
  SamplingParams p;
  p.top_k = 2;
  p.top_p = 0.6f;
  p.seed = 9;
  Sampler s(p);
  auto counts = histogram(s, logits, 2000);
  EXPECT_EQ(counts[0], 2000);
}

TEST(TopP, LargeFlatVocabKeepsTheRightMass) {
  // Many tokens in one logit bucket: exercises the in-bucket sort.
  std::vector<float> logits(20000, 0.0f);
  for (int i = 0; i < 20000; ++i) logits[i] = (i % 7) * 1e-4f;  // nearly flat
  SamplingParams p;
  p.top_p = 0.5f;
  p.seed = 10;
  Sampler s(p);
  // kept: the best-first prefix holding half the mass; only tokens with i % 7 >= 4
  // (~3/7 of tokens with a bit more than average weight) plus part of the next level.
  auto counts = histogram(s, logits, 5000);
  for (int i = 0; i < 20000; ++i)
    if (i % 7 < 3) {
      ASSERT_EQ(counts[i], 0) << i;
    }
}

TEST(MinP, FiltersBelowFractionOfMax) {
  // p relative to max: 1, e^-1=.37, e^-2=.135, e^-3=.05, e^-4=.018
  std::vector<float> logits = {-2.0f, 0.0f, -4.0f, -1.0f, -3.0f};
  SamplingParams p;
  p.min_p = 0.1f;  // keeps relative >= .1: ids 1, 3, 0
  p.seed = 12;
  Sampler s(p);
  auto counts = histogram(s, logits, 100000);
  EXPECT_EQ(counts[2], 0);
  EXPECT_EQ(counts[4], 0);
  EXPECT_LT(chi_square(counts, restricted(logits, {1, 3, 0}, 1.0)), chi_bound(2));
}

TEST(MinP, OneKeepsOnlyTheMax) {
  auto logits = random_logits(1000, 5);
  SamplingParams p;
  p.min_p = 1.0f;
  p.temperature = 10.0f;
  EXPECT_EQ(sample_token(p, logits), argmax(logits));
}

TEST(MinP, AppliesBeforeTemperature) {
  std::vector<float> logits = {0.0f, -1.0f, -5.0f};
  SamplingParams p;
  p.min_p = 0.05f;  // e^-5 = .0067 < .05: token 2 gone whatever the temperature
  p.temperature = 100.0f;
  p.seed = 13;
  Sampler s(p);
  auto counts = histogram(s, logits, 20000);
  EXPECT_EQ(counts[2], 0);
  EXPECT_LT(chi_square(counts, restricted(logits, {0, 1}, 100.0)), chi_bound(1));
}

TEST(Temperature, TowardZeroApproachesGreedy) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto logits = random_logits(3000, seed);
    logits[argmax(logits)] += 0.05f;  // a gap of >= 0.05: the runner-up gets < e^-50
    SamplingParams p;
    p.temperature = 1e-3f;
    p.seed = seed;
    Sampler s(p);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(logits.data(), 3000).token, argmax(logits));
  }
  // and at 1e-2 with a 0.1 gap, the runner-up has probability e^-10
  std::vector<float> close = {1.0f, 1.1f, 0.0f};
  SamplingParams p;
  p.temperature = 0.01f;
  Sampler s(p);
  auto counts = histogram(s, close, 10000);
  EXPECT_GE(counts[1], 9990);
}

TEST(Banned, NeverSampled) {
  std::vector<float> logits = {1.0f, 5.0f, 1.0f, 4.0f, 0.0f};
  SamplingParams p;
  p.banned_tokens = {1, 3, 3, 999};  // duplicates and out-of-vocab ids are ignored
  p.temperature = 3.0f;
  p.seed = 14;
  Sampler s(p);
  auto counts = histogram(s, logits, 20000);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_LT(chi_square(counts, restricted(logits, {0, 2, 4}, 3.0)), chi_bound(2));

  SamplingParams g = greedy_params();
  g.banned_tokens = {1};
  EXPECT_EQ(sample_token(g, logits), 3);
}

TEST(Banned, ExcludedFromLogprobs) {
  std::vector<float> logits = {1.0f, 5.0f, 2.0f};
  SamplingParams p = greedy_params();
  p.banned_tokens = {1};
  Sampler s(p);
  auto r = s.sample(logits.data(), 3, 3);
  ASSERT_EQ(r.top.size(), 2u);  // the banned token has probability 0
  EXPECT_EQ(r.top[0].id, 2);
  EXPECT_EQ(r.top[1].id, 0);
  auto lp = log_softmax({1.0f, 2.0f});
  EXPECT_NEAR(r.top[0].logprob, lp[1], 1e-5);
  EXPECT_NEAR(r.logprob, lp[1], 1e-5);
}

TEST(EdgeLogits, NegInfNeverSampled) {
  std::vector<float> logits = {-kInf, 0.0f, -kInf, 0.5f, -kInf};
  SamplingParams p;
  p.seed = 15;
  p.top_p = 0.99f;
  Sampler s(p);
  auto counts = histogram(s, logits, 20000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_LT(chi_square(counts, softmax(logits)), chi_bound(1));
  auto r = s.sample(logits.data(), 5, 5);
  EXPECT_EQ(r.top.size(), 2u);
  EXPECT_TRUE(std::isfinite(r.logprob));
}

TEST(EdgeLogits, NaNTreatedAsNegInfAndPosInfWins) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> logits = {nan, 1.0f, nan, 0.0f};
  SamplingParams p;
  p.seed = 16;
  Sampler s(p);
  auto counts = histogram(s, logits, 5000);
  EXPECT_EQ(counts[0] + counts[2], 0);

  std::vector<float> inf_logits = {1.0f, kInf, 2.0f};
  Sampler s2(p);
  auto r = s2.sample(inf_logits.data(), 3, 3);
  EXPECT_EQ(r.token, 1);
  EXPECT_TRUE(std::isfinite(r.logprob));
  EXPECT_EQ(sample_token(greedy_params(), inf_logits), 1);
}

TEST(EdgeLogits, AllNegInfIsDefined) {
  std::vector<float> logits(8, -kInf);
  SamplingParams p;
  p.banned_tokens = {0, 1, 3};
  Sampler s(p);
  auto r = s.sample(logits.data(), 8, 4);
  EXPECT_EQ(r.token, 2);  // lowest id not banned
  EXPECT_EQ(r.logprob, -kInf);
  EXPECT_TRUE(r.top.empty());

  std::vector<float> one = {0.0f, 0.0f};
  SamplingParams all = greedy_params();
  all.banned_tokens = {0, 1};
  Sampler s2(all);
  EXPECT_EQ(s2.sample(one.data(), 2).token, 0);
}

TEST(EdgeLogits, SingleTokenVocab) {
  float l = -3.0f;
  SamplingParams p;
  p.top_k = 5;
  p.top_p = 0.1f;
  p.min_p = 0.5f;
  Sampler s(p);
  auto r = s.sample(&l, 1, 3);
  EXPECT_EQ(r.token, 0);
  EXPECT_NEAR(r.logprob, 0.0f, 1e-6);
  ASSERT_EQ(r.top.size(), 1u);
}

TEST(EdgeLogits, VocabSizeMayChangeBetweenCalls) {
  SamplingParams p;
  p.seed = 1;
  Sampler s(p);
  auto big = random_logits(5000, 1);
  auto small = random_logits(10, 2);
  for (int i = 0; i < 5; ++i) {
    EXPECT_LT(s.sample(small.data(), 10).token, 10);
    EXPECT_LT(s.sample(big.data(), 5000).token, 5000);
  }
}

TEST(Logprobs, AreLogSoftmaxOfPenalizedLogitsAndTopIsSorted) {
  auto logits = random_logits(1000, 21);
  auto ref = log_softmax(logits);
  for (float t : {0.0f, 0.3f, 1.0f, 2.0f}) {
    SamplingParams p;
    p.temperature = t;  // logprobs ignore temperature and truncation
    p.top_k = 10;
    p.seed = 22;
    Sampler s(p);
    for (int i = 0; i < 20; ++i) {
      auto r = s.sample(logits.data(), 1000, 20);
      EXPECT_NEAR(r.logprob, ref[r.token], 1e-4);
      ASSERT_EQ(r.top.size(), 20u);
      for (size_t j = 0; j < r.top.size(); ++j) {
        EXPECT_NEAR(r.top[j].logprob, ref[r.top[j].id], 1e-4);
        if (j > 0) {
          EXPECT_GE(r.top[j - 1].logprob, r.top[j].logprob);
        }
      }
      // the top list really is the best 20
      std::vector<double> sorted = ref;
      std::sort(sorted.rbegin(), sorted.rend());
      EXPECT_NEAR(r.top[19].logprob, sorted[19], 1e-4);
      EXPECT_EQ(r.top[0].id, argmax(logits));
    }
  }
}

TEST(Logprobs, SumToOneAndClampN) {
  std::vector<float> logits = {0.1f, -2.0f, 3.0f, 3.0f, 1.0f};
  Sampler s(SamplingParams{});
  auto r = s.sample(logits.data(), 5, 100);
  ASSERT_EQ(r.top.size(), 5u);
  double sum = 0;
  for (auto& t : r.top) sum += std::exp(t.logprob);
  EXPECT_NEAR(sum, 1.0, 1e-5);
  EXPECT_EQ(r.top[0].id, 2);  // tie: lower id first
  EXPECT_EQ(r.top[1].id, 3);
  EXPECT_TRUE(s.sample(logits.data(), 5, 0).top.empty());
  EXPECT_TRUE(s.sample(logits.data(), 5, -3).top.empty());
}

}  // namespace
}  // namespace tachyon::sampling::testing

namespace tachyon::sampling::testing {
namespace {

// The kept set by brute force: a full sort, as llama.cpp's chain does it.
// Returns false when a top_p cut lies too close to a rounding boundary to be checked.
bool reference_kept(const std::vector<float>& logits, const SamplingParams& p, std::set<int>* kept) {
  std::vector<int> order(logits.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  size_t n = order.size();
  if (p.top_k > 0) n = std::min<size_t>(n, p.top_k);
  const double mx = logits[order[0]];
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += std::exp(logits[order[i]] - mx);
  if (p.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < n; ++i) {
      cum += std::exp(logits[order[i]] - mx);
      if (std::fabs(cum / total - p.top_p) < 1e-4) return false;
      if (cum >= p.top_p * total) {
        n = i + 1;
        break;
      }
    }
  }
  kept->clear();
  for (size_t i = 0; i < n; ++i) {
    double rel = std::exp(logits[order[i]] - mx);
    if (std::fabs(rel - p.min_p) < 1e-5) return false;
    if (rel >= p.min_p) kept->insert(order[i]);
  }
  return true;
}

TEST(Truncation, MatchesBruteForceReference) {
  int checked = 0, bucketed = 0;  // bucketed: top_p over > 512 candidates (the bucket search)
  uint64_t c = 0;
  for (int n : {40, 700, 3000})
    for (int top_k : {0, 5, 300})
      for (float top_p : {1.0f, 0.9f, 0.5f})
        for (float min_p : {0.0f, 0.05f}) {
          ++c;
          auto logits = random_logits(n, 1000 + c, 3.0f);
          for (int i = 0; i < n; i += 7) logits[i] = std::round(logits[i]);  // some exact ties
          SamplingParams p;
          p.temperature = 1e6f;  // uniform over the kept set: every kept token shows up quickly
          p.seed = c;
          p.top_k = top_k;
          p.top_p = top_p;
          p.min_p = min_p;
          std::set<int> kept;
          if (!reference_kept(logits, p, &kept) || kept.size() > 400) continue;
          ++checked;
          if (n > 512 && top_k == 0 && top_p < 1.0f) ++bucketed;
          Sampler s(p);
          std::set<int> seen;
          const int draws = 30 * static_cast<int>(kept.size()) + 100;
          for (int i = 0; i < draws; ++i) seen.insert(s.sample(logits.data(), n).token);
          EXPECT_EQ(seen, kept) << "vocab " << n << " top_k " << top_k << " top_p " << top_p
                                << " min_p " << min_p;
        }
  std::printf("[ ref  ] %d cases checked, %d through the top_p bucket search\n", checked, bucketed);
  EXPECT_GE(checked, 40);
  EXPECT_GE(bucketed, 4);
}

TEST(Truncation, NearlyFlatLogitsNeedTheFinerBucketLevels) {
  // All logits within 2e-3 of each other: the first level (4096 buckets over 32 nats)
  // puts them in one bucket, the second level splits them and the crossing bucket is sorted.
  const int n = 2000;
  auto logits = random_logits(n, 77, 1.0f);
  for (float& l : logits) l = 5.0f + l * 5e-4f;
  SamplingParams p;
  p.temperature = 1e6f;
  p.top_p = 0.3f;
  p.seed = 5;
  std::set<int> kept;
  ASSERT_TRUE(reference_kept(logits, p, &kept));
  Sampler s(p);
  std::set<int> seen;
  for (int i = 0; i < 30 * static_cast<int>(kept.size()); ++i) seen.insert(s.sample(logits.data(), n).token);
  EXPECT_EQ(seen, kept) << kept.size() << " kept";
}

}  // namespace
}  // namespace tachyon::sampling::testing
