// bench verify without a model: both logprobs shapes, token mapping by id / bytes / text,
// and the decision rule.
#include <gtest/gtest.h>

#include <cmath>

#include "bench/verify/verify.h"

namespace tachyon::bench::verify {
namespace {

TEST(VerifyParse, ContentShapeWithIdsAndBytes) {
  // llama-server / vLLM chat: content entries with bytes, llama-server adds ids.
  const std::string body = R"({"choices":[{"message":{"content":"A\u00e9"},"finish_reason":"length",
    "logprobs":{"content":[
      {"id":32,"token":"A","logprob":-0.5,"bytes":[65],"top_logprobs":[
        {"id":32,"token":"A","logprob":-0.5,"bytes":[65]},{"id":33,"token":"B","logprob":-1.5,"bytes":[66]}]},
      {"id":195,"token":"\ufffd","logprob":-0.25,"bytes":[195],"top_logprobs":[]}]}}],
    "usage":{"prompt_tokens":7}})";
  RemoteProbe p;
  std::string why;
  ASSERT_TRUE(parse_answer(Api::kChat, body, &p, &why)) << why;
  EXPECT_TRUE(p.has_logprobs);
  EXPECT_EQ(p.usage_prompt_tokens, 7);
  ASSERT_EQ(p.tokens.size(), 2u);
  EXPECT_EQ(p.tokens[0].id, 32);
  EXPECT_TRUE(p.tokens[0].is_bytes);
  ASSERT_EQ(p.tokens[0].top.size(), 2u);
  EXPECT_EQ(p.tokens[0].top[1].piece, "B");
  EXPECT_EQ(p.tokens[0].top[1].id, 33);
  EXPECT_EQ(p.tokens[1].piece, "\xc3");  // the bytes, not the replacement character
  EXPECT_TRUE(p.tokens[1].is_bytes);
}

TEST(VerifyParse, LegacyCompletionsShape) {
  const std::string body = R"({"choices":[{"text":"ab","logprobs":{"tokens":["a","b"],"token_logprobs":[-0.1,-0.2],
    "top_logprobs":[{"a":-0.1,"c":-3.0},null],"text_offset":[0,1]}}]})";
  RemoteProbe p;
  std::string why;
  ASSERT_TRUE(parse_answer(Api::kCompletions, body, &p, &why)) << why;
  EXPECT_EQ(p.text, "ab");
  ASSERT_EQ(p.tokens.size(), 2u);
  EXPECT_FALSE(p.tokens[0].is_bytes);
  EXPECT_EQ(p.tokens[0].id, -1);
  EXPECT_EQ(p.tokens[0].top.size(), 2u);
  EXPECT_TRUE(p.tokens[1].top.empty());
  EXPECT_DOUBLE_EQ(p.tokens[1].logprob, -0.2);
}

TEST(VerifyParse, NotAnOpenAiAnswer) {
  RemoteProbe p;
  std::string why;
  EXPECT_FALSE(parse_answer(Api::kChat, "{\"error\":\"x\"}", &p, &why));
  EXPECT_NE(why.find("choices"), std::string::npos);
  EXPECT_FALSE(parse_answer(Api::kChat, "<html>", &p, &why));
}

// ids: 0 "<s>" (control: raw ""), 1 "A", 2 byte 0xC3, 3 byte 0xA9, 4 "\u00e9" (2 bytes), 5 " A"
TokenMap toy_map() {
  return TokenMap({"", "A", "\xc3", "\xa9", "\xc3\xa9", " A"}, {"<s>", "A", "\xc3", "\xa9", "\xc3\xa9", " A"});
}

TEST(VerifyTokenMap, IdWinsWhenItRendersTheSame) {
  const TokenMap tm = toy_map();
  auto m = tm.map("A", true, 1);
  EXPECT_EQ(m.via, TokenMap::Via::kId);
  ASSERT_TRUE(m.unique());
  EXPECT_EQ(m.ids[0], 1);
  // A partial UTF-8 byte sent as text: the id disambiguates it.
  m = tm.map("\xef\xbf\xbd", false, 3);
  EXPECT_EQ(m.via, TokenMap::Via::kId);
  EXPECT_EQ(m.ids, std::vector<int32_t>({3}));
}

TEST(VerifyTokenMap, ForeignIdFallsBackToBytes) {
  const TokenMap tm = toy_map();
  // id 1 here is "A"; the endpoint's id 1 is " A" in its own vocabulary.
  const auto m = tm.map(" A", true, 1);
  EXPECT_EQ(m.via, TokenMap::Via::kBytes);
  EXPECT_EQ(m.ids, std::vector<int32_t>({5}));
}

