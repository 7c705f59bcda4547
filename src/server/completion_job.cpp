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
                             std::vector<Choice> choices)
    : server_(server),
      tok_(server.tok_),
      ex_(std::move(ex)),
      params_(std::move(params)),
      choices_(std::move(choices)) {
  ++server_.active_requests_;
  meta_.id = make_request_id(params_.endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-");
  meta_.created = static_cast<int64_t>(std::time(nullptr));
  meta_.model = server_.info_.id;
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
    if (params_.endpoint == Endpoint::kChat) {
      for (const auto& c : choices_)
        ex_->write_chunk(sse_data(chat_chunk(meta_, c.index, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)));
    }
  }
  pump();  // events pushed before set_notify() are pending without a notification
}

void CompletionJob::on_client_gone() {
  finished_ = true;
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
  if (!params_.stream) {
    c.text += text;
    return;
  }
  if (text.empty() && !want_lp) return;
  if (chat) {
    ojson lp = want_lp ? ojson{{"content", std::move(chat_lp)}} : ojson(nullptr);
    ex_->write_chunk(sse_data(chat_chunk(meta_, c.index, {{"content", text}}, lp, nullptr)));
  } else {
    ojson lp = want_lp ? comp_lp.to_json() : ojson(nullptr);
    ex_->write_chunk(sse_data(completion_chunk(meta_, c.index, text, lp, nullptr)));
  }
}

std::string CompletionJob::finish_reason(const engine::Event& ev) const {
  return ev.finish_reason.empty() ? "stop" : ev.finish_reason;
}

void CompletionJob::on_finish(Choice& c, const engine::Event& ev) {
  c.done = true;
  c.final = ev;
  const bool chat = params_.endpoint == Endpoint::kChat;
  c.text_bytes += ev.text.size();
  if (!params_.stream) {
    c.text += ev.text;
    return;
  }
  if (ev.finish_reason == "error") {
    ApiError e;
    e.status = 500;
    e.type = "server_error";
    e.message = ev.error.empty() ? "generation failed" : ev.error;
    ex_->write_chunk("data: " + error_json(e) + "\n\n");
    return;
  }
  if (!ev.text.empty()) {  // text the engine held back (partial character, stop-string prefix)
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
  u.completion_tokens = ev.completion_tokens;
  u.queue_ms = ev.queue_ms;
  u.prompt_ms = ev.prompt_ms;
  u.decode_ms = ev.decode_ms;
  u.draft_tokens = ev.draft_tokens;
  u.accepted_tokens = ev.accepted_tokens;
  u.verify_steps = ev.verify_steps;
  ojson chunk = chat ? chat_chunk(meta_, c.index, ojson::object(), nullptr, finish_reason(ev))
                     : completion_chunk(meta_, c.index, "", nullptr, finish_reason(ev));
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
  }
  // The prompt counts once per prompt, not once per choice (as OpenAI counts n > 1).
  std::vector<int> seen;
  for (const auto& c : choices_) {
    bool dup = false;
    for (int p : seen) dup |= p == c.prompt_index;
    if (dup) continue;
    seen.push_back(c.prompt_index);
    int prompt = c.final.prompt_tokens > 0 ? c.final.prompt_tokens : c.prompt_tokens, cached = 0;
    for (const auto& d : choices_)
      if (d.prompt_index == c.prompt_index) cached = std::max(cached, d.final.cached_tokens);
    u.prompt_tokens += prompt;
    u.cached_tokens += cached;
  }
  return u;
}

void CompletionJob::finish() {
  finished_ = true;
  const Usage u = usage();
  if (params_.stream) {
    if (params_.include_usage) ex_->write_chunk(sse_data(usage_chunk(meta_, params_.endpoint, u)));
    ex_->write_chunk(sse_done());
    ex_->end_stream();
    return;
  }
  for (const auto& c : choices_) {
    if (c.final.finish_reason == "error") {
      ApiError e;
      e.status = 500;
      e.type = "server_error";
      e.message = c.final.error.empty() ? "generation failed" : c.final.error;
      ex_->respond(500, "application/json", error_json(e), kCors);
      return;
    }
  }
  const bool chat = params_.endpoint == Endpoint::kChat;
  ojson choices = ojson::array();
  for (const auto& c : choices_) {
    ojson lp = nullptr;
    if (params_.logprobs >= 0)
      lp = chat ? ojson{{"content", c.chat_logprobs}} : c.completion_logprobs.to_json();
    if (chat) {
      choices.push_back({{"index", c.index},
                         {"message", {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}}},
                         {"logprobs", std::move(lp)},
                         {"finish_reason", finish_reason(c.final)}});
    } else {
      choices.push_back({{"index", c.index},
                         {"text", c.text},
                         {"logprobs", std::move(lp)},
                         {"finish_reason", finish_reason(c.final)}});
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
  ex_->respond(200, "application/json", dump_json(body), kCors);
}

}  // namespace tachyon::server
