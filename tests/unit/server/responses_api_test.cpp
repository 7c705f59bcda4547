// OpenAI Responses API conversion: requests -> the internal chat request (and every bad shape
// -> a 400 naming its place), output -> the Response object, and the SSE stream's exact event
// sequences, each event parsed back as JSON and replayed the way the openai SDK's
// ResponseStream accumulates them.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "server/responses_api.h"

namespace tachyon::server {
namespace {

struct Conv {
  bool ok;
  ojson chat;
  ApiError err;
};

Conv convert(const std::string& body) {
  Conv c;
  c.ok = responses_to_chat_request(ojson::parse(body), &c.chat, &c.err);
  return c;
}
Conv convert_with(const std::string& extra) { return convert(R"({"model":"m","input":"hi")" + extra + "}"); }

void expect_400(const Conv& c, const std::string& param, const std::string& needle) {
  ASSERT_FALSE(c.ok);
  EXPECT_EQ(c.err.status, 400);
  EXPECT_EQ(c.err.param, param);
  EXPECT_NE(c.err.message.find(needle), std::string::npos) << c.err.message;
  if (!param.empty()) {
    EXPECT_EQ(c.err.message.rfind(param, 0), 0u) << c.err.message;
  }
}

// SSE bytes -> (event name, data); checks framing, name == data.type, and that
// sequence_number counts 0, 1, 2, ... across the whole stream (pass the running counter).
std::vector<std::pair<std::string, ojson>> parse_sse(const std::string& s, int64_t* seq) {
  std::vector<std::pair<std::string, ojson>> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos);
    if (end == std::string::npos) break;
    const std::string ev = s.substr(pos, end - pos);
    pos = end + 2;
    EXPECT_EQ(ev.rfind("event: ", 0), 0u) << ev;
    size_t nl = ev.find('\n');
    const std::string name = ev.substr(7, nl - 7);
    EXPECT_EQ(ev.substr(nl + 1, 6), "data: ");
    ojson data = ojson::parse(ev.substr(nl + 7));
    EXPECT_EQ(data["type"], name);
    EXPECT_EQ(data["sequence_number"], (*seq)++);
    out.emplace_back(name, std::move(data));
  }
  return out;
}

std::vector<std::string> names(const std::vector<std::pair<std::string, ojson>>& evs) {
  std::vector<std::string> n;
  for (const auto& e : evs) n.push_back(e.first);
  return n;
}

// The openai SDK's ResponseStream accumulation (lib/responses/ResponseStream): a snapshot
// from response.created, items pushed by output_item.added, parts by content_part.added,
// text/arguments appended by deltas; any event naming a missing item/part fails.
ojson sdk_accumulate(const std::vector<std::pair<std::string, ojson>>& evs) {
  ojson snap;
  for (const auto& [type, e] : evs) {
    if (snap.is_null()) {
      EXPECT_EQ(type, "response.created");
      snap = e["response"];
      continue;
    }
    if (type == "response.output_item.added") {
      EXPECT_EQ(e["output_index"], snap["output"].size());
      snap["output"].push_back(e["item"]);
    } else if (type == "response.content_part.added") {
      ojson& item = snap["output"].at(e["output_index"].get<size_t>());
      item["content"].push_back(e["part"]);
    } else if (type == "response.output_text.delta") {
      ojson& part = snap["output"].at(e["output_index"].get<size_t>())["content"].at(e["content_index"].get<size_t>());
      EXPECT_EQ(part["type"], "output_text");
      part["text"] = part["text"].get<std::string>() + e["delta"].get<std::string>();
    } else if (type == "response.reasoning_text.delta") {
      ojson& part = snap["output"].at(e["output_index"].get<size_t>())["content"].at(e["content_index"].get<size_t>());
      EXPECT_EQ(part["type"], "reasoning_text");
      part["text"] = part["text"].get<std::string>() + e["delta"].get<std::string>();
    } else if (type == "response.function_call_arguments.delta") {
      ojson& item = snap["output"].at(e["output_index"].get<size_t>());
      EXPECT_EQ(item["type"], "function_call");
      item["arguments"] = item["arguments"].get<std::string>() + e["delta"].get<std::string>();
    } else if (type == "response.completed" || type == "response.incomplete") {
      // The final object must agree with what the deltas built (statuses aside).
      ojson fin = e["response"];
      EXPECT_EQ(fin["output"].size(), snap["output"].size());
      for (size_t i = 0; i < fin["output"].size() && i < snap["output"].size(); ++i) {
        ojson a = fin["output"][i], b = snap["output"][i];
        a.erase("status");
        b.erase("status");
        EXPECT_EQ(a, b) << "output[" << i << "]";
      }
      snap = fin;
    }
  }
  return snap;
}

