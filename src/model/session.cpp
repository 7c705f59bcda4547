#include "model/session.h"

#include <algorithm>
#include <string>

namespace tachyon::model {

namespace {
constexpr int kTiledPromptTokens = 64;  // as the engine: prompts this long use the prefill numerics
}  // namespace

Result<std::unique_ptr<Session>> Session::create(Model& model, ThreadPool& pool, const Options& opt) {
  if (opt.n_ctx <= 0 || opt.page_size <= 0 || opt.ubatch <= 0)
    return invalid_argument("session: context, page size and ubatch must be positive");
  std::unique_ptr<Session> s(new Session(model, pool, opt));
  auto kv = kv::KvPool::create(model.kv_config((opt.n_ctx + opt.page_size - 1) / opt.page_size, opt.page_size, opt.kv_type));
  if (!kv) return kv.status();
  s->kv_ = std::make_unique<kv::KvPool>(std::move(kv.value()));
  if (!s->pt_.reserve(*s->kv_, opt.n_ctx)) return Status(ErrorCode::kInternal, "session: KV page reservation failed");
  model.set_context_size(opt.n_ctx);
  return s;
}

Session::~Session() {
  if (kv_) pt_.clear(*kv_);
}

void Session::rewind(int n) {
  pt_.n_tokens = std::clamp(n, 0, pt_.n_tokens);
  if (pt_.n_tokens == 0) tiled_until_ = -1;
}

Status Session::append(const int32_t* ids, int n, int logits_from, int logits_to, std::vector<float>* logits) {
  logits->clear();
  if (n <= 0) return Status::ok();
  if (pt_.n_tokens + int64_t{n} > opt_.n_ctx)
    return invalid_argument("session: " + std::to_string(pt_.n_tokens) + " + " + std::to_string(n) +
                            " tokens exceed the context of " + std::to_string(opt_.n_ctx));
  const int n_vocab = model_.hparams().n_vocab;
  if (opt_.prompt_numerics && tiled_until_ < 0) tiled_until_ = pt_.n_tokens == 0 && n >= kTiledPromptTokens ? n : 0;
  logits_from = std::clamp(logits_from, 0, n);
  logits_to = std::clamp(logits_to, logits_from, n);
  logits->reserve(static_cast<size_t>(logits_to - logits_from) * n_vocab);
  const int base = pt_.n_tokens;
  for (int s = 0; s < n; s += opt_.ubatch) {
    const int e = std::min(n, s + opt_.ubatch);
    Batch b;
    b.seqs.push_back(&pt_);
    if (opt_.prompt_numerics) b.seq_tiled_until.push_back(tiled_until_);
    for (int i = s; i < e; ++i) b.add(ids[i], base + i, 0, i >= logits_from && i < logits_to);
    Status st = model_.forward(b, *kv_, pool_, &step_);
    if (!st) {
      pt_.n_tokens = base + s;  // the steps before stay appended
      return st;
    }
    pt_.n_tokens = base + e;
    logits->insert(logits->end(), step_.begin(), step_.end());
  }
  return Status::ok();
}

}  // namespace tachyon::model
