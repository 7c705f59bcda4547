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
// Gateway mode (providers instead of workers: any OpenAI-compatible endpoints, from a
// `bench compare` endpoints file): a request for model M goes to the providers whose name
// or model is M (all of them when none is), with the body's "model" set to the chosen
// provider's and its API key; the provider is the best by the objective among those whose
// live estimates meet the SLO (all of them when none does):
//   cheapest   lowest price (input + output USD per million tokens; unknown prices last),
//              then fastest;
//   fastest    lowest expected latency: EWMA TTFT + 64 x EWMA TPOT (unmeasured: 0, so a
//              new provider is tried first);
//   balanced   lowest price/best price + latency/best latency.
// Estimates: EWMA (alpha 0.2) of TTFT (first body byte), TPOT (streams: the rest over the
// chunks) and error rate (0/1 per attempt), from real traffic and, for a provider idle
// for probe_interval_ms, from a probe (a 1-token streamed chat completion). The SLO uses
// ttft_*, tpot_*, e2e_* (estimated as TTFT + 64 TPOT), error_rate and cost_per_request
// constraints on those estimates. Failover: an attempt that fails before its first byte
// goes to the next provider; a 429 also rests the provider for a second. Circuit breaking:
// after eject_after consecutive failures the circuit opens (nothing is sent) until a
// health check (GET /v1/models with the key) passes after the backoff. Per-provider
// concurrency limit: providers at it are skipped (503 when all are). Decisions: /metrics
// (tachyon_gateway_*) and, with log_decisions, one stderr line per request.
//
// PD mode (prefill/decode disaggregation; non-empty `prefill`): `workers` (and the
// workers file, and POST /workers) are decode workers, chosen by the policy as above;
// `prefill` workers (POST /workers {"url": U, "role": "prefill"} adds one) share the
// worker list, its health checks, ejection and readmission, /metrics and /workers, but
// the policy never chooses them. For a generation request (POST /v1/chat/completions,
// /v1/completions, /v1/messages, /v1/responses or an unprefixed alias) whose estimated
// prompt is at least pd_min_prompt tokens (with a tokenizer: the routing key's length;
// without: its bytes / 4; token-id prompts: their count), once per request and after
// the policy chose decode worker W:
//   a. the request (path, body, the client's Authorization) goes to the healthy prefill
//      worker with the fewest requests in flight (ties: round robin) with header
//      `X-Tachyon-KV-Export: 1`; its 200 application/octet-stream body (the prompt's KV
//      pages, possibly tens of MB) is held in memory;
//   b. the bytes are POSTed to W's /internal/kv/import (freed when that ends);
//   c. the request goes to W as without PD mode (W finds the prompt in its prefix cache).
// A failure in a or b (no healthy prefill worker, connect error, non-200, wrong content
// type, timeout: pd_timeout_ms) is a fallback: counted by reason ("prefill" or
// "import") and step c runs anyway, so W computes the prompt itself; the client never
// sees it. A prefill worker's failures (not its 4xx) count against its health like a
// request's; an import's do not (a dead W fails step c, which counts and retries as
// usual). A client that goes away during a or b ends the request there (no step c).
// Retries of step c on another worker skip a and b. Shorter prompts, other routes and a
// router without prefill workers skip a and b (counted as skipped in PD mode). Cost: the
// transfer's bytes pass through the router's memory and upstream thread once each way.
// Metrics: tachyon_router_pd_transfers_total (imports that succeeded),
// tachyon_router_pd_fallbacks_total{reason}, tachyon_router_pd_skipped_total,
// tachyon_router_pd_bytes_total (bytes of successful imports),
// tachyon_router_pd_prefill_seconds_total and tachyon_router_pd_import_seconds_total
// (wall time of every prefill and import call that ended, failed ones included). The
// per-worker metrics keep their `worker` label (a prefill worker's requests, errors,
// latency are its prefill calls); tachyon_router_worker_info{worker, role} (role
// "prefill", "decode" in PD mode, else "worker") tells the roles apart, and GET /workers
// lists each worker's "role". GET /health counts decode workers only. Gateway mode with
// prefill workers is an error at create(), as is a URL given both as prefill and decode.
//
// Threading: the HTTP server's I/O threads parse and route; one upstream thread runs the
// HTTP client (connection pools to the workers) and the health checks. Worker state is
// under one mutex.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/compare.h"
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
  // PD mode (non-empty prefill): prefill worker URLs; `workers` are then decode workers.
  std::vector<std::string> prefill;
  // Estimated prompt tokens below which prefill is skipped. Low: a prompt a decode worker
  // computes itself stalls every stream it decodes for that long (on one core of a 1B
  // model, ~8 ms per prompt token against ~35 ms per decode step), which is what PD avoids.
  int pd_min_prompt = 32;
  int pd_timeout_ms = 120000;   // per prefill and per import call (0: none)
  // Gateway mode (non-empty providers: workers must be empty). API keys already resolved.
  std::vector<bench::EndpointSpec> providers;
  std::string objective = "balanced";  // cheapest | fastest | balanced
  std::vector<bench::Constraint> slo;
  int max_concurrency = 0;              // per provider; 0 = none
  int probe_interval_ms = 10000;        // probe a provider idle this long (0: never)
  bool log_decisions = false;
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
