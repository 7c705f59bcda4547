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
  bool removed = false;
  bool healthy = true;
  int in_flight = 0;
  int req_failures = 0, health_failures = 0;
  double ejected_until = 0;
  int backoff_ms = 0;
  bool probing = false;  // a health check in flight
  uint64_t requests = 0, errors = 0, retries = 0, ejections = 0, readmissions = 0;
  uint64_t prompt_tokens = 0, cached_tokens = 0;
  double latency_s = 0;
  uint64_t latency_n = 0;
};

class Router::Impl {
 public:
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

  explicit Impl(RouterConfig c) : cfg(std::move(c)), selector(cfg.policy) {}

  Status add_worker(const std::string& url, bool from_file) {
    auto u = bench::Url::parse(url);
    if (!u) return u.status();
    std::lock_guard<std::mutex> lk(mu);
    for (auto& w : workers)
      if (!w->removed && w->name == url) return Status();
    auto w = std::make_shared<Worker>();
    w->id = next_id++;
    w->name = url;
    w->url = u.value();
    w->from_file = from_file;
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

  std::vector<int32_t> routing_key(const std::string& body) {
    std::vector<int32_t> key;
    ojson j = ojson::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return key;
    // completions with token ids: the ids are the key
    if (auto it = j.find("prompt"); it != j.end() && it->is_array() && !it->empty() && it->front().is_number_integer()) {
      for (const auto& v : *it)
        if (v.is_number_integer()) key.push_back(static_cast<int32_t>(v.get<int64_t>()));
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
    void on_client_gone() override { gone = true; }
  };

  void post_ex(const std::shared_ptr<Proxy>& p, std::function<void(server::Exchange&)> fn) {
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
        if (!x->removed && x->healthy &&
            std::find(p->excluded.begin(), p->excluded.end(), x->id) == p->excluded.end())
          cands.push_back({x->id, x->in_flight});
      d = selector.choose(p->key, cands);
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
    req.timeout_ms = cfg.request_timeout_ms;
    if (!p->body.empty()) req.headers.push_back({"Content-Type", "application/json"});
    if (!p->auth.empty()) req.headers.push_back({"Authorization", p->auth});
    net::post(up, [this, p, w, req = std::move(req)]() mutable {
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
    });
  }

  void eject_locked(Worker& w) {
    if (!w.healthy) return;
    w.healthy = false;
    ++w.ejections;
    w.ejected_until = now_ms() + w.backoff_ms;
    w.backoff_ms = std::min(w.backoff_ms * 2, 30000);
    std::fprintf(stderr, "router: worker %s ejected (retry in %d ms)\n", w.name.c_str(), w.backoff_ms / 2);
  }

  // Upstream thread.
  void finish(const std::shared_ptr<Proxy>& p, const bench::HttpError& err) {
    Worker& w = *p->worker;
    const bool client_error = err.kind == bench::ErrorKind::kHttpStatus && err.http_status >= 400 &&
                              err.http_status < 500 && err.http_status != 429;
    {
      std::lock_guard<std::mutex> lk(mu);
      --w.in_flight;
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
    if (client_error) {
      respond(p, err.http_status, json_error(err.http_status, err.message));
      return;
    }
    if (!p->started) {  // nothing reached the client: another worker may serve it
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
      req.target = w->url.target("/health");
      req.timeout_ms = cfg.health_timeout_ms;
      bench::StreamHandlers h;
      h.on_data = [](std::string_view, int64_t) { return true; };
      h.on_done = [this, w](const bench::HttpError& err, int64_t) {
        std::lock_guard<std::mutex> lk(mu);
        w->probing = false;
        if (err.ok()) {
          w->health_failures = 0;
          if (!w->healthy && !w->removed) {
            w->healthy = true;
            w->req_failures = 0;
            ++w->readmissions;
            std::fprintf(stderr, "router: worker %s readmitted\n", w->name.c_str());
          }
        } else if (++w->health_failures >= cfg.eject_after) {
          eject_locked(*w);
        }
      };
      client->request(w->url, std::move(req), std::move(h));
    }
    health_timer->expires_after(std::chrono::milliseconds(cfg.health_interval_ms));
    health_timer->async_wait([this](boost::system::error_code ec) {
      if (!ec) health_tick();
    });
  }

  // --- routes served by the router itself ------------------------------------------

  std::string workers_json() {
    ojson arr = ojson::array();
    std::lock_guard<std::mutex> lk(mu);
    for (auto& w : workers) {
      if (w->removed) continue;
      arr.push_back({{"url", w->name},
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
    head("tachyon_router_decisions_total", "counter", "Routing decisions by reason");
    o += "tachyon_router_decisions_total{reason=\"cache\"} " + u(decisions[0]) + "\n";
    o += "tachyon_router_decisions_total{reason=\"balance\"} " + u(decisions[1]) + "\n";
    o += "tachyon_router_decisions_total{reason=\"other\"} " + u(decisions[2]) + "\n";
    head("tachyon_router_no_worker_total", "counter", "Attempts that found no eligible worker");
    o += "tachyon_router_no_worker_total " + u(no_worker) + "\n";
    return o;
  }

  bool authorized(const server::HttpRequest& req) {
    if (cfg.api_keys.empty()) return true;
    const auto it = req.find(boost::beast::http::field::authorization);
    if (it == req.end()) return false;
    const std::string v(it->value());
    for (const auto& k : cfg.api_keys)
      if (v == "Bearer " + k) return true;
    return false;
  }

  void handle(std::shared_ptr<server::Exchange> ex) {
    const auto& req = ex->request();
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    const auto method = req.method();
    using boost::beast::http::verb;
    auto json = [&](int st, std::string body) { ex->respond(st, "application/json", std::move(body)); };
    if (path == "/health") {
      int healthy = 0;
      {
        std::lock_guard<std::mutex> lk(mu);
        for (auto& w : workers) healthy += !w->removed && w->healthy;
      }
      json(healthy > 0 && !draining ? 200 : 503,
           ojson{{"status", healthy > 0 && !draining ? "ok" : "unavailable"}, {"healthy_workers", healthy}}.dump());
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
        if (Status s = add_worker(url, false); !s) return json(400, json_error(400, s.message()));
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
    if (!models && !authorized(req)) return json(401, json_error(401, "invalid API key"));
    if (models ? method != verb::get : method != verb::post)
      return json(405, json_error(405, std::string("use ") + (models ? "GET" : "POST") + " for " + path));
    if (draining) return json(503, json_error(503, "the router is shutting down", "server_error"));
    auto p = std::make_shared<Proxy>();
    p->r = this;
    p->ex = ex;
    p->method = models ? "GET" : "POST";
    p->target = path;
    p->body = req.body();
    if (cfg.api_keys.empty())
      if (const auto it = req.find(boost::beast::http::field::authorization); it != req.end())
        p->auth = std::string(it->value());
    p->t0 = now_ms();
    if (!models) p->key = routing_key(p->body);
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
  for (const auto& w : d.cfg.workers)
    if (Status s = d.add_worker(w, false); !s) return invalid_argument("--worker " + w + ": " + s.message());
  d.sync_workers_file();
  if (d.workers.empty() && d.cfg.workers_file.empty())
    return invalid_argument("router: no workers (give --worker URL, or --workers-file FILE)");
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
