// Perplexity the way llama-perplexity measures it, so that the numbers compare: the text's
// tokens (with BOS when the vocabulary adds one) are cut into chunks of n_ctx tokens, the
// first token of each chunk is replaced by BOS, each chunk is evaluated from an empty
// cache, and only the second half of each chunk is scored (every scored token has at least
// n_ctx/2 tokens of context): position j predicts token j+1 for j in [n_ctx/2, n_ctx-1).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/model.h"

namespace tachyon::model {

struct PerplexityConfig {
  int n_ctx = 512;
  int n_chunks = -1;  // < 0: every whole chunk of the text
  int ubatch = 512;   // tokens per forward step
  int32_t bos = -1;   // replaces each chunk's first token when >= 0
};

// Called once per chunk in order with the logits of its scored positions: logits[i] (row
// of n_vocab) predicts targets[i], for i < n.
using ChunkLogitsFn = std::function<Status(int chunk, const float* logits, const int32_t* targets, int n)>;

// Runs the chunks. Fails with kInvalidArgument when the text is shorter than 2 * n_ctx
// tokens (llama-perplexity's rule) or n_ctx < 4.
Status run_perplexity_chunks(Model& model, const std::vector<int32_t>& tokens, const PerplexityConfig& cfg,
                             ThreadPool& pool, const ChunkLogitsFn& on_chunk);

// Number of chunks run_perplexity_chunks evaluates for n_tokens tokens.
int perplexity_chunk_count(int64_t n_tokens, const PerplexityConfig& cfg);

// log p(target) under softmax(logits[n_vocab]), in double.
double log_softmax_at(const float* logits, int n_vocab, int32_t target);

}  // namespace tachyon::model
