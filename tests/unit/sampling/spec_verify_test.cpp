// Rejection sampling for speculative decoding (Sampler::sample_draft / verify_draft): the
// tokens that come out are distributed exactly as the target's own samples, whatever the
// draft's distribution. Chi-square over many seeds on a small vocabulary; deterministic
// (fixed seeds), so the test cannot flake.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "sampling/sampler.h"

namespace tachyon::sampling::testing {
namespace {

// The target's sampling distribution for `logits` (what sample() draws from).
std::vector<double> target_dist(const SamplingParams& p, const std::vector<float>& logits) {
  Sampler s(p);
  std::vector<float> q;
  s.sample_draft(logits.data(), static_cast<int>(logits.size()), &q);
  return std::vector<double>(q.begin(), q.end());
}

// Chi-square statistic of observed counts against expected probabilities (cells with
// expected count < 5 merged into one, as the test requires).
double chi_square(const std::vector<int>& counts, const std::vector<double>& p, int n, int* dof) {
  double chi = 0, rest_obs = 0, rest_exp = 0;
  int cells = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double e = p[i] * n;
    if (e < 5) {
      rest_obs += counts[i];
      rest_exp += e;
      continue;
    }
    chi += (counts[i] - e) * (counts[i] - e) / e;
    ++cells;
  }
  if (rest_exp >= 5) {
    chi += (rest_obs - rest_exp) * (rest_obs - rest_exp) / rest_exp;
    ++cells;
  } else {
    EXPECT_LE(rest_obs, 5 + 3 * std::sqrt(rest_exp + 1)) << "tokens outside the target's support";
  }
  *dof = cells - 1;
  return chi;
}

// 0.1% critical values of chi-square for 1..15 degrees of freedom.
double critical(int dof) {
  static const double v[] = {0,     10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12,
                             27.88, 29.59, 31.26, 32.91, 34.53, 36.12, 37.70};
  return v[std::min(dof, 15)];
}

struct Case {
  const char* name;
  SamplingParams target, draft;
  std::vector<float> lp, lq;
};

std::vector<Case> cases() {
  std::vector<Case> cs;
  SamplingParams t1;  // temperature 1, no truncation
  SamplingParams hot;
  hot.temperature = 1.7f;
  SamplingParams trunc;
  trunc.temperature = 0.8f;
  trunc.top_k = 6;
  trunc.top_p = 0.9f;
  SamplingParams narrow;  // a draft that can only propose its 2 best tokens
  narrow.top_k = 2;
  const std::vector<float> lp = {1.0f, 2.5f, 0.2f, -1.0f, 1.8f, 0.9f, -0.5f, 2.0f, 0.0f, 1.2f};
  const std::vector<float> lq = {2.2f, 0.5f, 0.1f, 1.5f, -0.3f, 1.1f, 0.4f, 0.2f, -2.0f, 1.0f};  // poorly aligned
  cs.push_back({"t1", t1, t1, lp, lq});
  cs.push_back({"hot_target_t1_draft", hot, t1, lp, lq});
  cs.push_back({"truncated_target", trunc, t1, lp, lq});
  cs.push_back({"narrow_draft", t1, narrow, lp, lq});
  cs.push_back({"same_distribution", t1, t1, lp, lp});
  return cs;
}

TEST(RejectionSampling, OneDraftTokenKeepsTheTargetDistribution) {
  constexpr int kTrials = 20000;
  for (const Case& c : cases()) {
    const int n = static_cast<int>(c.lp.size());
    const std::vector<double> p = target_dist(c.target, c.lp);
    std::vector<int> counts(n, 0);
    int accepted = 0;
    double expect_accept = 0;
    std::vector<float> q;
    {
      Sampler d(c.draft);
      d.sample_draft(c.lq.data(), n, &q);
      for (int i = 0; i < n; ++i) expect_accept += std::min<double>(p[i], q[i]);
    }
    for (int trial = 0; trial < kTrials; ++trial) {
      SamplingParams tp = c.target, dp = c.draft;
      tp.seed = 1000 + trial;
      dp.seed = 0x5eed0000ULL + trial;
      Sampler target(tp), draft(dp);
      const int32_t d = draft.sample_draft(c.lq.data(), n, &q);
      ASSERT_GE(d, 0);
      ASSERT_GT(q[d], 0.0f);
      bool acc = false;
      const SampleResult r = target.verify_draft(c.lp.data(), n, 0, d, q.data(), &acc);
      ASSERT_GE(r.token, 0);
      ASSERT_LT(r.token, n);
      if (acc) {
        EXPECT_EQ(r.token, d);
        ++accepted;
      }
      ++counts[r.token];
    }
    int dof = 0;
    const double chi = chi_square(counts, p, kTrials, &dof);
    EXPECT_LT(chi, critical(dof)) << c.name << ": output distribution differs from the target's";
    // The acceptance rate is sum_i min(p_i, q_i) (the draft's overlap with the target).
    EXPECT_NEAR(static_cast<double>(accepted) / kTrials, expect_accept, 0.015) << c.name;
  }
}

// Two positions: the draft proposes d1, d2 (d2 from the draft's distribution after d1);
// the target verifies d1, and d2 only when d1 was accepted. The pair of output tokens
// must follow the target's joint distribution p(t1) p(t2 | t1).
TEST(RejectionSampling, TwoDraftTokensKeepTheJointDistribution) {
  constexpr int kTrials = 40000;
  constexpr int n = 4;
  // Logits of position 2 depend on the token at position 1 (one row per t1).
  const std::vector<float> lp1 = {0.5f, 1.5f, 0.0f, 1.0f};
  const std::vector<float> lq1 = {1.5f, 0.2f, 0.8f, 0.0f};
  const std::vector<std::vector<float>> lp2 = {
      {2.0f, 0.0f, 0.5f, 1.0f}, {0.0f, 1.0f, 2.0f, 0.5f}, {1.0f, 1.0f, 0.0f, 0.0f}, {0.3f, 0.0f, 0.0f, 2.0f}};
  const std::vector<std::vector<float>> lq2 = {
      {0.0f, 2.0f, 0.5f, 1.0f}, {1.0f, 1.0f, 1.0f, 1.0f}, {0.0f, 0.0f, 2.0f, 0.0f}, {2.0f, 0.0f, 0.0f, 0.3f}};
  SamplingParams sp;
  const std::vector<double> p1 = target_dist(sp, lp1);
  std::vector<double> joint(n * n);
  for (int a = 0; a < n; ++a) {
    const std::vector<double> p2 = target_dist(sp, lp2[a]);
    for (int b = 0; b < n; ++b) joint[a * n + b] = p1[a] * p2[b];
  }
  std::vector<int> counts(n * n, 0);
  std::vector<float> q1, q2, q_unused;
  for (int trial = 0; trial < kTrials; ++trial) {
    SamplingParams tp = sp, dp = sp;
    tp.seed = 7 + trial;
    dp.seed = 0xd4af7ULL * (trial + 1);
    Sampler target(tp), draft(dp);
    const int32_t d1 = draft.sample_draft(lq1.data(), n, &q1);
    const int32_t d2 = draft.sample_draft(lq2[d1].data(), n, &q2);
    bool acc1 = false, acc2 = false;
    const int32_t t1 = target.verify_draft(lp1.data(), n, 0, d1, q1.data(), &acc1).token;
    int32_t t2;
    if (acc1) {
      t2 = target.verify_draft(lp2[t1].data(), n, 0, d2, q2.data(), &acc2).token;
    } else {
      // rejected: the step ends with the residual token; the next token is the target's own
      t2 = target.sample(lp2[t1].data(), n).token;
    }
    ++counts[t1 * n + t2];
  }
  int dof = 0;
  const double chi = chi_square(counts, joint, kTrials, &dof);
  EXPECT_LT(chi, critical(dof)) << "joint distribution of two tokens differs from the target's";
}

TEST(RejectionSampling, GreedyTargetAcceptsOnlyItsArgmax) {
  SamplingParams g;
  g.temperature = 0.0f;
  SamplingParams t1;
  const std::vector<float> lp = {0.1f, 0.9f, 3.0f, 0.2f};
  const std::vector<float> lq = {1.0f, 1.0f, 1.0f, 1.0f};
  for (int trial = 0; trial < 200; ++trial) {
    t1.seed = trial;
    Sampler draft(t1), target(g);
    std::vector<float> q;
    const int32_t d = draft.sample_draft(lq.data(), 4, &q);
    bool acc = false;
    const SampleResult r = target.verify_draft(lp.data(), 4, 2, d, q.data(), &acc);
    EXPECT_EQ(r.token, 2);
    EXPECT_EQ(acc, d == 2);
    ASSERT_EQ(r.top.size(), 2u);
    EXPECT_EQ(r.top[0].id, 2);
    EXPECT_NEAR(r.logprob, r.top[0].logprob, 1e-6);
  }
}

}  // namespace
}  // namespace tachyon::sampling::testing
