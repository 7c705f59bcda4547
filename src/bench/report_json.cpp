// JSON and CSV reports.
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "bench/report.h"

#ifndef TACHYON_GIT_REV
#define TACHYON_GIT_REV "unknown"
#endif

namespace tachyon::bench {

using json = nlohmann::json;

const char* tool_version() { return "0.1.0+" TACHYON_GIT_REV; }

Status write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return Status(ErrorCode::kIo, path + ": cannot open for writing");
  f << data;
  f.close();
  if (!f) return Status(ErrorCode::kIo, path + ": write failed");
  return Status::ok();
}

json base_provenance(const std::string& command_line) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  return {{"tool", kToolName},
          {"version", tool_version()},
          {"client_host", host},
          {"started_at", iso8601_utc_now()},
          {"command_line", command_line}};
}

void compute_cost(RunReport& r) {
  const auto& e = r.endpoint;
  if (e.price_input_per_m < 0 || e.price_output_per_m < 0) return;
  r.cost_usd = (r.summary.total_input_tokens * e.price_input_per_m + r.summary.total_output_tokens * e.price_output_per_m) / 1e6;
}

namespace {

// NaN/inf are not JSON: null.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json dist_json(const Distribution& d) {
  json j = {{"n", d.n}, {"mean", num(d.mean)}, {"stddev", num(d.stddev)}, {"min", num(d.min)}, {"max", num(d.max)}};
  for (const auto& [p, v] : d.percentiles) {
    std::ostringstream k;
    k << "p" << p;
    j[k.str()] = d.n ? num(v) : json(nullptr);
  }
  return j;
}

}  // namespace

json summary_to_json(const Summary& s, const ReportOptions& o) {
  json j = {{"requests", s.n_requests},
            {"completed", s.n_completed},
            {"failed", s.n_failed},
            {"timeouts", s.n_timeouts},
            {"errors", s.errors},
            {"error_examples", s.error_examples},
            {"window_s", s.window_s},
            {"request_throughput", s.request_throughput},
            {"output_throughput", s.output_throughput},
            {"total_token_throughput", s.total_token_throughput},
            {"total_input_tokens", s.total_input_tokens},
            {"total_output_tokens", s.total_output_tokens},
            {"total_cached_tokens", s.total_cached_tokens},
            {"ttft_ms", dist_json(s.ttft)},
            {"tpot_ms", dist_json(s.tpot)},
            {"itl_ms", dist_json(s.itl)},
            {"e2e_ms", dist_json(s.e2e)},
            {"token_counts",
             {{"source", s.token_source},
              {"usage_missing", s.n_usage_missing},
              {"mismatched", s.n_token_mismatch},
              {"max_mismatch", s.max_token_mismatch}}},
            {"served_models", s.served_models}};
  if (o.slo.any()) {
    j["slo"] = slo_to_string(o.slo);
    j["good_requests"] = s.n_good;
    j["goodput"] = s.goodput;
  }
  if (s.n_timings > 0)
    j["ttft_breakdown_ms"] = {{"requests_with_timings", s.n_timings},
                              {"queue", dist_json(s.queue)},
                              {"prefill", dist_json(s.prefill)},
                              {"network_and_other", dist_json(s.network)}};
  return j;
}

json record_to_json(const RequestRecord& r, int64_t origin_us, const ReportOptions& o) {
  const RequestMetrics m = request_metrics(r, o.slo);
  json chunk_ms = json::array(), chunk_tokens = json::array();
  for (const auto& c : r.chunks) {
    chunk_ms.push_back(std::round((c.t_us - r.t_send_us) / 10.0) / 100.0);
    chunk_tokens.push_back(c.n_tokens);
  }
  json j = {{"index", r.index},
            {"session", r.session},
            {"turn", r.turn},
            {"status", r.ok() ? "ok" : error_key(r)},
            {"send_ms", (r.t_send_us - origin_us) / 1e3},
            {"end_ms", (r.t_end_us - origin_us) / 1e3},
            {"ttft_ms", m.ttft_ms >= 0 ? json(m.ttft_ms) : json(nullptr)},
            {"tpot_ms", m.tpot_ms >= 0 ? json(m.tpot_ms) : json(nullptr)},
            {"e2e_ms", m.e2e_ms >= 0 ? json(m.e2e_ms) : json(nullptr)},
            {"output_tokens", r.n_output_tokens},
            {"output_tokens_client", r.n_output_tokens_client},
            {"token_source", token_source_name(r.token_source)},
            {"prompt_tokens_client", r.n_prompt_tokens_client},
            {"max_tokens", r.max_tokens},
            {"chunk_ms", std::move(chunk_ms)},
            {"chunk_tokens", std::move(chunk_tokens)},
            {"finish_reason", r.finish_reason}};
  if (r.group >= 0) j["group"] = r.group;
  if (r.usage_completion_tokens >= 0 || r.usage_prompt_tokens >= 0)
    j["usage"] = {{"prompt_tokens", r.usage_prompt_tokens},
                  {"completion_tokens", r.usage_completion_tokens},
                  {"cached_tokens", r.usage_cached_tokens}};
  if (r.usage_completion_tokens >= 0 && r.usage_completion_tokens != r.n_output_tokens_client)
    j["token_mismatch"] = r.usage_completion_tokens - r.n_output_tokens_client;
  if (r.timings.present)
    j["timings"] = {{"prompt_n", num(r.timings.prompt_n)},   {"prompt_ms", num(r.timings.prompt_ms)},
                    {"predicted_n", num(r.timings.predicted_n)}, {"predicted_ms", num(r.timings.predicted_ms)},
                    {"queue_ms", num(r.timings.queue_ms)},   {"cached_n", num(r.timings.cached_n)}};
  if (!r.ok()) {
    j["error"] = r.error_message;
    if (r.http_status) j["http_status"] = r.http_status;
  }
  if (o.slo.any()) j["met_slo"] = m.met_slo;
  if (o.include_text) j["output_text"] = r.output_text;
  return j;
}

