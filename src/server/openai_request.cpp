// Request parsing and validation. Every error names the offending field in `param` and
// says what was expected; no input can make it throw or crash.
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "server/openai.h"

namespace tachyon::server {

namespace {

class Parser {
 public:
  Parser(const ojson& body, ApiError* err) : body_(body), err_(err) {}

  bool fail(const std::string& param, const std::string& message) {
    err_->status = 400;
    err_->type = "invalid_request_error";
    err_->param = param;
    err_->message = message;
    err_->code = "";
    return false;
  }

  // The field, or nullptr when absent or null (both mean "use the default").
  const ojson* field(const char* key) const {
    auto it = body_.find(key);
    if (it == body_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  bool get_bool(const char* key, bool* out) {
    const ojson* v = field(key);
    if (!v) return true;
    if (!v->is_boolean()) return fail(key, std::string("'") + key + "' must be a boolean");
    *out = v->get<bool>();
    return true;
  }

  bool get_number(const char* key, double lo, double hi, bool lo_open, float* out) {
    const ojson* v = field(key);
    if (!v) return true;
    if (!v->is_number()) return fail(key, std::string("'") + key + "' must be a number");
    const double d = v->get<double>();
    if (!std::isfinite(d) || d > hi || (lo_open ? d <= lo : d < lo)) {
      char buf[160];
      std::snprintf(buf, sizeof(buf), "'%s' must be in %s%g, %g], got %g", key, lo_open ? "(" : "[", lo, hi, d);
      return fail(key, buf);
    }
    *out = static_cast<float>(d);
    return true;
  }

  // Integers; a float with an integral value (e.g. 5.0) is accepted.
  bool get_int(const char* key, int64_t lo, int64_t hi, int64_t* out, bool* present = nullptr) {
    const ojson* v = field(key);
    if (!v) return true;
    int64_t x = 0;
    if (!to_int(*v, &x)) return fail(key, std::string("'") + key + "' must be an integer");
    if (x < lo || x > hi)
      return fail(key, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                           std::to_string(hi) + ", got " + std::to_string(x));
    *out = x;
    if (present) *present = true;
    return true;
  }

  static bool to_int(const ojson& v, int64_t* out) {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      *out = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                           : static_cast<int64_t>(u);
      return true;
    }
    if (v.is_number_integer()) {
      *out = v.get<int64_t>();
      return true;
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!std::isfinite(d) || d != std::floor(d)) return false;
      if (d >= 9.2e18) *out = std::numeric_limits<int64_t>::max();
      else if (d <= -9.2e18) *out = std::numeric_limits<int64_t>::min();
      else *out = static_cast<int64_t>(d);
      return true;
    }
    return false;
  }

