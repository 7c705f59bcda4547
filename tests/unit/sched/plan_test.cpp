// The step plan without a model: decode-first with drafts cut to the budget, prompts
// shortest-first up to the prefill target, overdue prompts first.
#include <gtest/gtest.h>

#include "sched/plan.h"

using namespace tachyon::sched;

TEST(Plan, DecodesFirstThenShortestPrompts) {
  // 0: prompt of 100, 1: decoding, 2: prompt of 10, 3: decoding
  const std::vector<SeqCounts> s = {{100, 0, 0}, {1, 0, 0}, {10, 0, 0}, {1, 0, 0}};
  const auto p = plan_step(s, {512, 64});
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].seq, 1);
  EXPECT_EQ(p[1].seq, 3);
  EXPECT_EQ(p[2].seq, 2);  // the shorter prompt first
  EXPECT_EQ(p[2].take, 10);
  EXPECT_TRUE(p[2].prefill);
  EXPECT_EQ(p[3].seq, 0);
  EXPECT_EQ(p[3].take, 100);
}

TEST(Plan, PrefillTargetAndBudget) {
  const std::vector<SeqCounts> s = {{80, 0, 0}, {70, 0, 0}, {1, 0, 0}};
  auto p = plan_step(s, {512, 64});
  ASSERT_EQ(p.size(), 2u);  // the first prompt reaches the target; the second waits
  EXPECT_EQ(p[1].seq, 1);
  EXPECT_EQ(p[1].take, 70);
  p = plan_step(s, {50, 64});
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].take, 49);  // the budget less the decode token
}

TEST(Plan, OverduePromptGoesFirst) {
  const std::vector<SeqCounts> s = {{200, 0, kMaxPrefillSkips}, {5, 0, 0}};
  const auto p = plan_step(s, {512, 64});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].seq, 0);
}

TEST(Plan, DraftsNeverPushOutADecode) {
  // Three decoding sequences with 8-token drafts and a budget of 6: every one gets its
  // next token, the drafts share what is left in order.
  const std::vector<SeqCounts> s = {{1, 8, 0}, {1, 8, 0}, {1, 8, 0}};
  const auto p = plan_step(s, {6, 64});
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].take, 4);
  EXPECT_EQ(p[0].draft, 3);
  EXPECT_EQ(p[1].take, 1);
  EXPECT_EQ(p[1].draft, 0);
  EXPECT_EQ(p[2].take, 1);
  // With room, every draft is kept; prompts come after the drafts.
  const std::vector<SeqCounts> t = {{1, 5, 0}, {30, 0, 0}};
  const auto q = plan_step(t, {512, 64});
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].take, 6);
  EXPECT_EQ(q[1].take, 30);
}
