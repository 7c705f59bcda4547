// Anthropic Messages API <-> the internal OpenAI chat request and output. See anthropic_api.h.
#include "server/anthropic_api.h"

#include <algorithm>
#include <set>
#include <utility>

namespace tachyon::server {
namespace {

constexpr std::string_view kBillingHeader = "x-anthropic-billing-header:";

// Fills *err with a 400 whose message starts with the place it names.
bool fail(ApiError* err, const std::string& param, const std::string& msg) {
  *err = ApiError{};
  err->status = 400;
  err->param = param;
  err->message = param.empty() ? msg : param + ": " + msg;
  return false;
}

std::string type_of(const ojson& j) { return std::string(j.type_name()); }

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) s += "\n\n";
    s += parts[i];
  }
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The "type" of a block, or a 400 at `at`.
bool block_type(const ojson& b, const std::string& at, std::string* type, ApiError* err) {
  if (!b.is_object()) return fail(err, at, "a content block must be an object, got " + type_of(b));
  auto t = b.find("type");
  if (t == b.end() || !t->is_string()) return fail(err, at + ".type", "a content block needs a string 'type'");
  *type = t->get<std::string>();
  return true;
}

bool block_text(const ojson& b, const std::string& at, std::string* text, ApiError* err) {
  auto t = b.find("text");
  if (t == b.end() || !t->is_string()) return fail(err, at + ".text", "a text block needs a string 'text'");
  *text = t->get<std::string>();
  return true;
}

bool unsupported_block(const std::string& type, const std::string& at, ApiError* err) {
  if (type == "image") return fail(err, at, "image input is not supported");
  return fail(err, at + ".type", "content block type '" + type + "' is not supported here");
}

// system: string or text blocks -> one string ("" when there is none).
bool convert_system(const ojson& sys, std::string* out, ApiError* err) {
  std::vector<std::string> parts;
  if (sys.is_string()) {
    std::string s = sys.get<std::string>();
    if (starts_with(s, kBillingHeader)) {
      size_t nl = s.find('\n');
      s = nl == std::string::npos ? "" : s.substr(nl + 1);
    }
    if (!s.empty()) parts.push_back(std::move(s));
  } else if (sys.is_array()) {
    for (size_t i = 0; i < sys.size(); ++i) {
      const std::string at = "system[" + std::to_string(i) + "]";
      std::string type, text;
      if (!block_type(sys[i], at, &type, err)) return false;
      if (type != "text") return fail(err, at + ".type", "system blocks must be of type 'text', got '" + type + "'");
      if (!block_text(sys[i], at, &text, err)) return false;
      if (starts_with(text, kBillingHeader)) continue;  // per-call hash: would defeat the prefix cache
      parts.push_back(std::move(text));
    }
  } else if (!sys.is_null()) {
    return fail(err, "system", "'system' must be a string or an array of text blocks");
  }
  *out = join(parts);
  return true;
}

// tool_result content -> a string.
bool tool_result_text(const ojson& b, const std::string& at, std::string* out, ApiError* err) {
  std::string text;
  auto c = b.find("content");
  if (c == b.end() || c->is_null()) {
  } else if (c->is_string()) {
    text = c->get<std::string>();
  } else if (c->is_array()) {
    std::vector<std::string> parts;
    for (size_t k = 0; k < c->size(); ++k) {
      const std::string cat = at + ".content[" + std::to_string(k) + "]";
      std::string type, t;
      if (!block_type((*c)[k], cat, &type, err)) return false;
      if (type != "text") return unsupported_block(type, cat, err);
      if (!block_text((*c)[k], cat, &t, err)) return false;
      parts.push_back(std::move(t));
    }
    text = join(parts);
  } else {
    return fail(err, at + ".content", "tool_result content must be a string or an array of text blocks");
  }
  if (auto e = b.find("is_error"); e != b.end() && !e->is_null()) {
    if (!e->is_boolean()) return fail(err, at + ".is_error", "'is_error' must be a boolean");
    if (e->get<bool>()) text = "Error: " + text;
  }
  *out = std::move(text);
  return true;
}

struct MessageConverter {
  ojson* out;                        // the chat messages array
  ApiError* err;
  std::set<std::string> tool_use_ids;  // every tool_use id seen so far

