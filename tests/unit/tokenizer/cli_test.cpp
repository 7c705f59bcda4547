// `tachyon tokenize` / `tachyon detokenize` contract: output formats and exit codes.
// Skipped when the tachyon binary has not been built.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "support/shell.h"
#include "tok_test_util.h"

namespace tachyon::tok::testing {
namespace {

struct CliResult {
  int rc = -1;
  std::string out;
  std::string err;
};

using tachyon::test::shell_quote;

CliResult run(const std::string& args) {
  CliResult r;
  const std::string err_path = ::testing::TempDir() + "tok_cli_stderr.txt";
  const tachyon::test::ShellRun sr =
      tachyon::test::run_shell(shell_quote(TACHYON_BIN) + " " + args + " 2>" + shell_quote(err_path));
  r.rc = sr.exit_code;
  r.out = sr.out;
  r.err = read_file(err_path);
  return r;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(TACHYON_BIN)) GTEST_SKIP() << "tachyon binary not built: " << TACHYON_BIN;
  }
  const std::string model = data_dir() + "/models/mini-llama-F16.gguf";
};

TEST_F(Cli, TokenizeHumanAndJson) {
  const Tokenizer* tok = cached(model);
  ASSERT_NE(tok, nullptr);
  const std::string text = "Hello, world!\nfoo";
  const auto ids = tok->encode(text, true, false);

  CliResult r = run("tokenize -m " + shell_quote(model) + " --text " + shell_quote(text));
  ASSERT_EQ(r.rc, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  size_t k = 0;
  while (std::getline(lines, line)) {
    ASSERT_LT(k, ids.size());
    const size_t tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    EXPECT_EQ(std::stoi(line.substr(0, tab)), ids[k]);
    EXPECT_EQ(line[tab + 1], '\'');
    EXPECT_EQ(line.back(), '\'');
    ++k;
  }
  EXPECT_EQ(k, ids.size());

  r = run("tokenize -m " + shell_quote(model) + " --text " + shell_quote(text) + " --json --no-bos");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("tokens").get<std::vector<int32_t>>(), tok->encode(text, false, false));
  EXPECT_EQ(j.at("pieces").size(), j.at("tokens").size());

  r = run("tokenize -m " + shell_quote(model) + " --text '<s>x' --special --json --no-bos");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("tokens")[0].get<int32_t>(), tok->bos_id());

  const std::string path = ::testing::TempDir() + "tok_cli_input.txt";
  {
    std::ofstream f(path, std::ios::binary);
    f << text;
  }
  r = run("tokenize -m " + shell_quote(model) + " --file " + shell_quote(path) + " --json");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("tokens").get<std::vector<int32_t>>(), ids);
}

TEST_F(Cli, Detokenize) {
  const Tokenizer* tok = cached(model);
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("Once upon a time", false, false);
  std::string list;
  for (int32_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  CliResult r = run("detokenize -m " + shell_quote(model) + " --tokens " + list);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "Once upon a time\n");
}

TEST_F(Cli, BadInputIsExitCode2WithOneLine) {
  const auto one_line = [](const std::string& s) {
    return !s.empty() && s.find('\n') == s.size() - 1;
  };
  const std::vector<std::string> bad = {
      "detokenize -m " + shell_quote(model) + " --tokens 1,99999",          // id outside the vocab
      "detokenize -m " + shell_quote(model) + " --tokens 1,x",              // not an id
      "tokenize -m /nonexistent.gguf --text hi",                      // missing file
      "tokenize -m " + shell_quote(data_dir() + "/README.md") + " --text hi",  // not a GGUF
      "tokenize -m " + shell_quote(model) + " --file /nonexistent.txt",     // missing text file
  };
  for (const std::string& args : bad) {
    const CliResult r = run(args);
    EXPECT_EQ(r.rc, 2) << args;
    EXPECT_TRUE(one_line(r.err)) << args << ": '" << r.err << "'";
    EXPECT_TRUE(r.out.empty()) << args;
  }
  EXPECT_EQ(run("tokenize -m " + shell_quote(model)).rc, 2);  // neither --text nor --file
}

}  // namespace
}  // namespace tachyon::tok::testing
