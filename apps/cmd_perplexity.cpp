// tachyon perplexity -m FILE -f TEXT [--ctx 512] [--chunks N] [--save-logits F] [--kl-base F] [--json]
// Perplexity of a text by llama-perplexity's method (model/perplexity.h), so the numbers
// compare with llama.cpp's. --save-logits writes the scored positions' log-probabilities
// (a base model's, e.g. F16); --kl-base reads such a file and reports how far this model's
// distributions are from the base's: KL divergence, top-1 agreement, and the change of the
// probability of the text's next token (delta p), as llama-perplexity --kl-divergence does.
//
// Logits file (little-endian): "TCHLOGP1", int32 n_ctx, n_vocab, n_chunks, n_scored
// (positions per chunk), int32 tokens[n_chunks * n_ctx], then for every chunk and scored
// position n_vocab f16 log-probabilities.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app_util.h"
#include "base/fp16.h"
#include "commands.h"
#include "kernels/traits.h"
#include "model/model.h"
#include "model/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::apps {

namespace {

constexpr char kMagic[8] = {'T', 'C', 'H', 'L', 'O', 'G', 'P', '1'};
// llama-perplexity --kl-divergence-base files: u32 n_ctx, i32 n_vocab, i32 n_chunk, the
// tokens, then per scored position a row of 2*((n_vocab+1)/2) + 4 u16: f32 scale, f32
// min_log_prob, and the log-probabilities quantized as min_log_prob + scale * q.
constexpr char kLlamaMagic[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

struct LogitsHeader {
  int32_t n_ctx = 0, n_vocab = 0, n_chunks = 0, n_scored = 0;
};

// Mean and standard error of a running sum, as llama-perplexity reports them.
struct Moments {
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void add(double v) {
    sum += v;
    sum2 += v * v;
    ++n;
  }
  double mean() const { return n ? sum / n : 0; }
  double stderr_of_mean() const {
    if (n < 2) return 0;
    const double m = mean(), var = sum2 / n - m * m;
    return var > 0 ? std::sqrt(var / (n - 1)) : 0;
  }
};

double percentile(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// log-softmax of one row in double, written to out[n_vocab].
void log_softmax_row(const float* x, int n, std::vector<double>& out) {
  float mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, x[i]);
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  const double lse = mx + std::log(s);
  for (int i = 0; i < n; ++i) out[i] = double(x[i]) - lse;
}

}  // namespace

int cmd_perplexity(int argc, char** argv) {
  CLI::App app{"perplexity of a text (llama-perplexity's method) and KL divergence from a base model",
               "tachyon perplexity"};
  std::string path, text_path, save_path, base_path;
  model::PerplexityConfig cfg;
  int threads = default_threads();
  bool json = false, scalar = false;
  app.add_option("-m,--model", path, "GGUF model file")->required();
  app.add_option("-f,--file", text_path, "text file to score")->required();
  app.add_option("-c,--ctx", cfg.n_ctx, "tokens per chunk (the second half of each is scored)")
      ->check(CLI::Range(4, 1 << 20));
  app.add_option("--chunks", cfg.n_chunks, "score at most this many chunks (default: all)")->check(CLI::Range(1, 1 << 30));
  app.add_option("-t,--threads", threads, "compute threads")->check(CLI::Range(1, 1024));
  app.add_option("--ubatch", cfg.ubatch, "tokens per forward step")->check(CLI::Range(1, 1 << 20));
  app.add_option("--save-logits", save_path, "write the scored positions' log-probabilities (a KL base) to this file");
  app.add_option("--kl-base", base_path,
                 "a --save-logits file of a base model, or llama-perplexity's --kl-divergence-base file: report KL "
                 "divergence from it");
  app.add_flag("--json", json, "print the results as one JSON object on stdout");
  app.add_flag("--scalar", scalar, "use the scalar reference kernels");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!save_path.empty() && !base_path.empty()) return fail(invalid_argument("--save-logits and --kl-base exclude each other"));
  if (scalar) kernels::force_scalar_kernels(true);

  auto text = read_text_file(text_path);
  if (!text) return fail(text.status());
  auto m = model::Model::load(path);
  if (!m) return fail(m.status());
  model::Model& model = *m.value();
  auto tk = tok::Tokenizer::from_gguf(model.file());
  if (!tk) return fail(tk.status());
  const tok::Tokenizer& tokenizer = *tk.value();
  const std::vector<int32_t> tokens = tokenizer.encode(*text, /*add_special=*/true, /*parse_special=*/false);
  if (tokenizer.add_bos()) cfg.bos = tokenizer.bos_id();
  const int n_vocab = model.hparams().n_vocab;
  const int n_chunks = model::perplexity_chunk_count(static_cast<int64_t>(tokens.size()), cfg);
  const int n_scored = cfg.n_ctx - 1 - cfg.n_ctx / 2;

