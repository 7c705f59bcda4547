// Helpers for the chat-template tests.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "chat/chat_template.h"

namespace tachyon::chat::test {

// Renders `src` with the variables of the JSON object `ctx` ("messages" and "tools" go to
// their parameters, the rest to extra_context); "now" is fixed at 2026-11-27T12:00:00.
// Returns the text, or "ERROR: <message>" for parse and render errors.
inline std::string render(std::string_view src, std::string_view ctx = "{}", const RenderOptions* base = nullptr) {
  auto tmpl = ChatTemplate::parse(src);
  if (!tmpl) return "ERROR: " + tmpl.status().message();
  nlohmann::ordered_json c = nlohmann::ordered_json::parse(ctx);
  RenderOptions opts = base ? *base : RenderOptions{};
  if (!base) opts.strftime_now_iso = "2026-11-27T12:00:00";
  nlohmann::ordered_json messages = nlohmann::ordered_json::array(), tools;
  for (auto it = c.begin(); it != c.end(); ++it) {
    if (it.key() == "messages")
      messages = it.value();
    else if (it.key() == "tools")
      tools = it.value();
    else
      opts.extra_context[it.key()] = nlohmann::json::parse(it.value().dump());
  }
  auto out = tmpl->render_ordered(messages, tools, opts);
  if (!out) return "ERROR: " + out.status().message();
  return *out;
}

}  // namespace tachyon::chat::test
