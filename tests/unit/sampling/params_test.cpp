// SamplingParams::validate(): bad values are rejected with a message naming the field.
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "sampling/sampler.h"

namespace tachyon::sampling {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

void expect_rejected(const std::function<void(SamplingParams&)>& set, const std::string& field,
                     int n_vocab = 0) {
  SamplingParams p;
  set(p);
  Status st = p.validate(n_vocab);
  EXPECT_FALSE(st.is_ok()) << "expected " << field << " to be rejected";
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
}

void expect_ok(const std::function<void(SamplingParams&)>& set, int n_vocab = 0) {
  SamplingParams p;
  set(p);
  Status st = p.validate(n_vocab);
  EXPECT_TRUE(st.is_ok()) << st.message();
}

TEST(Validate, DefaultsAreValid) { EXPECT_TRUE(SamplingParams{}.validate().is_ok()); }

TEST(Validate, AcceptsBoundaryValues) {
  expect_ok([](auto& p) { p.temperature = 0.0f; });
  expect_ok([](auto& p) { p.temperature = 5.0f; });
  expect_ok([](auto& p) { p.top_k = -1; });  // vLLM's "disabled"
  expect_ok([](auto& p) { p.top_k = 1 << 30; });
  expect_ok([](auto& p) { p.top_p = 1e-9f; });
  expect_ok([](auto& p) { p.min_p = 1.0f; });
  expect_ok([](auto& p) { p.repetition_penalty = 0.5f; });
  expect_ok([](auto& p) { p.presence_penalty = -2.0f; p.frequency_penalty = 2.0f; });
  expect_ok([](auto& p) { p.penalty_last_n = -1; });
  expect_ok([](auto& p) { p.seed = ~0ull; });
  expect_ok([](auto& p) { p.banned_tokens = {0, 99}; }, 100);
}

TEST(Validate, RejectsBadTemperature) {
  expect_rejected([](auto& p) { p.temperature = kNaN; }, "temperature");
  expect_rejected([](auto& p) { p.temperature = -0.5f; }, "temperature");
  expect_rejected([](auto& p) { p.temperature = kInf; }, "temperature");
}

TEST(Validate, RejectsBadTopK) { expect_rejected([](auto& p) { p.top_k = -2; }, "top_k"); }

TEST(Validate, RejectsBadTopP) {
  expect_rejected([](auto& p) { p.top_p = 0.0f; }, "top_p");
  expect_rejected([](auto& p) { p.top_p = -0.1f; }, "top_p");
  expect_rejected([](auto& p) { p.top_p = 1.01f; }, "top_p");
  expect_rejected([](auto& p) { p.top_p = kNaN; }, "top_p");
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_EQ(p.validate().message(), "top_p must be in (0, 1], got 0");
}

TEST(Validate, RejectsBadMinP) {
  expect_rejected([](auto& p) { p.min_p = -0.01f; }, "min_p");
  expect_rejected([](auto& p) { p.min_p = 1.5f; }, "min_p");
  expect_rejected([](auto& p) { p.min_p = kNaN; }, "min_p");
}

TEST(Validate, RejectsBadPenalties) {
  expect_rejected([](auto& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty");
  expect_rejected([](auto& p) { p.repetition_penalty = -1.0f; }, "repetition_penalty");
  expect_rejected([](auto& p) { p.repetition_penalty = kNaN; }, "repetition_penalty");
  expect_rejected([](auto& p) { p.repetition_penalty = kInf; }, "repetition_penalty");
  expect_rejected([](auto& p) { p.presence_penalty = kNaN; }, "presence_penalty");
  expect_rejected([](auto& p) { p.presence_penalty = 2.5f; }, "presence_penalty");
  expect_rejected([](auto& p) { p.frequency_penalty = -kInf; }, "frequency_penalty");
  expect_rejected([](auto& p) { p.frequency_penalty = -2.01f; }, "frequency_penalty");
  expect_rejected([](auto& p) { p.penalty_last_n = -2; }, "penalty_last_n");
}

TEST(Validate, RejectsBadBannedTokens) {
  expect_rejected([](auto& p) { p.banned_tokens = {3, -1}; }, "banned_tokens[1]");
  expect_rejected([](auto& p) { p.banned_tokens = {100}; }, "banned_tokens[0]", 100);
  expect_ok([](auto& p) { p.banned_tokens = {100}; });  // vocab unknown: sample() ignores it
}

}  // namespace
}  // namespace tachyon::sampling