  bool user_blocks(const ojson& content, const std::string& at, const std::string& role) {
    std::vector<std::string> pending;  // text blocks not yet emitted
    auto flush = [&] {
      if (!pending.empty()) out->push_back({{"role", role}, {"content", join(pending)}});
      pending.clear();
    };
    for (size_t j = 0; j < content.size(); ++j) {
      const std::string bat = at + "[" + std::to_string(j) + "]";
      std::string type;
      if (!block_type(content[j], bat, &type, err)) return false;
      if (type == "text") {
        std::string t;
        if (!block_text(content[j], bat, &t, err)) return false;
        pending.push_back(std::move(t));
      } else if (type == "tool_result" && role == "user") {
        const ojson& b = content[j];
        auto id = b.find("tool_use_id");
        if (id == b.end() || !id->is_string())
          return fail(err, bat + ".tool_use_id", "a tool_result needs a string 'tool_use_id'");
        const std::string tid = id->get<std::string>();
        if (!tool_use_ids.count(tid))
          return fail(err, bat + ".tool_use_id",
                      "tool_result for tool_use_id '" + tid + "', which no earlier tool_use block has");
        std::string text;
        if (!tool_result_text(b, bat, &text, err)) return false;
        flush();
        out->push_back({{"role", "tool"}, {"tool_call_id", tid}, {"content", std::move(text)}});
      } else {
        return unsupported_block(type, bat, err);
      }
    }
    flush();
    return true;
  }

