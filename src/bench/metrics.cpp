#include "bench/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace tachyon::bench {

Result<double> parse_duration_ms(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return invalid_argument("'" + s + "' is not a duration (e.g. 500ms, 2s, 1m)");
  double v;
  try {
    v = std::stod(s.substr(0, i));
  } catch (...) {
    return invalid_argument("'" + s + "' is not a duration (e.g. 500ms, 2s, 1m)");
  }
  const std::string unit = s.substr(i);
  if (unit.empty() || unit == "ms") return v;
  if (unit == "s") return v * 1e3;
  if (unit == "m" || unit == "min") return v * 60e3;
  if (unit == "h") return v * 3600e3;
  if (unit == "us") return v / 1e3;
  return invalid_argument("'" + s + "': unknown unit '" + unit + "' (use ms, s, m or h)");
}

Result<Slo> parse_slo(const std::string& s) {
  Slo slo;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string item = s.substr(i, j - i);
    i = j + 1;
    item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
    if (item.empty()) continue;
    const size_t eq = item.find_first_of("=<:");
    if (eq == std::string::npos) return invalid_argument("--slo: '" + item + "' should be name=value, e.g. ttft=500ms");
    const std::string name = item.substr(0, eq);
    std::string val = item.substr(eq + 1);
    if (!val.empty() && val[0] == '=') val.erase(0, 1);
    auto v = parse_duration_ms(val);
    if (!v.is_ok()) return invalid_argument("--slo " + name + ": " + v.status().message());
    if (name == "ttft") slo.ttft_ms = *v;
    else if (name == "tpot") slo.tpot_ms = *v;
    else if (name == "e2e" || name == "e2el") slo.e2e_ms = *v;
    else if (name == "itl") slo.itl_ms = *v;
    else return invalid_argument("--slo: unknown metric '" + name + "' (ttft, tpot, itl, e2e)");
  }
  return slo;
}

std::string slo_to_string(const Slo& s) {
  std::string out;
  auto add = [&](const char* n, double v) {
    if (v < 0) return;
    if (!out.empty()) out += ",";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s=%gms", n, v);
    out += buf;
  };
  add("ttft", s.ttft_ms);
  add("tpot", s.tpot_ms);
  add("itl", s.itl_ms);
  add("e2e", s.e2e_ms);
  return out;
}

RequestMetrics request_metrics(const RequestRecord& r, const Slo& slo) {
  RequestMetrics m;
  m.completed = r.ok();
  m.n_output_tokens = r.n_output_tokens;
  if (r.chunks.empty()) {
    m.met_slo = m.completed && !(slo.ttft_ms >= 0) && !(slo.e2e_ms >= 0);
    return m;
  }
  const int64_t t0 = r.t_send_us;
  const int64_t t1 = r.chunks.front().t_us;
  const int64_t tl = r.chunks.back().t_us;
  m.ttft_ms = (t1 - t0) / 1e3;
  m.e2e_ms = (tl - t0) / 1e3;
  const int n = r.n_output_tokens;
  if (n >= 2) m.tpot_ms = (m.e2e_ms - m.ttft_ms) / (n - 1);
  for (size_t i = 1; i < r.chunks.size(); ++i) {
    const int k = std::max(1, r.chunks[i].n_tokens);
    const double gap = (r.chunks[i].t_us - r.chunks[i - 1].t_us) / 1e3;
    for (int j = 0; j < k; ++j) m.itl_ms.push_back(gap / k);
  }
  const auto& tm = r.timings;
  if (tm.present && (tm.queue_ms >= 0 || tm.prompt_ms >= 0)) {
    m.queue_ms = std::max(0.0, tm.queue_ms);
    m.prefill_ms = std::max(0.0, tm.prompt_ms);
    m.network_ms = m.ttft_ms - m.queue_ms - m.prefill_ms;
  }
  if (m.completed) {
    bool ok = true;
    if (slo.ttft_ms >= 0) ok &= m.ttft_ms <= slo.ttft_ms;
    if (slo.tpot_ms >= 0 && m.tpot_ms >= 0) ok &= m.tpot_ms <= slo.tpot_ms;
    if (slo.e2e_ms >= 0) ok &= m.e2e_ms <= slo.e2e_ms;
    if (slo.itl_ms >= 0)
      for (double g : m.itl_ms) ok &= g <= slo.itl_ms;
    m.met_slo = ok;
  }
  return m;
}

