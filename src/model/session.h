// One sequence over its own KV pool: the prefill/decode loop that `run`, `logits`,
// `perplexity`, `bench verify` and the golden tests share, so that a new family or a KV
// change touches one place. The engine (many sequences, one shared pool) drives
// Model::forward itself.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "kv/kv_pool.h"
#include "model/model.h"

namespace tachyon::model {

class Session {
 public:
  struct Options {
    int n_ctx = 4096;  // positions the session can hold (pages reserved up front)
    int page_size = 16;
    kv::KvType kv_type = kv::KvType::kF16;
    int ubatch = 512;  // tokens per forward step
    // true: positions of the first append (the prompt) use the prefill attention numerics
    // when it has at least 64 tokens, as the engine does for a request; false: each
    // forward step chooses by its own size, as llama.cpp does per ubatch.
    bool prompt_numerics = false;
  };

  // Creates the pool and reserves n_ctx positions; sets the model's context size.
  static Result<std::unique_ptr<Session>> create(Model& model, ThreadPool& pool, const Options& opt);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Appends ids[0, n) at positions n_tokens().. in ubatches. Logits of the appended tokens
  // with index in [logits_from, logits_to) (clamped to [0, n)) go to *logits as
  // [k][n_vocab], in order. Fails cleanly past n_ctx (nothing appended) or on a bad id.
  Status append(const int32_t* ids, int n, int logits_from, int logits_to, std::vector<float>* logits);
  // Shorthands: logits of every appended token / of the last one only.
  Status append_all(const std::vector<int32_t>& ids, std::vector<float>* logits) {
    return append(ids.data(), static_cast<int>(ids.size()), 0, static_cast<int>(ids.size()), logits);
  }
  Status append_last(const std::vector<int32_t>& ids, std::vector<float>* logits) {
    const int n = static_cast<int>(ids.size());
    return append(ids.data(), n, n - 1, n, logits);
  }
  // Forgets positions from n on (their KV is overwritten by later appends); 0 restarts.
  void rewind(int n);

  int n_tokens() const { return pt_.n_tokens; }
  int n_ctx() const { return opt_.n_ctx; }
  Model& model() { return model_; }
  kv::KvPool& kv() { return *kv_; }

 private:
  Session(Model& m, ThreadPool& p, const Options& o) : model_(m), pool_(p), opt_(o) {}

  Model& model_;
  ThreadPool& pool_;
  Options opt_;
  std::unique_ptr<kv::KvPool> kv_;
  kv::PageTable pt_;
  int32_t tiled_until_ = -1;  // set by the first append when prompt_numerics
  std::vector<float> step_;
};

}  // namespace tachyon::model
