// The HTML report: a DOM check of the generated file (always), and headless Chromium
// rendering it to a DOM dump and a screenshot (when /usr/bin/chromium is installed;
// scripts/setup.sh installs it).
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "bench/driver.h"
#include "test_util.h"

namespace bench_test {
namespace {

namespace fs = std::filesystem;

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class HtmlReport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("tachyon_bench_html_" + std::to_string(getpid())));
    fs::create_directories(*dir_);
    stub::Server a([](int i, const nlohmann::json&) {
      stub::Script s;
      s.ttft_ms = 5 + i % 7;
      s.gap_ms = 1;
      s.n_tokens = 6;
      if (i % 9 == 8) s.status = 500;
      return s;
    });
    stub::Server b([](int i, const nlohmann::json&) {
      stub::Script s;
      s.ttft_ms = 20 + i % 5;
      s.gap_ms = 2;
      s.n_tokens = 6;
      return s;
    });
    BenchConfig c;
    c.command = "compare";
    for (auto* srv : {&a, &b}) {
      EndpointSpec e;
      e.url = *Url::parse(srv->url());
      e.name = srv == &a ? "alpha <fast>" : "beta";
      e.model = "stub-model";
      e.price_input_per_m = srv == &a ? 1 : 0.5;
      e.price_output_per_m = 2;
      c.endpoints.push_back(e);
    }
    c.workload = small_workload(6);
    c.run.num_requests = 18;
    c.run.fail_fast = false;
    c.sweep = *parse_sweep("concurrency=1,3");
    c.recommend = *parse_constraints("ttft_p90<15ms");
    c.report.slo = *parse_slo("ttft=15ms");
    html_path_ = new std::string((*dir_ / "report.html").string());
    c.output_html = *html_path_;
    auto rep = run_bench(c);
    ASSERT_TRUE(rep.is_ok()) << rep.status().message();
    n_records_ = 0;
    for (const auto& r : rep->runs) n_records_ += r.result.records.size();
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete html_path_;
  }
  static fs::path* dir_;
  static std::string* html_path_;
  static size_t n_records_;
};
fs::path* HtmlReport::dir_ = nullptr;
std::string* HtmlReport::html_path_ = nullptr;
size_t HtmlReport::n_records_ = 0;

TEST_F(HtmlReport, DomHasEveryChartAndNoExternalReference) {
  const std::string h = slurp(*html_path_);
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.rfind("<!DOCTYPE html>", 0), 0u);
  // 4 runs (2 endpoints x 2 sweep points): a TTFT and a TPOT histogram each, 2 sweeps of
  // 4 charts, 4 timelines, 1 leaderboard chart.
  EXPECT_EQ(count(h, "data-chart=\"ttft-hist\""), 4u);
  EXPECT_EQ(count(h, "data-chart=\"tpot-hist\""), 4u);
  EXPECT_EQ(count(h, "data-chart=\"sweep-throughput\""), 2u);
  EXPECT_EQ(count(h, "data-chart=\"sweep-ttft\""), 2u);
  EXPECT_EQ(count(h, "data-chart=\"sweep-latency\""), 2u);
  EXPECT_EQ(count(h, "data-chart=\"sweep-e2e\""), 2u);
  EXPECT_EQ(count(h, "data-chart=\"timeline\""), 4u);
  EXPECT_EQ(count(h, "data-chart=\"leaderboard\""), 1u);
  EXPECT_EQ(count(h, "<svg"), count(h, "</svg>"));
  EXPECT_EQ(count(h, "<table"), count(h, "</table>"));
  // Every request is drawn in a timeline: failed ones as one red bar.
  const size_t n_fail = count(h, "class=\"tl-fail\"");
  EXPECT_GT(n_fail, 0u);
  EXPECT_EQ(count(h, "class=\"tl-wait\"") + n_fail, n_records_);
  EXPECT_GT(count(h, "class=\"bar\""), 8u);
  // Self-contained: no scripts, no fetched resources.
  for (const char* bad : {"<script", "src=", "href=", "url(", "@import", "<link", "<iframe"})
    EXPECT_EQ(h.find(bad), std::string::npos) << bad;
  // Names are escaped.
  EXPECT_NE(h.find("alpha &lt;fast&gt;"), std::string::npos);
  EXPECT_EQ(h.find("alpha <fast>"), std::string::npos);
  EXPECT_NE(h.find("id=\"recommendation\""), std::string::npos);
  // alpha fails one request in nine: below the default availability floor, and its row says so.
  EXPECT_NE(h.find("the availability floor error_rate&lt;1%, no timeouts (default)"), std::string::npos);
  EXPECT_TRUE(std::regex_search(h, std::regex(R"(excluded: error_rate [0-9.]+% &gt;= 1% \(\d+/18 failed\))")));
}

TEST_F(HtmlReport, ChromiumRendersCharts) {
  const char* chromium = "/usr/bin/chromium";
  if (access(chromium, X_OK) != 0) GTEST_SKIP() << "chromium not installed (scripts/setup.sh installs it)";
  const fs::path profile = *dir_ / "profile";
  const std::string flags = std::string(chromium) +
                            " --headless --no-sandbox --disable-gpu --disable-background-networking"
                            " --disable-component-update --no-first-run --user-data-dir=" + profile.string();
  const std::string dom = (*dir_ / "dom.html").string(), png = (*dir_ / "shot.png").string();
  int st = std::system(("timeout -k 5 90 " + flags + " --dump-dom file://" + *html_path_ + " >" + dom + " 2>/dev/null").c_str());
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "chromium --dump-dom failed: " << st;
  const std::string d = slurp(dom);
  // The browser's DOM (re-serialized after parsing) still holds every chart with its marks.
  EXPECT_EQ(count(d, "data-chart=\"ttft-hist\""), 4u);
  EXPECT_EQ(count(d, "data-chart=\"timeline\""), 4u);
  EXPECT_EQ(count(d, "data-chart=\"sweep-throughput\""), 2u);
  EXPECT_EQ(count(d, "data-chart=\"leaderboard\""), 1u);
  EXPECT_GT(count(d, "<rect"), n_records_);
  EXPECT_GT(count(d, "<polyline"), 4u);
  st = std::system(("timeout -k 5 90 " + flags + " --hide-scrollbars --window-size=1280,2400 --screenshot=" + png +
                    " file://" + *html_path_ + " >/dev/null 2>&1").c_str());
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "chromium --screenshot failed: " << st;
  const std::string img = slurp(png);
  ASSERT_GT(img.size(), 8u);
  EXPECT_EQ(img.substr(1, 3), "PNG");
  // A page of charts compresses far worse than a blank or text-only page (~10 KB).
  EXPECT_GT(img.size(), 40'000u) << "screenshot suspiciously small: " << img.size() << " bytes";
}

}  // namespace
}  // namespace bench_test
