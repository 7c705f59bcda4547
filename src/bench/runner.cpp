#include "bench/runner.h"

#include <cmath>
#include <ctime>
#include <deque>
#include <limits>
#include <memory>
#include <random>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/clock.h"

namespace tachyon::bench {

namespace asio = boost::asio;
using json = nlohmann::json;

std::string iso8601_utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string LoadSpec::describe() const {
  char buf[128];
  if (!open_loop) {
    std::snprintf(buf, sizeof buf, "closed loop, concurrency %d", concurrency);
  } else if (std::isinf(rate)) {
    std::snprintf(buf, sizeof buf, "open loop, all at once%s", concurrency > 0 ? ", capped" : "");
  } else {
    std::snprintf(buf, sizeof buf, "open loop, %g req/s (burstiness %g)", rate, burstiness);
  }
  std::string s = buf;
  if (open_loop && concurrency > 0) s += ", max " + std::to_string(concurrency) + " in flight";
  return s;
}

json LoadSpec::to_json() const {
  json j = {{"mode", open_loop ? "open" : "closed"}, {"concurrency", concurrency}};
  if (open_loop) {
    j["rate"] = std::isinf(rate) ? json("inf") : json(rate);
    j["burstiness"] = burstiness;
  }
  return j;
}

Result<SweepSpec> parse_sweep(const std::string& s) {
  const size_t eq = s.find('=');
  if (eq == std::string::npos) return invalid_argument("--sweep '" + s + "': expected concurrency=1,2,4 or rate=1,2,4");
  SweepSpec sw;
  sw.kind = s.substr(0, eq);
  if (sw.kind != "concurrency" && sw.kind != "rate")
    return invalid_argument("--sweep: unknown parameter '" + sw.kind + "' (concurrency or rate)");
  std::string rest = s.substr(eq + 1);
  size_t i = 0;
  while (i <= rest.size()) {
    size_t j = rest.find(',', i);
    if (j == std::string::npos) j = rest.size();
    const std::string v = rest.substr(i, j - i);
    i = j + 1;
    if (v.empty()) continue;
    double d;
    if (v == "inf") {
      d = std::numeric_limits<double>::infinity();
    } else {
      try {
        size_t used = 0;
        d = std::stod(v, &used);
        if (used != v.size()) throw std::invalid_argument(v);
      } catch (...) {
        return invalid_argument("--sweep: '" + v + "' is not a number");
      }
    }
    if (!(d > 0) || (sw.kind == "concurrency" && (d != std::floor(d) || std::isinf(d))))
      return invalid_argument("--sweep: " + sw.kind + " values must be positive" +
                              (sw.kind == "concurrency" ? std::string(" integers") : std::string()));
    sw.values.push_back(d);
  }
  if (sw.values.empty()) return invalid_argument("--sweep '" + s + "': no values");
  return sw;
}

namespace {

// Failures that say the endpoint or the configuration is wrong (every further request
// would fail alike), as opposed to load: timeouts, 408/429 and 502-504 are what an
// overloaded server answers.
bool is_config_error(const RequestRecord& r) {
  switch (r.error) {
    case ErrorKind::kConnect:
    case ErrorKind::kTls:
    case ErrorKind::kProtocol:
    case ErrorKind::kBadResponse: return true;
    case ErrorKind::kHttpStatus: {
      const int s = r.http_status;
      return s != 408 && s != 429 && !(s >= 502 && s <= 504);
    }
    default: return false;
  }
}

class Runner {
 public:
  Runner(const RunConfig& cfg, const ProgressFn& progress)
      : cfg_(cfg), progress_(progress), client_(io_, client_config(cfg)), arrival_timer_(io_), stop_timer_(io_),
        tick_timer_(io_) {
    path_ = cfg_.endpoint.url.target(api_path(cfg_.endpoint.api));
    req_opts_ = cfg_.request;
    req_opts_.api = cfg_.endpoint.api;
    req_opts_.model = cfg_.endpoint.model;
  }

