// `tachyon router`: an OpenAI-compatible front over `tachyon serve` workers (or any
// OpenAI-compatible endpoints).
//
// Requests: every POST under /v1 (and the unprefixed aliases) is forwarded to one worker
// chosen by the policy (router/policy.h) from the request's prompt (token ids with a
// tokenizer, else its text: tools, system, messages, prompt, input, in order); the
// response is passed through as it arrives (SSE streams chunk by chunk), with the
// worker's status. GET /v1/models goes to any healthy worker. The router answers GET
// /health (200 while a worker is healthy, else 503), GET /metrics (Prometheus, per
// worker: requests, errors, retries, ejections, in flight, health, prompt and cached
// tokens the workers reported, latency) and the admin routes GET /workers, POST /workers
// {"url": U}, DELETE /workers {"url": U} (or ?url=U).
//
// Failures: a request that fails before the first response byte (connection refused or
// lost, timeout, 5xx, 429) is retried on another worker, up to max_attempts workers; once
// bytes went to the client nothing is retried: a stream ends with an SSE error event, a
// buffered response with 502. A worker is ejected after eject_after consecutive
// failures (requests or health checks) and readmitted when a health check passes after a
// backoff (readmit_ms, doubling while it keeps failing, reset by a success). A 4xx is the
// client's fault: passed through, no retry, no health penalty.
//
// Workers: from the command line, POST /workers, and workers_file (one URL per line, '#'
// comments; polled each health interval: added lines join, removed lines leave once
// their requests finished). SIGINT/SIGTERM drain: new requests get 503, the router exits
// when the requests in flight have finished (or after drain_timeout_ms).
//
// Threading: the HTTP server's I/O threads parse and route; one upstream thread runs the
// HTTP client (connection pools to the workers) and the health checks. Worker state is
// under one mutex.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "router/policy.h"
#include "server/http.h"

namespace tachyon::router {

struct RouterConfig {
  server::HttpConfig http;
  std::vector<std::string> workers;
  std::string workers_file;           // "" = none
  PolicyConfig policy;
  std::vector<std::string> api_keys;  // empty: no authentication
  std::string tokenizer_path;         // GGUF file whose tokenizer makes the routing keys; "" = text
  int health_interval_ms = 1000;
  int health_timeout_ms = 2000;
  int eject_after = 3;
  int readmit_ms = 1000;              // first backoff; doubles up to 30 s
  int request_timeout_ms = 0;         // 0 = none (long generations)
  int max_attempts = 3;
  int drain_timeout_ms = 30000;
  bool handle_signals = true;
};

class Router {
 public:
  static Result<std::unique_ptr<Router>> create(RouterConfig cfg);
  ~Router();
  Status listen();
  int port() const;
  // Serves until stop() or a drained SIGINT/SIGTERM.
  void run();
  void stop();

  class Impl;

 private:
  explicit Router(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tachyon::router