double percentile_sorted(const std::vector<double>& v, double p) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double pos = std::clamp(p, 0.0, 100.0) / 100.0 * (v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

double Distribution::at(double p) const {
  for (const auto& [q, v] : percentiles)
    if (std::abs(q - p) < 1e-9) return v;
  return std::numeric_limits<double>::quiet_NaN();
}

Distribution distribution(std::vector<double>& v, const std::vector<double>& ps) {
  Distribution d;
  d.n = v.size();
  for (double p : ps) d.percentiles.emplace_back(p, std::numeric_limits<double>::quiet_NaN());
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  d.mean = sum / v.size();
  double ss = 0;
  for (double x : v) ss += (x - d.mean) * (x - d.mean);
  d.stddev = std::sqrt(ss / v.size());
  d.min = v.front();
  d.max = v.back();
  for (auto& [p, val] : d.percentiles) val = percentile_sorted(v, p);
  return d;
}

std::string error_key(const RequestRecord& r) {
  if (r.error == ErrorKind::kHttpStatus) return "http_" + std::to_string(r.http_status);
  return error_kind_name(r.error);
}

Summary summarize(const std::vector<RequestRecord>& recs, const Slo& slo, const std::vector<double>& ps) {
  Summary s;
  std::vector<double> ttft, tpot, itl, e2e, queue, prefill, network;
  int64_t t_start = std::numeric_limits<int64_t>::max(), t_end = 0;
  std::map<std::string, int> sources;
  std::set<std::string> models;
  for (const auto& r : recs) {
    if (r.warmup) continue;
    ++s.n_requests;
    t_start = std::min(t_start, r.t_send_us);
    t_end = std::max(t_end, r.t_end_us);
    if (!r.ok()) {
      ++s.n_failed;
      const std::string k = error_key(r);
      if (s.errors[k]++ == 0) s.error_examples[k] = r.error_message;
      if (r.error == ErrorKind::kTimeout) ++s.n_timeouts;
      continue;
    }
    ++s.n_completed;
    const RequestMetrics m = request_metrics(r, slo);
    s.total_output_tokens += m.n_output_tokens;
    s.total_input_tokens += r.usage_prompt_tokens >= 0 ? r.usage_prompt_tokens : std::max(0, r.n_prompt_tokens_client);
    s.total_cached_tokens += std::max(0, r.usage_cached_tokens);
    if (m.ttft_ms >= 0) ttft.push_back(m.ttft_ms);
    if (m.e2e_ms >= 0) e2e.push_back(m.e2e_ms);
    if (m.tpot_ms >= 0) tpot.push_back(m.tpot_ms);
    itl.insert(itl.end(), m.itl_ms.begin(), m.itl_ms.end());
    if (m.queue_ms >= 0) {
      queue.push_back(m.queue_ms);
      prefill.push_back(m.prefill_ms);
      network.push_back(m.network_ms);
    }
    if (r.timings.present) ++s.n_timings;
    if (slo.any() && m.met_slo) ++s.n_good;
    if (r.usage_completion_tokens < 0) {
      ++s.n_usage_missing;
    } else if (r.usage_completion_tokens != r.n_output_tokens_client) {
      ++s.n_token_mismatch;
      s.max_token_mismatch = std::max(s.max_token_mismatch, std::abs(r.usage_completion_tokens - r.n_output_tokens_client));
    }
    ++sources[token_source_name(r.token_source)];
    if (!r.served_model.empty()) models.insert(r.served_model);
  }
  if (s.n_requests > 0 && t_end > t_start) s.window_s = (t_end - t_start) / 1e6;
  if (s.window_s > 0) {
    s.request_throughput = s.n_completed / s.window_s;
    s.output_throughput = s.total_output_tokens / s.window_s;
    s.total_token_throughput = (s.total_input_tokens + s.total_output_tokens) / s.window_s;
    s.goodput = s.n_good / s.window_s;
  }
  s.ttft = distribution(ttft, ps);
  s.tpot = distribution(tpot, ps);
  s.itl = distribution(itl, ps);
  s.e2e = distribution(e2e, ps);
  s.queue = distribution(queue, ps);
  s.prefill = distribution(prefill, ps);
  s.network = distribution(network, ps);
  int best = 0;
  for (const auto& [k, n] : sources)
    if (n > best) best = n, s.token_source = k;
  s.served_models.assign(models.begin(), models.end());
  return s;
}

}  // namespace tachyon::bench
