// tachyon's default template (models without one): ChatML, with tools in the Hermes form.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"

namespace tachyon::chat {
namespace {

TEST(DefaultTemplate, RendersToolsCallsAndResultsInTheHermesForm) {
  auto t = ChatTemplate::parse(default_template());
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  auto tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])");
  auto msgs = nlohmann::ordered_json::parse(R"([
      {"role": "system", "content": "S"},
      {"role": "user", "content": "Weather?"},
      {"role": "assistant", "content": null, "tool_calls": [
          {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
          {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "sunny"}])");
  RenderOptions opts;
  opts.add_generation_prompt = true;
  auto out = t->render_ordered(msgs, tools, opts);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  const std::string tools_text =
      std::string("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function "
      "signatures within <tools></tools> XML tags:\n<tools>\n") +
      R"({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})" +
      "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
      "</tool_call>";
  EXPECT_EQ(*out, "<|im_start|>system\nS\n\n" + tools_text +
                      "<|im_end|>\n<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n"
                      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
                      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}\n</tool_call>"
                      "<|im_end|>\n<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n"
                      "<|im_start|>assistant\n");
  // no system message: the tools get a system turn of their own
  msgs.erase(msgs.begin());
  out = t->render_ordered(msgs, tools, opts);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(out->rfind("<|im_start|>system\n" + tools_text + "<|im_end|>\n<|im_start|>user\nWeather?", 0), 0u) << *out;
}

}  // namespace
}  // namespace tachyon::chat
