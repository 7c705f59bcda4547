// OpenAI Responses API <-> the internal OpenAI chat request and output. See responses_api.h.
#include "server/responses_api.h"

#include <set>
#include <utility>
#include <vector>

namespace tachyon::server {
namespace {

constexpr const char* kStateless = "this server is stateless; send the full input";

bool fail(ApiError* err, const std::string& param, const std::string& msg) {
  *err = ApiError{};
  err->status = 400;
  err->param = param;
  err->message = param.empty() ? msg : param + ": " + msg;
  return false;
}

const ojson* field(const ojson& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) s += "\n\n";
    s += parts[i];
  }
  return s;
}

// Content: a string, or an array of parts -> their text joined "\n\n".
bool content_text(const ojson& c, const std::string& at, std::string* out, ApiError* err) {
  if (c.is_string()) {
    *out = c.get<std::string>();
    return true;
  }
  if (!c.is_array()) return fail(err, at, "must be a string or an array of content parts");
  std::vector<std::string> parts;
  for (size_t k = 0; k < c.size(); ++k) {
    const std::string pat = at + "[" + std::to_string(k) + "]";
    const ojson& p = c[k];
    if (!p.is_object()) return fail(err, pat, "a content part must be an object");
    auto t = p.find("type");
    if (t == p.end() || !t->is_string()) return fail(err, pat + ".type", "a content part needs a string 'type'");
    const std::string type = t->get<std::string>();
    const char* key = type == "input_text" || type == "output_text" ? "text" : type == "refusal" ? "refusal" : nullptr;
    if (!key) {
      if (type == "input_image") return fail(err, pat, "image input is not supported");
      return fail(err, pat + ".type", "content part type '" + type + "' is not supported");
    }
    auto v = p.find(key);
    if (v == p.end() || !v->is_string())
      return fail(err, pat + "." + key, "a '" + type + "' part needs a string '" + key + "'");
    parts.push_back(v->get<std::string>());
  }
  *out = join(parts);
  return true;
}

struct InputConverter {
  ApiError* err;
  std::vector<std::string> system_parts;  // instructions + leading system/developer messages
  ojson msgs = ojson::array();            // everything after them
  std::set<std::string> call_ids;

  bool message(const ojson& it, const std::string& at) {
    auto r = it.find("role");
    if (r == it.end() || !r->is_string()) return fail(err, at + ".role", "a message needs a string 'role'");
    std::string role = r->get<std::string>();
    if (role != "user" && role != "assistant" && role != "system" && role != "developer")
      return fail(err, at + ".role", "role must be 'user', 'assistant', 'system' or 'developer', got '" + role + "'");
    auto c = it.find("content");
    if (c == it.end()) return fail(err, at + ".content", "a message needs 'content'");
    std::string text;
    if (!content_text(*c, at + ".content", &text, err)) return false;
    if (role == "system" || role == "developer") {
      if (msgs.empty()) {
        system_parts.push_back(std::move(text));
        return true;
      }
      role = "system";
    }
    msgs.push_back({{"role", role}, {"content", std::move(text)}});
    return true;
  }

