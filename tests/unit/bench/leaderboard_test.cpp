// The compare leaderboard and its recommendation: the availability floor (default and
// given), what an excluded endpoint is told, and the order of the rows. Real runs against
// scripted stubs where the floor must see real failures; made-up summaries where the
// counts must be exact (timeouts among hundreds of requests).
#include <string>
#include <vector>

#include "bench/compare.h"
#include "bench/driver.h"
#include "test_util.h"

namespace bench_test {
namespace {

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

const LeaderRow& row_named(const Report& rep, const std::string& name) {
  for (const auto& r : rep.leaderboard)
    if (r.name == name) return r;
  ADD_FAILURE() << "no leaderboard row " << name;
  static const LeaderRow none;
  return none;
}

// A cheap endpoint that fails every second request and a pricier healthy one, compared
// once; the tests re-rank the same runs under other constraints.
class FlakyCheapVsHealthy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stub::Server flaky([](int i, const nlohmann::json&) {
      stub::Script s;
      s.ttft_ms = 3;
      s.gap_ms = 1;
      s.n_tokens = 8;
      if (i % 2) s.status = 503;  // a load error: the runner keeps sending
      return s;
    });
    stub::Server healthy([](int, const nlohmann::json&) {
      stub::Script s;
      s.ttft_ms = 3;
      s.gap_ms = 1;
      s.n_tokens = 8;
      return s;
    });
    BenchConfig c;
    c.command = "compare";
    for (auto* srv : {&flaky, &healthy}) {
      EndpointSpec e;
      e.url = *Url::parse(srv->url());
      e.name = srv == &flaky ? "flaky-cheap" : "healthy-pricey";
      e.model = "stub-model";
      // Per completed request the flaky one stays 10x cheaper even though half fail.
      e.price_input_per_m = srv == &flaky ? 0.1 : 1.0;
      e.price_output_per_m = srv == &flaky ? 0.4 : 4.0;
      c.endpoints.push_back(e);
    }
    c.workload = small_workload(8);
    c.run.num_requests = 12;
    c.run.load.concurrency = 2;
    c.run.fail_fast = false;
    c.check_models = false;
    c.recommend = *parse_constraints("ttft_p90<2000ms");
    auto rep = run_bench(c);
    ASSERT_TRUE(rep.is_ok()) << rep.status().message();
    rep_ = new Report(std::move(rep.value()));
  }
  static void TearDownTestSuite() { delete rep_; }
  static Report* rep_;
};
Report* FlakyCheapVsHealthy::rep_ = nullptr;

TEST_F(FlakyCheapVsHealthy, DefaultFloorExcludesTheFailingOne) {
  ASSERT_NE(rep_, nullptr);
  Report& rep = *rep_;
  build_leaderboard(rep, *parse_constraints("ttft_p90<2000ms"), Objective::kCheapest);
  ASSERT_EQ(rep.leaderboard.size(), 2u);
  // Its failures are real: half of its 12 requests, and it is the cheaper one per request.
  const Summary& fs = rep.runs[row_named(rep, "flaky-cheap").run_index].summary;
  EXPECT_EQ(fs.n_requests, 12);
  EXPECT_EQ(fs.n_failed, 6);
  EXPECT_LT(row_named(rep, "flaky-cheap").cost_per_request, row_named(rep, "healthy-pricey").cost_per_request);

  EXPECT_EQ(rep.leaderboard[0].name, "healthy-pricey");
  EXPECT_TRUE(rep.leaderboard[0].meets);
  const LeaderRow& flaky = rep.leaderboard[1];
  EXPECT_EQ(flaky.name, "flaky-cheap");
  EXPECT_FALSE(flaky.meets);
  EXPECT_TRUE(flaky.below_floor);
  ASSERT_EQ(flaky.violations.size(), 1u);  // it meets ttft_p90: only the floor excludes it
  EXPECT_EQ(flaky.violations[0], "error_rate 50.0% >= 1% (6/12 failed)");
  EXPECT_EQ(leader_row_status(flaky), "excluded: error_rate 50.0% >= 1% (6/12 failed)");

  EXPECT_EQ(rep.recommended.endpoint, "healthy-pricey");
  EXPECT_EQ(rep.recommended.availability_floor, "error_rate<1%, no timeouts");
  EXPECT_EQ(rep.recommended.floor_source, "default");
  EXPECT_EQ(rep.recommended.n_qualifying, 1);
  EXPECT_TRUE(has(rep.recommendation, "Recommendation: healthy-pricey, the cheapest")) << rep.recommendation;
  EXPECT_TRUE(has(rep.recommendation,
                  "of 1 of 2 endpoints meeting ttft_p90<2000ms and the availability floor error_rate<1%, no timeouts "
                  "(default)."))
      << rep.recommendation;
  EXPECT_TRUE(has(rep.recommendation, "\n  excluded flaky-cheap: error_rate 50.0% >= 1% (6/12 failed)"))
      << rep.recommendation;

  // The same in the JSON report, old fields kept.
  const nlohmann::json j = report_to_json(rep, {});
  const auto& lb = j["leaderboard"];
  EXPECT_EQ(lb[1]["meets_constraints"], false);
  EXPECT_EQ(lb[1]["below_availability_floor"], true);
  EXPECT_EQ(lb[1]["violations"], nlohmann::json::array({"error_rate 50.0% >= 1% (6/12 failed)"}));
  EXPECT_EQ(lb[0]["meets_constraints"], true);
  EXPECT_EQ(lb[0]["violations"], nlohmann::json::array());
  EXPECT_TRUE(j["recommendation"].is_string());
  const auto& d = j["recommendation_details"];
  EXPECT_EQ(d["endpoint"], "healthy-pricey");
  EXPECT_EQ(d["objective"], "cheapest");
  EXPECT_EQ(d["constraints"], nlohmann::json::array({"ttft_p90<2000ms"}));
  EXPECT_EQ(d["availability_floor"], "error_rate<1%, no timeouts");
  EXPECT_EQ(d["floor_source"], "default");
}

