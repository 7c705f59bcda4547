// `tachyon perplexity` against llama-perplexity's figures on the trained code-tiny models
// (reference/perplexity.json: ctx 512 over text/code-heldout.py.txt), and its KL divergence
// report on a pair of files whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "golden_util.h"
#include "support/shell.h"

namespace {

using tachyon::golden::kData;
using tachyon::golden::load_json;
using tachyon::test::run_shell;
using tachyon::test::shell_quote;

const std::string kText = kData + "/text/code-heldout.py.txt";

tachyon::test::ShellRun perplexity(const std::string& args) {
  return run_shell(std::string(TACHYON_BIN) + " perplexity -t 2 --json " + args + " 2>&1");
}

nlohmann::json last_json_line(const std::string& out) {
  const size_t at = out.rfind("\n{");
  return nlohmann::json::parse(at == std::string::npos ? out : out.substr(at + 1));
}

class PerplexityGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(PerplexityGolden, AgreesWithLlamaPerplexity) {
  const std::string file = GetParam() + ".gguf";
  const auto ref = load_json(kData + "/reference/perplexity.json")["results"][file];
  const auto r = perplexity("-m " + shell_quote(kData + "/models/" + file) + " -f " + shell_quote(kText) + " -c 512");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto got = last_json_line(r.out);
  const double ppl = got["ppl"].get<double>(), want = ref["ppl"].get<double>();
  std::printf("[perplexity] %-22s tachyon %.4f +/- %.5f  llama.cpp %.4f +/- %.5f  (%.3f%%, %d chunks)\n", file.c_str(), ppl,
              got["ppl_stderr"].get<double>(), want, ref["ppl_stderr"].get<double>(), 100 * (ppl / want - 1),
              got["chunks"].get<int>());
  EXPECT_EQ(got["chunks"], ref["chunks"]);
  EXPECT_LE(std::fabs(ppl / want - 1), 0.005);
}

INSTANTIATE_TEST_SUITE_P(CodeTiny, PerplexityGolden,
                         ::testing::Values("code-tiny-F16", "code-tiny-Q8_0", "code-tiny-draft-F16", "code-tiny-draft-Q8_0"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

// KL divergence of a model from itself is ~0 (only the f16 rounding of the saved
// log-probabilities) with full top-1 agreement; Q8_0 weights of the same model sit
// measurably but slightly away from F16; a file saved with another context is refused.
TEST(PerplexityKl, SelfIsZeroQ8IsCloseMismatchRefused) {
  const std::string dir = ::testing::TempDir() + "tachyon_kl";
  std::filesystem::create_directories(dir);
  const std::string base = dir + "/draft-f16.logp";
  const std::string f16 = shell_quote(kData + "/models/code-tiny-draft-F16.gguf");
  const std::string q8 = shell_quote(kData + "/models/code-tiny-draft-Q8_0.gguf");
  const std::string common = " -f " + shell_quote(kText) + " -c 256 --chunks 6";
  auto r = perplexity("-m " + f16 + common + " --save-logits " + shell_quote(base));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const double base_ppl = last_json_line(r.out)["ppl"];

  r = perplexity("-m " + f16 + common + " --kl-base " + shell_quote(base));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto kl = last_json_line(r.out)["kl"];
  EXPECT_LT(kl["kld_mean"].get<double>(), 1e-5) << kl.dump();
  EXPECT_EQ(kl["top1_agreement"].get<double>(), 1.0);
  EXPECT_NEAR(kl["base_ppl"].get<double>(), base_ppl, 1e-3 * base_ppl);

  r = perplexity("-m " + q8 + common + " --kl-base " + shell_quote(base));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  kl = last_json_line(r.out)["kl"];
  std::printf("[kl] code-tiny-draft Q8_0 vs F16: mean KLD %.6f, top-1 %.4f, rms dp %.5f\n", kl["kld_mean"].get<double>(),
              kl["top1_agreement"].get<double>(), kl["delta_p_rms"].get<double>());
  EXPECT_GT(kl["kld_mean"].get<double>(), 1e-6);
  EXPECT_LT(kl["kld_mean"].get<double>(), 0.01);
  EXPECT_GT(kl["top1_agreement"].get<double>(), 0.95);

  r = perplexity("-m " + q8 + " -f " + shell_quote(kText) + " -c 128 --chunks 6 --kl-base " + shell_quote(base));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("ctx 256"), std::string::npos) << r.out;
  std::filesystem::remove_all(dir);
}

}  // namespace
