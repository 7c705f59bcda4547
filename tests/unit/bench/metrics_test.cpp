#include <gtest/gtest.h>

#include <cmath>

#include "bench/metrics.h"
#include "bench/openai_stream.h"

namespace tachyon::bench {
namespace {

// t0 = 0; chunks at the given ms with the given token counts.
RequestRecord rec(std::vector<std::pair<double, int>> chunks, int usage = -1) {
  RequestRecord r;
  r.t_send_us = 0;
  for (auto [t, k] : chunks) {
    ChunkRecord c;
    c.t_us = static_cast<int64_t>(t * 1000);
    c.n_tokens = k;
    c.n_bytes = 4 * k;
    r.chunks.push_back(c);
  }
  r.t_end_us = r.chunks.empty() ? 0 : r.chunks.back().t_us + 1000;
  r.usage_completion_tokens = usage;
  finalize_tokens(r, nullptr);
  return r;
}

TEST(Metrics, DefinitionsChunkAware) {
  // TTFT 100; chunk 2 carries 2 tokens 20 ms later; chunk 3 carries 1 token 30 ms later.
  const RequestRecord r = rec({{100, 1}, {120, 2}, {150, 1}});
  const RequestMetrics m = request_metrics(r, {});
  EXPECT_DOUBLE_EQ(m.ttft_ms, 100);
  EXPECT_DOUBLE_EQ(m.e2e_ms, 150);
  EXPECT_EQ(m.n_output_tokens, 4);
  EXPECT_DOUBLE_EQ(m.tpot_ms, 50.0 / 3);
  EXPECT_EQ(m.itl_ms, (std::vector<double>{10, 10, 30}));
}

TEST(Metrics, SingleTokenHasNoTpot) {
  const RequestMetrics m = request_metrics(rec({{40, 1}}), {});
  EXPECT_DOUBLE_EQ(m.ttft_ms, 40);
  EXPECT_LT(m.tpot_ms, 0);
  EXPECT_TRUE(m.itl_ms.empty());
}

TEST(Metrics, UsageSplitOverChunksByText) {
  // No logprobs (n_tokens 0), usage says 6: split 1:2:3 by bytes.
  RequestRecord r;
  for (int i = 0; i < 3; ++i) r.chunks.push_back({(i + 1) * 1000, 0, 4 * (i + 1)});
  r.usage_completion_tokens = 6;
  finalize_tokens(r, nullptr);
  EXPECT_EQ(r.token_source, TokenSource::kChunks);
  EXPECT_EQ(r.n_output_tokens_client, 3);
  EXPECT_EQ(r.n_output_tokens, 6);
  EXPECT_EQ(r.chunks[0].n_tokens, 1);
  EXPECT_EQ(r.chunks[1].n_tokens, 2);
  EXPECT_EQ(r.chunks[2].n_tokens, 3);
}

TEST(Metrics, PercentilesInterpolate) {
  std::vector<double> v = {4, 1, 3, 2, 5};
  const Distribution d = distribution(v, {0, 50, 90, 99.9, 100});
  EXPECT_DOUBLE_EQ(d.at(0), 1);
  EXPECT_DOUBLE_EQ(d.at(50), 3);
  EXPECT_DOUBLE_EQ(d.at(90), 4.6);
  EXPECT_DOUBLE_EQ(d.at(100), 5);
  EXPECT_DOUBLE_EQ(d.mean, 3);
  EXPECT_TRUE(std::isnan(d.at(42)));
}

TEST(Metrics, SummaryWindowThroughputAndErrors) {
  std::vector<RequestRecord> rs = {rec({{100, 1}, {200, 1}}), rec({{50, 1}, {90, 1}, {130, 1}})};
  RequestRecord bad;
  bad.error = ErrorKind::kHttpStatus;
  bad.http_status = 503;
  bad.t_send_us = 10'000;
  bad.t_end_us = 20'000;
  rs.push_back(bad);
  RequestRecord w = rec({{5000, 1}});
  w.warmup = true;
  rs.push_back(w);
  const Summary s = summarize(rs, {}, {50, 99});
  EXPECT_EQ(s.n_requests, 3);
  EXPECT_EQ(s.n_completed, 2);
  EXPECT_EQ(s.errors.at("http_503"), 1);
  EXPECT_EQ(s.total_output_tokens, 5);
  EXPECT_NEAR(s.window_s, 0.201, 1e-9);  // [0, last end = 201 ms]; warm-up ignored
  EXPECT_NEAR(s.output_throughput, 5 / 0.201, 1e-9);
  EXPECT_EQ(s.ttft.n, 2u);
}

TEST(Metrics, SloParsing) {
  auto s = parse_slo("ttft=500ms,tpot=0.05s, e2e=10s");
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_DOUBLE_EQ(s->ttft_ms, 500);
  EXPECT_DOUBLE_EQ(s->tpot_ms, 50);
  EXPECT_DOUBLE_EQ(s->e2e_ms, 10000);
  EXPECT_FALSE(parse_slo("ttft=fast").is_ok());
  EXPECT_FALSE(parse_slo("latency=5ms").is_ok());
  EXPECT_DOUBLE_EQ(*parse_duration_ms("1h"), 3.6e6);
}

}  // namespace
}  // namespace tachyon::bench