// ---- requests ----

TEST(responses_api, CodexLikeRequest) {
  const char* body = R"({
    "model": "gpt-5-codex",
    "instructions": "You are Codex.",
    "input": [
      {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: read-only"}]},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context>cwd</environment_context>"}]},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
      {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "look"}], "encrypted_content": "gAAA"},
      {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
      {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
      {"type": "function_call", "call_id": "call_2", "name": "shell", "arguments": "{\"command\":[\"pwd\"]}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "a.c"},
      {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "/src"}]},
      {"role": "user", "content": "thanks"}
    ],
    "tools": [{"type": "function", "name": "shell", "description": "Run a command", "strict": false,
               "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}}}],
    "tool_choice": "auto",
    "parallel_tool_calls": false,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "store": false,
    "stream": true,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "abc",
    "max_output_tokens": 2048,
    "temperature": 0.3,
    "top_p": 0.95,
    "text": {"format": {"type": "json_schema", "name": "answer", "strict": true,
                        "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}}
  })";
  auto c = convert(body);
  ASSERT_TRUE(c.ok) << c.err.message;
  const ojson expected = ojson::parse(R"({
    "model": "gpt-5-codex",
    "messages": [
      {"role": "system", "content": "You are Codex.\n\nsandbox: read-only"},
      {"role": "user", "content": "<environment_context>cwd</environment_context>"},
      {"role": "user", "content": "fix the bug"},
      {"role": "assistant", "content": "Looking.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}},
        {"id": "call_2", "type": "function", "function": {"name": "shell", "arguments": "{\"command\":[\"pwd\"]}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "a.c"},
      {"role": "tool", "tool_call_id": "call_2", "content": "/src"},
      {"role": "user", "content": "thanks"}
    ],
    "tools": [{"type": "function", "function": {"name": "shell", "description": "Run a command",
      "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}},
      "strict": false}}],
    "tool_choice": "auto",
    "parallel_tool_calls": false,
    "max_tokens": 2048,
    "temperature": 0.3,
    "top_p": 0.95,
    "stream": true,
    "stream_options": {"include_usage": true},
    "response_format": {"type": "json_schema", "json_schema": {"name": "answer",
      "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}, "strict": true}}
  })");
  EXPECT_EQ(c.chat, expected) << c.chat.dump(2);
}

TEST(responses_api, SmallShapes) {
  auto s = convert(R"({"input":"hello"})");
  ASSERT_TRUE(s.ok) << s.err.message;
  EXPECT_EQ(s.chat, ojson::parse(R"({"messages":[{"role":"user","content":"hello"}]})"));
  // A call with no assistant text before it opens its own assistant message; a late
  // developer message stays where it is, as system.
  auto c = convert(R"({"input":[{"role":"user","content":"q"},
    {"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
    {"type":"function_call_output","call_id":"c1","output":"r"},
    {"role":"developer","content":"late"}],
    "tool_choice":{"type":"function","name":"f"},"text":{"format":{"type":"json_object"}}})");
  ASSERT_TRUE(c.ok) << c.err.message;
  EXPECT_EQ(c.chat["messages"], ojson::parse(R"([{"role":"user","content":"q"},
    {"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"c1","content":"r"},
    {"role":"system","content":"late"}])"));
  EXPECT_EQ(c.chat["tool_choice"], ojson::parse(R"({"type":"function","function":{"name":"f"}})"));
  EXPECT_EQ(c.chat["response_format"], ojson::parse(R"({"type":"json_object"})"));
  // text format "text", null previous_response_id, store: nothing forwarded, no error.
  auto t = convert_with(R"(,"text":{"format":{"type":"text"},"verbosity":"low"},"previous_response_id":null,"store":true)");
  ASSERT_TRUE(t.ok) << t.err.message;
  EXPECT_FALSE(t.chat.contains("response_format"));
  // A tool without parameters gets an empty object schema.
  auto np = convert_with(R"(,"tools":[{"type":"function","name":"now"}])");
  ASSERT_TRUE(np.ok) << np.err.message;
  EXPECT_EQ(np.chat["tools"][0]["function"]["parameters"], ojson::parse(R"({"type":"object","properties":{}})"));
}

TEST(responses_api, ConvertedRequestPassesTheChatParser) {
  auto c = convert(R"({"instructions":"be terse","input":[{"role":"user","content":"q"},
    {"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},
    {"type":"function_call_output","call_id":"c1","output":"r"}],
    "tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"required",
    "max_output_tokens":100,"temperature":0.7,"stream":true,"parallel_tool_calls":false,
    "text":{"format":{"type":"json_schema","name":"out","strict":true,"schema":{"type":"object"}}}})");
  ASSERT_TRUE(c.ok) << c.err.message;
  CompletionParams p;
  ApiError err;
  ASSERT_TRUE(parse_completion_request(Endpoint::kChat, dump_json(c.chat), ParseLimits{}, &p, &err)) << err.message;
  EXPECT_EQ(p.max_tokens, 100);
  EXPECT_FLOAT_EQ(p.sampling.temperature, 0.7f);
  EXPECT_TRUE(p.stream && p.include_usage);
  EXPECT_EQ(p.messages.size(), 4u);
  EXPECT_EQ(p.tool_choice, "required");
  EXPECT_FALSE(p.parallel_tool_calls);
  EXPECT_EQ(p.format, ResponseFormat::kJsonSchema);
  EXPECT_EQ(p.json_schema, ojson::parse(R"({"type":"object"})"));
  EXPECT_TRUE(p.json_schema_strict);
}

TEST(responses_api, Errors) {
  expect_400(convert_with(R"(,"previous_response_id":"resp_1")"), "previous_response_id",
             "previous_response_id is not supported: this server is stateless; send the full input");
  expect_400(convert_with(R"(,"conversation":"conv_1")"), "conversation", "stateless");
  expect_400(convert_with(R"(,"background":true)"), "background", "not supported");
  expect_400(convert_with(R"(,"prompt":{"id":"pmpt_1"})"), "prompt", "not supported");
  expect_400(convert_with(R"(,"tools":[{"type":"web_search"}])"), "tools[0].type", "'web_search'");
  expect_400(convert_with(R"(,"tools":[{"type":"custom","name":"apply_patch"}])"), "tools[0].type", "'custom'");
  expect_400(convert_with(R"(,"tools":[{"name":"f"}])"), "tools[0].type", "type");
  expect_400(convert_with(R"(,"tools":[{"type":"function"}])"), "tools[0].name", "name");
  expect_400(convert_with(R"(,"tools":[{"type":"function","name":"f","parameters":"x"}])"), "tools[0].parameters", "object");
  expect_400(convert_with(R"(,"tools":[{"type":"function","name":"f","strict":"yes"}])"), "tools[0].strict", "boolean");
  expect_400(convert_with(R"(,"tools":[{"type":"function","name":"f","description":1}])"), "tools[0].description", "string");
  expect_400(convert_with(R"(,"tools":"f")"), "tools", "array");
  expect_400(convert_with(R"(,"tools":[3])"), "tools[0]", "object");
  expect_400(convert_with(R"(,"tool_choice":"sometimes")"), "tool_choice", "'none'");
  expect_400(convert_with(R"(,"tool_choice":{"type":"web_search"})"), "tool_choice.type", "web_search");
  expect_400(convert_with(R"(,"tool_choice":{"type":"function"})"), "tool_choice.name", "name");
  expect_400(convert_with(R"(,"tool_choice":1)"), "tool_choice", "string");
  expect_400(convert_with(R"(,"max_output_tokens":0)"), "max_output_tokens", ">= 1");
  expect_400(convert_with(R"(,"max_output_tokens":"9")"), "max_output_tokens", "integer");
  expect_400(convert_with(R"(,"temperature":"x")"), "temperature", "number");
  expect_400(convert_with(R"(,"stream":1)"), "stream", "boolean");
  expect_400(convert_with(R"(,"parallel_tool_calls":"no")"), "parallel_tool_calls", "boolean");
  expect_400(convert_with(R"(,"instructions":["x"])"), "instructions", "string");
  expect_400(convert_with(R"(,"model":1)"), "model", "string");
  expect_400(convert_with(R"(,"text":"json")"), "text", "object");
  expect_400(convert_with(R"(,"text":{"format":"json"})"), "text.format", "object");
  expect_400(convert_with(R"(,"text":{"format":{"type":"yaml"}})"), "text.format.type", "yaml");
  expect_400(convert_with(R"(,"text":{"format":{"type":"json_schema","schema":{}}})"), "text.format.name", "name");
  expect_400(convert_with(R"(,"text":{"format":{"type":"json_schema","name":"a"}})"), "text.format.schema", "schema");
  expect_400(convert_with(R"(,"text":{"format":{"type":"json_schema","name":"a","schema":{},"strict":1}})"),
             "text.format.strict", "boolean");
  expect_400(convert(R"({"model":"m"})"), "input", "required");
  expect_400(convert(R"({"input":5})"), "input", "string");
  expect_400(convert(R"({"input":[]})"), "input", "at least one");
  expect_400(convert(R"({"input":[7]})"), "input[0]", "object");
  expect_400(convert(R"({"input":[{"content":"x"}]})"), "input[0].type", "type");
  expect_400(convert(R"({"input":[{"type":5}]})"), "input[0].type", "string");
  expect_400(convert(R"({"input":[{"type":"item_reference","id":"msg_1"}]})"), "input[0].type", "stateless");
  expect_400(convert(R"({"input":[{"type":"local_shell_call","call_id":"x"}]})"), "input[0].type", "'local_shell_call'");
  expect_400(convert(R"({"input":[{"type":"message","role":"tool","content":"x"}]})"), "input[0].role", "'tool'");
  expect_400(convert(R"({"input":[{"type":"message","content":"x"}]})"), "input[0].role", "role");
  expect_400(convert(R"({"input":[{"role":"user"}]})"), "input[0].content", "content");
  expect_400(convert(R"({"input":[{"role":"user","content":5}]})"), "input[0].content", "string");
  expect_400(convert(R"({"input":[{"role":"user","content":[5]}]})"), "input[0].content[0]", "object");
  expect_400(convert(R"({"input":[{"role":"user","content":[{"text":"x"}]}]})"), "input[0].content[0].type", "type");
  expect_400(convert(R"({"input":[{"role":"user","content":[{"type":"input_text"}]}]})"), "input[0].content[0].text",
             "text");
  expect_400(convert(R"({"input":[{"role":"user","content":[{"type":"input_text","text":"see"},
    {"type":"input_image","image_url":"data:image/png;base64,AA=="}]}]})"),
             "input[0].content[1]", "image input is not supported");
  expect_400(convert(R"({"input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})"),
             "input[0].content[0].type", "'input_file'");
  expect_400(convert(R"({"input":[{"type":"function_call","name":"f","arguments":"{}"}]})"), "input[0].call_id", "call_id");
  expect_400(convert(R"({"input":[{"type":"function_call","call_id":"c","arguments":"{}"}]})"), "input[0].name", "name");
  expect_400(convert(R"({"input":[{"type":"function_call","call_id":"c","name":"f","arguments":{}}]})"),
             "input[0].arguments", "string");
  expect_400(convert(R"({"input":[{"type":"function_call_output","call_id":"ghost","output":"x"}]})"), "input[0].call_id",
             "'ghost'");
  expect_400(convert(R"({"input":[{"type":"function_call_output","output":"x"}]})"), "input[0].call_id", "call_id");
  expect_400(convert(R"({"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
    {"type":"function_call_output","call_id":"c"}]})"), "input[1].output", "output");
  expect_400(convert(R"({"input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
    {"type":"function_call_output","call_id":"c","output":[{"type":"input_image"}]}]})"),
             "input[1].output[0]", "image input is not supported");
  ApiError err;
  ojson out;
  EXPECT_FALSE(responses_to_chat_request(ojson("x"), &out, &err));
  EXPECT_EQ(err.status, 400);
}