TEST_F(FlakyCheapVsHealthy, GivenErrorRateReplacesTheFloor) {
  ASSERT_NE(rep_, nullptr);
  Report& rep = *rep_;
  build_leaderboard(rep, *parse_constraints("ttft_p90<2000ms,error_rate<60%"), Objective::kCheapest);
  ASSERT_EQ(rep.leaderboard.size(), 2u);
  EXPECT_EQ(rep.leaderboard[0].name, "flaky-cheap");
  EXPECT_TRUE(rep.leaderboard[0].meets);
  EXPECT_FALSE(rep.leaderboard[0].below_floor);
  EXPECT_EQ(rep.leaderboard[1].name, "healthy-pricey");
  EXPECT_TRUE(rep.leaderboard[1].meets);  // qualifies too, only dearer
  EXPECT_EQ(rep.recommended.endpoint, "flaky-cheap");
  EXPECT_EQ(rep.recommended.availability_floor, "error_rate<60%");
  EXPECT_EQ(rep.recommended.floor_source, "given");
  EXPECT_EQ(rep.recommended.constraints, std::vector<std::string>{"ttft_p90<2000ms"});
  EXPECT_TRUE(has(rep.recommendation,
                  "Recommendation: flaky-cheap, the cheapest ($"))
      << rep.recommendation;
  EXPECT_TRUE(has(rep.recommendation, "of 2 of 2 endpoints meeting ttft_p90<2000ms and the availability floor "
                                      "error_rate<60% (given)."))
      << rep.recommendation;
  // A tighter given floor excludes it again, in the given terms.
  build_leaderboard(rep, *parse_constraints("error_rate<=40%"), Objective::kCheapest);
  EXPECT_EQ(rep.recommended.endpoint, "healthy-pricey");
  EXPECT_EQ(row_named(rep, "flaky-cheap").violations,
            std::vector<std::string>{"error_rate 50.0% > 40% (6/12 failed)"});
  EXPECT_TRUE(has(rep.recommendation, "meeting the availability floor error_rate<=40% (given)."))
      << rep.recommendation;
}

TEST_F(FlakyCheapVsHealthy, FastestAlsoAppliesTheFloor) {
  ASSERT_NE(rep_, nullptr);
  Report& rep = *rep_;
  build_leaderboard(rep, {}, Objective::kFastest);
  EXPECT_EQ(rep.recommended.endpoint, "healthy-pricey");
  EXPECT_EQ(rep.recommended.objective, "fastest");
  EXPECT_TRUE(has(rep.recommendation, "endpoints meeting the availability floor error_rate<1%, no timeouts (default)."))
      << rep.recommendation;
  EXPECT_TRUE(row_named(rep, "flaky-cheap").below_floor);
}

