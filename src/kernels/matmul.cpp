#include "kernels/matmul.h"

#include <algorithm>
#include <cassert>

#include "kernels/packed.h"
#include "kernels/traits.h"

namespace tachyon::kernels {

namespace {
// Products with fewer multiply-adds and fewer weight bytes than these are not split over
// the pool: each is some tens of microseconds on one core, about what handing work to a
// worker costs on a busy machine (on a shared, loaded 2-core box the mini models decoded
// fastest with no split at all; on a quiet one, splitting pays off sooner).
constexpr double kMinParallelMacs = 1024.0 * 1024;
constexpr double kMinParallelBytes = 512.0 * 1024;
}  // namespace

namespace {
// Sizes *out for n_tok rows of n_cols in `type`, with no aux integers.
void shape_acts(QuantActs* out, int64_t n_tok, int64_t n_cols, DType type) {
  out->type = type;
  out->n_tok = n_tok;
  out->n_cols = n_cols;
  out->row_bytes = row_bytes(type, n_cols);
  out->buf.resize(static_cast<size_t>(n_tok) * out->row_bytes);
  out->aux_of = nullptr;
  out->aux_make = nullptr;
  out->aux_per = 0;
}
}  // namespace

void quantize_acts(const float* x, int64_t n_tok, int64_t n_cols, DType type, QuantActs* out, ThreadPool& pool) {
  const TypeTraits* tt = type_traits(type);
  assert(tt && tt->from_float);
  shape_acts(out, n_tok, n_cols, type);
  if (n_tok * n_cols < 16384) {
    for (int64_t t = 0; t < n_tok; ++t) tt->from_float(x + t * n_cols, out->buf.data() + t * out->row_bytes, n_cols);
    return;
  }
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    split_range(n_tok, ith, nth, &b, &e);
    for (int64_t t = b; t < e; ++t) tt->from_float(x + t * n_cols, out->buf.data() + t * out->row_bytes, n_cols);
  });
}

void begin_acts(QuantActs* out, int64_t n_tok, int64_t n_cols, DType type, const MatView* w) {
  assert(type_traits(type) && type_traits(type)->from_float);
  shape_acts(out, n_tok, n_cols, type);
  const PackedKernels* pk = w && w->packed && w->packed_rows > 0 ? packed_kernels(w->type) : nullptr;
  if (pk && pk->aux_count && pk->make_aux && w->n_cols == n_cols && pk->aux_count(n_cols) > 0) {
    out->aux_per = pk->aux_count(n_cols);
    out->aux.resize(static_cast<size_t>(n_tok * out->aux_per));
    out->aux_make = pk->make_aux;
    out->aux_of = reinterpret_cast<const void*>(pk->make_aux);
  }
}

void act_row(QuantActs* out, int64_t t, const float* x) {
  uint8_t* row = out->buf.data() + t * out->row_bytes;
  type_traits(out->type)->from_float(x, row, out->n_cols);
  if (out->aux_make) out->aux_make(row, out->n_cols, out->aux.data() + t * out->aux_per);
}

namespace {

// acts' aux integers for pk (see QuantActs::aux); *na per token. They used to be made on
// the calling thread for every product: ~0.8 ms of a 26 ms batch-8 decode step during
// which the other core spun.
const int32_t* packed_aux(const PackedKernels* pk, const QuantActs& acts, ThreadPool& pool, int64_t* na) {
  *na = pk->aux_count ? pk->aux_count(acts.n_cols) : 0;
  if (*na == 0) return nullptr;
  const int64_t n_tok = acts.n_tok, per = *na;
  const size_t size = static_cast<size_t>(n_tok * per);
  if (acts.aux_of == reinterpret_cast<const void*>(pk->make_aux) && acts.aux.size() == size) return acts.aux.data();
  acts.aux.resize(size);
  auto fill = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) pk->make_aux(acts.row(t), acts.n_cols, acts.aux.data() + t * per);
  };
  if (n_tok >= 4 && pool.n_threads() > 1) {
    pool.run([&](int ith, int nth) {
      int64_t b, e;
      split_range(n_tok, ith, nth, &b, &e);
      fill(b, e);
    });
  } else {
    fill(0, n_tok);
  }
  acts.aux_of = reinterpret_cast<const void*>(pk->make_aux);
  return acts.aux.data();
}

