#include "bench/openai_stream.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "tokenizer/tokenizer.h"

namespace tachyon::bench {

using json = nlohmann::json;

const char* token_source_name(TokenSource s) {
  switch (s) {
    case TokenSource::kLogprobs: return "logprobs";
    case TokenSource::kTokenizer: return "tokenizer";
    case TokenSource::kChunks: return "chunks";
  }
  return "unknown";
}

std::string flatten_messages(const std::vector<Message>& messages) {
  if (messages.size() == 1) return messages[0].content;
  std::string out;
  for (const auto& m : messages) {
    if (m.role == "system") out += m.content + "\n\n";
    else if (m.role == "user") out += "User: " + m.content + "\n";
    else out += "Assistant: " + m.content + "\n";
  }
  out += "Assistant:";
  return out;
}

std::string api_path(Api api) { return api == Api::kChat ? "/v1/chat/completions" : "/v1/completions"; }

std::string build_request_body(const RequestOptions& o, const Prompt& p) {
  json b;
  b["model"] = o.model;
  if (o.api == Api::kChat) {
    json msgs = json::array();
    for (const auto& m : p.messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    b["messages"] = std::move(msgs);
  } else {
    b["prompt"] = flatten_messages(p.messages);
  }
  b["max_tokens"] = p.max_tokens;
  b["stream"] = true;
  if (o.include_usage) b["stream_options"] = {{"include_usage", true}};
  if (o.ignore_eos) {
    b["ignore_eos"] = true;  // vLLM, SGLang, llama-server, tachyon
    b["min_tokens"] = p.max_tokens;  // vLLM's stricter form; ignored by the others
  }
  if (o.temperature >= 0) b["temperature"] = o.temperature;
  if (o.extra_body.is_object()) b.merge_patch(o.extra_body);
  return b.dump(-1, ' ', false, json::error_handler_t::replace);
}

void ResponseReader::fail(ErrorKind kind, std::string msg) {
  if (failed_) return;
  failed_ = true;
  rec_->error = kind;
  rec_->error_message = std::move(msg);
}

void ResponseReader::on_head(std::string_view content_type) {
  std::string ct(content_type);
  for (auto& c : ct) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  json_body_ = ct.find("json") != std::string::npos;
}

bool ResponseReader::feed(std::string_view bytes, int64_t t_us) {
  if (failed_) return false;
  if (json_body_) {
    if (body_.size() < (1u << 20)) body_.append(bytes);
    return true;
  }
  const bool ok = sse_.feed(bytes, [&](const SseEvent& e) { return on_event(e.data, t_us); });
  if (ok && sse_.n_events() == 0 && sse_.unrecognised().size() > 0) {
    fail(ErrorKind::kBadResponse, "not an OpenAI event stream: the body starts '" +
                                      sse_.unrecognised().substr(0, 80) + "'");
    return false;
  }
  return ok && !failed_;
}

namespace {

// Text a choice adds: content and reasoning (both are generated tokens), tool-call
// arguments, or the completions API's text.
void choice_text(const json& choice, bool chat, std::string& out, int& n_logprobs, bool& has_logprobs) {
  if (chat) {
    auto d = choice.find("delta");
    if (d != choice.end() && d->is_object()) {
      for (const char* k : {"reasoning_content", "reasoning", "content"}) {
        auto it = d->find(k);
        if (it != d->end() && it->is_string()) out += it->get_ref<const std::string&>();
      }
      auto tc = d->find("tool_calls");
      if (tc != d->end() && tc->is_array()) {
        for (const auto& call : *tc) {
          auto f = call.find("function");
          if (f != call.end() && f->is_object()) {
            auto a = f->find("arguments");
            if (a != f->end() && a->is_string()) out += a->get_ref<const std::string&>();
          }
        }
      }
    }
  } else {
    auto t = choice.find("text");
    if (t != choice.end() && t->is_string()) out += t->get_ref<const std::string&>();
  }
  auto lp = choice.find("logprobs");
  if (lp != choice.end() && lp->is_object()) {
    auto c = lp->find(chat ? "content" : "tokens");
    if (c != lp->end() && c->is_array()) {
      has_logprobs = true;
      n_logprobs += static_cast<int>(c->size());
    }
  }
}

int get_int(const json& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->is_number() ? it->get<int>() : -1;
}
double get_num(const json& o, const char* k) {
  auto it = o.find(k);
  return it != o.end() && it->is_number() ? it->get<double>() : -1;
}

}  // namespace

bool ResponseReader::on_event(std::string_view data, int64_t t_us) {
  ++rec_->n_events;
  if (data == "[DONE]") {
    rec_->saw_done = true;
    return true;
  }
  json j = json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    fail(ErrorKind::kBadResponse,
         "stream event is not a JSON object: '" + std::string(data.substr(0, 80)) + "'");
    return false;
  }
  if (auto e = j.find("error"); e != j.end() && !e->is_null()) {
    std::string msg = e->is_string() ? e->get<std::string>() : "";
    if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) msg = (*e)["message"];
    fail(ErrorKind::kStreamError, "the server reported an error in the stream: " + (msg.empty() ? e->dump() : msg));
    return false;
  }
  bool known = false;
  if (auto m = j.find("model"); m != j.end() && m->is_string() && rec_->served_model.empty())
    rec_->served_model = m->get<std::string>();
  if (auto ch = j.find("choices"); ch != j.end() && ch->is_array()) {
    known = true;
    std::string text;
    int n_lp = 0;
    bool has_lp = false;
    const bool chat = api_ == Api::kChat;
    for (const auto& c : *ch) {
      if (!c.is_object()) continue;
      choice_text(c, chat, text, n_lp, has_lp);
      auto fr = c.find("finish_reason");
      if (fr != c.end() && fr->is_string()) rec_->finish_reason = fr->get<std::string>();
    }
    if (has_lp && n_lp == 0 && !text.empty() && !rec_->chunks.empty()) {
      // Text without a token (held back by the server, e.g. the rest of a character):
      // it belongs to the last token-bearing chunk and is no chunk of its own.
      rec_->chunks.back().n_bytes += static_cast<int32_t>(text.size());
      rec_->output_text += text;
    } else if (!text.empty() || n_lp > 0) {
      ChunkRecord cr;
      cr.t_us = t_us;
      cr.n_tokens = has_lp ? n_lp : 0;
      cr.n_bytes = static_cast<int32_t>(text.size());
      rec_->chunks.push_back(cr);
      rec_->output_text += text;
    }
  }
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
    known = true;
    rec_->usage_prompt_tokens = get_int(*u, "prompt_tokens");
    rec_->usage_completion_tokens = get_int(*u, "completion_tokens");
    auto d = u->find("prompt_tokens_details");
    if (d != u->end() && d->is_object()) rec_->usage_cached_tokens = get_int(*d, "cached_tokens");
  }
  if (auto t = j.find("timings"); t != j.end() && t->is_object()) {
    known = true;
    auto& tm = rec_->timings;
    tm.present = true;
    tm.prompt_n = get_num(*t, "prompt_n");
    tm.prompt_ms = get_num(*t, "prompt_ms");
    tm.predicted_n = get_num(*t, "predicted_n");
    tm.predicted_ms = get_num(*t, "predicted_ms");
    tm.queue_ms = get_num(*t, "queue_ms");
    tm.cached_n = get_num(*t, "cached_n");
  }
  if (!known) {
    fail(ErrorKind::kBadResponse,
         "stream event has no 'choices' (not an OpenAI completion chunk): '" + std::string(data.substr(0, 80)) + "'");
    return false;
  }
  return true;
}