// A run with made-up counts and a price; latencies as given.
RunReport made_up(const std::string& name, int n_requests, int n_failed, int n_timeouts, double usd_per_request,
                  double ttft_ms) {
  RunReport r;
  r.endpoint.name = name;
  r.summary.n_requests = n_requests;
  r.summary.n_failed = n_failed;
  r.summary.n_timeouts = n_timeouts;
  r.summary.n_completed = n_requests - n_failed;
  r.summary.total_output_tokens = 100LL * r.summary.n_completed;
  r.cost_usd = usd_per_request * r.summary.n_completed;
  std::vector<double> t(static_cast<size_t>(r.summary.n_completed), ttft_ms);
  r.summary.ttft = distribution(t, kPcts);
  std::vector<double> e(static_cast<size_t>(r.summary.n_completed), ttft_ms * 3);
  r.summary.e2e = distribution(e, kPcts);
  return r;
}

// One timeout in 200 requests is 0.5%, under error_rate<1%: the default floor still
// excludes it (an endpoint that hangs), an explicit error_rate<1% admits it, and an
// explicit error_rate<=0% excludes it by its rate.
TEST(AvailabilityFloor, DefaultFloorRejectsTimeoutsUnlessErrorRateIsGiven) {
  Report rep;
  rep.runs.push_back(made_up("hangs-once", 200, 1, 1, 0.001, 50));
  rep.runs.push_back(made_up("steady", 200, 0, 0, 0.002, 50));
  build_leaderboard(rep, {}, Objective::kCheapest);
  EXPECT_EQ(rep.recommended.endpoint, "steady");
  const LeaderRow& h = row_named(rep, "hangs-once");
  EXPECT_TRUE(h.below_floor);
  EXPECT_EQ(h.violations, std::vector<std::string>{"1/200 requests timed out (the default floor allows no timeouts)"});
  EXPECT_TRUE(has(rep.recommendation, "\n  excluded hangs-once: 1/200 requests timed out")) << rep.recommendation;

  build_leaderboard(rep, *parse_constraints("error_rate<1%"), Objective::kCheapest);
  EXPECT_EQ(rep.recommended.endpoint, "hangs-once");
  EXPECT_EQ(rep.recommended.floor_source, "given");
  EXPECT_TRUE(has(rep.recommendation, "meeting the availability floor error_rate<1% (given).")) << rep.recommendation;

  build_leaderboard(rep, *parse_constraints("error_rate<=0%"), Objective::kCheapest);
  EXPECT_EQ(rep.recommended.endpoint, "steady");
  EXPECT_EQ(row_named(rep, "hangs-once").violations,
            std::vector<std::string>{"error_rate 0.5% > 0% (1/200 failed, 1 timed out)"});
  // A rate too small for one decimal still reads as a failure.
  rep.runs[0] = made_up("hangs-once", 10000, 1, 0, 0.001, 50);
  build_leaderboard(rep, *parse_constraints("error_rate<=0%"), Objective::kCheapest);
  EXPECT_EQ(row_named(rep, "hangs-once").violations,
            std::vector<std::string>{"error_rate 0.01% > 0% (1/10000 failed)"});
}

