// Tool-call and reasoning parsing. Layout: text helpers and a JSON extent scanner; one
// region parser per family (a region = the text from a trigger marker to the end of its
// call or section); the family table; OutputParser's scanner (content / reasoning /
// region modes, plus a separate harmony path for gpt-oss); detection.
#include "chat/tool_calls.h"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

namespace tachyon::chat {
namespace {

using ojson = nlohmann::ordered_json;
constexpr size_t npos = std::string_view::npos;

// Outcome of parsing a prefix of the text: complete, needs more text, or cannot match.
enum class St { kMore, kDone, kFail };

struct Call {
  std::string name, args;  // args: JSON object text
};

struct Region {
  Region(St s = St::kFail, size_t e = 0, std::vector<Call> c = {}) : st(s), end(e), calls(std::move(c)) {}
  St st = St::kFail;
  size_t end = 0;  // kDone: bytes of the region consumed (trigger included)
  std::vector<Call> calls;
};

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t skip_ws(std::string_view s, size_t p) {
  while (p < s.size() && is_ws(s[p])) ++p;
  return p;
}

std::string_view trim(std::string_view s) {
  size_t b = skip_ws(s, 0), e = s.size();
  while (e > b && is_ws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool starts_at(std::string_view s, size_t p, std::string_view lit) {
  return p <= s.size() && s.substr(p, lit.size()) == lit;
}

// s[*p..] starts with lit: advance past it. A proper prefix of lit: kMore. Else kFail.
St expect(std::string_view s, size_t* p, std::string_view lit) {
  std::string_view rest = s.substr(std::min(*p, s.size()));
  if (rest.size() >= lit.size()) {
    if (rest.substr(0, lit.size()) != lit) return St::kFail;
    *p += lit.size();
    return St::kDone;
  }
  return lit.substr(0, rest.size()) == rest ? St::kMore : St::kFail;
}

// The text from *p up to lit -> *out; *p moves past lit.
St until(std::string_view s, size_t* p, std::string_view lit, std::string_view* out) {
  size_t q = s.find(lit, *p);
  if (q == npos) return St::kMore;
  *out = s.substr(*p, q - *p);
  *p = q + lit.size();
  return St::kDone;
}

#define TRY(expr)                          \
  do {                                     \
    St _st = (expr);                       \
    if (_st != St::kDone) return _st;      \
  } while (0)

// Extent of the JSON value starting at s[p..] after whitespace: [*b, *e). kMore if the
// text ends inside it (a number at the very end counts as unfinished), kFail on a bracket
// mismatch or a character that cannot start a value (then *e is that character's index).
// Syntax is checked by the caller.
St scan_json(std::string_view s, size_t p, size_t* b, size_t* e) {
  p = skip_ws(s, p);
  if (p >= s.size()) return St::kMore;
  *b = p;
  char c = s[p];
  if (c == '{' || c == '[' || c == '"') {
    std::string stack;
    bool in_str = false, esc = false;
    for (; p < s.size(); ++p) {
      char ch = s[p];
      if (in_str) {
        if (esc)
          esc = false;
        else if (ch == '\\')
          esc = true;
        else if (ch == '"') {
          in_str = false;
          if (stack.empty()) {
            *e = p + 1;
            return St::kDone;
          }
        }
        continue;
      }
      if (ch == '"') {
        in_str = true;
      } else if (ch == '{' || ch == '[') {
        stack.push_back(ch);
      } else if (ch == '}' || ch == ']') {
        if (stack.empty() || (stack.back() == '{') != (ch == '}')) {
          *e = p;
          return St::kFail;
        }
        stack.pop_back();
        if (stack.empty()) {
          *e = p + 1;
          return St::kDone;
        }
      }
    }
    return St::kMore;
  }
  auto scalar_char = [](char ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || ch == '-' || ch == '+' || ch == '.' ||
           ch == 'E';
  };
  if (!scalar_char(c)) {
    *e = p;
    return St::kFail;
  }
  while (p < s.size() && scalar_char(s[p])) ++p;
  if (p == s.size()) return St::kMore;
  *e = p;
  return St::kDone;
}

// Compact; invalid UTF-8 that reached a string (a parameter value in an XML family) is
// replaced by U+FFFD instead of throwing.
std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

ojson parse_json(std::string_view s) { return ojson::parse(s.begin(), s.end(), nullptr, false); }

// Scans and parses the JSON value at s[*p..]; *p moves past it.
St take_json(std::string_view s, size_t* p, ojson* out) {
  size_t b = 0, e = 0;
  TRY(scan_json(s, *p, &b, &e));
  *out = parse_json(s.substr(b, e - b));
  if (out->is_discarded()) return St::kFail;
  *p = e;
  return St::kDone;
}

// A parameter value of an XML-style family: its JSON value if it is JSON, else a string.
ojson json_or_string(std::string_view v) {
  ojson j = parse_json(v);
  if (j.is_discarded()) return ojson(std::string(v));
  return j;
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 256) return false;
  for (char c : n)
    if (is_ws(c) || c == '<' || c == '>' || c == '"' || c == '{' || c == '}' || c == '[' || c == ']') return false;
  return true;
}

// Arguments given as an object, or as a string holding an object (OpenAI's wire form).
bool args_text(const ojson& a, std::string* out) {
  if (a.is_object()) {
    *out = dump(a);
    return true;
  }
  if (a.is_string()) {
    ojson j = parse_json(a.get_ref<const std::string&>());
    if (!j.is_discarded() && j.is_object()) {
      *out = dump(j);
      return true;
    }
  }
  return false;
}

// {"name"|"tool_name": NAME, "arguments"|"parameters": ARGS} (or {"function": {...}}).
// require_args: the arguments key must be present (else "{}" is assumed).
bool call_from_object(const ojson& j, Call* c, bool require_args = false) {
  if (!j.is_object()) return false;
  if (j.contains("function") && j["function"].is_object() && !j.contains("name"))
    return call_from_object(j["function"], c);
  const ojson* name = nullptr;
  for (const char* k : {"name", "tool_name"})
    if (j.contains(k) && j[k].is_string()) name = &j[k];
  if (!name || !valid_name(name->get_ref<const std::string&>())) return false;
  c->name = name->get<std::string>();
  for (const char* k : {"arguments", "parameters"})
    if (j.contains(k)) return args_text(j[k], &c->args);
  if (require_args) return false;
  c->args = "{}";
  return true;
}

// A JSON array of call objects at s[*p..].
St take_call_array(std::string_view s, size_t* p, std::vector<Call>* calls) {
  ojson arr;
  TRY(take_json(s, p, &arr));
  if (!arr.is_array()) return St::kFail;
  for (const auto& el : arr) {
    Call c;
    if (!call_from_object(el, &c)) return St::kFail;
    calls->push_back(std::move(c));
  }
  return St::kDone;
}

St take_call_object(std::string_view s, size_t* p, Call* c, bool require_args = false) {
  ojson j;
  TRY(take_json(s, p, &j));
  return call_from_object(j, c, require_args) ? St::kDone : St::kFail;
}

St take_args_object(std::string_view s, size_t* p, std::string* args) {
  ojson j;
  TRY(take_json(s, p, &j));
  return args_text(j, args) ? St::kDone : St::kFail;
}

Region done(size_t end, std::vector<Call> calls) { return Region{St::kDone, end, std::move(calls)}; }
Region single(St st, size_t end, Call c) {
  if (st != St::kDone) return Region{st};
  return done(end, {std::move(c)});
}

// ---- per-call parsers: St(s, &p, &call), p at the call's first byte ----

using CallFn = std::function<St(std::string_view, size_t*, Call*)>;

// <function=NAME><parameter=K>\nV\n</parameter>...</function>   (Qwen3-Coder)
St qwen_function(std::string_view s, size_t* p, Call* c) {
  TRY(expect(s, p, "<function="));
  std::string_view name, key, value;
  TRY(until(s, p, ">", &name));
  if (!valid_name(name)) return St::kFail;
  ojson obj = ojson::object();
  for (;;) {
    *p = skip_ws(s, *p);
    St a = expect(s, p, "</function>");
    if (a == St::kDone) break;
    St b = expect(s, p, "<parameter=");
    if (b != St::kDone) return a == St::kMore || b == St::kMore ? St::kMore : St::kFail;
    TRY(until(s, p, ">", &key));
    TRY(until(s, p, "</parameter>", &value));
    if (!value.empty() && value.front() == '\n') value.remove_prefix(1);
    if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
    obj[std::string(key)] = json_or_string(value);
  }
  c->name = std::string(name);
  c->args = dump(obj);
  return St::kDone;
}

// <invoke name="NAME"><parameter name="K"[ string="true"]>V</parameter>...</invoke> with a
// tag prefix ("<" for MiniMax, "<｜DSML｜" for DeepSeek V3.2).
CallFn xml_invoke(std::string open_prefix, std::string close_prefix) {
  return [=](std::string_view s, size_t* p, Call* c) -> St {
    TRY(expect(s, p, open_prefix + "invoke name=\""));
    std::string_view name, key, attrs, value;
    TRY(until(s, p, "\"", &name));
    if (!valid_name(name)) return St::kFail;
    TRY(expect(s, p, ">"));
    const std::string end_invoke = close_prefix + "invoke>", param = open_prefix + "parameter name=\"",
                      end_param = close_prefix + "parameter>";
    ojson obj = ojson::object();
    for (;;) {
      *p = skip_ws(s, *p);
      St a = expect(s, p, end_invoke);
      if (a == St::kDone) break;
      St b = expect(s, p, param);
      if (b != St::kDone) return a == St::kMore || b == St::kMore ? St::kMore : St::kFail;
      TRY(until(s, p, "\"", &key));
      TRY(until(s, p, ">", &attrs));
      TRY(until(s, p, end_param, &value));
      obj[std::string(key)] =
          attrs.find("string=\"true\"") != npos ? ojson(std::string(value)) : json_or_string(value);
    }
    c->name = std::string(name);
    c->args = dump(obj);
    return St::kDone;
  };
}

// DeepSeek: <｜tool▁call▁begin｜>X<｜tool▁sep｜> then either {..} (V3.1, NAME = X) or
// NAME\n```json\n{..}\n``` (R1/V3, X = "function"), then <｜tool▁call▁end｜>.
St deepseek_call(std::string_view s, size_t* p, Call* c) {
  TRY(expect(s, p, "<｜tool▁call▁begin｜>"));
  std::string_view x, name;
  TRY(until(s, p, "<｜tool▁sep｜>", &x));
  size_t q = skip_ws(s, *p);
  if (q >= s.size()) return St::kMore;
  if (s[q] == '{') {
    name = trim(x);
  } else {
    TRY(until(s, p, "\n", &name));
    name = trim(name);
    *p = skip_ws(s, *p);
    if (*p >= s.size()) return St::kMore;
    if (s[*p] == '`') {
      TRY(expect(s, p, "```"));
      TRY(until(s, p, "\n", &x));  // the fence's language tag
    }
  }
  if (!valid_name(name)) return St::kFail;
  TRY(take_args_object(s, p, &c->args));
  *p = skip_ws(s, *p);
  if (*p < s.size() && s[*p] == '`') TRY(expect(s, p, "```"));
  *p = skip_ws(s, *p);
  TRY(expect(s, p, "<｜tool▁call▁end｜>"));
  c->name = std::string(name);
  return St::kDone;
}

// <|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>{..}<|tool_call_end|>
St kimi_call(std::string_view s, size_t* p, Call* c) {
  TRY(expect(s, p, "<|tool_call_begin|>"));
  std::string_view id;
  TRY(until(s, p, "<|tool_call_argument_begin|>", &id));
  id = trim(id);
  if (id.substr(0, 10) == "functions.") id.remove_prefix(10);
  size_t colon = id.rfind(':');
  if (colon != npos) id = id.substr(0, colon);
  if (!valid_name(id)) return St::kFail;
  TRY(take_args_object(s, p, &c->args));
  *p = skip_ws(s, *p);
  TRY(expect(s, p, "<|tool_call_end|>"));
  c->name = std::string(id);
  return St::kDone;
}

// <|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>{..}<|tool_call:end|>
St solar_call(std::string_view s, size_t* p, Call* c) {
  TRY(expect(s, p, "<|tool_call:begin|>"));
  std::string_view id, name;
  TRY(until(s, p, "<|tool_call:name|>", &id));
  TRY(until(s, p, "<|tool_call:args|>", &name));
  name = trim(name);
  if (!valid_name(name)) return St::kFail;
  TRY(take_args_object(s, p, &c->args));
  *p = skip_ws(s, *p);
  TRY(expect(s, p, "<|tool_call:end|>"));
  c->name = std::string(name);
  return St::kDone;
}

// OPEN call* CLOSE. A region that starts with the per-call marker instead of OPEN is one
// bare call. At the end of the text a missing CLOSE is forgiven if every call closed.
Region section(std::string_view r, bool eof, std::string_view open, std::string_view close, const CallFn& fn) {
  Region out;
  size_t p = 0;
  if (!starts_at(r, 0, open)) {
    Call c;
    St st = fn(r, &p, &c);
    return single(st, p, std::move(c));
  }
  p = open.size();
  for (;;) {
    p = skip_ws(r, p);
    St a = expect(r, &p, close);
    if (a == St::kDone) return done(p, std::move(out.calls));
    if (eof && !out.calls.empty() && (p >= r.size() || a == St::kMore)) return done(r.size(), std::move(out.calls));
    if (p >= r.size()) return Region{St::kMore};
    Call c;
    size_t q = p;
    St b = fn(r, &q, &c);
    if (b == St::kDone) {
      out.calls.push_back(std::move(c));
      p = q;
      continue;
    }
    return Region{a == St::kMore || b == St::kMore ? St::kMore : St::kFail};
  }
}

// ---- Gemma 4's argument notation: {key:<|"|>text<|"|>,n:1,list:[...]} ----

constexpr std::string_view kGemmaQuote = "<|\"|>";

St gemma_value(std::string_view s, size_t* p, ojson* out);

St gemma_string(std::string_view s, size_t* p, std::string* out) {
  TRY(expect(s, p, kGemmaQuote));
  std::string_view v;
  TRY(until(s, p, kGemmaQuote, &v));
  *out = std::string(v);
  return St::kDone;
}

St gemma_value(std::string_view s, size_t* p, ojson* out) {
  *p = skip_ws(s, *p);
  if (*p >= s.size()) return St::kMore;
  char c = s[*p];
  if (c == '{' || c == '[') {
    bool obj = c == '{';
    *out = obj ? ojson::object() : ojson::array();
    ++*p;
    for (bool first = true;; first = false) {
      *p = skip_ws(s, *p);
      if (*p >= s.size()) return St::kMore;
      if (s[*p] == (obj ? '}' : ']')) {
        ++*p;
        return St::kDone;
      }
      if (!first) {
        if (s[*p] != ',') return St::kFail;
        *p = skip_ws(s, *p + 1);
        if (*p >= s.size()) return St::kMore;
      }
      if (obj) {
        std::string key;
        if (s[*p] == '<') {
          TRY(gemma_string(s, p, &key));
        } else {
          std::string_view k;
          TRY(until(s, p, ":", &k));
          key = std::string(trim(k));
          --*p;  // re-read the ':' below
        }
        *p = skip_ws(s, *p);
        TRY(expect(s, p, ":"));
        ojson v;
        TRY(gemma_value(s, p, &v));
        (*out)[key] = std::move(v);
      } else {
        ojson v;
        TRY(gemma_value(s, p, &v));
        out->push_back(std::move(v));
      }
    }
  }
  if (c == '<') {
    std::string v;
    TRY(gemma_string(s, p, &v));
    *out = v;
    return St::kDone;
  }
  size_t b = *p;
  while (*p < s.size() && s[*p] != ',' && s[*p] != '}' && s[*p] != ']') ++*p;
  if (*p >= s.size()) return St::kMore;
  *out = json_or_string(trim(s.substr(b, *p - b)));
  return St::kDone;
}

// ---- region parsers, one per family: r starts with the trigger that opened the region ----

// <tool_call>{json}</tool_call>, or the Qwen3-Coder <function=..> form inside the same tags.
Region wrapped_call(std::string_view r, std::string_view open, std::string_view close) {
  size_t p = open.size();
  p = skip_ws(r, p);
  if (p >= r.size()) return Region{St::kMore};
  Call c;
  if (r[p] == '{') {
    St st = take_call_object(r, &p, &c);
    if (st != St::kDone) return Region{st};
  } else {
    St st = qwen_function(r, &p, &c);
    if (st != St::kDone) return Region{st};
  }
  p = skip_ws(r, p);
  St st = expect(r, &p, close);
  return single(st, p, std::move(c));
}

Region parse_hermes(std::string_view r, bool) { return wrapped_call(r, "<tool_call>", "</tool_call>"); }
Region parse_seed(std::string_view r, bool) { return wrapped_call(r, "<seed:tool_call>", "</seed:tool_call>"); }

Region parse_llama3(std::string_view r, bool) {
  size_t p = starts_at(r, 0, "<|python_tag|>") ? 14 : 0;
  Call c;
  St st = take_call_object(r, &p, &c, /*require_args=*/true);
  return single(st, p, std::move(c));
}

Region parse_mistral(std::string_view r, bool) {
  size_t p = skip_ws(r, 12);  // "[TOOL_CALLS]"
  if (p >= r.size()) return Region{St::kMore};
  if (r[p] == '[') {
    std::vector<Call> calls;
    St st = take_call_array(r, &p, &calls);
    if (st != St::kDone) return Region{st};
    return done(p, std::move(calls));
  }
  size_t b = p;
  while (p < r.size() && r[p] != '[') ++p;
  if (p >= r.size()) return Region{trim(r.substr(b)).empty() || valid_name(trim(r.substr(b))) ? St::kMore : St::kFail};
  Call c;
  c.name = std::string(trim(r.substr(b, p - b)));
  if (!valid_name(c.name)) return Region{St::kFail};
  St a = expect(r, &p, "[ARGS]");
  if (a != St::kDone) {
    St b2 = expect(r, &p, "[CALL_ID]");
    if (b2 != St::kDone) return Region{a == St::kMore || b2 == St::kMore ? St::kMore : St::kFail};
    std::string_view id;
    St st = until(r, &p, "[ARGS]", &id);
    if (st != St::kDone) return Region{st};
  }
  St st = take_args_object(r, &p, &c.args);
  return single(st, p, std::move(c));
}

Region parse_deepseek(std::string_view r, bool eof) {
  return section(r, eof, "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", deepseek_call);
}

Region parse_dsml(std::string_view r, bool eof) {
  static const CallFn fn = xml_invoke("<｜DSML｜", "</｜DSML｜");
  return section(r, eof, "<｜DSML｜function_calls>", "</｜DSML｜function_calls>", fn);
}

Region parse_minimax(std::string_view r, bool eof) {
  static const CallFn fn = xml_invoke("<", "</");
  return section(r, eof, "<minimax:tool_call>", "</minimax:tool_call>", fn);
}

Region parse_kimi(std::string_view r, bool eof) {
  return section(r, eof, "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>", kimi_call);
}

Region parse_solar(std::string_view r, bool eof) { return section(r, eof, "<|tool_calls|>", "<|calls|>", solar_call); }

// OPEN [calls...] CLOSE (CLOSE empty: the array's end ends the region).
Region array_region(std::string_view r, std::string_view open, std::string_view close) {
  size_t p = open.size();
  std::vector<Call> calls;
  St st = take_call_array(r, &p, &calls);
  if (st != St::kDone) return Region{st};
  if (!close.empty()) {
    p = skip_ws(r, p);
    st = expect(r, &p, close);
    if (st != St::kDone) return Region{st};
  }
  return done(p, std::move(calls));
}

Region parse_granite(std::string_view r, bool) { return array_region(r, "<|tool_call|>", ""); }
Region parse_apriel(std::string_view r, bool) { return array_region(r, "<tool_calls>", "</tool_calls>"); }
Region parse_nemotron_v2(std::string_view r, bool) { return array_region(r, "<TOOLCALL>", "</TOOLCALL>"); }
Region parse_firefunction(std::string_view r, bool) { return array_region(r, "functools", ""); }
Region parse_command_r7b(std::string_view r, bool) { return array_region(r, "<|START_ACTION|>", "<|END_ACTION|>"); }

Region parse_command_r_plus(std::string_view r, bool) {
  size_t p = skip_ws(r, 7);  // "Action:"
  if (p >= r.size()) return Region{St::kMore};
  bool fenced = r[p] == '`';
  std::string_view lang;
  if (fenced) {
    St st = expect(r, &p, "```");
    if (st == St::kDone) st = until(r, &p, "\n", &lang);
    if (st != St::kDone) return Region{st};
  }
  std::vector<Call> calls;
  St st = take_call_array(r, &p, &calls);
  if (st != St::kDone) return Region{st};
  if (fenced) {
    p = skip_ws(r, p);
    st = expect(r, &p, "```");
    if (st != St::kDone) return Region{st};
  }
  return done(p, std::move(calls));
}

Region parse_functionary_v31(std::string_view r, bool) {
  size_t p = 10;  // "<function="
  std::string_view name;
  Call c;
  St st = until(r, &p, ">", &name);
  if (st == St::kMore && (r.size() - 10 > 256 || r.find('\n', 10) != npos)) st = St::kFail;
  if (st == St::kDone && !valid_name(name)) st = St::kFail;
  if (st == St::kDone) st = take_args_object(r, &p, &c.args);
  if (st == St::kDone) st = expect(r, &(p = skip_ws(r, p)), "</function>");
  c.name = std::string(name);
  return single(st, p, std::move(c));
}

Region parse_functionary_v32(std::string_view r, bool) {
  size_t p = 3;  // ">>>"
  std::string_view name;
  St st = until(r, &p, "\n", &name);
  if (st == St::kMore) {
    bool hopeless = r.size() - 3 > 256 || (r.size() > 3 && !valid_name(r.substr(3)));
    return Region{hopeless ? St::kFail : St::kMore};
  }
  if (!valid_name(name)) return Region{St::kFail};
  if (name == "all") return done(p, {});
  Call c;
  c.name = std::string(name);
  st = take_args_object(r, &p, &c.args);
  return single(st, p, std::move(c));
}

Region parse_glm(std::string_view r, bool) {
  size_t p = 11;  // "<tool_call>"
  size_t q = p;
  while (q < r.size() && r[q] != '\n' && r[q] != '<') ++q;
  if (q >= r.size()) return Region{St::kMore};
  Call c;
  c.name = std::string(trim(r.substr(p, q - p)));
  if (!valid_name(c.name)) return Region{St::kFail};
  p = q;
  ojson obj = ojson::object();
  for (;;) {
    p = skip_ws(r, p);
    St a = expect(r, &p, "</tool_call>");
    if (a == St::kDone) break;
    St b = expect(r, &p, "<arg_key>");
    if (b != St::kDone) return Region{a == St::kMore || b == St::kMore ? St::kMore : St::kFail};
    std::string_view key, value;
    St st = until(r, &p, "</arg_key>", &key);
    if (st == St::kDone) st = expect(r, &(p = skip_ws(r, p)), "<arg_value>");
    if (st == St::kDone) st = until(r, &p, "</arg_value>", &value);
    if (st != St::kDone) return Region{st};
    obj[std::string(key)] = json_or_string(value);
  }
  c.args = dump(obj);
  return done(p, {std::move(c)});
}

Region parse_apertus(std::string_view r, bool) {
  size_t p = 16;  // "<|tools_prefix|>"
  ojson arr;
  St st = take_json(r, &p, &arr);
  if (st != St::kDone) return Region{st};
  if (!arr.is_array()) return Region{St::kFail};
  std::vector<Call> calls;
  for (const auto& el : arr) {
    if (!el.is_object() || el.size() != 1 || !valid_name(el.begin().key())) return Region{St::kFail};
    Call c;
    c.name = el.begin().key();
    if (!args_text(el.begin().value(), &c.args)) return Region{St::kFail};
    calls.push_back(std::move(c));
  }
  p = skip_ws(r, p);
  st = expect(r, &p, "<|tools_suffix|>");
  if (st != St::kDone) return Region{st};
  return done(p, std::move(calls));
}

Region parse_gemma4(std::string_view r, bool) {
  size_t p = 12;  // "<|tool_call>"
  St st = expect(r, &p, "call:");
  if (st != St::kDone) return Region{st};
  size_t b = p;
  while (p < r.size() && r[p] != '{') ++p;
  if (p >= r.size()) return Region{p - b > 256 ? St::kFail : St::kMore};
  Call c;
  c.name = std::string(trim(r.substr(b, p - b)));
  if (!valid_name(c.name)) return Region{St::kFail};
  ojson args;
  st = gemma_value(r, &p, &args);
  if (st != St::kDone) return Region{st};
  c.args = dump(args);
  p = skip_ws(r, p);
  st = expect(r, &p, "<tool_call|>");
  return single(st, p, std::move(c));
}

Region parse_gigachat(std::string_view r, bool) {
  size_t p = starts_at(r, 0, "<|function_call|>") ? 17 : 25;  // or "function call<|role_sep|>"
  Call c;
  St st = take_call_object(r, &p, &c);
  return single(st, p, std::move(c));
}

// ---- the family table ----

struct FamilySpec {
  ToolFamily family;
  std::string_view name;
  std::vector<std::string> triggers;        // start a region anywhere in content
  std::vector<std::string> start_triggers;  // only before any non-whitespace content
  Region (*parse)(std::string_view region, bool eof);
};

const std::vector<FamilySpec>& families() {
  static const std::vector<FamilySpec> table = {
      {ToolFamily::kNone, "none", {}, {}, nullptr},
      {ToolFamily::kHermes, "hermes", {"<tool_call>"}, {}, parse_hermes},
      {ToolFamily::kQwen3Coder, "qwen3_coder", {"<tool_call>"}, {}, parse_hermes},
      {ToolFamily::kSeedOss, "seed_oss", {"<seed:tool_call>"}, {}, parse_seed},
      {ToolFamily::kLlama3, "llama3", {"<|python_tag|>"}, {"{"}, parse_llama3},
      {ToolFamily::kMistral, "mistral", {"[TOOL_CALLS]"}, {}, parse_mistral},
      {ToolFamily::kDeepSeekR1, "deepseek_r1", {"<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>"}, {}, parse_deepseek},
      {ToolFamily::kDeepSeekV3, "deepseek_v3", {"<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>"}, {}, parse_deepseek},
      {ToolFamily::kDeepSeekV32, "deepseek_v32", {"<｜DSML｜function_calls>"}, {}, parse_dsml},
      {ToolFamily::kGptOss, "gpt_oss", {}, {}, nullptr},
      {ToolFamily::kGranite, "granite", {"<|tool_call|>"}, {}, parse_granite},
      {ToolFamily::kFunctionaryV31, "functionary_v3_1", {"<function="}, {}, parse_functionary_v31},
      {ToolFamily::kFunctionaryV32, "functionary_v3_2", {">>>"}, {}, parse_functionary_v32},
      {ToolFamily::kCommandR7B, "command_r7b", {"<|START_ACTION|>"}, {}, parse_command_r7b},
      {ToolFamily::kCommandRPlus, "command_r_plus", {"Action:"}, {}, parse_command_r_plus},
      {ToolFamily::kKimiK2, "kimi_k2", {"<|tool_calls_section_begin|>", "<|tool_call_begin|>"}, {}, parse_kimi},
      {ToolFamily::kGlm, "glm", {"<tool_call>"}, {}, parse_glm},
      {ToolFamily::kMiniMaxM2, "minimax_m2", {"<minimax:tool_call>"}, {}, parse_minimax},
      {ToolFamily::kApriel, "apriel", {"<tool_calls>"}, {}, parse_apriel},
      {ToolFamily::kNemotronV2, "nemotron_v2", {"<TOOLCALL>"}, {}, parse_nemotron_v2},
      {ToolFamily::kFireFunctionV2, "firefunction_v2", {"functools"}, {}, parse_firefunction},
      {ToolFamily::kApertus, "apertus", {"<|tools_prefix|>"}, {}, parse_apertus},
      {ToolFamily::kGemma4, "gemma4", {"<|tool_call>"}, {}, parse_gemma4},
      {ToolFamily::kSolarOpen, "solar_open", {"<|tool_calls|>", "<|tool_call:begin|>"}, {}, parse_solar},
      {ToolFamily::kGigaChat, "gigachat", {"<|function_call|>", "function call<|role_sep|>"}, {}, parse_gigachat},
  };
  return table;
}

const FamilySpec& spec_of(ToolFamily f) {
  for (const auto& s : families())
    if (s.family == f) return s;
  return families()[0];
}

// "call_" + 24 alphanumerics from splitmix64(seed, index).
std::string make_id(uint64_t seed, int index) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t x = seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(index + 1));
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    id += kAlphabet[z % 62];
  }
  return id;
}