  std::ofstream save;
  std::ifstream base;
  LogitsHeader bh;
  bool llama_base = false;
  if (!save_path.empty()) {
    save.open(save_path, std::ios::binary);
    if (!save) return fail(Status(ErrorCode::kIo, save_path + ": cannot write"));
    const LogitsHeader h{cfg.n_ctx, n_vocab, n_chunks, n_scored};
    save.write(kMagic, 8);
    save.write(reinterpret_cast<const char*>(&h), sizeof h);
    save.write(reinterpret_cast<const char*>(tokens.data()),
               static_cast<std::streamsize>(sizeof(int32_t) * std::min<size_t>(tokens.size(), size_t(n_chunks) * cfg.n_ctx)));
  }
  if (!base_path.empty()) {
    base.open(base_path, std::ios::binary);
    if (!base) return fail(not_found(base_path + ": cannot open"));
    char magic[8] = {};
    base.read(magic, 8);
    llama_base = base && std::memcmp(magic, kLlamaMagic, 8) == 0;
    if (llama_base) {
      uint32_t lctx = 0;
      base.read(reinterpret_cast<char*>(&lctx), 4);
      base.read(reinterpret_cast<char*>(&bh.n_vocab), 4);
      base.read(reinterpret_cast<char*>(&bh.n_chunks), 4);
      if (!base || lctx < 4 || lctx > (1u << 24) || bh.n_vocab <= 0 || bh.n_chunks < 0)
        return fail(corrupt(base_path + ": truncated or corrupt llama-perplexity header"));
      bh.n_ctx = static_cast<int32_t>(lctx);
      bh.n_scored = bh.n_ctx - 1 - bh.n_ctx / 2;
    } else {
      base.read(reinterpret_cast<char*>(&bh), sizeof bh);
      if (!base || std::memcmp(magic, kMagic, 8) != 0)
        return fail(corrupt(base_path + ": neither a tachyon --save-logits nor a llama-perplexity --kl-divergence-base file"));
    }
    if (bh.n_vocab != n_vocab || bh.n_ctx != cfg.n_ctx || bh.n_scored != n_scored)
      return fail(invalid_argument(base_path + ": saved with n_vocab " + std::to_string(bh.n_vocab) + ", ctx " +
                                   std::to_string(bh.n_ctx) + "; this run has n_vocab " + std::to_string(n_vocab) +
                                   ", ctx " + std::to_string(cfg.n_ctx)));
    if (bh.n_chunks < n_chunks)
      return fail(invalid_argument(base_path + ": holds " + std::to_string(bh.n_chunks) + " chunks, this run scores " +
                                   std::to_string(n_chunks) + " (use --chunks)"));
    std::vector<int32_t> btok(static_cast<size_t>(bh.n_chunks) * bh.n_ctx);
    base.read(reinterpret_cast<char*>(btok.data()), static_cast<std::streamsize>(btok.size() * sizeof(int32_t)));
    if (!base) return fail(corrupt(base_path + ": truncated"));
    if (!std::equal(tokens.begin(), tokens.begin() + static_cast<int64_t>(n_chunks) * cfg.n_ctx, btok.begin()))
      return fail(invalid_argument(base_path + ": was made from another text or tokenizer (tokens differ)"));
  }