// Qualifying rows first (by the objective), then available rows that miss a constraint,
// then rows below the floor, however cheap; each says what it missed.
TEST(AvailabilityFloor, LeaderboardOrder) {
  Report rep;
  rep.runs.push_back(made_up("flaky", 100, 30, 0, 0.0001, 10));      // cheapest and fastest, 30% errors
  rep.runs.push_back(made_up("slow", 100, 0, 0, 0.001, 900));        // healthy, misses ttft_p90
  rep.runs.push_back(made_up("ok-dear", 100, 0, 0, 0.01, 100));      // qualifies
  rep.runs.push_back(made_up("ok-cheap", 100, 0, 0, 0.005, 200));    // qualifies, cheaper
  rep.runs.push_back(made_up("down", 4, 4, 0, 0.0, 0));              // nothing completed
  build_leaderboard(rep, *parse_constraints("ttft_p90<500ms"), Objective::kCheapest);
  std::vector<std::string> order;
  for (const auto& r : rep.leaderboard) order.push_back(r.name);
  EXPECT_EQ(order, (std::vector<std::string>{"ok-cheap", "ok-dear", "slow", "flaky", "down"}));
  EXPECT_EQ(leader_row_status(rep.leaderboard[0]), "ok");
  EXPECT_EQ(leader_row_status(row_named(rep, "slow")), "ttft_p90 = 900, wanted ttft_p90<500ms");
  EXPECT_EQ(leader_row_status(row_named(rep, "flaky")), "excluded: error_rate 30.0% >= 1% (30/100 failed)");
  EXPECT_EQ(leader_row_status(row_named(rep, "down")).rfind("excluded: no request completed", 0), 0u);
  EXPECT_TRUE(has(rep.recommendation, "\n  rejected slow: ttft_p90")) << rep.recommendation;
  EXPECT_TRUE(has(rep.recommendation, "\n  excluded flaky: error_rate 30.0%")) << rep.recommendation;

  // Nobody qualifies: the message names the floor and each endpoint's misses.
  Report bad;
  bad.runs.push_back(made_up("a", 10, 5, 0, 0.001, 10));
  bad.runs.push_back(made_up("b", 10, 1, 1, 0.0005, 10));
  build_leaderboard(bad, {}, Objective::kCheapest);
  EXPECT_TRUE(bad.recommended.endpoint.empty());
  EXPECT_EQ(bad.recommendation,
            "No endpoint meets the availability floor error_rate<1%, no timeouts (default):\n"
            "  b: excluded: error_rate 10.0% >= 1% (1/10 failed, 1 timed out)\n"
            "  a: excluded: error_rate 50.0% >= 1% (5/10 failed)");
}

}  // namespace
}  // namespace bench_test

