// Prometheus metrics for /metrics: HTTP responses by status code (counted here), engine
// counters and gauges (from engine::EngineStats), and TTFT / inter-token latency
// histograms fed with the engine's latency samples. Every name starts with tachyon_.
//
// Thread safety: every method may be called from any thread.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace tachyon::server {

// A cumulative Prometheus histogram (not thread-safe by itself).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);  // ascending; +Inf is implicit
  void observe(double v);
  // Appends # HELP / # TYPE and the _bucket{le=...}, _sum and _count lines.
  void render(std::string* out, std::string_view name, std::string_view help) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // [bounds_.size() + 1], per bucket (not cumulative); last: +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Server-side gauges that the engine does not know.
struct ServerGauges {
  int open_connections = 0;
  int active_requests = 0;  // OpenAI requests being generated (streams included)
};

class ServerMetrics {
 public:
  ServerMetrics();
  void record_status(int status);
  // Moves the engine's TTFT / ITL samples (ms) into the histograms.
  void absorb_latencies(const engine::EngineStats& s);
  // The whole exposition text (text/plain; version=0.0.4).
  std::string render(const engine::EngineStats& s, const ServerGauges& g) const;
  uint64_t requests_with_status(int status) const;

 private:
  mutable std::mutex mu_;
  std::map<int, uint64_t> by_status_;
  Histogram ttft_s_, itl_s_;
};

}  // namespace tachyon::server