OutputDelta text_delta(OutputDelta::Kind kind, std::string text) {
  return OutputDelta{kind, std::move(text), -1, "", ""};
}

// Bytes at the end of s that form an incomplete UTF-8 sequence (0..3).
size_t incomplete_utf8_tail(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(s[s.size() - k]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > k ? k : 0;
  }
  return 0;
}

// Longest suffix of s that is a proper prefix of a marker.
size_t partial_marker_tail(std::string_view s, const std::vector<std::string_view>& markers) {
  size_t best = 0;
  for (auto m : markers)
    for (size_t k = m.empty() ? 0 : std::min(s.size(), m.size() - 1); k > best; --k)
      if (s.substr(s.size() - k) == m.substr(0, k)) {
        best = k;
        break;
      }
  return best;
}

}  // namespace

// ---------------------------------------------------------------------------------------

// The head of a Hermes call in progress: `<tool_call>` ws `{` ws `"name"` ws `:` ws NAME ws
// `,` ws `"arguments"` ws `:` ws, as a grammar-constrained model writes it. On success sets
// the name and where the arguments' value starts (which may be past the text so far).
bool hermes_head(std::string_view r, std::string* name, size_t* args_begin) {
  size_t p = skip_ws(r, std::string_view("<tool_call>").size());
  auto lit = [&](std::string_view l) {
    p = skip_ws(r, p);
    if (!starts_at(r, p, l)) return false;
    p += l.size();
    return true;
  };
  if (!lit("{") || !lit("\"name\"") || !lit(":")) return false;
  p = skip_ws(r, p);
  size_t b = 0, e = 0;
  if (p >= r.size() || r[p] != '"' || scan_json(r, p, &b, &e) != St::kDone) return false;
  const ojson n = parse_json(r.substr(b, e - b));
  if (!n.is_string()) return false;
  p = e;
  if (!lit(",") || !lit("\"arguments\"") || !lit(":")) return false;
  *name = n.get<std::string>();
  *args_begin = skip_ws(r, p);
  return *args_begin < r.size();
}

