// Tool-call / reasoning output parsing: per-family samples (written from each template's
// render of an assistant tool call in chat_template_goldens.json), streamed at every cut,
// malformed input, and family detection on every reference template.
#include "chat/tool_calls.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace tachyon::chat {
namespace {

using Kind = OutputDelta::Kind;
using Calls = std::vector<std::pair<std::string, std::string>>;  // name, arguments

const ReasoningFormat kNoThink{};
const ReasoningFormat kThink{"<think>", "</think>", false};
const ReasoningFormat kThinkOpen{"<think>", "</think>", true};

struct Sample {
  std::string label;
  ToolFamily family;
  ReasoningFormat reasoning;
  std::string text;
  std::string content, thought;
  Calls calls;
  bool tools = true;
};

// What a client reconstructs from the deltas.
struct Collected {
  std::string content, reasoning;
  std::vector<ToolCall> calls;
  std::vector<std::string> content_deltas;
};

void collect(const std::vector<OutputDelta>& ds, Collected* c) {
  for (const auto& d : ds) {
    switch (d.kind) {
      case Kind::kContent:
        ASSERT_FALSE(d.text.empty());
        c->content += d.text;
        c->content_deltas.push_back(d.text);
        break;
      case Kind::kReasoning:
        ASSERT_FALSE(d.text.empty());
        c->reasoning += d.text;
        break;
      case Kind::kToolCallStart:
        ASSERT_EQ(d.index, static_cast<int>(c->calls.size()));
        c->calls.push_back(ToolCall{d.id, d.name, ""});
        break;
      case Kind::kToolCallArgs:
        ASSERT_GE(d.index, 0);
        ASSERT_LT(d.index, static_cast<int>(c->calls.size()));
        c->calls[d.index].arguments += d.text;
        break;
    }
  }
}

// Pushes `text` cut at `cuts` (ascending offsets) and finishes.
Collected run(const Sample& s, const std::vector<size_t>& cuts, OutputParser::Result* result) {
  OutputParser p(s.family, s.reasoning, s.tools, 42);
  Collected c;
  size_t prev = 0;
  for (size_t cut : cuts) {
    collect(p.push(std::string_view(s.text).substr(prev, cut - prev)), &c);
    prev = cut;
  }
  collect(p.push(std::string_view(s.text).substr(prev)), &c);
  collect(p.finish(), &c);
  if (result) *result = p.result();
  return c;
}

// Well-formed UTF-8 (lead and continuation bytes; overlongs not checked).
bool complete_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : c >= 0xF8 ? 0 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

void check_sample(const Sample& s) {
  SCOPED_TRACE(s.label);
  OutputParser::Result one;
  Collected whole = run(s, {}, &one);
  EXPECT_EQ(one.content, s.content);
  EXPECT_EQ(one.reasoning, s.thought);
  ASSERT_EQ(one.tool_calls.size(), s.calls.size());
  for (size_t i = 0; i < s.calls.size(); ++i) {
    EXPECT_EQ(one.tool_calls[i].name, s.calls[i].first);
    EXPECT_EQ(one.tool_calls[i].arguments, s.calls[i].second);
    EXPECT_EQ(one.tool_calls[i].id.substr(0, 5), "call_");
    EXPECT_EQ(one.tool_calls[i].id.size(), 29u);
  }
  EXPECT_EQ(whole.content, one.content);
  EXPECT_EQ(whole.reasoning, one.reasoning);

  // Every byte a push; then random cuts. The deltas must rebuild the one-shot result, and
  // since content deltas are append-only, their concatenation being the final content
  // means no marker (or marker prefix) ever leaked into a content delta.
  std::vector<std::vector<size_t>> cut_sets;
  std::vector<size_t> every;
  for (size_t i = 1; i < s.text.size(); ++i) every.push_back(i);
  cut_sets.push_back(every);
  std::mt19937 rng(7);
  for (int t = 0; t < 30; ++t) {
    std::vector<size_t> cuts;
    size_t n = rng() % 6 + 1;
    for (size_t k = 0; k < n && s.text.size() > 1; ++k) cuts.push_back(rng() % (s.text.size() - 1) + 1);
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    cut_sets.push_back(cuts);
  }
  for (const auto& cuts : cut_sets) {
    OutputParser::Result r;
    Collected c = run(s, cuts, &r);
    ASSERT_EQ(c.content, one.content) << "cuts: " << cuts.size();
    ASSERT_EQ(c.reasoning, one.reasoning);
    ASSERT_EQ(r.content, one.content);
    ASSERT_EQ(c.calls.size(), one.tool_calls.size());
    for (size_t i = 0; i < c.calls.size(); ++i) {
      EXPECT_EQ(c.calls[i].id, one.tool_calls[i].id);
      EXPECT_EQ(c.calls[i].name, one.tool_calls[i].name);
      EXPECT_EQ(c.calls[i].arguments, one.tool_calls[i].arguments);
    }
    for (const auto& d : c.content_deltas) EXPECT_TRUE(complete_utf8(d)) << d;
  }
}

const std::string kW = R"({"city":"Hangzhou"})";
const std::string kT = R"({"tz":"CST"})";

std::vector<Sample> samples() {
  const ToolFamily H = ToolFamily::kHermes;
  std::vector<Sample> v = {
      // ---- Hermes / Qwen2.5 / Qwen3 ----
      {"hermes one", H, kNoThink,
       "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}\n</tool_call>", "", "",
       {{"get_weather", kW}}},
      {"hermes none", H, kNoThink, "Hello! 2+2 = 4. 一句话 <tool", "Hello! 2+2 = 4. 一句话 <tool", "", {}},
      {"hermes content + two", H, kNoThink,
       "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}\n"
       "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CST\"}}\n</tool_call>",
       "Let me check.", "", {{"get_weather", kW}, {"get_time", kT}}},
      {"qwen3 reasoning + call", H, kThink,
       "<think>\nThe user wants the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
       "{\"city\": \"Hangzhou\"}}\n</tool_call>",
       "", "The user wants the weather.", {{"get_weather", kW}}},
      {"qwen3 starts open", H, kThinkOpen, "I know this.\n</think>\n\nIt is 4.", "It is 4.", "I know this.", {}},
      {"hermes content after", H, kNoThink,
       "<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Hangzhou\\\"}\"}</tool_call>\n"
       "Done.",
       "Done.", "", {{"get_weather", kW}}},
      {"hermes holding qwen3-coder body", H, kNoThink,
       "<tool_call>\n<function=get_weather>\n<parameter=city>\nHangzhou\n</parameter>\n</function>\n</tool_call>",
       "", "", {{"get_weather", kW}}},
      // ---- Qwen3-Coder / Qwen3.5 / Nemotron 3 / Step 3.5 ----
      {"qwen3 coder two", ToolFamily::kQwen3Coder, kThink,
       "<think>\n\n</think>\n\nSure.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nHangzhou\n</parameter>\n"
       "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=get_time>\n"
       "<parameter=tz>\nCST\n</parameter>\n</function>\n</tool_call>",
       "Sure.", "", {{"get_weather", R"({"city":"Hangzhou","days":3})"}, {"get_time", kT}}},
      {"qwen3 coder multiline value", ToolFamily::kQwen3Coder, kNoThink,
       "<tool_call>\n<function=write>\n<parameter=code>\nif a < b:\n    x = 1\n</parameter>\n</function>\n"
       "</tool_call>",
       "", "", {{"write", R"({"code":"if a < b:\n    x = 1"})"}}},
      // ---- Seed-OSS ----
      {"seed oss", ToolFamily::kSeedOss, {"<seed:think>", "</seed:think>", false},
       "<seed:think>Need weather.</seed:think>\n<seed:tool_call>\n<function=get_weather>\n<parameter=city>Hangzhou"
       "</parameter>\n</function>\n</seed:tool_call>",
       "", "Need weather.", {{"get_weather", kW}}},
      // ---- Llama 3.x ----
      {"llama3 bare", ToolFamily::kLlama3, kNoThink,
       "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Hangzhou\"}}", "", "", {{"get_weather", kW}}},
      {"llama3 python_tag two", ToolFamily::kLlama3, kNoThink,
       "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Hangzhou\"}}\n{\"name\": \"get_time\", "
       "\"parameters\": {\"tz\": \"CST\"}}",
       "", "", {{"get_weather", kW}, {"get_time", kT}}},
      {"llama3 json content", ToolFamily::kLlama3, kNoThink, "{\"a\": 1} is JSON, {\"name\": \"x\"} too.",
       "{\"a\": 1} is JSON, {\"name\": \"x\"} too.", "", {}},
      {"llama3 text then brace", ToolFamily::kLlama3, kNoThink,
       "Use {\"name\": \"get_weather\", \"parameters\": {}}", "Use {\"name\": \"get_weather\", \"parameters\": {}}",
       "", {}},
      // ---- Mistral ----
      {"mistral args form", ToolFamily::kMistral, kNoThink, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Hangzhou\"}", "",
       "", {{"get_weather", kW}}},
      {"mistral small 3.2 two", ToolFamily::kMistral, {"[THINK]", "[/THINK]", false},
       "[THINK]Two calls.[/THINK]Checking.[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{\"city\": \"Hangzhou\"}"
       "[TOOL_CALLS]get_time[ARGS]{\"tz\": \"CST\"}",
       "Checking.", "Two calls.", {{"get_weather", kW}, {"get_time", kT}}},
      {"mistral nemo array", ToolFamily::kMistral, kNoThink,
       "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}, \"id\": \"a1b2c3d4e\"}, "
       "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CST\"}}]",
       "", "", {{"get_weather", kW}, {"get_time", kT}}},
      // ---- DeepSeek ----
      {"deepseek r1", ToolFamily::kDeepSeekR1, kThinkOpen,
       "Need the weather.\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
       "```json\n{\"city\": \"Hangzhou\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n"
       "```json\n{\"tz\": \"CST\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "", "Need the weather.", {{"get_weather", kW}, {"get_time", kT}}},
      {"deepseek v3.1", ToolFamily::kDeepSeekV3, kThink,
       "Let me look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": "
       "\"Hangzhou\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
       "Let me look.", "", {{"get_weather", kW}}},
      {"deepseek v3.2 dsml", ToolFamily::kDeepSeekV32, kThink,
       "<think>hm</think>\n\n<｜DSML｜function_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter "
       "name=\"city\" string=\"true\">Hangzhou</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">3"
       "</｜DSML｜parameter>\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"get_time\">\n<｜DSML｜parameter name=\"tz\" "
       "string=\"true\">CST</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜function_calls>",
       "", "hm", {{"get_weather", R"({"city":"Hangzhou","days":3})"}, {"get_time", kT}}},
      // ---- gpt-oss (harmony) ----
      {"gpt-oss call", ToolFamily::kGptOss, kNoThink,
       "<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary "
       "to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Hangzhou\"}<|call|>",
       "", "Need weather.", {{"get_weather", kW}}},
      {"gpt-oss template form, no <|call|>", ToolFamily::kGptOss, kNoThink,
       " to=functions.get_weather<|channel|>commentary json<|message|>{\"city\": \"Hangzhou\"}", "", "",
       {{"get_weather", kW}}},
      {"gpt-oss final", ToolFamily::kGptOss, kNoThink,
       "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>It is 4.<|return|>",
       "It is 4.", "Easy.", {}},
      {"gpt-oss plain text", ToolFamily::kGptOss, kNoThink, "Just text.", "Just text.", "", {}},
      // ---- others ----
      {"granite 3.3", ToolFamily::kGranite, kThink,
       "<|tool_call|>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}, {\"name\": \"get_time\", "
       "\"arguments\": {\"tz\": \"CST\"}}]",
       "", "", {{"get_weather", kW}, {"get_time", kT}}},
      {"functionary v3.1", ToolFamily::kFunctionaryV31, kNoThink,
       "Checking.<function=get_weather>{\"city\": \"Hangzhou\"}</function>", "Checking.", "", {{"get_weather", kW}}},
      {"functionary v3.2 call", ToolFamily::kFunctionaryV32, kNoThink,
       "get_weather\n{\"city\": \"Hangzhou\"}>>>get_time\n{\"tz\": \"CST\"}", "", "",
       {{"get_weather", kW}, {"get_time", kT}}},
      {"functionary v3.2 all", ToolFamily::kFunctionaryV32, kNoThink,
       "all\nLet me check.>>>get_weather\n{\"city\": \"Hangzhou\"}", "Let me check.", "", {{"get_weather", kW}}},
      {"command r7b", ToolFamily::kCommandR7B, {"<|START_THINKING|>", "<|END_THINKING|>", false},
       "<|START_THINKING|>I will call.<|END_THINKING|><|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": "
       "\"get_weather\", \"parameters\": {\"city\": \"Hangzhou\"}}\n]<|END_ACTION|>",
       "", "I will call.", {{"get_weather", kW}}},
      {"command r plus", ToolFamily::kCommandRPlus, kNoThink,
       "Action: ```json\n[\n    {\n        \"tool_name\": \"get_weather\",\n        \"parameters\": {\"city\": "
       "\"Hangzhou\"}\n    }\n]```",
       "", "", {{"get_weather", kW}}},
      {"kimi k2", ToolFamily::kKimiK2, kThink,
       "<think>ok</think>Sure.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
       "<|tool_call_argument_begin|>{\"city\": \"Hangzhou\"}<|tool_call_end|><|tool_call_begin|>functions.get_time:1"
       "<|tool_call_argument_begin|>{\"tz\": \"CST\"}<|tool_call_end|><|tool_calls_section_end|>",
       "Sure.", "ok", {{"get_weather", kW}, {"get_time", kT}}},
      {"kimi k2 section end missing", ToolFamily::kKimiK2, kNoThink,
       "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>"
       "{\"city\": \"Hangzhou\"}<|tool_call_end|>",
       "", "", {{"get_weather", kW}}},
      {"glm 4.6", ToolFamily::kGlm, kThink,
       "<think>weather</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Hangzhou</arg_value>\n"
       "</tool_call>",
       "", "weather", {{"get_weather", kW}}},
      {"glm 4.7 compact two", ToolFamily::kGlm, kThinkOpen,
       "</think><tool_call>get_weather<arg_key>city</arg_key><arg_value>Hangzhou</arg_value><arg_key>days</arg_key>"
       "<arg_value>[1, 2]</arg_value></tool_call><tool_call>get_time<arg_key>tz</arg_key><arg_value>CST</arg_value>"
       "</tool_call>",
       "", "", {{"get_weather", R"({"city":"Hangzhou","days":[1,2]})"}, {"get_time", kT}}},
      {"minimax m2", ToolFamily::kMiniMaxM2, kThinkOpen,
       "Think.\n</think>\n\n<minimax:tool_call>\n<invoke name=\"get_weather\">\n<parameter name=\"city\">Hangzhou"
       "</parameter>\n</invoke>\n</minimax:tool_call>",
       "", "Think.", {{"get_weather", kW}}},
      {"apriel", ToolFamily::kApriel, kNoThink,
       "<tool_calls>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}, \"id\": \"call_1\"}]"
       "</tool_calls>",
       "", "", {{"get_weather", kW}}},
      {"nemotron v2", ToolFamily::kNemotronV2, kThink,
       "<think>x</think><TOOLCALL>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}]</TOOLCALL>",
       "", "x", {{"get_weather", kW}}},
      {"firefunction v2", ToolFamily::kFireFunctionV2, kNoThink,
       " functools[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}]", "", "",
       {{"get_weather", kW}}},
      {"apertus", ToolFamily::kApertus, kNoThink,
       "<|tools_prefix|>[{\"get_weather\": {\"city\": \"Hangzhou\"}}, {\"get_time\": {\"tz\": \"CST\"}}]"
       "<|tools_suffix|>",
       "", "", {{"get_weather", kW}, {"get_time", kT}}},
      {"gemma 4", ToolFamily::kGemma4, {"<|channel>thought", "<channel|>", false},
       "<|channel>thought\nweather<channel|><|tool_call>call:get_weather{city:<|\"|>Hangzhou, CN<|\"|>,days:3,"
       "opts:{deep:true,tags:[<|\"|>a<|\"|>,<|\"|>b<|\"|>]}}<tool_call|>",
       "", "weather", {{"get_weather", R"({"city":"Hangzhou, CN","days":3,"opts":{"deep":true,"tags":["a","b"]}})"}}},
      {"solar open", ToolFamily::kSolarOpen, kNoThink,
       "<|tool_calls|><|tool_call:begin|>call_1<|tool_call:name|>get_weather<|tool_call:args|>{\"city\": "
       "\"Hangzhou\"}<|tool_call:end|><|calls|>",
       "", "", {{"get_weather", kW}}},
      {"gigachat 3.1", ToolFamily::kGigaChat, kNoThink,
       "<|function_call|>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}", "", "",
       {{"get_weather", kW}}},
      {"gigachat 3", ToolFamily::kGigaChat, kNoThink,
       "function call<|role_sep|>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}", "", "",
       {{"get_weather", kW}}},
      {"none family", ToolFamily::kNone, kThink, "<think>a</think>b <tool_call>{}</tool_call>",
       "b <tool_call>{}</tool_call>", "a", {}},
  };
  // Malformed: the text stays, as content.
  auto bad = [&](std::string label, ToolFamily f, std::string text, std::string content, Calls calls = {}) {
    v.push_back(Sample{label, f, kNoThink, text, content, "", calls});
  };
  std::string unclosed = "Hi <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": ";
  bad("unclosed json", H, unclosed, unclosed);
  std::string no_close = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}";
  bad("no closing tag", H, no_close, no_close);
  std::string bad_json = "<tool_call>{\"name\": get_weather}</tool_call> ok";
  bad("bad json", H, bad_json, bad_json);
  bad("second call unclosed", H,
      "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Hangzhou\"}}</tool_call>\n<tool_call>{\"na",
      "<tool_call>{\"na", {{"get_weather", kW}});
  bad("bad then good", H,
      "<tool_call>oops</tool_call><tool_call>{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CST\"}}</tool_call>",
      "<tool_call>oops</tool_call>", {{"get_time", kT}});
  bad("deepseek unclosed call", ToolFamily::kDeepSeekV3,
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\"",
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\"");
  bad("mistral bad args", ToolFamily::kMistral, "[TOOL_CALLS]get weather[ARGS]{}", "[TOOL_CALLS]get weather[ARGS]{}");
  bad("gemma unclosed", ToolFamily::kGemma4, "<|tool_call>call:f{a:1}", "<|tool_call>call:f{a:1}");
  bad("functionary v3.2 python", ToolFamily::kFunctionaryV32, "python\nprint(1)", "python\nprint(1)");
  // Tools disabled: markers are content, reasoning still parsed.
  Sample off{"tools disabled", H, kThink,
             "<think>r</think><tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>",
             "<tool_call>{\"name\": \"get_weather\", \"arguments\": {}}</tool_call>", "r", {}, false};
  v.push_back(off);
  Sample off2{"tools disabled gpt-oss", ToolFamily::kGptOss, kNoThink,
              "<|channel|>commentary to=functions.get_weather<|message|>{\"city\": \"Hangzhou\"}<|call|>",
              "{\"city\": \"Hangzhou\"}", "", {}, false};
  v.push_back(off2);
  return v;
}

TEST(ToolCalls, Samples) {
  for (const auto& s : samples()) check_sample(s);
}

// Splices of the samples' texts (same family) with junk: whatever the parser makes of them,
// it must make the same of every cut of the stream, and never lose or invent text.
TEST(ToolCalls, StreamingMatchesOneShotOnSplices) {
  std::map<std::pair<ToolFamily, std::string>, std::vector<Sample>> groups;
  for (const auto& s : samples()) groups[{s.family, s.reasoning.open}].push_back(s);
  const std::vector<std::string> junk = {" ", "\n", "{", "}", "\"", "\xE4\xB8\x80", "<", "<|", ">>>", "[", "]", ":"};
  std::mt19937 rng(123);
  int n_checked = 0;
  for (const auto& [key, group] : groups) {
    for (int t = 0; t < 150; ++t) {
      Sample s = group[rng() % group.size()];
      std::string text;
      int n_pieces = rng() % 5 + 1;
      for (int k = 0; k < n_pieces; ++k) {
        if (rng() % 3 == 0) {
          text += junk[rng() % junk.size()];
          continue;
        }
        const std::string& src = group[rng() % group.size()].text;
        size_t b = rng() % (src.size() + 1), e = rng() % (src.size() + 1);
        if (rng() % 2) b = 0;
        if (rng() % 2) e = src.size();
        if (b > e) std::swap(b, e);
        text += src.substr(b, e - b);
      }
      s.text = text;
      s.tools = rng() % 4 != 0;
      SCOPED_TRACE(s.label + " splice: " + text);
      OutputParser::Result one;
      Collected whole = run(s, {}, &one);
      EXPECT_EQ(whole.content, one.content);
      std::vector<size_t> every;
      for (size_t i = 1; i < text.size(); ++i) every.push_back(i);
      OutputParser::Result r;
      Collected c = run(s, every, &r);
      ASSERT_EQ(c.content, one.content);
      ASSERT_EQ(c.reasoning, one.reasoning);
      ASSERT_EQ(r.tool_calls.size(), one.tool_calls.size());
      for (size_t i = 0; i < r.tool_calls.size(); ++i) {
        ASSERT_EQ(c.calls[i].name, one.tool_calls[i].name);
        ASSERT_EQ(c.calls[i].arguments, one.tool_calls[i].arguments);
        EXPECT_TRUE(nlohmann::json::parse(one.tool_calls[i].arguments).is_object());
      }
      if (complete_utf8(text)) {
        for (const auto& d : c.content_deltas) ASSERT_TRUE(complete_utf8(d));
      }
      // Nothing invented: every content byte comes from the text, in order.
      size_t at = 0;
      for (char ch : one.content) {
        at = text.find(ch, at);
        ASSERT_NE(at, std::string::npos);
        ++at;
      }
      ++n_checked;
    }
  }
  EXPECT_GT(n_checked, 1000);
}

TEST(ToolCalls, IdsAreDeterministic) {
  auto ids = [](uint64_t seed) {
    OutputParser p(ToolFamily::kHermes, kNoThink, true, seed);
    p.push("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\"}</tool_call>");
    p.finish();
    std::vector<std::string> v;
    for (const auto& c : p.result().tool_calls) v.push_back(c.id);
    return v;
  };
  auto a = ids(1), b = ids(1), c = ids(2);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a[0], a[1]);
  for (char ch : a[0].substr(5)) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)));
}

