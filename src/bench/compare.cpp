#include "bench/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <thread>

#include "base/clock.h"

namespace tachyon::bench {

using json = nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string trim(std::string s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

Status endpoint_from_json(const json& j, const std::string& where, EndpointSpec* out) {
  if (!j.is_object()) return invalid_argument(where + ": an endpoint must be an object/table");
  EndpointSpec e;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const json& v = it.value();
    auto str = [&]() -> Result<std::string> {
      if (!v.is_string()) return invalid_argument(where + ": '" + k + "' must be a string");
      return v.get<std::string>();
    };
    auto number = [&]() -> Result<double> {
      if (!v.is_number()) return invalid_argument(where + ": '" + k + "' must be a number");
      return v.get<double>();
    };
    if (k == "name") {
      auto s = str();
      if (!s.is_ok()) return s.status();
      e.name = *s;
    } else if (k == "url") {
      auto s = str();
      if (!s.is_ok()) return s.status();
      auto u = Url::parse(*s);
      if (!u.is_ok()) return invalid_argument(where + ": " + u.status().message());
      e.url = *u;
    } else if (k == "model") {
      auto s = str();
      if (!s.is_ok()) return s.status();
      e.model = *s;
    } else if (k == "api_key_env" || k == "key_env") {
      auto s = str();
      if (!s.is_ok()) return s.status();
      e.api_key_env = *s;
    } else if (k == "api") {
      auto s = str();
      if (!s.is_ok()) return s.status();
      if (*s != "chat" && *s != "completions") return invalid_argument(where + ": api must be chat or completions");
      e.api = *s == "chat" ? Api::kChat : Api::kCompletions;
    } else if (k == "insecure") {
      if (!v.is_boolean()) return invalid_argument(where + ": 'insecure' must be true or false");
      e.tls.verify = !v.get<bool>();
    } else if (k == "ca_file") {
      auto s = str();
      if (!s.is_ok()) return s.status();
      e.tls.ca_file = *s;
    } else if (k == "price_input_per_m" || k == "price_in") {
      auto d = number();
      if (!d.is_ok()) return d.status();
      e.price_input_per_m = *d;
    } else if (k == "price_output_per_m" || k == "price_out") {
      auto d = number();
      if (!d.is_ok()) return d.status();
      e.price_output_per_m = *d;
    } else {
      return invalid_argument(where + ": unknown key '" + k +
                              "' (name, url, model, api_key_env, api, insecure, ca_file, price_input_per_m, "
                              "price_output_per_m)");
    }
  }
  if (e.url.host.empty()) return invalid_argument(where + ": 'url' is required");
  if (e.name.empty()) e.name = e.url.host_port();
  *out = std::move(e);
  return Status::ok();
}

// key = value lines under [[endpoint]] headers -> JSON objects.
Result<json> toml_subset(const std::string& text, const std::string& path) {
  json arr = json::array();
  int lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++lineno;
    const std::string where = path + ":" + std::to_string(lineno);
    // Strip a comment that is not inside quotes.
    bool in_s = false, in_d = false;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"' && !in_s) in_d = !in_d;
      else if (line[i] == '\'' && !in_d) in_s = !in_s;
      else if (line[i] == '#' && !in_s && !in_d) { line.resize(i); break; }
    }
    line = trim(line);
    if (line.empty()) {
      if (pos > text.size()) break;
      continue;
    }
    if (line[0] == '[') {
      if (line == "[[endpoint]]" || line == "[[endpoints]]") {
        arr.push_back(json::object());
        continue;
      }
      return invalid_argument(where + ": unsupported table '" + line + "' (use [[endpoint]])");
    }
    const size_t eq = line.find('=');
    if (eq == std::string::npos) return invalid_argument(where + ": expected key = value");
    if (arr.empty()) return invalid_argument(where + ": key outside an [[endpoint]] table");
    const std::string key = trim(line.substr(0, eq));
    const std::string val = trim(line.substr(eq + 1));
    if (key.empty() || val.empty()) return invalid_argument(where + ": expected key = value");
    json v;
    if (val[0] == '"') {
      if (val.size() < 2 || val.back() != '"') return invalid_argument(where + ": unterminated string");
      v = json::parse(val, nullptr, false);  // TOML basic strings escape like JSON
      if (v.is_discarded()) return invalid_argument(where + ": bad string " + val);
    } else if (val[0] == '\'') {
      if (val.size() < 2 || val.back() != '\'') return invalid_argument(where + ": unterminated string");
      v = val.substr(1, val.size() - 2);
    } else if (val == "true" || val == "false") {
      v = val == "true";
    } else {
      std::string n = val;
      n.erase(std::remove(n.begin(), n.end(), '_'), n.end());
      try {
        size_t used = 0;
        const double d = std::stod(n, &used);
        if (used != n.size()) throw std::invalid_argument(n);
        v = d;
      } catch (...) {
        return invalid_argument(where + ": '" + val + "' is not a string, number or boolean");
      }
    }
    if (arr.back().contains(key)) return invalid_argument(where + ": duplicate key '" + key + "'");
    arr.back()[key] = v;
    if (pos > text.size()) break;
  }
  return arr;
}

}  // namespace

