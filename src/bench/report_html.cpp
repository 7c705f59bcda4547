// One self-contained HTML page (inline CSS and SVG, no script, no external reference):
// summary and provenance tables, TTFT/TPOT histograms, throughput and latency versus the
// swept parameter, a timeline of requests, and the leaderboard for compare. Every chart
// is an <svg class="chart" data-chart="..."> so that tests can find it in the DOM.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "bench/report.h"

namespace tachyon::bench {

namespace {

std::string esc(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string num(double v, const char* fmt = "%.2f") {
  if (std::isinf(v) && v > 0) return "inf";
  if (!std::isfinite(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

const char* kColors[] = {"#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"};

// A "nice" axis maximum and step for [0, v].
void nice_axis(double v, double* top, double* step) {
  if (!(v > 0)) v = 1;
  const double mag = std::pow(10, std::floor(std::log10(v)));
  double s = mag;
  for (double m : {0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0}) {
    if (v / (mag * m) <= 6) {
      s = mag * m;
      break;
    }
  }
  *step = s;
  *top = std::ceil(v / s) * s;
}

struct Frame {
  int w = 560, h = 260, l = 56, r = 16, t = 28, b = 40;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  double X(double x) const { return l + (x - x0) / (x1 - x0) * (w - l - r); }
  double Y(double y) const { return h - b - (y - y0) / (y1 - y0) * (h - t - b); }
};

void open_svg(std::ostringstream& o, const Frame& f, const std::string& kind, const std::string& title) {
  o << "<svg class=\"chart\" data-chart=\"" << kind << "\" width=\"" << f.w
    << "\" height=\"" << f.h << "\" viewBox=\"0 0 " << f.w << " " << f.h << "\" role=\"img\" aria-label=\"" << esc(title)
    << "\">\n<text x=\"" << f.w / 2 << "\" y=\"16\" text-anchor=\"middle\" class=\"title\">" << esc(title) << "</text>\n";
}

void y_axis(std::ostringstream& o, const Frame& f, double step, const std::string& label) {
  for (double v = f.y0; v <= f.y1 + 1e-9; v += step) {
    o << "<line x1=\"" << f.l << "\" x2=\"" << f.w - f.r << "\" y1=\"" << num(f.Y(v), "%.1f") << "\" y2=\""
      << num(f.Y(v), "%.1f") << "\" class=\"grid\"/><text x=\"" << f.l - 4 << "\" y=\"" << num(f.Y(v) + 4, "%.1f")
      << "\" text-anchor=\"end\">" << num(v, "%g") << "</text>\n";
  }
  o << "<text x=\"12\" y=\"" << (f.t + f.h - f.b) / 2 << "\" transform=\"rotate(-90 12 " << (f.t + f.h - f.b) / 2
    << ")\" text-anchor=\"middle\">" << esc(label) << "</text>\n";
}

void x_axis(std::ostringstream& o, const Frame& f, double step, const std::string& label) {
  for (double v = f.x0; v <= f.x1 + 1e-9; v += step)
    o << "<text x=\"" << num(f.X(v), "%.1f") << "\" y=\"" << f.h - f.b + 14 << "\" text-anchor=\"middle\">"
      << num(v, "%g") << "</text>\n";
  o << "<text x=\"" << (f.l + f.w - f.r) / 2 << "\" y=\"" << f.h - 6 << "\" text-anchor=\"middle\">" << esc(label)
    << "</text>\n";
}

// Histogram of values with p50 and p99 markers.
std::string histogram(std::vector<double> v, const std::string& kind, const std::string& title, const std::string& unit,
                      const char* color) {
  std::ostringstream o;
  Frame f;
  open_svg(o, f, kind, title);
  if (v.empty()) {
    o << "<text x=\"" << f.w / 2 << "\" y=\"" << f.h / 2 << "\" text-anchor=\"middle\">no data</text></svg>\n";
    return o.str();
  }
  std::sort(v.begin(), v.end());
  const double lo = 0, hi_raw = v.back();
  double xtop, xstep;
  nice_axis(hi_raw, &xtop, &xstep);
  const int n_bins = std::clamp(static_cast<int>(std::sqrt(static_cast<double>(v.size())) * 2), 10, 60);
  std::vector<int> bins(static_cast<size_t>(n_bins), 0);
  for (double x : v) ++bins[std::min<size_t>(static_cast<size_t>((x - lo) / (xtop - lo) * n_bins), n_bins - 1)];
  const int maxc = *std::max_element(bins.begin(), bins.end());
  double ytop, ystep;
  nice_axis(maxc, &ytop, &ystep);
  if (ystep < 1) ystep = 1, ytop = std::max(1.0, std::ceil(ytop));
  f.x0 = lo, f.x1 = xtop, f.y0 = 0, f.y1 = ytop;
  y_axis(o, f, ystep, "requests");
  x_axis(o, f, xstep, unit);
  const double bw = (f.w - f.l - f.r) / static_cast<double>(n_bins);
  for (int i = 0; i < n_bins; ++i) {
    if (!bins[i]) continue;
    o << "<rect class=\"bar\" x=\"" << num(f.l + i * bw, "%.1f") << "\" y=\"" << num(f.Y(bins[i]), "%.1f")
      << "\" width=\"" << num(std::max(1.0, bw - 1), "%.1f") << "\" height=\"" << num(f.Y(0) - f.Y(bins[i]), "%.1f")
      << "\" fill=\"" << color << "\"><title>" << bins[i] << "</title></rect>\n";
  }
  for (auto [p, dash] : {std::pair<double, const char*>{50, "4 2"}, {99, "2 2"}}) {
    const double x = f.X(percentile_sorted(v, p));
    const bool left = x > f.w - f.r - 70;  // keep the label inside the frame
    o << "<line x1=\"" << num(x, "%.1f") << "\" x2=\"" << num(x, "%.1f") << "\" y1=\"" << f.t << "\" y2=\"" << f.h - f.b
      << "\" stroke=\"#111\" stroke-dasharray=\"" << dash << "\"/><text x=\"" << num(left ? x - 3 : x + 3, "%.1f")
      << "\" y=\"" << f.t + (p == 50 ? 10 : 22) << "\" class=\"small\"" << (left ? " text-anchor=\"end\"" : "") << ">p" << p
      << " " << num(percentile_sorted(v, p), "%.1f") << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

struct Series {
  std::string name;
  std::vector<double> y;  // one per x category; NaN = missing
};

// Lines over categorical x values (the sweep points), evenly spaced.
std::string line_chart(const std::vector<std::string>& xs, const std::vector<Series>& series, const std::string& kind,
                       const std::string& title, const std::string& xlabel, const std::string& ylabel) {
  std::ostringstream o;
  Frame f;
  f.r = 130;
  open_svg(o, f, kind, title);
  double ymax = 0;
  for (const auto& s : series)
    for (double y : s.y)
      if (std::isfinite(y)) ymax = std::max(ymax, y);
  double ytop, ystep;
  nice_axis(ymax, &ytop, &ystep);
  f.x0 = -0.5, f.x1 = xs.size() - 0.5, f.y0 = 0, f.y1 = ytop;
  y_axis(o, f, ystep, ylabel);
  for (size_t i = 0; i < xs.size(); ++i)
    o << "<text x=\"" << num(f.X(i), "%.1f") << "\" y=\"" << f.h - f.b + 14 << "\" text-anchor=\"middle\">" << esc(xs[i])
      << "</text>\n";
  o << "<text x=\"" << (f.l + f.w - f.r) / 2 << "\" y=\"" << f.h - 6 << "\" text-anchor=\"middle\">" << esc(xlabel)
    << "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const char* c = kColors[k % 8];
    std::string pts;
    for (size_t i = 0; i < series[k].y.size(); ++i) {
      const double y = series[k].y[i];
      if (!std::isfinite(y)) continue;
      pts += num(f.X(i), "%.1f") + "," + num(f.Y(y), "%.1f") + " ";
      o << "<circle cx=\"" << num(f.X(i), "%.1f") << "\" cy=\"" << num(f.Y(y), "%.1f") << "\" r=\"3\" fill=\"" << c
        << "\"><title>" << esc(series[k].name) << ": " << num(y, "%.2f") << "</title></circle>\n";
    }
    o << "<polyline class=\"series\" points=\"" << pts << "\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2\"/>\n";
    o << "<text x=\"" << f.w - f.r + 8 << "\" y=\"" << f.t + 14 * (k + 1) << "\" style=\"fill:" << c << "\">"
      << esc(series[k].name) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

// Requests as horizontal bars over time: waiting for the first token, then streaming;
// failed requests in red.
std::string timeline(const RunReport& rr) {
  std::ostringstream o;
  const auto& recs = rr.result.records;
  const size_t n = std::min<size_t>(recs.size(), 1000);
  Frame f;
  f.w = 1100;
  f.h = static_cast<int>(std::clamp<size_t>(n * 3, 160, 600)) + 68;
  f.l = 24;
  open_svg(o, f, "timeline", "Timeline of requests: " + rr.endpoint.label() +
                                 (recs.size() > n ? " (first 1000 of " + std::to_string(recs.size()) + ")" : ""));
  const int64_t origin = rr.result.t_start_us;
  double tmax = 0;
  for (size_t i = 0; i < n; ++i) tmax = std::max(tmax, (recs[i].t_end_us - origin) / 1e6);
  double xtop, xstep;
  nice_axis(tmax, &xtop, &xstep);
  f.x0 = 0, f.x1 = xtop, f.y0 = 0, f.y1 = std::max<size_t>(n, 1);
  x_axis(o, f, xstep, "seconds since the first request");
  const double rh = (f.h - f.t - f.b) / static_cast<double>(std::max<size_t>(n, 1));
  for (size_t i = 0; i < n; ++i) {
    const RequestRecord& r = recs[i];
    const double y = f.t + i * rh;
    const double ts = (r.t_send_us - origin) / 1e6, te = (r.t_end_us - origin) / 1e6;
    auto rect = [&](double a, double b, const char* cls) {
      o << "<rect class=\"" << cls << "\" x=\"" << num(f.X(a), "%.1f") << "\" y=\"" << num(y, "%.2f") << "\" width=\""
        << num(std::max(0.5, f.X(b) - f.X(a)), "%.2f") << "\" height=\"" << num(std::max(0.6, rh * 0.8), "%.2f") << "\"/>";
    };
    if (!r.ok()) {
      rect(ts, te, "tl-fail");
    } else if (!r.chunks.empty()) {
      const double t1 = (r.chunks.front().t_us - origin) / 1e6, tl = (r.chunks.back().t_us - origin) / 1e6;
      rect(ts, t1, "tl-wait");
      rect(t1, std::max(t1, tl), "tl-stream");
    } else {
      rect(ts, te, "tl-wait");
    }
    o << "\n";
  }
  o << "<text x=\"" << f.w - f.r << "\" y=\"" << f.h - 6 << "\" text-anchor=\"end\" class=\"small\"><tspan "
       "class=\"k-wait\">&#9632;</tspan> waiting "
    << "for the first token <tspan class=\"k-stream\">&#9632;</tspan> streaming <tspan class=\"k-fail\">&#9632;</tspan> "
       "failed</text>\n</svg>\n";
  return o.str();
}

// Horizontal bars: one group per endpoint (leaderboard).
std::string bar_chart(const std::vector<std::string>& labels, const std::vector<Series>& series, const std::string& kind,
                      const std::string& title, const std::string& unit) {
  std::ostringstream o;
  Frame f;
  f.l = 150;
  f.r = 120;
  const int group_h = 10 + 14 * static_cast<int>(series.size());
  f.h = f.t + f.b + group_h * static_cast<int>(labels.size());
  open_svg(o, f, kind, title);
  double vmax = 0;
  for (const auto& s : series)
    for (double v : s.y)
      if (std::isfinite(v)) vmax = std::max(vmax, v);
  double top, step;
  nice_axis(vmax, &top, &step);
  f.x0 = 0, f.x1 = top;
  x_axis(o, f, step, unit);
  for (size_t i = 0; i < labels.size(); ++i) {
    const int gy = f.t + static_cast<int>(i) * group_h;
    o << "<text x=\"" << f.l - 6 << "\" y=\"" << gy + group_h / 2 + 4 << "\" text-anchor=\"end\">" << esc(labels[i])
      << "</text>\n";
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = i < series[k].y.size() ? series[k].y[i] : NAN;
      if (!std::isfinite(v)) continue;
      o << "<rect class=\"bar\" x=\"" << f.l << "\" y=\"" << gy + 5 + 14 * k << "\" width=\""
        << num(std::max(1.0, f.X(v) - f.l), "%.1f") << "\" height=\"12\" fill=\"" << kColors[k % 8] << "\"><title>"
        << esc(series[k].name) << ": " << num(v, "%.2f") << "</title></rect>\n";
    }
  }
  for (size_t k = 0; k < series.size(); ++k)
    o << "<text x=\"" << f.w - f.r + 8 << "\" y=\"" << f.t + 14 * (k + 1) << "\" style=\"fill:" << kColors[k % 8]
      << "\">" << esc(series[k].name) << "</text>\n";
  o << "</svg>\n";
  return o.str();
}

const char* kCss = R"(body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:12px}.scroll{overflow-x:auto}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f4f6}td.l,th.l{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #e5e7eb}svg text{font-size:11px;fill:#333}svg text.title{font-size:13px;font-weight:600}
svg text.small{font-size:10px}.grid{stroke:#e5e7eb}.tl-wait{fill:#f59e0b}.tl-stream{fill:#2563eb}.tl-fail{fill:#dc2626}
.k-wait{fill:#f59e0b}.k-stream{fill:#2563eb}.k-fail{fill:#dc2626}pre{background:#f9fafb;padding:8px;white-space:pre-wrap}
)";

std::string pname(double p) {
  std::ostringstream k;
  k << "p" << p;
  return k.str();
}

std::string run_label(const RunReport& rr) {
  std::string l = rr.endpoint.label();
  if (!rr.sweep_kind.empty()) l += " " + rr.sweep_kind + "=" + num(rr.sweep_value, "%g");
  return l;
}

std::string basename_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// bench verify results: per endpoint, the candidates with their evidence, the verdict and
// what decided it.
void verify_section(std::ostringstream& o, const Report& rep) {
  if (rep.verify.empty()) return;
  o << "<h2>Verify: which file does each endpoint serve?</h2>\n";
  for (const auto& v : rep.verify) {
    if (!v.is_object()) continue;
    const std::string label = v.value("endpoint", std::string());
    o << "<h3>" << esc(label) << "</h3>\n";
    if (v.contains("error")) {
      o << "<p class=\"verify-error\">error: " << esc(v.value("error", std::string())) << "</p>\n";
      continue;
    }
    const std::string cell = verify_cell(rep, label);
    o << "<p class=\"verify-verdict\" data-endpoint=\"" << esc(label) << "\">"
      << (cell == "none" ? "serves none of the references" : "serves <b>" + esc(cell) + "</b>") << " (mode "
      << esc(v.value("mode", std::string())) << ")</p>\n";
    o << "<table class=\"verify\"><tr><th class=\"l\">candidate</th><th>distance</th><th>|dlogp|</th>"
         "<th>argmax agree</th><th>coverage</th><th>positions</th><th class=\"l\">verdict</th></tr>\n";
    if (v.contains("candidates") && v["candidates"].is_array()) {
      for (const auto& c : v["candidates"]) {
        auto numc = [&](const char* k, const char* fmt, double scale) {
          return c.contains(k) && c[k].is_number() ? num(c[k].get<double>() * scale, fmt) : std::string("-");
        };
        o << "<tr><td class=\"l\">" << esc(basename_of(c.value("path", std::string()))) << "</td><td>"
          << (c.contains("distance") && c["distance"].is_number() ? num(c["distance"].get<double>(), "%.4f") : "inf")
          << "</td><td>" << numc("mean_abs_logprob_diff", "%.4f", 1) << "</td><td>" << numc("argmax_agreement", "%.1f%%", 100)
          << "</td><td>" << numc("coverage", "%.1f%%", 100) << "</td><td>" << numc("compared_positions", "%.0f", 1)
          << "</td><td class=\"l\">" << esc(c.value("verdict", std::string()))
          << (c.contains("error") ? ": " + esc(c.value("error", std::string())) : "") << "</td></tr>\n";
      }
    }
    o << "</table>\n";
    if (v.contains("decided_by") && v["decided_by"].is_string())
      o << "<p class=\"verify-decided\">decided by " << esc(v["decided_by"].get<std::string>()) << "</p>\n";
    if (v.contains("note") && v["note"].is_string() && !v["note"].get<std::string>().empty())
      o << "<p>note: " << esc(v["note"].get<std::string>()) << "</p>\n";
  }
}

}  // namespace

std::string render_html(const Report& rep, const ReportOptions& opt) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"generator\" content=\"" << kToolName
    << " " << tool_version() << "\"><title>tachyon bench " << esc(rep.command) << " report</title><style>" << kCss
    << "</style></head><body>\n<h1>tachyon bench " << esc(rep.command) << "</h1>\n";
  if (rep.runs.empty()) {
    // bench verify's own page: the verify results and the provenance.
    verify_section(o, rep);
    o << "<h2>Provenance</h2>\n<table id=\"provenance\">\n";
    for (auto it = rep.provenance.begin(); it != rep.provenance.end(); ++it)
      o << "<tr><th class=\"l\">" << esc(it.key()) << "</th><td class=\"l\">"
        << esc(it.value().is_string() ? it.value().get<std::string>() : it.value().dump()) << "</td></tr>\n";
    o << "</table>\n</body></html>\n";
    return o.str();
  }

  // Summary table.
  o << "<h2>Summary</h2>\n<div class=\"scroll\"><table id=\"summary\"><tr><th class=\"l\">run</th><th class=\"l\">load</th><th>ok/sent</th>"
       "<th>req/s</th><th>out tok/s</th>";
  for (const char* m : {"TTFT", "TPOT", "ITL", "E2E"})
    for (double p : opt.percentiles) o << "<th>" << m << " " << pname(p) << " ms</th>";
  if (opt.slo.any()) o << "<th>goodput req/s</th>";
  o << "<th class=\"l\">errors</th></tr>\n";
  for (const auto& rr : rep.runs) {
    const Summary& s = rr.summary;
    std::string errs;
    for (const auto& [k, n] : s.errors) errs += (errs.empty() ? "" : ", ") + k + " " + std::to_string(n);
    o << "<tr><td class=\"l\">" << esc(run_label(rr)) << "</td><td class=\"l\">" << esc(rr.result.load.describe())
      << "</td><td>" << s.n_completed << "/" << s.n_requests << "</td><td>" << num(s.request_throughput) << "</td><td>"
      << num(s.output_throughput, "%.1f") << "</td>";
    for (const Distribution* d : {&s.ttft, &s.tpot, &s.itl, &s.e2e})
      for (double p : opt.percentiles) o << "<td>" << (d->n ? num(d->at(p)) : "-") << "</td>";
    if (opt.slo.any()) o << "<td>" << num(s.goodput) << "</td>";
    o << "<td class=\"l\">" << esc(errs) << "</td></tr>\n";
  }
  o << "</table></div>\n";

  // Leaderboard.
  if (!rep.leaderboard.empty()) {
    o << "<h2>Leaderboard</h2>\n<table id=\"leaderboard\"><tr><th>#</th><th class=\"l\">endpoint</th><th>ok/sent</th>"
         "<th>TTFT p50</th><th>TTFT p90</th><th>TPOT p50</th><th>E2E p50</th><th>out tok/s</th><th>$/1M out</th>"
         "<th>$/request</th>";
    bool any_history = false;
    for (const auto& rr : rep.runs) any_history |= rr.history.n > 0;
    if (any_history) o << "<th class=\"l\">availability (probe history)</th>";
    if (!rep.verify.empty()) o << "<th class=\"l\">serves (verify)</th>";
    o << "<th class=\"l\">constraints</th></tr>\n";
    std::vector<std::string> labels;
    Series ttft{"TTFT p90 (ms)", {}}, e2e{"E2E p50 (ms)", {}};
    int rank = 1;
    for (const auto& row : rep.leaderboard) {
      const Summary& s = rep.runs[row.run_index].summary;
      const std::string cons = leader_row_status(row);
      o << "<tr><td>" << rank++ << "</td><td class=\"l\">" << esc(row.name) << "</td><td>" << s.n_completed << "/"
        << s.n_requests << "</td><td>" << num(s.ttft.at(50), "%.1f") << "</td><td>" << num(s.ttft.at(90), "%.1f")
        << "</td><td>" << num(s.tpot.at(50)) << "</td><td>" << num(s.e2e.at(50), "%.1f") << "</td><td>"
        << num(s.output_throughput, "%.1f") << "</td><td>"
        << (row.cost_per_mtok_output >= 0 ? num(row.cost_per_mtok_output, "%.3f") : "-") << "</td><td>"
        << (row.cost_per_request >= 0 ? num(row.cost_per_request, "%.6f") : "-") << "</td>";
      const ProbeHistory& h = rep.runs[row.run_index].history;
      if (any_history) o << "<td class=\"l\">" << (h.n ? esc(probe_history_text(h)) : "-") << "</td>";
      if (!rep.verify.empty()) {
        const std::string v = verify_cell(rep, row.name);
        o << "<td class=\"l\">" << esc(v.empty() ? "-" : v) << "</td>";
      }
      o << "<td class=\"l\">" << esc(cons) << "</td></tr>\n";
      labels.push_back(row.name);
      ttft.y.push_back(s.ttft.n ? s.ttft.at(90) : NAN);
      e2e.y.push_back(s.e2e.n ? s.e2e.at(50) : NAN);
    }
    o << "</table>\n";
    if (!rep.recommendation.empty()) o << "<pre id=\"recommendation\">" << esc(rep.recommendation) << "</pre>\n";
    o << "<div class=\"charts\">" << bar_chart(labels, {ttft, e2e}, "leaderboard", "Latency by endpoint", "ms")
      << "</div>\n";
  }

  verify_section(o, rep);

  // Sweeps: one pair of charts per endpoint that was swept.
  for (size_t i = 0; i < rep.runs.size();) {
    size_t j = i;
    while (j < rep.runs.size() && !rep.runs[j].sweep_kind.empty() &&
           rep.runs[j].endpoint.label() == rep.runs[i].endpoint.label())
      ++j;
    if (j - i >= 1 && !rep.runs[i].sweep_kind.empty()) {
      std::vector<std::string> xs;
      Series thr{"output tok/s", {}}, rps{"requests/s x10", {}};
      Series t50{"TTFT p50", {}}, t99{"TTFT p99", {}}, p50{"TPOT p50", {}}, p99{"TPOT p99", {}}, e50{"E2E p50", {}},
          e99{"E2E p99", {}};
      for (size_t k = i; k < j; ++k) {
        const Summary& s = rep.runs[k].summary;
        xs.push_back(num(rep.runs[k].sweep_value, "%g"));
        thr.y.push_back(s.output_throughput);
        rps.y.push_back(s.request_throughput * 10);
        auto at = [](const Distribution& d, double p) { return d.n ? d.at(p) : NAN; };
        t50.y.push_back(at(s.ttft, 50));
        t99.y.push_back(at(s.ttft, 99));
        p50.y.push_back(at(s.tpot, 50));
        p99.y.push_back(at(s.tpot, 99));
        e50.y.push_back(at(s.e2e, 50));
        e99.y.push_back(at(s.e2e, 99));
      }
      const std::string& kind = rep.runs[i].sweep_kind;
      o << "<h2>" << esc(rep.runs[i].endpoint.label()) << ": throughput and latency vs " << esc(kind) << "</h2>\n"
        << "<div class=\"charts\">"
        << line_chart(xs, {thr, rps}, "sweep-throughput", "Throughput vs " + kind, kind, "per second")
        << line_chart(xs, {t50, t99}, "sweep-ttft", "TTFT vs " + kind, kind, "ms")
        << line_chart(xs, {p50, p99}, "sweep-latency", "TPOT vs " + kind, kind, "ms")
        << line_chart(xs, {e50, e99}, "sweep-e2e", "E2E latency vs " + kind, kind, "ms") << "</div>\n";
    }
    i = std::max(j, i + 1);
  }

  // Distributions per run (at most 16 runs drawn).
  o << "<h2>TTFT and TPOT distributions</h2>\n";
  for (size_t k = 0; k < rep.runs.size() && k < 16; ++k) {
    const RunReport& rr = rep.runs[k];
    std::vector<double> ttft, tpot;
    for (const auto& r : rr.result.records) {
      if (!r.ok()) continue;
      const RequestMetrics m = request_metrics(r, {});
      if (m.ttft_ms >= 0) ttft.push_back(m.ttft_ms);
      if (m.tpot_ms >= 0) tpot.push_back(m.tpot_ms);
    }
    o << "<h3>" << esc(run_label(rr)) << "</h3><div class=\"charts\">"
      << histogram(ttft, "ttft-hist", "TTFT: " + run_label(rr), "ms", kColors[0])
      << histogram(tpot, "tpot-hist", "TPOT: " + run_label(rr), "ms", kColors[2]) << "</div>\n";
  }

  // Timelines (the first 4 runs).
  o << "<h2>Timeline</h2>\n";
  for (size_t k = 0; k < rep.runs.size() && k < 4; ++k) o << "<div class=\"charts\">" << timeline(rep.runs[k]) << "</div>\n";

  // Provenance.
  o << "<h2>Provenance</h2>\n<table id=\"provenance\">\n";
  for (auto it = rep.provenance.begin(); it != rep.provenance.end(); ++it)
    o << "<tr><th class=\"l\">" << esc(it.key()) << "</th><td class=\"l\">"
      << esc(it.value().is_string() ? it.value().get<std::string>() : it.value().dump()) << "</td></tr>\n";
  for (const auto& rr : rep.runs)
    o << "<tr><th class=\"l\">" << esc(run_label(rr)) << "</th><td class=\"l\">" << esc(rr.endpoint.url.str())
      << ", model " << esc(rr.endpoint.model)
      << (rr.summary.served_models.empty() ? "" : " (served as " + esc(rr.summary.served_models.front()) + ")")
      << ", seed " << rr.result.seed << ", started " << esc(rr.result.started_at) << "</td></tr>\n";
  o << "</table>\n</body></html>\n";
  return o.str();
}

Status write_html(const std::string& path, const Report& rep, const ReportOptions& o) {
  return write_file(path, render_html(rep, o));
}

}  // namespace tachyon::bench
