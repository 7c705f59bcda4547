#include "model/perplexity.h"

#include <algorithm>
#include <cmath>

#include "model/session.h"

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
  Session::Options opt;
  opt.n_ctx = n_ctx;
  opt.ubatch = std::max(1, cfg.ubatch);
  auto session = Session::create(model, pool, opt);
  if (!session) return session.status();
  Session& sess = *session.value();
  std::vector<float> scored;
  std::vector<int32_t> chunk_ids(n_ctx);
  for (int c = 0; c < n_chunks; ++c) {
    const int32_t* chunk = tokens.data() + static_cast<int64_t>(c) * n_ctx;
    chunk_ids.assign(chunk, chunk + n_ctx);
    if (cfg.bos >= 0) chunk_ids[0] = cfg.bos;
    sess.rewind(0);
    // logits of positions [first, n_ctx - 1): each scores the next token
    TACHYON_RETURN_IF_ERROR(sess.append(chunk_ids.data(), n_ctx, first, n_ctx - 1, &scored));
    const int n_scored = static_cast<int>(scored.size() / n_vocab);
    Status st = on_chunk(c, scored.data(), chunk + first + 1, n_scored);
    if (!st) return st;
  }
  return Status::ok();
}

}  // namespace tachyon::model
