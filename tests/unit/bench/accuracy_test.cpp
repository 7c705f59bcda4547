// Measured metrics against a stub whose timing is scripted: TTFT, TPOT, ITL, E2E and
// throughput within 2 ms or 2% of the truth; error kinds counted exactly; warm-up excluded.
#include <algorithm>
#include <cmath>

#include "test_util.h"

namespace bench_test {
namespace {

// |measured - truth| <= max(2 ms, 2% of truth). The timing tests warm their connections
// first (warm-up = concurrency), so that TCP set-up is not part of the scripted truth.
// This machine is shared: a timing check that misses is measured again, up to 5 times
// in all (a real error misses every time); counts and kinds are checked exactly.
struct Timing {
  std::vector<std::string> misses;
  void close(double measured, double truth, const std::string& what) {
    if (std::abs(measured - truth) > std::max(2.0, 0.02 * truth))
      misses.push_back(what + ": measured " + std::to_string(measured) + " truth " + std::to_string(truth));
  }
  std::string text() const {
    std::string t;
    for (const auto& m : misses) t += m + "\n";
    return t;
  }
};

template <class F>
void with_retries(F measure) {
  Timing t;
  for (int attempt = 0; attempt < 5; ++attempt) {
    t = Timing{};
    measure(t);
    if (t.misses.empty() || ::testing::Test::HasFatalFailure()) break;
    std::printf("timing attempt %d missed (shared machine?):\n%s", attempt + 1, t.text().c_str());
  }
  EXPECT_TRUE(t.misses.empty()) << t.text();
}

TEST(Accuracy, SingleTokenChunks) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = 60;
    s.gap_ms = 10;
    s.n_tokens = 20;
    return s;
  });
  with_retries([&](Timing& t) {
    RunConfig c = config_for(srv.url(), 8, 4);
    c.warmup = 4;
    const auto r = run(c, small_workload(20));
    const Summary s = summarize(r.records, {}, kPcts);
    ASSERT_EQ(s.n_completed, 8);
    EXPECT_EQ(s.itl.n, 8u * 19u);
    EXPECT_EQ(s.total_output_tokens, 160);
    EXPECT_EQ(s.n_token_mismatch, 0);
    t.close(s.ttft.at(50), 60, "TTFT p50");
    t.close(s.tpot.at(50), 10, "TPOT p50");
    t.close(s.tpot.mean, 10, "TPOT mean");
    t.close(s.itl.at(50), 10, "ITL p50");
    t.close(s.itl.mean, 10, "ITL mean");
    t.close(s.e2e.at(50), 60 + 19 * 10, "E2E p50");
    for (const auto& rec : r.records) t.close(request_metrics(rec, {}).ttft_ms, 60, "TTFT of a request");
    // Two waves of 4 requests of 250 ms each: 160 tokens in 0.5 s.
    t.close(s.window_s * 1e3, 500, "window ms");
    t.close(s.output_throughput, 320, "output throughput");
    t.close(s.request_throughput * 100, 1600, "request throughput x100");
  });
}

stub::Script multi_token(bool logprobs) {
  stub::Script s;
  s.ttft_ms = 40;
  s.gap_ms = 8;
  s.chunk_tokens = {1, 3, 2, 4, 1, 5, 2, 2};  // N = 20
  s.logprobs = logprobs;
  return s;
}

void check_multi_token(const RunResult& r, const char* source, Timing& t) {
  const Summary s = summarize(r.records, {}, kPcts);
  ASSERT_EQ(s.n_completed, 6);
  EXPECT_EQ(s.token_source, source);
  EXPECT_EQ(s.total_output_tokens, 6 * 20);
  // A chunk of k tokens arriving k * 8 ms after the previous contributes 8 ms, k times.
  EXPECT_EQ(s.itl.n, 6u * 19u);
  for (const auto& rec : r.records) {
    ASSERT_EQ(rec.chunks.size(), 8u);
    const std::vector<int> want = {1, 3, 2, 4, 1, 5, 2, 2};
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(rec.chunks[i].n_tokens, want[i]) << "chunk " << i;
  }
  t.close(s.itl.at(50), 8, "ITL p50");
  t.close(s.itl.at(90), 8, "ITL p90");
  t.close(s.itl.mean, 8, "ITL mean");
  t.close(s.tpot.at(50), 8, "TPOT p50");
  t.close(s.ttft.at(50), 40, "TTFT p50");
  t.close(s.e2e.at(50), 40 + 19 * 8, "E2E p50");
}

RunResult run_warm(const std::string& url, int n, int conc) {
  RunConfig c = config_for(url, n, conc);
  c.warmup = conc;
  return run(c);
}

TEST(Accuracy, MultiTokenChunksCountedFromLogprobs) {
  stub::Server srv([](int, const nlohmann::json&) { return multi_token(true); });
  with_retries([&](Timing& t) {
    const auto r = run_warm(srv.url(), 6, 3);
    check_multi_token(r, "logprobs", t);
    EXPECT_EQ(summarize(r.records, {}, kPcts).n_token_mismatch, 0);
  });
}

