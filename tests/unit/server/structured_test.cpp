// Structured-output planning: which constraint a request gets, the tool-call grammars per
// family (checked against the family's parser: what the grammar lets a model write parses
// into the right call), and GBNF rule prefixing.
#include <gtest/gtest.h>

#include "constrain/grammar.h"
#include "constrain/matcher.h"
#include "server/structured.h"

namespace tachyon::server {
namespace {

std::shared_ptr<const constrain::TokenIndex> no_vocab() {
  return std::make_shared<constrain::TokenIndex>(std::vector<std::string>{}, std::vector<bool>{}, std::vector<int32_t>{});
}

// Does the grammar accept `text` as a whole sentence?
bool accepts(const std::string& gbnf, const std::string& text) {
  std::string err;
  auto g = constrain::parse_gbnf(gbnf, &err);
  EXPECT_TRUE(g) << err << "\n" << gbnf;
  if (!g) return false;
  constrain::Matcher m(g, no_vocab());
  return m.accept_bytes(text) && m.is_complete();
}

const ojson kTools = ojson::parse(R"([
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
     "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}}, "required": ["city"],
     "additionalProperties": false}}},
  {"type": "function", "function": {"name": "ping"}}])");

TEST(StructuredGbnf, PrefixRenamesRulesOnly) {
  EXPECT_EQ(prefix_gbnf_rules("root ::= a \"b c\" [x-y\\]] b{2,3} # c d\na ::= \"q\\\"r\" | b-2_x\n", "p-"),
            "p-root ::= p-a \"b c\" [x-y\\]] p-b{2,3} # c d\np-a ::= \"q\\\"r\" | p-b-2_x\n");
}

TEST(StructuredGbnf, HermesCallsParseBackIntoTheCalls) {
  std::string g, err;
  std::vector<std::string> warnings;
  ASSERT_TRUE(tool_call_gbnf(chat::ToolFamily::kHermes, kTools, "", true, &g, &warnings, &err)) << err;
  const std::string one = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"C\"}}\n</tool_call>";
  const std::string two = one + "\n<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>";
  EXPECT_TRUE(accepts(g, one));
  EXPECT_TRUE(accepts(g, two));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"nope\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"C\"}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"x\", \"zip\": 1}}\n</tool_call>"));
  // what the grammar accepts, the family's parser reads as the calls
  chat::OutputParser p(chat::ToolFamily::kHermes, {}, true, 1);
  p.push(two);
  p.finish();
  ASSERT_EQ(p.result().tool_calls.size(), 2u);
  EXPECT_EQ(p.result().tool_calls[0].name, "get_weather");
  EXPECT_EQ(ojson::parse(p.result().tool_calls[0].arguments), ojson::parse(R"({"city": "Paris", "unit": "C"})"));
  EXPECT_EQ(p.result().tool_calls[1].name, "ping");
  EXPECT_EQ(p.result().content, "");

  // one call only, and only the named function
  ASSERT_TRUE(tool_call_gbnf(chat::ToolFamily::kHermes, kTools, "ping", false, &g, &warnings, &err));
  EXPECT_FALSE(accepts(g, one));
  EXPECT_TRUE(accepts(g, "<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(accepts(g, "<tool_call>{\"name\": \"ping\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"ping\", \"arguments\": {}}</tool_call>"));
}

TEST(StructuredGbnf, Llama3AndFunctionaryFormats) {
  std::string g, err;
  std::vector<std::string> warnings;
  ASSERT_TRUE(tool_call_gbnf(chat::ToolFamily::kLlama3, kTools, "", true, &g, &warnings, &err)) << err;
  const std::string l3 = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}";
  EXPECT_TRUE(accepts(g, l3));
  chat::OutputParser p(chat::ToolFamily::kLlama3, {}, true, 1);
  p.push(l3);
  p.finish();
  ASSERT_EQ(p.result().tool_calls.size(), 1u);
  EXPECT_EQ(p.result().tool_calls[0].name, "get_weather");

  ASSERT_TRUE(tool_call_gbnf(chat::ToolFamily::kFunctionaryV31, kTools, "", false, &g, &warnings, &err)) << err;
  const std::string fv = "<function=get_weather>{\"city\": \"Oslo\"}</function>";
  EXPECT_TRUE(accepts(g, fv));
  chat::OutputParser q(chat::ToolFamily::kFunctionaryV31, {}, true, 1);
  q.push(fv);
  q.finish();
  ASSERT_EQ(q.result().tool_calls.size(), 1u);
  EXPECT_EQ(q.result().tool_calls[0].arguments, "{\"city\":\"Oslo\"}");

  // families without a grammar here: false with no error
  EXPECT_FALSE(tool_call_gbnf(chat::ToolFamily::kQwen3Coder, kTools, "", true, &g, &warnings, &err));
  EXPECT_TRUE(err.empty());
}