struct OutputParser::Impl {
  enum class Mode { kContent, kReasoning, kRegion };
  enum class Body { kContent, kReasoning, kCall };

  // One output channel's whitespace state (see the header's whitespace rule).
  struct Channel {
    OutputDelta::Kind kind;
    std::string* sink;
    std::string ws_hold;  // trailing whitespace not yet emitted
    bool strip_leading = false;
  };

  const FamilySpec* spec;
  ReasoningFormat rf;
  bool tools;
  uint64_t seed;
  bool harmony;
  Result res;
  Mode mode = Mode::kContent;
  std::string buf;  // text received and not yet decided
  size_t trigger_len = 0;
  bool virtual_trigger = false;  // kFunctionaryV32: the region's ">>>" came from the prompt
  bool at_start = true;          // no non-whitespace content yet
  bool reasoning_seen = false;
  bool finished = false;
  Channel content{OutputDelta::Kind::kContent, nullptr, {}, false};
  Channel reasoning{OutputDelta::Kind::kReasoning, nullptr, {}, true};
  std::vector<OutputDelta>* out = nullptr;
  // harmony (gpt-oss)
  bool in_header = true;
  Body body = Body::kContent;
  std::string call_name;
  // stream_arguments (Hermes, grammar-constrained calls): the call in progress was
  // announced (its index) and eager_sent bytes of its raw arguments text streamed.
  bool stream_args = false;
  int eager_index = -1;
  size_t eager_sent = 0;
  size_t eager_end = npos;  // where the announced call's arguments end (npos: not yet known)

