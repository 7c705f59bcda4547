// Anthropic Messages API conversion: requests -> the internal chat request (and every bad
// shape -> a 400 naming its place), output -> message JSON, and the SSE stream's exact event
// sequences, each event parsed back as JSON.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "server/anthropic_api.h"

namespace tachyon::server {
namespace {

struct Conv {
  bool ok;
  ojson chat;
  ApiError err;
};

Conv convert(const std::string& body, AnthropicEndpoint ep = AnthropicEndpoint::kCreate) {
  Conv c;
  c.ok = anthropic_to_chat_request(ojson::parse(body), &c.chat, &c.err, ep);
  return c;
}

// A minimal valid request with `extra` fields spliced in.
Conv convert_with(const std::string& extra) {
  return convert(R"({"model":"m","max_tokens":16,"messages":[{"role":"user","content":"hi"}])" + extra + "}");
}

// Splits SSE bytes into (event name, parsed data); checks the framing and that the event
// name equals the data's "type".
std::vector<std::pair<std::string, ojson>> parse_sse(const std::string& s) {
  std::vector<std::pair<std::string, ojson>> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "unterminated event";
    if (end == std::string::npos) break;
    const std::string ev = s.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_EQ(ev.rfind("event: ", 0), 0u) << ev;
    size_t nl = ev.find('\n');
    EXPECT_NE(nl, std::string::npos) << ev;
    const std::string name = ev.substr(7, nl - 7);
    const std::string data_line = ev.substr(nl + 1);
    EXPECT_EQ(data_line.rfind("data: ", 0), 0u) << ev;
    ojson data = ojson::parse(data_line.substr(6));  // throws (fails the test) on invalid JSON
    EXPECT_EQ(data["type"], name);
    out.emplace_back(name, std::move(data));
  }
  return out;
}

std::vector<std::string> names(const std::vector<std::pair<std::string, ojson>>& evs) {
  std::vector<std::string> n;
  for (const auto& e : evs) n.push_back(e.first);
  return n;
}

// ---- requests ----

TEST(anthropic_api, ClaudeCodeLikeRequest) {
  const char* body = R"({
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "temperature": 1,
    "system": [
      {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.0.14; cch=8f1e2d"},
      {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
      {"type": "text", "text": "Be brief."}
    ],
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                                   {"type": "text", "text": "list files"}]},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "I should call ls.", "signature": "sig=="},
        {"type": "text", "text": "Listing."},
        {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls", "timeout": 5}},
        {"type": "tool_use", "id": "toolu_01B", "name": "Read", "input": {"path": "a.txt"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.txt\nb.txt"},
        {"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": true,
         "content": [{"type": "text", "text": "no such file"}]},
        {"type": "text", "text": "continue"}]}
    ],
    "tools": [{"name": "Bash", "description": "Run a command",
               "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
              {"name": "Read", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
    "stop_sequences": ["</done>"],
    "metadata": {"user_id": "u_123"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stream": true
  })";
  auto c = convert(body);
  ASSERT_TRUE(c.ok) << c.err.message;
  const ojson expected = ojson::parse(R"({
    "model": "claude-sonnet-4-5",
    "messages": [
      {"role": "system", "content": "You are Claude Code.\n\nBe brief."},
      {"role": "user", "content": "<system-reminder>ctx</system-reminder>\n\nlist files"},
      {"role": "assistant", "content": "Listing.", "reasoning_content": "I should call ls.",
       "tool_calls": [
         {"id": "toolu_01A", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\",\"timeout\":5}"}},
         {"id": "toolu_01B", "type": "function", "function": {"name": "Read", "arguments": "{\"path\":\"a.txt\"}"}}]},
      {"role": "tool", "tool_call_id": "toolu_01A", "content": "a.txt\nb.txt"},
      {"role": "tool", "tool_call_id": "toolu_01B", "content": "Error: no such file"},
      {"role": "user", "content": "continue"}
    ],
    "tools": [
      {"type": "function", "function": {"name": "Bash", "description": "Run a command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}},
      {"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "parallel_tool_calls": false,
    "max_tokens": 32000,
    "temperature": 1,
    "stop": ["</done>"],
    "stream": true,
    "stream_options": {"include_usage": true}
  })");
  EXPECT_EQ(c.chat, expected) << c.chat.dump(2);
}

// The converted body is what the server hands to the chat parser: it must pass it.
TEST(anthropic_api, ConvertedRequestPassesTheChatParser) {
  auto c = convert(R"({"model":"m","max_tokens":64,"top_k":20,"temperature":0.5,"stop_sequences":["END"],"stream":true,
    "system":"sys",
    "messages":[{"role":"user","content":"q"},
      {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]}],
    "tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true},
    "output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"integer"}}}}}})");
  ASSERT_TRUE(c.ok) << c.err.message;
  CompletionParams p;
  ApiError err;
  ASSERT_TRUE(parse_completion_request(Endpoint::kChat, dump_json(c.chat), ParseLimits{}, &p, &err)) << err.message;
  EXPECT_EQ(p.max_tokens, 64);
  EXPECT_EQ(p.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(p.sampling.temperature, 0.5f);
  EXPECT_EQ(p.stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_EQ(p.messages.size(), 4u);
  EXPECT_EQ(p.tools.size(), 1u);
  EXPECT_EQ(p.tool_choice, "required");
  EXPECT_FALSE(p.parallel_tool_calls);
  EXPECT_EQ(p.format, ResponseFormat::kJsonSchema);
  EXPECT_EQ(p.json_schema["properties"]["a"]["type"], "integer");
  EXPECT_TRUE(p.json_schema_strict);
}

TEST(anthropic_api, BillingHeaderRemovalMakesCallsShareAPrefix) {
  auto a = convert_with(R"(,"system":[{"type":"text","text":"x-anthropic-billing-header: cch=111"},{"type":"text","text":"S"}])");
  auto b = convert_with(R"(,"system":[{"type":"text","text":"x-anthropic-billing-header: cch=222"},{"type":"text","text":"S"}])");
  ASSERT_TRUE(a.ok && b.ok);
  EXPECT_EQ(a.chat, b.chat);
  EXPECT_EQ(a.chat["messages"][0]["content"], "S");
  // A string system prompt: its first line goes.
  auto s = convert_with(R"(,"system":"x-anthropic-billing-header: cch=1\nReal prompt")");
  ASSERT_TRUE(s.ok);
  EXPECT_EQ(s.chat["messages"][0], ojson({{"role", "system"}, {"content", "Real prompt"}}));
  // Only a billing header: no system message at all.
  auto only = convert_with(R"(,"system":[{"type":"text","text":"x-anthropic-billing-header: x"}])");
  ASSERT_TRUE(only.ok);
  EXPECT_EQ(only.chat["messages"][0]["role"], "user");
  // The header elsewhere in a block is ordinary text.
  auto mid = convert_with(R"(,"system":"Note x-anthropic-billing-header: stays")");
  EXPECT_EQ(mid.chat["messages"][0]["content"], "Note x-anthropic-billing-header: stays");
}

TEST(anthropic_api, ToolChoiceVariants) {
  const std::string tools = R"(,"tools":[{"name":"get","input_schema":{"type":"object"}}])";
  EXPECT_EQ(convert_with(tools + R"(,"tool_choice":{"type":"any"})").chat["tool_choice"], "required");
  EXPECT_EQ(convert_with(tools + R"(,"tool_choice":{"type":"none"})").chat["tool_choice"], "none");
  auto t = convert_with(tools + R"(,"tool_choice":{"type":"tool","name":"get"})");
  ASSERT_TRUE(t.ok) << t.err.message;
  EXPECT_EQ(t.chat["tool_choice"], ojson::parse(R"({"type":"function","function":{"name":"get"}})"));
  EXPECT_FALSE(t.chat.contains("parallel_tool_calls"));
}

TEST(anthropic_api, SamplingAndFormatFields) {
  auto c = convert_with(R"(,"top_p":0.9,"top_k":40,"temperature":0.2,"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}})");
  ASSERT_TRUE(c.ok) << c.err.message;
  EXPECT_EQ(c.chat["top_p"], 0.9);
  EXPECT_EQ(c.chat["top_k"], 40);
  EXPECT_EQ(c.chat["temperature"], 0.2);
  EXPECT_EQ(c.chat["response_format"],
            ojson::parse(R"({"type":"json_schema","json_schema":{"name":"output","schema":{"type":"object"},"strict":true}})"));
  EXPECT_FALSE(c.chat.contains("stream"));
  EXPECT_FALSE(c.chat.contains("stop"));
}

TEST(anthropic_api, AssistantPrefillAndRedactedThinking) {
  auto c = convert(R"({"max_tokens":5,"messages":[{"role":"user","content":"hi"},
    {"role":"assistant","content":[{"type":"redacted_thinking","data":"xx"},{"type":"text","text":"{"}]}]})");
  ASSERT_TRUE(c.ok) << c.err.message;
  EXPECT_EQ(c.chat["messages"][1], ojson::parse(R"({"role":"assistant","content":"{"})"));
  EXPECT_FALSE(c.chat.contains("model"));
}

TEST(anthropic_api, CountTokensNeedsNoMaxTokens) {
  auto c = convert(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"t","input_schema":{}}]})",
                   AnthropicEndpoint::kCountTokens);
  ASSERT_TRUE(c.ok) << c.err.message;
  EXPECT_FALSE(c.chat.contains("max_tokens"));
  EXPECT_EQ(c.chat["tools"].size(), 1u);
  EXPECT_EQ(anthropic_count_tokens_json(42), ojson::parse(R"({"input_tokens":42})"));
}

