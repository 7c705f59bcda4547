#include "bench/driver.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include <fstream>
#include <map>
#include <sstream>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::bench {

using json = nlohmann::json;

namespace {

// Sweep points get distinct seeds so that a prefix cache warmed by one point does not
// flatter the next; warm-up prompts come from yet another seed.
constexpr uint64_t kWarmupSeedSalt = 0x9e3779b97f4a7c15ull;

void note(const BenchConfig& cfg, const std::string& s) {
  if (cfg.log) cfg.log(s);
}

}  // namespace

bool report_succeeded(const Report& rep) {
  if (rep.runs.empty()) return false;
  int n_ok = 0;
  for (const auto& r : rep.runs) {
    const bool ok = !r.result.aborted && r.summary.n_completed > 0;
    n_ok += ok;
    if (!ok && rep.command != "compare") return false;
  }
  return n_ok > 0;  // compare: the table ranks what answered; an endpoint that is down is in it
}

Result<Report> run_bench(const BenchConfig& cfg) {
  if (cfg.endpoints.empty()) return invalid_argument("no endpoint given");
  // Validate everything that can be validated before any request is sent.
  {
    auto w = Workload::create(cfg.workload, nullptr);
    if (!w.is_ok()) return w.status();
  }
  std::unique_ptr<gguf::File> gf;
  std::unique_ptr<tok::Tokenizer> tokenizer;
  if (!cfg.tokenizer_path.empty()) {
    auto f = gguf::File::open(cfg.tokenizer_path);
    if (!f.is_ok()) return Status(f.status().code(), "--tokenizer: " + f.status().message());
    auto t = tok::Tokenizer::from_gguf(*f.value());
    if (!t.is_ok()) return Status(t.status().code(), "--tokenizer " + cfg.tokenizer_path + ": " + t.status().message());
    gf = std::move(f.value());
    tokenizer = std::move(t.value());
  }
  std::map<std::string, ProbeHistory> history;
  for (const auto& path : cfg.probe_history) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return Status(ErrorCode::kNotFound, "--probe-history " + path + ": cannot open");
    std::stringstream text;
    text << f.rdbuf();
    TACHYON_RETURN_IF_ERROR(read_probe_history(text.str(), path, &history));
  }
  for (const std::string* out : {&cfg.output_json, &cfg.output_csv, &cfg.output_requests_csv, &cfg.output_html}) {
    if (out->empty()) continue;
    FILE* f = std::fopen(out->c_str(), "ab");  // fail before an hour-long run, not after
    if (!f) return Status(ErrorCode::kIo, *out + ": cannot open for writing");
    std::fclose(f);
  }

  Report rep;
  rep.command = cfg.command;
  rep.provenance = base_provenance(cfg.command_line);
  rep.provenance["workload"] = cfg.workload.to_json();
  rep.provenance["workload"]["tokenizer"] = cfg.tokenizer_path.empty() ? json("none (word approximation)") : json(cfg.tokenizer_path);
  rep.provenance["arrival"] = cfg.run.load.to_json();
  rep.provenance["num_requests"] = cfg.run.num_requests;
  rep.provenance["duration_s"] = cfg.run.duration_s;
  rep.provenance["warmup"] = cfg.run.warmup;
  rep.provenance["timeout_ms"] = cfg.run.timeout_ms;
  rep.provenance["ignore_eos"] = cfg.run.request.ignore_eos;
  if (cfg.run.request.temperature >= 0) rep.provenance["temperature"] = cfg.run.request.temperature;
  if (cfg.run.request.extra_body.is_object()) rep.provenance["extra_body"] = cfg.run.request.extra_body;
  if (cfg.sweep) {
    rep.provenance["sweep"] = {{"kind", cfg.sweep->kind}, {"values", json::array()}};
    for (double v : cfg.sweep->values) rep.provenance["sweep"]["values"].push_back(std::isinf(v) ? json("inf") : json(v));
  }

  for (const auto& ep0 : cfg.endpoints) {
    EndpointSpec ep = ep0;
    std::vector<std::string> listed;
    if (cfg.check_models) {
      std::string warn;
      auto models = fetch_models(ep, std::min(10'000.0, cfg.run.timeout_ms), &warn);
      if (!models.is_ok()) {
        if (cfg.command == "run") return models.status();
        note(cfg, ep.label() + ": " + models.status().message());
        // compare: the endpoint stays in the table, with its failure.
        RunReport rr;
        rr.endpoint = ep;
        rr.result.aborted = true;
        rr.result.abort_reason = models.status().message();
        RequestRecord failed;
        failed.error = ErrorKind::kConnect;
        failed.error_message = models.status().message();
        rr.result.records.push_back(failed);
        rr.summary = summarize(rr.result.records, cfg.report.slo, cfg.report.percentiles);
        rep.runs.push_back(std::move(rr));
        continue;
      }
      listed = *models;
      if (!warn.empty()) note(cfg, ep.label() + ": GET /v1/models: " + warn);
      if (ep.model.empty()) {
        if (listed.empty()) return invalid_argument(ep.label() + ": no --model given and the endpoint lists none");
        ep.model = listed.front();
        note(cfg, ep.label() + ": using model '" + ep.model + "' (the first one the endpoint lists)");
      } else if (!listed.empty() && std::find(listed.begin(), listed.end(), ep.model) == listed.end()) {
        std::string l;
        for (const auto& m : listed) l += (l.empty() ? "" : ", ") + m;
        note(cfg, ep.label() + ": warning: model '" + ep.model + "' is not among the listed models (" + l + ")");
      }
    }
    if (ep.model.empty()) return invalid_argument(ep.label() + ": no model given");

    std::vector<double> points = cfg.sweep ? cfg.sweep->values : std::vector<double>{0};
    for (size_t pi = 0; pi < points.size(); ++pi) {
      RunConfig rc = cfg.run;
      rc.endpoint = ep;
      if (cfg.sweep) {
        if (cfg.sweep->kind == "concurrency") {
          rc.load.concurrency = static_cast<int>(points[pi]);
        } else {
          rc.load.open_loop = true;
          rc.load.rate = points[pi];
        }
      }
      if (pi > 0) rc.warmup = 0;  // the server is warm after the first point
      WorkloadConfig wc = cfg.workload;
      wc.seed = cfg.workload.seed + pi;
      auto wl = Workload::create(wc, tokenizer.get());
      if (!wl.is_ok()) return wl.status();
      WorkloadConfig wwc = wc;
      wwc.seed ^= kWarmupSeedSalt;
      auto wwl = Workload::create(wwc, tokenizer.get());
      if (!wwl.is_ok()) return wwl.status();
      if (rc.num_requests <= 0 && rc.duration_s <= 0) rc.num_requests = std::max(1, (*wl)->natural_size());

      std::string label = ep.label();
      if (cfg.sweep) {
        char b[64];
        std::snprintf(b, sizeof b, " %s=%g", cfg.sweep->kind.c_str(), points[pi]);
        label += b;
      }
      std::unique_ptr<ProgressPrinter> pp;
      ProgressFn progress;
      if (cfg.progress_out) {
        pp = std::make_unique<ProgressPrinter>(cfg.progress_out, cfg.progress_tty, label);
        progress = [p = pp.get()](const Progress& pr) { p->update(pr); };
      }
      auto res = run_load(rc, **wl, wwl->get(), tokenizer.get(), progress);
      if (pp) pp->done();
      if (!res.is_ok()) return res.status();
      RunReport rr;
      rr.endpoint = ep;
      if (cfg.sweep) {
        rr.sweep_kind = cfg.sweep->kind;
        rr.sweep_value = points[pi];
      }
      rr.result = std::move(res.value());
      rr.models_listed = listed;
      rr.summary = summarize(rr.result.records, cfg.report.slo, cfg.report.percentiles);
      compute_cost(rr);
      if (rr.result.aborted) note(cfg, label + ": aborted: " + rr.result.abort_reason);
      rep.runs.push_back(std::move(rr));
      if (rep.runs.back().result.aborted) break;  // the next sweep points would fail alike
    }
  }
  if (!cfg.probe_history.empty()) {
    for (auto& rr : rep.runs) {
      auto it = history.find(rr.endpoint.label());
      if (it != history.end()) rr.history = it->second;
    }
    for (const auto& [name, h] : history) {
      bool used = false;
      for (const auto& rr : rep.runs) used |= rr.endpoint.label() == name;
      if (!used) note(cfg, "--probe-history: endpoint '" + name + "' is not in this run (" + std::to_string(h.n) + " probes ignored)");
    }
    for (const auto& rr : rep.runs)
      if (rr.history.n == 0) note(cfg, "--probe-history: no probe of endpoint '" + rr.endpoint.label() + "'");
  }
  if (cfg.verify) {
    std::vector<std::string> done;
    for (const auto& rr : rep.runs) {
      const std::string label = rr.endpoint.label();
      if (std::find(done.begin(), done.end(), label) != done.end()) continue;
      done.push_back(label);
      note(cfg, "verify " + label);
      json v = cfg.verify(rr.endpoint);
      v["endpoint"] = label;
      rep.verify.push_back(std::move(v));
    }
  }
  if (cfg.command == "compare") build_leaderboard(rep, cfg.recommend, cfg.objective);

  if (!cfg.output_json.empty()) TACHYON_RETURN_IF_ERROR(write_json(cfg.output_json, rep, cfg.report));
  if (!cfg.output_csv.empty()) TACHYON_RETURN_IF_ERROR(write_csv(cfg.output_csv, rep, cfg.report));
  if (!cfg.output_requests_csv.empty())
    TACHYON_RETURN_IF_ERROR(write_requests_csv(cfg.output_requests_csv, rep, cfg.report));
  if (!cfg.output_html.empty()) TACHYON_RETURN_IF_ERROR(write_html(cfg.output_html, rep, cfg.report));
  return rep;
}

}  // namespace tachyon::bench