  Impl(ToolFamily f, ReasoningFormat r, bool t, uint64_t s)
      : spec(&spec_of(f)), rf(std::move(r)), tools(t), seed(s), harmony(f == ToolFamily::kGptOss) {
    content.sink = &res.content;
    reasoning.sink = &res.reasoning;
    if (!harmony && !rf.open.empty() && rf.starts_open) {
      mode = Mode::kReasoning;
      reasoning_seen = true;
    }
    if (f == ToolFamily::kFunctionaryV32) {  // also without tools: ">>>all\n" is not content
      buf = ">>>";
      mode = Mode::kRegion;
      trigger_len = 3;
      virtual_trigger = true;
    }
  }

  void emit(Channel& ch, std::string_view text) {
    if (ch.strip_leading) {
      size_t i = skip_ws(text, 0);
      if (i == text.size()) return;
      text.remove_prefix(i);
      ch.strip_leading = false;
    }
    size_t j = text.size();
    while (j > 0 && is_ws(text[j - 1])) --j;
    if (j == 0) {
      ch.ws_hold += text;
      return;
    }
    std::string s = std::move(ch.ws_hold);
    s += text.substr(0, j);
    ch.ws_hold = std::string(text.substr(j));
    if (&ch == &content) at_start = false;
    *ch.sink += s;
    if (!out->empty() && out->back().kind == ch.kind)
      out->back().text += s;
    else
      out->push_back(text_delta(ch.kind, std::move(s)));
  }

