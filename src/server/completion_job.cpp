#include "server/completion_job.h"

#include <ctime>

#include "server/server.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::server {

// The engine thread's only way in: coalesces notifications into one post onto the
// connection's strand. Holds no strong reference to the job, so the engine never owns
// (or destroys) server objects.
struct CompletionJob::Notifier : std::enable_shared_from_this<Notifier> {
  net::any_io_executor executor;
  std::atomic<bool> pending{false};
  std::weak_ptr<CompletionJob> job;

  void notify() {
    if (pending.exchange(true, std::memory_order_acq_rel)) return;
    net::post(executor, [self = shared_from_this()] {
      self->pending.store(false, std::memory_order_release);
      if (auto j = self->job.lock()) j->pump();
    });
  }
};

namespace {
const HeaderList kCors = {{"Access-Control-Allow-Origin", "*"}};
}

CompletionJob::CompletionJob(Server& server, std::shared_ptr<Exchange> ex, CompletionParams params,
                             std::vector<Choice> choices, JobOptions opts)
    : server_(server),
      tok_(server.tok_),
      ex_(std::move(ex)),
      params_(std::move(params)),
      choices_(std::move(choices)),
      opts_(std::move(opts)) {
  ++server_.active_requests_;
  const char* prefix = opts_.api == Api::kAnthropic   ? "msg_"
                       : opts_.api == Api::kResponses ? "resp_"
                       : params_.endpoint == Endpoint::kChat ? "chatcmpl-"
                                                             : "cmpl-";
  meta_.id = make_request_id(prefix);
  meta_.created = static_cast<int64_t>(std::time(nullptr));
  meta_.model = server_.info_.id;
  if (opts_.parse_output) {
    uint64_t seed = std::hash<std::string>{}(meta_.id);
    for (auto& c : choices_) {
      c.parser = std::make_unique<chat::OutputParser>(opts_.family, opts_.reasoning, opts_.tools_enabled, seed + c.index);
      c.parser->set_stream_arguments(opts_.stream_call_args);
    }
  }
  if (opts_.api == Api::kAnthropic) anthropic_ = std::make_unique<AnthropicStream>(meta_.id, meta_.model);
  if (opts_.api == Api::kResponses)
    responses_ = std::make_unique<ResponsesStream>(meta_.id, meta_.model, meta_.created, opts_.request_echo);
}

CompletionJob::~CompletionJob() {
  for (auto& c : choices_)
    if (!c.done && c.handle) c.handle->cancel();
  --server_.active_requests_;
}

void CompletionJob::start() {
  notifier_ = std::make_shared<Notifier>();
  notifier_->executor = ex_->executor();
  notifier_->job = weak_from_this();
  ex_->set_owner(shared_from_this());
  for (auto& c : choices_) c.handle->set_notify([n = notifier_] { n->notify(); });
  if (params_.stream) {
    ex_->start_stream(200, "text/event-stream", kCors);
    if (anthropic_) {
      ex_->write_chunk(anthropic_->start(choices_[0].prompt_tokens, 0) + anthropic_->ping());
    } else if (responses_) {
      ex_->write_chunk(responses_->start());
    } else if (params_.endpoint == Endpoint::kChat) {
      for (const auto& c : choices_) {
        ojson first = chat_chunk(meta_, c.index, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr);
        if (!opts_.warnings.empty()) first["warnings"] = opts_.warnings;
        ex_->write_chunk(sse_data(first));
      }
    } else if (!opts_.warnings.empty()) {
      for (const auto& c : choices_) {
        ojson first = completion_chunk(meta_, c.index, "", nullptr, nullptr);
        first["warnings"] = opts_.warnings;
        ex_->write_chunk(sse_data(first));
      }
    }
  }
  if (params_.stream && opts_.keep_alive_ms > 0) schedule_keep_alive();
  pump();  // events pushed before set_notify() are pending without a notification
}

void CompletionJob::schedule_keep_alive() {
  if (!keep_alive_) keep_alive_ = std::make_unique<net::steady_timer>(ex_->executor());
  keep_alive_->expires_after(std::chrono::milliseconds(opts_.keep_alive_ms));
  keep_alive_->async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
    auto self = w.lock();
    if (ec || !self || self->finished_ || self->ex_->client_gone()) return;
    if (!self->wrote_since_tick_)
      self->ex_->write_chunk(self->anthropic_ ? self->anthropic_->ping() : std::string(": keep-alive\n\n"));
    self->wrote_since_tick_ = false;
    self->schedule_keep_alive();
  });
}

void CompletionJob::on_client_gone() {
  finished_ = true;
  if (keep_alive_) keep_alive_->cancel();
  for (auto& c : choices_)
    if (!c.done) c.handle->cancel();
}

