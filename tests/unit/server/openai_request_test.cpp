// Request parsing and validation: every bad field is a 400 naming it; nothing throws.
#include <gtest/gtest.h>

#include "server/openai.h"

namespace tachyon::server {
namespace {

struct Parsed {
  bool ok;
  CompletionParams p;
  ApiError err;
};

Parsed parse(Endpoint ep, const std::string& body) {
  Parsed r;
  r.ok = parse_completion_request(ep, body, ParseLimits{}, &r.p, &r.err);
  return r;
}
Parsed chat(const std::string& extra) {
  return parse(Endpoint::kChat, R"({"messages":[{"role":"user","content":"hi"}])" + extra + "}");
}
Parsed comp(const std::string& extra) { return parse(Endpoint::kCompletions, R"({"prompt":"hi")" + extra + "}"); }

TEST(server_request, ChatDefaults) {
  auto r = chat("");
  ASSERT_TRUE(r.ok) << r.err.message;
  EXPECT_EQ(r.p.n, 1);
  EXPECT_EQ(r.p.max_tokens, -1);
  EXPECT_FLOAT_EQ(r.p.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.p.stream);
  EXPECT_FALSE(r.p.seed_set);
  EXPECT_EQ(r.p.logprobs, -1);
  EXPECT_TRUE(r.p.tools.is_null());
  ASSERT_EQ(r.p.messages.size(), 1u);
}

TEST(server_request, Speculative) {
  auto r = chat(R"(,"speculative":{"mode":"ngram","max_draft":4})");
  ASSERT_TRUE(r.ok) << r.err.message;
  ASSERT_TRUE(r.p.spec_mode.has_value());
  EXPECT_EQ(*r.p.spec_mode, spec::Mode::kNgram);
  EXPECT_EQ(r.p.spec_max, 4);
  r = chat("");
  ASSERT_TRUE(r.ok);
  EXPECT_FALSE(r.p.spec_mode.has_value());
  EXPECT_EQ(r.p.spec_max, -1);
}

TEST(server_request, ChatAllParams) {
  auto r = chat(R"(,"model":"x","max_tokens":12,"temperature":0,"top_p":0.9,"top_k":40,"min_p":0.05,"seed":-7,
      "stop":["a","bb","","ccc","d","e"],"n":3,"presence_penalty":0.5,"frequency_penalty":-0.5,
      "repetition_penalty":1.1,"logprobs":true,"top_logprobs":5,"stream":true,
      "stream_options":{"include_usage":true},"ignore_eos":true,"unknown_field":{"x":[1,2]},"user":"u")");
  ASSERT_TRUE(r.ok) << r.err.message;
  EXPECT_EQ(r.p.model, "x");
  EXPECT_EQ(r.p.max_tokens, 12);
  EXPECT_EQ(r.p.sampling.temperature, 0.0f);
  EXPECT_FLOAT_EQ(r.p.sampling.top_p, 0.9f);
  EXPECT_EQ(r.p.sampling.top_k, 40);
  EXPECT_FLOAT_EQ(r.p.sampling.min_p, 0.05f);
  EXPECT_TRUE(r.p.seed_set);
  EXPECT_EQ(r.p.sampling.seed, static_cast<uint64_t>(int64_t{-7}));
  EXPECT_EQ(r.p.stop, (std::vector<std::string>{"a", "bb", "ccc", "d", "e"}));  // empty dropped
  EXPECT_EQ(r.p.n, 3);
  EXPECT_FLOAT_EQ(r.p.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.p.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.p.sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(r.p.logprobs, 5);
  EXPECT_TRUE(r.p.stream);
  EXPECT_TRUE(r.p.include_usage);
  EXPECT_TRUE(r.p.ignore_eos);
}

TEST(server_request, MaxCompletionTokensAndIntegralFloats) {
  auto r = chat(R"(,"max_completion_tokens":7.0,"n":2.0)");
  ASSERT_TRUE(r.ok) << r.err.message;
  EXPECT_EQ(r.p.max_tokens, 7);
  EXPECT_EQ(r.p.n, 2);
}

TEST(server_request, NullMeansDefault) {
  auto r = chat(R"(,"max_tokens":null,"temperature":null,"stop":null,"seed":null,"stream_options":null)");
  ASSERT_TRUE(r.ok) << r.err.message;
  EXPECT_EQ(r.p.max_tokens, -1);
  EXPECT_FALSE(r.p.seed_set);
}

TEST(server_request, StopAsString) {
  auto r = chat(R"(,"stop":"\n\n")");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.stop, (std::vector<std::string>{"\n\n"}));
}

TEST(server_request, WrongTypesNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(,"max_tokens":"12")", "max_tokens"},
      {R"(,"max_tokens":1.5)", "max_tokens"},
      {R"(,"max_tokens":0)", "max_tokens"},
      {R"(,"max_tokens":-3)", "max_tokens"},
      {R"(,"max_tokens":1e30)", "max_tokens"},
      {R"(,"max_tokens":99999999999999999999999)", "max_tokens"},
      {R"(,"temperature":"hot")", "temperature"},
      {R"(,"temperature":2.5)", "temperature"},
      {R"(,"temperature":-1)", "temperature"},
      {R"(,"top_p":1.5)", "top_p"},
      {R"(,"top_k":-2)", "top_k"},
      {R"(,"top_k":true)", "top_k"},
      {R"(,"min_p":[0.1])", "min_p"},
      {R"(,"seed":"42")", "seed"},
      {R"(,"seed":1.5)", "seed"},
      {R"(,"stop":5)", "stop"},
      {R"(,"stop":["a",1])", "stop"},
      {R"(,"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"])", "stop"},
      {R"(,"n":0)", "n"},
      {R"(,"n":1000)", "n"},
      {R"(,"presence_penalty":3)", "presence_penalty"},
      {R"(,"frequency_penalty":"x")", "frequency_penalty"},
      {R"(,"repetition_penalty":0)", "repetition_penalty"},
      {R"(,"logprobs":1)", "logprobs"},
      {R"(,"top_logprobs":21,"logprobs":true)", "top_logprobs"},
      {R"(,"top_logprobs":3)", "top_logprobs"},
      {R"(,"stream":"yes")", "stream"},
      {R"(,"stream_options":true)", "stream_options"},
      {R"(,"stream_options":{"include_usage":1})", "stream_options.include_usage"},
      {R"(,"ignore_eos":1)", "ignore_eos"},
      {R"(,"model":7)", "model"},
      {R"(,"tools":{})", "tools"},
      {R"(,"tools":[1])", "tools[0]"},
      {R"(,"tool_choice":"maybe")", "tool_choice"},
      {R"(,"response_format":{"type":"json_schema"})", "response_format.json_schema"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":3}})",
       "response_format.json_schema.schema"},
      {R"(,"response_format":{"type":"json_schema","json_schema":{"schema":{},"strict":"yes"}})",
       "response_format.json_schema.strict"},
      {R"(,"response_format":{"type":"xml"})", "response_format.type"},
      {R"(,"response_format":{"type":"json_object"},"regex":"a")", "response_format"},
      {R"(,"grammar":7)", "grammar"},
      {R"(,"grammar":"root ::= [a]","regex":"a")", "regex"},
      {R"(,"tools":[{"type":"function","function":{"description":"no name"}}])", "tools[0].function.name"},
      {R"(,"tools":[{"type":"function","function":{"name":"a b"}}])", "tools[0].function.name"},
      {R"(,"tools":[{"type":"retrieval"}])", "tools[0].type"},
      {R"(,"tools":[{"type":"function","function":{"name":"f","parameters":[]}}])", "tools[0].function.parameters"},
      {R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}})",
       "tool_choice.function.name"},
      {R"(,"tool_choice":{"type":"function"})", "tool_choice.function.name"},
      {R"(,"parallel_tool_calls":"no")", "parallel_tool_calls"},
      {R"(,"logit_bias":{"abc":-100})", "logit_bias"},
      {R"(,"logit_bias":{"5":"x"})", "logit_bias"},
      {R"(,"best_of":4)", "best_of"},
      {R"(,"speculative":"ngram")", "speculative"},
      {R"(,"speculative":{"mode":"eagle"})", "speculative.mode"},
      {R"(,"speculative":{"max_draft":17})", "speculative.max_draft"},
      {R"(,"speculative":{"max_draft":2.5})", "speculative.max_draft"},
      {R"(,"speculative":{"draft_model":"x"})", "speculative.draft_model"},
  };
  for (const auto& [extra, param] : cases) {
    auto r = chat(extra);
    EXPECT_FALSE(r.ok) << extra;
    EXPECT_EQ(r.err.status, 400) << extra;
    EXPECT_EQ(r.err.param, param) << extra << " -> " << r.err.message;
    EXPECT_FALSE(r.err.message.empty());
  }
}

