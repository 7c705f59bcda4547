// Structured output and tool calls for one request: from the validated request
// (response_format, grammar, regex, tools, tool_choice) to the engine's Constraint (a
// compiled grammar, lazy triggers for tool calls) and the warnings the response reports.
//
// Which constraint a request gets:
//   tool_choice "required" or a named function (with a tool-call format that has a
//       grammar): the call grammar from the first token (the model must call);
//   tools with tool_choice "auto" (the default) and no response_format: the call grammar,
//       lazy: the output is free prose until the family's trigger (e.g. "<tool_call>"),
//       after which the call must parse, with arguments valid under the tool's schema;
//   response_format json_object / json_schema, or the "grammar" (GBNF) / "regex" fields
//       (tachyon and llama-server extensions): that grammar from the first token.
//   Otherwise none. Tool-call formats without a grammar here (see tool_call_gbnf) are still
//   parsed from the output; a "required" choice is then reported as not enforced.
//
// Grammars are compiled once per distinct GBNF text (GrammarCache), so requests with the
// same schema share the compiled grammar and its mask cache.
#pragma once
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/tool_calls.h"
#include "engine/engine.h"
#include "server/openai.h"

namespace tachyon::constrain {
class Grammar;
}

namespace tachyon::server {

// Compiled grammars by GBNF text, least recently used out beyond `capacity`. Thread-safe.
class GrammarCache {
 public:
  explicit GrammarCache(size_t capacity = 64) : capacity_(capacity) {}
  // nullptr + *error when the text does not compile.
  std::shared_ptr<const constrain::Grammar> get(const std::string& gbnf, std::string* error);

 private:
  size_t capacity_;
  std::mutex mu_;
  std::list<std::pair<std::string, std::shared_ptr<const constrain::Grammar>>> lru_;  // front: newest
  std::unordered_map<std::string, decltype(lru_)::iterator> index_;
};

struct StructuredPlan {
  std::optional<engine::Constraint> constraint;
  std::vector<std::string> warnings;  // keywords loosened, choices not enforced
  std::string gbnf;                   // the grammar's text (for debugging and tests)
  bool calls_constrained = false;     // the constraint is the tool-call grammar
};

// false + *err (400, param naming the field) for an invalid schema, an unsupported keyword
// under strict, a regex or grammar that does not compile.
bool plan_structured(const CompletionParams& p, chat::ToolFamily family, GrammarCache& cache, StructuredPlan* out,
                     ApiError* err);

// The grammar of the family's tool calls over `tools` (all, or the one tool_choice names),
// each call's arguments valid under its function's `parameters` schema; `parallel`: one to
// eight calls, else exactly one. Families with a grammar: hermes (Qwen2.5/Qwen3/Hermes and
// tachyon's default template), llama3 (JSON with "parameters"), functionary_v3_1
// (<function=NAME>{...}</function>). Returns false with *error empty for other families.
bool tool_call_gbnf(chat::ToolFamily family, const ojson& tools, const std::string& only_name, bool parallel,
                    std::string* gbnf, std::vector<std::string>* warnings, std::string* error);

// Every rule name in a GBNF text (definitions and references; not inside literals, classes
// or comments) with `prefix` prepended, so that grammars can be combined.
std::string prefix_gbnf_rules(std::string_view gbnf, std::string_view prefix);

}  // namespace tachyon::server