  // Runs one phase to completion; returns its records.
  std::deque<RequestRecord> phase(Workload& wl, int n_limit, double duration_s, const LoadSpec& load, bool warmup) {
    wl_ = &wl;
    load_ = load;
    warmup_ = warmup;
    n_limit_ = n_limit;
    records_.clear();
    n_issued_ = n_done_ = n_failed_ = n_ok_ = n_hard_fail_ = 0;
    n_in_flight_ = 0;
    stop_ = false;
    pending_.clear();
    io_.restart();
    t_phase_us_ = now_us();
    duration_s_ = duration_s;
    if (duration_s > 0) {
      stop_timer_.expires_after(std::chrono::microseconds(static_cast<int64_t>(duration_s * 1e6)));
      stop_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) stop_issuing("");
      });
    }
    if (progress_) tick();
    if (!load.open_loop) {
      for (int i = 0; i < std::max(1, load.concurrency) && may_issue(); ++i) start_session();
    } else {
      rng_.seed(wl.config().seed ^ 0x5bd1e995u);
      next_arrival_us_ = t_phase_us_;
      arrive();
    }
    maybe_finish();
    io_.run();
    return std::move(records_);
  }

  const ClientStats& client_stats() const { return client_.stats(); }
  static ClientConfig client_config(const RunConfig& cfg) {
    ClientConfig c = cfg.client;
    c.tls = cfg.endpoint.tls;
    return c;
  }
  int max_in_flight() const { return max_in_flight_; }
  const std::string& abort_reason() const { return abort_reason_; }

 private:
  struct Session {
    SessionSpec spec;
    size_t next_turn = 0;
    std::vector<Message> history;
    int history_tokens = 0;  // client count of the history's text
  };

  bool may_issue() const { return !stop_ && (n_limit_ <= 0 || n_issued_ < n_limit_); }

  void stop_issuing(const std::string& why) {
    if (!why.empty() && abort_reason_.empty()) abort_reason_ = why;
    stop_ = true;
    arrival_timer_.cancel();
    pending_.clear();
    maybe_finish();
  }

  void maybe_finish() {
    if ((stop_ || !may_issue()) && n_in_flight_ == 0 && pending_.empty()) {
      stop_ = true;
      arrival_timer_.cancel();
      stop_timer_.cancel();
      tick_timer_.cancel();
      if (progress_) report_progress();
    }
  }

  void start_session() {
    auto s = std::make_shared<Session>();
    s->spec = wl_->next();
    s->history = s->spec.preset;
    s->history_tokens = s->spec.preset_tokens;
    dispatch(std::move(s));
  }

  // Sends the session's next turn now, or queues it when the open-loop cap is reached.
  void dispatch(std::shared_ptr<Session> s) {
    if (!may_issue()) return;
    ++n_issued_;  // counted when queued, so that queued turns respect num_requests
    if (load_.open_loop && load_.concurrency > 0 && n_in_flight_ >= load_.concurrency) {
      pending_.push_back(std::move(s));
      return;
    }
    send_turn(std::move(s));
  }

  void send_turn(std::shared_ptr<Session> s) {
    const TurnSpec& turn = s->spec.turns[s->next_turn];
    records_.emplace_back();
    RequestRecord& rec = records_.back();
    const size_t idx = records_.size() - 1;
    rec.index = static_cast<int64_t>(idx);
    rec.warmup = warmup_;
    rec.session = static_cast<int>(s->spec.id);
    rec.turn = static_cast<int>(s->next_turn);
    rec.group = s->spec.group;
    rec.max_tokens = turn.max_tokens;
    Prompt p;
    p.messages = s->history;
    p.messages.push_back({"user", turn.user});
    p.max_tokens = turn.max_tokens;
    rec.n_prompt_tokens_client = turn.prompt_tokens < 0 ? -1 : s->history_tokens + turn.prompt_tokens;

    HttpRequest req;
    req.target = path_;
    req.body = build_request_body(req_opts_, p);
    req.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
    if (!cfg_.endpoint.api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + cfg_.endpoint.api_key});
    req.timeout_ms = cfg_.timeout_ms;

    auto reader = std::make_shared<ResponseReader>(cfg_.endpoint.api, &rec);
    StreamHandlers h;
    h.on_head = [this, idx, reader](const ResponseHead& head, int64_t t) {
      records_[idx].t_head_us = t;
      reader->on_head(head.content_type);
    };
    h.on_data = [reader](std::string_view data, int64_t t) { return reader->feed(data, t); };
    h.on_done = [this, idx, reader, s, p = std::move(p)](const HttpError& err, int64_t t) mutable {
      reader->finish(err, t);
      on_done(idx, std::move(s), std::move(p));
    };
    ++n_in_flight_;
    max_in_flight_ = std::max(max_in_flight_, n_in_flight_);
    s->next_turn++;
    rec.t_send_us = now_us();
    client_.request(cfg_.endpoint.url, std::move(req), std::move(h));
  }

  void on_done(size_t idx, std::shared_ptr<Session> s, Prompt p) {
    --n_in_flight_;
    ++n_done_;
    RequestRecord& rec = records_[idx];
    n_chunks_ += static_cast<int64_t>(rec.chunks.size());
    if (rec.ok()) {
      ++n_ok_;
    } else {
      ++n_failed_;
      if (cfg_.fail_fast && n_ok_ == 0 && is_config_error(rec) && ++n_hard_fail_ >= 3)
        stop_issuing("every request failed so far (" + std::string(error_kind_name(rec.error)) +
                     "): " + rec.error_message);
    }
    if (rec.ok() && s->next_turn < s->spec.turns.size()) {
      s->history = std::move(p.messages);
      s->history.push_back({"assistant", rec.output_text});
      const TurnSpec& done = s->spec.turns[s->next_turn - 1];
      s->history_tokens += std::max(0, done.prompt_tokens) +
                           std::max(rec.usage_completion_tokens, static_cast<int>(rec.chunks.size()));
      dispatch(std::move(s));
    } else if (!load_.open_loop) {
      if (may_issue()) start_session();
    }
    if (load_.open_loop && !pending_.empty() && !stop_ &&
        (load_.concurrency <= 0 || n_in_flight_ < load_.concurrency)) {
      auto next = std::move(pending_.front());
      pending_.pop_front();
      send_turn(std::move(next));
    }
    maybe_finish();
  }

  void arrive() {
    if (!may_issue()) return;
    // Every arrival that is due now starts a session (rate = inf: all of them).
    while (may_issue() && next_arrival_us_ <= now_us()) {
      start_session();
      if (std::isinf(load_.rate) || load_.rate <= 0) continue;
      std::gamma_distribution<double> gap(load_.burstiness, 1.0 / (load_.rate * load_.burstiness));
      next_arrival_us_ += static_cast<int64_t>(gap(rng_) * 1e6);
      if (std::isinf(load_.rate)) break;
    }
    if (!may_issue()) return;
    arrival_timer_.expires_after(std::chrono::microseconds(std::max<int64_t>(0, next_arrival_us_ - now_us())));
    arrival_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) arrive();
    });
  }

  void tick() {
    report_progress();
    tick_timer_.expires_after(std::chrono::milliseconds(250));
    tick_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && !stop_) tick();
    });
  }

  void report_progress() {
    Progress pr;
    pr.warmup = warmup_;
    pr.n_done = n_done_;
    pr.n_failed = n_failed_;
    pr.n_total = n_limit_ > 0 ? n_limit_ : -1;
    pr.n_in_flight = n_in_flight_;
    pr.n_output_chunks = n_chunks_;
    pr.elapsed_s = (now_us() - t_phase_us_) / 1e6;
    pr.duration_s = duration_s_;
    progress_(pr);
  }

  const RunConfig& cfg_;
  const ProgressFn& progress_;
  asio::io_context io_;
  HttpClient client_;
  asio::steady_timer arrival_timer_, stop_timer_, tick_timer_;
  std::string path_;
  RequestOptions req_opts_;
  Workload* wl_ = nullptr;
  LoadSpec load_;
  bool warmup_ = false;
  int n_limit_ = 0, n_issued_ = 0, n_done_ = 0, n_failed_ = 0, n_ok_ = 0, n_hard_fail_ = 0;
  int n_in_flight_ = 0, max_in_flight_ = 0;
  int64_t n_chunks_ = 0;
  bool stop_ = false;
  int64_t t_phase_us_ = 0, next_arrival_us_ = 0;
  double duration_s_ = 0;
  std::mt19937_64 rng_;
  std::deque<std::shared_ptr<Session>> pending_;
  std::deque<RequestRecord> records_;  // deque: readers hold pointers to records
  std::string abort_reason_;
};

}  // namespace

