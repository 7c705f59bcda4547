// `tachyon run --temp 0` reproduces llama.cpp's greedy continuations (the CLI contract),
// and the CLI's error behaviour on bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "golden_util.h"
#include "support/shell.h"

using namespace tachyon::golden;

namespace {

struct Proc {
  int code = -1;
  std::string out;
};

using tachyon::test::shell_quote;

// Runs the tachyon binary with args; captures stdout (stderr to the given file or null).
Proc run_cli(const std::vector<std::string>& args, const std::string& stderr_to = "/dev/null") {
  std::string cmd = shell_quote(TACHYON_BIN);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const tachyon::test::ShellRun r = tachyon::test::run_shell(cmd + " 2>" + stderr_to);
  return {r.exit_code, r.out};
}

std::vector<std::string> prompts() {
  std::ifstream f(kData + "/reference/prompts.txt");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    std::string p;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == 'n') {
        p += '\n';
        ++i;
      } else {
        p += line[i];
      }
    }
    out.push_back(p);
  }
  return out;
}

class GreedyGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(GreedyGolden, ReproducesLlamaCppGreedyTokens) {
  const std::string name = GetParam();
  const auto ref = load_json(kData + "/reference/" + name + ".ref.json");
  const auto ps = prompts();
  ASSERT_EQ(ps.size(), ref["cases"].size());
  for (size_t i = 0; i < ps.size(); ++i) {
    const auto& cs = ref["cases"][i];
    ASSERT_EQ(cs["prompt"].get<std::string>(), ps[i]);
    const Proc p = run_cli({"run", "-m", kData + "/models/" + name + ".gguf", "-p", ps[i], "-n", "32", "--temp", "0", "--json",
                            "-t", "2"});
    ASSERT_EQ(p.code, 0) << p.out;
    const auto out = nlohmann::json::parse(p.out);
    EXPECT_EQ(out["prompt_tokens"], cs["prompt_tokens"]) << name << " prompt " << i;
    EXPECT_EQ(out["tokens"], cs["greedy_tokens"]) << name << " prompt " << i;
    // The reference text is llama.cpp's detokenization of the continuation alone, which
    // drops the first token's leading space; `run` prints the continuation as it follows
    // the prompt, so it keeps it. (Byte-exact detokenization is the tokenizer tests' job.)
    std::string want_hex = cs["greedy_text_hex"].get<std::string>();
    std::string got_hex = out["text_hex"].get<std::string>();
    if (got_hex.rfind("20", 0) == 0 && want_hex.rfind("20", 0) != 0) got_hex = got_hex.substr(2);
    EXPECT_EQ(got_hex, want_hex) << name << " prompt " << i;
    EXPECT_GT(out["timings"]["predicted_tokens_per_s"].get<double>(), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(HighPrecision, GreedyGolden,
                         ::testing::Values("mini-llama-F16", "mini-llama-BF16", "mini-llama-Q8_0", "mini-qwen2-F16",
                                           "mini-qwen2-Q8_0", "mini-qwen3-F16", "mini-qwen3-Q8_0", "llama-spm32k-F16",
                                           "mini-gemma3-F16", "mini-gemma3-Q8_0", "mini-phi3-F16", "mini-phi3-Q8_0",
                                           "mini-qwen3moe-F16", "mini-qwen3moe-Q8_0"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (auto& ch : s)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

// Low-bit files: greedy paths may legitimately part where the top-2 margin is tiny;
// report how far they agree.
TEST(GreedyGoldenLowBit, ReportsAgreement) {
  for (const char* name : {"mini-llama-Q4_0", "mini-llama-Q4_K_M", "mini-llama-Q5_K_M", "mini-llama-Q6_K", "mini-qwen2-Q4_K_M",
                           "mini-qwen3-Q4_0", "mini-qwen3moe-Q4_K_M"}) {
    const auto ref = load_json(kData + "/reference/" + std::string(name) + ".ref.json");
    const auto ps = prompts();
    int agree = 0, total = 0;
    for (size_t i = 0; i < ps.size(); ++i) {
      const Proc p = run_cli({"run", "-m", kData + "/models/" + name + ".gguf", "-p", ps[i], "-n", "32", "--temp", "0", "--json"});
      ASSERT_EQ(p.code, 0);
      const auto got = nlohmann::json::parse(p.out)["tokens"];
      const auto& want = ref["cases"][i]["greedy_tokens"];
      size_t k = 0;
      while (k < got.size() && k < want.size() && got[k] == want[k]) ++k;
      agree += static_cast<int>(k);
      total += static_cast<int>(want.size());
    }
    std::printf("[greedy] %-20s %d/%d tokens agree before the first divergence\n", name, agree, total);
    EXPECT_GT(agree, total / 4);
  }
}

TEST(Cli, BadInputGivesOneClearLineAndExitCode2) {
  const std::string err = ::testing::TempDir() + "cli_err.txt";
  auto read_err = [&] {
    std::ifstream f(err);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  // truncated model
  const std::string cut = ::testing::TempDir() + "truncated.gguf";
  {
    std::ifstream in(kData + "/models/mini-llama-Q4_0.gguf", std::ios::binary);
    std::vector<char> buf(200000);
    in.read(buf.data(), buf.size());
    std::ofstream(cut, std::ios::binary).write(buf.data(), buf.size());
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"inspect", cut},
           {"run", "-m", cut, "-p", "hi"},
           {"logits", "-m", cut, "--tokens", "1,2"},
           {"run", "-m", "/nonexistent.gguf", "-p", "hi"},
           {"logits", "-m", kData + "/models/mini-llama-Q4_0.gguf", "--tokens", "1,99999"},
           {"logits", "-m", kData + "/models/mini-llama-Q4_0.gguf", "--tokens", "1,abc"},
           {"run", "-m", kData + "/models/mini-llama-Q4_0.gguf", "-p", "hi", "--top-p", "0"},
           {"run", "-m", kData + "/models/mini-llama-Q4_0.gguf", "-p", "hi", "-n", "5000"},
           {"inspect", kData + "/reference/prompts.txt"},
       }) {
    const Proc p = run_cli(args, err);
    const std::string e = read_err();
    EXPECT_EQ(p.code, 2) << args[0] << " " << args.back() << ": " << e;
    EXPECT_EQ(e.rfind("error: ", 0), 0u) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }
  const Proc p = run_cli({"inspect", cut}, err);
  EXPECT_NE(read_err().find("truncated.gguf"), std::string::npos);
}

TEST(Cli, LogitsAndInspectOutput) {
  const Proc p = run_cli({"logits", "-m", kData + "/models/mini-qwen2-Q8_0.gguf", "--tokens", "1,2,3", "--top-k", "5"});
  ASSERT_EQ(p.code, 0);
  const auto j = nlohmann::json::parse(p.out);
  ASSERT_EQ(j["positions"].size(), 3u);
  ASSERT_EQ(j["positions"][0]["top"].size(), 5u);
  EXPECT_TRUE(j["positions"][2].contains("logsumexp"));
  const Proc q = run_cli({"inspect", kData + "/models/mini-qwen2-Q8_0.gguf"});
  ASSERT_EQ(q.code, 0);
  EXPECT_NE(q.out.find("qwen2.attention.head_count"), std::string::npos);
  EXPECT_NE(q.out.find("blk.0.attn_q.bias"), std::string::npos);
}

}  // namespace