// Groups per run of a packed product: ~128 KiB of weights for one token, ~192 KiB with
// several (kept in L2 while every token passes over it), a multiple of the groups the
// kernel takes at once for several tokens.
int64_t run_groups(const PackedKernels* pk, int64_t n_tok, size_t gb) {
  const int64_t g = std::max<int64_t>(1, static_cast<int64_t>((n_tok <= 1 ? 128 : 192) * 1024 / gb));
  const int64_t m = n_tok > 1 ? pk->multi_token_groups : 1;
  return (g + m - 1) / m * m;
}
// Groups per steal from another thread's range: a quarter run, in the same multiple.
int64_t steal_groups(const PackedKernels* pk, int64_t n_tok, int64_t run) {
  const int64_t m = n_tok > 1 ? pk->multi_token_groups : 1;
  return std::max<int64_t>(m, run / 4 / m * m);
}

// Rows [0, w.packed_rows) from the packed groups: threads take contiguous group ranges,
// and walk them in tiles small enough to stay in L2 while every token passes over them.
void matmul_packed(const MatView& w, const PackedKernels* pk, const QuantActs& acts, float* y, int64_t ld_y,
                   ThreadPool& pool) {
  const int64_t n_tok = acts.n_tok;
  int64_t na = 0;
  const int32_t* aux_data = packed_aux(pk, acts, pool, &na);
  const auto gemm = scalar_kernels_forced() ? pk->gemm_ref : pk->gemm;
  const int64_t n_groups = w.packed_rows / pk->rows;
  const size_t gb = pk->group_bytes(w.n_cols);
  const int64_t tile = run_groups(pk, n_tok, gb);
  const int64_t n_tiles = (n_groups + tile - 1) / tile;
  auto run_tile = [&](int64_t ti) {
    const int64_t g = ti * tile, ng = std::min(tile, n_groups - g);
    gemm(w.n_cols, ng, w.packed + g * gb, static_cast<int>(n_tok), acts.row(0), acts.row_bytes, aux_data, na,
         y + g * pk->rows, ld_y);
  };
  const double macs = static_cast<double>(w.packed_rows) * w.n_cols * n_tok;
  const double bytes = static_cast<double>(n_groups) * gb;
  if (n_tiles == 1 || pool.n_threads() == 1 || (macs < kMinParallelMacs && bytes < kMinParallelBytes)) {
    for (int64_t ti = 0; ti < n_tiles; ++ti) run_tile(ti);
    return;
  }
  // Runs of a tile's groups from the front of each thread's range; steals of a quarter
  // tile from the back, so that the threads end within a quarter tile of each other.
  RangeSplit split(n_groups, pool.n_threads());
  pool.run([&](int ith, int) {
    for (int64_t b, e; split.next_run(ith, tile, steal_groups(pk, n_tok, tile), &b, &e);)
      gemm(w.n_cols, e - b, w.packed + b * gb, static_cast<int>(n_tok), acts.row(0), acts.row_bytes, aux_data, na,
           y + b * pk->rows, ld_y);
  });
}

}  // namespace

