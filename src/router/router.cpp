#include "router/router.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "bench/http_client.h"
#include "gguf/gguf.h"
#include "server/openai.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::router {

namespace net = boost::asio;
using ojson = nlohmann::ordered_json;

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The text a request's prompt is made of, in prompt order: every string under these
// fields, depth first (roles, contents, tool schemas ...).
void collect_strings(const ojson& j, std::string* out) {
  if (j.is_string()) {
    *out += j.get_ref<const std::string&>();
    *out += '\n';
  } else if (j.is_array() || j.is_object()) {
    for (const auto& v : j) collect_strings(v, out);
  } else if (j.is_number_integer()) {
    *out += std::to_string(j.get<int64_t>());
    *out += ' ';
  }
}

std::string json_error(int status, const std::string& message, const std::string& type = "") {
  server::ApiError e;
  e.status = status;
  e.message = message;
  e.type = type.empty() ? server::error_type_for_status(status) : type;
  return server::error_json(e);
}

// The last value of `"name": N` in s (0 if none).
int64_t last_int_field(const std::string& s, const char* name) {
  const std::string pat = std::string("\"") + name + "\":";
  size_t at = s.rfind(pat);
  if (at == std::string::npos) return 0;
  at += pat.size();
  while (at < s.size() && s[at] == ' ') ++at;
  int64_t v = 0;
  while (at < s.size() && s[at] >= '0' && s[at] <= '9') v = v * 10 + (s[at++] - '0');
  return v;
}