json report_to_json(const Report& rep, const ReportOptions& o) {
  json runs = json::array();
  for (const auto& rr : rep.runs) {
    const auto& res = rr.result;
    json recs = json::array();
    for (const auto& r : res.records) recs.push_back(record_to_json(r, res.t_start_us, o));
    json ep = {{"name", rr.endpoint.label()},
               {"url", rr.endpoint.url.str()},
               {"model", rr.endpoint.model},
               {"api", rr.endpoint.api == Api::kChat ? "chat" : "completions"},
               {"served_models", rr.summary.served_models},
               {"listed_models", rr.models_listed}};
    if (!rr.endpoint.api_key_env.empty()) ep["api_key_env"] = rr.endpoint.api_key_env;
    if (rr.endpoint.url.tls() && !rr.endpoint.tls.verify) ep["tls_verify"] = false;
    if (rr.endpoint.url.tls() && !rr.endpoint.tls.ca_file.empty()) ep["ca_file"] = rr.endpoint.tls.ca_file;
    if (rr.endpoint.price_input_per_m >= 0) ep["price_input_per_m"] = rr.endpoint.price_input_per_m;
    if (rr.endpoint.price_output_per_m >= 0) ep["price_output_per_m"] = rr.endpoint.price_output_per_m;
    json run = {{"endpoint", std::move(ep)},
                {"arrival", res.load.to_json()},
                {"seed", res.seed},
                {"started_at", res.started_at},
                {"max_in_flight", res.max_in_flight},
                {"warmup_requests", res.warmup_records.size()},
                {"client", {{"connections_opened", res.client.n_connections_opened},
                            {"connections_reused", res.client.n_connections_reused},
                            {"stale_retries", res.client.n_stale_retries}}},
                {"summary", summary_to_json(rr.summary, o)},
                {"requests", std::move(recs)}};
    if (!rr.sweep_kind.empty()) run["sweep"] = {{rr.sweep_kind, std::isinf(rr.sweep_value) ? json("inf") : json(rr.sweep_value)}};
    if (res.aborted) run["aborted"] = res.abort_reason;
    if (rr.cost_usd >= 0) run["cost_usd"] = rr.cost_usd;
    if (rr.history.n > 0)
      run["probe_history"] = {{"probes", rr.history.n},
                              {"ok", rr.history.n_ok},
                              {"availability_pct", 100.0 * rr.history.n_ok / rr.history.n},
                              {"longest_failure_streak", rr.history.longest_failure_streak},
                              {"first_at", rr.history.first_at},
                              {"last_at", rr.history.last_at},
                              {"span_s", rr.history.span_s},
                              {"files", rr.history.n_files}};
    runs.push_back(std::move(run));
  }
  json j = {{"command", rep.command}, {"provenance", rep.provenance}, {"runs", std::move(runs)}};
  j["provenance"]["percentiles"] = o.percentiles;
  if (o.slo.any()) j["provenance"]["slo"] = slo_to_string(o.slo);
  if (!rep.leaderboard.empty()) {
    json lb = json::array();
    for (const auto& row : rep.leaderboard) {
      // the availability floor counts in meets_constraints and violations
      json r = {{"name", row.name},
                {"run", row.run_index},
                {"meets_constraints", row.meets},
                {"violations", row.violations},
                {"below_availability_floor", row.below_floor}};
      if (row.cost_per_request >= 0) r["cost_per_request_usd"] = row.cost_per_request;
      if (row.cost_per_mtok_output >= 0) r["cost_per_million_output_tokens_usd"] = row.cost_per_mtok_output;
      lb.push_back(std::move(r));
    }
    j["leaderboard"] = std::move(lb);
  }
  if (!rep.recommendation.empty()) j["recommendation"] = rep.recommendation;
  // Beside the text (a string since the first version, so it stays one): the same as fields.
  if (!rep.leaderboard.empty()) {
    const RecommendationInfo& ri = rep.recommended;
    j["recommendation_details"] = {{"endpoint", ri.endpoint.empty() ? json(nullptr) : json(ri.endpoint)},
                                   {"objective", ri.objective},
                                   {"constraints", ri.constraints},
                                   {"availability_floor", ri.availability_floor},
                                   {"floor_source", ri.floor_source},
                                   {"qualifying", ri.n_qualifying}};
  }
  if (!rep.probe.is_null()) j["probe"] = rep.probe;
  if (!rep.verify.empty()) j["verify"] = rep.verify;
  return j;
}