Result<RunResult> run_load(const RunConfig& cfg, Workload& workload, Workload* warmup_workload,
                           const tok::Tokenizer* tokenizer, const ProgressFn& progress) {
  if (cfg.num_requests <= 0 && cfg.duration_s <= 0)
    return invalid_argument("a run needs --num-requests or --duration");
  if (!cfg.load.open_loop && cfg.load.concurrency < 1) return invalid_argument("--concurrency must be >= 1");
  if (cfg.load.open_loop && !(cfg.load.rate > 0)) return invalid_argument("--rate must be > 0 (or inf)");
  if (cfg.load.open_loop && !(cfg.load.burstiness > 0)) return invalid_argument("--burstiness must be > 0");
  if (cfg.load.open_loop && std::isinf(cfg.load.rate) && cfg.num_requests <= 0)
    return invalid_argument("--rate inf needs --num-requests");
  if (cfg.timeout_ms <= 0) return invalid_argument("--timeout must be > 0");

  RunResult res;
  res.load = cfg.load;
  res.seed = workload.config().seed;
  Runner runner(cfg, progress);
  if (cfg.warmup > 0 && warmup_workload) {
    LoadSpec wl;
    wl.concurrency = cfg.load.concurrency > 0 ? std::min(cfg.load.concurrency, cfg.warmup) : cfg.warmup;
    auto recs = runner.phase(*warmup_workload, cfg.warmup, 0, wl, true);
    res.warmup_records.assign(std::make_move_iterator(recs.begin()), std::make_move_iterator(recs.end()));
  }
  if (runner.abort_reason().empty()) {
    res.started_at = iso8601_utc_now();
    auto recs = runner.phase(workload, cfg.num_requests, cfg.duration_s, cfg.load, false);
    res.records.assign(std::make_move_iterator(recs.begin()), std::make_move_iterator(recs.end()));
  }
  res.aborted = !runner.abort_reason().empty();
  res.abort_reason = runner.abort_reason();
  res.client = runner.client_stats();
  res.max_in_flight = runner.max_in_flight();
  res.t_start_us = std::numeric_limits<int64_t>::max();
  for (auto* v : {&res.warmup_records, &res.records})
    for (auto& r : *v) finalize_tokens(r, tokenizer);
  for (const auto& r : res.records) {
    res.t_start_us = std::min(res.t_start_us, r.t_send_us);
    res.t_end_us = std::max(res.t_end_us, r.t_end_us);
  }
  if (res.records.empty()) res.t_start_us = res.t_end_us = 0;
  return res;
}

