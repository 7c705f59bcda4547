// Many endpoints, one table: the endpoints file, the leaderboard with --recommend
// constraints and --objective, and `bench probe` (availability and latency over time).
//
// Endpoints file: a TOML subset
//     [[endpoint]]                      # one table per endpoint ([[endpoints]] also accepted)
//     name = "local"
//     url = "http://127.0.0.1:8080"
//     model = "mini-qwen2"
//     api_key_env = "MY_KEY"            # optional: the environment variable with the key
//     api = "chat"                      # optional: chat | completions
//     insecure = true                   # optional, https: accept any certificate
//     ca_file = "corp-ca.pem"           # optional, https: extra trusted CA certificates (PEM)
//     price_input_per_m = 0.15          # optional: USD per million input tokens
//     price_output_per_m = 0.60         # optional: USD per million output tokens
// (strings in "..." or '...', numbers, true/false, # comments), or JSON: an array of such
// objects or {"endpoints": [...]}.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "bench/report.h"
#include "bench/runner.h"

namespace tachyon::bench {

// Parses the file's text (path only for messages). api_key is left empty: apps/ resolves
// api_key_env (no environment reads below apps/).
Result<std::vector<EndpointSpec>> parse_endpoints(const std::string& text, const std::string& path);

// "ttft_p90<800ms,error_rate<1%,output_throughput>=50". Metrics: ttft|tpot|itl|e2e with
// _mean or _pNN (a percentile that was computed), error_rate, request_throughput,
// output_throughput, goodput, cost_per_request, cost_per_mtok (USD per million output
// tokens), availability (the fraction of successful probes in --probe-history; unknown
// without history, so the constraint is then missed).
struct Constraint {
  std::string metric;
  bool less = true;  // '<' / '<=' ; else '>' / '>='
  bool or_equal = false;
  double value = 0;  // ms for latencies, fraction for error_rate, plain otherwise
  std::string text;  // as written
};
Result<std::vector<Constraint>> parse_constraints(const std::string& s);

enum class Objective { kCheapest, kFastest };
Result<Objective> parse_objective(const std::string& s);

// The value of a metric for a run; NaN when unknown (e.g. no price, no such percentile).
double metric_value(const RunReport& r, const std::string& metric);

// The availability floor every leaderboard applies on top of the constraints: an endpoint
// that is cheap or fast because it fails requests is no recommendation. By default
// error_rate<1% and no timeouts (timeouts count as errors, but one in a few hundred hides
// under 1% and says the endpoint can hang). Error_rate constraints in --recommend replace
// the default in full (so error_rate<60% admits an endpoint that fails half its requests,
// timeouts included), and the recommendation says the floor was given.
struct AvailabilityFloor {
  std::vector<Constraint> error_rate;  // bounds on error_rate, all must hold
  bool no_timeouts = true;             // default floor only
  bool given = false;                  // from the constraints, else the default
  std::string text;                    // "error_rate<1%, no timeouts" / "error_rate<60%"
};
AvailabilityFloor availability_floor(const std::vector<Constraint>& constraints);

// Fills rep.leaderboard (one row per run: first, best first by the objective, those that
// meet every constraint and the availability floor; then those above the floor that miss
// a constraint; then those below the floor, each with what it missed), rep.recommendation
// (the pick and why, the floor applied, and why the others were rejected or excluded) and
// rep.recommended. Cheapest: lowest cost per request (endpoints without prices rank after
// priced ones); fastest: lowest E2E p50 (ties: higher output throughput).
void build_leaderboard(Report& rep, const std::vector<Constraint>& constraints, Objective objective);

// Reads one `bench probe --output-json` file (the report, or just its "probe" object) and
// adds its samples to *into, per endpoint name; histories of several files merge.
Status read_probe_history(const std::string& text, const std::string& path, std::map<std::string, ProbeHistory>* into);

struct ProbeConfig {
  std::vector<EndpointSpec> endpoints;
  double every_ms = 60'000;
  double duration_ms = 3'600'000;
  int max_tokens = 16;
  double timeout_ms = 30'000;
};

struct ProbeSample {
  std::string endpoint;
  std::string at;  // ISO 8601 UTC
  double t_s = 0;  // since the probe started
  bool ok = false;
  std::string error;  // error kind and message
  double ttft_ms = -1, e2e_ms = -1, tpot_ms = -1;
  int output_tokens = 0;
};

// Sends one small streaming request to each endpoint every every_ms until duration_ms
// passed; on_sample is called after each. Returns per-endpoint summaries (availability %,
// TTFT and E2E percentiles, longest failure streak) and every sample as JSON.
nlohmann::json run_probe(const ProbeConfig& cfg, const std::function<void(const ProbeSample&)>& on_sample,
                         const std::vector<double>& percentiles);

}  // namespace tachyon::bench