// ---- request errors ----

void expect_400(const Conv& c, const std::string& param, const std::string& needle) {
  ASSERT_FALSE(c.ok);
  EXPECT_EQ(c.err.status, 400);
  EXPECT_EQ(c.err.param, param);
  EXPECT_NE(c.err.message.find(needle), std::string::npos) << c.err.message;
  if (!param.empty()) {
    EXPECT_EQ(c.err.message.rfind(param, 0), 0u) << c.err.message;  // names the place first
  }
}

TEST(anthropic_api, Errors) {
  expect_400(convert(R"({"messages":[{"role":"user","content":"hi"}]})"), "max_tokens", "required");
  expect_400(convert_with(R"(,"max_tokens":0)"), "max_tokens", ">= 1");
  expect_400(convert_with(R"(,"max_tokens":1.5)"), "max_tokens", "integer");
  expect_400(convert_with(R"(,"tools":[{"description":"x","input_schema":{}}])"), "tools[0].name", "name");
  expect_400(convert_with(R"(,"tools":[{"name":""}])"), "tools[0].name", "name");
  expect_400(convert_with(R"(,"tools":[{"name":"a"}])"), "tools[0].input_schema", "input_schema");
  expect_400(convert_with(R"(,"tools":[{"type":"web_search_20250305","name":"web_search"}])"), "tools[0].type",
             "web_search_20250305");
  expect_400(convert_with(R"(,"tools":{})"), "tools", "array");
  expect_400(convert_with(R"(,"tools":[1])"), "tools[0]", "object");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":[
      {"type":"tool_result","tool_use_id":"toolu_nope","content":"x"}]}]})"),
             "messages[0].content[0].tool_use_id", "toolu_nope");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"see"},
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]})"),
             "messages[0].content[1]", "image input is not supported");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]})"),
             "messages[0].content[0].type", "'document'");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t",
      "content":[{"type":"image","source":{}}]}]}]})"),
             "messages[0].content[0].tool_use_id", "no earlier tool_use");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":{}}]}]}]})"),
             "messages[1].content[0].content[0]", "image input is not supported");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":7}]}]})"),
             "messages[1].content[0].content", "string");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","is_error":"yes"}]}]})"),
             "messages[1].content[0].is_error", "boolean");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]})"),
             "messages[0].content[0].input", "object");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]})"),
             "messages[0].content[0].id", "id");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"x","input":{}}]}]})"),
             "messages[0].content[0].name", "name");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"thinking"}]}]})"),
             "messages[0].content[0].thinking", "thinking");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"x","name":"f","input":{}}]}]})"),
             "messages[0].content[0].type", "'tool_use'");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]})"),
             "messages[0].content[0].type", "type");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":3}]}]})"),
             "messages[0].content[0].text", "text");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":["x"]}]})"),
             "messages[0].content[0]", "object");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user","content":5}]})"), "messages[0].content", "string");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"user"}]})"), "messages[0].content", "content");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"role":"tool","content":"x"}]})"), "messages[0].role", "'tool'");
  expect_400(convert(R"({"max_tokens":5,"messages":[{"content":"x"}]})"), "messages[0].role", "role");
  expect_400(convert(R"({"max_tokens":5,"messages":["x"]})"), "messages[0]", "object");
  expect_400(convert(R"({"max_tokens":5,"messages":[]})"), "messages", "at least one");
  expect_400(convert(R"({"max_tokens":5,"messages":{}})"), "messages", "array");
  expect_400(convert(R"({"max_tokens":5})"), "messages", "required");
  expect_400(convert_with(R"(,"system":5)"), "system", "string");
  expect_400(convert_with(R"(,"system":[{"type":"image"}])"), "system[0].type", "'text'");
  expect_400(convert_with(R"(,"system":[{"type":"text"}])"), "system[0].text", "text");
  expect_400(convert_with(R"(,"model":5)"), "model", "string");
  expect_400(convert_with(R"(,"stop_sequences":"x")"), "stop_sequences", "array");
  expect_400(convert_with(R"(,"stop_sequences":["a",1])"), "stop_sequences[1]", "strings");
  expect_400(convert_with(R"(,"stream":"yes")"), "stream", "boolean");
  expect_400(convert_with(R"(,"temperature":"hot")"), "temperature", "number");
  expect_400(convert_with(R"(,"tool_choice":"auto")"), "tool_choice", "object");
  expect_400(convert_with(R"(,"tool_choice":{"type":"sometimes"})"), "tool_choice.type", "sometimes");
  expect_400(convert_with(R"(,"tool_choice":{"type":"tool"})"), "tool_choice.name", "name");
  expect_400(convert_with(R"(,"tool_choice":{"type":"tool","name":"ghost"})"), "tool_choice.name", "ghost");
  expect_400(convert_with(R"(,"output_config":{"format":{"type":"json_schema"}})"), "output_config.format.schema",
             "schema");
  ApiError err;
  ojson out;
  EXPECT_FALSE(anthropic_to_chat_request(ojson::array(), &out, &err));
  EXPECT_EQ(err.status, 400);
}

