// tachyon logits -m FILE --tokens ID,ID,... [--top-k K] [-t THREADS]
// Evaluates the whole sequence teacher-forced (one batch) and prints JSON: for every
// position the top-K [id, logit] pairs and the log-sum-exp of all logits.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>

#include "app_util.h"
#include "expert_util.h"
#include "commands.h"
#include "kernels/ops.h"
#include "kernels/traits.h"
#include "model/model.h"
#include "model/session.h"

namespace tachyon::apps {

int cmd_logits(int argc, char** argv) {
  CLI::App app{"teacher-forced top-k logits for a token sequence (JSON on stdout)", "tachyon logits"};
  std::string path, tokens_arg;
  MemBudgetFlags mem;
  int top_k = 8, threads = default_threads(), ubatch = 512;
  bool scalar = false;
  app.add_option("-m,--model", path, "GGUF model file")->required();
  app.add_option("--tokens", tokens_arg, "comma-separated token ids")->required();
  app.add_option("--top-k", top_k, "pairs per position")->check(CLI::Range(1, 1000000));
  app.add_option("-t,--threads", threads, "compute threads")->check(CLI::Range(1, 1024));
  std::string attn_numerics = "auto";
  app.add_option("--attn-numerics", attn_numerics, kAttnNumericsHelp)->check(CLI::IsMember({"auto", "llama", "f32"}));
  std::string kv_type_name = "f16";
  app.add_option("--kv-type", kv_type_name, kKvTypeHelp)->check(CLI::IsMember({"f16", "q8_0"}));
  app.add_option("--ubatch", ubatch, "tokens per forward step")->check(CLI::Range(1, 1 << 20));
  app.add_flag("--scalar", scalar, "use the scalar reference kernels");
  mem.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto ids = parse_token_list(tokens_arg);
  if (!ids) return fail(ids.status());
  if (ids->empty()) return fail(invalid_argument("--tokens: empty list"));
  if (scalar) kernels::force_scalar_kernels(true);

  auto lo = mem.load_options();
  if (!lo) return fail(lo.status());
  auto m = model::Model::load(path, lo.value());
  if (!m) return fail(m.status());
  model::Model& model = *m.value();
  {
    model::DecodeNumerics dn = model::DecodeNumerics::kAuto;
    model::parse_decode_numerics(attn_numerics, &dn);
    model.set_decode_numerics(dn);
  }
  const int n_vocab = model.hparams().n_vocab;
  for (int32_t id : *ids)
    if (id < 0 || id >= n_vocab)
      return fail(invalid_argument("--tokens: id " + std::to_string(id) + " out of range [0, " + std::to_string(n_vocab) + ")"));

  const int n = static_cast<int>(ids->size());
  model::Session::Options sopt;
  sopt.n_ctx = n;
  sopt.ubatch = ubatch;
  kv::parse_kv_type(kv_type_name, &sopt.kv_type);
  ThreadPool pool(threads);
  auto session = model::Session::create(model, pool, sopt);
  if (!session) return fail(session.status());

  nlohmann::json positions = nlohmann::json::array();
  std::vector<float> logits;
  if (Status st = session.value()->append_all(*ids, &logits); !st) return fail(st);
  std::vector<int32_t> order(n_vocab);
  const int k = std::min(top_k, n_vocab);
  for (int i = 0; i < n; ++i) {
    const float* row = logits.data() + static_cast<size_t>(i) * n_vocab;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return row[a] > row[b] || (row[a] == row[b] && a < b);
    });
    nlohmann::json top = nlohmann::json::array();
    for (int j = 0; j < k; ++j) top.push_back({order[j], row[order[j]]});
    positions.push_back({{"top", top}, {"logsumexp", kernels::log_sum_exp(row, n_vocab)}});
  }
  nlohmann::json out = {{"model", path}, {"n_vocab", n_vocab}, {"tokens", *ids}, {"positions", positions}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace tachyon::apps
