// Reports of a benchmark: JSON (summary + per-request records + provenance), CSV (one
// row per run, or one per request), a human summary on stdout, a self-contained HTML
// page with charts (report_html.cpp), and the progress line while a run goes.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "bench/metrics.h"
#include "bench/runner.h"

namespace tachyon::bench {

inline constexpr const char* kToolName = "tachyon-bench";
const char* tool_version();  // "0.1.0+<git rev>"

struct ReportOptions {
  std::vector<double> percentiles = {50, 90, 95, 99};
  Slo slo;
  bool include_text = false;  // put each request's output text in the JSON records
};

// An endpoint's availability over time from `bench probe` JSON files (compare
// --probe-history): every sample of that endpoint name, in time order.
struct ProbeHistory {
  int n = 0, n_ok = 0;
  int longest_failure_streak = 0;  // consecutive failed probes
  std::string first_at, last_at;   // ISO 8601 UTC
  double span_s = 0;               // first to last sample
  int n_files = 0;                 // files with samples of this endpoint
};

// One measured run: an endpoint under one load (one point of a sweep).
struct RunReport {
  EndpointSpec endpoint;
  std::string sweep_kind;  // "" | "concurrency" | "rate"
  double sweep_value = 0;
  RunResult result;
  Summary summary;
  std::vector<std::string> models_listed;  // from GET /v1/models
  double cost_usd = -1;                    // usage x prices, -1 when a price is unknown
  ProbeHistory history;                    // compare --probe-history (n == 0: none)
};

// "99.2% of 120 probes over 2.0 h" ("" without history).
std::string probe_history_text(const ProbeHistory& h);

// A leaderboard row (bench compare).
struct LeaderRow {
  std::string name;
  size_t run_index = 0;     // into Report::runs
  bool meets = true;        // meets every --recommend constraint and the availability floor
  bool below_floor = false; // excluded by the availability floor (or nothing completed)
  std::vector<std::string> violations;  // what it missed, the floor's first
  double cost_per_request = -1, cost_per_mtok_output = -1;
};

// The leaderboard's constraints cell: "ok", "excluded: <floor miss>; ..." or the misses.
std::string leader_row_status(const LeaderRow& row);

// compare: what the recommendation applied and what it picked.
struct RecommendationInfo {
  std::string objective;                 // "cheapest" | "fastest"
  std::vector<std::string> constraints;  // --recommend as written, less the floor's error_rate bounds
  std::string availability_floor;        // "error_rate<1%, no timeouts"
  std::string floor_source;              // "default" | "given" (an error_rate constraint in --recommend)
  std::string endpoint;                  // the pick; empty when none qualifies
  int n_qualifying = 0;
};

struct Report {
  std::string command;      // "run" | "compare" | "probe"
  nlohmann::json provenance;  // tool, version, host, start time, command line, workload, ...
  std::vector<RunReport> runs;
  std::vector<LeaderRow> leaderboard;  // compare only, best first
  std::string recommendation;          // compare --recommend: the pick and why
  RecommendationInfo recommended;      // compare: the same, as fields
  nlohmann::json probe;                // probe only: samples and per-endpoint summaries
  // `bench verify` results (compare/run --reference, or the verify command itself): one
  // object per endpoint, {"endpoint": label, ...verify JSON} or {"endpoint", "error"}.
  nlohmann::json verify = nlohmann::json::array();
};

// The verify cell of an endpoint: "code-tiny-Q8_0.gguf", "none", "error", "" (not verified).
std::string verify_cell(const Report& rep, const std::string& endpoint_label);

// Fills the common provenance fields (tool, version, client host, start time).
nlohmann::json base_provenance(const std::string& command_line);

void compute_cost(RunReport& r);
nlohmann::json summary_to_json(const Summary& s, const ReportOptions& o);
nlohmann::json record_to_json(const RequestRecord& r, int64_t origin_us, const ReportOptions& o);
nlohmann::json report_to_json(const Report& rep, const ReportOptions& o);

Status write_json(const std::string& path, const Report& rep, const ReportOptions& o);
Status write_csv(const std::string& path, const Report& rep, const ReportOptions& o);           // one row per run
Status write_requests_csv(const std::string& path, const Report& rep, const ReportOptions& o);  // one row per request
Status write_html(const std::string& path, const Report& rep, const ReportOptions& o);
std::string render_html(const Report& rep, const ReportOptions& o);

// The human summary: one block per run, or a table per endpoint for sweeps, and the
// leaderboard for compare.
std::string summary_text(const Report& rep, const ReportOptions& o);

// Progress while a run goes, on `out`: a redrawn bar when out is a terminal, else a
// plain line every 10% (or 10 s when the total is unknown).
class ProgressPrinter {
 public:
  ProgressPrinter(FILE* out, bool tty, std::string label);
  void update(const Progress& p);
  void done();  // ends the bar's line

 private:
  FILE* out_;
  bool tty_;
  std::string label_;
  int last_decile_ = -1;
  double last_print_s_ = -1;
  bool drawn_ = false;
  bool last_warmup_ = false;
};

Status write_file(const std::string& path, const std::string& data);

}  // namespace tachyon::bench