void matmul(const MatView& w, const QuantActs& acts, float* y, int64_t ld_y, ThreadPool& pool) {
  if (w.packed && w.packed_rows > 0) {
    if (const PackedKernels* pk = packed_kernels(w.type)) {
      matmul_packed(w, pk, acts, y, ld_y, pool);
      if (w.packed_rows == w.n_rows) return;
      MatView rest = w;
      rest.packed = nullptr;
      rest.packed_rows = 0;
      rest.data = static_cast<const uint8_t*>(w.data) + w.packed_rows * w.row_bytes;
      rest.n_rows = w.n_rows - w.packed_rows;
      matmul(rest, acts, y + w.packed_rows, ld_y, pool);
      return;
    }
  }
  const TypeTraits* tt = type_traits(w.type);
  assert(tt && tt->vec_dot && acts.type == tt->vec_dot_type && acts.n_cols == w.n_cols);
  const auto vec_dot = tt->vec_dot;
  const auto vec_dot_tile = tt->vec_dot_tile;
  const int64_t n_tok = acts.n_tok;
  const int nth = pool.n_threads();
  // Rows per tile: keep a tile of weights in L2 while every token passes over it, but
  // cut the matrix into at least one tile per thread (in multiples of 16 rows, so that
  // threads do not share cache lines of y).
  int64_t tile = std::max<int64_t>(1, std::min<int64_t>(64, (128 * 1024) / std::max<size_t>(1, w.row_bytes)));
  const int64_t per_thread = ((w.n_rows + nth - 1) / nth + 15) / 16 * 16;
  tile = std::max<int64_t>(1, std::min(tile, per_thread));
  const int64_t n_tiles = (w.n_rows + tile - 1) / tile;
  const auto* wdata = static_cast<const uint8_t*>(w.data);
  auto run_tile = [&](int64_t ti) {
    const int64_t r0 = ti * tile, r1 = std::min(w.n_rows, r0 + tile);
    if (vec_dot_tile) {
      // every token against the tile, a few rows x tokens per inner call
      vec_dot_tile(w.n_cols, static_cast<int>(r1 - r0), static_cast<int>(n_tok), wdata + r0 * w.row_bytes, w.row_bytes,
                   acts.row(0), acts.row_bytes, y + r0, ld_y);
      return;
    }
    for (int64_t t = 0; t < n_tok; ++t) {
      const uint8_t* a = acts.row(t);
      float* yt = y + t * ld_y;
      for (int64_t r = r0; r < r1; ++r) yt[r] = vec_dot(w.n_cols, wdata + r * w.row_bytes, a);
    }
  };
  // Small products run on the calling thread: waking the pool costs more than it saves
  // (decode of small models is a chain of such products).
  const double macs = static_cast<double>(w.n_rows) * w.n_cols * n_tok;
  const double bytes = static_cast<double>(w.n_rows) * w.row_bytes;
  if (n_tiles == 1 || nth == 1 || (macs < kMinParallelMacs && bytes < kMinParallelBytes)) {
    for (int64_t ti = 0; ti < n_tiles; ++ti) run_tile(ti);
    return;
  }
  RangeSplit split(n_tiles, nth);
  pool.run([&](int ith, int) {
    for (int64_t ti; split.next(ith, &ti);) run_tile(ti);
  });
}