Result<std::vector<EndpointSpec>> parse_endpoints(const std::string& text, const std::string& path) {
  const std::string t = trim(text);
  json arr;
  if (!t.empty() && (t[0] == '{' || t[0] == '[') && t.rfind("[[", 0) != 0) {
    json j = json::parse(t, nullptr, false);
    if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
    if (j.is_object() && j.contains("endpoints")) j = j["endpoints"];
    if (!j.is_array()) return invalid_argument(path + ": expected an array of endpoints or {\"endpoints\": [...]}");
    arr = j;
  } else {
    auto r = toml_subset(text, path);
    if (!r.is_ok()) return r.status();
    arr = *r;
  }
  if (arr.empty()) return invalid_argument(path + ": no endpoints (add [[endpoint]] tables)");
  std::vector<EndpointSpec> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    EndpointSpec e;
    TACHYON_RETURN_IF_ERROR(endpoint_from_json(arr[i], path + ": endpoint " + std::to_string(i + 1), &e));
    for (const auto& o : out)
      if (o.name == e.name) return invalid_argument(path + ": two endpoints are named '" + e.name + "'");
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<Constraint>> parse_constraints(const std::string& s) {
  std::vector<Constraint> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = trim(s.substr(i, j - i));
    i = j + 1;
    if (item.empty()) continue;
    Constraint c;
    c.text = item;
    const size_t op = item.find_first_of("<>");
    if (op == std::string::npos) return invalid_argument("--recommend '" + item + "': expected metric<value or metric>value");
    c.less = item[op] == '<';
    c.metric = trim(item.substr(0, op));
    std::string val = item.substr(op + 1);
    if (!val.empty() && val[0] == '=') c.or_equal = true, val.erase(0, 1);
    val = trim(val);
    const bool latency = c.metric.rfind("ttft", 0) == 0 || c.metric.rfind("tpot", 0) == 0 ||
                         c.metric.rfind("itl", 0) == 0 || c.metric.rfind("e2e", 0) == 0;
    if (latency) {
      auto d = parse_duration_ms(val);
      if (!d.is_ok()) return invalid_argument("--recommend " + c.metric + ": " + d.status().message());
      c.value = *d;
    } else {
      bool pct = !val.empty() && val.back() == '%';
      if (pct) val.pop_back();
      try {
        size_t used = 0;
        c.value = std::stod(val, &used);
        if (used != val.size()) throw std::invalid_argument(val);
      } catch (...) {
        return invalid_argument("--recommend '" + item + "': '" + val + "' is not a number");
      }
      if (pct) c.value /= 100;
      static const char* known[] = {"error_rate", "request_throughput", "output_throughput", "goodput",
                                    "cost_per_request", "cost_per_mtok", "availability"};
      if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return c.metric == k; }) == std::end(known))
        return invalid_argument("--recommend: unknown metric '" + c.metric +
                                "' (ttft_p90, tpot_p50, e2e_mean, error_rate, output_throughput, cost_per_mtok, "
                                "availability, ...)");
    }
    if (latency) {
      const size_t us = c.metric.find('_');
      const std::string stat = us == std::string::npos ? "" : c.metric.substr(us + 1);
      if (stat != "mean" && stat != "max" && (stat.size() < 2 || stat[0] != 'p'))
        return invalid_argument("--recommend '" + item + "': use " + c.metric.substr(0, us) + "_pNN or _mean");
    }
    out.push_back(c);
  }
  if (out.empty()) return invalid_argument("--recommend: no constraints");
  return out;
}