// ---- non-streamed output ----

TEST(responses_api, ObjectJson) {
  TurnOutput out;
  out.reasoning = "hmm";
  out.content = "Done.";
  out.tool_calls = {{"call_9", "shell", R"({"command":["ls"]})"}};
  out.finish_reason = "tool_calls";
  out.prompt_tokens = 100;
  out.cached_tokens = 64;
  out.completion_tokens = 20;
  out.reasoning_tokens = 5;
  const ojson req = ojson::parse(R"({"model":"x","input":"q","instructions":"be good","temperature":0.2,
    "tools":[{"type":"function","name":"shell","parameters":{"type":"object"}}],"max_output_tokens":500})");
  const ojson r = responses_object_json("resp_abc", "qwen", 1700000000, out, req);
  const ojson expected = ojson::parse(R"({
    "id": "resp_abc", "object": "response", "created_at": 1700000000, "status": "completed", "background": false,
    "error": null, "incomplete_details": null, "instructions": "be good", "max_output_tokens": 500, "model": "qwen",
    "output": [
      {"id": "rs_abc_0", "type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}],
       "status": "completed"},
      {"id": "msg_abc_1", "type": "message", "status": "completed", "role": "assistant",
       "content": [{"type": "output_text", "text": "Done.", "annotations": []}]},
      {"id": "fc_abc_2", "type": "function_call", "status": "completed", "arguments": "{\"command\":[\"ls\"]}",
       "call_id": "call_9", "name": "shell"}],
    "parallel_tool_calls": true, "previous_response_id": null, "reasoning": {"effort": null, "summary": null},
    "store": false, "temperature": 0.2, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
    "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}], "top_p": 1.0,
    "truncation": "disabled",
    "usage": {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 64}, "output_tokens": 20,
              "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 120},
    "user": null, "metadata": {}
  })");
  EXPECT_EQ(r, expected) << r.dump(2);
}