void matmul_many(const MatmulJob* jobs, int n_jobs, ThreadPool& pool) {
  struct Part {
    const MatmulJob* job;
    const PackedKernels* pk;
    const int32_t* aux;
    std::vector<int32_t> own_aux;  // when another product's kernel holds acts' shared aux
    int64_t na, n_groups, per_chunk;
    size_t gb;
    int64_t first_chunk, first_group;  // in the list's chunks and groups
  };
  std::vector<Part> parts;
  parts.reserve(n_jobs);
  // The products not wholly packed, run after the packed ones: their matmul may remake
  // acts' shared aux for another kernel while an earlier part still points at it.
  std::vector<const MatmulJob*> plain;
  auto run_plain = [&] {
    for (const MatmulJob* jb : plain) matmul(*jb->w, *jb->acts, jb->y, jb->ld_y, pool);
  };
  int64_t n_chunks = 0, n_groups_all = 0;
  double bytes = 0, macs = 0;
  for (int j = 0; j < n_jobs; ++j) {
    const MatmulJob& jb = jobs[j];
    const PackedKernels* pk = jb.w->packed && jb.w->packed_rows == jb.w->n_rows ? packed_kernels(jb.w->type) : nullptr;
    if (!pk) {
      plain.push_back(&jb);
      continue;
    }
    Part p{&jb, pk, nullptr, {}, 0, jb.w->packed_rows / pk->rows, 1, pk->group_bytes(jb.w->n_cols), n_chunks,
           n_groups_all};
    n_groups_all += p.n_groups;
    const int64_t n_tok = jb.acts->n_tok;
    bool shared_taken = false;  // an earlier product uses acts' aux made by another kernel
    for (const Part& q : parts)
      shared_taken |= q.job->acts == jb.acts && q.na > 0 && q.pk->make_aux != pk->make_aux && q.own_aux.empty();
    if (!shared_taken) {
      p.aux = packed_aux(pk, *jb.acts, pool, &p.na);
    } else {
      p.na = pk->aux_count ? pk->aux_count(jb.w->n_cols) : 0;
      p.own_aux.resize(static_cast<size_t>(n_tok * p.na));
      for (int64_t t = 0; t < n_tok && p.na > 0; ++t)
        pk->make_aux(jb.acts->row(t), jb.w->n_cols, p.own_aux.data() + t * p.na);
      p.aux = p.own_aux.data();
    }
    // Chunks of ~128 KiB of weights balance the split across the listed products; with
    // several tokens, a chunk stays in L2 while every token passes over it.
    p.per_chunk = run_groups(pk, n_tok, p.gb);
    n_chunks += (p.n_groups + p.per_chunk - 1) / p.per_chunk;
    bytes += static_cast<double>(p.n_groups) * p.gb;
    macs += static_cast<double>(jb.w->packed_rows) * jb.w->n_cols * n_tok;
    parts.push_back(std::move(p));
  }
  if (parts.empty()) return run_plain();
  const bool scalar = scalar_kernels_forced();
  auto run_chunk = [&](int64_t c) {
    size_t i = 0;
    while (i + 1 < parts.size() && parts[i + 1].first_chunk <= c) ++i;
    const Part& p = parts[i];
    const MatmulJob& jb = *p.job;
    const int64_t g0 = (c - p.first_chunk) * p.per_chunk, ng = std::min(p.per_chunk, p.n_groups - g0);
    (scalar ? p.pk->gemm_ref : p.pk->gemm)(jb.w->n_cols, ng, jb.w->packed + g0 * p.gb, static_cast<int>(jb.acts->n_tok),
                                           jb.acts->row(0), jb.acts->row_bytes, p.aux, p.na,
                                           jb.y + g0 * p.pk->rows, jb.ld_y);
  };
  if (pool.n_threads() == 1 || n_chunks == 1 || (macs < kMinParallelMacs && bytes < kMinParallelBytes)) {
    for (int64_t c = 0; c < n_chunks; ++c) run_chunk(c);
    return run_plain();
  }
  // Each thread walks one contiguous range of the list's groups in chunk-sized runs
  // (handing chunks out from a shared counter interleaves the threads' addresses and the
  // hardware prefetcher loses the streams: decode measured 6-10% slower that way), then
  // steals quarter chunks from the back of the other ranges so that no thread waits on a
  // slower one for long.
  int64_t run = parts[0].per_chunk;
  for (const Part& p : parts) run = std::min(run, p.per_chunk);
  RangeSplit split(n_groups_all, pool.n_threads());
  pool.run([&](int ith, int) {
    for (int64_t b, e; split.next_run(ith, run, steal_groups(parts[0].pk, parts[0].job->acts->n_tok, run), &b, &e);) {
      for (const Part& p : parts) {  // the run's pieces in each product it touches
        const int64_t g0 = std::max(b, p.first_group), g1 = std::min(e, p.first_group + p.n_groups);
        if (g0 >= g1) continue;
        const MatmulJob& jb = *p.job;
        const int64_t lg = g0 - p.first_group;
        (scalar ? p.pk->gemm_ref : p.pk->gemm)(jb.w->n_cols, g1 - g0, jb.w->packed + lg * p.gb,
                                               static_cast<int>(jb.acts->n_tok), jb.acts->row(0), jb.acts->row_bytes,
                                               p.aux, p.na, jb.y + lg * p.pk->rows, jb.ld_y);
      }
    }
  });
  run_plain();
}

void matmul(const MatView& w, const float* x, int64_t n_tok, float* y, int64_t ld_y, ThreadPool& pool,
            QuantActs* scratch) {
  const TypeTraits* tt = type_traits(w.type);
  assert(tt);
  quantize_acts(x, n_tok, w.n_cols, tt->vec_dot_type, scratch, pool);
  matmul(w, *scratch, y, ld_y, pool);
}

void get_row(const MatView& w, int64_t r, float* y) {
  const TypeTraits* tt = type_traits(w.type);
  assert(tt && r >= 0 && r < w.n_rows);
  tt->to_float(static_cast<const uint8_t*>(w.data) + r * w.row_bytes, y, w.n_cols);
}

}  // namespace tachyon::kernels