Result<Objective> parse_objective(const std::string& s) {
  if (s == "cheapest") return Objective::kCheapest;
  if (s == "fastest") return Objective::kFastest;
  return invalid_argument("--objective '" + s + "': expected cheapest or fastest");
}

double metric_value(const RunReport& r, const std::string& metric) {
  const Summary& s = r.summary;
  if (metric == "error_rate") return s.n_requests ? static_cast<double>(s.n_failed) / s.n_requests : kNaN;
  if (metric == "availability") return r.history.n ? static_cast<double>(r.history.n_ok) / r.history.n : kNaN;
  if (metric == "request_throughput") return s.request_throughput;
  if (metric == "output_throughput") return s.output_throughput;
  if (metric == "goodput") return s.goodput;
  if (metric == "cost_per_request") return r.cost_usd >= 0 && s.n_completed ? r.cost_usd / s.n_completed : kNaN;
  if (metric == "cost_per_mtok")
    return r.cost_usd >= 0 && s.total_output_tokens ? r.cost_usd / s.total_output_tokens * 1e6 : kNaN;
  const size_t us = metric.find('_');
  if (us == std::string::npos) return kNaN;
  const std::string name = metric.substr(0, us), stat = metric.substr(us + 1);
  const Distribution* d = name == "ttft" ? &s.ttft : name == "tpot" ? &s.tpot : name == "itl" ? &s.itl : name == "e2e" ? &s.e2e : nullptr;
  if (!d || d->n == 0) return kNaN;
  if (stat == "mean") return d->mean;
  if (stat == "max") return d->max;
  if (stat.size() > 1 && stat[0] == 'p') {
    try {
      return d->at(std::stod(stat.substr(1)));
    } catch (...) {
      return kNaN;
    }
  }
  return kNaN;
}

namespace {

bool holds(const Constraint& c, double v) {
  return c.less ? (c.or_equal ? v <= c.value : v < c.value) : (c.or_equal ? v >= c.value : v > c.value);
}

// The comparison that failed, for messages: "<" failed means ">=".
const char* negated_op(const Constraint& c) {
  if (c.less) return c.or_equal ? ">" : ">=";
  return c.or_equal ? "<" : "<=";
}

// A fraction as a percentage: one decimal, but a small non-zero rate never shows as 0.0%
// (under error_rate<=0% one failure in 10000 must read as a failure).
std::string pct(double fraction) {
  const double p = fraction * 100;
  char b[32];
  std::snprintf(b, sizeof b, p == 0 || p >= 0.1 ? "%.1f%%" : "%.2g%%", p);
  return b;
}

// Why a run that completed requests is below the floor; empty when it is not.
std::vector<std::string> floor_misses(const RunReport& r, const AvailabilityFloor& floor) {
  const Summary& s = r.summary;
  std::vector<std::string> out;
  const double rate = metric_value(r, "error_rate");
  const std::string counts = std::to_string(s.n_failed) + "/" + std::to_string(s.n_requests) + " failed" +
                             (s.n_timeouts ? ", " + std::to_string(s.n_timeouts) + " timed out" : "");
  for (const auto& c : floor.error_rate) {
    if (std::isnan(rate)) {
      out.push_back("error_rate unknown (no measured request)");
      return out;
    }
    if (holds(c, rate)) continue;
    char thr[32];
    std::snprintf(thr, sizeof thr, "%g%%", c.value * 100);
    out.push_back("error_rate " + pct(rate) + " " + negated_op(c) + " " + thr + " (" + counts + ")");
  }
  // The error rate names the timeouts already when it fails.
  if (floor.no_timeouts && s.n_timeouts > 0 && out.empty())
    out.push_back(std::to_string(s.n_timeouts) + "/" + std::to_string(s.n_requests) +
                  " requests timed out (the default floor allows no timeouts)");
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : sep) + x;
  return out;
}

}  // namespace