std::string prom_label(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

struct Worker {
  int id = 0;
  std::string name;  // the URL as given
  bench::Url url;
  bool from_file = false;
  bool prefill = false;  // PD mode: a prefill worker (never chosen by the policy)
  bool removed = false;
  bool healthy = true;
  int in_flight = 0;
  int req_failures = 0, health_failures = 0;
  double ejected_until = 0;
  double ejected_at = 0;  // a health check that started before this cannot readmit
  int backoff_ms = 0;
  bool probing = false;  // a health check in flight
  uint64_t requests = 0, errors = 0, retries = 0, ejections = 0, readmissions = 0;
  uint64_t prompt_tokens = 0, cached_tokens = 0;
  double latency_s = 0;
  uint64_t latency_n = 0;
  // gateway mode
  bool provider = false;
  std::string model, api_key;
  double price_in = -1, price_out = -1;
  double ewma_ttft = -1, ewma_tpot = -1, ewma_err = 0;  // ms, ms, fraction; -1 unknown
  double last_used = 0, cooldown_until = 0;
  double ewma_prompt = -1, ewma_completion = -1;  // tokens per request (usage)
  bool probe_in_flight = false;
  uint64_t chosen = 0, failovers = 0, rate_limited = 0, probes = 0;

  double cost() const { return price_in < 0 && price_out < 0 ? -1 : std::max(0.0, price_in) + std::max(0.0, price_out); }
  // USD per request from the prices and the measured tokens per request (-1: unknown).
  double cost_per_request() const {
    if (cost() < 0 || ewma_prompt < 0) return -1;
    return (std::max(0.0, price_in) * ewma_prompt + std::max(0.0, price_out) * std::max(0.0, ewma_completion)) / 1e6;
  }
  double expected_ms() const { return ewma_ttft < 0 ? -1 : ewma_ttft + 64 * std::max(0.0, ewma_tpot); }
  void observe(double& ewma, double v) { ewma = ewma < 0 ? v : 0.8 * ewma + 0.2 * v; }
};

class Router::Impl {
 public:
  struct Proxy;
  RouterConfig cfg;
  std::unique_ptr<server::HttpServer> http;
  Selector selector;
  std::unique_ptr<tok::Tokenizer> tokenizer;
  std::unique_ptr<gguf::File> tok_file;

  net::io_context up;
  std::unique_ptr<net::executor_work_guard<net::io_context::executor_type>> up_guard;
  std::unique_ptr<bench::HttpClient> client;  // upstream thread only
  std::thread up_thread;
  std::unique_ptr<net::steady_timer> health_timer;
  std::unique_ptr<net::signal_set> signals;
  std::unique_ptr<net::steady_timer> drain_timer;

  std::mutex mu;
  std::vector<std::shared_ptr<Worker>> workers;
  int next_id = 0;
  uint64_t decisions[3] = {0, 0, 0};  // by cache, by balance, other
  uint64_t no_worker = 0;
  std::atomic<int> active{0};
  std::atomic<bool> draining{false};
  int64_t file_mtime = -1;
  // PD mode (under mu)
  uint64_t pd_transfers = 0, pd_skipped = 0, pd_bytes = 0;
  uint64_t pd_fallbacks[2] = {0, 0};  // prefill, import
  double pd_prefill_s = 0, pd_import_s = 0;
  size_t pd_rr = 0;  // round robin among equally loaded prefill workers

  explicit Impl(RouterConfig c) : cfg(std::move(c)), selector(cfg.policy) {}

  Status add_worker(const std::string& url, bool from_file, bool prefill = false) {
    auto u = bench::Url::parse(url);
    if (!u) return u.status();
    std::lock_guard<std::mutex> lk(mu);
    for (auto& w : workers)
      if (!w->removed && w->name == url) {
        if (w->prefill != prefill)
          return invalid_argument(url + " is already a " + (w->prefill ? "prefill" : "decode") +
                                  " worker (a worker has one role)");
        return Status();
      }
    auto w = std::make_shared<Worker>();
    w->id = next_id++;
    w->name = url;
    w->url = u.value();
    w->from_file = from_file;
    w->prefill = prefill;
    w->backoff_ms = cfg.readmit_ms;
    workers.push_back(std::move(w));
    return Status();
  }

  bool remove_worker(const std::string& url) {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& w : workers)
      if (!w->removed && w->name == url) {
        w->removed = true;
        selector.remove_worker(w->id);
        return true;
      }
    return false;
  }

  // *tokens (optional): set when the key is made of tokens (a tokenizer's or the
  // request's own token ids) rather than bytes.
  std::vector<int32_t> routing_key(const std::string& body, bool* tokens = nullptr) {
    std::vector<int32_t> key;
    if (tokens) *tokens = tokenizer != nullptr;
    ojson j = ojson::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return key;
    // completions with token ids: the ids are the key
    if (auto it = j.find("prompt"); it != j.end() && it->is_array() && !it->empty() && it->front().is_number_integer()) {
      for (const auto& v : *it)
        if (v.is_number_integer()) key.push_back(static_cast<int32_t>(v.get<int64_t>()));
      if (tokens) *tokens = true;
      return key;
    }
    std::string text;
    for (const char* f : {"tools", "system", "instructions", "messages", "input", "prompt"})
      if (auto it = j.find(f); it != j.end()) collect_strings(*it, &text);
    if (tokenizer) return tokenizer->encode(text, false, false);
    key.reserve(text.size());
    for (unsigned char c : text) key.push_back(c);
    return key;
  }

  bool gateway() const { return !cfg.providers.empty(); }

  void add_provider(const bench::EndpointSpec& e) {
    auto w = std::make_shared<Worker>();
    w->id = next_id++;
    w->name = e.label();
    w->url = e.url;
    w->provider = true;
    w->model = e.model;
    w->api_key = e.api_key;
    w->price_in = e.price_input_per_m;
    w->price_out = e.price_output_per_m;
    w->backoff_ms = cfg.readmit_ms;
    workers.push_back(std::move(w));
  }

  // Whether w's estimates meet every SLO constraint (unknown estimates do).
  bool meets_slo(const Worker& w) const {
    for (const auto& c : cfg.slo) {
      double v = -1;
      const std::string& m = c.metric;
      if (m.rfind("ttft", 0) == 0) v = w.ewma_ttft;
      else if (m.rfind("tpot", 0) == 0 || m.rfind("itl", 0) == 0) v = w.ewma_tpot;
      else if (m.rfind("e2e", 0) == 0) v = w.expected_ms();
      else if (m == "error_rate") v = w.ewma_err;
      else if (m == "cost_per_request") v = w.cost_per_request();
      else if (m == "cost_per_mtok") v = w.price_out;  // USD per million output tokens
      else continue;  // not estimated by the gateway
      if (v < 0) continue;
      const bool ok = c.less ? (c.or_equal ? v <= c.value : v < c.value) : (c.or_equal ? v >= c.value : v > c.value);
      if (!ok) return false;
    }
    return true;
  }

  // Gateway: the best provider for p among cands by the objective (under mu).
  Decision choose_provider(const Proxy& p, std::span<const Candidate> cands) {
    const double t = now_ms();
    std::vector<Worker*> pool, all;
    for (const auto& c : cands)
      for (auto& w : workers)
        if (w->id == c.id && t >= w->cooldown_until &&
            (cfg.max_concurrency <= 0 || w->in_flight < cfg.max_concurrency))
          all.push_back(w.get());
    // Pinned to the model's providers whenever any provider serves it (available or not:
    // a request for M is never answered by another model).
    bool model_served = false;
    for (auto& w : workers)
      model_served |= w->provider && !w->removed && !p.model.empty() && (w->model == p.model || w->name == p.model);
    if (model_served) {
      std::vector<Worker*> for_model;
      for (Worker* w : all)
        if (w->model == p.model || w->name == p.model) for_model.push_back(w);
      all = std::move(for_model);
    }
    for (Worker* w : all)
      if (meets_slo(*w)) pool.push_back(w);
    const bool slo_met = !pool.empty();
    if (!slo_met) pool = all;
    Decision d;
    if (pool.empty()) return d;
    double best_cost = -1, best_ms = -1;
    for (Worker* w : pool) {
      if (w->cost() >= 0 && (best_cost < 0 || w->cost() < best_cost)) best_cost = w->cost();
      if (w->expected_ms() >= 0 && (best_ms < 0 || w->expected_ms() < best_ms)) best_ms = w->expected_ms();
    }
    auto speed = [](const Worker* w) { return w->expected_ms() < 0 ? 0.0 : w->expected_ms(); };
    auto cost = [](const Worker* w) { return w->cost() < 0 ? 1e300 : w->cost(); };
    auto score = [&](const Worker* w) {
      const double c = w->cost() < 0 ? 2.0 : best_cost > 0 ? w->cost() / best_cost : 1.0;
      const double s = w->expected_ms() < 0 ? 0.0 : best_ms > 0 ? w->expected_ms() / best_ms : 1.0;
      return c + s;
    };
    Worker* best = pool.front();
    for (Worker* w : pool) {
      bool better = false;
      if (cfg.objective == "cheapest")
        better = cost(w) < cost(best) || (cost(w) == cost(best) && speed(w) < speed(best));
      else if (cfg.objective == "fastest")
        better = speed(w) < speed(best) || (speed(w) == speed(best) && cost(w) < cost(best));
      else
        better = score(w) < score(best);
      if (better) best = w;
    }
    ++best->chosen;
    if (cfg.log_decisions)
      std::fprintf(stderr,
                   "gateway: model %s -> %s (%s; ttft %.0f ms, tpot %.1f ms, errors %.2f, price %.3f; %zu candidates, "
                   "%s)%s\n",
                   p.model.empty() ? "-" : p.model.c_str(), best->name.c_str(), cfg.objective.c_str(), best->ewma_ttft,
                   best->ewma_tpot, best->ewma_err, best->cost(), all.size(),
                   slo_met ? "SLO met" : "no provider meets the SLO", p.excluded.empty() ? "" : " [failover]");
    d.worker = best->id;
    return d;
  }

  // Gateway: a 1-token streamed chat completion to a provider idle for probe_interval_ms.
  void send_probe(const std::shared_ptr<Worker>& w) {
    auto p = std::make_shared<Proxy>();
    p->r = this;
    p->probe = true;
    p->worker = w;
    p->t0 = p->t_attempt = now_ms();
    bench::HttpRequest req;
    req.method = "POST";
    req.target = w->url.target("/v1/chat/completions");
    req.body = ojson{{"model", w->model},
                     {"messages", ojson::array({{{"role", "user"}, {"content", "ping"}}})},
                     {"max_tokens", 1},
                     {"stream", true}}
                   .dump();
    req.timeout_ms = cfg.health_timeout_ms * 5;
    req.headers.push_back({"Content-Type", "application/json"});
    if (!w->api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + w->api_key});
    bench::StreamHandlers h;
    h.on_data = [p](std::string_view, int64_t) {
      if (p->t_first == 0) p->t_first = now_ms();
      return true;
    };
    h.on_done = [this, p](const bench::HttpError& err, int64_t) { finish(p, err); };
    client->request(w->url, std::move(req), std::move(h));
  }

  // --- proxying ---------------------------------------------------------------------

  struct Proxy : server::ExchangeOwner {
    Impl* r = nullptr;
    std::shared_ptr<server::Exchange> ex;
    std::string method, target, body, auth;
    std::vector<int32_t> key;
    std::vector<int> excluded;
    int attempts = 0;
    double t0 = 0;
    std::atomic<bool> gone{false};
    // upstream thread
    std::shared_ptr<Worker> worker;
    bool started = false, streaming = false;
    int status = 200;
    std::string content_type, buffer, tail;
    std::string last_error;
    int last_status = 0;
    double t_attempt = 0, t_first = 0;
    int n_events = 0;  // SSE events seen (a stream's tokens, roughly)
    bool probe = false;  // a gateway probe (no client)
    ojson body_json;     // parsed body (gateway: rewritten per provider)
    std::string model;   // the model the client asked for
    bool chat = false;   // a chat completion (its reply extends the routing key)
    std::string reply_raw;  // cache_aware: the response body (capped), for the reply text
    // PD mode
    bool generation = false;  // a generation route (may take the prefill/import path)
    size_t prompt_tokens_est = 0;
    bool pd_done = false;     // the transfer was tried or skipped (never again on retries)
    std::string kv;           // [transfer bytes] from the prefill worker, until the import
    bool kv_bad = false;      // the prefill worker's 200 was not an octet-stream
    void on_client_gone() override { gone = true; }
  };

  void post_ex(const std::shared_ptr<Proxy>& p, std::function<void(server::Exchange&)> fn) {
    if (!p->ex) return;  // a probe
    auto ex = p->ex;
    net::post(ex->executor(), [ex, fn = std::move(fn)] { fn(*ex); });
  }

  void respond(const std::shared_ptr<Proxy>& p, int status, std::string body,
               std::string ct = "application/json") {
    post_ex(p, [status, body = std::move(body), ct = std::move(ct)](server::Exchange& e) {
      e.respond(status, ct, body);
    });
    --active;
  }

  void attempt(const std::shared_ptr<Proxy>& p) {
    std::shared_ptr<Worker> w;
    Decision d;
    {
      std::lock_guard<std::mutex> lk(mu);
      std::vector<Candidate> cands;
      for (auto& x : workers)
        if (!x->removed && x->healthy && !x->prefill &&
            std::find(p->excluded.begin(), p->excluded.end(), x->id) == p->excluded.end())
          cands.push_back({x->id, x->in_flight});
      if (gateway()) d = choose_provider(*p, cands);
      else d = selector.choose(p->key, cands);
      if (d.worker >= 0) {
        for (auto& x : workers)
          if (x->id == d.worker) w = x;
        ++w->in_flight;
        ++w->requests;
        ++decisions[d.by_cache ? 0 : d.by_balance ? 1 : 2];
      } else {
        ++no_worker;
      }
    }
    if (!w) {
      if (p->last_status > 0)
        respond(p, p->last_status >= 500 || p->last_status == 429 ? 502 : p->last_status,
                json_error(502, "all workers failed; last error: " + p->last_error));
      else if (gateway())
        respond(p, 503,
                json_error(503,
                           "no provider available" + (p->model.empty() ? std::string() : " for model " + p->model) +
                               " (circuit open, resting after a 429, or at its concurrency limit)",
                           "server_error"));
      else
        respond(p, 503, json_error(503, "no healthy worker", "server_error"));
      return;
    }
    ++p->attempts;
    p->worker = w;
    p->started = p->streaming = false;
    p->buffer.clear();
    p->tail.clear();
    bench::HttpRequest req;
    req.method = p->method;
    req.target = w->url.target(p->target);
    req.body = p->body;
    if (w->provider && !w->model.empty() && p->body_json.is_object()) {
      p->body_json["model"] = w->model;
      req.body = p->body_json.dump();
    }
    req.timeout_ms = cfg.request_timeout_ms;
    if (!req.body.empty()) req.headers.push_back({"Content-Type", "application/json"});
    if (w->provider) {
      if (!w->api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + w->api_key});
    } else if (!p->auth.empty()) {
      req.headers.push_back({"Authorization", p->auth});
    }
    bool transfer = false;
    if (pd() && p->generation && !p->pd_done) {
      p->pd_done = true;
      transfer = p->prompt_tokens_est >= static_cast<size_t>(std::max(cfg.pd_min_prompt, 0));
      if (!transfer) {
        std::lock_guard<std::mutex> lk(mu);
        ++pd_skipped;
      }
    }
    net::post(up, [this, p, w, transfer, req = std::move(req)]() mutable {
      if (transfer) pd_prefill(p, w, std::move(req));
      else forward(p, w, std::move(req));
    });
  }

  // Step c (upstream thread): req to w, its response passed through to the client.
  void forward(const std::shared_ptr<Proxy>& p, const std::shared_ptr<Worker>& w, bench::HttpRequest req) {
    p->t_attempt = now_ms();
    p->t_first = 0;
    p->n_events = 0;
    {
      bench::StreamHandlers h;
      h.on_head = [this, p](const bench::ResponseHead& head, int64_t) {
        p->started = true;
        p->status = head.status;
        p->content_type = head.content_type.empty() ? "application/json" : head.content_type;
        p->streaming = head.chunked;
        if (p->streaming) {
          const int st = p->status;
          const std::string ct = p->content_type;
          post_ex(p, [st, ct](server::Exchange& e) { e.start_stream(st, ct); });
        }
      };
      h.on_data = [this, p](std::string_view data, int64_t) {
        if (p->t_first == 0) p->t_first = now_ms();
        for (size_t at = data.find("data: "); at != std::string_view::npos; at = data.find("data: ", at + 6))
          ++p->n_events;
        if (p->probe) return true;
        if (p->chat && cfg.policy.policy == Policy::kCacheAware && !gateway() && p->reply_raw.size() < (1u << 20))
          p->reply_raw.append(data);
        p->tail.append(data);
        if (p->tail.size() > 16384) p->tail.erase(0, p->tail.size() - 8192);
        if (p->streaming) {
          post_ex(p, [chunk = std::string(data)](server::Exchange& e) { e.write_chunk(chunk); });
        } else {
          p->buffer.append(data);
        }
        return !p->gone.load();
      };
      h.on_done = [this, p](const bench::HttpError& err, int64_t) { finish(p, err); };
      client->request(w->url, std::move(req), std::move(h));
    }
  }

  // --- PD mode: prefill on a prefill worker, import into the decode worker ----------

  bool pd() const { return !cfg.prefill.empty(); }

  // The healthy prefill worker with the fewest requests in flight; ties in turn (under mu).
  std::shared_ptr<Worker> choose_prefill_locked() {
    std::vector<size_t> idx;
    for (size_t i = 0; i < workers.size(); ++i)
      if (workers[i]->prefill && !workers[i]->removed && workers[i]->healthy) idx.push_back(i);
    if (idx.empty()) return nullptr;
    const size_t start = pd_rr++ % idx.size();
    std::shared_ptr<Worker> best;
    for (size_t k = 0; k < idx.size(); ++k) {
      const auto& x = workers[idx[(start + k) % idx.size()]];
      if (!best || x->in_flight < best->in_flight) best = x;
    }
    return best;
  }

  // A transfer step failed: count it (under mu) and say so on stderr now and then.
  void pd_fallback_locked(int reason, const std::string& why) {
    const uint64_t n = ++pd_fallbacks[reason];
    if (n <= 5 || n % 100 == 0)
      std::fprintf(stderr, "router: PD %s failed (%s); the decode worker prefills itself [%llu such]\n",
                   reason == 0 ? "prefill" : "import", why.c_str(), static_cast<unsigned long long>(n));
  }

  // The client went away during a transfer: w's reservation and the request end here.
  void pd_abandon(const std::shared_ptr<Proxy>& p, const std::shared_ptr<Worker>& w) {
    std::string().swap(p->kv);
    {
      std::lock_guard<std::mutex> lk(mu);
      --w->in_flight;
    }
    --active;
  }

  // Step a (upstream thread): the prompt's KV pages from a prefill worker, then step b;
  // on failure step c (fwd to w) directly.
  void pd_prefill(const std::shared_ptr<Proxy>& p, const std::shared_ptr<Worker>& w, bench::HttpRequest fwd) {
    if (p->gone) return pd_abandon(p, w);
    std::shared_ptr<Worker> pf;
    {
      std::lock_guard<std::mutex> lk(mu);
      pf = choose_prefill_locked();
      if (pf) {
        ++pf->in_flight;
        ++pf->requests;
      } else {
        pd_fallback_locked(0, "no healthy prefill worker");
      }
    }
    if (!pf) return forward(p, w, std::move(fwd));
    bench::HttpRequest req;
    req.method = "POST";
    req.target = pf->url.target(p->target);
    req.body = p->body;
    req.timeout_ms = cfg.pd_timeout_ms;
    req.headers.push_back({"Content-Type", "application/json"});
    req.headers.push_back({"X-Tachyon-KV-Export", "1"});
    if (!p->auth.empty()) req.headers.push_back({"Authorization", p->auth});
    p->kv.clear();
    p->kv_bad = false;
    const double t0 = now_ms();
    bench::StreamHandlers h;
    h.on_head = [p](const bench::ResponseHead& head, int64_t) {
      p->kv_bad = head.status != 200 || head.content_type.rfind("application/octet-stream", 0) != 0;
    };
    h.on_data = [p](std::string_view data, int64_t) {
      if (p->kv_bad || p->gone) return false;
      p->kv.append(data);
      return true;
    };
    h.on_done = [this, p, w, pf, t0, fwd = std::move(fwd)](const bench::HttpError& err, int64_t) mutable {
      const double secs = (now_ms() - t0) / 1e3;
      const bool gone = p->gone.load();
      const bool bad = err.ok() ? p->kv_bad || p->kv.empty() : p->kv_bad;  // a worker that is no prefill worker
      const bool ok = err.ok() && !bad;
      const bool client_error = err.kind == bench::ErrorKind::kHttpStatus && err.http_status >= 400 &&
                                err.http_status < 500 && err.http_status != 429;
      {
        std::lock_guard<std::mutex> lk(mu);
        --pf->in_flight;
        pd_prefill_s += secs;
        if (ok || client_error) {
          pf->req_failures = 0;
          pf->backoff_ms = cfg.readmit_ms;
          pf->latency_s += secs;
          ++pf->latency_n;
        } else if (bad || err.kind != bench::ErrorKind::kCancelled) {
          ++pf->errors;
          if (err.http_status != 429 && ++pf->req_failures >= cfg.eject_after) eject_locked(*pf);
        }
        if (!ok && !gone)
          pd_fallback_locked(0, pf->name + ": " +
                                    (bad ? "not an application/octet-stream body (is it --role prefill?)" : err.message));
      }
      if (gone) return pd_abandon(p, w);
      if (!ok) {
        std::string().swap(p->kv);
        return forward(p, w, std::move(fwd));
      }
      pd_import(p, w, std::move(fwd));
    };
    client->request(pf->url, std::move(req), std::move(h));
  }

  // Step b (upstream thread): p->kv to w's /internal/kv/import (the buffer is freed when
  // the import ends), then step c.
  void pd_import(const std::shared_ptr<Proxy>& p, const std::shared_ptr<Worker>& w, bench::HttpRequest fwd) {
    bench::HttpRequest req;
    req.method = "POST";
    req.target = w->url.target("/internal/kv/import");
    const uint64_t n_bytes = p->kv.size();
    req.body = std::move(p->kv);
    std::string().swap(p->kv);
    req.timeout_ms = cfg.pd_timeout_ms;
    req.headers.push_back({"Content-Type", "application/octet-stream"});
    if (!p->auth.empty()) req.headers.push_back({"Authorization", p->auth});
    const double t0 = now_ms();
    bench::StreamHandlers h;
    h.on_data = [p](std::string_view, int64_t) { return !p->gone.load(); };
    h.on_done = [this, p, w, t0, n_bytes, fwd = std::move(fwd)](const bench::HttpError& err, int64_t) mutable {
      const bool gone = p->gone.load();
      {
        std::lock_guard<std::mutex> lk(mu);
        pd_import_s += (now_ms() - t0) / 1e3;
        if (err.ok()) {
          ++pd_transfers;
          pd_bytes += n_bytes;
        } else if (!gone) {
          pd_fallback_locked(1, w->name + ": " + err.message);
        }
      }
      if (gone) return pd_abandon(p, w);
      forward(p, w, std::move(fwd));
    };
    client->request(w->url, std::move(req), std::move(h));
  }

  // Ejects w (or, when it is out already and failed again, waits twice as long before the
  // next health check).
  // cache_aware: the worker now also caches the prompt followed by its reply; record that
  // key (as the next turn's messages will spell it: ..."assistant\n" reply "\n"), so the
  // conversation's next turn matches its whole history there.
  void record_reply(const Proxy& p) {
    std::string reply;
    if (p.streaming) {
      size_t at = 0;
      while ((at = p.reply_raw.find("data: ", at)) != std::string::npos) {
        at += 6;
        const size_t end = p.reply_raw.find('\n', at);
        const std::string_view line(p.reply_raw.data() + at, (end == std::string::npos ? p.reply_raw.size() : end) - at);
        at = end == std::string::npos ? p.reply_raw.size() : end;
        if (line.empty() || line[0] != '{') continue;
        ojson ev = ojson::parse(line, nullptr, false);
        if (ev.is_discarded() || !ev.contains("choices") || !ev["choices"].is_array() || ev["choices"].empty()) continue;
        const auto& c = ev["choices"][0];
        if (c.contains("delta") && c["delta"].contains("content") && c["delta"]["content"].is_string())
          reply += c["delta"]["content"].get<std::string>();
      }
    } else {
      ojson j = ojson::parse(p.reply_raw, nullptr, false);
      if (!j.is_discarded() && j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
        const auto& c = j["choices"][0];
        if (c.contains("message") && c["message"].contains("content") && c["message"]["content"].is_string())
          reply = c["message"]["content"].get<std::string>();
      }
    }
    if (reply.empty()) return;
    std::vector<int32_t> key = p.key;
    const std::string extra = "assistant\n" + reply + "\n";
    if (tokenizer) {
      // re-tokenize the whole text: token boundaries at the join may differ
      std::string text;
      ojson j = ojson::parse(p.body, nullptr, false);
      for (const char* f : {"tools", "system", "instructions", "messages", "input", "prompt"})
        if (!j.is_discarded() && j.contains(f)) collect_strings(j[f], &text);
      key = tokenizer->encode(text + extra, false, false);
    } else {
      for (unsigned char c : extra) key.push_back(c);
    }
    selector.record(key, p.worker->id);
  }

  void eject_locked(Worker& w) {
    if (w.healthy) {
      w.healthy = false;
      ++w.ejections;
      std::fprintf(stderr, "router: %s %s ejected (next check in %d ms)\n", w.provider ? "provider" : "worker",
                   w.name.c_str(), w.backoff_ms);
    }
    w.ejected_at = now_ms();
    w.ejected_until = w.ejected_at + w.backoff_ms;
    w.backoff_ms = std::min(w.backoff_ms * 2, 30000);
  }

  // Upstream thread.
  void finish(const std::shared_ptr<Proxy>& p, const bench::HttpError& err) {
    Worker& w = *p->worker;
    if (p->probe) {
      std::lock_guard<std::mutex> lk(mu);
      w.probe_in_flight = false;
      w.last_used = now_ms();
      w.observe(w.ewma_err, err.ok() ? 0.0 : 1.0);
      if (err.ok() && p->t_first > 0) w.observe(w.ewma_ttft, p->t_first - p->t_attempt);
      return;
    }
    const bool client_error = err.kind == bench::ErrorKind::kHttpStatus && err.http_status >= 400 &&
                              err.http_status < 500 && err.http_status != 429;
    {
      std::lock_guard<std::mutex> lk(mu);
      --w.in_flight;
      if (w.provider && err.kind != bench::ErrorKind::kCancelled && !client_error) {
        const double t = now_ms();
        w.last_used = t;
        w.observe(w.ewma_err, err.ok() ? 0.0 : 1.0);
        if (err.ok() && p->t_first > 0) {
          w.observe(w.ewma_ttft, p->t_first - p->t_attempt);
          const int n_tok = p->n_events - 2;  // the first event, and [DONE]
          if (p->streaming && n_tok > 0) w.observe(w.ewma_tpot, (t - p->t_first) / n_tok);
        }
        if (err.ok()) {
          const int64_t pt = last_int_field(p->tail, "prompt_tokens"), ct = last_int_field(p->tail, "completion_tokens");
          if (pt > 0) w.observe(w.ewma_prompt, static_cast<double>(pt));
          if (ct > 0) w.observe(w.ewma_completion, static_cast<double>(ct));
        }
        if (err.http_status == 429) {
          ++w.rate_limited;
          w.cooldown_until = t + 1000;
        }
        if (!err.ok()) ++w.failovers;
      }
      if (err.ok() || client_error) {
        w.req_failures = 0;
        w.backoff_ms = cfg.readmit_ms;
        w.latency_s += (now_ms() - p->t0) / 1e3;
        ++w.latency_n;
        if (err.ok()) {
          w.prompt_tokens += static_cast<uint64_t>(last_int_field(p->tail, "prompt_tokens"));
          w.cached_tokens += static_cast<uint64_t>(last_int_field(p->tail, "cached_tokens"));
        }
      } else if (err.kind != bench::ErrorKind::kCancelled) {
        ++w.errors;
        if (err.http_status != 429 && ++w.req_failures >= cfg.eject_after) eject_locked(w);
      }
    }
    if (err.ok() && !p->reply_raw.empty()) record_reply(*p);
    if (err.ok()) {
      if (p->streaming) {
        post_ex(p, [](server::Exchange& e) { e.end_stream(); });
        --active;
      } else {
        respond(p, p->status, std::move(p->buffer), p->content_type);
      }
      return;
    }
    if (err.kind == bench::ErrorKind::kCancelled) {  // the client went away
      --active;
      return;
    }
    if (client_error) {  // the worker's own answer, as it gave it
      std::string body = err.body;
      if (body.empty() || body.front() != '{') body = json_error(err.http_status, err.message);
      respond(p, err.http_status, std::move(body));
      return;
    }
    if (!p->started || !p->streaming) {  // nothing reached the client: another worker may serve it
      p->last_error = err.message;
      p->last_status = err.http_status > 0 ? err.http_status : 502;
      p->excluded.push_back(w.id);
      if (p->attempts < cfg.max_attempts) {
        {
          std::lock_guard<std::mutex> lk(mu);
          ++w.retries;
        }
        attempt(p);
      } else {
        respond(p, 502, json_error(502, "worker failed: " + err.message));
      }
      return;
    }
    // Bytes already went out: end cleanly with an error the client can see.
    if (p->streaming) {
      const std::string ev = "data: " + json_error(502, "worker failed mid-stream: " + err.message) + "\n\n";
      post_ex(p, [ev](server::Exchange& e) {
        e.write_chunk(ev);
        e.end_stream();
      });
      --active;
    } else {
      respond(p, 502, json_error(502, "worker failed: " + err.message));
    }
  }

  // --- health checks, workers file ------------------------------------------------

  void sync_workers_file() {
    if (cfg.workers_file.empty()) return;
    struct stat st {};
    if (stat(cfg.workers_file.c_str(), &st) != 0) return;
    const int64_t mt = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (mt == file_mtime) return;
    file_mtime = mt;
    std::ifstream f(cfg.workers_file);
    std::vector<std::string> urls;
    for (std::string line; std::getline(f, line);) {
      const auto h = line.find('#');
      if (h != std::string::npos) line.resize(h);
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (!line.empty()) urls.push_back(line);
    }
    for (const auto& u : urls)
      if (Status s = add_worker(u, true); !s)
        std::fprintf(stderr, "router: %s: %s\n", cfg.workers_file.c_str(), s.message().c_str());
    std::vector<std::string> gone;
    {
      std::lock_guard<std::mutex> lk(mu);
      for (auto& w : workers)
        if (w->from_file && !w->removed && std::find(urls.begin(), urls.end(), w->name) == urls.end())
          gone.push_back(w->name);
    }
    for (const auto& g : gone) remove_worker(g);
  }

  void health_tick() {
    sync_workers_file();
    std::vector<std::shared_ptr<Worker>> probe;
    {
      std::lock_guard<std::mutex> lk(mu);
      const double t = now_ms();
      for (auto& w : workers)
        if (!w->removed && !w->probing && (w->healthy || t >= w->ejected_until)) {
          w->probing = true;
          probe.push_back(w);
        }
    }
    for (auto& w : probe) {
      bench::HttpRequest req;
      req.method = "GET";
      req.target = w->url.target(w->provider ? "/v1/models" : "/health");
      req.timeout_ms = cfg.health_timeout_ms;
      if (w->provider && !w->api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + w->api_key});
      bench::StreamHandlers h;
      h.on_data = [](std::string_view, int64_t) { return true; };
      const double t_sent = now_ms();
      h.on_done = [this, w, t_sent](const bench::HttpError& err, int64_t) {
        std::lock_guard<std::mutex> lk(mu);
        w->probing = false;
        // A check sent before the worker was ejected (by failed requests) says nothing
        // about it since: it neither readmits it nor counts against it.
        if (!w->healthy && t_sent < w->ejected_at) return;
        if (err.ok()) {
          w->health_failures = 0;
          if (!w->healthy && !w->removed) {
            w->healthy = true;
            w->req_failures = 0;
            ++w->readmissions;
            std::fprintf(stderr, "router: worker %s readmitted\n", w->name.c_str());
          }
        } else if (++w->health_failures >= cfg.eject_after || !w->healthy) {
          eject_locked(*w);
        }
      };
      client->request(w->url, std::move(req), std::move(h));
    }
    if (gateway() && cfg.probe_interval_ms > 0) {
      std::vector<std::shared_ptr<Worker>> idle;
      {
        std::lock_guard<std::mutex> lk(mu);
        const double t = now_ms();
        for (auto& w : workers)
          if (w->provider && w->healthy && w->in_flight == 0 && !w->probe_in_flight &&
              t - w->last_used >= cfg.probe_interval_ms) {
            w->probe_in_flight = true;
            ++w->probes;
            w->last_used = t;
            idle.push_back(w);
          }
      }
      for (auto& w : idle) send_probe(w);
    }
    health_timer->expires_after(std::chrono::milliseconds(cfg.health_interval_ms));
    health_timer->async_wait([this](boost::system::error_code ec) {
      if (!ec) health_tick();
    });
  }

  // --- routes served by the router itself ------------------------------------------

  const char* role_name(const Worker& w) const { return w.prefill ? "prefill" : pd() ? "decode" : "worker"; }

  std::string workers_json() {
    ojson arr = ojson::array();
    std::lock_guard<std::mutex> lk(mu);
    for (auto& w : workers) {
      if (w->removed) continue;
      arr.push_back({{"url", w->name},
                     {"role", role_name(*w)},
                     {"healthy", w->healthy},
                     {"in_flight", w->in_flight},
                     {"requests", w->requests},
                     {"errors", w->errors},
                     {"cached_tokens", w->cached_tokens},
                     {"prompt_tokens", w->prompt_tokens}});
    }
    return ojson{{"policy", policy_name(cfg.policy.policy)}, {"workers", arr}}.dump();
  }

  std::string metrics_text() {
    std::string o;
    auto head = [&](const char* name, const char* type, const char* help) {
      o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    std::lock_guard<std::mutex> lk(mu);
    auto per = [&](const char* name, const char* type, const char* help, auto get) {
      head(name, type, help);
      for (auto& w : workers)
        if (!w->removed) o += std::string(name) + "{worker=\"" + prom_label(w->name) + "\"} " + get(*w) + "\n";
    };
    auto u = [](uint64_t v) { return std::to_string(v); };
    per("tachyon_router_requests_total", "counter", "Requests sent to the worker (attempts)",
        [&](Worker& w) { return u(w.requests); });
    per("tachyon_router_errors_total", "counter", "Attempts that failed (connect, 5xx, 429, timeout, lost)",
        [&](Worker& w) { return u(w.errors); });
    per("tachyon_router_retries_total", "counter", "Requests retried on another worker after failing here",
        [&](Worker& w) { return u(w.retries); });
    per("tachyon_router_ejections_total", "counter", "Times the worker was ejected",
        [&](Worker& w) { return u(w.ejections); });
    per("tachyon_router_readmissions_total", "counter", "Times the worker was readmitted",
        [&](Worker& w) { return u(w.readmissions); });
    per("tachyon_router_worker_healthy", "gauge", "1 while the worker receives requests",
        [&](Worker& w) { return std::string(w.healthy ? "1" : "0"); });
    per("tachyon_router_in_flight", "gauge", "Requests in flight at the worker",
        [&](Worker& w) { return std::to_string(w.in_flight); });
    per("tachyon_router_prompt_tokens_total", "counter", "Prompt tokens the worker reported (usage)",
        [&](Worker& w) { return u(w.prompt_tokens); });
    per("tachyon_router_cached_tokens_total", "counter", "Prompt tokens the worker served from its cache (usage)",
        [&](Worker& w) { return u(w.cached_tokens); });
    per("tachyon_router_latency_seconds_sum", "counter", "Request time through the router (completed requests)",
        [&](Worker& w) { return std::to_string(w.latency_s); });
    per("tachyon_router_latency_seconds_count", "counter", "Completed requests",
        [&](Worker& w) { return u(w.latency_n); });
    head("tachyon_router_worker_info", "gauge", "The worker's role: prefill, decode (PD mode) or worker");
    for (auto& w : workers)
      if (!w->removed)
        o += "tachyon_router_worker_info{worker=\"" + prom_label(w->name) + "\",role=\"" + role_name(*w) + "\"} 1\n";
    head("tachyon_router_decisions_total", "counter", "Routing decisions by reason");
    o += "tachyon_router_decisions_total{reason=\"cache\"} " + u(decisions[0]) + "\n";
    o += "tachyon_router_decisions_total{reason=\"balance\"} " + u(decisions[1]) + "\n";
    o += "tachyon_router_decisions_total{reason=\"other\"} " + u(decisions[2]) + "\n";
    if (gateway()) {
      auto f = [](double v) { return std::to_string(v); };
      per("tachyon_gateway_ttft_ms", "gauge", "EWMA time to first byte (-1: not measured yet)",
          [&](Worker& w) { return f(w.ewma_ttft); });
      per("tachyon_gateway_tpot_ms", "gauge", "EWMA time per output token of streams (-1: not measured yet)",
          [&](Worker& w) { return f(w.ewma_tpot); });
      per("tachyon_gateway_error_rate", "gauge", "EWMA of failed attempts (0..1)", [&](Worker& w) { return f(w.ewma_err); });
      per("tachyon_gateway_circuit_open", "gauge", "1 while the circuit is open (nothing is sent)",
          [&](Worker& w) { return std::string(w.healthy ? "0" : "1"); });
      per("tachyon_gateway_decisions_total", "counter", "Requests the objective sent to the provider",
          [&](Worker& w) { return u(w.chosen); });
      per("tachyon_gateway_failovers_total", "counter", "Attempts that failed here and moved on",
          [&](Worker& w) { return u(w.failovers); });
      per("tachyon_gateway_rate_limited_total", "counter", "429 answers", [&](Worker& w) { return u(w.rate_limited); });
      per("tachyon_gateway_probes_total", "counter", "Probe requests sent while idle", [&](Worker& w) { return u(w.probes); });
    }
    if (pd()) {
      auto f = [](double v) { return std::to_string(v); };
      head("tachyon_router_pd_transfers_total", "counter", "Prompt KV transfers imported by a decode worker");
      o += "tachyon_router_pd_transfers_total " + u(pd_transfers) + "\n";
      head("tachyon_router_pd_fallbacks_total", "counter",
           "Transfers that failed at a step (the decode worker prefilled the prompt itself)");
      o += "tachyon_router_pd_fallbacks_total{reason=\"prefill\"} " + u(pd_fallbacks[0]) + "\n";
      o += "tachyon_router_pd_fallbacks_total{reason=\"import\"} " + u(pd_fallbacks[1]) + "\n";
      head("tachyon_router_pd_skipped_total", "counter", "Generation requests sent straight to decode (short prompt)");
      o += "tachyon_router_pd_skipped_total " + u(pd_skipped) + "\n";
      head("tachyon_router_pd_bytes_total", "counter", "KV bytes of successful imports");
      o += "tachyon_router_pd_bytes_total " + u(pd_bytes) + "\n";
      head("tachyon_router_pd_prefill_seconds_total", "counter", "Wall time of prefill calls (every one that ended)");
      o += "tachyon_router_pd_prefill_seconds_total " + f(pd_prefill_s) + "\n";
      head("tachyon_router_pd_import_seconds_total", "counter", "Wall time of import calls (every one that ended)");
      o += "tachyon_router_pd_import_seconds_total " + f(pd_import_s) + "\n";
    }
    head("tachyon_router_no_worker_total", "counter", "Attempts that found no eligible worker");
    o += "tachyon_router_no_worker_total " + u(no_worker) + "\n";
    return o;
  }

  static bool same_secret(std::string_view a, std::string_view b) {
    unsigned diff = a.size() != b.size();
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i % std::max<size_t>(b.size(), 1)]);
    return diff == 0 && !b.empty();
  }

  // Authorization: Bearer KEY (any case of "bearer"), or x-api-key: KEY (Anthropic clients).
  bool authorized(const server::HttpRequest& req) {
    if (cfg.api_keys.empty()) return true;
    std::string given;
    if (const auto it = req.find(boost::beast::http::field::authorization); it != req.end()) {
      const std::string v(it->value());
      if (v.size() > 7 && (v.compare(0, 7, "Bearer ") == 0 || v.compare(0, 7, "bearer ") == 0 ||
                           v.compare(0, 7, "BEARER ") == 0))
        given = v.substr(7);
    }
    if (given.empty())
      if (const auto it = req.find("x-api-key"); it != req.end()) given = std::string(it->value());
    bool ok = false;
    for (const auto& k : cfg.api_keys) ok |= same_secret(given, k);
    return ok;
  }

  void handle(std::shared_ptr<server::Exchange> ex) {
    const auto& req = ex->request();
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    const auto method = req.method();
    using boost::beast::http::verb;
    auto json = [&](int st, std::string body) { ex->respond(st, "application/json", std::move(body)); };
    if (path == "/health") {
      int healthy = 0, healthy_prefill = 0;
      {
        std::lock_guard<std::mutex> lk(mu);
        for (auto& w : workers) (w->prefill ? healthy_prefill : healthy) += !w->removed && w->healthy;
      }
      ojson hj{{"status", healthy > 0 && !draining ? "ok" : "unavailable"}, {"healthy_workers", healthy}};
      if (pd()) hj["healthy_prefill_workers"] = healthy_prefill;
      json(healthy > 0 && !draining ? 200 : 503, hj.dump());
      return;
    }
    if (path == "/metrics") {
      ex->respond(200, "text/plain; version=0.0.4", metrics_text());
      return;
    }
    if (path == "/workers") {
      if (!authorized(req)) return json(401, json_error(401, "invalid API key"));
      if (method == verb::get) return json(200, workers_json());
      std::string url;
      ojson j = ojson::parse(req.body(), nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("url") && j["url"].is_string()) url = j["url"];
      if (const auto q = target.find("?url="); url.empty() && q != std::string::npos) url = target.substr(q + 5);
      if (url.empty()) return json(400, json_error(400, "workers: give {\"url\": \"http://host:port\"}"));
      if (method == verb::post) {
        std::string role = "decode";
        if (!j.is_discarded() && j.is_object() && j.contains("role") && j["role"].is_string()) role = j["role"];
        if (role != "decode" && role != "worker" && role != "prefill")
          return json(400, json_error(400, "workers: role '" + role + "': decode (or worker) or prefill"));
        if (role == "prefill" && !pd())
          return json(400, json_error(400, "workers: role prefill needs PD mode (start the router with --prefill)"));
        if (Status s = add_worker(url, false, role == "prefill"); !s) return json(400, json_error(400, s.message()));
        return json(200, workers_json());
      }
      if (method == verb::delete_) {
        if (!remove_worker(url)) return json(404, json_error(404, "no such worker: " + url));
        return json(200, workers_json());
      }
      return json(405, json_error(405, "workers: GET, POST or DELETE"));
    }
    const bool api = path.rfind("/v1/", 0) == 0 || path == "/chat/completions" || path == "/completions" ||
                     path == "/models" || path == "/messages" || path == "/responses";
    if (!api) return json(404, json_error(404, "unknown route " + path));
    const bool models = path == "/v1/models" || path == "/models";
    if (!authorized(req)) return json(401, json_error(401, "invalid API key"));
    if (models ? method != verb::get : method != verb::post)
      return json(405, json_error(405, std::string("use ") + (models ? "GET" : "POST") + " for " + path));
    if (draining) return json(503, json_error(503, "the router is shutting down", "server_error"));
    auto p = std::make_shared<Proxy>();
    p->r = this;
    p->ex = ex;
    p->method = models ? "GET" : "POST";
    p->target = target;  // with its query string
    p->body = req.body();
    p->chat = path.find("chat/completions") != std::string::npos;
    if (cfg.api_keys.empty())
      if (const auto it = req.find(boost::beast::http::field::authorization); it != req.end())
        p->auth = std::string(it->value());
    p->t0 = now_ms();
    if (gateway()) {
      p->body_json = ojson::parse(p->body, nullptr, false);
      if (p->body_json.is_object() && p->body_json.contains("model") && p->body_json["model"].is_string())
        p->model = p->body_json["model"].get<std::string>();
    } else if (!models) {
      bool tokens = false;
      p->key = routing_key(p->body, &tokens);
      p->prompt_tokens_est = tokens ? p->key.size() : p->key.size() / 4;
      auto gen = [](std::string_view s) {
        return s == "/chat/completions" || s == "/completions" || s == "/messages" || s == "/responses";
      };
      p->generation = gen(path) || (path.rfind("/v1/", 0) == 0 && gen(std::string_view(path).substr(3)));
    }
    ex->set_owner(p);
    ++active;
    attempt(p);
  }

  void begin_drain() {
    if (draining.exchange(true)) return;
    std::fprintf(stderr, "router: draining (%d requests in flight)\n", active.load());
    const double deadline = now_ms() + cfg.drain_timeout_ms;
    drain_timer = std::make_unique<net::steady_timer>(http->io_context());
    poll_drain(deadline);
  }

  void poll_drain(double deadline) {
    if (active.load() <= 0 || now_ms() >= deadline) {
      http->stop();
      return;
    }
    drain_timer->expires_after(std::chrono::milliseconds(20));
    drain_timer->async_wait([this, deadline](boost::system::error_code ec) {
      if (!ec) poll_drain(deadline);
    });
  }
};

