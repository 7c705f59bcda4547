// The fitting searches of llama.cpp's reference weight quantizers that more than one
// format runs (quant_fit.cpp). Each keeps llama.cpp's float operations in their order,
// so the formats built on them write llama-quantize's bytes. Internal to src/kernels.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace tachyon::kernels {

// llama.cpp's make_qkx2_quants: fits x[0..n) (n <= 32) as scale * L + min, min <= 0,
// L in [0, nmax], with weights w: the min/max fit, then nstep + 1 trial inverse scales
// (nmax + rmin + rdelta * is) / (max - min), each refined by weighted least squares for
// scale and min, keeping the lowest weighted error: squared, or absolute when use_mad
// (Q2_K). Writes L, returns the scale and -min in *neg_min. With explicit weights it is
// also make_qkx3_quants (the same steps; the imatrix-weighted Q4_1, Q5_1, Q2_K..Q5_K).
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, float rmin,
                    float rdelta, int nstep, bool use_mad);

// Index of the level of kIq4nlValues nearest to v (ties to the upper one, as ggml's
// best_index_int8).
int nearest_iq4nl_index(float v);

// llama.cpp's quantize_row_iq4_nl_impl for one block of 32 (ntry = 7), max the element
// of largest magnitude with its sign: the w-weighted (x^2 when w is null) least-squares
// scale of the levels picked at the inverse scale 127 / max, replaced by that of any of
// the 15 trial inverse scales (t - 127) / max, t in [-7, 7], that fits better. Returns
// that scale d (0 for an all-zero block); the caller picks each level again from d
// (IQ4_NL) or from its stored sub-block scale (IQ4_XS).
float fit_iq4nl_scale(const float* x, const float* w = nullptr);

// llama.cpp's make_qx_quants with rmse_type 1: y = scale * L, L in [-nmax, nmax-1],
// weighted by w (x^2 when w is null): the max-magnitude fit refined by least squares,
// then 18 trial inverse scales around it. Writes L + nmax, returns the scale.
float fit_signed_scale(int n, int nmax, const float* x, int8_t* L, const float* w = nullptr);

// llama.cpp's make_qp_quants: y = scale * L, L in [0, nmax], for x >= 0 (the sub-block
// scales and mins of the weighted K-quants), weights w: the max fit, 8 trial inverse
// scales around it kept by weighted squared error, then up to 5 rounds of single-quant
// moves that raise sum_lx^2 / sum_l2. Writes L, returns the scale.
float fit_positive_scale(int n, int nmax, const float* x, uint8_t* L, const float* w);

// The row loop of an importance-weighted quantizer: x holds n / n_cols rows of n_cols
// floats, each quantized by row_fn(x_row, y_row, n_cols, imatrix) with the same
// per-column importance imatrix[0..n_cols), as llama.cpp's quantize_<type> does.
template <typename Block, int kBlockElems, void (*row_fn)(const float*, Block*, int64_t, const float*)>
void weighted_rows(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  Block* out = static_cast<Block*>(y);
  for (int64_t r = 0; r < n / n_cols; ++r) row_fn(x + r * n_cols, out + r * (n_cols / kBlockElems), n_cols, imatrix);
}

// llama.cpp's weight sqrt(sigma2 + x^2) * importance of each of n elements (Q4_0 ... K
// and IQ4 types with an importance matrix; sigma2 is each type's mean-square measure).
inline void importance_weights(int n, const float* x, const float* qw, float sigma2, float* w) {
  for (int j = 0; j < n; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
}

}  // namespace tachyon::kernels