AvailabilityFloor availability_floor(const std::vector<Constraint>& cons) {
  AvailabilityFloor f;
  for (const auto& c : cons)
    if (c.metric == "error_rate") f.error_rate.push_back(c);
  if (!f.error_rate.empty()) {
    // Given explicitly: the user chose the error budget, timeouts count in it as errors.
    f.given = true;
    f.no_timeouts = false;
    std::vector<std::string> texts;
    for (const auto& c : f.error_rate) texts.push_back(c.text);
    f.text = join(texts, ", ");
    return f;
  }
  Constraint c;
  c.metric = "error_rate";
  c.less = true;
  c.value = 0.01;
  c.text = "error_rate<1%";
  f.error_rate.push_back(c);
  f.no_timeouts = true;
  f.text = "error_rate<1%, no timeouts";
  return f;
}

void build_leaderboard(Report& rep, const std::vector<Constraint>& cons, Objective objective) {
  const AvailabilityFloor floor = availability_floor(cons);
  std::vector<Constraint> rest;  // the constraints besides the floor's
  for (const auto& c : cons)
    if (c.metric != "error_rate") rest.push_back(c);
  std::vector<LeaderRow> rows;
  for (size_t i = 0; i < rep.runs.size(); ++i) {
    const RunReport& r = rep.runs[i];
    LeaderRow row;
    row.name = r.endpoint.label();
    row.run_index = i;
    row.cost_per_request = std::isnan(metric_value(r, "cost_per_request")) ? -1 : metric_value(r, "cost_per_request");
    row.cost_per_mtok_output = std::isnan(metric_value(r, "cost_per_mtok")) ? -1 : metric_value(r, "cost_per_mtok");
    if (r.summary.n_completed == 0) {
      // Below any floor; the first error says more than "error_rate 100%".
      row.violations.push_back("no request completed" +
                               (r.summary.error_examples.empty() ? std::string() : ": " + r.summary.error_examples.begin()->second.substr(0, 160)));
    } else {
      row.violations = floor_misses(r, floor);
    }
    row.below_floor = !row.violations.empty();
    row.meets = !row.below_floor;
    for (const auto& c : rest) {
      const double v = metric_value(r, c.metric);
      char buf[160];
      if (std::isnan(v)) {
        row.meets = false;
        std::snprintf(buf, sizeof buf, "%s unknown%s", c.metric.c_str(),
                      c.metric == "availability" ? " (no probe history of this endpoint)" : "");
        row.violations.push_back(buf);
        continue;
      }
      if (!holds(c, v)) {
        row.meets = false;
        if (c.metric == "availability")
          std::snprintf(buf, sizeof buf, "availability %s (%d/%d probes), wanted %s", pct(v).c_str(), r.history.n_ok,
                        r.history.n, c.text.c_str());
        else
          std::snprintf(buf, sizeof buf, "%s = %.4g, wanted %s", c.metric.c_str(), v, c.text.c_str());
        row.violations.push_back(buf);
      }
    }
    rows.push_back(std::move(row));
  }
  // Those that qualify, then those that are available but miss a constraint, then those
  // below the floor: a flaky endpoint never ranks above a slow healthy one.
  auto key = [&](const LeaderRow& row) {
    const RunReport& r = rep.runs[row.run_index];
    if (objective == Objective::kCheapest) {
      const double c = row.cost_per_request;
      return std::make_tuple(!row.meets, row.below_floor, c < 0, c < 0 ? 0.0 : c, metric_value(r, "e2e_p50"));
    }
    const double e = metric_value(r, "e2e_p50");
    return std::make_tuple(!row.meets, row.below_floor, std::isnan(e), std::isnan(e) ? 0.0 : e, -r.summary.output_throughput);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const LeaderRow& a, const LeaderRow& b) { return key(a) < key(b); });
  rep.leaderboard = rows;
  const char* obj = objective == Objective::kCheapest ? "cheapest" : "fastest";
  RecommendationInfo& info = rep.recommended;
  info = {};
  info.objective = obj;
  for (const auto& c : rest) info.constraints.push_back(c.text);
  info.availability_floor = floor.text;
  info.floor_source = floor.given ? "given" : "default";
  if (rows.empty()) return;
  std::string why;
  const std::string applied = (rest.empty() ? std::string() : join(info.constraints, ", ") + " and ") +
                              "the availability floor " + floor.text + (floor.given ? " (given)" : " (default)");
  int n_meet = 0;
  for (const auto& r : rows) n_meet += r.meets;
  info.n_qualifying = n_meet;
  if (n_meet == 0) {
    why = "No endpoint meets " + applied + ":";
    for (const auto& r : rows) why += "\n  " + r.name + ": " + leader_row_status(r);
    rep.recommendation = why;
    return;
  }
  const LeaderRow& best = rows.front();
  const RunReport& br = rep.runs[best.run_index];
  info.endpoint = best.name;
  char detail[256];
  if (objective == Objective::kCheapest && best.cost_per_request >= 0)
    std::snprintf(detail, sizeof detail, "$%.6f per request, $%.3f per million output tokens", best.cost_per_request,
                  best.cost_per_mtok_output);
  else if (objective == Objective::kCheapest)
    std::snprintf(detail, sizeof detail, "no endpoint that qualifies has a price; ranked by E2E p50 %.1f ms",
                  metric_value(br, "e2e_p50"));
  else
    std::snprintf(detail, sizeof detail, "E2E p50 %.1f ms, %.1f output tok/s", metric_value(br, "e2e_p50"),
                  br.summary.output_throughput);
  why = "Recommendation: " + best.name + ", the " + obj + " (" + detail + ") of " + std::to_string(n_meet) + " of " +
        std::to_string(rows.size()) + " endpoints meeting " + applied + ".";
  if (br.history.n > 0) why += " Probe history: " + probe_history_text(br.history) + ".";
  if (const std::string v = verify_cell(rep, best.name); !v.empty())
    why += v == "none" || v == "error" ? " bench verify: it serves none of the references."
                                      : " bench verify: it serves " + v + ".";
  for (const auto& r : rows) {
    if (r.meets) continue;
    why += std::string("\n  ") + (r.below_floor ? "excluded " : "rejected ") + r.name + ": " + join(r.violations, "; ");
  }
  rep.recommendation = why;
}

