// libFuzzer target: everything structured output reads from a request, and the tool-call
// parser that reads model output. The first byte picks the input:
//   0: GBNF text -> parse_gbnf; a grammar that compiles runs a matcher over bytes of the input
//   1: a JSON Schema -> json_schema_to_gbnf; what it accepts must compile (an internal
//      grammar that does not parse is a bug, not bad input)
//   2: a regex -> regex_to_gbnf; likewise
//   3: model output -> OutputParser of a family (second byte), fed in chunks (third byte,
//      which also turns on early argument streaming): the streamed result must equal the
//      one-shot result
// Nothing may crash, hang, leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/tool_calls.h"
#include "constrain/grammar.h"
#include "constrain/json_schema.h"
#include "constrain/matcher.h"
#include "constrain/regex.h"

using namespace tachyon;

namespace {

std::shared_ptr<const constrain::TokenIndex> small_vocab() {
  static auto idx = [] {
    std::vector<std::string> toks;
    for (int b = 0; b < 256; ++b) toks.push_back(std::string(1, static_cast<char>(b)));
    for (const char* t : {"{\"", "\":", "\",", "true", "null", "\"}", "  ", "\n", "ab", "12", "-1", "[{", "}]"})
      toks.push_back(t);
    toks.push_back("</s>");
    const int32_t eog = static_cast<int32_t>(toks.size()) - 1;
    return std::make_shared<constrain::TokenIndex>(toks, std::vector<bool>{}, std::vector<int32_t>{eog});
  }();
  return idx;
}

void run_grammar(const std::string& gbnf, std::string_view input, bool must_compile) {
  std::string err;
  auto g = constrain::parse_gbnf(gbnf, &err);
  if (!g) {
    if (must_compile) std::abort();
    return;
  }
  constrain::Matcher m(g, small_vocab());
  std::vector<uint32_t> mask;
  for (size_t i = 0; i < input.size() && i < 64; ++i) {
    m.fill_mask(&mask);
    (void)m.min_completion();
    if (!m.accept_bytes(input.substr(i, 1))) break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 3, size - 3);
  switch (data[0] % 4) {
    case 0:
      run_grammar(std::string(in), in, false);
      break;
    case 1: {
      auto j = nlohmann::ordered_json::parse(in, nullptr, false);
      if (j.is_discarded()) break;
      constrain::SchemaOptions opt;
      opt.strict = data[1] & 1;
      opt.compact = data[1] & 2;
      constrain::SchemaGrammar sg;
      std::string err;
      if (constrain::json_schema_to_gbnf(j, opt, &sg, &err)) run_grammar(sg.gbnf, in, true);
      break;
    }
    case 2: {
      std::string gbnf, err;
      if (constrain::regex_to_gbnf(in, &gbnf, &err)) run_grammar(gbnf, in, true);
      break;
    }
    default: {
      const auto family = static_cast<chat::ToolFamily>(data[1] % 25);
      chat::ReasoningFormat rf;
      if (data[2] & 0x80) rf = {"<think>", "</think>", static_cast<bool>(data[2] & 0x40)};
      chat::OutputParser one(family, rf, true, 1), streamed(family, rf, true, 1);
      one.set_stream_arguments(data[2] & 0x20);  // grammar-constrained calls: arguments streamed early
      streamed.set_stream_arguments(data[2] & 0x20);
      one.push(in);
      one.finish();
      const size_t chunk = 1 + data[2] % 7;
      for (size_t i = 0; i < in.size(); i += chunk) streamed.push(in.substr(i, chunk));
      streamed.finish();
      const auto& a = one.result();
      const auto& b = streamed.result();
      if (a.content != b.content || a.reasoning != b.reasoning || a.tool_calls.size() != b.tool_calls.size()) std::abort();
      for (size_t i = 0; i < a.tool_calls.size(); ++i)
        if (a.tool_calls[i].name != b.tool_calls[i].name || a.tool_calls[i].arguments != b.tool_calls[i].arguments)
          std::abort();
      break;
    }
  }
  return 0;
}