TEST(responses_api, ObjectJsonIncomplete) {
  TurnOutput out;
  out.content = "cut";
  out.finish_reason = "length";
  const ojson r = responses_object_json("resp_x", "m", 1, out, ojson());
  EXPECT_EQ(r["status"], "incomplete");
  EXPECT_EQ(r["incomplete_details"], ojson::parse(R"({"reason":"max_output_tokens"})"));
  EXPECT_EQ(r["output"][0]["status"], "incomplete");
  EXPECT_EQ(r["output"][0]["id"], "msg_x_0");
  EXPECT_EQ(r["instructions"], nullptr);
}

// ---- streams ----

TEST(responses_api, StreamTextOnly) {
  ResponsesStream st("resp_t1", "qwen", 123, ojson::parse(R"({"input":"q"})"));
  std::string sse = st.start();
  sse += st.text("Hel");
  sse += st.text("lo");
  sse += st.finish("stop", 10, 2, 2);
  EXPECT_EQ(st.finish("stop", 10, 2, 2), "");
  EXPECT_EQ(st.text("x"), "");
  int64_t seq = 0;
  auto evs = parse_sse(sse, &seq);
  EXPECT_EQ(names(evs), (std::vector<std::string>{"response.created", "response.in_progress",
                                                   "response.output_item.added", "response.content_part.added",
                                                   "response.output_text.delta", "response.output_text.delta",
                                                   "response.output_text.done", "response.content_part.done",
                                                   "response.output_item.done", "response.completed"}));
  EXPECT_EQ(evs[0].second["response"]["status"], "in_progress");
  EXPECT_EQ(evs[0].second["response"]["output"], ojson::array());
  EXPECT_TRUE(evs[0].second["response"]["usage"].is_null());
  EXPECT_EQ(evs[2].second, ojson::parse(R"({"type":"response.output_item.added","output_index":0,
    "item":{"id":"msg_t1_0","type":"message","status":"in_progress","role":"assistant","content":[]},"sequence_number":2})"));
  EXPECT_EQ(evs[3].second, ojson::parse(R"({"type":"response.content_part.added","item_id":"msg_t1_0","output_index":0,
    "content_index":0,"part":{"type":"output_text","text":"","annotations":[]},"sequence_number":3})"));
  EXPECT_EQ(evs[4].second, ojson::parse(R"({"type":"response.output_text.delta","item_id":"msg_t1_0","output_index":0,
    "content_index":0,"delta":"Hel","logprobs":[],"sequence_number":4})"));
  EXPECT_EQ(evs[6].second["text"], "Hello");
  EXPECT_EQ(evs[7].second["part"]["text"], "Hello");
  EXPECT_EQ(evs[8].second["item"]["status"], "completed");
  EXPECT_EQ(evs[8].second["item"]["content"][0]["text"], "Hello");
  const ojson& r = evs[9].second["response"];
  EXPECT_EQ(r["status"], "completed");
  EXPECT_EQ(r["usage"]["input_tokens"], 10);
  EXPECT_EQ(r["usage"]["input_tokens_details"]["cached_tokens"], 2);
  EXPECT_EQ(r["usage"]["total_tokens"], 12);
  ojson snap = sdk_accumulate(evs);
  EXPECT_EQ(snap["output"][0]["content"][0]["text"], "Hello");
}

