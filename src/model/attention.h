// Causal attention of a batch of query tokens over the paged KV cache.
#pragma once
#include <cstdint>
#include <string>

#include "base/thread_pool.h"
#include "kv/kv_pool.h"
#include "model/batch.h"

namespace tachyon::model {

// Numerics of the short-batch (decode) path. kLlama: llama.cpp's CPU flash attention with
// an f16 cache (f16 Q, f16-rounded V accumulator, libm exp), bit for bit; its dependent
// f16 chain per key makes it slow at long contexts. kF32: f32 Q, scores and accumulator,
// one softmax update per 16-key block (attention.cpp); about 3x faster, more accurate,
// and differs from llama.cpp only in rounding. kAuto (the default): kLlama for query
// positions below kAutoF32FromPos, kF32 from there on — llama.cpp's bits where they are
// cheap, speed where its f16 chain would dominate the step. The choice depends only on
// the position (and the layer's window: a query that sees fewer than kAutoF32FromPos keys
// keeps kLlama), so results stay independent of batching.
enum class DecodeNumerics { kAuto, kLlama, kF32 };
constexpr int32_t kAutoF32FromPos = 128;

// "auto" | "llama" | "f32" -> numerics; false for anything else.
bool parse_decode_numerics(const std::string& s, DecodeNumerics* out);
const char* decode_numerics_name(DecodeNumerics d);

struct AttentionShape {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int layer = 0;
  float scale = 1.f;  // 1/sqrt(head_dim)
  DecodeNumerics decode = DecodeNumerics::kAuto;
  // Sliding window (Gemma 2/3 local layers; llama.cpp's LLAMA_SWA_TYPE_STANDARD): > 0, a
  // query at position p sees the keys at positions [max(0, p - window + 1), p], i.e. key k
  // is masked when p - k >= window; <= 0, every key up to p (full causal attention).
  int window = 0;
  // Logit soft-capping (Gemma 2): > 0, scores are softcap * tanh(q.k * scale / softcap), as
  // llama.cpp's flash attention computes them; such layers run on the reference row kernels.
  float softcap = 0.f;
};

// out[t][h*head_dim..] = softmax(q_t,h . K[b_t..pos_t]) V[b_t..pos_t] for every token t of
// the batch and head h, reading K/V of t's sequence through its page table; b_t is 0, or
// max(0, pos_t - window + 1) with a window. Keys before b_t are skipped (llama.cpp's CPU
// flash attention skips masked keys the same way, so the kLlama numerics keep its bits).
// q: [n_tok][n_head*head_dim] f32. Parallel over (block of tokens of one sequence, KV
// head) work items.
void attention(const AttentionShape& s, const Batch& batch, const kv::KvView& kv, const float* q, float* out,
               ThreadPool& pool);

// "avx2" or "ref": the row kernels attention() uses on this CPU. The AVX2 ones give the
// same bits as the scalar reference; kernels::force_scalar_kernels(true) selects the
// reference.
const char* attention_impl();

// Writes k, v rows ([n_tok][n_head_kv*head_dim] f32) into the cache at each token's
// position: as f16, or as Q8_0 blocks for a kQ8_0 pool (every query over such a pool
// uses the kF32 numerics, reading rows dequantized as float(q) * d).
void store_kv(const AttentionShape& s, const Batch& batch, kv::KvView kv, const float* k, const float* v);
// store_kv for token t alone (k, v: its rows), e.g. inside a per-token pass over the pool.
void store_kv_token(const AttentionShape& s, const Batch& batch, int64_t t, kv::KvView kv, const float* k,
                    const float* v);

}  // namespace tachyon::model