void ResponseReader::finish(const HttpError& transport, int64_t t_us) {
  rec_->t_end_us = t_us;
  if (failed_) return;  // our own verdict (the transport then reports kCancelled)
  if (!transport.ok()) {
    rec_->error = transport.kind;
    rec_->http_status = transport.http_status;
    rec_->error_message = transport.message;
    return;
  }
  if (json_body_) {
    json j = json::parse(body_, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("choices"))
      fail(ErrorKind::kBadResponse,
           "the endpoint answered with one JSON body instead of an event stream (does it support \"stream\": true?)");
    else
      fail(ErrorKind::kBadResponse, "not an OpenAI-compatible response: JSON body '" + body_.substr(0, 80) + "'");
    return;
  }
  sse_.finish([&](const SseEvent& e) { return on_event(e.data, t_us); });
  if (failed_) return;
  if (sse_.n_events() == 0) {
    fail(ErrorKind::kBadResponse,
         sse_.unrecognised().empty() ? "empty response body (expected an OpenAI event stream)"
                                     : "not an OpenAI event stream: the body starts '" +
                                           sse_.unrecognised().substr(0, 80) + "'");
    return;
  }
  if (!rec_->saw_done && rec_->finish_reason.empty())
    fail(ErrorKind::kBadResponse, "the stream ended without a finish_reason or [DONE]");
}

