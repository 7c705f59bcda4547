// The expert cache's figures (--mem-budget) as `run` and `perf` print them.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "app_util.h"
#include "model/expert_cache.h"
#include "model/model.h"

namespace tachyon::apps {

// --mem-budget SIZE and --no-expert-prefetch of run, perf and logits.
struct MemBudgetFlags {
  std::string size;
  bool no_prefetch = false;
  void add(CLI::App& app) {
    app.add_option("--mem-budget", size, kMemBudgetHelp);
    app.add_flag("--no-expert-prefetch", no_prefetch, "--mem-budget: do not predict and prefetch experts");
  }
  // After parsing: the load options they ask for.
  Result<model::LoadOptions> load_options() const {
    model::LoadOptions lo;
    lo.expert_prefetch = !no_prefetch;
    if (!size.empty()) {
      auto bytes = parse_size("--mem-budget", size);
      if (!bytes) return bytes.status();
      lo.mem_budget = bytes.value();
    }
    return lo;
  }
};

// The process's peak resident memory (VmHWM), 0 where /proc is not there.
inline uint64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

inline nlohmann::json expert_stats_json(const model::ExpertCacheStats& s) {
  return {{"budget_bytes", s.budget_bytes},       {"allocated_bytes", s.allocated_bytes},
          {"expert_bytes", s.expert_bytes},       {"expert_file_bytes", s.expert_file_bytes},
          {"units", s.units}, {"slots", s.slots}, {"stages", s.stages},
          {"resident_units", s.resident_units},   {"lookups", s.lookups},
          {"hits", s.hits},                       {"prefetch_hits", s.prefetch_hits},
          {"misses", s.misses},                   {"hit_rate", s.hit_rate()},
          {"bytes_read", s.bytes_read},           {"units_read", s.units_read},
          {"prefetch_issued", s.prefetch_issued}, {"prefetch_used", s.prefetch_used},
          {"prefetch_dropped", s.prefetch_dropped}, {"evictions", s.evictions},
          {"repacks", s.repacks},
          {"read_s", s.read_s},                   {"pack_s", s.pack_s},
          {"wait_s", s.wait_s},
          {"direct_io", s.direct_io}};
}

// One line: budget, hit rate, bytes read (per token when tokens > 0), prefetch accuracy.
inline std::string expert_stats_line(const model::ExpertCacheStats& s, double tokens) {
  char buf[512];
  const double mib = 1048576.0;
  std::snprintf(buf, sizeof buf,
                "experts: budget %.1f MiB of %.1f MiB (%.0f%%) | hit rate %.1f%% (%llu cached, %llu prefetched, %llu "
                "read on demand) | read %.1f MiB%s%.2f MiB/token, %.0f MiB/s in pread | prefetch %llu issued, %.0f%% "
                "used | waited %.2f s (pread %.2f s, repack %.2f s over all threads)",
                s.budget_bytes / mib, s.expert_bytes / mib,
                s.expert_bytes ? 100.0 * s.budget_bytes / s.expert_bytes : 0.0, 100.0 * s.hit_rate(),
                static_cast<unsigned long long>(s.hits), static_cast<unsigned long long>(s.prefetch_hits),
                static_cast<unsigned long long>(s.misses), s.bytes_read / mib, s.direct_io ? " (O_DIRECT), " : ", ",
                tokens > 0 ? s.bytes_read / mib / tokens : 0.0, s.read_s > 0 ? s.bytes_read / mib / s.read_s : 0.0,
                static_cast<unsigned long long>(s.prefetch_issued),
                s.prefetch_issued ? 100.0 * s.prefetch_used / s.prefetch_issued : 0.0, s.wait_s, s.read_s, s.pack_s);
  return buf;
}

}  // namespace tachyon::apps
