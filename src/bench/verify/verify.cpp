// bench verify: the verdict over the candidates and the reports (see verify.h).
#include "bench/verify/verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tachyon::bench::verify {

void finish_distance(CandidateResult& c, bool logprobs_mode) {
  if (c.n_positions == 0 || c.coverage < kMinCoverage) {
    c.distance = std::numeric_limits<double>::infinity();
    c.measure = logprobs_mode ? (c.n_pairs > 0 ? "logprob" : "argmax") : "text";
  } else if (logprobs_mode && c.n_pairs > 0) {
    c.distance = c.mean_abs_logprob_diff;
    c.measure = "logprob";
  } else {
    c.distance = 1 - c.argmax_agreement;
    c.measure = logprobs_mode ? "argmax" : "text";
  }
}

namespace {

std::string base_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string measure_text(const CandidateResult& c) {
  if (c.measure == "logprob") return "mean |dlogprob| over " + std::to_string(c.n_pairs) + " compared logprobs";
  if (c.measure == "argmax") return "argmax disagreement over " + std::to_string(c.n_positions) + " positions (no comparable logprob)";
  return "greedy text disagreement over " + std::to_string(c.n_positions) + " steps";
}

std::string fmt4(double d) {
  if (!std::isfinite(d)) return "inf";
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", d);
  return b;
}

}  // namespace

int decide(std::vector<CandidateResult>& cands, std::string* decided_by) {
  std::string dummy;
  std::string& why = decided_by ? *decided_by : dummy;
  why.clear();
  std::vector<size_t> order;
  for (size_t i = 0; i < cands.size(); ++i) {
    if (!cands[i].verdict.empty()) continue;  // "error" already
    cands[i].verdict = std::isfinite(cands[i].distance) ? "no match" : "mismatch";
    if (std::isfinite(cands[i].distance)) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return cands[a].distance < cands[b].distance; });
  if (order.empty()) {
    why = "no candidate's tokenizer maps at least " + std::to_string(static_cast<int>(kMinCoverage * 100)) +
          "% of the endpoint's tokens";
    return -1;
  }
  const CandidateResult& best = cands[order[0]];
  const std::string lead = measure_text(best) + ": ";
  if (best.distance > kMatchMaxDistance) {
    why = lead + "the closest, " + base_name(best.path) + ", is at " + fmt4(best.distance) + " > " + fmt4(kMatchMaxDistance) +
          " (the most a served file differs by numerics alone)";
    return -1;
  }
  if (order.size() >= 2) {
    const CandidateResult& second = cands[order[1]];
    if (!(best.distance < kMatchRatio * second.distance)) {
      // Too close to call: flag every candidate within the ratio of the best.
      for (size_t i : order)
        if (kMatchRatio * cands[i].distance <= best.distance) cands[i].verdict = "ambiguous";
      why = lead + base_name(best.path) + " " + fmt4(best.distance) + " is not < " + fmt4(kMatchRatio) + " x " +
            base_name(second.path) + " " + fmt4(second.distance) + ": too close to call";
      return -1;
    }
    why = lead + base_name(best.path) + " " + fmt4(best.distance) + " < " + fmt4(kMatchRatio) + " x " +
          base_name(second.path) + " " + fmt4(second.distance);
  } else {
    why = lead + base_name(best.path) + " " + fmt4(best.distance) + " <= " + fmt4(kMatchMaxDistance) +
          " (the only candidate that fits)";
  }
  cands[order[0]].verdict = "match";
  return static_cast<int>(order[0]);
}

Result<VerifyReport> run_verify(const VerifyConfig& cfg) {
  if (cfg.references.empty()) return invalid_argument("at least one --reference file is needed");
  const std::vector<Probe> probes = make_probes(cfg.n_probes, cfg.seed);
  auto remote = query_endpoint(cfg, probes);
  if (!remote) return remote.status();
  VerifyReport rep;
  rep.mode = remote->logprobs ? "logprobs" : "text";
  rep.note = remote->note;
  rep.server = remote->server;
  size_t n_tokens = 0;
  for (const auto& p : remote->probes) n_tokens += remote->logprobs ? p.tokens.size() : p.text.size();
  if (n_tokens == 0) return Status(ErrorCode::kInternal, "the endpoint generated nothing for any probe; cannot compare");
  for (const auto& path : cfg.references) {
    if (cfg.log) cfg.log("scoring " + path);
    rep.candidates.push_back(score_reference(cfg, probes, remote.value(), path));
  }
  rep.match = decide(rep.candidates, &rep.decided_by);
  return rep;
}