 private:
  const ojson& body_;
  ApiError* err_;
};

bool parse_messages(Parser& p, const ojson& msgs, ojson* out) {
  if (!msgs.is_array()) return p.fail("messages", "'messages' must be an array of message objects");
  if (msgs.empty()) return p.fail("messages", "'messages' must contain at least one message");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const ojson& m = msgs[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return p.fail(at, at + " must be an object");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return p.fail(at + ".role", at + ".role must be a string");
    auto content = m.find("content");
    if (content != m.end() && !content->is_null() && !content->is_string()) {
      if (!content->is_array())
        return p.fail(at + ".content", at + ".content must be a string, an array of content parts, or null");
      for (size_t j = 0; j < content->size(); ++j) {
        const ojson& part = (*content)[j];
        const std::string pat = at + ".content[" + std::to_string(j) + "]";
        if (!part.is_object()) return p.fail(pat, pat + " must be an object");
        auto type = part.find("type");
        if (type == part.end() || !type->is_string()) return p.fail(pat + ".type", pat + ".type must be a string");
        if (*type != "text")
          return p.fail(pat + ".type", "content part type '" + type->get<std::string>() +
                                           "' is not supported (only 'text')");
        auto text = part.find("text");
        if (text == part.end() || !text->is_string()) return p.fail(pat + ".text", pat + ".text must be a string");
      }
    }
    auto name = m.find("name");
    if (name != m.end() && !name->is_null() && !name->is_string())
      return p.fail(at + ".name", at + ".name must be a string");
    auto tool_calls = m.find("tool_calls");
    if (tool_calls != m.end() && !tool_calls->is_null() && !tool_calls->is_array())
      return p.fail(at + ".tool_calls", at + ".tool_calls must be an array");
  }
  *out = msgs;
  return true;
}

bool parse_token_ids(Parser& p, const ojson& arr, const std::string& param, std::vector<int32_t>* out) {
  out->clear();
  out->reserve(arr.size());
  for (const auto& v : arr) {
    int64_t x = 0;
    if (!Parser::to_int(v, &x)) return p.fail(param, "'" + param + "' must hold only integer token ids");
    if (x < 0 || x > std::numeric_limits<int32_t>::max())
      return p.fail(param, "'" + param + "': token id " + std::to_string(x) + " is out of range");
    out->push_back(static_cast<int32_t>(x));
  }
  return true;
}

bool parse_prompt(Parser& p, const ojson* prompt, const ParseLimits& lim, std::vector<PromptInput>* out) {
  if (!prompt) return p.fail("prompt", "'prompt' is required");
  if (prompt->is_string()) {
    out->push_back({false, prompt->get<std::string>(), {}});
    return true;
  }
  if (!prompt->is_array())
    return p.fail("prompt", "'prompt' must be a string, an array of strings, or an array of token ids");
  if (prompt->empty()) return p.fail("prompt", "'prompt' must not be empty");
  const ojson& first = prompt->front();
  if (first.is_number()) {
    PromptInput in;
    in.is_ids = true;
    if (!parse_token_ids(p, *prompt, "prompt", &in.ids)) return false;
    out->push_back(std::move(in));
    return true;
  }
  if (static_cast<int>(prompt->size()) > lim.max_prompts)
    return p.fail("prompt", "at most " + std::to_string(lim.max_prompts) + " prompts per request");
  for (const auto& e : *prompt) {
    if (e.is_string()) {
      out->push_back({false, e.get<std::string>(), {}});
    } else if (e.is_array()) {
      PromptInput in;
      in.is_ids = true;
      if (!parse_token_ids(p, e, "prompt", &in.ids)) return false;
      if (in.ids.empty()) return p.fail("prompt", "'prompt' must not hold an empty token list");
      out->push_back(std::move(in));
    } else {
      return p.fail("prompt", "'prompt' must be a string, an array of strings, or an array of token ids");
    }
  }
  return true;
}

bool parse_stop(Parser& p, const ojson* stop, const ParseLimits& lim, std::vector<std::string>* out) {
  if (!stop) return true;
  auto add = [&](const ojson& s) {
    if (!s.is_string()) return p.fail("stop", "'stop' must be a string or an array of strings");
    std::string str = s.get<std::string>();
    if (str.size() > lim.max_stop_bytes)
      return p.fail("stop", "stop strings are limited to " + std::to_string(lim.max_stop_bytes) + " bytes");
    if (!str.empty()) out->push_back(std::move(str));
    return true;
  };
  if (stop->is_array()) {
    if (static_cast<int>(stop->size()) > lim.max_stop)
      return p.fail("stop", "at most " + std::to_string(lim.max_stop) + " stop strings");
    for (const auto& s : *stop)
      if (!add(s)) return false;
    return true;
  }
  return add(*stop);
}

bool parse_logit_bias(Parser& p, const ojson* bias, std::vector<int32_t>* banned) {
  if (!bias) return true;
  if (!bias->is_object()) return p.fail("logit_bias", "'logit_bias' must be an object of token id -> bias");
  for (auto it = bias->begin(); it != bias->end(); ++it) {
    const std::string& key = it.key();
    char* end = nullptr;
    errno = 0;
    const long long id = std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || *end != '\0' || errno != 0 || id < 0 || id > std::numeric_limits<int32_t>::max())
      return p.fail("logit_bias", "'logit_bias' key '" + key.substr(0, 32) + "' is not a token id");
    if (!it.value().is_number()) return p.fail("logit_bias", "'logit_bias' values must be numbers");
    const double b = it.value().get<double>();
    if (!(b >= -100 && b <= 100)) return p.fail("logit_bias", "'logit_bias' values must be in [-100, 100]");
    // Only a full ban (-100) is honoured; smaller biases are accepted and ignored.
    if (b <= -100) banned->push_back(static_cast<int32_t>(id));
  }
  return true;
}

}  // namespace

