// llama.cpp's importance matrix, as `llama-imatrix` writes it (GGUF): for each weight
// tensor W used in a matrix product, `W.in_sum2` [n_cols][n_mat] F32 (the sums of the
// squared activations entering each column, per expert for 3-D tensors) and `W.counts`
// [1][n_mat] F32 (how many activations each sum holds), plus the keys imatrix.datasets,
// imatrix.chunk_count and imatrix.chunk_size. `tachyon quantize --imatrix` weights each
// column's fit by in_sum2 / count, as llama-quantize does (kernels TypeTraits::
// quantize_weighted).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"

namespace tachyon::model {

struct Imatrix {
  struct Entry {
    int64_t n_cols = 0;         // the weight's row length (ne[0])
    int64_t n_mat = 1;          // 1, or the expert count of a 3-D weight
    std::vector<float> values;  // [n_mat][n_cols] in_sum2 / count (1 where count is 0)
  };
  std::string path;
  std::vector<std::string> datasets;  // imatrix.datasets
  uint32_t chunk_count = 0;           // imatrix.chunk_count
  std::map<std::string, Entry> entries;  // by weight tensor name

  // The importance for weight `name` of row length n_cols and n_mat matrices, [n_mat][n_cols]:
  // nullptr when the file has no entry (the tensor is quantized without weights, as
  // llama.cpp does; also for token_embd.weight when the length differs), an error naming
  // the tensor when the entry has another length. Costs one map lookup.
  Result<const float*> for_tensor(const std::string& name, int64_t n_cols, int64_t n_mat) const;
};

// Reads and checks an imatrix GGUF: fails (naming the file and tensor) when the file is
// not a GGUF imatrix (no *.in_sum2 tensors, imatrix.* keys missing), when a sum has no
// counts or the other way round, when a tensor is not F32 or its length is not n_cols *
// n_mat, and on NaN, infinite or negative sums or counts.
Result<Imatrix> load_imatrix(const std::string& path);

}  // namespace tachyon::model
