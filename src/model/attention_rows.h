// Internal to attention*.cpp: the row kernels behind attention(), in a scalar reference
// form (attention.cpp) and an AVX2 form (attention_avx2.cpp) that must give the same
// bits. A call handles a set of query rows that read one sequence's KV through one KV
// head (the query heads of a GQA group, for one or more tokens), so that the AVX2 form
// can convert and transpose each KV tile once for all of them. Each row's result
// depends on that row alone.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/fp16.h"
#include "kv/kv_pool.h"

namespace tachyon::model::detail {

struct AttnRows {
  const kv::KvView* kv = nullptr;
  const kv::PageTable* pt = nullptr;
  int layer = 0;
  int hk = 0;  // KV head
  int hd = 0;  // head dim
  float scale = 1.f;
  float softcap = 0.f;  // > 0: scores are softcap * tanh(q.k * scale / softcap) (reference kernels only)
  int n_rows = 0;
  const float* const* q = nullptr;  // [n_rows] -> q row [hd] f32
  const int32_t* n_ctx = nullptr;   // [n_rows] end of the visible keys (positions < n_ctx)
  // [n_rows] first visible key position (sliding window), each in [0, n_ctx - 1]; nullptr:
  // 0 for every row. A row sees the keys [ctx_begin, n_ctx).
  const int32_t* ctx_begin = nullptr;
  float* const* out = nullptr;      // [n_rows] -> out row [hd] f32
};

// First visible key position of row i.
inline int32_t row_begin(const AttnRows& r, int i) { return r.ctx_begin ? r.ctx_begin[i] : 0; }
// The smallest first visible key over the rows: keys before it are never read.
inline int32_t min_begin(const AttnRows& r) {
  if (!r.ctx_begin || r.n_rows == 0) return 0;
  return *std::min_element(r.ctx_begin, r.ctx_begin + r.n_rows);
}

// Per-thread scratch, reused across calls.
struct AttnScratch {
  std::vector<f16_t> q16, acc16;
  std::vector<float> acc, p, kt, vt, m, s, qt;
  std::vector<int32_t> nctx, cbeg;
};

// Short-batch numerics (f16 Q, f16 dot, f16 V accumulator) and prefill numerics (f32 Q,
// 64-key tiles, polynomial exp, f32 accumulator); see attention.cpp.
void attend_rows_f16acc_ref(const AttnRows& r, AttnScratch& sc);
void attend_rows_tiled_ref(const AttnRows& r, AttnScratch& sc);
// f32 decode numerics (pre-scaled f32 Q, 16-key blocks at absolute positions, polynomial
// exp, f32 accumulator); see attention.cpp and attention_f32acc.h.
void attend_rows_f32acc_ref(const AttnRows& r, AttnScratch& sc);
#if defined(__x86_64__)
void attend_rows_f32acc_avx2(const AttnRows& r, AttnScratch& sc);
void attend_rows_f32acc_avx512(const AttnRows& r, AttnScratch& sc);
void attend_rows_f16acc_avx2(const AttnRows& r, AttnScratch& sc);
void attend_rows_tiled_avx2(const AttnRows& r, AttnScratch& sc);
// AVX-512 F/BW/VL form of the short path; false (nothing done) for head dims it lacks.
bool attend_rows_f16acc_avx512(const AttnRows& r, AttnScratch& sc);
void attend_rows_f16acc_avx512_or_avx2(const AttnRows& r, AttnScratch& sc);
#endif

// A prefetch GCC cannot drop: it deletes loops that contain only __builtin_prefetch
// (side-effect free, and C++ loops may be assumed to terminate).
inline void prefetch_line(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" ::"m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
  asm volatile("" ::: "memory");
#endif
}

// Prefetches the K and V rows of positions [j0, j1) of one (layer, KV head): pages are
// scattered (a page holds every layer's rows of its 16 tokens), so the hardware
// prefetcher restarts at each 2 KiB run; asking a block ahead keeps decode attention
// streaming at memory speed.
inline void prefetch_kv(const AttnRows& r, int32_t j0, int32_t j1) {
  const int ps = r.kv->page_size();
  const size_t kb = r.kv->k_row_bytes(), vb = r.kv->v_row_bytes();
  for (int32_t j = j0; j < j1;) {
    const int32_t page = r.pt->pages[j / ps];
    const int32_t end = std::min<int32_t>(j1, (j / ps + 1) * ps);
    const int o = j % ps;
    const char* k = reinterpret_cast<const char*>(r.kv->k_bytes(page, r.layer, r.hk)) + o * kb;
    const char* v = reinterpret_cast<const char*>(r.kv->v_bytes(page, r.layer, r.hk)) + o * vb;
    for (size_t b = 0; b < static_cast<size_t>(end - j) * kb; b += 64) prefetch_line(k + b);
    for (size_t b = 0; b < static_cast<size_t>(end - j) * vb; b += 64) prefetch_line(v + b);
    j = end;
  }
}

constexpr int kAttnTile = 64;      // KV tile of the prefill numerics
constexpr int kAttnF32Block = 16;  // key block of the f32 decode numerics

}  // namespace tachyon::model::detail