  void emit_call(const Call& c) {
    int index = static_cast<int>(res.tool_calls.size());
    ToolCall tc{make_id(seed, index), c.name, c.args};
    OutputDelta start{OutputDelta::Kind::kToolCallStart, "", index, tc.id, tc.name};
    out->push_back(std::move(start));
    out->push_back(OutputDelta{OutputDelta::Kind::kToolCallArgs, tc.arguments, index, "", ""});
    res.tool_calls.push_back(std::move(tc));
    content.ws_hold.clear();
    content.strip_leading = true;
  }

  // Emits the undecided-free part of buf to ch when no marker is found: all of it at eof,
  // else all but a possible marker start and an incomplete UTF-8 character.
  void emit_safe(Channel& ch, const std::vector<std::string_view>& markers, bool eof) {
    size_t keep = 0;
    if (!eof) {
      keep = partial_marker_tail(buf, markers);
      keep = std::max(keep, incomplete_utf8_tail(std::string_view(buf).substr(0, buf.size() - keep)) + keep);
    }
    emit(ch, std::string_view(buf).substr(0, buf.size() - keep));
    buf.erase(0, buf.size() - keep);
  }

  // Earliest full marker in buf (ties: the longer one); -1 if none.
  static int find_marker(std::string_view s, const std::vector<std::string_view>& markers, size_t* at) {
    int best = -1;
    for (size_t i = 0; i < markers.size(); ++i) {
      if (markers[i].empty()) continue;
      size_t q = s.find(markers[i]);
      if (q == npos) continue;
      if (best < 0 || q < *at || (q == *at && markers[i].size() > markers[best].size())) {
        best = static_cast<int>(i);
        *at = q;
      }
    }
    return best;
  }

