// `tachyon chat-template` end to end, when the binary has been built (the unit-test target
// does not depend on it; the test is skipped otherwise).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "support/shell.h"

namespace {

namespace fs = std::filesystem;

struct CliResult {
  int exit_code = -1;
  std::string out;
};

CliResult run(const std::string& args) {
  const tachyon::test::ShellRun r =
      tachyon::test::run_shell(std::string(TACHYON_BIN) + " chat-template " + args + " 2>/dev/null");
  return {r.exit_code, r.out};
}

class ChatCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(TACHYON_BIN)) GTEST_SKIP() << "tachyon binary not built: " << TACHYON_BIN;
    dir_ = fs::temp_directory_path() / ("tachyon_chat_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

const std::string kTemplates = std::string(TACHYON_SHARED_DATA) + "/chat-templates/";

TEST_F(ChatCli, RendersMessagesObjectWithTemplateFile) {
  std::string msgs =
      write("m.json", R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})");
  CliResult r = run("--template " + kTemplates + "Qwen-Qwen2.5-7B-Instruct.jinja --messages " + msgs);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out,
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST_F(ChatCli, ArrayOfMessagesToolsFileAndFlag) {
  std::string tmpl =
      write("t.jinja", "{{ bos_token }}{{ messages|length }}|{{ tools|tojson }}|{{ add_generation_prompt }}");
  std::string msgs = write("m.json", R"([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])");
  std::string tools = write("tools.json", R"([{"type": "function", "function": {"name": "f"}}])");
  CliResult r = run("--template " + tmpl + " --messages " + msgs + " --tools " + tools + " --add-generation-prompt");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, R"(<s>2|[{"type": "function", "function": {"name": "f"}}]|True)");
}

TEST_F(ChatCli, ErrorsExitWithTwo) {
  std::string msgs = write("m.json", R"([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])");
  // template raise_exception
  EXPECT_EQ(run("--template " + kTemplates + "google-gemma-2-2b-it.jinja --messages " + msgs).exit_code, 2);
  // syntax error, bad JSON, missing files, no template source, bad flag
  EXPECT_EQ(run("--template " + write("bad.jinja", "{% if %}") + " --messages " + msgs).exit_code, 2);
  EXPECT_EQ(run("--template " + kTemplates + "Qwen-Qwen2.5-7B-Instruct.jinja --messages " + write("b.json", "{oops"))
                .exit_code,
            2);
  EXPECT_EQ(run("--template /nonexistent.jinja --messages " + msgs).exit_code, 2);
  EXPECT_EQ(run("--messages " + msgs).exit_code, 2);
  EXPECT_EQ(run("-m /nonexistent.gguf --messages " + msgs).exit_code, 2);
  EXPECT_EQ(run("--no-such-flag").exit_code, 2);
}

TEST_F(ChatCli, ModelWithoutTemplateUsesChatML) {
  std::string model = std::string(TACHYON_SHARED_DATA) + "/models/mini-llama-Q8_0.gguf";
  if (!fs::exists(model)) GTEST_SKIP() << "no " << model;
  std::string msgs = write("m.json", R"([{"role": "user", "content": "Hi"}])");
  CliResult r = run("-m " + model + " --messages " + msgs + " --add-generation-prompt");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