TEST(ToolCalls, HoldsMarkerPrefixUntilDecided) {
  OutputParser p(ToolFamily::kHermes, kNoThink, true, 0);
  auto d = p.push("Hi <tool_");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, "Hi");  // the space waits too: it may sit next to a call
  d = p.push("x>");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, " <tool_x>");
}

TEST(ToolCalls, SplitUtf8IsHeldBack) {
  OutputParser p(ToolFamily::kNone, kNoThink, false, 0);
  std::string s = "a\xE4\xB8\x80";  // "a一"
  auto d = p.push(s.substr(0, 2));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, "a");
  d = p.push(s.substr(2));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, "\xE4\xB8\x80");
}

TEST(ToolCalls, CallStartsBeforeLaterText) {
  OutputParser p(ToolFamily::kHermes, kNoThink, true, 0);
  auto d = p.push("<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": 1}}</tool_call>");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].kind, Kind::kToolCallStart);
  EXPECT_EQ(d[0].name, "f");
  EXPECT_EQ(d[1].kind, Kind::kToolCallArgs);
  EXPECT_EQ(d[1].text, R"({"x":1})");
}

TEST(ToolCalls, DetectReasoning) {
  auto r = detect_reasoning("{{ '<think>' }}...</think>", "<|im_start|>assistant\n<think>\n");
  EXPECT_EQ(r.open, "<think>");
  EXPECT_EQ(r.close, "</think>");
  EXPECT_TRUE(r.starts_open);
  r = detect_reasoning("<think></think>", "assistant\n<think>\n\n</think>\n\n");
  EXPECT_FALSE(r.starts_open);
  r = detect_reasoning("no reasoning here", "x");
  EXPECT_TRUE(r.open.empty());
  EXPECT_EQ(detect_reasoning("[THINK]", "").close, "[/THINK]");
}

