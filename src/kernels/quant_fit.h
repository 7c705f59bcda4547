// The fitting searches of llama.cpp's reference weight quantizers that more than one
// format runs (quant_fit.cpp). Each keeps llama.cpp's float operations in their order,
// so the formats built on them write llama-quantize's bytes. Internal to src/kernels.
#pragma once
#include <cstdint>

namespace tachyon::kernels {

// llama.cpp's make_qkx2_quants: fits x[0..n) (n <= 32) as scale * L + min, min <= 0,
// L in [0, nmax], with weights w: the min/max fit, then nstep + 1 trial inverse scales
// (nmax + rmin + rdelta * is) / (max - min), each refined by weighted least squares for
// scale and min, keeping the lowest weighted error: squared, or absolute when use_mad
// (Q2_K). Writes L, returns the scale and -min in *neg_min.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, float rmin,
                    float rdelta, int nstep, bool use_mad);

// Index of the level of kIq4nlValues nearest to v (ties to the upper one, as ggml's
// best_index_int8).
int nearest_iq4nl_index(float v);

// llama.cpp's quantize_row_iq4_nl_impl for one block of 32 without an importance matrix
// (ntry = 7), max the element of largest magnitude with its sign: the x^2-weighted
// least-squares scale of the levels picked at the inverse scale 127 / max, replaced by
// that of any of the 15 trial inverse scales (t - 127) / max, t in [-7, 7], that fits
// better. Returns that scale d (0 for an all-zero block); the caller picks each level
// again from d (IQ4_NL) or from its stored sub-block scale (IQ4_XS).
float fit_iq4nl_scale(const float* x);

}  // namespace tachyon::kernels
