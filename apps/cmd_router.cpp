// tachyon router --worker URL [--worker URL ...] [--workers-file FILE] [--host 127.0.0.1]
//   [--port 8080] [--policy cache_aware|least_load|round_robin] [--api-key KEY ...]
//   [--tokenizer FILE.gguf] [--cache-threshold F] [--balance-abs N] [--balance-rel F]
//   [--health-interval MS] [--eject-after N] [--max-attempts N] [--io-threads N]
// An OpenAI-compatible front over `tachyon serve` workers (router/router.h). Prints
// "listening on http://HOST:PORT" on stderr once it accepts connections; SIGINT/SIGTERM
// drain the requests in flight, then exit.
#include <CLI/CLI.hpp>
#include <cstdio>

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
  app.add_option("--io-threads", io_threads, "HTTP I/O threads")->check(CLI::Range(1, 64))->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!router::parse_policy(policy, &rc.policy.policy)) {
    std::fprintf(stderr, "error: --policy: '%s' (cache_aware, least_load or round_robin)\n", policy.c_str());
    return 2;
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
  std::fprintf(stderr, "router: %zu workers, policy %s\n", rc.workers.size(), policy.c_str());
  const bool v6 = host.find(':') != std::string::npos;
  std::fprintf(stderr, "listening on http://%s%s%s:%d\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "",
               r.value()->port());
  std::fflush(stderr);
  r.value()->run();
  std::fprintf(stderr, "router stopped\n");
  return 0;
}

}  // namespace tachyon::apps