TEST(anthropic_api, ErrorJson) {
  ApiError e;
  e.status = 400;
  e.message = "max_tokens: 'max_tokens' is required";
  EXPECT_EQ(ojson::parse(anthropic_error_json(e)),
            ojson::parse(R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 'max_tokens' is required"}})"));
  EXPECT_EQ(anthropic_error_type(404), "not_found_error");
  EXPECT_EQ(anthropic_error_type(429), "rate_limit_error");
  EXPECT_EQ(anthropic_error_type(500), "api_error");
  EXPECT_EQ(anthropic_error_type(503), "overloaded_error");
}

// ---- non-streamed output ----

TEST(anthropic_api, MessageJson) {
  TurnOutput out;
  out.reasoning = "think";
  out.content = "Sure.";
  out.tool_calls = {{"toolu_1", "Bash", R"({"command":"ls"})"}, {"call_2", "Bad", "{not json"}};
  out.finish_reason = "tool_calls";
  out.prompt_tokens = 100;
  out.cached_tokens = 60;
  out.completion_tokens = 12;
  const ojson m = anthropic_message_json("msg_1", "qwen", out);
  const ojson expected = ojson::parse(R"({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "qwen",
    "content": [
      {"type": "thinking", "thinking": "think", "signature": ""},
      {"type": "text", "text": "Sure."},
      {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
      {"type": "tool_use", "id": "call_2", "name": "Bad", "input": {}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 40, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 60, "output_tokens": 12}
  })");
  EXPECT_EQ(m, expected) << m.dump(2);
}

TEST(anthropic_api, StopReasons) {
  EXPECT_EQ(anthropic_stop_reason("stop", ""), "end_turn");
  EXPECT_EQ(anthropic_stop_reason("length", ""), "max_tokens");
  EXPECT_EQ(anthropic_stop_reason("tool_calls", ""), "tool_use");
  EXPECT_EQ(anthropic_stop_reason("stop_sequence", "</done>"), "stop_sequence");
  EXPECT_EQ(anthropic_stop_reason("stop", "</done>"), "stop_sequence");
  TurnOutput out;
  out.content = "x";
  out.finish_reason = "stop_sequence";
  out.stop_sequence = "</done>";
  const ojson m = anthropic_message_json("msg_2", "m", out);
  EXPECT_EQ(m["stop_reason"], "stop_sequence");
  EXPECT_EQ(m["stop_sequence"], "</done>");
  out.finish_reason = "stop";
  out.stop_sequence = "";
  EXPECT_TRUE(anthropic_message_json("msg_2", "m", out)["stop_sequence"].is_null());
  EXPECT_EQ(anthropic_message_json("msg_2", "m", TurnOutput{})["content"], ojson::array());
}

// ---- streams ----

TEST(anthropic_api, StreamTextOnly) {
  AnthropicStream st("msg_s1", "qwen");
  std::string sse = st.start(10, 4);
  sse += st.ping();
  sse += st.text("Hel");
  sse += st.text("");
  sse += st.text("lo");
  sse += st.finish("stop", "", 2);
  EXPECT_EQ(st.finish("stop", "", 2), "");  // only once
  EXPECT_EQ(st.text("late"), "");
  auto evs = parse_sse(sse);
  EXPECT_EQ(names(evs), (std::vector<std::string>{"message_start", "ping", "content_block_start", "content_block_delta",
                                                   "content_block_delta", "content_block_stop", "message_delta",
                                                   "message_stop"}));
  EXPECT_EQ(evs[0].second, ojson::parse(R"({"type":"message_start","message":{"id":"msg_s1","type":"message",
    "role":"assistant","model":"qwen","content":[],"stop_reason":null,"stop_sequence":null,
    "usage":{"input_tokens":6,"cache_creation_input_tokens":0,"cache_read_input_tokens":4,"output_tokens":0}}})"));
  EXPECT_EQ(evs[2].second, ojson::parse(R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"));
  EXPECT_EQ(evs[3].second, ojson::parse(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}})"));
  EXPECT_EQ(evs[4].second["delta"]["text"], "lo");
  EXPECT_EQ(evs[5].second, ojson::parse(R"({"type":"content_block_stop","index":0})"));
  EXPECT_EQ(evs[6].second, ojson::parse(R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},
    "usage":{"output_tokens":2}})"));
  EXPECT_EQ(evs[7].second, ojson::parse(R"({"type":"message_stop"})"));
}