Result<std::vector<std::string>> fetch_models(const EndpointSpec& ep, double timeout_ms, std::string* warning) {
  asio::io_context io;
  ClientConfig cc;
  cc.tls = ep.tls;
  HttpClient client(io, cc);
  HttpRequest req;
  req.method = "GET";
  req.target = ep.url.target("/v1/models");
  req.timeout_ms = timeout_ms;
  if (!ep.api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + ep.api_key});
  std::string body;
  HttpError err;
  StreamHandlers h;
  h.on_data = [&](std::string_view d, int64_t) {
    if (body.size() < (4u << 20)) body.append(d);
    return true;
  };
  h.on_done = [&](const HttpError& e, int64_t) { err = e; };
  client.request(ep.url, std::move(req), std::move(h));
  io.run();
  std::vector<std::string> ids;
  if (!err.ok()) {
    if (err.kind == ErrorKind::kHttpStatus) {
      if (warning) *warning = err.message;
      return ids;
    }
    return Status(ErrorCode::kInternal, "endpoint " + ep.url.str() + " is not usable: " + err.message);
  }
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    if (warning) *warning = "GET /v1/models did not return JSON; is " + ep.url.str() + " an OpenAI-compatible endpoint?";
    return ids;
  }
  if (j.contains("data") && j["data"].is_array())
    for (const auto& m : j["data"])
      if (m.is_object() && m.contains("id") && m["id"].is_string()) ids.push_back(m["id"].get<std::string>());
  return ids;
}

}  // namespace tachyon::bench
