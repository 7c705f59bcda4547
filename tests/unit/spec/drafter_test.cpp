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
  EXPECT_FALSE(parse_mode("draft", &m));
  EXPECT_STREQ(mode_name(Mode::kNgram), "ngram");
}