TEST(ToolCalls, Triggers) {
  EXPECT_EQ(tool_call_triggers(ToolFamily::kHermes), std::vector<std::string>{"<tool_call>"});
  EXPECT_TRUE(tool_call_triggers(ToolFamily::kNone).empty());
  EXPECT_FALSE(tool_call_triggers(ToolFamily::kLlama3).empty());
  EXPECT_EQ(tool_family_name(ToolFamily::kQwen3Coder), "qwen3_coder");
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::filesystem::path templates_dir() {
  const std::filesystem::path p = std::filesystem::path(TACHYON_SHARED_DATA) / "chat-templates";
  return std::filesystem::exists(p / "chat_template_goldens.json") ? p : std::filesystem::path();
}

TEST(ToolCalls, DetectFamilyOnEveryTemplate) {
  using F = ToolFamily;
  // Expected from each template's render of the "tools" conversation (or, where that render
  // fails or shows no call, from the format the template describes).
  const std::map<std::string, F> expected = {
      {"Apertus-8B-Instruct.jinja", F::kApertus},
      {"Apriel-1.6-15b-Thinker-fixed.jinja", F::kApriel},
      {"Bielik-11B-v3.0-Instruct.jinja", F::kHermes},
      {"ByteDance-Seed-OSS.jinja", F::kSeedOss},
      {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", F::kCommandRPlus},
      {"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja", F::kCommandR7B},
      {"GLM-4.6.jinja", F::kGlm},
      {"GLM-4.7-Flash.jinja", F::kGlm},
      {"GigaChat3-10B-A1.8B.jinja", F::kGigaChat},
      {"GigaChat3.1-10B-A1.8B.jinja", F::kGigaChat},
      {"HuggingFaceTB-SmolLM3-3B.jinja", F::kNone},
      {"Kimi-K2-Instruct.jinja", F::kKimiK2},
      {"Kimi-K2-Thinking.jinja", F::kKimiK2},
      {"LFM2-8B-A1B.jinja", F::kNone},
      {"LFM2.5-8B-A1B.jinja", F::kNone},
      {"LFM2.5-Instruct.jinja", F::kNone},
      {"MiMo-VL.jinja", F::kHermes},
      {"MiniMax-M2.jinja", F::kMiniMaxM2},
      {"Mistral-Small-3.2-24B-Instruct-2506.jinja", F::kMistral},
      {"NVIDIA-Nemotron-3-Nano-30B-A3B-BF16.jinja", F::kQwen3Coder},
      {"NVIDIA-Nemotron-Nano-v2.jinja", F::kNemotronV2},
      {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", F::kHermes},
      {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", F::kHermes},
      {"Qwen-QwQ-32B.jinja", F::kHermes},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", F::kHermes},
      {"Qwen-Qwen3-0.6B.jinja", F::kHermes},
      {"Qwen3-Coder.jinja", F::kQwen3Coder},
      {"Qwen3.5-4B.jinja", F::kQwen3Coder},
      {"Reka-Edge.jinja", F::kHermes},
      {"StepFun3.5-Flash.jinja", F::kQwen3Coder},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", F::kDeepSeekR1},
      {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", F::kDeepSeekR1},
      {"deepseek-ai-DeepSeek-V3.1.jinja", F::kDeepSeekV3},
      {"deepseek-ai-DeepSeek-V3.2.jinja", F::kDeepSeekV32},
      {"fireworks-ai-llama-3-firefunction-v2.jinja", F::kFireFunctionV2},
      {"google-gemma-2-2b-it.jinja", F::kNone},
      {"google-gemma-4-31B-it-interleaved.jinja", F::kGemma4},
      {"google-gemma-4-31B-it.jinja", F::kGemma4},
      {"ibm-granite-granite-3.3-2B-Instruct.jinja", F::kGranite},
      {"ibm-granite-granite-4.0.jinja", F::kHermes},
      {"ibm-granite-granite-4.1.jinja", F::kHermes},
      {"llama-cpp-deepseek-r1.jinja", F::kDeepSeekR1},
      {"llama-cpp-rwkv-world.jinja", F::kNone},
      {"meetkai-functionary-medium-v3.1.jinja", F::kFunctionaryV31},
      {"meetkai-functionary-medium-v3.2.jinja", F::kFunctionaryV32},
      {"meta-llama-Llama-3.1-8B-Instruct.jinja", F::kLlama3},
      {"meta-llama-Llama-3.2-3B-Instruct.jinja", F::kLlama3},
      {"meta-llama-Llama-3.3-70B-Instruct.jinja", F::kLlama3},
      {"microsoft-Phi-3.5-mini-instruct.jinja", F::kNone},
      {"mistralai-Ministral-3-14B-Reasoning-2512.jinja", F::kMistral},
      {"mistralai-Mistral-Nemo-Instruct-2407.jinja", F::kMistral},
      {"moonshotai-Kimi-K2.jinja", F::kKimiK2},
      {"openai-gpt-oss-120b.jinja", F::kGptOss},
      {"stepfun-ai-Step-3.5-Flash.jinja", F::kQwen3Coder},
      {"unsloth-Apriel-1.5.jinja", F::kApriel},
      {"unsloth-mistral-Devstral-Small-2507.jinja", F::kMistral},
      {"upstage-Solar-Open-100B.jinja", F::kSolarOpen},
  };
  auto dir = templates_dir();
  if (dir.empty()) GTEST_SKIP() << "shared/data/chat-templates not found";
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".jinja") continue;
    std::string name = e.path().filename().string();
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "new template without an expected family: " << name;
    EXPECT_EQ(tool_family_name(detect_tool_family(read_file(e.path()))), tool_family_name(it->second)) << name;
    ++n;
  }
  EXPECT_EQ(n, static_cast<int>(expected.size()));
}

}  // namespace
}  // namespace tachyon::chat

namespace tachyon::chat {
namespace {

// Generation prompts from the goldens ("system_user" case): which leave the think block open.
TEST(ToolCalls, DetectReasoningOnGoldenPrompts) {
  auto dir = templates_dir();
  if (dir.empty()) GTEST_SKIP() << "shared/data/chat-templates not found";
  const std::map<std::string, std::pair<std::string, bool>> expected = {
      {"GLM-4.7-Flash.jinja", {"<think>", true}},
      {"MiniMax-M2.jinja", {"<think>", true}},
      {"Qwen3.5-4B.jinja", {"<think>", true}},
      {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", {"<think>", true}},
      {"Apriel-1.6-15b-Thinker-fixed.jinja", {"Here are my reasoning steps:", true}},
      {"Qwen-QwQ-32B.jinja", {"<think>", false}},
      {"Qwen-Qwen3-0.6B.jinja", {"<think>", false}},
      {"deepseek-ai-DeepSeek-V3.1.jinja", {"<think>", false}},
      {"google-gemma-4-31B-it.jinja", {"<|channel>thought", false}},
      {"ByteDance-Seed-OSS.jinja", {"<seed:think>", false}},
      {"mistralai-Ministral-3-14B-Reasoning-2512.jinja", {"[THINK]", false}},
      {"Qwen-Qwen2.5-7B-Instruct.jinja", {"", false}},
  };
  auto goldens = nlohmann::json::parse(read_file(dir / "chat_template_goldens.json"));
  int n = 0;
  for (const auto& r : goldens["renders"]) {
    if (r.value("case", "") != "system_user" || !r.contains("expected")) continue;
    auto it = expected.find(r["template"].get<std::string>());
    if (it == expected.end()) continue;
    SCOPED_TRACE(it->first);
    ReasoningFormat f = detect_reasoning(read_file(dir / it->first), r["expected"].get<std::string>());
    EXPECT_EQ(f.open, it->second.first);
    EXPECT_EQ(f.starts_open, it->second.second);
    ++n;
  }
  EXPECT_EQ(n, static_cast<int>(expected.size()));
}

}  // namespace
}  // namespace tachyon::chat

namespace tachyon::chat {
namespace {

// Grammar-constrained Hermes calls stream early: the start as soon as the name is known,
// then the arguments' raw text in pieces; cut at every byte, the deltas rebuild the calls,
// and the start of each call goes out before its closing tag arrives.
TEST(ToolCallsStreaming, HermesArgumentsStreamBeforeTheCallCloses) {
  const std::string text =
      "Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\", \"days\": [1, 2]}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>";
  OutputParser p(ToolFamily::kHermes, {}, true, 7);
  p.set_stream_arguments(true);
  std::string content;
  std::vector<std::string> names, args;
  size_t first_start_at = 0, first_args_pieces = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    for (const auto& d : p.push(text.substr(i, 1))) {
      switch (d.kind) {
        case OutputDelta::Kind::kContent: content += d.text; break;
        case OutputDelta::Kind::kReasoning: FAIL(); break;
        case OutputDelta::Kind::kToolCallStart:
          ASSERT_EQ(d.index, static_cast<int>(names.size()));
          names.push_back(d.name);
          args.emplace_back();
          if (d.index == 0) first_start_at = i;
          break;
        case OutputDelta::Kind::kToolCallArgs:
          args.at(d.index) += d.text;
          if (d.index == 0) ++first_args_pieces;
          // never half a UTF-8 character
          EXPECT_FALSE(static_cast<unsigned char>(d.text.back()) >= 0xC0);
          break;
      }
    }
  }
  for (const auto& d : p.finish()) ASSERT_NE(d.kind, OutputDelta::Kind::kToolCallStart);
  EXPECT_EQ(content, "Let me check.");
  ASSERT_EQ(names, (std::vector<std::string>{"get_weather", "ping"}));
  EXPECT_EQ(args[0], "{\"city\": \"Zürich\", \"days\": [1, 2]}");
  EXPECT_EQ(args[1], "{}");
  EXPECT_LT(first_start_at, text.find("</tool_call>"));
  EXPECT_GT(first_args_pieces, 5u);
  ASSERT_EQ(p.result().tool_calls.size(), 2u);
  EXPECT_EQ(p.result().tool_calls[0].arguments, args[0]);
  EXPECT_EQ(p.result().tool_calls[1].arguments, args[1]);
  EXPECT_EQ(p.result().content, content);
}

}  // namespace
}  // namespace tachyon::chat

namespace tachyon::chat {
namespace {

// A call announced early that then breaks (invalid byte, a mangled close tag): it stays a
// call with its arguments up to where they ended, the text after it is read on, and any way
// of splitting the text gives the same result (a fuzzer's find).
TEST(ToolCallsStreaming, BrokenAnnouncedCallIsTheSameForAnySplit) {
  const std::string text = std::string("\x22" "arguments\x22" ": {\x22" "a\x22" ": \xd4" "}}\x0a" "</too, \x22" "argumen\x22" ", \x22" "arguments\x22" ": {\x22" "a\x22" ": \xd4" "}ool_call>\x0a" "{\x22" "name\x22" ": \x22" "fure.<tool_call>\x0a" "{\x22" "name\x22" ": \x22" "f\x22" ", \x22" "arguments\x22" ": {\x22" "a\x22" ": \xd4" "}}\x0a" "</too, \x22" "argumen\x22" ", \x22" "arguments\x22" "}\x0a" "</too, \x22" "arguments\x22" ": {\x22" "a\x22" ":>");
  auto run = [&](size_t chunk) {
    OutputParser p(ToolFamily::kHermes, {}, true, 1);
    p.set_stream_arguments(true);
    std::string args;
    for (size_t i = 0; i < text.size(); i += chunk)
      for (const auto& d : p.push(text.substr(i, chunk)))
        if (d.kind == OutputDelta::Kind::kToolCallArgs) args += d.text;
    for (const auto& d : p.finish())
      if (d.kind == OutputDelta::Kind::kToolCallArgs) args += d.text;
    auto r = p.result();
    std::string all;
    for (const auto& c : r.tool_calls) all += c.arguments;
    EXPECT_EQ(all, args) << chunk;
    return r;
  };
  const auto one = run(text.size());
  for (size_t chunk : {1, 2, 3, 5, 7, 64}) {
    const auto r = run(chunk);
    EXPECT_EQ(r.content, one.content) << chunk;
    ASSERT_EQ(r.tool_calls.size(), one.tool_calls.size()) << chunk;
    for (size_t i = 0; i < r.tool_calls.size(); ++i) {
      EXPECT_EQ(r.tool_calls[i].name, one.tool_calls[i].name);
      EXPECT_EQ(r.tool_calls[i].arguments, one.tool_calls[i].arguments);
    }
  }
  EXPECT_FALSE(one.tool_calls.empty());
}

}  // namespace
}  // namespace tachyon::chat
