// tachyon router --worker URL [--worker URL ...] [--workers-file FILE] [--host 127.0.0.1]
//   [--port 8080] [--policy cache_aware|least_load|round_robin] [--api-key KEY ...]
//   [--tokenizer FILE.gguf] [--cache-threshold F] [--balance-abs N] [--balance-rel F]
//   [--health-interval MS] [--eject-after N] [--max-attempts N] [--io-threads N]
// tachyon router --prefill URL [--prefill URL ...] --decode URL [--decode URL ...]
//   [--pd-min-prompt 32] [--pd-timeout MS] [options above]
//                                        (PD mode: prefill workers hand the prompt's KV
//                                        pages to the decode worker; --decode = --worker)
// tachyon router --providers FILE.toml [--objective cheapest|fastest|balanced]
//   [--slo "ttft_p90<800ms,error_rate<5%"] [--max-concurrency N] [--probe-interval MS]
//   [--log-decisions]                    (gateway mode: any OpenAI-compatible endpoints)
// An OpenAI-compatible front over `tachyon serve` workers (router/router.h). Prints
// "listening on http://HOST:PORT" on stderr once it accepts connections; SIGINT/SIGTERM
// drain the requests in flight, then exit.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "router/router.h"

namespace tachyon::apps {

int cmd_router(int argc, char** argv) {
  CLI::App app{"route OpenAI API requests over tachyon serve workers", "tachyon router"};
  router::RouterConfig rc;
  std::string policy = "cache_aware";
  int port = 8080, io_threads = 2;
  std::string host = "127.0.0.1";
  app.add_option("--worker", rc.workers, "worker base URL, e.g. http://127.0.0.1:8081 (repeatable)");
  std::vector<std::string> decode;
  app.add_option("--decode", decode, "PD mode: decode worker base URL (repeatable; the same as --worker)");
  app.add_option("--prefill", rc.prefill,
                 "PD mode: prefill worker base URL (`tachyon serve --role prefill`; repeatable)");
  app.add_option("--pd-min-prompt", rc.pd_min_prompt,
                 "PD mode: estimated prompt tokens below which a request goes straight to decode")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  app.add_option("--pd-timeout", rc.pd_timeout_ms, "PD mode: ms per prefill and per import call (0: none)")
      ->check(CLI::Range(0, 1 << 30))
      ->capture_default_str();
  app.add_option("--workers-file", rc.workers_file, "file of worker URLs, one per line, watched for changes");
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "TCP port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--policy", policy, "cache_aware | least_load | round_robin")->capture_default_str();
  app.add_option("--api-key", rc.api_keys, "accepted API key (Authorization: Bearer KEY); repeatable");
  app.add_option("--tokenizer", rc.tokenizer_path,
                 "GGUF file whose tokenizer makes the routing keys (default: the prompt's text)");
  app.add_option("--cache-threshold", rc.policy.cache_threshold,
                 "cache_aware: share of the prompt a worker must hold to get it by cache")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--balance-abs", rc.policy.balance_abs, "cache_aware: load imbalance (max - min in flight) ...")
      ->capture_default_str();
  app.add_option("--balance-rel", rc.policy.balance_rel, "... and ratio (max / min) beyond which the least loaded wins")
      ->capture_default_str();
  app.add_option("--health-interval", rc.health_interval_ms, "ms between health checks")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  app.add_option("--eject-after", rc.eject_after, "consecutive failures that eject a worker")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--max-attempts", rc.max_attempts, "workers tried per request before its first byte")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--request-timeout", rc.request_timeout_ms, "ms per upstream request (0: none)")->capture_default_str();
  std::string providers, slo;
  app.add_option("--providers", providers,
                 "gateway mode: endpoints file of `tachyon bench compare` (name, url, model, api_key_env, prices)");
  app.add_option("--objective", rc.objective, "gateway: cheapest | fastest | balanced")->capture_default_str();
  app.add_option("--slo", slo, "gateway: constraints on live estimates, e.g. \"ttft_p90<800ms,error_rate<5%\"");
  app.add_option("--max-concurrency", rc.max_concurrency, "gateway: requests in flight per provider (0: no limit)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--probe-interval", rc.probe_interval_ms, "gateway: probe a provider idle this many ms (0: never)")
      ->capture_default_str();
  app.add_flag("--log-decisions", rc.log_decisions, "gateway: one stderr line per routing decision");
  app.add_option("--io-threads", io_threads, "HTTP I/O threads")->check(CLI::Range(1, 64))->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  rc.workers.insert(rc.workers.end(), decode.begin(), decode.end());
  if (!router::parse_policy(policy, &rc.policy.policy)) {
    std::fprintf(stderr, "error: --policy: '%s' (cache_aware, least_load or round_robin)\n", policy.c_str());
    return 2;
  }
  if (!providers.empty()) {
    std::ifstream f(providers);
    if (!f) {
      std::fprintf(stderr, "error: --providers: cannot read %s\n", providers.c_str());
      return 1;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    auto eps = bench::parse_endpoints(ss.str(), providers);
    if (!eps) {
      std::fprintf(stderr, "error: %s\n", eps.status().message().c_str());
      return 1;
    }
    for (auto& e : eps.value()) {
      if (!e.api_key_env.empty()) {
        const char* k = std::getenv(e.api_key_env.c_str());
        if (!k || !*k) {
          std::fprintf(stderr, "error: %s: environment variable %s (the API key) is not set\n", e.label().c_str(),
                       e.api_key_env.c_str());
          return 1;
        }
        e.api_key = k;
      }
    }
    rc.providers = std::move(eps.value());
  }
  if (!slo.empty()) {
    auto c = bench::parse_constraints(slo);
    if (!c) {
      std::fprintf(stderr, "error: --slo: %s\n", c.status().message().c_str());
      return 1;
    }
    rc.slo = std::move(c.value());
  }
  rc.http.host = host;
  rc.http.port = port;
  rc.http.n_io_threads = io_threads;
  rc.http.idle_timeout_ms = 120'000;
  auto r = router::Router::create(rc);
  if (!r) {
    std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
    return 1;
  }
  if (Status s = r.value()->listen(); !s) {
    std::fprintf(stderr, "error: %s\n", s.message().c_str());
    return 1;
  }
  if (!rc.prefill.empty())
    std::fprintf(stderr, "router: PD mode, %zu decode + %zu prefill workers, policy %s, prefill from %d prompt tokens\n",
                 rc.workers.size(), rc.prefill.size(), policy.c_str(), rc.pd_min_prompt);
  else if (rc.providers.empty())
    std::fprintf(stderr, "router: %zu workers, policy %s\n", rc.workers.size(), policy.c_str());
  else
    std::fprintf(stderr, "gateway: %zu providers, objective %s%s%s\n", rc.providers.size(), rc.objective.c_str(),
                 slo.empty() ? "" : ", SLO ", slo.c_str());
  const bool v6 = host.find(':') != std::string::npos;
  std::fprintf(stderr, "listening on http://%s%s%s:%d\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "",
               r.value()->port());
  std::fflush(stderr);
  r.value()->run();
  std::fprintf(stderr, "router stopped\n");
  return 0;
}

}  // namespace tachyon::apps
