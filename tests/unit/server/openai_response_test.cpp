// Response shapes, SSE framing, error JSON, and the Prometheus text format.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "server/metrics.h"
#include "server/openai.h"

namespace tachyon::server {
namespace {

TEST(server_response, ErrorShape) {
  ApiError e;
  e.status = 400;
  e.message = "bad \"thing\"";
  e.param = "temperature";
  auto j = nlohmann::json::parse(error_json(e));
  ASSERT_TRUE(j.contains("error"));
  EXPECT_EQ(j["error"]["message"], "bad \"thing\"");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "temperature");
  EXPECT_TRUE(j["error"]["code"].is_null());
  EXPECT_EQ(j["error"].size(), 4u);

  ApiError c;
  c.status = 400;
  c.code = "context_length_exceeded";
  c.message = "too long";
  auto k = nlohmann::json::parse(error_json(c));
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_EQ(k["error"]["code"], "context_length_exceeded");
}

TEST(server_response, ErrorTypes) {
  EXPECT_EQ(error_type_for_status(401), "authentication_error");
  EXPECT_EQ(error_type_for_status(404), "not_found_error");
  EXPECT_EQ(error_type_for_status(429), "rate_limit_error");
  EXPECT_EQ(error_type_for_status(500), "server_error");
  EXPECT_EQ(error_type_for_status(400), "invalid_request_error");
}

TEST(server_response, SseFraming) {
  ojson j = {{"a", 1}, {"b", "x\ny"}};
  const std::string s = sse_data(j);
  EXPECT_EQ(s, "data: {\"a\":1,\"b\":\"x\\ny\"}\n\n");  // one line: newlines in strings are escaped
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
}

TEST(server_response, InvalidUtf8IsReplaced) {
  ojson j = {{"text", std::string("ok\xff\xfe")}};
  const std::string s = dump_json(j);
  EXPECT_NE(s.find("\xef\xbf\xbd"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(s));
}

TEST(server_response, ChatChunk) {
  ResponseMeta m{"chatcmpl-1", 123, "mini"};
  ojson c = chat_chunk(m, 2, {{"content", "hi"}}, nullptr, nullptr);
  EXPECT_EQ(c["id"], "chatcmpl-1");
  EXPECT_EQ(c["object"], "chat.completion.chunk");
  EXPECT_EQ(c["created"], 123);
  EXPECT_EQ(c["model"], "mini");
  ASSERT_EQ(c["choices"].size(), 1u);
  EXPECT_EQ(c["choices"][0]["index"], 2);
  EXPECT_EQ(c["choices"][0]["delta"]["content"], "hi");
  EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(c["choices"][0]["logprobs"].is_null());
  // field order as OpenAI sends it
  EXPECT_EQ(dump_json(c).rfind("{\"id\":", 0), 0u);

  ojson f = completion_chunk(m, 0, "", nullptr, "length");
  EXPECT_EQ(f["object"], "text_completion");
  EXPECT_EQ(f["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(f["choices"][0]["text"], "");
}

TEST(server_response, UsageAndTimings) {
  Usage u;
  u.prompt_tokens = 10;
  u.cached_tokens = 4;
  u.completion_tokens = 5;
  u.prompt_ms = 6;
  u.decode_ms = 10;
  u.queue_ms = 1.5;
  ojson j = usage_json(u);
  EXPECT_EQ(j["prompt_tokens"], 10);
  EXPECT_EQ(j["completion_tokens"], 5);
  EXPECT_EQ(j["total_tokens"], 15);
  EXPECT_EQ(j["prompt_tokens_details"]["cached_tokens"], 4);
  ojson t = timings_json(u);
  EXPECT_EQ(t["prompt_n"], 6);
  EXPECT_EQ(t["cached_n"], 4);
  EXPECT_EQ(t["predicted_n"], 5);
  EXPECT_DOUBLE_EQ(t["predicted_ms"].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(t["predicted_per_second"].get<double>(), 500.0);
  EXPECT_DOUBLE_EQ(t["queue_ms"].get<double>(), 1.5);
  EXPECT_EQ(t["draft_tokens"], 0);  // speculative decoding off: present, 0 and 0
  EXPECT_EQ(t["accepted_tokens"], 0);
  ojson uc = usage_chunk(ResponseMeta{"x", 1, "m"}, Endpoint::kChat, u);
  EXPECT_TRUE(uc["choices"].empty());
  EXPECT_EQ(uc["usage"]["total_tokens"], 15);
}

TEST(server_response, Logprobs) {
  std::vector<engine::TopLogprob> top = {{7, "a", -0.1f}, {8, "b", -2.5f}};
  ojson e = chat_logprob_entry(7, "a", -0.1f, top);
  EXPECT_EQ(e["token"], "a");
  EXPECT_EQ(e["id"], 7);  // llama-server's extension: bench verify maps tokens by id
  EXPECT_EQ(e["top_logprobs"][1]["id"], 8);
  EXPECT_EQ(e["bytes"], ojson::array({97}));
  EXPECT_EQ(e["top_logprobs"].size(), 2u);
  EXPECT_EQ(e["top_logprobs"][1]["token"], "b");
  ojson inf = chat_logprob_entry(3, "\xe2", -INFINITY, {});
  EXPECT_FLOAT_EQ(inf["logprob"].get<float>(), -9999.0f);
  EXPECT_EQ(inf["bytes"], ojson::array({0xe2}));

  CompletionLogprobs c;
  c.add("a", -0.1f, top, 0, true);
  c.add("b", -1.0f, top, 1, true);
  ojson cj = c.to_json();
  EXPECT_EQ(cj["tokens"], ojson::array({"a", "b"}));
  EXPECT_EQ(cj["text_offset"], ojson::array({0, 1}));
  EXPECT_EQ(cj["top_logprobs"][0].size(), 2u);
}

// Every line of the exposition is a comment or `name{labels} value`; histogram buckets
// are cumulative and end with +Inf == _count.
TEST(server_metrics, PrometheusTextFormat) {
  ServerMetrics m;
  m.record_status(200);
  m.record_status(200);
  m.record_status(429);
  engine::EngineStats s;
  s.requests_submitted = 3;
  s.queue_depth = 2;
  s.running = 1;
  s.kv_pages_total = 100;
  s.kv_pages_free = 60;
  s.kv_pages_cached = 30;
  s.cached_prompt_tokens = 48;
  s.ttft_ms = {5, 50, 500};
  s.itl_ms = {1, 2, 3, 30};
  s.has_expert_cache = true;
  s.experts.lookups = 10;
  s.experts.hits = 6;
  s.experts.prefetch_hits = 2;
  s.experts.misses = 2;
  s.experts.bytes_read = 4096;
  m.absorb_latencies(s);
  const std::string text = m.render(s, ServerGauges{3, 1});
  const std::regex line_re(R"(^(# (HELP|TYPE) tachyon_\w+ .+|tachyon_\w+(\{[a-z_]+="[^"]*"\})? -?[0-9.e+-]+)$)");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    EXPECT_TRUE(std::regex_match(line, line_re)) << line;
    ++n;
  }
  EXPECT_GT(n, 40);
  auto has = [&](const std::string& l) { return text.find(l + "\n") != std::string::npos; };
  EXPECT_TRUE(has("tachyon_http_requests_total{code=\"200\"} 2"));
  EXPECT_TRUE(has("tachyon_http_requests_total{code=\"429\"} 1"));
  EXPECT_TRUE(has("tachyon_queue_depth 2"));
  EXPECT_TRUE(has("tachyon_running_requests 1"));
  EXPECT_TRUE(has("tachyon_kv_pages_used 10"));
  EXPECT_TRUE(has("tachyon_kv_pages_free 60"));
  EXPECT_TRUE(has("tachyon_prefix_cache_hit_tokens_total 48"));
  EXPECT_TRUE(has("tachyon_http_connections 3"));
  EXPECT_TRUE(has("tachyon_time_to_first_token_seconds_bucket{le=\"0.01\"} 1"));
  EXPECT_TRUE(has("tachyon_time_to_first_token_seconds_bucket{le=\"0.1\"} 2"));
  EXPECT_TRUE(has("tachyon_time_to_first_token_seconds_bucket{le=\"+Inf\"} 3"));
  EXPECT_TRUE(has("tachyon_time_to_first_token_seconds_count 3"));
  EXPECT_TRUE(has("tachyon_inter_token_latency_seconds_count 4"));
  EXPECT_TRUE(has("# TYPE tachyon_inter_token_latency_seconds histogram"));
  EXPECT_TRUE(has("tachyon_expert_cache_hits_total 6"));
  EXPECT_TRUE(has("tachyon_expert_cache_hit_ratio 0.8"));
  EXPECT_TRUE(has("tachyon_expert_cache_read_bytes_total 4096"));
  EXPECT_EQ(m.requests_with_status(200), 2u);
}

TEST(server_metrics, HistogramBoundsAreInclusive) {
  Histogram h({1, 2});
  h.observe(1);
  h.observe(1.5);
  h.observe(5);
  std::string out;
  h.render(&out, "x", "help");
  EXPECT_NE(out.find("x_bucket{le=\"1\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("x_bucket{le=\"2\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("x_sum 7.5\n"), std::string::npos);
}

}  // namespace
}  // namespace tachyon::server
