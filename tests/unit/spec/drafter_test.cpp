// Drafters and the draft-length controller, without a model.
#include <gtest/gtest.h>

#include "spec/drafter.h"

using namespace tachyon::spec;

TEST(NgramDrafter, LongestSuffixMostRecentOccurrence) {
  NgramDrafter d(2, 4);
  std::vector<int32_t> out;
  // ... 1 2 3 [7 8 9] ... 1 2 3 [4 5] ... 1 2 3 -> the most recent "1 2 3" was followed by 4 5
  const std::vector<int32_t> t = {1, 2, 3, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3};
  d.draft(t, 3, nullptr, &out);
  EXPECT_EQ(out, std::vector<int32_t>({4, 5, 6}));
  d.draft(t, 10, nullptr, &out);  // up to the end of the sequence
  EXPECT_EQ(out, std::vector<int32_t>({4, 5, 6, 1, 2, 3}));
  d.draft(std::vector<int32_t>{5, 6, 7}, 4, nullptr, &out);
  EXPECT_TRUE(out.empty());
  d.draft(t, 0, nullptr, &out);
  EXPECT_TRUE(out.empty());
}

TEST(SharedNgramIndex, DraftsFromOtherRequestsOutputs) {
  SharedNgramIndex idx;
  const std::vector<int32_t> run = {10, 11, 12, 13, 14, 15};
  idx.add(run);
  idx.add(std::vector<int32_t>{20, 21});
  std::vector<int32_t> out;
  idx.lookup(std::vector<int32_t>{99, 10, 11, 12}, 2, &out);
  EXPECT_EQ(out, std::vector<int32_t>({13, 14}));
  out.clear();
  idx.lookup(std::vector<int32_t>{12, 13, 14, 15}, 4, &out);  // nothing followed in that run
  EXPECT_TRUE(out.empty());
  // The drafter asks the shared index when the sequence itself has no match.
  NgramDrafter d;
  d.draft(std::vector<int32_t>{1, 10, 11, 12}, 3, &idx, &out);
  EXPECT_EQ(out, std::vector<int32_t>({13, 14, 15}));
}

TEST(DraftLengthController, FollowsAcceptanceAndCost) {
  // Steps of 1..9 tokens: the second token costs 10%, each further one 10% more.
  std::vector<double> cheap(9), dear(9);
  for (int k = 0; k < 9; ++k) cheap[k] = 1 + 0.1 * k, dear[k] = 1 + 1.0 * k;
  DraftLengthController c;
  for (int i = 0; i < 20; ++i) c.record(8, 8);  // everything accepted
  EXPECT_GT(c.acceptance(), 0.95);
  EXPECT_EQ(c.choose(cheap, 8), 8);
  EXPECT_EQ(c.choose(dear, 8), 0);  // a step of k+1 tokens costs k+1 steps: never pays
  DraftLengthController bad;
  for (int i = 0; i < 20; ++i) bad.record(4, 0);
  EXPECT_LT(bad.acceptance(), 0.05);
  int drafted = 0;
  for (int i = 0; i < 32; ++i) drafted += bad.choose(cheap, 8);
  EXPECT_EQ(drafted, 32 / DraftLengthController::kProbeEvery);  // only the probes
  // In a batch whose other sequences already fill the step, a draft pays less.
  DraftLengthController mid;
  for (int i = 0; i < 20; ++i) mid.record(4, 2);
  EXPECT_GE(mid.choose(cheap, 8), mid.choose(cheap, 8, 7.0));
}

TEST(Mode, Parse) {
  Mode m;
  EXPECT_TRUE(parse_mode("auto", &m));
  EXPECT_EQ(m, Mode::kAuto);
  EXPECT_TRUE(parse_mode("off", &m));
  EXPECT_TRUE(parse_mode("draft", &m));
  EXPECT_EQ(m, Mode::kDraft);
  EXPECT_FALSE(parse_mode("mtp", &m));  // not yet
  EXPECT_FALSE(parse_mode("Draft", &m));
  EXPECT_STREQ(mode_name(Mode::kNgram), "ngram");
}

namespace {
TEST(FitNonDecreasing, AveragesOutDipsAndKeepsMonotoneInput) {
  std::vector<double> v = {1.0, 1.2, 1.1, 1.5, 9.0, 1.6, 1.7};
  tachyon::spec::fit_non_decreasing(&v);
  for (size_t i = 1; i < v.size(); ++i) EXPECT_LE(v[i - 1], v[i] + 1e-12);
  EXPECT_NEAR(v[1], 1.15, 1e-12);  // 1.2, 1.1 pooled
  EXPECT_NEAR(v[2], 1.15, 1e-12);
  EXPECT_NEAR(v[4], (9.0 + 1.6 + 1.7) / 3, 1e-12);  // the spike pooled with what follows, not carried to the end
  std::vector<double> m = {1, 2, 3, 4};
  tachyon::spec::fit_non_decreasing(&m);
  EXPECT_EQ(m, (std::vector<double>{1, 2, 3, 4}));
}
}  // namespace

namespace {
using tachyon::spec::SpecGate;

// Runs the gate on a fake engine whose arms cost ms_per_token[arm]; returns steps per arm.
std::vector<int> simulate(SpecGate& g, int n_decode, const std::vector<double>& ms_per_token, int steps) {
  std::vector<int> used(ms_per_token.size(), 0);
  for (int i = 0; i < steps; ++i) {
    const int arm = g.choose(n_decode);
    ++used[arm];
    g.record(n_decode, arm, 2.0 * ms_per_token[arm], 2);
  }
  return used;
}

TEST(SpecGate, RunsTheFastestArmAndKeepsMeasuringTheOthers) {
  SpecGate g(3);
  // drafting with n-gram lookup is slower than none, the draft model faster
  std::vector<int> used = simulate(g, 1, {1.0, 1.5, 0.7}, 640);
  EXPECT_EQ(g.best(1), 2);
  const int explore = 640 / SpecGate::kExploreEvery * SpecGate::kExploreSteps;
  EXPECT_GE(used[2], 640 - explore - 3 * SpecGate::kWarmup);
  // arms far slower than the best leave the warm-up early, and are still probed later
  EXPECT_LT(used[0], SpecGate::kWarmup + 640 / SpecGate::kExploreEvery * SpecGate::kExploreSteps);
  std::vector<int> later = simulate(g, 1, {1.0, 1.5, 0.7}, 2000);
  EXPECT_GT(later[0], 0);
  EXPECT_GT(later[1], 0);
  EXPECT_LT(later[0] + later[1], 2000 / SpecGate::kExploreEvery * SpecGate::kExploreSteps / 2);
}

TEST(SpecGate, NoDraftsWhereDraftingIsSlowerAndBucketsAreSeparate) {
  SpecGate g(2);
  std::vector<int> used = simulate(g, 8, {1.0, 1.2}, 640);
  EXPECT_EQ(g.best(8), 0);
  EXPECT_LE(used[1], SpecGate::kWarmup + 640 / SpecGate::kExploreEvery * SpecGate::kExploreSteps);
  EXPECT_EQ(g.best(1), -1);  // batch 1 has its own estimates: nothing known yet
  EXPECT_EQ(SpecGate::bucket(1), 0);
  EXPECT_EQ(SpecGate::bucket(3), 1);
  EXPECT_EQ(SpecGate::bucket(8), 3);
  EXPECT_EQ(SpecGate::bucket(1000), SpecGate::kBuckets - 1);
  // the workload changes: drafting becomes faster, and the exploration finds it
  simulate(g, 8, {1.0, 0.5}, 200);
  EXPECT_EQ(g.best(8), 1);
}
}  // namespace
