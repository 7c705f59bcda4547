// tachyon perf -m FILE [-p 512] [-n 128] [-t THREADS] [-r REPS] [--batch B] [-d D,...] [--json]
// Prompt processing (pp) and generation (tg) speed like llama-bench: mean ± sd over reps,
// GB/s of weights streamed, and the fraction of this machine's measured read bandwidth.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "app_util.h"
#include "expert_util.h"
#include "base/bandwidth.h"
#include "base/clock.h"
#include "base/cpu.h"
#include "commands.h"
#include "kernels/traits.h"
#include "model/model.h"

namespace tachyon::apps {

namespace {

struct Stat {
  double mean = 0, sd = 0;
};

Stat stat_of(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= v.size();
  if (v.size() > 1) {
    double q = 0;
    for (double x : v) q += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(q / (v.size() - 1));
  }
  return s;
}

std::vector<int> parse_int_list(const std::string& s) {
  std::vector<int> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    out.push_back(std::stoi(s.substr(i, j - i)));
    i = j + 1;
  }
  return out;
}

}  // namespace

int cmd_perf(int argc, char** argv) {
  CLI::App app{"prompt and generation speed, GB/s and % of measured bandwidth", "tachyon perf"};
  std::string path, depths_arg = "0", pps_arg = "512", verify_arg;
  int n_gen = 128, threads = default_threads(), reps = 3, batch = 1, ubatch = 512;
  bool json = false, bandwidth_only = false, scalar = false, phases = false;
  MemBudgetFlags mem;
  app.add_option("-m,--model", path, "GGUF model file");
  app.add_option("-p,--n-prompt", pps_arg, "prompt lengths for pp tests, comma-separated (0 = skip)");
  app.add_option("-n,--n-gen", n_gen, "tokens for the tg test (0 = skip)")->check(CLI::Range(0, 1 << 20));
  app.add_option("-t,--threads", threads, "compute threads")->check(CLI::Range(1, 1024));
  std::string attn_numerics = "auto";
  app.add_option("--attn-numerics", attn_numerics, kAttnNumericsHelp)->check(CLI::IsMember({"auto", "llama", "f32"}));
  std::string kv_type_name = "f16";
  app.add_option("--kv-type", kv_type_name, kKvTypeHelp)->check(CLI::IsMember({"f16", "q8_0"}));
  app.add_option("-r,--reps", reps, "repetitions")->check(CLI::Range(1, 1000));
  app.add_option("--batch", batch, "sequences decoding together in tg (aggregate tok/s)")->check(CLI::Range(1, 1024));
  app.add_option("-d,--depth", depths_arg, "tokens already in the KV cache, comma-separated (e.g. 0,1024,4096)");
  app.add_option("--ubatch", ubatch, "prompt tokens per step")->check(CLI::Range(1, 1 << 16));
  app.add_option("--verify", verify_arg,
                 "speculative decoding's verify-cost curve: steps where each of --batch sequences carries K tokens "
                 "(all with logits), for each K of a comma list (e.g. 1,2,3,4,5,6,7,8), -n steps at depth -d; prints "
                 "ms per step and t(K)/t(1)");
  app.add_flag("--json", json, "JSON output");
  app.add_flag("--bandwidth", bandwidth_only, "only measure the memory read bandwidth");
  app.add_flag("--scalar", scalar, "use the scalar reference kernels");
  app.add_flag("--phases", phases,
               "after each test, where its measured steps went: ms per step in each phase of the forward pass "
               "(norms, products, attention, ...; each includes its barrier waits)");
  mem.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  std::vector<int> depths, pps, verify_ks;
  try {
    depths = parse_int_list(depths_arg);
    pps = parse_int_list(pps_arg);
    if (!verify_arg.empty()) verify_ks = parse_int_list(verify_arg);
  } catch (const std::exception&) {
    return fail(invalid_argument("-d/-p: expected comma-separated integers"));
  }
  for (int v : depths)
    if (v < 0) return fail(invalid_argument("-d: depths must be >= 0"));
  for (int v : pps)
    if (v < 0) return fail(invalid_argument("-p: prompt lengths must be >= 0"));
  for (int v : verify_ks)
    if (v < 1 || v > 64) return fail(invalid_argument("--verify: tokens per sequence must be in [1, 64]"));
  if (!verify_ks.empty()) pps = {0};  // the curve only
  if (scalar) kernels::force_scalar_kernels(true);
  ThreadPool pool(threads);
  const double bw = measure_read_bandwidth(pool, size_t(1) << 30, 5);
  if (bandwidth_only) {
    if (json) std::printf("{\"read_bandwidth_gb_s\": %.2f, \"threads\": %d}\n", bw, threads);
    else std::printf("read bandwidth: %.2f GB/s (%d threads)\n", bw, threads);
    return 0;
  }
  if (path.empty()) return fail(invalid_argument("-m is required (or --bandwidth)"));
  auto lo = mem.load_options();
  if (!lo) return fail(lo.status());
  auto m = model::Model::load(path, lo.value());
  if (!m) return fail(m.status());
  model::Model& model = *m.value();
  // Under --mem-budget: the experts' read bandwidth (the I/O roofline's numerator), and
  // each test's cache figures (its measured repetitions only).
  model::ExpertCache* experts = const_cast<model::ExpertCache*>(model.expert_cache());
  const double expert_bw = experts ? experts->measure_read_bandwidth(pool, size_t(256) << 20) : 0.0;
  model::ExpertCacheStats ex0;
  {
    model::DecodeNumerics dn = model::DecodeNumerics::kAuto;
    model::parse_decode_numerics(attn_numerics, &dn);
    model.set_decode_numerics(dn);
  }
  const int nv = model.hparams().n_vocab;
  int max_ctx = 0;
  const int max_k = verify_ks.empty() ? 0 : *std::max_element(verify_ks.begin(), verify_ks.end());
  for (int d : depths)
    max_ctx = std::max(max_ctx, d + std::max(n_gen + max_k, *std::max_element(pps.begin(), pps.end())));
  const int page = 16;
  kv::KvType kv_type = kv::KvType::kF16;
  kv::parse_kv_type(kv_type_name, &kv_type);
  auto kv = kv::KvPool::create(model.kv_config(batch * ((max_ctx + page - 1) / page + 1), page, kv_type));
  if (!kv) return fail(kv.status());
  std::mt19937 rng(42);
  auto random_tokens = [&](int n) {
    std::vector<int32_t> t(n);
    for (auto& x : t) x = static_cast<int32_t>(rng() % nv);
    return t;
  };
  std::vector<float> logits;
  // Prefills `toks` into each table from position `start`, in ubatches.
  auto prefill = [&](std::vector<kv::PageTable>& pts, const std::vector<int32_t>& toks) -> Status {
    for (auto& pt : pts) {
      const int start = pt.n_tokens;
      if (!pt.reserve(kv.value(), start + static_cast<int>(toks.size()))) return invalid_argument("kv: out of pages");
      for (size_t s = 0; s < toks.size(); s += ubatch) {
        model::Batch b;
        b.seqs.push_back(&pt);
        const size_t e = std::min(toks.size(), s + ubatch);
        for (size_t i = s; i < e; ++i) b.add(toks[i], start + static_cast<int>(i), 0, i + 1 == toks.size());
        TACHYON_RETURN_IF_ERROR(model.forward(b, kv.value(), pool, &logits));
        pt.n_tokens = start + static_cast<int>(e);
      }
    }
    return Status::ok();
  };
  nlohmann::json results = nlohmann::json::array();
  const double wgb = model.weight_bytes() / 1e9;
  if (!json)
    std::printf("model %s | %s | %.2f GB of weights | %d threads | %s | read bandwidth %.1f GB/s\n\n", path.c_str(),
                model.weight_type().c_str(), wgb, threads, cpu_features_string().c_str(), bw);
  if (!json && experts) {
    const auto es = experts->stats();
    std::printf("expert cache: --mem-budget %.1f MiB of %.1f MiB of routed experts (%.0f%%), %s reads at %.0f MiB/s\n\n",
                es.budget_bytes / 1048576.0, es.expert_bytes / 1048576.0, 100.0 * es.budget_bytes / es.expert_bytes,
                es.direct_io ? "O_DIRECT" : "buffered", expert_bw / 1048576.0);
  }
  if (!json) std::printf("| %-16s | %12s | %14s | %9s | %10s |\n", "test", "depth", "t/s", "GB/s", "% roofline");
  model::StepPhases ph;  // of the current test's measured steps, with --phases
  // Prints (or adds to the test's JSON entry) ph per step, then clears it.
  auto report_phases = [&]() {
    if (!phases || ph.steps == 0) return;
    const double total = ph.total_ms();
    if (json) {
      nlohmann::json j = nlohmann::json::object();
      for (int i = 0; i < model::StepPhases::kN; ++i) j[model::StepPhases::name(i)] = ph.ms[i] / ph.steps;
      results.back()["phases_ms_per_step"] = j;
    } else {
      std::printf("|   %-14s | %12s | %8.3f ms/step (%lld steps)\n", "phases", "", total / ph.steps,
                  static_cast<long long>(ph.steps));
      for (int i = 0; i < model::StepPhases::kN; ++i)
        std::printf("|     %-12s | %12s | %8.3f ms %5.1f%%\n", model::StepPhases::name(i), "", ph.ms[i] / ph.steps,
                    total > 0 ? 100.0 * ph.ms[i] / total : 0.0);
    }
    ph = model::StepPhases{};
  };
  // The expert cache over a test's measured repetitions (tokens: tokens they ran).
  auto report_experts = [&](double tokens, double tps) {
    if (!experts) return;
    const auto s1 = experts->stats();
    const double lookups = static_cast<double>(s1.lookups - ex0.lookups);
    const double hit = lookups > 0 ? (s1.hits - ex0.hits + s1.prefetch_hits - ex0.prefetch_hits) / lookups : 0.0;
    const double bpt = tokens > 0 ? (s1.bytes_read - ex0.bytes_read) / tokens : 0.0;
    // I/O roofline: tokens per second if reading the missed bytes were all a token cost
    const double roof = bpt > 0 ? expert_bw / bpt : 0.0;
    const double issued = static_cast<double>(s1.prefetch_issued - ex0.prefetch_issued);
    const double used = static_cast<double>(s1.prefetch_used - ex0.prefetch_used);
    if (json) {
      results.back()["expert_cache"] = {{"hit_rate", hit},
                                        {"bytes_read_per_token", bpt},
                                        {"read_bandwidth_bytes_per_s", expert_bw},
                                        {"io_roofline_tokens_per_s", roof},
                                        {"of_io_roofline", roof > 0 ? tps / roof : 0.0},
                                        {"prefetch_issued", issued},
                                        {"prefetch_accuracy", issued > 0 ? used / issued : 0.0},
                                        {"wait_s", s1.wait_s - ex0.wait_s}};
    } else {
      std::printf("|   experts: hit rate %.1f%%, read %.2f MiB/token, I/O roofline %.2f t/s (%.0f%% reached), prefetch "
                  "%.0f issued %.0f%% used, waited %.2f s\n",
                  100.0 * hit, bpt / 1048576.0, roof, roof > 0 ? 100.0 * tps / roof : 0.0, issued,
                  issued > 0 ? 100.0 * used / issued : 0.0, s1.wait_s - ex0.wait_s);
    }
  };
  // test_bw: the bandwidth measured around the test (tg), else the one at the start.
  auto report = [&](const std::string& test, int depth, const std::vector<double>& tps, double gbps,
                    double test_bw = 0) {
    const Stat s = stat_of(tps);
    const double ref_bw = test_bw > 0 ? test_bw : bw;
    const double pct = ref_bw > 0 ? 100.0 * gbps / ref_bw : 0;
    if (json) {
      results.push_back({{"test", test}, {"depth", depth}, {"tokens_per_s", s.mean}, {"tokens_per_s_sd", s.sd},
                         {"samples", tps}, {"weights_gb_per_s", gbps}, {"roofline_pct", pct},
                         {"read_bandwidth_gb_s", ref_bw}});
    } else {
      std::printf("| %-16s | %12d | %7.2f ± %4.2f | %9.2f | %9.1f%% |\n", test.c_str(), depth, s.mean, s.sd, gbps, pct);
      std::fflush(stdout);
    }
  };
  if (!verify_ks.empty()) {
    // Each step: every sequence writes K tokens from its next position and asks logits for
    // all of them (a draft of K - 1 being verified), then advances by one (all drafts
    // rejected), so the depth stays put and only K varies.
    const int steps = std::max(1, n_gen);
    if (!json)
      std::printf("\nverify-cost curve: %d sequence%s, %d steps per sample\n| %6s | %8s | %10s | %9s |\n", batch,
                  batch > 1 ? "s" : "", steps, "K", "depth", "ms/step", "t(K)/t(1)");
    for (int depth : depths) {
      double t1 = 0;
      for (int k : verify_ks) {
        std::vector<double> ms_samples;
        for (int r = 0; r <= reps; ++r) {
          std::vector<kv::PageTable> pts(batch);
          if (depth > 0) {
            if (Status st = prefill(pts, random_tokens(depth)); !st) return fail(st);
          }
          for (auto& pt : pts)
            if (!pt.reserve(kv.value(), pt.n_tokens + steps + k)) return fail(invalid_argument("kv: out of pages"));
          const double t0 = now_ms();
          for (int i = 0; i < steps; ++i) {
            model::Batch b;
            for (int sq = 0; sq < batch; ++sq) {
              b.seqs.push_back(&pts[sq]);
              for (int j = 0; j < k; ++j) b.add(static_cast<int32_t>(rng() % nv), pts[sq].n_tokens + j, sq, true);
            }
            if (Status st = model.forward(b, kv.value(), pool, &logits); !st) return fail(st);
            for (auto& pt : pts) pt.n_tokens += 1;
          }
          const double ms = (now_ms() - t0) / steps;
          if (r > 0) ms_samples.push_back(ms);
          for (auto& pt : pts) pt.clear(kv.value());
        }
        const double best = *std::min_element(ms_samples.begin(), ms_samples.end());
        if (k == verify_ks.front()) t1 = best;
        const double ratio = t1 > 0 ? best / t1 : 0;
        if (json) {
          results.push_back({{"test", "verify"}, {"tokens_per_seq", k}, {"batch", batch}, {"depth", depth},
                             {"ms_per_step", best}, {"ms_samples", ms_samples}, {"ratio_to_first", ratio}});
        } else {
          std::printf("| %6d | %8d | %10.3f | %9.3f |\n", k, depth, best, ratio);
          std::fflush(stdout);
        }
      }
    }
  }
  for (int depth : depths) {
    if (!verify_ks.empty()) break;
    for (int p : pps) {
      if (p <= 0) continue;
      std::vector<double> tps;
      for (int r = 0; r <= reps; ++r) {  // r == 0 is a warm-up
        std::vector<kv::PageTable> pts(1);
        if (Status st = prefill(pts, random_tokens(depth)); !st) return fail(st);
        const auto toks = random_tokens(p);
        if (phases && r > 0) model.set_phase_sink(&ph);
        if (experts && r == 1) ex0 = experts->stats();
        const double t0 = now_ms();
        if (Status st = prefill(pts, toks); !st) return fail(st);
        const double ms = now_ms() - t0;
        model.set_phase_sink(nullptr);
        if (r > 0) tps.push_back(p / (ms / 1000));
        pts[0].clear(kv.value());
      }
      // Each ubatch streams the weights once.
      const double steps_per_s = stat_of(tps).mean / std::min(p, ubatch);
      report("pp" + std::to_string(p), depth, tps, steps_per_s * wgb);
      report_experts(static_cast<double>(p) * reps, stat_of(tps).mean);
      report_phases();
    }
    if (n_gen > 0) {
      std::vector<double> tps;
      // The roofline of a decode test is the read bandwidth measured right before and
      // right after it (the larger: the stricter ratio). On a shared machine the
      // bandwidth moves by 1.5x within minutes, so the figure from the start of a long
      // run can be far from the one the test met.
      double test_bw = measure_read_bandwidth(pool, size_t(1) << 30, 3);
      for (int r = 0; r <= reps; ++r) {
        std::vector<kv::PageTable> pts(batch);
        if (depth > 0) {
          if (Status st = prefill(pts, random_tokens(depth)); !st) return fail(st);
        }
        for (auto& pt : pts)
          if (!pt.reserve(kv.value(), pt.n_tokens + n_gen)) return fail(invalid_argument("kv: out of pages"));
        if (phases && r > 0) model.set_phase_sink(&ph);
        if (experts && r == 1) ex0 = experts->stats();
        const double t0 = now_ms();
        for (int i = 0; i < n_gen; ++i) {
          model::Batch b;
          for (int s = 0; s < batch; ++s) {
            b.seqs.push_back(&pts[s]);
            b.add(static_cast<int32_t>(rng() % nv), pts[s].n_tokens, s, true);
          }
          if (Status st = model.forward(b, kv.value(), pool, &logits); !st) return fail(st);
          for (auto& pt : pts) pt.n_tokens += 1;
        }
        const double ms = now_ms() - t0;
        model.set_phase_sink(nullptr);
        if (r > 0) tps.push_back(static_cast<double>(n_gen) * batch / (ms / 1000));
        for (auto& pt : pts) pt.clear(kv.value());
      }
      test_bw = std::max(test_bw, measure_read_bandwidth(pool, size_t(1) << 30, 3));
      const double steps_per_s = stat_of(tps).mean / batch;
      report("tg" + std::to_string(n_gen) + (batch > 1 ? " x" + std::to_string(batch) : ""), depth, tps, steps_per_s * wgb,
             test_bw);
      report_experts(static_cast<double>(n_gen) * batch * reps, stat_of(tps).mean);
      report_phases();
    }
  }
  if (json) {
    nlohmann::json out = {{"model", path}, {"weight_type", model.weight_type()}, {"weights_gb", wgb}, {"threads", threads},
                          {"batch", batch}, {"cpu", cpu_features_string()}, {"read_bandwidth_gb_s", bw}, {"results", results},
                          {"rss_peak_bytes", peak_rss_bytes()}};
    if (experts) out["expert_cache"] = expert_stats_json(experts->stats());
    std::printf("%s\n", out.dump(2).c_str());
  }
  return 0;
}

}  // namespace tachyon::apps