TEST(responses_api, StreamThinkingThenText) {
  ResponsesStream st("resp_t2", "qwen", 1, ojson::object());
  std::string sse = st.start();  // one call per statement: the order of a + chain's operands is unspecified
  sse += st.thinking("Let ");
  sse += st.thinking("me see");
  sse += st.text("42");
  sse += st.finish("stop", 5, 0, 9, 4);
  int64_t seq = 0;
  auto evs = parse_sse(sse, &seq);
  EXPECT_EQ(names(evs),
            (std::vector<std::string>{"response.created", "response.in_progress", "response.output_item.added",
                                      "response.content_part.added", "response.reasoning_text.delta",
                                      "response.reasoning_text.delta", "response.reasoning_text.done",
                                      "response.content_part.done", "response.output_item.done",
                                      "response.output_item.added", "response.content_part.added",
                                      "response.output_text.delta", "response.output_text.done",
                                      "response.content_part.done", "response.output_item.done",
                                      "response.completed"}));
  EXPECT_EQ(evs[2].second["item"], ojson::parse(R"({"id":"rs_t2_0","type":"reasoning","summary":[],"content":[],
    "status":"in_progress"})"));
  EXPECT_EQ(evs[3].second["part"], ojson::parse(R"({"type":"reasoning_text","text":""})"));
  EXPECT_EQ(evs[6].second["text"], "Let me see");
  EXPECT_EQ(evs[8].second["item"]["content"], ojson::parse(R"([{"type":"reasoning_text","text":"Let me see"}])"));
  EXPECT_EQ(evs[9].second["output_index"], 1);
  EXPECT_EQ(evs[9].second["item"]["id"], "msg_t2_1");
  const ojson& r = evs.back().second["response"];
  EXPECT_EQ(r["output"].size(), 2u);
  EXPECT_EQ(r["usage"]["output_tokens_details"]["reasoning_tokens"], 4);
  sdk_accumulate(evs);
}

