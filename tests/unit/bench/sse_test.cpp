#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/openai_stream.h"
#include "bench/sse.h"

namespace tachyon::bench {
namespace {

std::vector<std::string> parse_split(const std::string& s, size_t step) {
  SseParser p;
  std::vector<std::string> out;
  auto cb = [&](const SseEvent& e) {
    out.emplace_back(e.data);
    return true;
  };
  for (size_t i = 0; i < s.size(); i += step) p.feed(std::string_view(s).substr(i, step), cb);
  p.finish(cb);
  return out;
}

TEST(Sse, LineEndingsAndSplits) {
  const std::string s = "data: a\n\ndata: b\r\n\r\n: comment\r\ndata:c\r\rdata: d1\ndata: d2\n\nevent: x\ndata: e";
  const std::vector<std::string> want = {"a", "b", "c", "d1\nd2", "e"};
  for (size_t step : {1u, 2u, 3u, 7u, 1000u}) EXPECT_EQ(parse_split(s, step), want) << "step " << step;
}

TEST(Sse, CrLfSplitAcrossFeeds) {
  SseParser p;
  std::vector<std::string> out;
  auto cb = [&](const SseEvent& e) {
    out.emplace_back(e.data);
    return true;
  };
  p.feed("data: x\r", cb);
  p.feed("\n\r", cb);
  p.feed("\ndata: y\r\n\r\n", cb);
  EXPECT_EQ(out, (std::vector<std::string>{"x", "y"}));
}

TEST(Sse, NonSseBodyIsReported) {
  SseParser p;
  int n = 0;
  p.feed("<html>\n<body>hello</body>\n", [&](const SseEvent&) { return ++n, true; });
  EXPECT_EQ(n, 0);
  EXPECT_NE(p.unrecognised().find("<html>"), std::string::npos);
}

TEST(ResponseReader, ChatChunks) {
  RequestRecord rec;
  ResponseReader rr(Api::kChat, &rec);
  rr.on_head("text/event-stream");
  const std::string body =
      "data: {\"model\":\"m1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,"
      "\"prompt_tokens_details\":{\"cached_tokens\":4}},\"timings\":{\"queue_ms\":1.5,\"prompt_ms\":2}}\n\n"
      "data: [DONE]\n\n";
  EXPECT_TRUE(rr.feed(body.substr(0, 50), 100));
  EXPECT_TRUE(rr.feed(body.substr(50), 200));
  rr.finish({}, 300);
  EXPECT_TRUE(rec.ok()) << rec.error_message;
  ASSERT_EQ(rec.chunks.size(), 2u);  // role-only and empty chunks do not count
  EXPECT_EQ(rec.chunks[0].t_us, 200);
  EXPECT_EQ(rec.output_text, "Helhmm");
  EXPECT_EQ(rec.served_model, "m1");
  EXPECT_EQ(rec.finish_reason, "stop");
  EXPECT_EQ(rec.usage_prompt_tokens, 7);
  EXPECT_EQ(rec.usage_completion_tokens, 3);
  EXPECT_EQ(rec.usage_cached_tokens, 4);
  EXPECT_TRUE(rec.timings.present);
  EXPECT_DOUBLE_EQ(rec.timings.queue_ms, 1.5);
  EXPECT_TRUE(rec.saw_done);
  EXPECT_EQ(rec.t_end_us, 300);
}

// Text that completes an earlier token (a held-back partial character) arrives with an
// empty logprobs list: it joins the previous chunk, and the count stays exact.
TEST(ResponseReader, TokenlessTextJoinsThePreviousChunk) {
  RequestRecord rec;
  ResponseReader rr(Api::kChat, &rec);
  rr.on_head("text/event-stream");
  rr.feed("data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"logprobs\":{\"content\":[{\"token\":\"a\"}]}}]}\n\n", 10);
  rr.feed("data: {\"choices\":[{\"delta\":{\"content\":\"\"},\"logprobs\":{\"content\":[{\"token\":\"\"}]}}]}\n\n", 20);
  rr.feed("data: {\"choices\":[{\"delta\":{\"content\":\"\xc3\xa9\"},\"logprobs\":{\"content\":[]}}]}\n\n", 30);
  rr.feed("data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}],"
          "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n", 40);
  rr.finish({}, 50);
  EXPECT_TRUE(rec.ok()) << rec.error_message;
  ASSERT_EQ(rec.chunks.size(), 2u);
  EXPECT_EQ(rec.chunks[1].t_us, 20);
  EXPECT_EQ(rec.chunks[1].n_bytes, 2);
  EXPECT_EQ(rec.output_text, "a\xc3\xa9");
  finalize_tokens(rec, nullptr);
  EXPECT_EQ(rec.token_source, TokenSource::kLogprobs);
  EXPECT_EQ(rec.n_output_tokens_client, 2);
  EXPECT_EQ(rec.n_output_tokens, 2);
}

TEST(ResponseReader, IncompleteStreamIsAnError) {
  RequestRecord rec;
  ResponseReader rr(Api::kCompletions, &rec);
  rr.on_head("text/event-stream");
  rr.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n\n", 1);
  rr.finish({}, 2);
  EXPECT_EQ(rec.error, ErrorKind::kBadResponse);
  EXPECT_NE(rec.error_message.find("without a finish_reason"), std::string::npos);
}

TEST(RequestBody, ChatAndCompletions) {
  RequestOptions o;
  o.model = "m";
  o.ignore_eos = true;
  o.temperature = 0;
  o.extra_body = nlohmann::json{{"top_k", 1}};
  Prompt p;
  p.messages = {{"user", "hi"}};
  p.max_tokens = 5;
  auto j = nlohmann::json::parse(build_request_body(o, p));
  EXPECT_EQ(j["messages"][0]["content"], "hi");
  EXPECT_EQ(j["max_tokens"], 5);
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["stream_options"]["include_usage"], true);
  EXPECT_EQ(j["ignore_eos"], true);
  EXPECT_EQ(j["temperature"], 0);
  EXPECT_EQ(j["top_k"], 1);
  o.api = Api::kCompletions;
  j = nlohmann::json::parse(build_request_body(o, p));
  EXPECT_EQ(j["prompt"], "hi");
  EXPECT_FALSE(j.contains("messages"));
}

}  // namespace
}  // namespace tachyon::bench
