// Causal attention of a batch of query tokens over the paged KV cache.
#pragma once
#include <cstdint>

#include "base/thread_pool.h"
#include "kv/kv_pool.h"
#include "model/batch.h"

namespace tachyon::model {

struct AttentionShape {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int layer = 0;
  float scale = 1.f;  // 1/sqrt(head_dim)
};

// out[t][h*head_dim..] = softmax(q_t,h . K[0..pos_t]) V[0..pos_t] for every token t of
// the batch and head h, reading K/V of t's sequence through its page table.
// q: [n_tok][n_head*head_dim] f32. Parallel over (block of tokens of one sequence, KV
// head) work items.
void attention(const AttentionShape& s, const Batch& batch, const kv::KvPool& kv, const float* q, float* out,
               ThreadPool& pool);

// "avx2" or "ref": the row kernels attention() uses on this CPU. The AVX2 ones give the
// same bits as the scalar reference; kernels::force_scalar_kernels(true) selects the
// reference.
const char* attention_impl();

// Writes k, v rows ([n_tok][n_head_kv*head_dim] f32) into the cache as f16 at each
// token's position.
void store_kv(const AttentionShape& s, const Batch& batch, kv::KvPool& kv, const float* k, const float* v);

}  // namespace tachyon::model