TEST(responses_api, StreamTextThenTwoToolCalls) {
  ResponsesStream st("resp_t3", "qwen", 1, ojson::object());
  std::string sse = st.start();
  sse += st.text("Running.");
  sse += st.tool_start(0, "call_a", "shell");
  sse += st.tool_args(0, "{\"command\":");
  sse += st.tool_args(0, "[\"ls\"]}");
  sse += st.tool_start(1, "call_b", "shell");
  sse += st.tool_args(1, "{}");
  sse += st.tool_args(5, "{}");  // never started: dropped
  sse += st.finish("tool_calls", 30, 0, 15);
  int64_t seq = 0;
  auto evs = parse_sse(sse, &seq);
  EXPECT_EQ(names(evs),
            (std::vector<std::string>{
                "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
                "response.output_text.delta", "response.output_text.done", "response.content_part.done",
                "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
                "response.function_call_arguments.delta", "response.function_call_arguments.done",
                "response.output_item.done", "response.output_item.added", "response.function_call_arguments.delta",
                "response.function_call_arguments.done", "response.output_item.done", "response.completed"}));
  EXPECT_EQ(evs[8].second, ojson::parse(R"({"type":"response.output_item.added","output_index":1,
    "item":{"id":"fc_t3_1","type":"function_call","status":"in_progress","arguments":"","call_id":"call_a","name":"shell"},
    "sequence_number":8})"));
  EXPECT_EQ(evs[9].second, ojson::parse(R"({"type":"response.function_call_arguments.delta","item_id":"fc_t3_1",
    "output_index":1,"delta":"{\"command\":","sequence_number":9})"));
  EXPECT_EQ(evs[11].second, ojson::parse(R"({"type":"response.function_call_arguments.done","item_id":"fc_t3_1",
    "output_index":1,"name":"shell","arguments":"{\"command\":[\"ls\"]}","sequence_number":11})"));
  EXPECT_EQ(evs[12].second["item"]["status"], "completed");
  EXPECT_EQ(evs[13].second["item"]["id"], "fc_t3_2");
  const ojson snap = sdk_accumulate(evs);
  ASSERT_EQ(snap["output"].size(), 3u);
  EXPECT_EQ(snap["output"][1]["arguments"], "{\"command\":[\"ls\"]}");
  EXPECT_EQ(snap["output"][2]["call_id"], "call_b");
  EXPECT_EQ(snap["output"][2]["arguments"], "{}");
  EXPECT_EQ(snap["status"], "completed");
}

