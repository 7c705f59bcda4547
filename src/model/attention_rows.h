// Internal to attention*.cpp: the row kernels behind attention(), in a scalar reference
// form (attention.cpp) and an AVX2 form (attention_avx2.cpp) that must give the same
// bits. A call handles a set of query rows that read one sequence's KV through one KV
// head (the query heads of a GQA group, for one or more tokens), so that the AVX2 form
// can convert and transpose each KV tile once for all of them. Each row's result
// depends on that row alone.
#pragma once
#include <cstdint>
#include <vector>

#include "base/fp16.h"
#include "kv/kv_pool.h"

namespace tachyon::model::detail {

struct AttnRows {
  const kv::KvPool* kv = nullptr;
  const kv::PageTable* pt = nullptr;
  int layer = 0;
  int hk = 0;  // KV head
  int hd = 0;  // head dim
  float scale = 1.f;
  int n_rows = 0;
  const float* const* q = nullptr;  // [n_rows] -> q row [hd] f32
  const int32_t* n_ctx = nullptr;   // [n_rows] visible keys (positions 0..n_ctx-1)
  float* const* out = nullptr;      // [n_rows] -> out row [hd] f32
};

// Per-thread scratch, reused across calls.
struct AttnScratch {
  std::vector<f16_t> q16, acc16;
  std::vector<float> acc, p, kt, vt, m, s;
};

// Short-batch numerics (f16 Q, f16 dot, f16 V accumulator) and prefill numerics (f32 Q,
// 64-key tiles, polynomial exp, f32 accumulator); see attention.cpp.
void attend_rows_f16acc_ref(const AttnRows& r, AttnScratch& sc);
void attend_rows_tiled_ref(const AttnRows& r, AttnScratch& sc);
#if defined(__x86_64__)
void attend_rows_f16acc_avx2(const AttnRows& r, AttnScratch& sc);
void attend_rows_tiled_avx2(const AttnRows& r, AttnScratch& sc);
// AVX-512 F/BW/VL form of the short path; false (nothing done) for head dims it lacks.
bool attend_rows_f16acc_avx512(const AttnRows& r, AttnScratch& sc);
void attend_rows_f16acc_avx512_or_avx2(const AttnRows& r, AttnScratch& sc);
#endif

constexpr int kAttnTile = 64;  // KV tile of the prefill numerics

}  // namespace tachyon::model::detail
