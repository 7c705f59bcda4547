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

}  // namespace