  bool function_call(const ojson& it, const std::string& at) {
    auto id = it.find("call_id");
    if (id == it.end() || !id->is_string() || id->get_ref<const std::string&>().empty())
      return fail(err, at + ".call_id", "a function_call needs a non-empty string 'call_id'");
    auto name = it.find("name");
    if (name == it.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
      return fail(err, at + ".name", "a function_call needs a non-empty string 'name'");
    auto args = it.find("arguments");
    if (args == it.end() || !args->is_string())
      return fail(err, at + ".arguments", "a function_call needs a string 'arguments' (JSON text)");
    call_ids.insert(id->get<std::string>());
    ojson call = {{"id", *id}, {"type", "function"}, {"function", {{"name", *name}, {"arguments", *args}}}};
    if (msgs.empty() || msgs.back()["role"] != "assistant") msgs.push_back({{"role", "assistant"}, {"content", ""}});
    ojson& m = msgs.back();
    if (!m.contains("tool_calls")) m["tool_calls"] = ojson::array();
    m["tool_calls"].push_back(std::move(call));
    return true;
  }

  bool function_call_output(const ojson& it, const std::string& at) {
    auto id = it.find("call_id");
    if (id == it.end() || !id->is_string())
      return fail(err, at + ".call_id", "a function_call_output needs a string 'call_id'");
    const std::string cid = id->get<std::string>();
    if (!call_ids.count(cid))
      return fail(err, at + ".call_id", "function_call_output for call_id '" + cid + "', which no earlier function_call has");
    auto o = it.find("output");
    if (o == it.end()) return fail(err, at + ".output", "a function_call_output needs 'output'");
    std::string text;
    if (!content_text(*o, at + ".output", &text, err)) return false;
    msgs.push_back({{"role", "tool"}, {"tool_call_id", cid}, {"content", std::move(text)}});
    return true;
  }

  bool item(const ojson& it, size_t i) {
    const std::string at = "input[" + std::to_string(i) + "]";
    if (!it.is_object()) return fail(err, at, "an input item must be an object");
    std::string type;
    if (auto t = it.find("type"); t != it.end() && !t->is_null()) {
      if (!t->is_string()) return fail(err, at + ".type", "an input item's 'type' must be a string");
      type = t->get<std::string>();
    } else if (it.contains("role")) {
      type = "message";
    } else {
      return fail(err, at + ".type", "an input item needs a 'type' (or a 'role' for a message)");
    }
    if (type == "message") return message(it, at);
    if (type == "function_call") return function_call(it, at);
    if (type == "function_call_output") return function_call_output(it, at);
    if (type == "reasoning") return true;
    if (type == "item_reference") return fail(err, at + ".type", std::string("item_reference is not supported: ") + kStateless);
    return fail(err, at + ".type", "input item type '" + type + "' is not supported");
  }
};

bool convert_tools(const ojson& tools, ojson* out, ApiError* err) {
  if (!tools.is_array()) return fail(err, "tools", "'tools' must be an array");
  *out = ojson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string at = "tools[" + std::to_string(i) + "]";
    const ojson& t = tools[i];
    if (!t.is_object()) return fail(err, at, "a tool must be an object");
    auto ty = t.find("type");
    if (ty == t.end() || !ty->is_string()) return fail(err, at + ".type", "a tool needs a string 'type'");
    if (*ty != "function")
      return fail(err, at + ".type", "tool type '" + ty->get<std::string>() + "' is not supported (only function tools)");
    auto name = t.find("name");
    if (name == t.end() || !name->is_string() || name->get_ref<const std::string&>().empty())
      return fail(err, at + ".name", "a function tool needs a non-empty string 'name'");
    ojson fn = {{"name", *name}};
    if (const ojson* d = field(t, "description")) {
      if (!d->is_string()) return fail(err, at + ".description", "a tool's 'description' must be a string");
      fn["description"] = *d;
    }
    const ojson* params = field(t, "parameters");
    if (params && !params->is_object()) return fail(err, at + ".parameters", "'parameters' must be an object (a JSON schema)");
    fn["parameters"] = params ? *params : ojson{{"type", "object"}, {"properties", ojson::object()}};
    if (const ojson* s = field(t, "strict")) {
      if (!s->is_boolean()) return fail(err, at + ".strict", "'strict' must be a boolean");
      fn["strict"] = *s;
    }
    out->push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return true;
}

bool convert_tool_choice(const ojson& tc, ojson* chat, ApiError* err) {
  if (tc.is_string()) {
    if (tc != "none" && tc != "auto" && tc != "required")
      return fail(err, "tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or {type:'function', name}");
    (*chat)["tool_choice"] = tc;
    return true;
  }
  if (!tc.is_object()) return fail(err, "tool_choice", "'tool_choice' must be a string or an object");
  auto t = tc.find("type");
  if (t == tc.end() || !t->is_string()) return fail(err, "tool_choice.type", "'tool_choice' needs a string 'type'");
  if (*t != "function")
    return fail(err, "tool_choice.type", "tool_choice type '" + t->get<std::string>() + "' is not supported");
  auto n = tc.find("name");
  if (n == tc.end() || !n->is_string()) return fail(err, "tool_choice.name", "tool_choice needs a string 'name'");
  (*chat)["tool_choice"] = {{"type", "function"}, {"function", {{"name", *n}}}};
  return true;
}

bool convert_text_format(const ojson& text, ojson* chat, ApiError* err) {
  if (!text.is_object()) return fail(err, "text", "'text' must be an object");
  const ojson* f = field(text, "format");
  if (!f) return true;
  if (!f->is_object()) return fail(err, "text.format", "'text.format' must be an object");
  auto t = f->find("type");
  if (t == f->end() || !t->is_string()) return fail(err, "text.format.type", "'text.format' needs a string 'type'");
  if (*t == "text") return true;
  if (*t == "json_object") {
    (*chat)["response_format"] = {{"type", "json_object"}};
    return true;
  }
  if (*t != "json_schema")
    return fail(err, "text.format.type", "text.format type must be 'text', 'json_object' or 'json_schema', got '" +
                                             t->get<std::string>() + "'");
  auto name = f->find("name");
  if (name == f->end() || !name->is_string()) return fail(err, "text.format.name", "a json_schema format needs a string 'name'");
  auto schema = f->find("schema");
  if (schema == f->end() || !schema->is_object())
    return fail(err, "text.format.schema", "a json_schema format needs an object 'schema'");
  ojson js = {{"name", *name}, {"schema", *schema}};
  if (const ojson* s = field(*f, "strict")) {
    if (!s->is_boolean()) return fail(err, "text.format.strict", "'strict' must be a boolean");
    js["strict"] = *s;
  }
  if (const ojson* d = field(*f, "description")) {
    if (!d->is_string()) return fail(err, "text.format.description", "'description' must be a string");
    js["description"] = *d;
  }
  (*chat)["response_format"] = {{"type", "json_schema"}, {"json_schema", std::move(js)}};
  return true;
}

// The part of a Response that echoes the request (defaults as OpenAI reports them).
ojson echo_or(const ojson& req, const char* key, ojson dflt) {
  if (!req.is_object()) return dflt;
  const ojson* v = field(req, key);
  return v ? *v : dflt;
}

ojson usage_json(int prompt_tokens, int cached_tokens, int completion_tokens, int reasoning_tokens) {
  return {{"input_tokens", prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", cached_tokens}}},
          {"output_tokens", completion_tokens},
          {"output_tokens_details", {{"reasoning_tokens", reasoning_tokens}}},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

ojson response_json(const std::string& id, const std::string& model, int64_t created, const std::string& status,
                    ojson output, ojson usage, const ojson& req, ojson error) {
  return {{"id", id},
          {"object", "response"},
          {"created_at", created},
          {"status", status},
          {"background", false},
          {"error", std::move(error)},
          {"incomplete_details", status == "incomplete" ? ojson{{"reason", "max_output_tokens"}} : ojson(nullptr)},
          {"instructions", echo_or(req, "instructions", nullptr)},
          {"max_output_tokens", echo_or(req, "max_output_tokens", nullptr)},
          {"model", model},
          {"output", std::move(output)},
          {"parallel_tool_calls", echo_or(req, "parallel_tool_calls", true)},
          {"previous_response_id", nullptr},
          {"reasoning", echo_or(req, "reasoning", {{"effort", nullptr}, {"summary", nullptr}})},
          {"store", false},
          {"temperature", echo_or(req, "temperature", 1.0)},
          {"text", echo_or(req, "text", {{"format", {{"type", "text"}}}})},
          {"tool_choice", echo_or(req, "tool_choice", "auto")},
          {"tools", echo_or(req, "tools", ojson::array())},
          {"top_p", echo_or(req, "top_p", 1.0)},
          {"truncation", "disabled"},
          {"usage", std::move(usage)},
          {"user", nullptr},
          {"metadata", echo_or(req, "metadata", ojson::object())}};
}

// "resp_X" -> "X" (the whole id when it has no such prefix).
std::string id_suffix(const std::string& id) { return id.rfind("resp_", 0) == 0 ? id.substr(5) : id; }

std::string item_id(const char* prefix, const std::string& suffix, size_t output_index) {
  return std::string(prefix) + "_" + suffix + "_" + std::to_string(output_index);
}

ojson reasoning_item(const std::string& id, const std::string& text, const char* status) {
  ojson content = ojson::array();
  if (!text.empty() || std::string_view(status) == "completed")
    content.push_back({{"type", "reasoning_text"}, {"text", text}});
  return {{"id", id}, {"type", "reasoning"}, {"summary", ojson::array()}, {"content", content}, {"status", status}};
}

ojson message_item(const std::string& id, const std::string& text, const char* status, bool with_part) {
  ojson content = ojson::array();
  if (with_part) content.push_back({{"type", "output_text"}, {"text", text}, {"annotations", ojson::array()}});
  return {{"id", id}, {"type", "message"}, {"status", status}, {"role", "assistant"}, {"content", std::move(content)}};
}

ojson function_item(const std::string& id, const std::string& call_id, const std::string& name,
                    const std::string& args, const char* status) {
  return {{"id", id}, {"type", "function_call"}, {"status", status}, {"arguments", args}, {"call_id", call_id},
          {"name", name}};
}

}  // namespace

bool responses_to_chat_request(const ojson& body, ojson* chat_req, ApiError* err) {
  if (!body.is_object()) return fail(err, "", "the request body must be a JSON object");
  if (field(body, "previous_response_id"))
    return fail(err, "previous_response_id", std::string("previous_response_id is not supported: ") + kStateless);
  if (field(body, "conversation"))
    return fail(err, "conversation", std::string("conversation is not supported: ") + kStateless);
  if (const ojson* b = field(body, "background"); b && !(b->is_boolean() && !b->get<bool>()))
    return fail(err, "background", "background responses are not supported");
  if (field(body, "prompt")) return fail(err, "prompt", "stored prompts ('prompt') are not supported");

  ojson chat = ojson::object();
  if (const ojson* m = field(body, "model")) {
    if (!m->is_string()) return fail(err, "model", "'model' must be a string");
    chat["model"] = *m;
  }
  InputConverter ic{err, {}, ojson::array(), {}};
  if (const ojson* ins = field(body, "instructions")) {
    if (!ins->is_string()) return fail(err, "instructions", "'instructions' must be a string");
    if (!ins->get_ref<const std::string&>().empty()) ic.system_parts.push_back(ins->get<std::string>());
  }
  const ojson* input = field(body, "input");
  if (!input) return fail(err, "input", "'input' is required");
  if (input->is_string()) {
    ic.msgs.push_back({{"role", "user"}, {"content", *input}});
  } else if (input->is_array()) {
    for (size_t i = 0; i < input->size(); ++i)
      if (!ic.item((*input)[i], i)) return false;
  } else {
    return fail(err, "input", "'input' must be a string or an array of input items");
  }
  ojson msgs = ojson::array();
  if (!ic.system_parts.empty()) msgs.push_back({{"role", "system"}, {"content", join(ic.system_parts)}});
  for (auto& m : ic.msgs) msgs.push_back(std::move(m));
  if (msgs.empty()) return fail(err, "input", "'input' must hold at least one message");
  chat["messages"] = std::move(msgs);

  if (const ojson* t = field(body, "tools")) {
    ojson tools;
    if (!convert_tools(*t, &tools, err)) return false;
    if (!tools.empty()) chat["tools"] = std::move(tools);
  }
  if (const ojson* tc = field(body, "tool_choice"); tc && !convert_tool_choice(*tc, &chat, err)) return false;
  if (const ojson* p = field(body, "parallel_tool_calls")) {
    if (!p->is_boolean()) return fail(err, "parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
    chat["parallel_tool_calls"] = *p;
  }
  if (const ojson* mt = field(body, "max_output_tokens")) {
    if (!mt->is_number_integer() || mt->get<int64_t>() < 1)
      return fail(err, "max_output_tokens", "'max_output_tokens' must be an integer >= 1");
    chat["max_tokens"] = *mt;
  }
  for (const char* k : {"temperature", "top_p"})
    if (const ojson* v = field(body, k)) {
      if (!v->is_number()) return fail(err, k, std::string("'") + k + "' must be a number");
      chat[k] = *v;
    }
  if (const ojson* st = field(body, "stream")) {
    if (!st->is_boolean()) return fail(err, "stream", "'stream' must be a boolean");
    chat["stream"] = *st;
    if (st->get<bool>()) chat["stream_options"] = {{"include_usage", true}};
  }
  if (const ojson* tx = field(body, "text"); tx && !convert_text_format(*tx, &chat, err)) return false;
  *chat_req = std::move(chat);
  return true;
}

ojson responses_object_json(const std::string& id, const std::string& model, int64_t created, const TurnOutput& out,
                            const ojson& request_echo) {
  const std::string sfx = id_suffix(id);
  ojson output = ojson::array();
  if (!out.reasoning.empty()) output.push_back(reasoning_item(item_id("rs", sfx, output.size()), out.reasoning, "completed"));
  if (!out.content.empty())
    output.push_back(message_item(item_id("msg", sfx, output.size()), out.content, "completed", true));
  for (const auto& tc : out.tool_calls)
    output.push_back(function_item(item_id("fc", sfx, output.size()), tc.id, tc.name, tc.arguments, "completed"));
  const std::string status = out.finish_reason == "length" ? "incomplete" : "completed";
  if (!output.empty()) output.back()["status"] = status;  // the item the length limit cut
  return response_json(id, model, created, status, std::move(output),
                       usage_json(out.prompt_tokens, out.cached_tokens, out.completion_tokens, out.reasoning_tokens),
                       request_echo, nullptr);
}

// ---- ResponsesStream ----

ResponsesStream::ResponsesStream(std::string id, std::string model, int64_t created, ojson request_echo)
    : id_(std::move(id)), model_(std::move(model)), suffix_(id_suffix(id_)), created_(created),
      request_echo_(std::move(request_echo)) {}

std::string ResponsesStream::event(ojson data) {
  data["sequence_number"] = seq_++;
  return "event: " + data["type"].get<std::string>() + "\ndata: " + dump_json(data) + "\n\n";
}

ojson ResponsesStream::envelope(const std::string& status) const {
  return response_json(id_, model_, created_, status, status == "in_progress" ? ojson::array() : output_, nullptr,
                       request_echo_, nullptr);
}

std::string ResponsesStream::start() {
  std::string s = event({{"type", "response.created"}, {"response", envelope("in_progress")}});
  s += event({{"type", "response.in_progress"}, {"response", envelope("in_progress")}});
  return s;
}

std::string ResponsesStream::close_item(const char* status) {
  if (open_ == Item::kNone) return "";
  const int idx = static_cast<int>(output_.size()) - 1;
  ojson& item = output_[idx];
  const std::string item_id = item["id"];
  std::string s;
  item["status"] = status;
  if (open_ == Item::kMessage) {
    ojson& part = item["content"][0];
    s += event({{"type", "response.output_text.done"}, {"item_id", item_id}, {"output_index", idx},
                {"content_index", 0}, {"text", part["text"]}, {"logprobs", ojson::array()}});
    s += event({{"type", "response.content_part.done"}, {"item_id", item_id}, {"output_index", idx},
                {"content_index", 0}, {"part", part}});
  } else if (open_ == Item::kReasoning) {
    ojson& part = item["content"][0];
    s += event({{"type", "response.reasoning_text.done"}, {"item_id", item_id}, {"output_index", idx},
                {"content_index", 0}, {"text", part["text"]}});
    s += event({{"type", "response.content_part.done"}, {"item_id", item_id}, {"output_index", idx},
                {"content_index", 0}, {"part", part}});
  } else {
    s += event({{"type", "response.function_call_arguments.done"}, {"item_id", item_id}, {"output_index", idx},
                {"name", item["name"]}, {"arguments", item["arguments"]}});
  }
  s += event({{"type", "response.output_item.done"}, {"output_index", idx}, {"item", item}});
  open_ = Item::kNone;
  return s;
}

std::string ResponsesStream::open_item(Item kind, ojson item) {
  std::string s = close_item();
  const int idx = static_cast<int>(output_.size());
  s += event({{"type", "response.output_item.added"}, {"output_index", idx}, {"item", item}});
  ojson part;
  if (kind == Item::kMessage) part = {{"type", "output_text"}, {"text", ""}, {"annotations", ojson::array()}};
  if (kind == Item::kReasoning) part = {{"type", "reasoning_text"}, {"text", ""}};
  if (!part.is_null()) {
    s += event({{"type", "response.content_part.added"}, {"item_id", item["id"]}, {"output_index", idx},
                {"content_index", 0}, {"part", part}});
    item["content"].push_back(std::move(part));
  }
  output_.push_back(std::move(item));
  open_ = kind;
  return s;
}

std::string ResponsesStream::text(std::string_view t) {
  if (done_ || t.empty()) return "";
  std::string s;
  if (open_ != Item::kMessage)
    s = open_item(Item::kMessage, message_item(item_id("msg", suffix_, output_.size()), "", "in_progress", false));
  const int idx = static_cast<int>(output_.size()) - 1;
  ojson& part = output_[idx]["content"][0];
  part["text"] = part["text"].get<std::string>() + std::string(t);
  s += event({{"type", "response.output_text.delta"}, {"item_id", output_[idx]["id"]}, {"output_index", idx},
              {"content_index", 0}, {"delta", std::string(t)}, {"logprobs", ojson::array()}});
  return s;
}

std::string ResponsesStream::thinking(std::string_view t) {
  if (done_ || t.empty()) return "";
  std::string s;
  if (open_ != Item::kReasoning)
    s = open_item(Item::kReasoning, reasoning_item(item_id("rs", suffix_, output_.size()), "", "in_progress"));
  const int idx = static_cast<int>(output_.size()) - 1;
  ojson& part = output_[idx]["content"][0];
  part["text"] = part["text"].get<std::string>() + std::string(t);
  s += event({{"type", "response.reasoning_text.delta"}, {"item_id", output_[idx]["id"]}, {"output_index", idx},
              {"content_index", 0}, {"delta", std::string(t)}});
  return s;
}

std::string ResponsesStream::tool_start(int index, const std::string& call_id, const std::string& name) {
  if (done_) return "";
  std::string s = open_item(Item::kFunction, function_item(item_id("fc", suffix_, output_.size()), call_id, name, "", "in_progress"));
  tool_item_[index] = static_cast<int>(output_.size()) - 1;
  return s;
}

std::string ResponsesStream::tool_args(int index, std::string_view fragment) {
  if (done_ || fragment.empty()) return "";
  auto it = tool_item_.find(index);
  if (it == tool_item_.end()) return "";
  ojson& item = output_[it->second];
  item["arguments"] = item["arguments"].get<std::string>() + std::string(fragment);
  return event({{"type", "response.function_call_arguments.delta"}, {"item_id", item["id"]},
                {"output_index", it->second}, {"delta", std::string(fragment)}});
}

std::string ResponsesStream::finish(const std::string& finish_reason, int prompt_tokens, int cached_tokens,
                                    int completion_tokens, int reasoning_tokens) {
  if (done_) return "";
  const std::string status = finish_reason == "length" ? "incomplete" : "completed";
  std::string s = close_item(status.c_str());
  done_ = true;
  ojson r = response_json(id_, model_, created_, status, output_,
                          usage_json(prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens), request_echo_,
                          nullptr);
  s += event({{"type", status == "incomplete" ? "response.incomplete" : "response.completed"}, {"response", std::move(r)}});
  return s;
}

std::string ResponsesStream::error(const ApiError& e) {
  if (done_) return "";
  done_ = true;
  ojson error = {{"code", e.code.empty() ? (e.status >= 500 ? "server_error" : "invalid_request") : e.code},
                 {"message", e.message}};
  ojson r = response_json(id_, model_, created_, "failed", output_, nullptr, request_echo_, std::move(error));
  return event({{"type", "response.failed"}, {"response", std::move(r)}});
}

}  // namespace tachyon::server