std::string report_text(const VerifyConfig& cfg, const VerifyReport& r) {
  std::string out;
  char line[1024];
  std::snprintf(line, sizeof line, "endpoint %s (%s, model %s, server %s): %d probes x %d tokens, mode %s\n",
                cfg.endpoint.url.str().c_str(), api_path(cfg.endpoint.api).c_str(),
                cfg.endpoint.model.empty() ? "-" : cfg.endpoint.model.c_str(),
                r.server.empty() ? "not recognized" : r.server.c_str(), cfg.n_probes, cfg.max_tokens, r.mode.c_str());
  out += line;
  if (!r.note.empty()) out += "note: " + r.note + "\n";
  const char* agree_head = r.mode == "logprobs" ? "argmax agree" : "text agree";
  std::snprintf(line, sizeof line, "\n%-44s %10s %10s %13s %9s %10s  %s\n", "candidate", "distance", "|dlogp|",
                agree_head, "coverage", "positions", "verdict");
  out += line;
  for (const auto& c : r.candidates) {
    std::string name = base_name(c.path);
    if (name.size() > 44) name = name.substr(0, 41) + "...";
    char agree[32], dlp[32], cov[32];
    std::snprintf(agree, sizeof agree, "%.1f%%", 100 * c.argmax_agreement);
    std::snprintf(cov, sizeof cov, "%.1f%%", 100 * c.coverage);
    if (r.mode == "logprobs" && c.n_pairs > 0)
      std::snprintf(dlp, sizeof dlp, "%.4f", c.mean_abs_logprob_diff);
    else
      std::snprintf(dlp, sizeof dlp, "-");
    std::snprintf(line, sizeof line, "%-44s %10s %10s %13s %9s %10lld  %s\n", name.c_str(), fmt4(c.distance).c_str(),
                  c.error.empty() ? dlp : "-", c.error.empty() ? agree : "-", c.error.empty() ? cov : "-",
                  static_cast<long long>(c.n_positions), c.verdict.c_str());
    out += line;
    if (!c.error.empty()) out += "  error: " + c.error + "\n";
    if (c.n_prompt_token_mismatch > 0)
      out += "  note: " + std::to_string(c.n_prompt_token_mismatch) +
             " probe(s) where the endpoint counted a different number of prompt tokens\n";
  }
  // How the endpoint's tokens were mapped (the same for every candidate that shares a vocabulary).
  for (const auto& c : r.candidates) {
    if (!c.error.empty() || r.mode != "logprobs") continue;
    out += "tokens mapped by id " + std::to_string(c.n_by_id) + ", by bytes " + std::to_string(c.n_by_bytes) +
           ", by text " + std::to_string(c.n_by_text) + "; merged entries " + std::to_string(c.n_merged) +
           ", ambiguous texts " + std::to_string(c.n_ambiguous) + " (followed, logprob not compared); replayed with " +
           c.numerics + " numerics\n";
    break;
  }
  std::snprintf(line, sizeof line,
                "\nrule: the closest candidate matches when distance <= %.2f and < %.2f x the next closest\n",
                kMatchMaxDistance, kMatchRatio);
  out += line;
  if (!r.decided_by.empty()) out += "decided by " + r.decided_by + "\n";
  if (r.match >= 0)
    out += "verdict: the endpoint serves " + r.candidates[r.match].path + "\n";
  else
    out += "verdict: the endpoint matches none of the references\n";
  return out;
}

nlohmann::json report_json(const VerifyConfig& cfg, const VerifyReport& r) {
  using json = nlohmann::json;
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json cands = json::array();
  for (const auto& c : r.candidates) {
    json j = {{"path", c.path},
              {"distance", num(c.distance)},
              {"mean_abs_logprob_diff", c.n_pairs > 0 ? json(c.mean_abs_logprob_diff) : json(nullptr)},
              {"argmax_agreement", c.argmax_agreement},
              {"coverage", c.coverage},
              {"compared_positions", c.n_positions},
              {"compared_pairs", c.n_pairs},
              {"endpoint_tokens", c.n_remote_tokens},
              {"prompt_token_count_mismatches", c.n_prompt_token_mismatch},
              {"measure", c.measure},
              {"numerics", c.numerics},
              {"merged", c.n_merged},
              {"mapped", {{"id", c.n_by_id}, {"bytes", c.n_by_bytes}, {"text", c.n_by_text}, {"ambiguous", c.n_ambiguous}}},
              {"verdict", c.verdict}};
    if (!c.error.empty()) j["error"] = c.error;
    cands.push_back(std::move(j));
  }
  return {{"command", "verify"},
          {"endpoint", {{"url", cfg.endpoint.url.str()}, {"model", cfg.endpoint.model}, {"api", api_path(cfg.endpoint.api)}}},
          {"probes", cfg.n_probes},
          {"max_tokens", cfg.max_tokens},
          {"top_logprobs", cfg.top_logprobs},
          {"seed", cfg.seed},
          {"mode", r.mode},
          {"server", r.server.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.server)},
          {"note", r.note},
          {"rule",
           {{"max_distance", kMatchMaxDistance},
            {"ratio_to_next", kMatchRatio},
            {"min_coverage", kMinCoverage},
            {"distance",
             r.mode == "logprobs" ? "mean |dlogprob| over compared logprobs (1 - argmax agreement when none)"
                                  : "1 - greedy text agreement"}}},
          {"decided_by", r.decided_by},
          {"candidates", cands},
          {"match", r.match >= 0 ? json(r.candidates[r.match].path) : json(nullptr)}};
}

}  // namespace tachyon::bench::verify