namespace bench_test {
namespace {

// bench probe's JSON: alternating outcomes per endpoint, one file per run.
std::string probe_json(const std::string& name, const std::vector<bool>& oks, int hour) {
  nlohmann::json samples = nlohmann::json::array();
  for (size_t i = 0; i < oks.size(); ++i) {
    char at[32];
    std::snprintf(at, sizeof at, "2026-12-07T%02d:%02zu:00Z", hour, i);
    samples.push_back({{"endpoint", name}, {"at", at}, {"t_s", 60.0 * i}, {"ok", static_cast<bool>(oks[i])}});
  }
  return nlohmann::json{{"command", "probe"}, {"probe", {{"samples", samples}}}}.dump();
}

TEST(ProbeHistory, MergesFilesAndCountsStreaks) {
  std::map<std::string, ProbeHistory> h;
  ASSERT_TRUE(read_probe_history(probe_json("a", {true, false, false, true}, 10), "p1.json", &h));
  ASSERT_TRUE(read_probe_history(probe_json("a", {false, true}, 11), "p2.json", &h));
  ASSERT_EQ(h.count("a"), 1u);
  EXPECT_EQ(h["a"].n, 6);
  EXPECT_EQ(h["a"].n_ok, 3);
  EXPECT_EQ(h["a"].longest_failure_streak, 2);  // a streak does not continue across files
  EXPECT_EQ(h["a"].n_files, 2);
  EXPECT_EQ(h["a"].first_at, "2026-12-07T10:00:00Z");
  EXPECT_EQ(h["a"].last_at, "2026-12-07T11:01:00Z");
  EXPECT_DOUBLE_EQ(h["a"].span_s, 180 + 60);
  EXPECT_EQ(probe_history_text(h["a"]), "50.0% of 6 probes over 4 min, longest failure streak 2");
  // Not a probe file: a clear error.
  tachyon::Status st = read_probe_history("{\"runs\":[]}", "r.json", &h);
  EXPECT_FALSE(st);
  EXPECT_TRUE(has(st.message(), "r.json: no 'samples'")) << st.message();
  EXPECT_FALSE(read_probe_history("not json", "x.json", &h));
}

TEST_F(FlakyCheapVsHealthy, ProbeHistoryAvailabilityConstraint) {
  ASSERT_NE(rep_, nullptr);
  Report rep = *rep_;
  auto& healthy = rep.runs[row_named(rep, "healthy-pricey").run_index];
  auto& flaky = rep.runs[row_named(rep, "flaky-cheap").run_index];
  healthy.history = {};
  healthy.history.n = 100;
  healthy.history.n_ok = 97;  // 97% over time
  healthy.history.span_s = 6000;
  flaky.history = {};
  // The healthy one now misses availability>=99%; the flaky one has no history at all.
  build_leaderboard(rep, *parse_constraints("error_rate<60%,availability>=99%"), Objective::kCheapest);
  EXPECT_EQ(rep.recommended.endpoint, "");
  EXPECT_TRUE(has(leader_row_status(row_named(rep, "healthy-pricey")),
                  "availability 97.0% (97/100 probes), wanted availability>=99%"))
      << leader_row_status(row_named(rep, "healthy-pricey"));
  EXPECT_TRUE(has(leader_row_status(row_named(rep, "flaky-cheap")), "availability unknown (no probe history"));
  // At 95% the healthy one qualifies, and the recommendation names its history.
  build_leaderboard(rep, *parse_constraints("availability>=95%"), Objective::kCheapest);
  EXPECT_EQ(rep.recommended.endpoint, "healthy-pricey");
  EXPECT_TRUE(has(rep.recommendation, "Probe history: 97.0% of 100 probes over 1.7 h")) << rep.recommendation;
  // The text and JSON reports carry the column / field.
  const std::string text = summary_text(rep, {});
  EXPECT_TRUE(has(text, "probes ok")) << text;
  EXPECT_TRUE(has(text, "97.0% of 100")) << text;
  const nlohmann::json j = report_to_json(rep, {});
  bool found = false;
  for (const auto& r : j["runs"])
    if (r.contains("probe_history")) found = r["probe_history"]["availability_pct"] == 97.0;
  EXPECT_TRUE(found);
}

// --reference: the verify hook runs once per endpoint after the load; the reports and the
// recommendation say which file each endpoint serves.
TEST(CompareVerify, HookResultsReachEveryReport) {
  stub::Server srv([](int, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = 2;
    s.gap_ms = 1;
    s.n_tokens = 4;
    return s;
  });
  BenchConfig c;
  c.command = "compare";
  for (const char* name : {"one", "two"}) {
    EndpointSpec e;
    e.url = *Url::parse(srv.url());
    e.name = name;
    e.model = "stub-model";
    c.endpoints.push_back(e);
  }
  c.workload = small_workload(4);
  c.run.num_requests = 4;
  c.check_models = false;
  int calls = 0;
  c.verify = [&](const EndpointSpec& ep) {
    ++calls;
    if (ep.name == "two") return nlohmann::json{{"error", "endpoint returned 404"}};
    return nlohmann::json{{"mode", "logprobs"},
                          {"match", "/models/m-Q8_0.gguf"},
                          {"decided_by", "mean |dlogprob| over 10 compared logprobs: m-Q8_0.gguf 0.0000 < 0.5000 x m-F16.gguf 0.0200"},
                          {"candidates",
                           {{{"path", "/models/m-Q8_0.gguf"}, {"distance", 0.0}, {"verdict", "match"}},
                            {{"path", "/models/m-F16.gguf"}, {"distance", 0.02}, {"verdict", "no match"}}}}};
  };
  c.recommend = *parse_constraints("ttft_p90<5000ms");
  auto rep = run_bench(c);
  ASSERT_TRUE(rep.is_ok()) << rep.status().message();
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(rep->verify.size(), 2u);
  EXPECT_EQ(verify_cell(*rep, "one"), "m-Q8_0.gguf");
  EXPECT_EQ(verify_cell(*rep, "two"), "error");
  const std::string text = summary_text(*rep, {});
  EXPECT_TRUE(has(text, "verify one: serves m-Q8_0.gguf (mean |dlogprob|")) << text;
  EXPECT_TRUE(has(text, "verify two: error: endpoint returned 404")) << text;
  const std::string html = render_html(*rep, {});
  EXPECT_TRUE(has(html, "<th class=\"l\">serves (verify)</th>"));
  EXPECT_TRUE(has(html, "class=\"verify-verdict\" data-endpoint=\"one\">serves <b>m-Q8_0.gguf</b>"));
  EXPECT_TRUE(has(html, "decided by mean |dlogprob| over 10 compared logprobs"));
  EXPECT_TRUE(has(html, "error: endpoint returned 404"));
  EXPECT_EQ(report_to_json(*rep, {})["verify"].size(), 2u);
  if (rep->recommended.endpoint == "one")
    EXPECT_TRUE(has(rep->recommendation, "bench verify: it serves m-Q8_0.gguf.")) << rep->recommendation;
}

}  // namespace
}  // namespace bench_test