TEST(responses_api, StreamMaxTokens) {
  ResponsesStream st("resp_t4", "qwen", 1, ojson::parse(R"({"max_output_tokens":3})"));
  std::string sse = st.start();
  sse += st.text("cut o");
  sse += st.finish("length", 4, 0, 3);
  int64_t seq = 0;
  auto evs = parse_sse(sse, &seq);
  EXPECT_EQ(evs.back().first, "response.incomplete");
  const ojson& r = evs.back().second["response"];
  EXPECT_EQ(r["status"], "incomplete");
  EXPECT_EQ(r["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(r["max_output_tokens"], 3);
  EXPECT_EQ(r["output"][0]["status"], "incomplete");
  EXPECT_EQ(evs[evs.size() - 2].second["item"]["status"], "incomplete");  // output_item.done
  sdk_accumulate(evs);
}

TEST(responses_api, StreamError) {
  ResponsesStream st("resp_t5", "qwen", 1, ojson::object());
  ApiError e;
  e.status = 500;
  e.message = "engine failed";
  int64_t seq = 0;
  std::string sse = st.start();
  sse += st.text("x");
  sse += st.error(e);
  auto evs = parse_sse(sse, &seq);
  EXPECT_EQ(evs.back().first, "response.failed");
  EXPECT_EQ(evs.back().second["response"]["status"], "failed");
  EXPECT_EQ(evs.back().second["response"]["error"], ojson::parse(R"({"code":"server_error","message":"engine failed"})"));
  EXPECT_EQ(st.finish("stop", 1, 0, 1), "");
}

}  // namespace
}  // namespace tachyon::server