int json_nesting_depth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
    else if (c == ']' || c == '}') --depth;
  }
  return max_depth;
}

bool parse_completion_request(Endpoint ep, std::string_view body, const ParseLimits& lim, CompletionParams* out,
                              ApiError* err) {
  static const ojson kNone;
  Parser p(kNone, err);  // for errors before the body is parsed
  if (json_nesting_depth(body) > lim.max_depth)
    return p.fail("", "request JSON is nested deeper than " + std::to_string(lim.max_depth) + " levels");
  ojson j;
  try {
    j = ojson::parse(body.begin(), body.end());
  } catch (const std::exception& e) {
    return p.fail("", std::string("invalid JSON body: ") + e.what());  // says where it broke
  }
  if (!j.is_object()) return p.fail("", "the request body must be a JSON object");
  Parser q(j, err);
  CompletionParams& r = *out;
  r = CompletionParams{};
  r.endpoint = ep;

  if (const ojson* m = q.field("model")) {
    if (!m->is_string()) return q.fail("model", "'model' must be a string");
    r.model = m->get<std::string>();
  }

  if (ep == Endpoint::kChat) {
    auto it = j.find("messages");
    if (it == j.end() || it->is_null()) return q.fail("messages", "'messages' is required");
    if (!parse_messages(q, *it, &r.messages)) return false;
    if (const ojson* tools = q.field("tools")) {
      if (!tools->is_array()) return q.fail("tools", "'tools' must be an array");
      for (size_t i = 0; i < tools->size(); ++i) {
        const std::string at = "tools[" + std::to_string(i) + "]";
        const ojson& t = (*tools)[i];
        if (!t.is_object()) return q.fail(at, "'tools' entries must be objects");
        auto ty = t.find("type");
        if (ty != t.end() && !(ty->is_string() && *ty == "function"))
          return q.fail(at + ".type", "tool type must be 'function'");
        auto fn = t.find("function");
        if (fn == t.end() || !fn->is_object()) return q.fail(at + ".function", "'" + at + ".function' must be an object");
        auto name = fn->find("name");
        if (name == fn->end() || !name->is_string() || name->get_ref<const std::string&>().empty())
          return q.fail(at + ".function.name", "'" + at + ".function.name' is required (a non-empty string)");
        for (char ch : name->get_ref<const std::string&>())
          if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.'))
            return q.fail(at + ".function.name", "'" + at + ".function.name' may only contain a-z, A-Z, 0-9, '_', '-' and '.'");
        auto params = fn->find("parameters");
        if (params != fn->end() && !params->is_null() && !params->is_object())
          return q.fail(at + ".function.parameters", "'" + at + ".function.parameters' must be a JSON Schema object");
      }
      if (!tools->empty()) r.tools = *tools;
    }
    if (const ojson* tc = q.field("tool_choice")) {
      if (!tc->is_string() && !tc->is_object())
        return q.fail("tool_choice", "'tool_choice' must be a string or an object");
      if (tc->is_string() && *tc != "none" && *tc != "auto" && *tc != "required")
        return q.fail("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or an object");
      if (tc->is_object()) {
        auto fn = tc->find("function");
        const ojson* name = nullptr;
        if (fn != tc->end() && fn->is_object())
          if (auto it = fn->find("name"); it != fn->end()) name = &*it;
        if (name == nullptr || !name->is_string())
          return q.fail("tool_choice.function.name", "'tool_choice' object must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        bool found = false;
        if (r.tools.is_array())
          for (const auto& t : r.tools) found |= t["function"]["name"] == *name;
        if (!found)
          return q.fail("tool_choice.function.name", "tool_choice names function '" + name->get<std::string>() + "', which is not in 'tools'");
      }
      r.tool_choice = *tc;
      if (*tc == "none") r.tools = nullptr;  // the model must not see tools it may not call
    }
    if (!q.get_bool("parallel_tool_calls", &r.parallel_tool_calls)) return false;
  } else {
    if (!parse_prompt(q, q.field("prompt"), lim, &r.prompts)) return false;
    bool echo = false;
    if (!q.get_bool("echo", &echo)) return false;
    if (echo) return q.fail("echo", "'echo' is not supported");
    if (const ojson* s = q.field("suffix")) {
      if (!s->is_string()) return q.fail("suffix", "'suffix' must be a string");
      if (!s->get<std::string>().empty()) return q.fail("suffix", "'suffix' is not supported");
    }
  }

  int64_t v = 0;
  bool present = false;
  if (!q.get_int("max_tokens", 1, std::numeric_limits<int32_t>::max(), &v, &present)) return false;
  if (present) r.max_tokens = static_cast<int>(v);
  present = false;
  if (!q.get_int("max_completion_tokens", 1, std::numeric_limits<int32_t>::max(), &v, &present)) return false;
  if (present) r.max_tokens = static_cast<int>(v);

  v = 1;
  if (!q.get_int("n", 1, lim.max_n, &v)) return false;
  r.n = static_cast<int>(v);
  const int n_prompts = ep == Endpoint::kChat ? 1 : static_cast<int>(r.prompts.size());
  if (r.n * n_prompts > lim.max_n)
    return q.fail("n", "n times the number of prompts must be at most " + std::to_string(lim.max_n));
  v = 1;
  if (!q.get_int("best_of", 1, lim.max_n, &v)) return false;
  if (v > r.n) return q.fail("best_of", "'best_of' greater than 'n' is not supported");

  sampling::SamplingParams& s = r.sampling;
  s.temperature = 1.0f;
  if (!q.get_number("temperature", 0, 2, false, &s.temperature)) return false;
  if (!q.get_number("top_p", 0, 1, false, &s.top_p)) return false;
  if (s.top_p == 0) s.top_p = 1e-6f;  // "only the best token", which (0, 1] cannot say directly
  if (!q.get_number("min_p", 0, 1, false, &s.min_p)) return false;
  if (!q.get_number("presence_penalty", -2, 2, false, &s.presence_penalty)) return false;
  if (!q.get_number("frequency_penalty", -2, 2, false, &s.frequency_penalty)) return false;
  if (!q.get_number("repetition_penalty", 0, 10, true, &s.repetition_penalty)) return false;
  v = 0;
  if (!q.get_int("top_k", -1, std::numeric_limits<int32_t>::max(), &v)) return false;
  s.top_k = v < 0 ? 0 : static_cast<int>(v);
  if (!q.get_int("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &v, &r.seed_set))
    return false;
  if (r.seed_set) s.seed = static_cast<uint64_t>(v);
  if (!parse_logit_bias(q, q.field("logit_bias"), &s.banned_tokens)) return false;

  if (!parse_stop(q, q.field("stop"), lim, &r.stop)) return false;
  if (!q.get_bool("ignore_eos", &r.ignore_eos)) return false;
  if (!q.get_bool("stream", &r.stream)) return false;
  if (const ojson* so = q.field("stream_options")) {
    if (!so->is_object()) return q.fail("stream_options", "'stream_options' must be an object");
    auto iu = so->find("include_usage");
    if (iu != so->end() && !iu->is_null()) {
      if (!iu->is_boolean()) return q.fail("stream_options.include_usage", "'include_usage' must be a boolean");
      r.include_usage = iu->get<bool>();
    }
  }

  if (ep == Endpoint::kChat) {
    bool logprobs = false;
    if (!q.get_bool("logprobs", &logprobs)) return false;
    int64_t top = 0;
    present = false;
    if (!q.get_int("top_logprobs", 0, 20, &top, &present)) return false;
    if (present && top > 0 && !logprobs)
      return q.fail("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    if (logprobs) r.logprobs = static_cast<int>(top);
  } else {
    int64_t lp = -1;
    if (const ojson* l = q.field("logprobs"); l && l->is_boolean())
      return q.fail("logprobs", "'logprobs' must be an integer (the number of top alternatives) for completions");
    if (!q.get_int("logprobs", 0, 20, &lp)) return false;
    r.logprobs = static_cast<int>(lp);
  }

  if (const ojson* sp = q.field("speculative"); sp && !sp->is_null()) {
    if (!sp->is_object()) return q.fail("speculative", "'speculative' must be an object {\"mode\", \"max_draft\"}");
    for (auto it = sp->begin(); it != sp->end(); ++it) {
      if (it.key() == "mode") {
        spec::Mode m;
        if (!it.value().is_string() || !spec::parse_mode(it.value().get<std::string>(), &m))
          return q.fail("speculative.mode", "'speculative.mode' must be \"off\", \"ngram\", \"draft\" or \"auto\"");
        r.spec_mode = m;
      } else if (it.key() == "max_draft") {
        if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > 16)
          return q.fail("speculative.max_draft", "'speculative.max_draft' must be an integer in [0, 16]");
        r.spec_max = static_cast<int>(it.value().get<int64_t>());
      } else {
        return q.fail("speculative." + it.key(), "unknown field 'speculative." + it.key() + "' (mode, max_draft)");
      }
    }
  }

  for (const char* key : {"grammar", "regex"}) {
    if (const ojson* g = q.field(key)) {
      if (g->is_null()) continue;
      if (!g->is_string()) return q.fail(key, std::string("'") + key + "' must be a string");
      (std::string(key) == "grammar" ? r.grammar : r.regex) = g->get<std::string>();
    }
  }
  if (!r.grammar.empty() && !r.regex.empty()) return q.fail("regex", "'grammar' and 'regex' cannot both be given");
  if (const ojson* rf = q.field("response_format")) {
    if (!rf->is_object()) return q.fail("response_format", "'response_format' must be an object");
    auto t = rf->find("type");
    if (t == rf->end() || !t->is_string()) return q.fail("response_format.type", "'response_format.type' must be a string");
    if (*t == "json_object") {
      r.format = ResponseFormat::kJsonObject;
    } else if (*t == "json_schema") {
      auto js = rf->find("json_schema");
      if (js == rf->end() || !js->is_object())
        return q.fail("response_format.json_schema", "'response_format.json_schema' must be an object with 'name' and 'schema'");
      auto name = js->find("name");
      if (name != js->end() && !name->is_string())
        return q.fail("response_format.json_schema.name", "'response_format.json_schema.name' must be a string");
      auto schema = js->find("schema");
      if (schema == js->end() || !(schema->is_object() || schema->is_boolean()))
        return q.fail("response_format.json_schema.schema", "'response_format.json_schema.schema' must be a JSON Schema object");
      auto strict = js->find("strict");
      if (strict != js->end() && !strict->is_null() && !strict->is_boolean())
        return q.fail("response_format.json_schema.strict", "'response_format.json_schema.strict' must be a boolean");
      r.format = ResponseFormat::kJsonSchema;
      r.json_schema = *schema;
      r.json_schema_strict = strict != js->end() && strict->is_boolean() && strict->get<bool>();
    } else if (*t != "text") {
      return q.fail("response_format.type", "response_format type '" + t->get<std::string>() +
                                                "' is not supported (text, json_object, json_schema)");
    }
  }
  if (r.format != ResponseFormat::kText && (!r.grammar.empty() || !r.regex.empty()))
    return q.fail("response_format", "'response_format' cannot be combined with 'grammar' or 'regex'");
  return true;
}

}  // namespace tachyon::server