  Moments nll, kld, dp, base_nll;
  int64_t same_top = 0;
  std::vector<float> klds, dps;
  std::vector<double> lp(n_vocab);
  std::vector<f16_t> row16(n_vocab);
  std::vector<float> lb(n_vocab);
  std::vector<uint16_t> rowq(2 * ((n_vocab + 1) / 2) + 4);
  ThreadPool pool(threads);
  Status st = model::run_perplexity_chunks(
      model, tokens, cfg, pool, [&](int c, const float* logits, const int32_t* targets, int n) -> Status {
        for (int i = 0; i < n; ++i) {
          const float* row = logits + static_cast<size_t>(i) * n_vocab;
          log_softmax_row(row, n_vocab, lp);
          nll.add(-lp[targets[i]]);
          if (save.is_open()) {
            for (int v = 0; v < n_vocab; ++v) row16[v] = f32_to_f16(static_cast<float>(lp[v]));
            save.write(reinterpret_cast<const char*>(row16.data()), static_cast<std::streamsize>(n_vocab * sizeof(f16_t)));
          }
          if (base.is_open()) {
            if (llama_base) {
              base.read(reinterpret_cast<char*>(rowq.data()), static_cast<std::streamsize>(rowq.size() * sizeof(uint16_t)));
              float scale, lmin;
              std::memcpy(&scale, rowq.data(), 4);
              std::memcpy(&lmin, rowq.data() + 2, 4);
              for (int v = 0; v < n_vocab; ++v) lb[v] = scale * rowq[4 + v] + lmin;
            } else {
              base.read(reinterpret_cast<char*>(row16.data()), static_cast<std::streamsize>(n_vocab * sizeof(f16_t)));
              for (int v = 0; v < n_vocab; ++v) lb[v] = f16_to_f32(row16[v]);
            }
            if (!base) return corrupt(base_path + ": truncated");
            double kl = 0;
            int top_b = 0, top_q = 0;
            for (int v = 0; v < n_vocab; ++v) {
              kl += std::exp(double(lb[v])) * (double(lb[v]) - lp[v]);
              if (lb[v] > lb[top_b]) top_b = v;
              if (lp[v] > lp[top_q]) top_q = v;
            }
            kld.add(kl);
            klds.push_back(static_cast<float>(kl));
            same_top += top_b == top_q;
            const double d = std::exp(lp[targets[i]]) - std::exp(double(lb[targets[i]]));
            dp.add(d);
            dps.push_back(static_cast<float>(d));
            base_nll.add(-double(lb[targets[i]]));
          }
        }
        if (!json) std::fprintf(stderr, "[%d]%.4f,", c + 1, std::exp(nll.mean()));
        return Status::ok();
      });
  if (!json) std::fprintf(stderr, "\n");
  if (!st) return fail(st);
  if (save.is_open() && !save.flush()) return fail(Status(ErrorCode::kIo, save_path + ": write failed"));

  const double ppl = std::exp(nll.mean()), ppl_err = nll.stderr_of_mean() * ppl;
  nlohmann::json out = {{"model", path},     {"text", text_path}, {"n_ctx", cfg.n_ctx},   {"chunks", n_chunks},
                        {"tokens", tokens.size()}, {"scored", nll.n}, {"ppl", ppl}, {"ppl_stderr", ppl_err}};
  if (!json) std::printf("Final estimate: PPL = %.4f +/- %.5f  (%d chunks of %d tokens, %lld scored)\n", ppl, ppl_err,
                         n_chunks, cfg.n_ctx, static_cast<long long>(nll.n));
  if (base.is_open()) {
    const double base_ppl = std::exp(base_nll.mean());
    const double top1 = nll.n ? double(same_top) / nll.n : 0;
    const double rms_dp = std::sqrt(dp.sum2 / std::max<int64_t>(1, dp.n));
    nlohmann::json k = {{"base_ppl", base_ppl},
                        {"ln_ppl_ratio", nll.mean() - base_nll.mean()},
                        {"kld_mean", kld.mean()},
                        {"kld_stderr", kld.stderr_of_mean()},
                        {"kld_median", percentile(klds, 50)},
                        {"kld_p99", percentile(klds, 99)},
                        {"kld_max", klds.empty() ? 0.0 : *std::max_element(klds.begin(), klds.end())},
                        {"top1_agreement", top1},
                        {"delta_p_mean", dp.mean()},
                        {"delta_p_rms", rms_dp}};
    for (double p : {1.0, 5.0, 10.0, 50.0, 90.0, 95.0, 99.0})
      k["delta_p_p" + std::to_string(static_cast<int>(p))] = percentile(dps, p);
    out["kl"] = k;
    if (!json) {
      std::printf("base PPL       %.4f   ln(PPL/base) %.6f\n", base_ppl, k["ln_ppl_ratio"].get<double>());
      std::printf("mean KLD       %.6f +/- %.6f   median %.6f   p99 %.6f   max %.6f\n", kld.mean(), kld.stderr_of_mean(),
                  k["kld_median"].get<double>(), k["kld_p99"].get<double>(), k["kld_max"].get<double>());
      std::printf("same top-1     %.3f%%\n", 100 * top1);
      std::printf("delta p        mean %.4f%%  rms %.4f%%  p1 %.4f%%  p50 %.4f%%  p99 %.4f%%\n", 100 * dp.mean(),
                  100 * rms_dp, 100 * k["delta_p_p1"].get<double>(), 100 * k["delta_p_p50"].get<double>(),
                  100 * k["delta_p_p99"].get<double>());
    }
  }
  if (json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace tachyon::apps