Status read_probe_history(const std::string& text, const std::string& path, std::map<std::string, ProbeHistory>* into) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("--probe-history " + path + ": not JSON");
  const json* probe = j.contains("probe") && j["probe"].is_object() ? &j["probe"] : &j;
  const auto samples = probe->find("samples");
  if (samples == probe->end() || !samples->is_array())
    return invalid_argument("--probe-history " + path + ": no 'samples' (write it with bench probe --output-json)");
  struct S {
    std::string at;
    double t = 0;
    bool ok = false;
  };
  std::map<std::string, std::vector<S>> per;
  for (const auto& s : *samples) {
    if (!s.is_object() || !s.contains("endpoint") || !s["endpoint"].is_string() || !s.contains("ok") ||
        !s["ok"].is_boolean() || !s.contains("at") || !s["at"].is_string())
      return invalid_argument("--probe-history " + path + ": a sample without endpoint, at and ok");
    per[s["endpoint"].get<std::string>()].push_back(
        {s["at"].get<std::string>(), s.value("t_s", 0.0), s["ok"].get<bool>()});
  }
  for (auto& [name, v] : per) {
    std::stable_sort(v.begin(), v.end(), [](const S& a, const S& b) { return a.at < b.at; });
    ProbeHistory& h = (*into)[name];
    // Files are separate runs: a failure streak does not continue across them.
    int streak = 0;
    for (const S& s : v) {
      ++h.n;
      h.n_ok += s.ok;
      streak = s.ok ? 0 : streak + 1;
      h.longest_failure_streak = std::max(h.longest_failure_streak, streak);
    }
    if (h.first_at.empty() || v.front().at < h.first_at) h.first_at = v.front().at;
    if (h.last_at.empty() || v.back().at > h.last_at) h.last_at = v.back().at;
    h.span_s += v.back().t - v.front().t;
    ++h.n_files;
  }
  return Status::ok();
}