CompletionParams chat_params(const std::string& extra) {
  CompletionParams p;
  ApiError e;
  const std::string body = R"({"messages": [{"role": "user", "content": "x"}])" + extra + "}";
  EXPECT_TRUE(parse_completion_request(Endpoint::kChat, body, ParseLimits{}, &p, &e)) << e.message;
  return p;
}

TEST(StructuredPlan, WhichConstraintARequestGets) {
  GrammarCache cache;
  StructuredPlan plan;
  ApiError err;
  const std::string tools = R"(, "tools": )" + kTools.dump();

  // no tools, no format: nothing
  ASSERT_TRUE(plan_structured(chat_params(""), chat::ToolFamily::kHermes, cache, &plan, &err));
  EXPECT_FALSE(plan.constraint);

  // tools, auto: the call grammar, lazy at the family's trigger
  ASSERT_TRUE(plan_structured(chat_params(tools), chat::ToolFamily::kHermes, cache, &plan, &err));
  ASSERT_TRUE(plan.constraint);
  EXPECT_EQ(plan.constraint->triggers, std::vector<std::string>{"<tool_call>"});

  // required: from the first token
  ASSERT_TRUE(plan_structured(chat_params(tools + R"(, "tool_choice": "required")"), chat::ToolFamily::kHermes, cache,
                              &plan, &err));
  ASSERT_TRUE(plan.constraint);
  EXPECT_TRUE(plan.constraint->triggers.empty());
  auto first = plan.constraint->grammar;

  // the same grammar text again: the cached grammar (and its mask cache)
  ASSERT_TRUE(plan_structured(chat_params(tools + R"(, "tool_choice": "required")"), chat::ToolFamily::kHermes, cache,
                              &plan, &err));
  EXPECT_EQ(plan.constraint->grammar, first);

  // tools auto + response_format: the content's schema wins, with a warning
  ASSERT_TRUE(plan_structured(chat_params(tools + R"(, "response_format": {"type": "json_object"})"),
                              chat::ToolFamily::kHermes, cache, &plan, &err));
  ASSERT_TRUE(plan.constraint);
  EXPECT_TRUE(plan.constraint->triggers.empty());
  ASSERT_EQ(plan.warnings.size(), 1u);

  // a family without a grammar: required is reported as not enforced
  ASSERT_TRUE(plan_structured(chat_params(tools + R"(, "tool_choice": "required")"), chat::ToolFamily::kQwen3Coder,
                              cache, &plan, &err));
  EXPECT_FALSE(plan.constraint);
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_NE(plan.warnings[0].find("not enforced"), std::string::npos);

  // loosened keywords are reported; strict turns them into a 400 naming the keyword
  ASSERT_TRUE(plan_structured(
      chat_params(R"(, "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "integer", "multipleOf": 3}}})"),
      chat::ToolFamily::kNone, cache, &plan, &err));
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_NE(plan.warnings[0].find("multipleOf"), std::string::npos);
  EXPECT_FALSE(plan_structured(
      chat_params(R"(, "response_format": {"type": "json_schema", "json_schema": {"name": "n", "strict": true, "schema": {"type": "integer", "multipleOf": 3}}})"),
      chat::ToolFamily::kNone, cache, &plan, &err));
  EXPECT_EQ(err.status, 400);
  EXPECT_EQ(err.param, "response_format.json_schema.schema");
  EXPECT_NE(err.message.find("multipleOf"), std::string::npos);

  // a grammar that does not compile: 400 naming the line and column
  EXPECT_FALSE(plan_structured(chat_params(R"(, "grammar": "root ::= (\"a\"")"), chat::ToolFamily::kNone, cache, &plan,
                               &err));
  EXPECT_EQ(err.param, "grammar");
  EXPECT_NE(err.message.find("1:"), std::string::npos) << err.message;
}

}  // namespace
}  // namespace tachyon::server