void CompletionJob::pump() {
  if (finished_) return;
  if (ex_->client_gone()) {
    on_client_gone();
    return;
  }
  bool all_done = true;
  for (auto& c : choices_) {
    if (c.done) continue;
    events_.clear();
    c.handle->drain(&events_);
    size_t begin = 0;
    for (size_t i = 0; i < events_.size(); ++i) {
      if (events_[i].kind == engine::Event::Kind::kFinish) {
        on_tokens(c, events_, begin, i);
        on_finish(c, events_[i]);
        break;  // nothing follows kFinish
      }
    }
    if (!c.done) {
      on_tokens(c, events_, begin, events_.size());
      all_done = false;
    }
  }
  if (all_done) finish();
}

// Tokens evs[begin, end) of one choice; streamed as one chunk (several tokens merge when
// the connection fell behind the engine).
void CompletionJob::on_tokens(Choice& c, const std::vector<engine::Event>& evs, size_t begin, size_t end) {
  if (begin >= end) return;
  const bool chat = params_.endpoint == Endpoint::kChat;
  const bool want_lp = params_.logprobs >= 0;
  std::string text;
  ojson chat_lp = ojson::array();
  CompletionLogprobs comp_lp;
  CompletionLogprobs& lp_sink = params_.stream ? comp_lp : c.completion_logprobs;
  for (size_t i = begin; i < end; ++i) {
    const engine::Event& ev = evs[i];
    if (want_lp) {
      const std::string piece = tok_.token_to_piece(ev.token);
      if (chat) {
        ojson entry = chat_logprob_entry(ev.token, piece, ev.logprob, ev.top);
        (params_.stream ? chat_lp : c.chat_logprobs).push_back(std::move(entry));
      } else {
        lp_sink.add(piece, ev.logprob, ev.top, c.text_bytes + text.size(), params_.logprobs > 0);
      }
    }
    text += ev.text;
  }
  c.text_bytes += text.size();
  if (c.parser) {
    std::vector<chat::OutputDelta> deltas = c.parser->push(text);
    if (params_.stream) emit(c, deltas, want_lp ? ojson{{"content", std::move(chat_lp)}} : ojson(nullptr));
    return;
  }
  if (!params_.stream) {
    c.text += text;
    return;
  }
  if (text.empty() && !want_lp) return;
  if (chat) {
    chat::OutputDelta d{chat::OutputDelta::Kind::kContent, std::move(text)};
    emit(c, {d}, want_lp ? ojson{{"content", std::move(chat_lp)}} : ojson(nullptr));
  } else {
    ojson lp = want_lp ? comp_lp.to_json() : ojson(nullptr);
    ex_->write_chunk(sse_data(completion_chunk(meta_, c.index, text, lp, nullptr)));
    wrote_since_tick_ = true;
  }
}

std::string CompletionJob::finish_reason(const Choice& c) const {
  const engine::Event& ev = c.final;
  const std::string r = ev.finish_reason.empty() ? "stop" : ev.finish_reason;
  if (r == "stop" && c.parser && !c.parser->result().tool_calls.empty()) return "tool_calls";
  return r;
}

void CompletionJob::emit(Choice& c, const std::vector<chat::OutputDelta>& deltas, ojson logprobs) {
  using K = chat::OutputDelta::Kind;
  std::string out;
  if (anthropic_ || responses_) {
    for (const auto& d : deltas) {
      switch (d.kind) {
        case K::kContent: out += anthropic_ ? anthropic_->text(d.text) : responses_->text(d.text); break;
        case K::kReasoning: out += anthropic_ ? anthropic_->thinking(d.text) : responses_->thinking(d.text); break;
        case K::kToolCallStart:
          out += anthropic_ ? anthropic_->tool_start(d.index, d.id, d.name) : responses_->tool_start(d.index, d.id, d.name);
          break;
        case K::kToolCallArgs:
          out += anthropic_ ? anthropic_->tool_args(d.index, d.text) : responses_->tool_args(d.index, d.text);
          break;
      }
    }
    if (!out.empty()) {
      ex_->write_chunk(out);
      wrote_since_tick_ = true;
    }
    return;
  }
  // OpenAI chat: one chunk per piece; logprobs on the first (alone when there is none)
  auto chunk = [&](ojson delta) {
    out += sse_data(chat_chunk(meta_, c.index, std::move(delta), logprobs, nullptr));
    logprobs = nullptr;
  };
  for (const auto& d : deltas) {
    switch (d.kind) {
      case K::kContent:
        if (!d.text.empty()) chunk({{"content", d.text}});
        break;
      case K::kReasoning:
        if (!d.text.empty()) chunk({{"reasoning_content", d.text}});
        break;
      case K::kToolCallStart:
        ++c.tool_calls;
        chunk({{"tool_calls", ojson::array({{{"index", d.index},
                                              {"id", d.id},
                                              {"type", "function"},
                                              {"function", {{"name", d.name}, {"arguments", ""}}}}})}});
        break;
      case K::kToolCallArgs:
        if (!d.text.empty())
          chunk({{"tool_calls", ojson::array({{{"index", d.index}, {"function", {{"arguments", d.text}}}}})}});
        break;
    }
  }
  if (!logprobs.is_null()) chunk({{"content", ""}});
  if (!out.empty()) {
    ex_->write_chunk(out);
    wrote_since_tick_ = true;
  }
}