json run_probe(const ProbeConfig& cfg, const std::function<void(const ProbeSample&)>& on_sample,
               const std::vector<double>& ps) {
  json samples = json::array();
  struct Acc {
    int n = 0, n_ok = 0, streak = 0, longest = 0;
    std::vector<double> ttft, e2e;
    std::map<std::string, int> errors;
  };
  std::map<std::string, Acc> acc;
  const int64_t t_begin = now_us();
  WorkloadConfig wc;
  wc.input_len = 16;
  wc.output_len = cfg.max_tokens;
  for (int64_t round = 0;; ++round) {
    const int64_t t_round = t_begin + static_cast<int64_t>(round * cfg.every_ms * 1000);
    if (round > 0 && (t_round - t_begin) / 1e3 >= cfg.duration_ms) break;
    const int64_t now = now_us();
    if (t_round > now) std::this_thread::sleep_for(std::chrono::microseconds(t_round - now));
    for (const auto& ep : cfg.endpoints) {
      RunConfig rc;
      rc.endpoint = ep;
      rc.num_requests = 1;
      rc.timeout_ms = cfg.timeout_ms;
      rc.fail_fast = false;
      wc.seed = static_cast<uint64_t>(round);
      auto wl = Workload::create(wc, nullptr);
      ProbeSample s;
      s.endpoint = ep.label();
      s.at = iso8601_utc_now();
      s.t_s = (now_us() - t_begin) / 1e6;
      if (wl.is_ok()) {
        auto r = run_load(rc, **wl, nullptr, nullptr, {});
        if (r.is_ok() && !r->records.empty()) {
          const RequestRecord& rec = r->records.front();
          const RequestMetrics m = request_metrics(rec, {});
          s.ok = rec.ok();
          s.error = rec.ok() ? "" : error_key(rec) + ": " + rec.error_message;
          s.ttft_ms = m.ttft_ms;
          s.e2e_ms = m.e2e_ms;
          s.tpot_ms = m.tpot_ms;
          s.output_tokens = rec.n_output_tokens;
          Acc& a = acc[s.endpoint];
          if (!rec.ok()) ++a.errors[error_key(rec)];
        }
      }
      Acc& a = acc[s.endpoint];
      ++a.n;
      if (s.ok) {
        ++a.n_ok;
        a.streak = 0;
        if (s.ttft_ms >= 0) a.ttft.push_back(s.ttft_ms);
        if (s.e2e_ms >= 0) a.e2e.push_back(s.e2e_ms);
      } else {
        a.longest = std::max(a.longest, ++a.streak);
      }
      json js = {{"endpoint", s.endpoint}, {"at", s.at}, {"t_s", s.t_s}, {"ok", s.ok}, {"output_tokens", s.output_tokens}};
      if (s.ttft_ms >= 0) js["ttft_ms"] = s.ttft_ms;
      if (s.e2e_ms >= 0) js["e2e_ms"] = s.e2e_ms;
      if (!s.ok) js["error"] = s.error;
      samples.push_back(js);
      if (on_sample) on_sample(s);
    }
    if (cfg.every_ms <= 0) break;
  }
  json summary = json::array();
  for (const auto& ep : cfg.endpoints) {
    Acc& a = acc[ep.label()];
    const Distribution t = distribution(a.ttft, ps), e = distribution(a.e2e, ps);
    json ttft = json::object(), e2e = json::object();
    for (const auto& [p, v] : t.percentiles) ttft["p" + std::to_string(static_cast<int>(p))] = t.n ? json(v) : json(nullptr);
    for (const auto& [p, v] : e.percentiles) e2e["p" + std::to_string(static_cast<int>(p))] = e.n ? json(v) : json(nullptr);
    summary.push_back({{"endpoint", ep.label()},
                       {"url", ep.url.str()},
                       {"probes", a.n},
                       {"ok", a.n_ok},
                       {"availability_pct", a.n ? 100.0 * a.n_ok / a.n : 0.0},
                       {"longest_failure_streak", a.longest},
                       {"errors", a.errors},
                       {"ttft_ms", ttft},
                       {"e2e_ms", e2e}});
  }
  return {{"every_ms", cfg.every_ms}, {"duration_ms", cfg.duration_ms}, {"summary", summary}, {"samples", samples}};
}

}  // namespace tachyon::bench
