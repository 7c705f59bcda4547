#include "model/perplexity.h"

#include <algorithm>
#include <cmath>

#include "model/batch.h"

namespace tachyon::model {

int perplexity_chunk_count(int64_t n_tokens, const PerplexityConfig& cfg) {
  const int64_t all = n_tokens / cfg.n_ctx;
  return static_cast<int>(cfg.n_chunks < 0 ? all : std::min<int64_t>(cfg.n_chunks, all));
}

double log_softmax_at(const float* logits, int n_vocab, int32_t target) {
  float mx = logits[0];
  for (int i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double s = 0;
  for (int i = 0; i < n_vocab; ++i) s += std::exp(double(logits[i]) - mx);
  return double(logits[target]) - mx - std::log(s);
}

Status run_perplexity_chunks(Model& model, const std::vector<int32_t>& tokens, const PerplexityConfig& cfg,
                             ThreadPool& pool, const ChunkLogitsFn& on_chunk) {
  const int n_ctx = cfg.n_ctx;
  if (n_ctx < 4) return invalid_argument("perplexity: context " + std::to_string(n_ctx) + " is too small (>= 4)");
  if (static_cast<int64_t>(tokens.size()) < 2 * int64_t{n_ctx})
    return invalid_argument("perplexity: the text has " + std::to_string(tokens.size()) + " tokens; a context of " +
                            std::to_string(n_ctx) + " needs at least " + std::to_string(2 * n_ctx));
  const int n_vocab = model.hparams().n_vocab;
  for (int32_t t : tokens)
    if (t < 0 || t >= n_vocab) return invalid_argument("perplexity: token id " + std::to_string(t) + " out of range");
  const int n_chunks = perplexity_chunk_count(static_cast<int64_t>(tokens.size()), cfg);
  const int first = n_ctx / 2;
  const int page = 16;
  auto kv = kv::KvPool::create(model.kv_config((n_ctx + page - 1) / page, page));
  if (!kv) return kv.status();
  const int ubatch = std::max(1, cfg.ubatch);
  std::vector<float> step_logits, scored(static_cast<size_t>(n_ctx - 1 - first) * n_vocab);
  for (int c = 0; c < n_chunks; ++c) {
    const int32_t* chunk = tokens.data() + static_cast<int64_t>(c) * n_ctx;
    kv::PageTable pt;
    if (!pt.reserve(kv.value(), n_ctx)) return Status(ErrorCode::kInternal, "perplexity: KV pool exhausted");
    int n_scored = 0;
    for (int start = 0; start < n_ctx; start += ubatch) {
      const int end = std::min(n_ctx, start + ubatch);
      Batch batch;
      batch.seqs.push_back(&pt);
      for (int i = start; i < end; ++i) {
        const int32_t tok = (i == 0 && cfg.bos >= 0) ? cfg.bos : chunk[i];
        batch.add(tok, i, 0, i >= first && i < n_ctx - 1);
      }
      Status st = model.forward(batch, kv.value(), pool, &step_logits);
      if (!st) {
        pt.clear(kv.value());
        return st;
      }
      pt.n_tokens = end;
      const int64_t got = batch.n_logits();
      std::copy(step_logits.begin(), step_logits.begin() + got * n_vocab,
                scored.begin() + static_cast<int64_t>(n_scored) * n_vocab);
      n_scored += static_cast<int>(got);
    }
    pt.clear(kv.value());
    Status st = on_chunk(c, scored.data(), chunk + first + 1, n_scored);
    if (!st) return st;
  }
  return Status::ok();
}

}  // namespace tachyon::model