TurnOutput CompletionJob::turn_output(const Choice& c) const {
  TurnOutput t;
  if (c.parser) {
    const auto& r = c.parser->result();
    t.content = r.content;
    t.reasoning = r.reasoning;
    for (const auto& tc : r.tool_calls) t.tool_calls.push_back({tc.id, tc.name, tc.arguments});
  } else {
    t.content = c.text;
  }
  t.finish_reason = finish_reason(c);
  t.stop_sequence = c.final.stop_sequence;
  t.prompt_tokens = c.final.prompt_tokens > 0 ? c.final.prompt_tokens : c.prompt_tokens;
  t.cached_tokens = c.final.cached_tokens;
  t.completion_tokens = c.final.completion_tokens;
  return t;
}

void CompletionJob::respond_error(int status, const std::string& message) {
  ApiError e;
  e.status = status;
  e.type = error_type_for_status(status);
  e.message = message;
  if (params_.stream) {
    if (anthropic_) ex_->write_chunk(anthropic_->error(e));
    else if (responses_) ex_->write_chunk(responses_->error(e));
    else ex_->write_chunk("data: " + error_json(e) + "\n\n");
    return;
  }
  ex_->respond(status, "application/json", anthropic_ ? anthropic_error_json(e) : error_json(e), kCors);
}

void CompletionJob::on_finish(Choice& c, const engine::Event& ev) {
  c.done = true;
  c.final = ev;
  const bool chat = params_.endpoint == Endpoint::kChat;
  c.text_bytes += ev.text.size();
  if (c.parser) {
    // the held-back text, then whatever the parser held (an unclosed call becomes text)
    std::vector<chat::OutputDelta> deltas = c.parser->push(ev.text);
    for (auto& d : c.parser->finish()) deltas.push_back(std::move(d));
    if (params_.stream && ev.finish_reason != "error") emit(c, deltas, nullptr);
  }
  if (!params_.stream) {
    c.text += ev.text;
    return;
  }
  if (ev.finish_reason == "error") {
    respond_error(500, ev.error.empty() ? "generation failed" : ev.error);
    return;
  }
  if (anthropic_ || responses_) {
    if (!c.parser && !ev.text.empty()) emit(c, {{chat::OutputDelta::Kind::kContent, ev.text}}, nullptr);
    return;  // their last events go out in finish(), with the usage
  }
  if (!ev.text.empty() && !c.parser) {  // text the engine held back (partial character, stop-string prefix)
    // It belongs to tokens already sent: with logprobs requested, say so with an empty
    // list (not null), so that clients counting tokens by logprobs entries stay exact.
    const bool want_lp = params_.logprobs >= 0;
    if (chat) {
      const ojson lp = want_lp ? ojson{{"content", ojson::array()}} : ojson(nullptr);
      ex_->write_chunk(sse_data(chat_chunk(meta_, c.index, {{"content", ev.text}}, lp, nullptr)));
    } else {
      const ojson lp = want_lp ? CompletionLogprobs().to_json() : ojson(nullptr);
      ex_->write_chunk(sse_data(completion_chunk(meta_, c.index, ev.text, lp, nullptr)));
    }
  }
  Usage u;
  u.prompt_tokens = ev.prompt_tokens;
  u.cached_tokens = ev.cached_tokens;
  for (int t = 0; t < 3; ++t) u.cached_tier[t] = ev.cached_tokens_tier[t];
  u.completion_tokens = ev.completion_tokens;
  u.queue_ms = ev.queue_ms;
  u.prompt_ms = ev.prompt_ms;
  u.decode_ms = ev.decode_ms;
  u.draft_tokens = ev.draft_tokens;
  u.accepted_tokens = ev.accepted_tokens;
  u.verify_steps = ev.verify_steps;
  u.constraint_ms = ev.constraint_ms;
  ojson chunk = chat ? chat_chunk(meta_, c.index, ojson::object(), nullptr, finish_reason(c))
                     : completion_chunk(meta_, c.index, "", nullptr, finish_reason(c));
  chunk["timings"] = timings_json(u);  // llama-server puts them on the last chunk
  ex_->write_chunk(sse_data(chunk));
}