TEST(server_request, BadMessages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "messages"},
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({"messages":[1]})", "messages[0]"},
      {R"({"messages":[{"content":"x"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":"a"},{"role":3,"content":"x"}]})", "messages[1].role"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages[0].content[0].text"},
      {R"({"messages":[{"role":"user","content":"x","name":1}]})", "messages[0].name"},
  };
  for (const auto& [body, param] : cases) {
    auto r = parse(Endpoint::kChat, body);
    EXPECT_FALSE(r.ok) << body;
    EXPECT_EQ(r.err.param, param) << body << " -> " << r.err.message;
  }
  auto ok = parse(Endpoint::kChat,
                  R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"}]},{"role":"assistant","content":null}]})");
  EXPECT_TRUE(ok.ok) << ok.err.message;
}

TEST(server_request, InvalidJson) {
  for (const std::string body : {"", "{", "{\"messages\":[", "not json", "[1,2]", "\"str\"", "{\"a\":1,}",
                                  "{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}",
                                  "{\"max_tokens\":1e400,\"messages\":[]}"}) {
    auto r = parse(Endpoint::kChat, body);
    EXPECT_FALSE(r.ok) << body;
    EXPECT_EQ(r.err.status, 400);
    EXPECT_EQ(r.err.type, "invalid_request_error");
  }
}