TEST(Accuracy, MultiTokenChunksSplitByUsage) {
  // No logprobs, no tokenizer: the server's usage (20) is split over the 8 chunks by
  // their text length; the chunk count (8) differs from usage and is flagged.
  stub::Server srv([](int, const nlohmann::json&) { return multi_token(false); });
  with_retries([&](Timing& t) {
    const auto r = run_warm(srv.url(), 6, 3);
    check_multi_token(r, "chunks", t);
    const Summary s = summarize(r.records, {}, kPcts);
    EXPECT_EQ(s.n_token_mismatch, 6);
    EXPECT_EQ(s.max_token_mismatch, 12);
  });
}

TEST(Accuracy, UsageDiscrepancyFlagged) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s = multi_token(true);
    s.usage_delta = 3;
    return s;
  });
  const auto r = run(config_for(srv.url(), 4, 2));
  const Summary s = summarize(r.records, {}, kPcts);
  EXPECT_EQ(s.n_token_mismatch, 4);
  EXPECT_EQ(s.max_token_mismatch, 3);
  EXPECT_EQ(s.total_output_tokens, 4 * 23);  // N comes from usage
  for (const auto& rec : r.records) EXPECT_EQ(rec.n_output_tokens_client, 20);
}

TEST(Accuracy, TtftSplitWithServerTimings) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = 60;
    s.n_tokens = 4;
    s.timings = true;
    s.queue_ms = 15;
    s.prompt_ms = 30;
    return s;
  });
  with_retries([&](Timing& t) {
    const auto r = run_warm(srv.url(), 6, 2);
    const Summary s = summarize(r.records, {}, kPcts);
    ASSERT_EQ(s.n_timings, 6);
    EXPECT_DOUBLE_EQ(s.queue.at(50), 15);
    EXPECT_DOUBLE_EQ(s.prefill.at(50), 30);
    t.close(s.network.at(50), 15, "network part of TTFT");
  });
}

TEST(Accuracy, GoodputCountsRequestsMeetingEverySlo) {
  // Odd requests are slow to start (TTFT 120 ms): half meet ttft<=100ms.
  stub::Server srv([](int i, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = i % 2 ? 120 : 20;
    s.gap_ms = 5;
    s.n_tokens = 5;
    return s;
  });
  const auto r = run(config_for(srv.url(), 10, 1));
  auto slo = parse_slo("ttft=100ms,tpot=50ms");
  ASSERT_TRUE(slo.is_ok());
  const Summary s = summarize(r.records, *slo, kPcts);
  EXPECT_EQ(s.n_good, 5);
  EXPECT_NEAR(s.goodput, 5 / s.window_s, 1e-9);
}

TEST(Accuracy, ErrorKindsCountedExactly) {
  stub::Server srv([](int i, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = 5;
    s.gap_ms = 2;
    s.n_tokens = 6;
    switch (i % 6) {
      case 0: s.status = 500; break;
      case 1: s.status = 429; break;
      case 2: s.stall_after = 2; break;
      case 3: s.close_after = 3; break;
      case 4: s.error_event_after = 1; break;
      default: break;
    }
    return s;
  });
  RunConfig c = config_for(srv.url(), 24, 4);
  c.timeout_ms = 400;
  c.fail_fast = false;
  const auto r = run(c);
  const Summary s = summarize(r.records, {}, kPcts);
  EXPECT_EQ(s.n_requests, 24);
  EXPECT_EQ(s.n_completed, 4);
  EXPECT_EQ(s.n_failed, 20);
  EXPECT_EQ(s.errors.at("http_500"), 4);
  EXPECT_EQ(s.errors.at("http_429"), 4);
  EXPECT_EQ(s.errors.at("timeout"), 4);
  EXPECT_EQ(s.n_timeouts, 4);
  EXPECT_EQ(s.errors.at("disconnected"), 4);
  EXPECT_EQ(s.errors.at("stream_error"), 4);
  EXPECT_NE(s.error_examples.at("http_500").find("injected error 500"), std::string::npos) << s.error_examples.at("http_500");
  EXPECT_NE(s.error_examples.at("stream_error").find("injected stream error"), std::string::npos);
  EXPECT_EQ(s.errors.size(), 5u);
}

TEST(Accuracy, WarmupExcluded) {
  // The first 4 requests the server sees (the warm-up) are slow; measured ones are not.
  stub::Server srv([](int i, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = i < 4 ? 300 : 20;
    s.gap_ms = 2;
    s.n_tokens = 4;
    return s;
  });
  RunConfig c = config_for(srv.url(), 10, 2);
  c.warmup = 4;
  const auto r = run(c);
  EXPECT_EQ(srv.n_requests(), 14);
  EXPECT_EQ(r.warmup_records.size(), 4u);
  ASSERT_EQ(r.records.size(), 10u);
  const Summary s = summarize(r.records, {}, kPcts);
  EXPECT_EQ(s.n_requests, 10);
  EXPECT_EQ(s.n_completed, 10);
  EXPECT_LT(s.ttft.max, 100);
  EXPECT_EQ(s.total_output_tokens, 40);
  for (const auto& w : r.warmup_records) EXPECT_LE(w.t_end_us, r.t_start_us);
}

}  // namespace
}  // namespace bench_test
