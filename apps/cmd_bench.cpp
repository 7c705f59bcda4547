// tachyon bench: load-test, compare and probe OpenAI-compatible endpoints.
//   tachyon bench run --url URL [--model NAME] [workload] [load] [reports]
//   tachyon bench compare --config endpoints.toml [workload] [load] [--recommend C] [--objective O]
//   tachyon bench probe --config endpoints.toml [--every 60s] [--duration 1h]
//   tachyon bench verify --url URL --model NAME --reference A.gguf [--reference B.gguf ...]
// Every subcommand takes --insecure and --ca-file FILE for https:// endpoints.
// Flags become a bench::BenchConfig / ProbeConfig; the work is in src/bench.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "app_util.h"
#include "bench/compare.h"
#include "bench/driver.h"
#include "bench/metrics.h"
#include "bench/verify/verify.h"
#include "commands.h"

namespace tachyon::apps {

namespace {

using namespace tachyon::bench;

// Durations on the command line: "90" = 90 seconds; "500ms", "2s", "5m", "1h".
Result<double> seconds_flag(const std::string& name, const std::string& v) {
  if (!v.empty() && v.find_first_not_of("0123456789.") == std::string::npos) {
    try {
      return std::stod(v);
    } catch (...) {
    }
  }
  auto ms = parse_duration_ms(v);
  if (!ms.is_ok()) return invalid_argument(name + ": " + ms.status().message());
  return *ms / 1e3;
}

Result<std::vector<double>> parse_percentiles(const std::string& s) {
  std::vector<double> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string v = s.substr(i, j - i);
    i = j + 1;
    if (!v.empty() && (v[0] == 'p' || v[0] == 'P')) v.erase(0, 1);
    if (v.empty()) continue;
    try {
      size_t used = 0;
      const double p = std::stod(v, &used);
      if (used != v.size() || p < 0 || p > 100) throw std::invalid_argument(v);
      out.push_back(p);
    } catch (...) {
      return invalid_argument("--percentiles: '" + v + "' is not a percentile in [0, 100]");
    }
  }
  if (out.empty()) return invalid_argument("--percentiles: empty list");
  return out;
}

Status resolve_key(EndpointSpec& ep) {
  if (ep.api_key_env.empty()) return Status::ok();
  const char* k = std::getenv(ep.api_key_env.c_str());
  if (!k || !*k)
    return invalid_argument(ep.label() + ": environment variable " + ep.api_key_env + " (the API key) is not set");
  ep.api_key = k;
  return Status::ok();
}

// https: --insecure / --ca-file on every subcommand; config files may set them per endpoint.
struct TlsFlags {
  bool insecure = false;
  std::string ca_file;
};

void add_tls_flags(CLI::App& app, TlsFlags& t) {
  app.add_flag("--insecure", t.insecure, "https: do not verify the server's certificate (self-signed test servers)");
  app.add_option("--ca-file", t.ca_file, "https: PEM file of CA certificates to trust besides the system store");
}

// The flags apply to every endpoint (--ca-file only where the config names no ca_file).
// A CA file that cannot be read is a usage error now rather than a failure per request.
Status apply_tls(const TlsFlags& t, EndpointSpec& ep) {
  if (t.insecure) ep.tls.verify = false;
  if (ep.tls.ca_file.empty()) ep.tls.ca_file = t.ca_file;
  if (ep.tls.verify && !ep.tls.ca_file.empty()) {
    FILE* f = std::fopen(ep.tls.ca_file.c_str(), "rb");
    if (!f) return Status(ErrorCode::kNotFound, ep.label() + ": CA file " + ep.tls.ca_file + ": cannot open");
    std::fclose(f);
  }
  return Status::ok();
}

// Flags shared by run and compare.
struct Flags {
  std::string api = "chat", len_dist = "fixed", sweep, slo, percentiles = "50,90,95,99";
  std::string duration, timeout = "300s", extra_body, objective = "cheapest", recommend;
  std::string out_json, out_csv, out_req_csv, out_html, tokenizer, dataset;
  int input_len = 256, output_len = 128, prefix_groups = 0, prefix_group_size = 1, prefix_len = 0, turns = 1;
  double len_range = 0.25, burstiness = 1, temperature = -1;
  int concurrency = 1, num_requests = -1, warmup = 0;
  std::string rate;
  uint64_t seed = 0;
  bool ignore_eos = false, no_progress = false, no_fail_fast = false, no_model_check = false, save_text = false;
  std::vector<std::string> references;  // --reference: bench verify after the load
  int verify_probes = 8;
  CLI::Option* output_len_opt = nullptr;
  CLI::Option* concurrency_opt = nullptr;
  TlsFlags tls;
};

void add_common(CLI::App& app, Flags& f) {
  app.add_option("--api", f.api, "chat (/v1/chat/completions) or completions (/v1/completions)")
      ->check(CLI::IsMember({"chat", "completions"}));
  app.add_option("--input-len", f.input_len, "prompt tokens per request (the unique part with prefix groups)");
  f.output_len_opt = app.add_option("--output-len", f.output_len, "max_tokens per request");
  app.add_option("--len-dist", f.len_dist, "length distribution: fixed, uniform or normal");
  app.add_option("--len-range", f.len_range, "uniform: mean*[1-r,1+r]; normal: stddev r*mean (default 0.25)");
  app.add_option("--prefix-groups", f.prefix_groups, "N groups of requests sharing a prefix");
  app.add_option("--prefix-group-size", f.prefix_group_size, "M requests per group");
  app.add_option("--prefix-len", f.prefix_len, "P tokens of shared prefix");
  app.add_option("--turns", f.turns, "turns per session; each turn re-sends the history");
  app.add_option("--dataset", f.dataset, "JSONL file: prompt / messages / ShareGPT conversations per line");
  app.add_option("--tokenizer", f.tokenizer, "GGUF file whose vocabulary sizes prompts and counts output tokens");
  f.concurrency_opt = app.add_option("--concurrency", f.concurrency,
                                     "closed loop: requests in flight (with --rate: the cap on requests in flight)");
  app.add_option("--rate", f.rate, "open loop: Poisson arrivals per second (or inf)");
  app.add_option("--burstiness", f.burstiness, "gamma shape of the arrival gaps: 1 Poisson, <1 burstier");
  app.add_option("--sweep", f.sweep, "run once per value: concurrency=1,2,4,8 or rate=1,2,4");
  app.add_option("--num-requests", f.num_requests, "measured requests per run (default 100, or one pass of a dataset / prefix groups)");
  app.add_option("--duration", f.duration, "stop sending after this long (90, 30s, 5m)");
  app.add_option("--warmup", f.warmup, "warm-up requests before measuring (excluded from every figure)");
  app.add_option("--seed", f.seed, "workload seed");
  app.add_flag("--ignore-eos", f.ignore_eos, "ask the server to generate exactly max_tokens");
  app.add_option("--temperature", f.temperature, "sampling temperature to send (default: the server's)");
  app.add_option("--extra-body", f.extra_body, "JSON object merged into every request body");
  app.add_option("--timeout", f.timeout, "per-request timeout (default 300s)");
  app.add_option("--slo", f.slo, "goodput SLOs, e.g. ttft=500ms,tpot=50ms");
  app.add_option("--percentiles", f.percentiles, "percentiles to report (default 50,90,95,99)");
  app.add_option("--output-json", f.out_json, "summary + per-request records + provenance");
  app.add_option("--output-csv", f.out_csv, "one row per run");
  app.add_option("--output-requests-csv", f.out_req_csv, "one row per request");
  app.add_option("--output-html", f.out_html, "self-contained HTML report with charts");
  app.add_option("--reference", f.references,
                 "after the load, run bench verify against each endpoint with this candidate GGUF file (repeat); the "
                 "reports show which file each endpoint serves");
  app.add_option("--verify-probes", f.verify_probes, "probe prompts per endpoint for --reference (default 8)")
      ->check(CLI::Range(1, 1000));
  app.add_flag("--save-text", f.save_text, "keep each request's output text in the JSON report");
  app.add_flag("--no-progress", f.no_progress, "no progress display");
  app.add_flag("--no-fail-fast", f.no_fail_fast, "keep sending even when every request so far failed");
  app.add_flag("--no-model-check", f.no_model_check, "skip GET /v1/models before the run");
  add_tls_flags(app, f.tls);
}

Status fill_config(const Flags& f, BenchConfig& c) {
  c.workload.input_len = f.input_len;
  c.workload.output_len = f.output_len;
  c.workload.output_len_given = f.output_len_opt->count() > 0;
  auto ld = parse_len_dist(f.len_dist);
  if (!ld.is_ok()) return ld.status();
  c.workload.len_dist = *ld;
  c.workload.len_range = f.len_range;
  c.workload.prefix_groups = f.prefix_groups;
  c.workload.prefix_group_size = f.prefix_group_size;
  c.workload.prefix_len = f.prefix_len;
  c.workload.turns = f.turns;
  c.workload.dataset_path = f.dataset;
  c.workload.seed = f.seed;
  c.tokenizer_path = f.tokenizer;

  RunConfig& r = c.run;
  r.request.ignore_eos = f.ignore_eos;
  r.request.temperature = f.temperature;
  if (!f.extra_body.empty()) {
    r.request.extra_body = nlohmann::json::parse(f.extra_body, nullptr, false);
    if (!r.request.extra_body.is_object()) return invalid_argument("--extra-body must be a JSON object");
  }
  if (!f.rate.empty()) {
    r.load.open_loop = true;
    if (f.rate == "inf") {
      r.load.rate = std::numeric_limits<double>::infinity();
    } else {
      try {
        size_t used = 0;
        r.load.rate = std::stod(f.rate, &used);
        if (used != f.rate.size()) throw std::invalid_argument(f.rate);
      } catch (...) {
        return invalid_argument("--rate '" + f.rate + "' is not a number (or inf)");
      }
    }
    r.load.concurrency = f.concurrency_opt->count() ? f.concurrency : 0;
  } else {
    r.load.concurrency = f.concurrency;
  }
  if (f.concurrency < 1) return invalid_argument("--concurrency must be >= 1");
  r.load.burstiness = f.burstiness;
  if (!f.sweep.empty()) {
    auto sw = parse_sweep(f.sweep);
    if (!sw.is_ok()) return sw.status();
    if (sw->kind == "concurrency" && r.load.open_loop)
      return invalid_argument("--sweep concurrency=... is closed loop; drop --rate (or sweep rate=...)");
    c.sweep = *sw;
  }
  r.warmup = f.warmup;
  if (f.warmup < 0) return invalid_argument("--warmup must be >= 0");
  if (!f.duration.empty()) {
    auto d = seconds_flag("--duration", f.duration);
    if (!d.is_ok()) return d.status();
    if (!(*d > 0)) return invalid_argument("--duration must be > 0");
    r.duration_s = *d;
  }
  if (f.num_requests >= 0) {
    if (f.num_requests == 0) return invalid_argument("--num-requests must be >= 1");
    r.num_requests = f.num_requests;
  } else {
    // Default: 100, one pass over a dataset / prefix groups, or unbounded under --duration.
    r.num_requests = r.duration_s > 0 ? 0 : -1;
  }
  auto t = seconds_flag("--timeout", f.timeout);
  if (!t.is_ok()) return t.status();
  if (!(*t > 0)) return invalid_argument("--timeout must be > 0");
  r.timeout_ms = *t * 1e3;
  r.fail_fast = !f.no_fail_fast;
  if (!f.slo.empty()) {
    auto s = parse_slo(f.slo);
    if (!s.is_ok()) return s.status();
    c.report.slo = *s;
  }
  auto ps = parse_percentiles(f.percentiles);
  if (!ps.is_ok()) return ps.status();
  c.report.percentiles = *ps;
  c.report.include_text = f.save_text;
  c.output_json = f.out_json;
  c.output_csv = f.out_csv;
  c.output_requests_csv = f.out_req_csv;
  c.output_html = f.out_html;
  c.check_models = !f.no_model_check;
  if (!f.no_progress) {
    c.progress_out = stderr;
    c.progress_tty = isatty(fileno(stderr));
  }
  c.log = [](const std::string& s) { std::fprintf(stderr, "bench: %s\n", s.c_str()); };
  if (!f.references.empty()) {
    for (const auto& ref : f.references) {
      FILE* fr = std::fopen(ref.c_str(), "rb");
      if (!fr) return Status(ErrorCode::kNotFound, "--reference " + ref + ": cannot open");
      std::fclose(fr);
    }
    c.verify = [refs = f.references, probes = f.verify_probes, timeout_ms = r.timeout_ms](const EndpointSpec& ep) {
      verify::VerifyConfig vc;
      vc.endpoint = ep;
      vc.references = refs;
      vc.n_probes = probes;
      vc.threads = default_threads();
      vc.timeout_ms = timeout_ms;
      auto rep = verify::run_verify(vc);
      if (!rep.is_ok()) return nlohmann::json{{"error", rep.status().message()}};
      return verify::report_json(vc, *rep);
    };
  }
  return Status::ok();
}

std::string join_args(int argc, char** argv) {
  std::string s = "tachyon";
  for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

// The defaulted request count needs the workload's natural size (known in run_bench).
void default_num_requests(BenchConfig& c) {
  if (c.run.num_requests >= 0) return;
  const bool natural = c.workload.prefix_groups > 0 || !c.workload.dataset_path.empty();
  c.run.num_requests = natural ? 0 : 100;
}

int finish(const Result<Report>& rep, const BenchConfig& c) {
  if (!rep.is_ok()) return fail(rep.status());
  std::fputs(summary_text(rep.value(), c.report).c_str(), stdout);
  std::fflush(stdout);
  if (!report_succeeded(rep.value())) {
    std::fprintf(stderr, "error: %s\n",
                 c.command == "compare" ? "no endpoint completed a request (see the table)" : "no request completed");
    return 1;
  }
  return 0;
}

int bench_run(int argc, char** argv) {
  CLI::App app{"benchmark one OpenAI-compatible endpoint", "tachyon bench run"};
  Flags f;
  std::string url, model, api_key_env, name;
  app.add_option("--url", url,
                 "endpoint base URL, e.g. http://127.0.0.1:8080 or https://api.openai.com/v1 (a trailing /v1 is fine)")
      ->required();
  app.add_option("--model", model, "model name to request (default: the first one /v1/models lists)");
  app.add_option("--api-key-env", api_key_env, "environment variable holding the API key");
  app.add_option("--name", name, "label for reports (default host:port)");
  add_common(app, f);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  BenchConfig c;
  c.command = "run";
  c.command_line = join_args(argc + 1, argv - 1);
  if (Status st = fill_config(f, c); !st) return fail(st);
  default_num_requests(c);
  EndpointSpec ep;
  auto u = Url::parse(url);
  if (!u.is_ok()) return fail(u.status());
  ep.url = *u;
  ep.model = model;
  ep.name = name;
  ep.api_key_env = api_key_env;
  ep.api = f.api == "chat" ? Api::kChat : Api::kCompletions;
  if (Status st = resolve_key(ep); !st) return fail(st);
  if (Status st = apply_tls(f.tls, ep); !st) return fail(st);
  if (ep.model.empty() && f.no_model_check) return fail(invalid_argument("--model is required with --no-model-check"));
  c.endpoints.push_back(ep);
  return finish(run_bench(c), c);
}

// A relative ca_file in the config is relative to the config file's directory.
Result<std::vector<EndpointSpec>> load_endpoints(const std::string& path, const TlsFlags& tls) {
  auto text = read_text_file(path);
  if (!text.is_ok()) return Status(ErrorCode::kNotFound, "--config " + path + ": cannot open");
  auto eps = parse_endpoints(*text, path);
  if (!eps.is_ok()) return eps.status();
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  for (auto& e : *eps) {
    TACHYON_RETURN_IF_ERROR(resolve_key(e));
    if (!e.tls.ca_file.empty() && e.tls.ca_file[0] != '/') e.tls.ca_file = dir + e.tls.ca_file;
    TACHYON_RETURN_IF_ERROR(apply_tls(tls, e));
  }
  return eps;
}

int bench_compare(int argc, char** argv) {
  CLI::App app{"run the same workload against several endpoints and rank them", "tachyon bench compare"};
  Flags f;
  std::string config;
  app.add_option("--config", config, "endpoints file (TOML [[endpoint]] tables or JSON)")->required();
  app.add_option("--recommend", f.recommend,
                 "constraints, e.g. 'ttft_p90<800ms,cost_per_mtok<1'; an availability floor (error_rate<1%, no "
                 "timeouts) always applies, and an error_rate constraint given here replaces it");
  app.add_option("--objective", f.objective,
                 "pick the cheapest or the fastest endpoint that meets the constraints and the availability floor")
      ->check(CLI::IsMember({"cheapest", "fastest"}));
  std::vector<std::string> probe_history;
  app.add_option("--probe-history", probe_history,
                 "bench probe --output-json file(s): availability over time per endpoint name in the leaderboard, and "
                 "the 'availability' metric for --recommend (e.g. availability>99%)");
  add_common(app, f);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  BenchConfig c;
  c.command = "compare";
  c.command_line = join_args(argc + 1, argv - 1);
  if (Status st = fill_config(f, c); !st) return fail(st);
  default_num_requests(c);
  if (!f.recommend.empty()) {
    auto cons = parse_constraints(f.recommend);
    if (!cons.is_ok()) return fail(cons.status());
    c.recommend = *cons;
  }
  c.objective = *parse_objective(f.objective);
  c.probe_history = probe_history;
  auto eps = load_endpoints(config, f.tls);
  if (!eps.is_ok()) return fail(eps.status());
  for (auto& e : *eps) {
    if (f.api != "chat") e.api = Api::kCompletions;
    c.endpoints.push_back(e);
  }
  return finish(run_bench(c), c);
}

int bench_probe(int argc, char** argv) {
  CLI::App app{"probe endpoints periodically: availability and latency over time", "tachyon bench probe"};
  std::string config, every = "60s", duration = "1h", timeout = "30s", out_json, percentiles = "50,90,99";
  int max_tokens = 16;
  app.add_option("--config", config, "endpoints file (TOML [[endpoint]] tables or JSON)")->required();
  app.add_option("--every", every, "interval between probes (default 60s)");
  app.add_option("--duration", duration, "how long to probe (default 1h)");
  app.add_option("--timeout", timeout, "per-probe timeout (default 30s)");
  app.add_option("--max-tokens", max_tokens, "tokens to generate per probe (default 16)");
  app.add_option("--percentiles", percentiles, "percentiles to report (default 50,90,99)");
  app.add_option("--output-json", out_json, "every sample and the per-endpoint summary");
  TlsFlags tls;
  add_tls_flags(app, tls);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  ProbeConfig pc;
  auto e = seconds_flag("--every", every), d = seconds_flag("--duration", duration), t = seconds_flag("--timeout", timeout);
  for (auto* r : {&e, &d, &t})
    if (!r->is_ok()) return fail(r->status());
  if (!(*e > 0) || !(*d > 0) || !(*t > 0)) return fail(invalid_argument("--every, --duration and --timeout must be > 0"));
  if (max_tokens < 1) return fail(invalid_argument("--max-tokens must be >= 1"));
  auto ps = parse_percentiles(percentiles);
  if (!ps.is_ok()) return fail(ps.status());
  pc.every_ms = *e * 1e3;
  pc.duration_ms = *d * 1e3;
  pc.timeout_ms = *t * 1e3;
  pc.max_tokens = max_tokens;
  auto eps = load_endpoints(config, tls);
  if (!eps.is_ok()) return fail(eps.status());
  for (auto& ep : *eps)
    if (ep.model.empty()) return fail(invalid_argument(config + ": endpoint '" + ep.name + "' has no model"));
  pc.endpoints = *eps;
  if (!out_json.empty()) {
    FILE* fo = std::fopen(out_json.c_str(), "ab");
    if (!fo) return fail(Status(ErrorCode::kIo, out_json + ": cannot open for writing"));
    std::fclose(fo);
  }
  auto result = run_probe(pc, [](const ProbeSample& s) {
    if (s.ok)
      std::printf("%s  %-20s ok    TTFT %8.1f ms  E2E %8.1f ms  %d tokens\n", s.at.c_str(), s.endpoint.c_str(), s.ttft_ms,
                  s.e2e_ms, s.output_tokens);
    else
      std::printf("%s  %-20s FAIL  %s\n", s.at.c_str(), s.endpoint.c_str(), s.error.substr(0, 160).c_str());
    std::fflush(stdout);
  }, *ps);
  std::printf("\n%-20s %8s %8s %14s %10s %10s\n", "endpoint", "probes", "ok", "availability", "TTFT p50", "E2E p50");
  bool any_ok = false;
  for (const auto& s : result["summary"]) {
    const auto& t50 = s["ttft_ms"]["p50"];
    const auto& e50 = s["e2e_ms"]["p50"];
    std::printf("%-20s %8d %8d %13.1f%% %10s %10s\n", s["endpoint"].get<std::string>().c_str(), s["probes"].get<int>(),
                s["ok"].get<int>(), s["availability_pct"].get<double>(),
                t50.is_number() ? std::to_string(static_cast<int>(std::lround(t50.get<double>()))).c_str() : "-",
                e50.is_number() ? std::to_string(static_cast<int>(std::lround(e50.get<double>()))).c_str() : "-");
    any_ok |= s["ok"].get<int>() > 0;
  }
  if (!out_json.empty()) {
    Report rep;
    rep.command = "probe";
    rep.provenance = base_provenance(join_args(argc + 1, argv - 1));
    rep.probe = result;
    ReportOptions ro;
    ro.percentiles = *ps;
    if (Status st = write_json(out_json, rep, ro); !st) return fail(st);
  }
  return any_ok ? 0 : 1;
}

// Exit codes: 0 a reference matched, 3 none matched, 2 bad flags or unreadable reference
// files, 1 the endpoint failed (unreachable, HTTP error, not an OpenAI response).
int bench_verify(int argc, char** argv) {
  CLI::App app{"which reference GGUF file does an endpoint serve? (greedy probes, logprobs compared locally)",
               "tachyon bench verify"};
  std::string url, model, api = "completions", api_key_env, out_json, timeout = "60s";
  std::vector<std::string> refs;
  verify::VerifyConfig vc;
  vc.threads = default_threads();
  app.add_option("--url", url, "endpoint base URL, e.g. http://127.0.0.1:8080")->required();
  app.add_option("--model", model, "model name to request");
  app.add_option("--reference", refs, "candidate GGUF file (repeat for each candidate)")->required();
  app.add_option("--api", api, "completions (/v1/completions, default) or chat (/v1/chat/completions)")
      ->check(CLI::IsMember({"chat", "completions"}));
  app.add_option("--api-key-env", api_key_env, "environment variable holding the API key");
  app.add_option("--probes", vc.n_probes, "number of probe prompts (default 8)")->check(CLI::Range(1, 1000));
  app.add_option("--max-tokens", vc.max_tokens, "greedy tokens per probe (default 16)")->check(CLI::Range(1, 4096));
  app.add_option("--top-logprobs", vc.top_logprobs, "alternatives per token to ask for (default 5)")
      ->check(CLI::Range(0, 20));
  app.add_option("--seed", vc.seed, "probe set and request seed (default 0)");
  app.add_option("--timeout", timeout, "per-request timeout (default 60s)");
  app.add_option("-t,--threads", vc.threads, "local compute threads")->check(CLI::Range(1, 1024));
  app.add_option("--numerics", vc.numerics,
                 "local replay numerics: auto (the endpoint's, by GET /v1/models; both for an unknown server), "
                 "tachyon, llama")
      ->check(CLI::IsMember({"auto", "tachyon", "llama"}));
  std::string extra_body;
  app.add_option("--extra-body", extra_body, "JSON object merged into every probe request");
  app.add_option("--json", out_json, "write the result as JSON to this file");
  std::string out_html;
  app.add_option("--output-html", out_html, "write the result as a self-contained HTML page");
  TlsFlags tls;
  add_tls_flags(app, tls);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto u = Url::parse(url);
  if (!u.is_ok()) return fail(u.status());
  vc.endpoint.url = *u;
  vc.endpoint.model = model;
  vc.endpoint.api_key_env = api_key_env;
  vc.endpoint.api = api == "chat" ? Api::kChat : Api::kCompletions;
  if (Status st = resolve_key(vc.endpoint); !st) return fail(st);
  if (Status st = apply_tls(tls, vc.endpoint); !st) return fail(st);
  auto t = seconds_flag("--timeout", timeout);
  if (!t.is_ok()) return fail(t.status());
  if (!(*t > 0)) return fail(invalid_argument("--timeout must be > 0"));
  vc.timeout_ms = *t * 1e3;
  if (!extra_body.empty()) {
    vc.extra_body = nlohmann::json::parse(extra_body, nullptr, false);
    if (!vc.extra_body.is_object()) return fail(invalid_argument("--extra-body must be a JSON object"));
  }
  for (const auto& r : refs) {
    FILE* f = std::fopen(r.c_str(), "rb");
    if (!f) return fail(Status(ErrorCode::kNotFound, "--reference " + r + ": cannot open"));
    std::fclose(f);
  }
  vc.references = refs;
  vc.log = [](const std::string& s) { std::fprintf(stderr, "verify: %s\n", s.c_str()); };
  auto rep = verify::run_verify(vc);
  if (!rep.is_ok()) return fail(rep.status());
  std::fputs(verify::report_text(vc, *rep).c_str(), stdout);
  std::fflush(stdout);
  if (!out_json.empty()) {
    FILE* fo = std::fopen(out_json.c_str(), "wb");
    if (!fo) return fail(Status(ErrorCode::kIo, out_json + ": cannot open for writing"));
    const std::string j = verify::report_json(vc, *rep).dump(2) + "\n";
    const bool ok = std::fwrite(j.data(), 1, j.size(), fo) == j.size();
    if (std::fclose(fo) != 0 || !ok) return fail(Status(ErrorCode::kIo, out_json + ": write failed"));
  }
  if (!out_html.empty()) {
    Report hr;
    hr.command = "verify";
    hr.provenance = base_provenance(join_args(argc + 1, argv - 1));
    nlohmann::json v = verify::report_json(vc, *rep);
    v["endpoint"] = vc.endpoint.url.str();
    hr.verify.push_back(std::move(v));
    if (Status st = write_html(out_html, hr, ReportOptions{}); !st) return fail(st);
  }
  for (const auto& c : rep->candidates)
    if (c.verdict == "error") return fail(Status(ErrorCode::kInvalidArgument, "--reference " + c.path + ": " + c.error));
  return rep->match >= 0 ? 0 : 3;
}

void usage(FILE* out) {
  std::fprintf(out,
               "usage: tachyon bench <run|compare|probe|verify> [options]\n\n"
               "  run      benchmark one OpenAI-compatible endpoint\n"
               "  compare  same workload against several endpoints, leaderboard and recommendation\n"
               "  probe    availability and latency of endpoints over time\n"
               "  verify   which reference GGUF file (if any) an endpoint serves\n\n"
               "run 'tachyon bench <command> --help' for its options\n");
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string sub = argv[1];
  if (sub == "-h" || sub == "--help" || sub == "help") {
    usage(stdout);
    return 0;
  }
  if (sub == "run") return bench_run(argc - 1, argv + 1);
  if (sub == "compare") return bench_compare(argc - 1, argv + 1);
  if (sub == "probe") return bench_probe(argc - 1, argv + 1);
  if (sub == "verify") return bench_verify(argc - 1, argv + 1);
  std::fprintf(stderr, "tachyon bench: unknown command '%s'\n", sub.c_str());
  usage(stderr);
  return 2;
}

}  // namespace tachyon::apps
