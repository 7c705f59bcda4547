// Golden test: every template in shared/data/chat-templates against every reference
// conversation, byte for byte, as rendered by Jinja2 3.1.6 the way transformers renders
// chat templates (see "renderer" in chat_template_goldens.json). Cases the reference
// marks as errors must fail here too, with the same exception type and message.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "chat/chat_template.h"

namespace {

using nlohmann::ordered_json;
using tachyon::chat::ChatTemplate;
using tachyon::chat::RenderOptions;

const std::string kDir = std::string(TACHYON_SHARED_DATA) + "/chat-templates/";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "template|case" -> why it cannot match. Empty: every golden passes.
const std::map<std::string, std::string> kKnownFailures = {};

std::string first_diff(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  want: " + ordered_json(want.substr(from, 120)).dump() +
         "\n  got:  " + ordered_json(got.substr(from, 120)).dump();
}

TEST(ChatGolden, AllTemplatesAllConversations) {
  std::string text = read_file(kDir + "chat_template_goldens.json");
  ASSERT_FALSE(text.empty()) << "missing " << kDir << "chat_template_goldens.json";
  ordered_json goldens = ordered_json::parse(text);
  const ordered_json& conversations = goldens.at("conversations");

  int n_total = 0, n_pass = 0, n_known = 0;
  int n_error_cases = 0, n_error_message_match = 0;
  std::set<std::string> templates;
  for (const auto& r : goldens.at("renders")) {
    const std::string name = r.at("template").get<std::string>();
    templates.insert(name);
    const std::string case_name = r.contains("case") ? r.at("case").get<std::string>() : "<compile>";
    const std::string key = name + "|" + case_name;
    ++n_total;
    bool known = kKnownFailures.count(key) > 0;
    auto report = [&](const std::string& msg) {
      if (known) {
        ++n_known;
        std::printf("[known failure] %s: %s\n", key.c_str(), kKnownFailures.at(key).c_str());
      } else {
        ADD_FAILURE() << key << ": " << msg;
      }
    };

    std::string source = read_file(kDir + name);
    ASSERT_FALSE(source.empty()) << "missing template " << name;
    auto tmpl = ChatTemplate::parse(source);
    if (r.contains("compile_error")) {
      if (tmpl.is_ok())
        report("expected a syntax error: " + r.at("compile_error").get<std::string>());
      else
        ++n_pass;
      continue;
    }
    if (!tmpl.is_ok()) {
      report("unexpected syntax error: " + tmpl.status().message());
      continue;
    }
    const ordered_json& conv = conversations.at(case_name);
    RenderOptions opts;
    opts.add_generation_prompt = conv.at("add_generation_prompt").get<bool>();
    opts.strftime_now_iso = "2026-11-27T12:00:00";
    ordered_json tools = conv.contains("tools") ? conv.at("tools") : ordered_json();
    auto out = tmpl->render_ordered(conv.at("messages"), tools, opts);
    if (r.contains("error")) {
      ++n_error_cases;
      const std::string want = r.at("error").get<std::string>();
      if (out.is_ok()) {
        report("expected error '" + want + "', got a render");
        continue;
      }
      ++n_pass;
      if (out.status().message() == want)
        ++n_error_message_match;
      else
        ADD_FAILURE() << key << ": error message differs\n  want: " << want << "\n  got:  " << out.status().message();
      continue;
    }
    const std::string want = r.at("expected").get<std::string>();
    if (!out.is_ok()) {
      report("render failed: " + out.status().message());
    } else if (*out != want) {
      report(first_diff(want, *out));
    } else {
      ++n_pass;
    }
  }
  std::printf(
      "chat template goldens: %d passed of %d (%zu templates; %d known failures; %d/%d error messages identical)\n",
      n_pass, n_total, templates.size(), n_known, n_error_message_match, n_error_cases);
  EXPECT_EQ(n_pass + n_known, n_total);
  EXPECT_GE(n_total, 225);
}

// Every golden template, re-rendered through the nlohmann::json (sorted keys) entry
// point, must still parse and render or fail the same way: only key order may differ.
TEST(ChatGolden, SortedJsonEntryPointAgreesOnSuccess) {
  ordered_json goldens = ordered_json::parse(read_file(kDir + "chat_template_goldens.json"));
  int n = 0;
  for (const auto& r : goldens.at("renders")) {
    if (!r.contains("case")) continue;
    auto tmpl = ChatTemplate::parse(read_file(kDir + r.at("template").get<std::string>()));
    ASSERT_TRUE(tmpl.is_ok());
    const ordered_json& conv = goldens.at("conversations").at(r.at("case").get<std::string>());
    if (conv.contains("tools")) continue;  // tool schemas are where key order shows
    RenderOptions opts;
    opts.add_generation_prompt = conv.at("add_generation_prompt").get<bool>();
    opts.strftime_now_iso = "2026-11-27T12:00:00";
    auto out = tmpl->render(nlohmann::json::parse(conv.at("messages").dump()), nullptr, opts);
    EXPECT_EQ(out.is_ok(), r.contains("expected")) << r.at("template");
    if (out.is_ok() && r.contains("expected")) {
      EXPECT_EQ(*out, r.at("expected").get<std::string>()) << r.at("template");
      ++n;
    }
  }
  EXPECT_GT(n, 100);
}

}  // namespace