TEST(server_request, DeepNestingRejectedBeforeParsing) {
  std::string body = "{\"messages\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  auto r = parse(Endpoint::kChat, body);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.err.message.find("nested"), std::string::npos);
  EXPECT_EQ(json_nesting_depth(R"({"a":"[[[[{{{{","b":[{"c":1}]})"), 3);
  EXPECT_EQ(json_nesting_depth(R"({"a":"\"[[["})"), 1);
}

TEST(server_request, ToolChoiceNoneDropsTools) {
  auto r = chat(R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none")");
  ASSERT_TRUE(r.ok) << r.err.message;
  EXPECT_TRUE(r.p.tools.is_null());
  auto r2 = chat(R"(,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto")");
  ASSERT_TRUE(r2.ok);
  EXPECT_EQ(r2.p.tools.size(), 1u);
}

TEST(server_request, TopPZeroMeansBestOnly) {
  auto r = chat(R"(,"top_p":0)");
  ASSERT_TRUE(r.ok);
  EXPECT_GT(r.p.sampling.top_p, 0.0f);
  EXPECT_LT(r.p.sampling.top_p, 1e-3f);
}

TEST(server_request, LogitBiasBans) {
  auto r = chat(R"(,"logit_bias":{"5":-100,"6":3})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.sampling.banned_tokens, (std::vector<int32_t>{5}));
}

TEST(server_request, CompletionPrompts) {
  auto r = comp("");
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.p.prompts.size(), 1u);
  EXPECT_EQ(r.p.prompts[0].text, "hi");

  r = parse(Endpoint::kCompletions, R"({"prompt":["one"]})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.prompts.size(), 1u);

  r = parse(Endpoint::kCompletions, R"({"prompt":["one","two"],"n":2})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.prompts.size(), 2u);

  r = parse(Endpoint::kCompletions, R"({"prompt":[1,2,3]})");
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.p.prompts.size(), 1u);
  EXPECT_TRUE(r.p.prompts[0].is_ids);
  EXPECT_EQ(r.p.prompts[0].ids, (std::vector<int32_t>{1, 2, 3}));

  r = parse(Endpoint::kCompletions, R"({"prompt":[[1,2],[3]]})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.prompts.size(), 2u);

  for (const std::string bad : {R"({})", R"({"prompt":5})", R"({"prompt":[]})", R"({"prompt":[1,"a"]})",
                                 R"({"prompt":[-1]})", R"({"prompt":[1e20]})", R"({"prompt":[[]]})",
                                 R"({"prompt":[{"a":1}]})", R"({"prompt":"x","echo":true})",
                                 R"({"prompt":"x","suffix":"y"})"}) {
    auto b = parse(Endpoint::kCompletions, bad);
    EXPECT_FALSE(b.ok) << bad;
    EXPECT_TRUE(b.err.param == "prompt" || b.err.param == "echo" || b.err.param == "suffix") << bad << " " << b.err.param;
  }
}

TEST(server_request, CompletionLogprobsIsAnInteger) {
  auto r = comp(R"(,"logprobs":3)");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.logprobs, 3);
  r = comp(R"(,"logprobs":0)");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.p.logprobs, 0);
  r = comp(R"(,"logprobs":true)");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.err.param, "logprobs");
  r = comp(R"(,"logprobs":50)");
  EXPECT_FALSE(r.ok);
}

TEST(server_request, ChoicesLimit) {
  auto r = parse(Endpoint::kCompletions, R"({"prompt":["a","b","c","d","e"],"n":4})");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.err.param, "n");
}

}  // namespace
}  // namespace tachyon::server