  // Returns false when it needs more text.
  // Hermes with stream_args: announce the call once its name is known, then stream its
  // arguments' raw text as it arrives (all but trailing whitespace and an incomplete UTF-8
  // character, which more text decides). The arguments are buf[ab, x): x the end of the
  // value, or where it stopped being JSON, or (cut off) the end of the text: the same for any
  // way the text is split into pushes.
  void stream_partial_call(bool eof) {
    std::string name;
    size_t ab = 0;
    if (!hermes_head(buf, &name, &ab)) return;
    if (eager_index < 0) {
      eager_index = static_cast<int>(res.tool_calls.size());
      ToolCall tc{make_id(seed, eager_index), name, ""};
      out->push_back(OutputDelta{OutputDelta::Kind::kToolCallStart, "", eager_index, tc.id, tc.name});
      res.tool_calls.push_back(std::move(tc));
      eager_sent = 0;
    }
    size_t end = 0;
    const St st = value_extent(buf, ab, &end);
    eager_end = st == St::kMore && !eof ? npos : end;
    if (st == St::kMore && !eof) {
      while (end > ab + eager_sent && is_ws(buf[end - 1])) --end;
      end -= incomplete_utf8_tail(std::string_view(buf).substr(ab + eager_sent, end - ab - eager_sent));
    }
    if (end > ab + eager_sent) {
      std::string frag = buf.substr(ab + eager_sent, end - ab - eager_sent);
      res.tool_calls[eager_index].arguments += frag;
      out->push_back(OutputDelta{OutputDelta::Kind::kToolCallArgs, std::move(frag), eager_index, "", ""});
      eager_sent = end - ab;
    }
  }

  // The extent of the JSON value starting at s[p] (after whitespace): kDone with *end past it,
  // kFail with *end at the first character that cannot continue it, kMore with *end = size.
  static St value_extent(std::string_view s, size_t p, size_t* end) {
    size_t b = 0;
    const St st = scan_json(s, p, &b, end);
    if (st == St::kMore) *end = s.size();
    return st;
  }