namespace {

// Splits total over the chunks in proportion to weights (largest remainder); each chunk
// keeps at least one token when total >= the number of chunks.
void distribute(std::vector<ChunkRecord>& chunks, const std::vector<double>& w, int total) {
  const size_t n = chunks.size();
  if (n == 0) return;
  const int floor_min = total >= static_cast<int>(n) ? 1 : 0;
  const double sw = std::accumulate(w.begin(), w.end(), 0.0);
  std::vector<double> rem(n);
  int sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double share = sw > 0 ? total * w[i] / sw : static_cast<double>(total) / n;
    int v = static_cast<int>(std::floor(share));
    rem[i] = share - v;
    if (v < floor_min) v = floor_min, rem[i] = -1;  // raised to the minimum: last to gain
    chunks[i].n_tokens = v;
    sum += v;
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rem[a] > rem[b]; });
  for (size_t k = 0; sum < total; k = (k + 1) % n, ++sum) ++chunks[order[k]].n_tokens;
  // Too many (minimums): take back from the chunks that got the most beyond their share.
  for (size_t k = n; sum > total;) {
    k = k == 0 ? n - 1 : k - 1;
    ChunkRecord& c = chunks[order[k]];
    if (c.n_tokens > floor_min) --c.n_tokens, --sum;
  }
}

}  // namespace

void finalize_tokens(RequestRecord& rec, const tok::Tokenizer* tokenizer) {
  auto& ch = rec.chunks;
  const bool exact = !ch.empty() && std::all_of(ch.begin(), ch.end(), [](const ChunkRecord& c) { return c.n_tokens > 0; });
  std::vector<double> weights(ch.size());
  if (exact) {
    rec.token_source = TokenSource::kLogprobs;
    rec.n_output_tokens_client = 0;
    for (const auto& c : ch) rec.n_output_tokens_client += c.n_tokens;
  } else if (tokenizer) {
    rec.token_source = TokenSource::kTokenizer;
    rec.n_output_tokens_client = static_cast<int>(tokenizer->encode(rec.output_text, false, false).size());
    size_t off = 0;
    for (size_t i = 0; i < ch.size(); ++i) {
      const std::string_view piece = std::string_view(rec.output_text).substr(off, ch[i].n_bytes);
      off += ch[i].n_bytes;
      weights[i] = std::max<size_t>(1, tokenizer->encode(piece, false, false).size());
    }
  } else {
    rec.token_source = TokenSource::kChunks;
    rec.n_output_tokens_client = static_cast<int>(ch.size());
    for (size_t i = 0; i < ch.size(); ++i) weights[i] = std::max(1, ch[i].n_bytes);
  }
  rec.n_output_tokens = rec.usage_completion_tokens >= 0 ? rec.usage_completion_tokens : rec.n_output_tokens_client;
  if (exact && rec.n_output_tokens == rec.n_output_tokens_client) return;
  if (exact)
    for (size_t i = 0; i < ch.size(); ++i) weights[i] = ch[i].n_tokens;
  if (!exact && rec.usage_completion_tokens < 0) {
    // No server count: the estimates themselves.
    for (size_t i = 0; i < ch.size(); ++i)
      ch[i].n_tokens = rec.token_source == TokenSource::kTokenizer ? static_cast<int>(weights[i]) : 1;
    if (rec.token_source == TokenSource::kTokenizer) {
      int s = 0;
      for (const auto& c : ch) s += c.n_tokens;
      if (s != rec.n_output_tokens) distribute(ch, weights, rec.n_output_tokens);
    }
    return;
  }
  distribute(ch, weights, rec.n_output_tokens);
}

}  // namespace tachyon::bench