Status write_json(const std::string& path, const Report& rep, const ReportOptions& o) {
  return write_file(path, report_to_json(rep, o).dump(1, ' ', false, json::error_handler_t::replace) + "\n");
}

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string fmt(double v) {
  if (!std::isfinite(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}

std::string pname(double p) {
  std::ostringstream k;
  k << "p" << p;
  return k.str();
}

}  // namespace

Status write_csv(const std::string& path, const Report& rep, const ReportOptions& o) {
  std::ostringstream f;
  f << "endpoint,model,arrival,concurrency,rate,requests,completed,failed,timeouts,window_s,request_throughput,"
       "output_throughput,total_token_throughput,goodput,input_tokens,output_tokens";
  for (const char* m : {"ttft", "tpot", "itl", "e2e"}) {
    f << "," << m << "_mean_ms";
    for (double p : o.percentiles) f << "," << m << "_" << pname(p) << "_ms";
  }
  f << ",token_mismatches,cost_usd,errors\n";
  for (const auto& rr : rep.runs) {
    const Summary& s = rr.summary;
    const LoadSpec& l = rr.result.load;
    std::string errs;
    for (const auto& [k, n] : s.errors) errs += (errs.empty() ? "" : " ") + k + "=" + std::to_string(n);
    f << csv_field(rr.endpoint.label()) << "," << csv_field(rr.endpoint.model) << "," << (l.open_loop ? "open" : "closed")
      << "," << l.concurrency << "," << (l.open_loop ? fmt(l.rate) : "") << "," << s.n_requests << "," << s.n_completed
      << "," << s.n_failed << "," << s.n_timeouts << "," << fmt(s.window_s) << "," << fmt(s.request_throughput) << ","
      << fmt(s.output_throughput) << "," << fmt(s.total_token_throughput) << ","
      << (o.slo.any() ? fmt(s.goodput) : "") << "," << s.total_input_tokens << "," << s.total_output_tokens;
    for (const Distribution* d : {&s.ttft, &s.tpot, &s.itl, &s.e2e}) {
      f << "," << (d->n ? fmt(d->mean) : "");
      for (double p : o.percentiles) f << "," << (d->n ? fmt(d->at(p)) : "");
    }
    f << "," << s.n_token_mismatch << "," << (rr.cost_usd >= 0 ? fmt(rr.cost_usd) : "") << "," << csv_field(errs) << "\n";
  }
  return write_file(path, f.str());
}

Status write_requests_csv(const std::string& path, const Report& rep, const ReportOptions& o) {
  std::ostringstream f;
  f << "endpoint,run,index,session,turn,group,status,send_ms,ttft_ms,tpot_ms,e2e_ms,output_tokens,"
       "output_tokens_client,prompt_tokens,cached_tokens,n_chunks,finish_reason,error\n";
  for (size_t i = 0; i < rep.runs.size(); ++i) {
    const auto& rr = rep.runs[i];
    for (const auto& r : rr.result.records) {
      const RequestMetrics m = request_metrics(r, o.slo);
      auto opt = [](double v) { return v >= 0 ? fmt(v) : std::string(); };
      f << csv_field(rr.endpoint.label()) << "," << i << "," << r.index << "," << r.session << "," << r.turn << ","
        << r.group << "," << (r.ok() ? "ok" : error_key(r)) << "," << fmt((r.t_send_us - rr.result.t_start_us) / 1e3)
        << "," << opt(m.ttft_ms) << "," << opt(m.tpot_ms) << "," << opt(m.e2e_ms) << "," << r.n_output_tokens << ","
        << r.n_output_tokens_client << "," << r.usage_prompt_tokens << "," << r.usage_cached_tokens << ","
        << r.chunks.size() << "," << csv_field(r.finish_reason) << "," << csv_field(r.error_message) << "\n";
    }
  }
  return write_file(path, f.str());
}

}  // namespace tachyon::bench
