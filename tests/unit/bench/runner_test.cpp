// Arrival processes, keep-alive, multi-turn sessions and shared-prefix workloads against
// the stub.
#include <map>
#include <mutex>
#include <set>

#include "base/clock.h"
#include "test_util.h"

namespace bench_test {
namespace {

stub::Script quick(int n = 3) {
  stub::Script s;
  s.ttft_ms = 2;
  s.gap_ms = 1;
  s.n_tokens = n;
  return s;
}

TEST(Runner, KeepAliveReusesConnections) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(); });
  const auto r = run(config_for(srv.url(), 30, 3));
  EXPECT_EQ(summarize(r.records, {}, kPcts).n_completed, 30);
  EXPECT_EQ(srv.n_connections(), 3);
  EXPECT_EQ(r.client.n_connections_opened, 3);
  EXPECT_EQ(r.client.n_connections_reused, 27);
  EXPECT_EQ(r.max_in_flight, 3);
}

TEST(Runner, ReconnectsWhenServerClosesAfterEachResponse) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s = quick();
    s.connection_close = true;  // EOF-delimited body, no chunked encoding
    return s;
  });
  const auto r = run(config_for(srv.url(), 6, 2));
  EXPECT_EQ(summarize(r.records, {}, kPcts).n_completed, 6);
  EXPECT_EQ(srv.n_connections(), 6);
}

TEST(Runner, OpenLoopPoissonRate) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(2); });
  RunConfig c = config_for(srv.url(), 200, 0);
  c.load.open_loop = true;
  c.load.rate = 200;
  const auto r = run(c);
  ASSERT_EQ(r.records.size(), 200u);
  int64_t first = INT64_MAX, last = 0;
  for (const auto& rec : r.records) first = std::min(first, rec.t_send_us), last = std::max(last, rec.t_send_us);
  const double rate = 199 / ((last - first) / 1e6);
  EXPECT_NEAR(rate, 200, 50) << "achieved arrival rate";
  EXPECT_GT(r.max_in_flight, 0);
}

TEST(Runner, OpenLoopCapLimitsInFlight) {
  stub::Server srv([](int, const nlohmann::json&) { return quick(5); });
  RunConfig c = config_for(srv.url(), 20, 5);
  c.load.open_loop = true;
  c.load.rate = std::numeric_limits<double>::infinity();
  const auto r = run(c);
  EXPECT_EQ(summarize(r.records, {}, kPcts).n_completed, 20);
  EXPECT_EQ(r.max_in_flight, 5);
}

TEST(Runner, DurationBoundsTheRun) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s = quick(2);
    s.ttft_ms = 50;
    return s;
  });
  RunConfig c = config_for(srv.url(), 0, 2);
  c.duration_s = 0.5;
  const int64_t t0 = tachyon::now_us();
  const auto r = run(c);
  const double el = (tachyon::now_us() - t0) / 1e6;
  EXPECT_LT(el, 1.0);
  EXPECT_GE(r.records.size(), 10u);
  EXPECT_LE(r.records.size(), 24u);
}

TEST(Runner, OverloadAnswersDoNotStopTheRun) {
  // 429s before the first success are load, not a broken endpoint: keep going.
  stub::Server srv([](int i, const nlohmann::json&) {
    stub::Script s = quick();
    if (i < 5) s.status = i % 2 ? 429 : 503;
    return s;
  });
  const auto r = run(config_for(srv.url(), 10, 1));
  EXPECT_FALSE(r.aborted) << r.abort_reason;
  EXPECT_EQ(r.records.size(), 10u);
  EXPECT_EQ(summarize(r.records, {}, kPcts).n_completed, 5);
}

TEST(Runner, ConfigErrorsStopTheRunEarly) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.status = 401;
    return s;
  });
  const auto r = run(config_for(srv.url(), 50, 1));
  EXPECT_TRUE(r.aborted);
  EXPECT_EQ(r.records.size(), 3u);
  EXPECT_NE(r.abort_reason.find("HTTP 401"), std::string::npos) << r.abort_reason;
}

struct Capture {
  std::mutex mu;
  std::vector<nlohmann::json> bodies;
};

TEST(Runner, MultiTurnResendsHistory) {
  Capture cap;
  stub::Server srv([&](int i, const nlohmann::json& b) {
    std::lock_guard<std::mutex> lk(cap.mu);
    cap.bodies.push_back(b);
    return quick(2 + i % 3);
  });
  WorkloadConfig w = small_workload();
  w.turns = 3;
  const auto r = run(config_for(srv.url(), 6, 1), w);
  ASSERT_EQ(cap.bodies.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const auto& msgs = cap.bodies[i]["messages"];
    EXPECT_EQ(msgs.size(), 1 + 2 * (i % 3)) << i;
    if (i % 3 > 0) {
      // The previous turn's user message and the answer it got, word for word.
      const auto& prev = cap.bodies[i - 1]["messages"];
      EXPECT_EQ(msgs[msgs.size() - 3], prev[prev.size() - 1]);
      EXPECT_EQ(msgs[msgs.size() - 2]["role"], "assistant");
      EXPECT_EQ(msgs[msgs.size() - 2]["content"], r.records[i - 1].output_text);
    }
  }
  EXPECT_EQ(r.records[4].session, 1);
  EXPECT_EQ(r.records[4].turn, 1);
}

TEST(Runner, PrefixGroupsSharePrefix) {
  Capture cap;
  stub::Server srv([&](int, const nlohmann::json& b) {
    std::lock_guard<std::mutex> lk(cap.mu);
    cap.bodies.push_back(b);
    return quick();
  });
  WorkloadConfig w = small_workload();
  w.prefix_groups = 2;
  w.prefix_group_size = 3;
  w.prefix_len = 20;
  const auto r = run(config_for(srv.url(), 6, 2), w);
  ASSERT_EQ(cap.bodies.size(), 6u);
  std::map<std::string, int> prefixes;
  std::set<std::string> whole;
  for (const auto& b : cap.bodies) {
    const std::string content = b["messages"][0]["content"];
    const size_t nl = content.find('\n');
    ASSERT_NE(nl, std::string::npos);
    ++prefixes[content.substr(0, nl)];
    whole.insert(content);
  }
  ASSERT_EQ(prefixes.size(), 2u);
  for (const auto& [p, n] : prefixes) EXPECT_EQ(n, 3);
  EXPECT_EQ(whole.size(), 6u);  // the suffixes differ
  std::map<int, int> groups;
  for (const auto& rec : r.records) ++groups[rec.group];
  EXPECT_EQ(groups.size(), 2u);
}

TEST(Runner, CompletionsApi) {
  Capture cap;
  stub::Server srv([&](int, const nlohmann::json& b) {
    std::lock_guard<std::mutex> lk(cap.mu);
    cap.bodies.push_back(b);
    return quick(4);
  });
  RunConfig c = config_for(srv.url(), 3, 1);
  c.endpoint.api = Api::kCompletions;
  c.request.ignore_eos = true;
  const auto r = run(c);
  const Summary s = summarize(r.records, {}, kPcts);
  EXPECT_EQ(s.n_completed, 3);
  EXPECT_EQ(s.total_output_tokens, 12);
  ASSERT_FALSE(cap.bodies.empty());
  EXPECT_TRUE(cap.bodies[0]["prompt"].is_string());
  EXPECT_EQ(cap.bodies[0]["ignore_eos"], true);
  EXPECT_EQ(cap.bodies[0]["stream_options"]["include_usage"], true);
  EXPECT_EQ(r.records[0].served_model, "stub-model");
}

}  // namespace
}  // namespace bench_test
