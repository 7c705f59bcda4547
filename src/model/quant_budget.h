// Quantization to a size budget (`tachyon quantize IN OUT --budget SIZE`, issue 23): a
// type per tensor that minimises an output-error proxy subject to the file fitting SIZE.
//
// The proxy of tensor W under type T: the expected squared error of its products,
// sum over rows and columns of imp[j] * (W[i][j] - deq(q_T(W))[i][j])^2, where imp[j] is
// the importance of input column j: the importance matrix's entry when one is given
// (llama-imatrix's mean squared activation), else the square of the RMS-norm weight that
// feeds the product (q/k/v: attn_norm; gate/up: ffn_norm; output: output_norm) - an
// RMS-normed input has unit mean square, times that weight - and 1 for the other products.
// The error is measured on up to 512 rows spread over the tensor (scaled to all rows).
//
// The allocation: every tensor starts at its cheapest candidate; upgrades follow each
// tensor's lower convex hull of (bytes, error) and the greedy takes the upgrade with the
// largest error removed per byte added that still fits, until none fits (optimal for the
// continuous relaxation). Candidates: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_0 for rows that
// are a multiple of 256, Q4_0, Q5_0, Q8_0 for multiples of 32.
#pragma once
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "model/imatrix.h"

namespace tachyon::model {

struct BudgetChoice {
  std::string name;
  DType type = DType::F32;
  size_t bytes = 0;
  double error = 0;  // the proxy at that type
};

struct BudgetPlan {
  std::vector<BudgetChoice> tensors;  // the quantizable tensors, file order
  size_t fixed_bytes = 0;             // metadata and tensors copied as they are
  size_t total_bytes = 0;             // estimated file size
  double error = 0;                   // summed proxy
};

// Plans the mix for a file of at most `budget` bytes; fails naming the smallest size
// possible when the budget is below it.
Result<BudgetPlan> plan_budget_mix(const std::string& in_path, size_t budget, const Imatrix* imatrix, int n_threads);

}  // namespace tachyon::model
