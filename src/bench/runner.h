// The load generator: arrival processes over an HttpClient, one io_context on the
// calling thread (so every record is written by one thread, without locks).
//
//  closed loop (--concurrency C): C sessions in flight; each finished request starts the
//    session's next turn, or the next session.
//  open loop (--rate R): session starts arrive as a Poisson process of rate R per second
//    (gamma-distributed gaps with shape = burstiness: 1 is Poisson, < 1 burstier, > 1
//    more regular; rate = inf sends everything at once); a concurrency > 0 caps the
//    requests in flight (arrivals over the cap wait, and their t0 is when they are sent).
//  A session's next turn is sent when its previous turn completed, with the history
//  (user and assistant messages) re-sent; a failed turn ends its session.
//
// A run stops issuing when num_requests were sent or duration_s passed, whichever comes
// first, then waits for the requests in flight (bounded by the per-request timeout).
// Warm-up requests (a separate, differently seeded workload) run to completion before
// the measured window opens and are kept apart.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/http_client.h"
#include "bench/openai_stream.h"
#include "bench/record.h"
#include "bench/workload.h"

namespace tachyon::bench {

struct EndpointSpec {
  std::string name;  // label in reports ("" -> host:port)
  Url url;
  std::string model;
  std::string api_key;      // sent as "Authorization: Bearer ..." when non-empty; never reported
  std::string api_key_env;  // where it came from (reported)
  Api api = Api::kChat;
  TlsConfig tls;  // https only: certificate checks (--insecure, --ca-file)
  double price_input_per_m = -1, price_output_per_m = -1;  // USD per million tokens, -1 unknown
  std::string label() const { return name.empty() ? url.host_port() : name; }
};

struct LoadSpec {
  bool open_loop = false;
  int concurrency = 1;    // closed: sessions in flight; open: cap on requests in flight (0 none)
  double rate = 0;        // open loop: session arrivals per second (inf allowed)
  double burstiness = 1;  // gamma shape of the inter-arrival gaps
  std::string describe() const;
  nlohmann::json to_json() const;
};

struct RunConfig {
  EndpointSpec endpoint;
  RequestOptions request;  // api and model are taken from endpoint
  LoadSpec load;
  int num_requests = 100;   // measured requests; 0 = unbounded (then duration_s must be set)
  double duration_s = 0;    // 0 = no time bound
  int warmup = 0;           // warm-up requests before the measured window
  double timeout_ms = 300'000;
  // Stop after 3 failures that point at the endpoint or config (connect, protocol, not
  // OpenAI, HTTP 4xx/5xx other than 408/429/502-504) before any success.
  bool fail_fast = true;
  ClientConfig client;  // its tls is ignored: endpoint.tls applies
};

struct Progress {
  bool warmup = false;
  int n_done = 0, n_failed = 0, n_total = -1;  // n_total -1: bounded by time only
  int n_in_flight = 0;
  int64_t n_output_chunks = 0;
  double elapsed_s = 0, duration_s = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct RunResult {
  LoadSpec load;
  uint64_t seed = 0;
  std::string started_at;       // ISO 8601 UTC of the measured window's start
  int64_t t_start_us = 0;       // steady clock: measured window [first send, last end]
  int64_t t_end_us = 0;
  std::vector<RequestRecord> records;         // measured
  std::vector<RequestRecord> warmup_records;  // excluded from every figure
  ClientStats client;
  int max_in_flight = 0;
  bool aborted = false;
  std::string abort_reason;
};

// Runs warm-up then the measured phase. Records are finalized (finalize_tokens) with
// `tokenizer` (may be null) after the phase ended, off the timing path. Errors only for
// an invalid config; endpoint failures are in the records (and abort_reason).
Result<RunResult> run_load(const RunConfig& cfg, Workload& workload, Workload* warmup_workload,
                           const tok::Tokenizer* tokenizer, const ProgressFn& progress);

// GET {base}/v1/models: the model ids the endpoint serves. Fails with a clear message
// when the endpoint is unreachable or does not answer HTTP; an HTTP error status
// (some servers have no /v1/models) gives an empty list and *warning.
Result<std::vector<std::string>> fetch_models(const EndpointSpec& ep, double timeout_ms, std::string* warning);

// Parses "concurrency=1,2,4" or "rate=0.5,1,inf" into a kind and values.
struct SweepSpec {
  std::string kind;  // "concurrency" | "rate"
  std::vector<double> values;
};
Result<SweepSpec> parse_sweep(const std::string& s);

std::string iso8601_utc_now();

}  // namespace tachyon::bench
