// `tachyon bench run` and `tachyon bench compare` as one library call: preflight each
// endpoint (GET /v1/models), run warm-up and the measured load (or each sweep point),
// summarize, rank (compare), and write the requested report files. apps/cmd_bench.cpp
// only turns flags into a BenchConfig.
#pragma once
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/compare.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "bench/workload.h"

namespace tachyon::bench {

struct BenchConfig {
  std::string command = "run";  // run | compare
  std::string command_line;     // for provenance
  std::vector<EndpointSpec> endpoints;  // api_key already resolved by the caller
  RunConfig run;                        // endpoint is set per endpoint
  WorkloadConfig workload;
  std::string tokenizer_path;  // GGUF file whose vocabulary sizes the prompts ("" = word approximation)
  std::optional<SweepSpec> sweep;
  ReportOptions report;
  std::string output_json, output_csv, output_requests_csv, output_html;
  bool check_models = true;  // preflight GET /v1/models
  std::vector<Constraint> recommend;
  Objective objective = Objective::kCheapest;
  // compare --probe-history: `bench probe --output-json` files; their samples join the
  // leaderboard per endpoint name (availability over time, the `availability` metric).
  std::vector<std::string> probe_history;
  // --reference: after the load, called once per endpoint; returns bench verify's JSON
  // for it (or {"error": ...}). apps/ wires it to bench verify (the engine stays out of
  // tachyon_bench).
  std::function<nlohmann::json(const EndpointSpec&)> verify;
  FILE* progress_out = nullptr;  // nullptr: no progress display
  bool progress_tty = false;
  std::function<void(const std::string&)> log;  // notes and warnings (may be empty)
};

// Errors: bad configuration (kInvalidArgument / kNotFound / kCorrupt: tokenizer file,
// dataset, workload), an unreachable or non-HTTP endpoint in `run` (kInternal), report
// files that cannot be written (kIo). Endpoint failures during the load are in the report.
Result<Report> run_bench(const BenchConfig& cfg);

// run: every run (each sweep point) completed at least one request and none aborted.
// compare: at least one endpoint did (the failed ones are in the leaderboard).
bool report_succeeded(const Report& rep);

}  // namespace tachyon::bench
