// Matrix multiplication of a weight matrix with a batch of activation rows. The weight
// matrix is streamed once per call for the whole batch: each thread takes a range of
// rows and, tile by tile, applies every row of the tile to every token.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/dtype.h"
#include "base/thread_pool.h"

namespace tachyon::kernels {

// A row-major weight matrix as stored in GGUF: n_rows rows of n_cols elements (GGUF
// ne[0] = n_cols, ne[1] = n_rows).
struct MatView {
  const void* data = nullptr;
  DType type = DType::F32;
  int64_t n_cols = 0;
  int64_t n_rows = 0;
  size_t row_bytes = 0;
  // Rows [0, packed_rows) also exist repacked into 8-row interleaved groups at `packed`
  // (kernels/packed.h); matmul() then reads those instead of `data`.
  const uint8_t* packed = nullptr;
  int64_t packed_rows = 0;
};

// Activations quantized to a weight type's vec_dot_type, one row per token.
struct QuantActs {
  DType type = DType::F32;
  int64_t n_tok = 0;
  int64_t n_cols = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> buf;  // [n_tok][row_bytes]
  const uint8_t* row(int64_t t) const { return buf.data() + t * row_bytes; }
  // The per-token integers of a packed kernel (PackedKernels::make_aux), made on first use
  // (over the pool) and shared by every product over these activations, e.g. q, k and v.
  // quantize_acts clears them.
  mutable std::vector<int32_t> aux;
  mutable const void* aux_of = nullptr;  // the make_aux that filled aux
  // Set by begin_acts when act_row fills the aux integers along with each row.
  void (*aux_make)(const uint8_t* act_row, int64_t n_cols, int32_t* aux) = nullptr;
  int64_t aux_per = 0;
};

// Converts x [n_tok][n_cols] to `type` (a vec_dot_type), in parallel over tokens.
void quantize_acts(const float* x, int64_t n_tok, int64_t n_cols, DType type, QuantActs* out, ThreadPool& pool);

// Row-by-row filling, for passes that compute activations token by token (a norm,
// swiglu) and can quantize each row while it is in cache in the same pass over the pool,
// instead of two more passes (quantize_acts, then a packed kernel's aux integers), each
// with its barrier. begin_acts sizes *out for n_tok rows of n_cols in `type` and, when w
// runs on a packed kernel with aux integers, for those too (so that matmul(w, ...) finds
// them made); act_row(out, t, x) then fills row t from x[n_cols], once for every t < n_tok
// (concurrently for distinct t). Same bytes as quantize_acts.
void begin_acts(QuantActs* out, int64_t n_tok, int64_t n_cols, DType type, const MatView* w);
void act_row(QuantActs* out, int64_t t, const float* x);

// y[t][r] = W[r] . x[t] for t < n_tok, r < n_rows; y has row stride ld_y floats.
// Preconditions: acts.type == vec_dot_type of w.type, acts.n_cols == w.n_cols.
void matmul(const MatView& w, const QuantActs& acts, float* y, int64_t ld_y, ThreadPool& pool);

// Several products in one pass over the pool (e.g. a layer's q, k and v projections, or
// gate and up): their rows are cut into chunks and each thread takes a contiguous run of
// the combined list, so the small ones do not run alone and there is one barrier. Results are
// the same bits as matmul() on each. Products whose weights are not fully packed run
// through matmul() one after another.
struct MatmulJob {
  const MatView* w = nullptr;
  const QuantActs* acts = nullptr;
  float* y = nullptr;
  int64_t ld_y = 0;
};
void matmul_many(const MatmulJob* jobs, int n_jobs, ThreadPool& pool);

// Convenience: quantizes x into *scratch, then multiplies.
void matmul(const MatView& w, const float* x, int64_t n_tok, float* y, int64_t ld_y, ThreadPool& pool,
            QuantActs* scratch);

// Dequantizes row r of w into y[n_cols] (embedding look-up).
void get_row(const MatView& w, int64_t r, float* y);

}  // namespace tachyon::kernels