TEST(VerifyTokenMap, BytesAreExactTextIsAmbiguous) {
  const TokenMap tm = toy_map();
  auto m = tm.map("\xa9", true, -1);
  EXPECT_EQ(m.via, TokenMap::Via::kBytes);
  EXPECT_EQ(m.ids, std::vector<int32_t>({3}));
  // The replacement character as text fits both byte tokens.
  m = tm.map("\xef\xbf\xbd", false, -1);
  EXPECT_EQ(m.via, TokenMap::Via::kText);
  EXPECT_FALSE(m.unique());
  EXPECT_EQ(m.ids.size(), 2u);
  // A control token: rendered "" or "<s>".
  EXPECT_EQ(tm.map("<s>", false, -1).ids, std::vector<int32_t>({0}));
  EXPECT_TRUE(tm.map("Z", false, -1).ids.empty());
}

TEST(VerifyTokenMap, MergedEntriesSplitIntoTokens) {
  const TokenMap tm = toy_map();
  // llama-server reports the byte tokens of one character as one entry ("\u00e9" = C3 A9,
  // id of the last byte): no single token is "C3 A9 A" but its prefixes are.
  const std::string merged = "\xc3\xa9 A";
  EXPECT_TRUE(tm.map(merged, true, 5).ids.empty());
  EXPECT_EQ(tm.prefixes(merged), std::vector<int32_t>({2, 4}));  // C3, then C3 A9
  EXPECT_EQ(tm.prefixes(" A"), std::vector<int32_t>({5}));
  EXPECT_TRUE(tm.prefixes("Z").empty());
}

CandidateResult cand(const char* path, double dlogp, double agree = 1, double coverage = 1) {
  CandidateResult c;
  c.path = path;
  c.mean_abs_logprob_diff = dlogp;
  c.argmax_agreement = agree;
  c.coverage = coverage;
  c.n_positions = 100;
  c.n_pairs = 600;
  finish_distance(c, true);
  return c;
}

TEST(VerifyDecide, TheLogprobDistanceSeparatesQuantizations) {
  // What a llama.cpp endpoint serving Q8_0 looks like: argmax agreement and coverage equal,
  // |dlogp| 2.5x apart (the issue's numbers with the coverage term gone).
  std::vector<CandidateResult> c = {cand("m-F16.gguf", 0.019), cand("m-Q8_0.gguf", 0.0074), cand("other.gguf", 1.18, 0.75)};
  std::string why;
  EXPECT_EQ(decide(c, &why), 1);
  EXPECT_EQ(c[1].verdict, "match");
  EXPECT_EQ(c[0].verdict, "no match");
  EXPECT_NE(why.find("mean |dlogprob|"), std::string::npos) << why;
  EXPECT_NE(why.find("m-Q8_0.gguf 0.0074"), std::string::npos) << why;
}

TEST(VerifyDecide, TooCloseOrTooFarMatchesNone) {
  std::vector<CandidateResult> c = {cand("a.gguf", 0.010), cand("b.gguf", 0.012)};
  std::string why;
  EXPECT_EQ(decide(c, &why), -1);
  EXPECT_EQ(c[0].verdict, "ambiguous");
  EXPECT_EQ(c[1].verdict, "ambiguous");
  EXPECT_NE(why.find("too close"), std::string::npos);
  // Another model with the same vocabulary: every candidate far.
  std::vector<CandidateResult> far = {cand("a.gguf", 0.76, 0.70), cand("b.gguf", 0.76, 0.70)};
  EXPECT_EQ(decide(far, &why), -1);
  EXPECT_EQ(far[0].verdict, "no match");
  EXPECT_NE(why.find("> 0.2500"), std::string::npos) << why;
}

TEST(VerifyDecide, ATokenizerThatDoesNotFitIsAMismatch) {
  std::vector<CandidateResult> c = {cand("foreign.gguf", 0.001, 1, 0.3), cand("m.gguf", 0.002)};
  EXPECT_TRUE(std::isinf(c[0].distance));
  EXPECT_EQ(decide(c), 1);
  EXPECT_EQ(c[0].verdict, "mismatch");
  EXPECT_EQ(c[1].verdict, "match");
  // No comparable logprob: argmax disagreement decides.
  CandidateResult a = cand("x.gguf", 0, 0.9);
  a.n_pairs = 0;
  finish_distance(a, true);
  EXPECT_EQ(a.measure, "argmax");
  EXPECT_NEAR(a.distance, 0.1, 1e-12);
}

}  // namespace
}  // namespace tachyon::bench::verify