  bool step_region(bool eof) {
    if (stream_args && tools) stream_partial_call(eof);
    Region r = spec->parse(buf, eof);
    if (r.st == St::kMore && eof) r.st = St::kFail;
    if (r.st == St::kMore) return false;
    if (eager_index >= 0) {
      // An announced call ends here: done, its arguments are what was streamed; failed, it
      // stays a call (it cannot become text) with the arguments up to where they ended or
      // broke, and the text after that is read on as usual.
      eager_index = -1;
      mode = Mode::kContent;
      size_t cut = r.st == St::kDone ? r.end : eager_end;
      if (cut == npos || cut > buf.size()) cut = buf.size();
      buf.erase(0, cut);
      content.ws_hold.clear();
      content.strip_leading = true;
      virtual_trigger = false;
      return true;
    }
    if (r.st == St::kDone && !tools && !r.calls.empty()) r.st = St::kFail;
    mode = Mode::kContent;
    if (r.st == St::kDone) {
      for (const auto& c : r.calls) emit_call(c);
      buf.erase(0, r.end);
    } else if (virtual_trigger) {
      buf.erase(0, trigger_len);
    } else {
      emit(content, std::string_view(buf).substr(0, trigger_len));
      buf.erase(0, trigger_len);
    }
    virtual_trigger = false;
    return true;
  }

  void scan(bool eof) {
    if (harmony) return scan_harmony(eof);
    for (;;) {
      if (mode == Mode::kRegion) {
        if (!step_region(eof)) return;
        continue;
      }
      std::vector<std::string_view> markers;
      int n_trig = 0, n_start = 0;
      if (mode == Mode::kReasoning) {
        markers.push_back(rf.close);
      } else {
        if (tools) {
          for (const auto& t : spec->triggers) markers.push_back(t);
          n_trig = static_cast<int>(markers.size());
          if (at_start)
            for (const auto& t : spec->start_triggers) markers.push_back(t);
          n_start = static_cast<int>(markers.size());
        }
        if (at_start && !reasoning_seen && !rf.open.empty()) markers.push_back(rf.open);
      }
      Channel& ch = mode == Mode::kReasoning ? reasoning : content;
      size_t at = 0;
      int m = find_marker(buf, markers, &at);
      if (m < 0) {
        emit_safe(ch, markers, eof);
        return;
      }
      if (mode == Mode::kContent && m >= n_trig && !trim(std::string_view(buf).substr(0, at)).empty()) {
        // A start-only marker (start trigger, reasoning open) after non-whitespace is no
        // marker: emit the text before it, which clears at_start, and search again. Had
        // the text come in pieces, at_start would have been cleared the same way.
        emit(ch, std::string_view(buf).substr(0, at));
        buf.erase(0, at);
        continue;
      }
      emit(ch, std::string_view(buf).substr(0, at));
      std::string_view marker = markers[m];
      buf.erase(0, at);
      if (mode == Mode::kReasoning) {  // close
        buf.erase(0, marker.size());
        reasoning.ws_hold.clear();
        mode = Mode::kContent;
        content.strip_leading = true;
      } else if (m >= n_start) {  // reasoning open
        buf.erase(0, marker.size());
        content.ws_hold.clear();
        mode = Mode::kReasoning;
        reasoning_seen = true;
        reasoning.strip_leading = true;
      } else {
        mode = Mode::kRegion;
        trigger_len = marker.size();
      }
    }
  }

  // ---- gpt-oss harmony: a sequence of messages, header <|message|> body end ----

  // A header starts with one of these; `complete` (its <|message|> seen) asks for the whole
  // starter, else a prefix of one may still grow into it. Monotone in the text seen, so
  // every cut of the stream decides alike.
  static bool header_plausible(std::string_view s, bool complete) {
    if (s.size() >= 512) return false;
    for (std::string_view h : {"<|start|>", "<|channel|>", " to=", "to="}) {
      if (starts_at(s, 0, h)) return true;
      if (!complete && s.size() < h.size() && h.substr(0, s.size()) == s) return true;
    }
    return false;
  }

  void open_body(std::string_view header) {
    std::string_view channel, recipient;
    size_t c = header.find("<|channel|>");
    if (c != npos) {
      size_t b = c + 11, e = b;
      while (e < header.size() && !is_ws(header[e]) && header[e] != '<') ++e;
      channel = header.substr(b, e - b);
    }
    size_t t = header.find("to=");
    if (t != npos) {
      size_t b = t + 3, e = b;
      while (e < header.size() && !is_ws(header[e]) && header[e] != '<') ++e;
      recipient = header.substr(b, e - b);
    }
    if (recipient.substr(0, 10) == "functions." && recipient.size() > 10 && tools) {
      body = Body::kCall;
      call_name = std::string(recipient.substr(10));
    } else if (channel == "analysis") {
      body = Body::kReasoning;
      reasoning.strip_leading = true;
    } else {
      body = Body::kContent;
    }
  }

  void close_call_body(std::string_view text) {
    Call c{call_name, ""};
    size_t p = 0, b = 0, e = 0;
    ojson j;
    if (valid_name(call_name) && scan_json(text, 0, &b, &e) == St::kDone && skip_ws(text, e) == text.size() &&
        take_json(text, &p, &j) == St::kDone && args_text(j, &c.args))
      emit_call(c);
    else
      emit(content, text);
  }

