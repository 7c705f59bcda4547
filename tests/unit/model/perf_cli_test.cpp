// `tachyon perf --phases` end to end on a small model, when the binary has been built (the
// unit-test target does not depend on it; the test is skipped otherwise).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "support/shell.h"

namespace {

struct CliResult {
  int exit_code = -1;
  std::string out;
};

CliResult run_perf(const std::string& args) {
  const tachyon::test::ShellRun r =
      tachyon::test::run_shell(std::string(TACHYON_BIN) + " perf " + args + " 2>/dev/null");
  return {r.exit_code, r.out};
}

const std::string kModel = std::string(TACHYON_SHARED_DATA) + "/models/mini-llama-Q4_K_M.gguf";
const char* const kPhases[] = {"norm+quant", "q/k/v",  "rope+kv", "attention", "quant o",    "wo",
                               "ffn norm",   "gate/up", "swiglu",  "down",      "final norm", "output"};

TEST(PerfCli, PhasesReportWhereEachTestsStepsWent) {
  if (!std::filesystem::exists(TACHYON_BIN)) GTEST_SKIP() << "tachyon binary not built: " << TACHYON_BIN;
  const CliResult j = run_perf("-m " + kModel + " -p 8 -n 4 --batch 2 -r 1 -t 2 --phases --json");
  ASSERT_EQ(j.exit_code, 0) << j.out;
  const auto doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["results"].size(), 2u);  // pp8, tg4 x2
  for (const auto& res : doc["results"]) {
    ASSERT_TRUE(res.contains("phases_ms_per_step")) << res.dump();
    const auto& ph = res["phases_ms_per_step"];
    EXPECT_EQ(ph.size(), std::size(kPhases));
    double total = 0;
    for (const char* name : kPhases) {
      ASSERT_TRUE(ph.contains(name)) << name;
      EXPECT_GE(ph[name].get<double>(), 0.0) << name;
      total += ph[name].get<double>();
    }
    EXPECT_GT(ph["attention"].get<double>(), 0.0);
    EXPECT_GT(ph["gate/up"].get<double>(), 0.0);
    EXPECT_GT(total, 0.0);
  }
  // text form: a block of phase lines under each test's line
  const CliResult t = run_perf("-m " + kModel + " -p 8 -n 4 -r 1 -t 2 --phases");
  ASSERT_EQ(t.exit_code, 0);
  size_t blocks = 0;
  for (size_t at = 0; (at = t.out.find("ms/step", at)) != std::string::npos; ++at) ++blocks;
  EXPECT_EQ(blocks, 2u) << t.out;
  EXPECT_NE(t.out.find("attention"), std::string::npos) << t.out;
}

// --mem-budget through the CLI (perf, run): each test reports the expert cache's hit
// rate, bytes per token and I/O roofline; run's greedy tokens do not change.
TEST(PerfCli, MemBudgetReportsTheExpertCacheAndKeepsTheTokens) {
  if (!std::filesystem::exists(TACHYON_BIN)) GTEST_SKIP() << "tachyon binary not built: " << TACHYON_BIN;
  const std::string moe = std::string(TACHYON_SHARED_DATA) + "/models/mini-qwen3moe-Q8_0.gguf";
  const CliResult j = run_perf("-m " + moe + " -p 8 -n 4 -r 1 -t 2 --mem-budget 1M --json");
  ASSERT_EQ(j.exit_code, 0) << j.out;
  const auto doc = nlohmann::json::parse(j.out);
  ASSERT_TRUE(doc.contains("expert_cache")) << j.out;
  EXPECT_EQ(doc["expert_cache"]["budget_bytes"].get<int64_t>(), 1 << 20);
  EXPECT_GT(doc["expert_cache"]["bytes_read"].get<double>(), 0.0);
  for (const auto& res : doc["results"]) {
    ASSERT_TRUE(res.contains("expert_cache")) << res.dump();
    EXPECT_GE(res["expert_cache"]["hit_rate"].get<double>(), 0.0);
    EXPECT_GT(res["expert_cache"]["read_bandwidth_bytes_per_s"].get<double>(), 0.0);
  }
  const auto run = [&](const std::string& extra) {
    const auto r = tachyon::test::run_shell(std::string(TACHYON_BIN) + " run -m " + moe +
                                            " -p 'def main():' -n 12 --temp 0 -t 2 --json " + extra + " 2>/dev/null");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return nlohmann::json::parse(r.out);
  };
  const auto plain = run(""), budget = run("--mem-budget 1M");
  EXPECT_EQ(plain["tokens"], budget["tokens"]);
  EXPECT_TRUE(budget.contains("expert_cache"));
  EXPECT_FALSE(plain.contains("expert_cache"));
  const auto bad = tachyon::test::run_shell(std::string(TACHYON_BIN) + " run -m " + moe +
                                            " -p x -n 1 --mem-budget 12K 2>&1");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("below one expert"), std::string::npos) << bad.out;
}

}  // namespace
