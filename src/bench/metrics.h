// Metrics exactly as ../shared/docs/BENCH-METRICS.md defines them, computed from
// RequestRecords (after finalize_tokens). Pure functions: no I/O, no clocks.
//
//   TTFT = t1 - t0            t1: first token-bearing chunk, t0: send time
//   E2E  = t_last - t0        t_last: last token-bearing chunk (not usage / [DONE])
//   TPOT = (E2E - TTFT) / (N - 1), N >= 2
//   ITL  = gaps between consecutive token-bearing chunks; a chunk of k tokens
//          contributes gap / k, k times
//   throughputs and goodput over the measured window [first send, last end]
//   percentiles over completed requests, linear interpolation between closest ranks
//   (numpy's default); failures counted by kind, apart.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/record.h"

namespace tachyon::bench {

// Service-level objectives; < 0 = not set. A request meets the SLOs when it completed and
// every set bound holds (TPOT is not defined for N < 2 and then counts as met).
struct Slo {
  double ttft_ms = -1, tpot_ms = -1, e2e_ms = -1, itl_ms = -1;  // itl: the request's max ITL
  bool any() const { return ttft_ms >= 0 || tpot_ms >= 0 || e2e_ms >= 0 || itl_ms >= 0; }
};
// "ttft=500ms,tpot=50ms,e2e=10s,itl=100ms" (units ms or s; bare numbers are ms).
Result<Slo> parse_slo(const std::string& s);
std::string slo_to_string(const Slo& s);
// "500ms", "1.5s", "250" (ms) -> milliseconds. Also "1m", "1h" (for --every/--duration).
Result<double> parse_duration_ms(const std::string& s);

struct RequestMetrics {
  bool completed = false;
  int n_output_tokens = 0;
  double ttft_ms = -1, e2e_ms = -1, tpot_ms = -1;  // -1 = undefined
  std::vector<double> itl_ms;                       // N - k1 values (chunk-aware)
  // TTFT split from the server's timings (-1 without them):
  double queue_ms = -1, prefill_ms = -1, network_ms = -1;
  bool met_slo = false;
};
RequestMetrics request_metrics(const RequestRecord& r, const Slo& slo);

struct Distribution {
  size_t n = 0;
  double mean = 0, stddev = 0, min = 0, max = 0;
  std::vector<std::pair<double, double>> percentiles;  // (p, value), p in [0, 100]; NaN when n == 0
  double at(double p) const;  // the stored value for p; NaN if p was not requested
};
// Sorts v in place. Empty v gives n = 0, zero moments and NaN percentiles.
Distribution distribution(std::vector<double>& v, const std::vector<double>& ps);
double percentile_sorted(const std::vector<double>& sorted, double p);

struct Summary {
  int n_requests = 0;   // measured requests sent
  int n_completed = 0;
  int n_failed = 0;
  int n_timeouts = 0;
  std::map<std::string, int> errors;  // kind ("timeout", "http_503", "connect", ...) -> count
  std::map<std::string, std::string> error_examples;  // kind -> first message
  double window_s = 0;
  int64_t total_input_tokens = 0;   // server usage.prompt_tokens over completed (client count where absent)
  int64_t total_output_tokens = 0;  // N over completed
  int64_t total_cached_tokens = 0;  // usage prompt_tokens_details.cached_tokens
  double request_throughput = 0;    // completed / window
  double output_throughput = 0;     // tokens / s
  double total_token_throughput = 0;
  int n_good = 0;
  double goodput = 0;  // requests/s meeting every SLO (0 when no SLO was given)
  Distribution ttft, tpot, itl, e2e, queue, prefill, network;
  // Token-count cross-checks (completed requests).
  int n_usage_missing = 0;       // no usage.completion_tokens: N is the client's count
  int n_token_mismatch = 0;      // usage.completion_tokens != client count
  int max_token_mismatch = 0;    // largest |difference|
  std::string token_source;      // how client counts were made (most common)
  int n_timings = 0;             // completed requests with server timings
  std::vector<std::string> served_models;
};

Summary summarize(const std::vector<RequestRecord>& measured, const Slo& slo, const std::vector<double>& ps);
std::string error_key(const RequestRecord& r);  // "http_503", "timeout", ...

}  // namespace tachyon::bench