TEST(anthropic_api, StreamThinkingThenText) {
  AnthropicStream st("msg_s2", "qwen");
  std::string sse = st.start(3, 0);
  sse += st.thinking("Let me ");
  sse += st.thinking("think.");
  sse += st.text("Answer");
  sse += st.finish("stop_sequence", "</done>", 7);
  auto evs = parse_sse(sse);
  EXPECT_EQ(names(evs), (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta",
                                                   "content_block_delta", "content_block_stop", "content_block_start",
                                                   "content_block_delta", "content_block_stop", "message_delta",
                                                   "message_stop"}));
  EXPECT_EQ(evs[1].second, ojson::parse(R"({"type":"content_block_start","index":0,
    "content_block":{"type":"thinking","thinking":"","signature":""}})"));
  EXPECT_EQ(evs[2].second, ojson::parse(R"({"type":"content_block_delta","index":0,
    "delta":{"type":"thinking_delta","thinking":"Let me "}})"));
  EXPECT_EQ(evs[4].second["index"], 0);
  EXPECT_EQ(evs[5].second["index"], 1);
  EXPECT_EQ(evs[5].second["content_block"]["type"], "text");
  EXPECT_EQ(evs[6].second["index"], 1);
  EXPECT_EQ(evs[7].second["index"], 1);
  EXPECT_EQ(evs[8].second["delta"], ojson::parse(R"({"stop_reason":"stop_sequence","stop_sequence":"</done>"})"));
  EXPECT_EQ(evs[8].second["usage"]["output_tokens"], 7);
}