  void scan_harmony(bool eof) {
    static const std::vector<std::string_view> kEnds = {"<|end|>", "<|call|>", "<|return|>", "<|start|>",
                                                         "<|channel|>"};
    for (;;) {
      if (buf.empty()) return;
      if (in_header) {
        size_t q = buf.find("<|message|>");
        std::string_view head = std::string_view(buf).substr(0, q);
        if (q == npos && !eof && header_plausible(head, false)) return;
        if (q == npos || !header_plausible(head, true)) {
          // Not a header: plain content until an end marker. A <|start|> or <|channel|> at
          // its very start is content too (else it would open this same header again).
          in_header = false;
          body = Body::kContent;
          for (auto e : {kEnds[3], kEnds[4]})
            if (starts_at(buf, 0, e)) {
              emit(content, e);
              buf.erase(0, e.size());
              break;
            }
          continue;
        }
        open_body(head);
        buf.erase(0, q + 11);
        in_header = false;
        continue;
      }
      size_t at = 0;
      int m = find_marker(buf, kEnds, &at);
      if (body == Body::kCall) {
        if (m < 0 && !eof) return;
        close_call_body(std::string_view(buf).substr(0, m < 0 ? buf.size() : at));
        buf.erase(0, m < 0 ? buf.size() : at);
      } else {
        Channel& ch = body == Body::kReasoning ? reasoning : content;
        if (m < 0) {
          emit_safe(ch, kEnds, eof);
          return;
        }
        emit(ch, std::string_view(buf).substr(0, at));
        buf.erase(0, at);
        if (body == Body::kReasoning) {
          reasoning.ws_hold.clear();
          content.strip_leading = true;
        }
      }
      if (m >= 0 && m <= 2) buf.erase(0, kEnds[m].size());  // <|start|>/<|channel|> begin the next header
      in_header = true;
      if (m < 0) return;
    }
  }
};

OutputParser::OutputParser(ToolFamily family, ReasoningFormat reasoning, bool tools_enabled, uint64_t id_seed)
    : impl_(std::make_unique<Impl>(family, std::move(reasoning), tools_enabled, id_seed)) {}
OutputParser::~OutputParser() = default;
OutputParser::OutputParser(OutputParser&&) noexcept = default;
OutputParser& OutputParser::operator=(OutputParser&&) noexcept = default;

void OutputParser::set_stream_arguments(bool on) {
  impl_->stream_args = on && impl_->spec == &spec_of(ToolFamily::kHermes);
}

std::vector<OutputDelta> OutputParser::push(std::string_view text) {
  std::vector<OutputDelta> out;
  if (impl_->finished || text.empty()) return out;
  impl_->out = &out;
  impl_->buf += text;
  impl_->scan(false);
  impl_->out = nullptr;
  return out;
}

std::vector<OutputDelta> OutputParser::finish() {
  std::vector<OutputDelta> out;
  if (impl_->finished) return out;
  impl_->finished = true;
  impl_->out = &out;
  impl_->scan(true);
  // Trailing whitespace: kept after content, dropped after reasoning (trimmed).
  Impl::Channel& c = impl_->content;
  if (!c.ws_hold.empty()) {
    c.sink->append(c.ws_hold);
    if (!out.empty() && out.back().kind == c.kind)
      out.back().text += c.ws_hold;
    else
      out.push_back(text_delta(c.kind, c.ws_hold));
    c.ws_hold.clear();
  }
  impl_->out = nullptr;
  return out;
}

const OutputParser::Result& OutputParser::result() const { return impl_->res; }

// ---------------------------------------------------------------------------------------

ToolFamily detect_tool_family(std::string_view t) {
  auto has = [&](std::string_view s) { return t.find(s) != npos; };
  if (has("<|channel|>")) return ToolFamily::kGptOss;
  if (has("｜DSML｜")) return ToolFamily::kDeepSeekV32;
  if (has("<｜tool▁calls▁begin｜>")) return has("```json") ? ToolFamily::kDeepSeekR1 : ToolFamily::kDeepSeekV3;
  if (has("<|tool_calls_section_begin|>")) return ToolFamily::kKimiK2;
  if (has("<minimax:tool_call>")) return ToolFamily::kMiniMaxM2;
  if (has("<seed:tool_call>")) return ToolFamily::kSeedOss;
  if (has("<arg_key>")) return ToolFamily::kGlm;
  if (has("<function=")) return has("<parameter=") ? ToolFamily::kQwen3Coder : ToolFamily::kFunctionaryV31;
  if (has(">>>") && has("recipient")) return ToolFamily::kFunctionaryV32;
  if (has("<tool_calls>")) return ToolFamily::kApriel;
  if (has("<tool_call>")) return ToolFamily::kHermes;
  if (has("<|START_ACTION|>")) return ToolFamily::kCommandR7B;
  if (has("Action:") && has("```json")) return ToolFamily::kCommandRPlus;
  if (has("[TOOL_CALLS]")) return ToolFamily::kMistral;
  if (has("<|tool_call|>")) return ToolFamily::kGranite;
  if (has("<TOOLCALL>")) return ToolFamily::kNemotronV2;
  if (has("functools[")) return ToolFamily::kFireFunctionV2;
  if (has("<|tools_prefix|>")) return ToolFamily::kApertus;
  if (has("<|tool_call>")) return ToolFamily::kGemma4;
  if (has("<|tool_call:begin|>")) return ToolFamily::kSolarOpen;
  if (has("<|function_call|>") || (has("function call") && has("<|role_sep|>"))) return ToolFamily::kGigaChat;
  if (has("<|python_tag|>") || (has("\"parameters\"") && has("<|start_header_id|>"))) return ToolFamily::kLlama3;
  return ToolFamily::kNone;
}

std::string_view tool_family_name(ToolFamily f) { return spec_of(f).name; }

ReasoningFormat detect_reasoning(std::string_view t, std::string_view prompt_tail) {
  auto has = [&](std::string_view s) { return t.find(s) != npos; };
  ReasoningFormat r;
  if (has("<seed:think>"))
    r = {"<seed:think>", "</seed:think>"};
  else if (has("[THINK]"))
    r = {"[THINK]", "[/THINK]"};
  else if (has("<|START_THINKING|>"))
    r = {"<|START_THINKING|>", "<|END_THINKING|>"};
  else if (has("<|channel>thought"))
    r = {"<|channel>thought", "<channel|>"};
  else if (has("<|channel|>analysis"))
    return {"<|channel|>analysis<|message|>", "<|end|>", false};
  else if (has("<think>"))
    r = {"<think>", "</think>"};
  else if (has("Here are my reasoning steps:"))
    r = {"Here are my reasoning steps:", "[BEGIN FINAL RESPONSE]"};
  else
    return r;
  std::string_view tail = trim(prompt_tail);
  r.starts_open = tail.size() >= r.open.size() && tail.substr(tail.size() - r.open.size()) == r.open;
  return r;
}

std::vector<std::string> tool_call_triggers(ToolFamily f) {
  if (f == ToolFamily::kLlama3) return {"<|python_tag|>", "{\"name\""};
  if (f == ToolFamily::kGptOss) return {" to=functions."};
  return spec_of(f).triggers;
}

}  // namespace tachyon::chat
