#include "server/structured.h"

#include <cctype>

#include "constrain/grammar.h"
#include "constrain/json_schema.h"
#include "constrain/regex.h"

namespace tachyon::server {

std::shared_ptr<const constrain::Grammar> GrammarCache::get(const std::string& gbnf, std::string* error) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = index_.find(gbnf); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return it->second->second;
    }
  }
  // Compile outside the lock: another request may compile the same text meanwhile (both
  // results are equal; the second insert is dropped).
  auto g = constrain::parse_gbnf(gbnf, error);
  if (!g) return nullptr;
  std::lock_guard<std::mutex> lk(mu_);
  if (auto it = index_.find(gbnf); it != index_.end()) return it->second->second;
  lru_.emplace_front(gbnf, g);
  index_[gbnf] = lru_.begin();
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return g;
}

std::string prefix_gbnf_rules(std::string_view g, std::string_view prefix) {
  std::string out;
  out.reserve(g.size() + g.size() / 8);
  auto is_name = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  size_t i = 0;
  while (i < g.size()) {
    const char c = g[i];
    if (c == '#') {  // comment to the end of the line
      const size_t e = g.find('\n', i);
      const size_t end = e == std::string_view::npos ? g.size() : e;
      out.append(g.substr(i, end - i));
      i = end;
    } else if (c == '"' || c == '[') {  // literal or class: copy through its unescaped end
      const char close = c == '"' ? '"' : ']';
      size_t j = i + 1;
      while (j < g.size() && g[j] != close) j += g[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, g.size());
      out.append(g.substr(i, j - i));
      i = j;
    } else if (c == '{') {  // repetition bounds
      const size_t e = g.find('}', i);
      const size_t end = e == std::string_view::npos ? g.size() : e + 1;
      out.append(g.substr(i, end - i));
      i = end;
    } else if (is_name(c)) {
      size_t j = i;
      while (j < g.size() && is_name(g[j])) ++j;
      out.append(prefix);
      out.append(g.substr(i, j - i));
      i = j;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

namespace {

// A GBNF literal for raw text.
std::string literal(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out.push_back(c);
    }
  }
  return out + "\"";
}

bool schema_gbnf(const ojson& schema, bool strict, const std::string& where, std::string* gbnf,
                 std::vector<std::string>* warnings, std::string* error) {
  constrain::SchemaOptions opt;
  opt.strict = strict;
  constrain::SchemaGrammar sg;
  std::string e;
  if (!constrain::json_schema_to_gbnf(schema, opt, &sg, &e)) {
    *error = where + ": " + e;
    return false;
  }
  for (auto& w : sg.warnings) warnings->push_back(where + ": " + w);
  *gbnf = std::move(sg.gbnf);
  return true;
}

}  // namespace

bool tool_call_gbnf(chat::ToolFamily family, const ojson& tools, const std::string& only_name, bool parallel,
                    std::string* gbnf, std::vector<std::string>* warnings, std::string* error) {
  using chat::ToolFamily;
  error->clear();
  if (family != ToolFamily::kHermes && family != ToolFamily::kLlama3 && family != ToolFamily::kFunctionaryV31)
    return false;
  std::string rules, alts;
  int n = 0;
  for (size_t i = 0; i < tools.size(); ++i) {
    const ojson& fn = tools[i]["function"];
    const std::string name = fn["name"].get<std::string>();
    if (!only_name.empty() && name != only_name) continue;
    ojson params = fn.contains("parameters") && fn["parameters"].is_object() ? fn["parameters"]
                                                                             : ojson{{"type", "object"}};
    const bool strict = fn.contains("strict") && fn["strict"].is_boolean() && fn["strict"].get<bool>();
    std::string args;
    if (!schema_gbnf(params, strict, "tools[" + std::to_string(i) + "].function.parameters", &args, warnings, error))
      return false;
    const std::string p = "t" + std::to_string(n) + "-";
    rules += prefix_gbnf_rules(args, p) + "\n";
    const std::string fr = "tc-f" + std::to_string(n);
    switch (family) {
      case ToolFamily::kHermes:
        rules += fr + " ::= " + literal("\"" + name + "\"") + " tc-ws \",\" tc-ws \"\\\"arguments\\\"\" tc-ws \":\" tc-ws " +
                 p + "root\n";
        break;
      case ToolFamily::kLlama3:
        rules += fr + " ::= " + literal("\"" + name + "\"") +
                 " tc-ws \",\" tc-ws \"\\\"parameters\\\"\" tc-ws \":\" tc-ws " + p + "root\n";
        break;
      default:  // functionary v3.1
        rules += fr + " ::= " + literal(name) + " \">\" " + p + "root\n";
        break;
    }
    alts += (n ? " | " : "") + fr;
    ++n;
  }
  if (n == 0) {
    *error = "no tool named '" + only_name + "'";
    return false;
  }
  std::string call;
  switch (family) {
    case ToolFamily::kHermes:
      call = "tc-call ::= \"<tool_call>\" tc-ws \"{\" tc-ws \"\\\"name\\\"\" tc-ws \":\" tc-ws tc-fn tc-ws \"}\" tc-ws "
             "\"</tool_call>\"\n";
      break;
    case ToolFamily::kLlama3:
      call = "tc-call ::= \"{\" tc-ws \"\\\"name\\\"\" tc-ws \":\" tc-ws tc-fn tc-ws \"}\"\n";
      parallel = false;  // one JSON object per message
      break;
    default:
      call = "tc-call ::= \"<function=\" tc-fn \"</function>\"\n";
      break;
  }
  *gbnf = std::string(parallel ? "root ::= tc-call ( tc-sep tc-call ){0,7}\n" : "root ::= tc-call\n") + call +
          "tc-fn ::= " + alts + "\n" + "tc-ws ::= [ \\t\\n]{0,3}\n" + "tc-sep ::= [ \\n]{0,2}\n" + rules;
  return true;
}

bool plan_structured(const CompletionParams& p, chat::ToolFamily family, GrammarCache& cache, StructuredPlan* out,
                     ApiError* err) {
  *out = StructuredPlan{};
  auto fail = [&](const std::string& param, const std::string& msg) {
    err->status = 400;
    err->type = "invalid_request_error";
    err->param = param;
    err->message = msg;
    return false;
  };
  std::string gbnf, param;
  std::vector<std::string> triggers;

  // Tool calls: a forced call (required / named) always; a lazy grammar under "auto" unless
  // the content itself is constrained.
  const bool has_tools = p.tools.is_array() && !p.tools.empty();
  std::string only;
  bool forced = false;
  if (has_tools) {
    if (p.tool_choice.is_object()) {
      only = p.tool_choice["function"]["name"].get<std::string>();
      forced = true;
    } else {
      forced = p.tool_choice.is_string() && p.tool_choice == "required";
    }
  }
  const bool content_constrained = p.format != ResponseFormat::kText || !p.grammar.empty() || !p.regex.empty();
  if (has_tools && (forced || !content_constrained)) {
    std::string e;
    if (tool_call_gbnf(family, p.tools, only, p.parallel_tool_calls, &gbnf, &out->warnings, &e)) {
      param = "tools";
      if (!forced) triggers = chat::tool_call_triggers(family);
      if (!forced && family == chat::ToolFamily::kLlama3) triggers = {"{\"name\""};
    } else if (!e.empty()) {
      return fail(e.rfind("tools[", 0) == 0 ? e.substr(0, e.find(':')) : "tools", e);
    } else if (forced) {
      out->warnings.push_back(std::string("tool_choice '") + (only.empty() ? "required" : only) +
                              "' is not enforced for this model's tool-call format (" +
                              std::string(chat::tool_family_name(family)) + "): calls are parsed, not constrained");
    }
  }
  if (gbnf.empty() || !triggers.empty()) {
    // the content's own constraint (a lazy tool grammar gives way to it)
    std::string cg;
    std::string e;
    if (p.format == ResponseFormat::kJsonObject) {
      cg = constrain::json_object_gbnf();
      param = "response_format";
    } else if (p.format == ResponseFormat::kJsonSchema) {
      if (!schema_gbnf(p.json_schema, p.json_schema_strict, "response_format.json_schema.schema", &cg, &out->warnings,
                       &e))
        return fail("response_format.json_schema.schema", e);
      param = "response_format.json_schema.schema";
    } else if (!p.regex.empty()) {
      if (!constrain::regex_to_gbnf(p.regex, &cg, &e)) return fail("regex", e);
      param = "regex";
    } else if (!p.grammar.empty()) {
      cg = p.grammar;
      param = "grammar";
    }
    if (!cg.empty()) {
      if (has_tools)
        out->warnings.push_back("tool calls are parsed but not constrained when the content is (response_format, grammar "
                                "or regex)");
      gbnf = std::move(cg);
      triggers.clear();
    }
  }
  if (gbnf.empty()) return true;
  std::string e;
  auto g = cache.get(gbnf, &e);
  if (!g) return fail(param, (param == "grammar" ? "grammar: " : "internal grammar for " + param + ": ") + e);
  engine::Constraint c;
  c.grammar = std::move(g);
  c.triggers = std::move(triggers);
  out->constraint = std::move(c);
  out->gbnf = std::move(gbnf);
  out->calls_constrained = param == "tools";
  return true;
}

}  // namespace tachyon::server