TEST(anthropic_api, StreamTextThenTwoToolCalls) {
  AnthropicStream st("msg_s3", "qwen");
  std::string sse = st.start(50, 0);
  sse += st.text("Running both.");
  sse += st.tool_start(0, "call_a", "Bash");
  sse += st.tool_args(0, "{\"command\":");
  sse += st.tool_args(0, "\"ls\"}");
  sse += st.tool_start(1, "call_b", "Read");
  sse += st.tool_args(1, "{\"path\":\"a\"}");
  sse += st.tool_args(7, "{}");  // never started: dropped
  sse += st.finish("tool_calls", "", 30);
  auto evs = parse_sse(sse);
  EXPECT_EQ(names(evs),
            (std::vector<std::string>{"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                                      "content_block_start", "content_block_delta", "content_block_delta",
                                      "content_block_stop", "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"}));
  EXPECT_EQ(evs[4].second, ojson::parse(R"({"type":"content_block_start","index":1,
    "content_block":{"type":"tool_use","id":"call_a","name":"Bash","input":{}}})"));
  EXPECT_EQ(evs[5].second, ojson::parse(R"({"type":"content_block_delta","index":1,
    "delta":{"type":"input_json_delta","partial_json":"{\"command\":"}})"));
  EXPECT_EQ(evs[8].second["index"], 2);
  EXPECT_EQ(evs[8].second["content_block"]["id"], "call_b");
  EXPECT_EQ(evs[9].second["index"], 2);
  EXPECT_EQ(evs[10].second["index"], 2);
  EXPECT_EQ(evs[11].second["delta"]["stop_reason"], "tool_use");
  EXPECT_EQ(st.n_blocks(), 3);
  // Reassemble the tool inputs the way the SDK does (by block index) and parse them.
  std::vector<std::string> partial(3);
  for (const auto& [name, d] : evs)
    if (name == "content_block_delta" && d["delta"]["type"] == "input_json_delta")
      partial[d["index"].get<int>()] += d["delta"]["partial_json"].get<std::string>();
  EXPECT_EQ(ojson::parse(partial[1]), ojson::parse(R"({"command":"ls"})"));
  EXPECT_EQ(ojson::parse(partial[2]), ojson::parse(R"({"path":"a"})"));
}