Router::Router(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Router::~Router() {
  if (!impl_) return;
  impl_->health_timer.reset();
  impl_->up_guard.reset();
  impl_->up.stop();
  if (impl_->up_thread.joinable()) impl_->up_thread.join();
  impl_->client.reset();
}

Result<std::unique_ptr<Router>> Router::create(RouterConfig cfg) {
  auto impl = std::make_unique<Impl>(std::move(cfg));
  Impl& d = *impl;
  if (d.cfg.max_attempts < 1) d.cfg.max_attempts = 1;
  if (!d.cfg.tokenizer_path.empty()) {
    auto f = gguf::File::open(d.cfg.tokenizer_path);
    if (!f) return f.status();
    auto t = tok::Tokenizer::from_gguf(*f.value());
    if (!t) return t.status();
    d.tok_file = std::move(f.value());
    d.tokenizer = std::move(t.value());
  }
  if (!d.cfg.providers.empty() && (!d.cfg.workers.empty() || !d.cfg.workers_file.empty()))
    return invalid_argument("router: give workers (--worker, --workers-file) or --providers, not both");
  if (!d.cfg.providers.empty() && !d.cfg.prefill.empty())
    return invalid_argument("router: --prefill (PD mode) does not combine with --providers (gateway mode)");
  if (d.cfg.objective != "cheapest" && d.cfg.objective != "fastest" && d.cfg.objective != "balanced")
    return invalid_argument("--objective '" + d.cfg.objective + "': cheapest, fastest or balanced");
  for (const auto& e : d.cfg.providers) d.add_provider(e);
  for (const auto& w : d.cfg.workers)
    if (Status s = d.add_worker(w, false); !s) return invalid_argument("--worker " + w + ": " + s.message());
  for (const auto& w : d.cfg.prefill)
    if (Status s = d.add_worker(w, false, true); !s) return invalid_argument("--prefill " + w + ": " + s.message());
  d.sync_workers_file();
  const bool no_serving = std::none_of(d.workers.begin(), d.workers.end(), [](const auto& w) { return !w->prefill; });
  if (no_serving && d.cfg.workers_file.empty())
    return invalid_argument(d.cfg.prefill.empty()
                                ? "router: no workers (give --worker URL, --workers-file FILE or --providers FILE)"
                                : "router: PD mode needs decode workers (--decode URL or --workers-file FILE) besides "
                                  "--prefill");
  Impl* raw = impl.get();
  d.http = std::make_unique<server::HttpServer>(d.cfg.http, [raw](std::shared_ptr<server::Exchange> ex) {
    raw->handle(std::move(ex));
  });
  bench::ClientConfig cc;
  cc.user_agent = "tachyon-router";
  d.client = std::make_unique<bench::HttpClient>(d.up, cc);
  d.up_guard = std::make_unique<net::executor_work_guard<net::io_context::executor_type>>(d.up.get_executor());
  d.health_timer = std::make_unique<net::steady_timer>(d.up);
  net::post(d.up, [raw] { raw->health_tick(); });
  d.up_thread = std::thread([raw] { raw->up.run(); });
  return std::unique_ptr<Router>(new Router(std::move(impl)));
}

Status Router::listen() {
  Status s = impl_->http->listen();
  if (!s) return s;
  if (impl_->cfg.handle_signals) {
    impl_->signals = std::make_unique<net::signal_set>(impl_->http->io_context(), SIGINT, SIGTERM);
    Impl* raw = impl_.get();
    impl_->signals->async_wait([raw](boost::system::error_code ec, int) {
      if (!ec) raw->begin_drain();
    });
  }
  return s;
}

int Router::port() const { return impl_->http->port(); }

void Router::run() { impl_->http->run(); }

void Router::stop() { impl_->http->stop(); }

}  // namespace tachyon::router