Usage CompletionJob::usage() const {
  Usage u;
  for (const auto& c : choices_) {
    const engine::Event& f = c.final;
    u.completion_tokens += f.completion_tokens;
    u.queue_ms = std::max(u.queue_ms, f.queue_ms);
    u.prompt_ms = std::max(u.prompt_ms, f.prompt_ms);
    u.decode_ms = std::max(u.decode_ms, f.decode_ms);
    u.draft_tokens += f.draft_tokens;
    u.accepted_tokens += f.accepted_tokens;
    u.verify_steps += f.verify_steps;
    u.constraint_ms += f.constraint_ms;
  }
  // The prompt counts once per prompt, not once per choice (as OpenAI counts n > 1).
  std::vector<int> seen;
  for (const auto& c : choices_) {
    bool dup = false;
    for (int p : seen) dup |= p == c.prompt_index;
    if (dup) continue;
    seen.push_back(c.prompt_index);
    int prompt = c.final.prompt_tokens > 0 ? c.final.prompt_tokens : c.prompt_tokens, cached = 0;
    const engine::Event* most = nullptr;
    for (const auto& d : choices_)
      if (d.prompt_index == c.prompt_index && (!most || d.final.cached_tokens > cached)) {
        cached = d.final.cached_tokens;
        most = &d.final;
      }
    u.prompt_tokens += prompt;
    u.cached_tokens += cached;
    if (most)
      for (int t = 0; t < 3; ++t) u.cached_tier[t] += most->cached_tokens_tier[t];
  }
  return u;
}

void CompletionJob::finish() {
  finished_ = true;
  if (keep_alive_) keep_alive_->cancel();
  const Usage u = usage();
  if (params_.stream) {
    if (anthropic_ || responses_) {
      const Choice& c = choices_[0];
      if (c.final.finish_reason != "error") {
        const TurnOutput t = turn_output(c);
        ex_->write_chunk(anthropic_ ? anthropic_->finish(t.finish_reason, t.stop_sequence, t.completion_tokens)
                                    : responses_->finish(t.finish_reason, t.prompt_tokens, t.cached_tokens,
                                                         t.completion_tokens));
      }
      ex_->end_stream();
      return;
    }
    if (params_.include_usage) ex_->write_chunk(sse_data(usage_chunk(meta_, params_.endpoint, u)));
    ex_->write_chunk(sse_done());
    ex_->end_stream();
    return;
  }
  for (const auto& c : choices_) {
    if (c.final.finish_reason == "error") {
      respond_error(500, c.final.error.empty() ? "generation failed" : c.final.error);
      return;
    }
  }
  if (anthropic_ || responses_) {
    const TurnOutput t = turn_output(choices_[0]);
    const ojson body = anthropic_ ? anthropic_message_json(meta_.id, meta_.model, t)
                                  : responses_object_json(meta_.id, meta_.model, meta_.created, t, opts_.request_echo);
    ex_->respond(200, "application/json", dump_json(body), kCors);
    return;
  }
  const bool chat = params_.endpoint == Endpoint::kChat;
  ojson choices = ojson::array();
  for (const auto& c : choices_) {
    ojson lp = nullptr;
    if (params_.logprobs >= 0)
      lp = chat ? ojson{{"content", c.chat_logprobs}} : c.completion_logprobs.to_json();
    if (chat) {
      ojson message = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
      if (c.parser) {
        const auto& r = c.parser->result();
        message["content"] = r.content.empty() && !r.tool_calls.empty() ? ojson(nullptr) : ojson(r.content);
        if (!r.reasoning.empty()) message["reasoning_content"] = r.reasoning;
        if (!r.tool_calls.empty()) {
          ojson calls = ojson::array();
          for (const auto& tc : r.tool_calls)
            calls.push_back({{"id", tc.id}, {"type", "function"}, {"function", {{"name", tc.name}, {"arguments", tc.arguments}}}});
          message["tool_calls"] = std::move(calls);
        }
      }
      choices.push_back({{"index", c.index},
                         {"message", std::move(message)},
                         {"logprobs", std::move(lp)},
                         {"finish_reason", finish_reason(c)}});
    } else {
      choices.push_back({{"index", c.index},
                         {"text", c.text},
                         {"logprobs", std::move(lp)},
                         {"finish_reason", finish_reason(c)}});
    }
  }
  ojson body = {{"id", meta_.id},
                {"object", chat ? "chat.completion" : "text_completion"},
                {"created", meta_.created},
                {"model", meta_.model},
                {"system_fingerprint", nullptr},
                {"choices", std::move(choices)},
                {"usage", usage_json(u)},
                {"timings", timings_json(u)}};
  if (!opts_.warnings.empty()) body["warnings"] = opts_.warnings;
  ex_->respond(200, "application/json", dump_json(body), kCors);
}

}  // namespace tachyon::server