TEST(anthropic_api, StreamMaxTokens) {
  AnthropicStream st("msg_s4", "qwen");
  std::string sse = st.start(5, 0);
  sse += st.text("cut o");
  sse += st.finish("length", "", 16);
  auto evs = parse_sse(sse);
  ASSERT_EQ(evs.size(), 6u);
  EXPECT_EQ(evs[4].second["delta"], ojson::parse(R"({"stop_reason":"max_tokens","stop_sequence":null})"));
  EXPECT_EQ(evs[5].first, "message_stop");
}

TEST(anthropic_api, StreamEmptyAndError) {
  AnthropicStream a("msg_s5", "m");
  std::string sse = a.start(1, 0);  // one call per statement: a + chain's order is unspecified
  sse += a.finish("stop", "", 0);
  auto evs = parse_sse(sse);
  EXPECT_EQ(names(evs), (std::vector<std::string>{"message_start", "message_delta", "message_stop"}));
  AnthropicStream b("msg_s6", "m");
  ApiError e;
  e.status = 500;
  e.message = "engine failed";
  sse = b.start(1, 0);
  sse += b.text("x");
  sse += b.error(e);
  evs = parse_sse(sse);
  EXPECT_EQ(evs.back().second, ojson::parse(R"({"type":"error","error":{"type":"api_error","message":"engine failed"}})"));
  EXPECT_EQ(b.finish("stop", "", 1), "");
}

TEST(anthropic_api, StreamInvalidUtf8IsReplaced) {
  AnthropicStream st("msg_s7", "m");
  std::string sse = st.start(1, 0);
  sse += st.text("a\xE2\x82");  // a cut multi-byte character
  auto evs = parse_sse(sse);
  EXPECT_EQ(evs.back().second["delta"]["text"], "a\xEF\xBF\xBD");
}

}  // namespace
}  // namespace tachyon::server
