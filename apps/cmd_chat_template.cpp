// tachyon chat-template: render a chat prompt from OpenAI-style messages, with the
// model's own template (tokenizer.chat_template of a GGUF file) or a given .jinja file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "app_util.h"
#include "chat/chat_template.h"
#include "commands.h"
#include "gguf/gguf.h"

namespace tachyon::apps {

namespace {

Result<nlohmann::ordered_json> read_json_file(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return text.status();
  // ordered_json keeps key order: templates print tool schemas in their given order.
  auto j = nlohmann::ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
  return j;
}

}  // namespace

int cmd_chat_template(int argc, char** argv) {
  CLI::App app{"render a chat prompt from OpenAI-style messages (prompt on stdout)", "tachyon chat-template"};
  std::string model_path, messages_path, template_path, tools_path;
  bool add_generation_prompt = false;
  app.add_option("-m,--model", model_path, "GGUF file: its tokenizer.chat_template and bos/eos tokens");
  app.add_option("--messages", messages_path,
                 "JSON file: an array of messages, or an object with \"messages\" (and optionally \"tools\", "
                 "\"add_generation_prompt\")")
      ->required();
  app.add_flag("--add-generation-prompt", add_generation_prompt, "end with the assistant turn's header");
  app.add_option("--template", template_path, "Jinja chat template file (overrides the model's)");
  app.add_option("--tools", tools_path, "JSON file: an array of tool definitions");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (model_path.empty() && template_path.empty()) {
    std::fprintf(stderr, "error: give -m FILE.gguf or --template FILE.jinja\n");
    return 2;
  }

  chat::RenderOptions opts;
  std::string source;
  if (!model_path.empty()) {
    auto file = gguf::File::open(model_path);
    if (!file) return fail(file.status());
    auto info = chat::read_gguf_chat_info(*file.value());
    if (!info) return fail(info.status());
    source = info->chat_template;
    if (!info->has_template && template_path.empty())
      std::fprintf(stderr, "note: %s has no tokenizer.chat_template; using the default ChatML template\n",
                   model_path.c_str());
    opts.bos_token = info->bos_token;
    opts.eos_token = info->eos_token;
  }
  if (!template_path.empty()) {
    auto text = read_text_file(template_path);
    if (!text) return fail(text.status());
    source = std::move(text.value());
  }

  auto request = read_json_file(messages_path);
  if (!request) return fail(request.status());
  nlohmann::ordered_json messages, tools;
  if (request->is_array()) {
    messages = std::move(request.value());
  } else if (request->is_object() && request->contains("messages")) {
    messages = (*request)["messages"];
    if (request->contains("tools")) tools = (*request)["tools"];
    if (!add_generation_prompt && request->contains("add_generation_prompt")) {
      const auto& agp = (*request)["add_generation_prompt"];
      if (!agp.is_boolean()) return fail(invalid_argument(messages_path + ": add_generation_prompt must be a boolean"));
      add_generation_prompt = agp.get<bool>();
    }
  } else {
    return fail(invalid_argument(messages_path + ": expected an array of messages or an object with \"messages\""));
  }
  if (!messages.is_array()) return fail(invalid_argument(messages_path + ": \"messages\" must be an array"));
  if (!tools_path.empty()) {
    auto t = read_json_file(tools_path);
    if (!t) return fail(t.status());
    tools = std::move(t.value());
  }
  if (!tools.is_null() && !tools.is_array()) return fail(invalid_argument("tools must be a JSON array"));
  opts.add_generation_prompt = add_generation_prompt;

  auto tmpl = chat::ChatTemplate::parse(source);
  if (!tmpl) return fail(tmpl.status());
  auto out = tmpl->render_ordered(messages, tools, opts);
  if (!out) return fail(out.status());
  std::fwrite(out->data(), 1, out->size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace tachyon::apps
