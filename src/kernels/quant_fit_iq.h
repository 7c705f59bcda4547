// Weight quantizers of the grid formats (quant_fit_iq.cpp): llama.cpp's quantize_iq*
// searches, importance-weighted (n floats in rows of n_cols, imatrix[0..n_cols) the
// importance of each column) and, for the formats llama.cpp quantizes without a matrix
// too (IQ2_S, IQ3_XXS, IQ3_S, IQ1_M), plain. IQ2_XXS, IQ2_XS and IQ1_S need the matrix.
#pragma once
#include <cstdint>

#include "base/dtype.h"

namespace tachyon::kernels {

void quantize_iq2_xxs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq2_xs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq2_s_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq3_xxs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq3_s_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq1_s_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);
void quantize_iq1_m_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols);

void quantize_iq2_s_ref(const float* x, void* y, int64_t n);
void quantize_iq3_xxs_ref(const float* x, void* y, int64_t n);
void quantize_iq3_s_ref(const float* x, void* y, int64_t n);
void quantize_iq1_m_ref(const float* x, void* y, int64_t n);

// Entries (counts plus indices) of the neighbour lists of the grid the quantizer of t
// searches (0 for other types); built on first use.
int iq_lattice_neighbour_count(DType t);

}  // namespace tachyon::kernels
