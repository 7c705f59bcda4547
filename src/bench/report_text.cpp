// The human summary on stdout and the progress line on stderr.
#include <cmath>
#include <sstream>

#include "bench/report.h"

namespace tachyon::bench {

namespace {

std::string f(const char* fmt, double v) {
  if (std::isinf(v) && v > 0) return "inf";
  if (!std::isfinite(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

std::string pad(std::string s, size_t w, bool right = false) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

std::string pname(double p) {
  std::ostringstream k;
  k << "p" << p;
  return k.str();
}

void line(std::ostringstream& o, const std::string& k, const std::string& v) { o << "  " << pad(k, 26) << v << "\n"; }

void dist_row(std::ostringstream& o, const std::string& name, const Distribution& d, const std::vector<double>& ps) {
  o << "  " << pad(name, 22);
  if (d.n == 0) {
    o << pad("-", 9, true) << "\n";
    return;
  }
  o << pad(f("%.2f", d.mean), 9, true);
  for (double p : ps) o << pad(f("%.2f", d.at(p)), 9, true);
  o << pad(f("%.2f", d.max), 9, true) << "\n";
}

std::string errors_text(const Summary& s) {
  std::string e;
  for (const auto& [k, n] : s.errors) e += (e.empty() ? "" : ", ") + k + " " + std::to_string(n);
  return e;
}

void run_block(std::ostringstream& o, const RunReport& rr, const ReportOptions& opt) {
  const Summary& s = rr.summary;
  const RunResult& res = rr.result;
  std::string title = " " + rr.endpoint.label() + " ";
  if (!rr.sweep_kind.empty()) title += "(" + rr.sweep_kind + " " + f("%g", rr.sweep_value) + ") ";
  o << "==" << title << std::string(title.size() < 70 ? 70 - title.size() : 2, '=') << "\n";
  line(o, "Endpoint", rr.endpoint.url.str() + (rr.endpoint.api == Api::kChat ? " (chat)" : " (completions)"));
  std::string served;
  for (const auto& m : s.served_models) served += (served.empty() ? "" : ", ") + m;
  line(o, "Model", rr.endpoint.model + (served.empty() || served == rr.endpoint.model ? "" : "  (served as " + served + ")"));
  line(o, "Load", res.load.describe() + ", max in flight " + std::to_string(res.max_in_flight));
  line(o, "Requests", std::to_string(s.n_completed) + " completed / " + std::to_string(s.n_requests) + " sent" +
                          (s.n_failed ? ", " + std::to_string(s.n_failed) + " failed" : "") +
                          (res.warmup_records.empty() ? "" : " (+" + std::to_string(res.warmup_records.size()) + " warm-up, excluded)"));
  if (s.n_failed) {
    line(o, "Errors", errors_text(s));
    for (const auto& [k, m] : s.error_examples) line(o, "  " + k, m.substr(0, 120));
  }
  if (res.aborted) line(o, "ABORTED", res.abort_reason.substr(0, 200));
  line(o, "Window", f("%.2f s", s.window_s));
  line(o, "Request throughput", f("%.2f req/s", s.request_throughput));
  line(o, "Output throughput", f("%.1f tok/s", s.output_throughput));
  line(o, "Total token throughput", f("%.1f tok/s", s.total_token_throughput));
  line(o, "Tokens in / out", std::to_string(s.total_input_tokens) + " / " + std::to_string(s.total_output_tokens) +
                                 (s.total_cached_tokens ? "  (" + std::to_string(s.total_cached_tokens) + " cached)" : ""));
  if (opt.slo.any())
    line(o, "Goodput", f("%.2f req/s", s.goodput) + "  (" + std::to_string(s.n_good) + " of " +
                           std::to_string(s.n_completed) + " met " + slo_to_string(opt.slo) + ")");
  if (rr.cost_usd >= 0) line(o, "Cost", f("$%.6f", rr.cost_usd));
  std::string tc = "server usage on " + std::to_string(s.n_completed - s.n_usage_missing) + "/" + std::to_string(s.n_completed);
  tc += "; client count by " + (s.token_source.empty() ? std::string("-") : s.token_source);
  if (s.n_token_mismatch)
    tc += "; DIFFERS on " + std::to_string(s.n_token_mismatch) + " (max " + std::to_string(s.max_token_mismatch) + " tokens)";
  line(o, "Token counts", tc);
  o << "  " << pad("latency (ms)", 22) << pad("mean", 9, true);
  for (double p : opt.percentiles) o << pad(pname(p), 9, true);
  o << pad("max", 9, true) << "\n";
  dist_row(o, "TTFT", s.ttft, opt.percentiles);
  if (s.n_timings > 0) {
    dist_row(o, "  queue (server)", s.queue, opt.percentiles);
    dist_row(o, "  prefill (server)", s.prefill, opt.percentiles);
    dist_row(o, "  network + other", s.network, opt.percentiles);
  }
  dist_row(o, "TPOT", s.tpot, opt.percentiles);
  dist_row(o, "ITL", s.itl, opt.percentiles);
  dist_row(o, "E2E", s.e2e, opt.percentiles);
}

void sweep_table(std::ostringstream& o, const std::vector<const RunReport*>& runs) {
  const RunReport& first = *runs.front();
  o << "\n" << first.endpoint.label() << ": sweep over " << first.sweep_kind << "\n";
  o << "  " << pad(first.sweep_kind, 12) << pad("ok/sent", 10, true) << pad("req/s", 9, true) << pad("out tok/s", 11, true)
    << pad("TTFT p50", 10, true) << pad("TTFT p99", 10, true) << pad("TPOT p50", 10, true) << pad("TPOT p99", 10, true)
    << pad("goodput", 9, true) << "  errors\n";
  for (const RunReport* r : runs) {
    const Summary& s = r->summary;
    o << "  " << pad(f("%g", r->sweep_value), 12)
      << pad(std::to_string(s.n_completed) + "/" + std::to_string(s.n_requests), 10, true)
      << pad(f("%.2f", s.request_throughput), 9, true) << pad(f("%.1f", s.output_throughput), 11, true)
      << pad(f("%.1f", s.ttft.at(50)), 10, true) << pad(f("%.1f", s.ttft.at(99)), 10, true)
      << pad(f("%.2f", s.tpot.at(50)), 10, true) << pad(f("%.2f", s.tpot.at(99)), 10, true)
      << pad(s.n_good || s.goodput > 0 ? f("%.2f", s.goodput) : "-", 9, true) << "  " << errors_text(s) << "\n";
  }
}

}  // namespace

std::string probe_history_text(const ProbeHistory& h) {
  if (h.n == 0) return "";
  char b[160];
  const double span = h.span_s;
  const std::string over = span >= 5400 ? f("%.1f h", span / 3600) : span >= 90 ? f("%.0f min", span / 60) : f("%.0f s", span);
  std::snprintf(b, sizeof b, "%.1f%% of %d probes over %s, longest failure streak %d", 100.0 * h.n_ok / h.n, h.n,
                over.c_str(), h.longest_failure_streak);
  return b;
}

std::string verify_cell(const Report& rep, const std::string& label) {
  for (const auto& v : rep.verify) {
    if (!v.is_object() || v.value("endpoint", std::string()) != label) continue;
    if (v.contains("error")) return "error";
    const auto m = v.find("match");
    if (m == v.end() || !m->is_string()) return "none";
    const std::string path = m->get<std::string>();
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
  }
  return "";
}

std::string leader_row_status(const LeaderRow& row) {
  if (row.meets) return "ok";
  std::string s = row.below_floor ? "excluded: " : "";
  for (size_t i = 0; i < row.violations.size(); ++i) s += (i ? "; " : "") + row.violations[i];
  return s;
}

std::string summary_text(const Report& rep, const ReportOptions& opt) {
  std::ostringstream o;
  std::vector<double> ps = opt.percentiles;
  for (const auto& rr : rep.runs) {
    run_block(o, rr, opt);
    o << "\n";
  }
  // Sweeps: one compact table per endpoint.
  for (size_t i = 0; i < rep.runs.size();) {
    size_t j = i;
    std::vector<const RunReport*> group;
    while (j < rep.runs.size() && rep.runs[j].endpoint.label() == rep.runs[i].endpoint.label() &&
           !rep.runs[j].sweep_kind.empty())
      group.push_back(&rep.runs[j++]);
    if (group.size() > 1) sweep_table(o, group);
    i = std::max(j, i + 1);
  }
  bool any_history = false;
  for (const auto& rr : rep.runs) any_history |= rr.history.n > 0;
  const bool any_verify = !rep.verify.empty();
  if (!rep.leaderboard.empty()) {
    o << "\nLeaderboard\n";
    o << "  " << pad("#", 3) << pad("endpoint", 20) << pad("ok/sent", 9, true) << pad("TTFT p50", 10, true)
      << pad("TTFT p90", 10, true) << pad("TPOT p50", 10, true) << pad("E2E p50", 10, true) << pad("out tok/s", 10, true)
      << pad("$/1M out", 10, true) << pad("$/req", 11, true);
    if (any_history) o << pad("probes ok", 16, true);
    if (any_verify) o << "  " << pad("serves", 26);
    o << "  constraints\n";
    int rank = 1;
    for (const auto& row : rep.leaderboard) {
      const Summary& s = rep.runs[row.run_index].summary;
      const std::string cons = leader_row_status(row);
      o << "  " << pad(std::to_string(rank++), 3) << pad(row.name, 20)
        << pad(std::to_string(s.n_completed) + "/" + std::to_string(s.n_requests), 9, true)
        << pad(f("%.1f", s.ttft.at(50)), 10, true) << pad(f("%.1f", s.ttft.at(90)), 10, true)
        << pad(f("%.2f", s.tpot.at(50)), 10, true) << pad(f("%.1f", s.e2e.at(50)), 10, true)
        << pad(f("%.1f", s.output_throughput), 10, true)
        << pad(row.cost_per_mtok_output >= 0 ? f("%.3f", row.cost_per_mtok_output) : "-", 10, true)
        << pad(row.cost_per_request >= 0 ? f("%.6f", row.cost_per_request) : "-", 11, true);
      const ProbeHistory& h = rep.runs[row.run_index].history;
      if (any_history)
        o << pad(h.n ? f("%.1f%%", 100.0 * h.n_ok / h.n) + " of " + std::to_string(h.n) : "-", 16, true);
      if (any_verify) {
        const std::string v = verify_cell(rep, row.name);
        o << "  " << pad(v.empty() ? "-" : v, 26);
      }
      o << "  " << cons << "\n";
    }
  }
  // bench verify, per endpoint: the verdict and the evidence that decided it.
  for (const auto& v : rep.verify) {
    if (!v.is_object()) continue;
    const std::string label = v.value("endpoint", std::string());
    if (v.contains("error")) {
      o << "\nverify " << label << ": error: " << v.value("error", std::string()) << "\n";
      continue;
    }
    const std::string cell = verify_cell(rep, label);
    o << "\nverify " << label << ": " << (cell == "none" ? "serves none of the references" : "serves " + cell);
    if (v.contains("decided_by") && v["decided_by"].is_string()) o << " (" << v["decided_by"].get<std::string>() << ")";
    o << "\n";
  }
  if (!rep.recommendation.empty()) o << "\n" << rep.recommendation << "\n";
  return o.str();
}

ProgressPrinter::ProgressPrinter(FILE* out, bool tty, std::string label) : out_(out), tty_(tty), label_(std::move(label)) {}

void ProgressPrinter::update(const Progress& p) {
  if (!out_) return;
  if (p.warmup != last_warmup_) {
    done();
    last_decile_ = -1;
    last_print_s_ = -1;
    last_warmup_ = p.warmup;
  }
  double frac = -1;
  if (p.n_total > 0) frac = static_cast<double>(p.n_done) / p.n_total;
  if (p.duration_s > 0) frac = std::max(frac, std::min(1.0, p.elapsed_s / p.duration_s));
  char buf[256];
  const char* phase = p.warmup ? "warm-up" : "run";
  if (tty_) {
    const int width = 30;
    std::string bar;
    if (frac >= 0) {
      const int fill = static_cast<int>(std::lround(frac * width));
      bar = "[" + std::string(fill, '#') + std::string(width - fill, '.') + "]";
    }
    std::snprintf(buf, sizeof buf, "\r%s %s %s %d%s done, %d in flight, %d failed, %.1f s   ", label_.c_str(), phase,
                  bar.c_str(), p.n_done, p.n_total > 0 ? ("/" + std::to_string(p.n_total)).c_str() : "",
                  p.n_in_flight, p.n_failed, p.elapsed_s);
    std::fputs(buf, out_);
    std::fflush(out_);
    drawn_ = true;
    return;
  }
  // Plain lines: every 10% (or every 10 s without a known total), and at the end.
  const int decile = frac >= 0 ? static_cast<int>(frac * 10) : -1;
  const bool due = frac >= 0 ? decile > last_decile_ : (last_print_s_ < 0 || p.elapsed_s - last_print_s_ >= 10);
  if (!due) return;
  last_decile_ = decile;
  last_print_s_ = p.elapsed_s;
  std::snprintf(buf, sizeof buf, "%s %s: %d%s done, %d in flight, %d failed, %.1f s\n", label_.c_str(), phase, p.n_done,
                p.n_total > 0 ? ("/" + std::to_string(p.n_total)).c_str() : "", p.n_in_flight, p.n_failed, p.elapsed_s);
  std::fputs(buf, out_);
  std::fflush(out_);
}

void ProgressPrinter::done() {
  if (out_ && tty_ && drawn_) {
    std::fputs("\n", out_);
    std::fflush(out_);
  }
  drawn_ = false;
}

}  // namespace tachyon::bench