  bool assistant_blocks(const ojson& content, const std::string& at) {
    std::vector<std::string> texts, thoughts;
    ojson calls = ojson::array();
    for (size_t j = 0; j < content.size(); ++j) {
      const std::string bat = at + "[" + std::to_string(j) + "]";
      const ojson& b = content[j];
      std::string type;
      if (!block_type(b, bat, &type, err)) return false;
      if (type == "text") {
        std::string t;
        if (!block_text(b, bat, &t, err)) return false;
        texts.push_back(std::move(t));
      } else if (type == "thinking") {
        auto t = b.find("thinking");
        if (t == b.end() || !t->is_string())
          return fail(err, bat + ".thinking", "a thinking block needs a string 'thinking'");
        if (!t->get_ref<const std::string&>().empty()) thoughts.push_back(t->get<std::string>());
      } else if (type == "redacted_thinking") {
        // opaque (encrypted by Anthropic): nothing a local model can read
      } else if (type == "tool_use") {
        auto id = b.find("id");
        auto name = b.find("name");
        if (id == b.end() || !id->is_string() || id->get_ref<const std::string&>().empty())
          return fail(err, bat + ".id", "a tool_use block needs a non-empty string 'id'");
        if (name == b.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
          return fail(err, bat + ".name", "a tool_use block needs a non-empty string 'name'");
        auto input = b.find("input");
        ojson args = input == b.end() || input->is_null() ? ojson::object() : *input;
        if (!args.is_object()) return fail(err, bat + ".input", "a tool_use block's 'input' must be an object");
        tool_use_ids.insert(id->get<std::string>());
        calls.push_back({{"id", *id},
                         {"type", "function"},
                         {"function", {{"name", *name}, {"arguments", dump_json(args)}}}});
      } else {
        return unsupported_block(type, bat, err);
      }
    }
    ojson m = {{"role", "assistant"}, {"content", join(texts)}};
    if (!thoughts.empty()) m["reasoning_content"] = join(thoughts);
    if (!calls.empty()) m["tool_calls"] = std::move(calls);
    out->push_back(std::move(m));
    return true;
  }

  bool message(const ojson& m, size_t i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return fail(err, at, "a message must be an object, got " + type_of(m));
    auto role_it = m.find("role");
    if (role_it == m.end() || !role_it->is_string()) return fail(err, at + ".role", "a message needs a string 'role'");
    const std::string role = role_it->get<std::string>();
    if (role != "user" && role != "assistant" && role != "system")
      return fail(err, at + ".role", "role must be 'user' or 'assistant', got '" + role + "'");
    auto c = m.find("content");
    if (c == m.end()) return fail(err, at + ".content", "a message needs 'content'");
    if (c->is_string()) {
      out->push_back({{"role", role}, {"content", *c}});
      return true;
    }
    if (!c->is_array()) return fail(err, at + ".content", "content must be a string or an array of content blocks");
    return role == "assistant" ? assistant_blocks(*c, at + ".content") : user_blocks(*c, at + ".content", role);
  }
};

bool convert_tools(const ojson& tools, ojson* out, std::set<std::string>* names, ApiError* err) {
  if (!tools.is_array()) return fail(err, "tools", "'tools' must be an array");
  *out = ojson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string at = "tools[" + std::to_string(i) + "]";
    const ojson& t = tools[i];
    if (!t.is_object()) return fail(err, at, "a tool must be an object");
    if (auto ty = t.find("type"); ty != t.end() && !ty->is_null()) {
      if (!ty->is_string()) return fail(err, at + ".type", "a tool's 'type' must be a string");
      if (*ty != "custom")
        return fail(err, at + ".type", "tool type '" + ty->get<std::string>() + "' is not supported (only custom tools)");
    }
    auto name = t.find("name");
    if (name == t.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
      return fail(err, at + ".name", "a tool needs a non-empty string 'name'");
    auto schema = t.find("input_schema");
    if (schema == t.end() || !schema->is_object())
      return fail(err, at + ".input_schema", "a tool needs an object 'input_schema'");
    ojson fn = {{"name", *name}};
    if (auto d = t.find("description"); d != t.end() && !d->is_null()) {
      if (!d->is_string()) return fail(err, at + ".description", "a tool's 'description' must be a string");
      fn["description"] = *d;
    }
    fn["parameters"] = *schema;
    if (auto s = t.find("strict"); s != t.end() && s->is_boolean()) fn["strict"] = *s;
    names->insert(name->get<std::string>());
    out->push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return true;
}

bool convert_tool_choice(const ojson& tc, const std::set<std::string>& names, ojson* chat, ApiError* err) {
  if (!tc.is_object()) return fail(err, "tool_choice", "'tool_choice' must be an object {type}");
  auto t = tc.find("type");
  if (t == tc.end() || !t->is_string()) return fail(err, "tool_choice.type", "'tool_choice' needs a string 'type'");
  const std::string type = t->get<std::string>();
  if (type == "auto") {
    (*chat)["tool_choice"] = "auto";
  } else if (type == "any") {
    (*chat)["tool_choice"] = "required";
  } else if (type == "none") {
    (*chat)["tool_choice"] = "none";
  } else if (type == "tool") {
    auto n = tc.find("name");
    if (n == tc.end() || !n->is_string()) return fail(err, "tool_choice.name", "tool_choice type 'tool' needs a 'name'");
    if (!names.count(n->get<std::string>()))
      return fail(err, "tool_choice.name", "tool_choice names tool '" + n->get<std::string>() + "', which is not in 'tools'");
    (*chat)["tool_choice"] = {{"type", "function"}, {"function", {{"name", *n}}}};
  } else {
    return fail(err, "tool_choice.type", "tool_choice type must be 'auto', 'any', 'tool' or 'none', got '" + type + "'");
  }
  if (auto d = tc.find("disable_parallel_tool_use"); d != tc.end() && !d->is_null()) {
    if (!d->is_boolean()) return fail(err, "tool_choice.disable_parallel_tool_use", "must be a boolean");
    if (d->get<bool>()) (*chat)["parallel_tool_calls"] = false;
  }
  return true;
}

const ojson* field(const ojson& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

ojson usage_object(int prompt_tokens, int cached_tokens, int output_tokens) {
  return {{"input_tokens", std::max(0, prompt_tokens - cached_tokens)},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", cached_tokens},
          {"output_tokens", output_tokens}};
}

}  // namespace

bool anthropic_to_chat_request(const ojson& body, ojson* chat_req, ApiError* err, AnthropicEndpoint ep) {
  if (!body.is_object()) return fail(err, "", "the request body must be a JSON object");
  ojson chat = ojson::object();
  if (const ojson* m = field(body, "model")) {
    if (!m->is_string()) return fail(err, "model", "'model' must be a string");
    chat["model"] = *m;
  }
  ojson msgs = ojson::array();
  std::string system;
  if (const ojson* s = field(body, "system"); s && !convert_system(*s, &system, err)) return false;
  if (!system.empty()) msgs.push_back({{"role", "system"}, {"content", system}});

  const ojson* in = field(body, "messages");
  if (!in) return fail(err, "messages", "'messages' is required");
  if (!in->is_array()) return fail(err, "messages", "'messages' must be an array of messages");
  if (in->empty()) return fail(err, "messages", "'messages' must hold at least one message");
  MessageConverter mc{&msgs, err, {}};
  for (size_t i = 0; i < in->size(); ++i)
    if (!mc.message((*in)[i], i)) return false;
  chat["messages"] = std::move(msgs);

  std::set<std::string> tool_names;
  if (const ojson* t = field(body, "tools")) {
    ojson tools;
    if (!convert_tools(*t, &tools, &tool_names, err)) return false;
    if (!tools.empty()) chat["tools"] = std::move(tools);
  }
  if (const ojson* tc = field(body, "tool_choice"); tc && !convert_tool_choice(*tc, tool_names, &chat, err))
    return false;

  if (ep == AnthropicEndpoint::kCreate) {
    const ojson* mt = field(body, "max_tokens");
    if (!mt) return fail(err, "max_tokens", "'max_tokens' is required");
    if (!mt->is_number_integer() || mt->get<int64_t>() < 1)
      return fail(err, "max_tokens", "'max_tokens' must be an integer >= 1");
    chat["max_tokens"] = *mt;
    for (const char* k : {"temperature", "top_p", "top_k"})
      if (const ojson* v = field(body, k)) {
        if (!v->is_number()) return fail(err, k, std::string("'") + k + "' must be a number");
        chat[k] = *v;
      }
    if (const ojson* ss = field(body, "stop_sequences")) {
      if (!ss->is_array()) return fail(err, "stop_sequences", "'stop_sequences' must be an array of strings");
      for (size_t i = 0; i < ss->size(); ++i)
        if (!(*ss)[i].is_string())
          return fail(err, "stop_sequences[" + std::to_string(i) + "]", "stop sequences must be strings");
      if (!ss->empty()) chat["stop"] = *ss;
    }
    if (const ojson* st = field(body, "stream")) {
      if (!st->is_boolean()) return fail(err, "stream", "'stream' must be a boolean");
      chat["stream"] = *st;
      if (st->get<bool>()) chat["stream_options"] = {{"include_usage", true}};
    }
  }
  if (const ojson* oc = field(body, "output_config")) {
    if (!oc->is_object()) return fail(err, "output_config", "'output_config' must be an object");
    if (const ojson* f = field(*oc, "format")) {
      if (!f->is_object()) return fail(err, "output_config.format", "'output_config.format' must be an object");
      auto t = f->find("type");
      if (t == f->end() || *t != "json_schema")
        return fail(err, "output_config.format.type", "output_config.format type must be 'json_schema'");
      auto schema = f->find("schema");
      if (schema == f->end() || !schema->is_object())
        return fail(err, "output_config.format.schema", "output_config.format needs an object 'schema'");
      chat["response_format"] = {{"type", "json_schema"},
                                 {"json_schema", {{"name", "output"}, {"schema", *schema}, {"strict", true}}}};
    }
  }
  *chat_req = std::move(chat);
  return true;
}

std::string anthropic_error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

std::string anthropic_error_json(const ApiError& e) {
  ojson j = {{"type", "error"}, {"error", {{"type", anthropic_error_type(e.status)}, {"message", e.message}}}};
  return dump_json(j);
}

ojson anthropic_count_tokens_json(int input_tokens) { return {{"input_tokens", input_tokens}}; }

std::string anthropic_stop_reason(const std::string& finish_reason, const std::string& stop_sequence) {
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls") return "tool_use";
  if (finish_reason == "stop_sequence" || (finish_reason == "stop" && !stop_sequence.empty())) return "stop_sequence";
  return "end_turn";
}

ojson anthropic_message_json(const std::string& id, const std::string& model, const TurnOutput& out) {
  ojson content = ojson::array();
  if (!out.reasoning.empty()) content.push_back({{"type", "thinking"}, {"thinking", out.reasoning}, {"signature", ""}});
  if (!out.content.empty()) content.push_back({{"type", "text"}, {"text", out.content}});
  for (const auto& tc : out.tool_calls) {
    ojson input = ojson::parse(tc.arguments, nullptr, /*allow_exceptions=*/false);
    if (!input.is_object()) input = ojson::object();
    content.push_back({{"type", "tool_use"}, {"id", tc.id}, {"name", tc.name}, {"input", std::move(input)}});
  }
  const std::string reason = anthropic_stop_reason(out.finish_reason, out.stop_sequence);
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", model},
          {"content", std::move(content)},
          {"stop_reason", reason},
          {"stop_sequence", reason == "stop_sequence" ? ojson(out.stop_sequence) : ojson(nullptr)},
          {"usage", usage_object(out.prompt_tokens, out.cached_tokens, out.completion_tokens)}};
}

// ---- AnthropicStream ----

AnthropicStream::AnthropicStream(std::string id, std::string model) : id_(std::move(id)), model_(std::move(model)) {}

std::string AnthropicStream::event(const ojson& data) {
  return "event: " + data["type"].get<std::string>() + "\ndata: " + dump_json(data) + "\n\n";
}

std::string AnthropicStream::start(int prompt_tokens, int cached_tokens) {
  ojson msg = {{"id", id_},
               {"type", "message"},
               {"role", "assistant"},
               {"model", model_},
               {"content", ojson::array()},
               {"stop_reason", nullptr},
               {"stop_sequence", nullptr},
               {"usage", usage_object(prompt_tokens, cached_tokens, 0)}};
  return event({{"type", "message_start"}, {"message", std::move(msg)}});
}

std::string AnthropicStream::ping() { return done_ ? "" : event({{"type", "ping"}}); }

std::string AnthropicStream::close_block() {
  if (open_ == Block::kNone) return "";
  open_ = Block::kNone;
  open_tool_ = -1;
  return event({{"type", "content_block_stop"}, {"index", n_blocks_ - 1}});
}

std::string AnthropicStream::open_block(Block kind, ojson content_block) {
  std::string s = close_block();
  open_ = kind;
  s += event({{"type", "content_block_start"}, {"index", n_blocks_++}, {"content_block", std::move(content_block)}});
  return s;
}

std::string AnthropicStream::text(std::string_view t) {
  if (done_ || t.empty()) return "";
  std::string s;
  if (open_ != Block::kText) s = open_block(Block::kText, {{"type", "text"}, {"text", ""}});
  s += event({{"type", "content_block_delta"},
              {"index", n_blocks_ - 1},
              {"delta", {{"type", "text_delta"}, {"text", std::string(t)}}}});
  return s;
}

std::string AnthropicStream::thinking(std::string_view t) {
  if (done_ || t.empty()) return "";
  std::string s;
  if (open_ != Block::kThinking)
    s = open_block(Block::kThinking, {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
  s += event({{"type", "content_block_delta"},
              {"index", n_blocks_ - 1},
              {"delta", {{"type", "thinking_delta"}, {"thinking", std::string(t)}}}});
  return s;
}

std::string AnthropicStream::tool_start(int index, const std::string& id, const std::string& name) {
  if (done_) return "";
  std::string s =
      open_block(Block::kTool, {{"type", "tool_use"}, {"id", id}, {"name", name}, {"input", ojson::object()}});
  open_tool_ = index;
  tool_block_[index] = n_blocks_ - 1;
  return s;
}

std::string AnthropicStream::tool_args(int index, std::string_view fragment) {
  if (done_ || fragment.empty()) return "";
  auto it = tool_block_.find(index);
  if (it == tool_block_.end()) return "";
  return event({{"type", "content_block_delta"},
                {"index", it->second},
                {"delta", {{"type", "input_json_delta"}, {"partial_json", std::string(fragment)}}}});
}

std::string AnthropicStream::finish(const std::string& finish_reason, const std::string& stop_sequence,
                                    int output_tokens) {
  if (done_) return "";
  std::string s = close_block();
  const std::string reason = anthropic_stop_reason(finish_reason, stop_sequence);
  s += event({{"type", "message_delta"},
              {"delta",
               {{"stop_reason", reason},
                {"stop_sequence", reason == "stop_sequence" ? ojson(stop_sequence) : ojson(nullptr)}}},
              {"usage", {{"output_tokens", output_tokens}}}});
  s += event({{"type", "message_stop"}});
  done_ = true;
  return s;
}

std::string AnthropicStream::error(const ApiError& e) {
  if (done_) return "";
  done_ = true;
  return event({{"type", "error"}, {"error", {{"type", anthropic_error_type(e.status)}, {"message", e.message}}}});
}

}  // namespace tachyon::server
