// Weight quantizers of the grid formats IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and
// IQ1_M: llama.cpp's quantize_row_<type>_impl searches in the same float operations and
// order, so `tachyon quantize` writes the blocks llama-quantize writes (checked block by
// block against ../shared/data/models/mini-llama-IQ*.gguf in
// tests/golden/quantize_golden_test.cpp; fit quality and edge cases in
// tests/unit/kernels/iq_quantize_test.cpp).
//
// The searches work on a lattice view of each grid: an entry is `dims` levels (IQ2, IQ1: 8
// weights of 3 levels; IQ3: 4 weights of 8 levels), its cell the levels packed `bits` bits
// apiece. A scaled group rounds to a cell; a cell that is no grid entry has a list of the
// grid entries in its nearest `nwant` distance shells (squared distance between the odd
// coordinates 2 * level + 1, ties by index), and the group takes the one of them that fits
// it best. The lists are built once per grid on first use (llama.cpp's iq2xs_init_impl /
// iq3xs_init_impl build the same lists up front).
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/iq1_grid.h"
#include "kernels/iq_grids.h"
#include "kernels/quant.h"
#include "kernels/quant_fit.h"
#include "kernels/quant_fit_iq.h"
#include "kernels/quant_iq1tq.h"
#include "kernels/quant_iq23.h"

namespace tachyon::kernels {

namespace {

// Below these maxima a group counts as all zero (llama.cpp's GROUP_MAX_EPS*).
constexpr float kEps = 1e-15f;
constexpr float kEpsIq3xxs = 1e-8f;
constexpr float kEpsIq2s = 1e-8f;
constexpr float kEpsIq1s = 1e-12f;
constexpr float kEpsIq1m = 1e-7f;

struct Lattice {
  int dims = 0, bits = 0, size = 0;
  std::vector<int8_t> pos;           // size x dims odd coordinates 2 * level + 1
  std::vector<int32_t> map;          // cell -> grid index, or -(offset + 1) into neighbours
  std::vector<uint16_t> neighbours;  // at an offset: a count, then that many grid indices

  const int8_t* point(int g) const { return pos.data() + static_cast<size_t>(g) * dims; }
  const uint16_t* neighbours_of(uint32_t cell) const { return neighbours.data() + (-map[cell] - 1); }
};

// levels(g, k): level of element k of grid entry g. Cells whose levels all are at most
// max_level get neighbour lists (the searches clamp levels to it).
template <typename LevelFn>
Lattice make_lattice(int dims, int bits, int size, int max_level, int nwant, LevelFn levels) {
  Lattice t;
  t.dims = dims;
  t.bits = bits;
  t.size = size;
  t.pos.resize(static_cast<size_t>(size) * dims);
  t.map.assign(size_t{1} << (dims * bits), INT_MIN);
  for (int g = 0; g < size; ++g) {
    uint32_t cell = 0;
    for (int k = 0; k < dims; ++k) {
      const int l = levels(g, k);
      t.pos[static_cast<size_t>(g) * dims + k] = static_cast<int8_t>(2 * l + 1);
      cell |= static_cast<uint32_t>(l) << (bits * k);
    }
    t.map[cell] = g;
  }
  const int n_levels = max_level + 1;
  int n_cells = 1;
  for (int k = 0; k < dims; ++k) n_cells *= n_levels;
  std::vector<int> d2(size);
  std::vector<int> hist;
  int8_t pc[8];
  for (int c = 0; c < n_cells; ++c) {
    uint32_t cell = 0;
    for (int k = 0, r = c; k < dims; ++k, r /= n_levels) {
      pc[k] = static_cast<int8_t>(2 * (r % n_levels) + 1);
      cell |= static_cast<uint32_t>(r % n_levels) << (bits * k);
    }
    if (t.map[cell] >= 0) continue;
    int max_d2 = 0;
    for (int g = 0; g < size; ++g) {
      const int8_t* pg = t.point(g);
      int s = 0;
      for (int k = 0; k < dims; ++k) s += (pg[k] - pc[k]) * (pg[k] - pc[k]);
      d2[g] = s;
      max_d2 = std::max(max_d2, s);
    }
    hist.assign(max_d2 + 1, 0);
    for (int g = 0; g < size; ++g) ++hist[d2[g]];
    const size_t start = t.neighbours.size();
    t.map[cell] = -static_cast<int32_t>(start + 1);
    t.neighbours.push_back(0);
    int shells = 0;
    for (int s = 0; s <= max_d2 && shells < nwant; ++s) {
      if (!hist[s]) continue;
      ++shells;
      for (int g = 0; g < size; ++g)
        if (d2[g] == s) t.neighbours.push_back(static_cast<uint16_t>(g));
    }
    t.neighbours[start] = static_cast<uint16_t>(t.neighbours.size() - start - 1);
  }
  return t;
}

int iq2_level(uint8_t b) { return b == 0x08 ? 0 : b == 0x19 ? 1 : 2; }  // 0x2b

template <int kSize>
Lattice iq2_lattice(const uint64_t (&grid)[kSize], int nwant) {
  return make_lattice(8, 2, kSize, 2, nwant, [&](int g, int k) { return iq2_level(static_cast<uint8_t>(grid[g] >> (8 * k))); });
}

const Lattice& lattice_iq2xxs() {
  static const Lattice t = iq2_lattice(kIq2xxsGrid, 2);
  return t;
}
const Lattice& lattice_iq2xs() {
  static const Lattice t = iq2_lattice(kIq2xsGrid, 2);
  return t;
}
const Lattice& lattice_iq2s() {
  static const Lattice t = iq2_lattice(kIq2sGrid, 1);
  return t;
}
const Lattice& lattice_iq1() {
  static const Lattice t = make_lattice(8, 2, kIq1sGridSize, 2, 3, [](int g, int k) {
    return static_cast<int8_t>(static_cast<uint8_t>(kIq1sGrid[g] >> (8 * k))) + 1;
  });
  return t;
}
const Lattice& lattice_iq3xxs() {
  static const Lattice t = make_lattice(4, 3, 256, 7, 2, [](int g, int k) {
    const int v = static_cast<uint8_t>(kIq3xxsGrid[g] >> (8 * k));
    return v == 62 ? 7 : (v - 4) / 8;  // 4, 12, ..., 52, 62
  });
  return t;
}
const Lattice& lattice_iq3s() {
  static const Lattice t = make_lattice(4, 3, 512, 7, 3, [](int g, int k) {
    return (static_cast<uint8_t>(kIq3sGrid[g] >> (8 * k)) - 1) / 2;  // 1, 3, ..., 15
  });
  return t;
}

// The neighbour of `cell` nearest to xval at `scale` (weighted squared distance); writes its
// levels to L and returns its index.
int best_neighbour(const Lattice& t, uint32_t cell, const float* xval, const float* w, float scale, int8_t* L) {
  const uint16_t* nb = t.neighbours_of(cell);
  float best_d2 = FLT_MAX;
  int gi = -1;
  for (int j = 1; j <= nb[0]; ++j) {
    const int8_t* pg = t.point(nb[j]);
    float d2 = 0;
    for (int i = 0; i < t.dims; ++i) {
      const float q = pg[i];
      const float diff = scale * q - xval[i];
      d2 += w[i] * diff * diff;
    }
    if (d2 < best_d2) {
      best_d2 = d2;
      gi = nb[j];
    }
  }
  if (gi < 0) gi = nb[1];  // every distance NaN (a NaN weight): any neighbour
  const int8_t* pg = t.point(gi);
  for (int i = 0; i < t.dims; ++i) L[i] = static_cast<int8_t>((pg[i] - 1) / 2);
  return gi;
}

// Rounds xval[0..dims) at inverse scale id to levels 0..max_level (written to L) and
// returns the cell.
uint32_t round_cell(const Lattice& t, const float* xval, float id, int max_level, int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < t.dims; ++i) {
    const int l = std::clamp(nearest_int(0.5f * (id * xval[i] - 1)), 0, max_level);
    L[i] = static_cast<int8_t>(l);
    u |= static_cast<uint32_t>(l) << (t.bits * i);
  }
  return u;
}

uint32_t cell_of(const Lattice& t, const int8_t* L) {
  uint32_t u = 0;
  for (int i = 0; i < t.dims; ++i) u |= static_cast<uint32_t>(L[i]) << (t.bits * i);
  return u;
}

// Signs of groups of 8: xval = |xb|, sign bits in signs[k]. With even_parity the count of
// negated weights of a group must be even (the formats store 7 bits): an odd group keeps
// its least important weight (smallest w * x^2) at the wrong sign.
void take_signs(int n, const float* xb, const float* w, bool even_parity, float* xval, uint8_t* signs) {
  for (int k = 0; k < n / 8; ++k) {
    int nflip = 0;
    uint8_t s = 0;
    for (int i = 0; i < 8; ++i) {
      if (xb[8 * k + i] >= 0) {
        xval[8 * k + i] = xb[8 * k + i];
      } else {
        xval[8 * k + i] = -xb[8 * k + i];
        ++nflip;
        s |= static_cast<uint8_t>(1 << i);
      }
    }
    if (even_parity && nflip % 2) {
      int imin = 0;
      float min = w[8 * k] * xb[8 * k] * xb[8 * k];
      for (int i = 1; i < 8; ++i) {
        const float ax = w[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
        if (ax < min) {
          min = ax;
          imin = i;
        }
      }
      xval[8 * k + imin] = -xval[8 * k + imin];
      s ^= static_cast<uint8_t>(1 << imin);
    }
    signs[k] = even_parity ? (s & 127) : s;
  }
}

float sum_squares(const float* x, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

// weight = qw * sqrt(sigma2 + x^2) with an importance, else the format's own choice.
void group_weights(int n, const float* xb, const float* qw, float sigma2, float* w, bool quarter_sigma) {
  if (qw) {
    for (int i = 0; i < n; ++i) w[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
  } else if (quarter_sigma) {
    for (int i = 0; i < n; ++i) w[i] = 0.25f * sigma2 + xb[i] * xb[i];
  } else {
    for (int i = 0; i < n; ++i) w[i] = xb[i] * xb[i];
  }
}

// sum w * x * q and sum w * q^2 for q = 2 L + 1.
void odd_sums(int n, const float* w, const float* xval, const int8_t* L, float* sumqx, float* sumq2) {
  float sx = 0, s2 = 0;
  for (int i = 0; i < n; ++i) {
    const float q = 2 * L[i] + 1;
    sx += w[i] * xval[i] * q;
    s2 += w[i] * q * q;
  }
  *sumqx = sx;
  *sumq2 = s2;
}

// The scan of trial inverse scales (kMaxQ2 + is * step) / max over the groups of a chunk:
// each group rounded and, off the grid, moved to its best neighbour; the best weighted
// least-squares scale wins (its levels in L, which groups were on the grid in on_grid).
float scan_scales(const Lattice& t, int n, const float* xval, const float* w, const float* waux, float max, int is_lo,
                  int is_hi, float step, float start_scale, int8_t* L, bool* on_grid) {
  const int max_level = t.dims == 8 ? 2 : 7;
  const int n_max = 2 * (max_level + 1) - 1;
  int8_t Laux[32];
  bool on_aux[8];
  float best = 0, scale = start_scale;
  for (int is = is_lo; is <= is_hi; ++is) {
    const float id = (n_max + is * step) / max;
    const float this_scale = 1 / id;
    for (int k = 0; k < n / t.dims; ++k) {
      const uint32_t u = round_cell(t, xval + t.dims * k, id, max_level, Laux + t.dims * k);
      on_aux[k] = t.map[u] >= 0;
      if (!on_aux[k]) best_neighbour(t, u, xval + t.dims * k, waux + t.dims * k, this_scale, Laux + t.dims * k);
    }
    float sumqx, sumq2;
    odd_sums(n, w, xval, Laux, &sumqx, &sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      scale = sumqx / sumq2;
      best = scale * sumqx;
      std::memcpy(L, Laux, n);
      if (on_grid) std::memcpy(on_grid, on_aux, n / t.dims);
    }
  }
  return scale;
}

// The final pass at the chosen scale: groups (all, or those off the grid when skip_on_grid)
// rounded again and moved to the grid, then the least-squares scale of the result.
float refit(const Lattice& t, int n, const float* xval, const float* w, const float* waux, float scale, int8_t* L,
            const bool* skip) {
  const int max_level = t.dims == 8 ? 2 : 7;
  const float id = 1 / scale;
  for (int k = 0; k < n / t.dims; ++k) {
    if (skip && skip[k]) continue;
    int8_t* Lk = L + t.dims * k;
    const uint32_t u = round_cell(t, xval + t.dims * k, id, max_level, Lk);
    if (t.map[u] < 0) best_neighbour(t, u, xval + t.dims * k, waux + t.dims * k, scale, Lk);
  }
  float sumqx, sumq2;
  odd_sums(n, w, xval, L, &sumqx, &sumq2);
  return sumq2 > 0 ? sumqx / sumq2 : scale;
}

// The grid entry of levels L, which the searches leave on the grid (0 if not: NaN input).
int grid_index(const Lattice& t, const int8_t* L) { return std::max(0, t.map[cell_of(t, L)]); }

// 4-bit chunk scale code of scale s at super-block scale d = max_scale / 31.
int chunk_scale_code(float id, float s) { return std::clamp(nearest_int(0.5f * (id * s - 1)), 0, 15); }

// ---------------------------------------------------------------- IQ2_XXS / IQ2_XS

void iq2_xxs_row(const float* x, BlockIQ2_XXS* y, int64_t n, const float* qw_row) {
  const Lattice& t = lattice_iq2xxs();
  constexpr int kMaxQ = 3;
  float scales[QK_K / 32], weight[32], xval[32], waux[32];
  int8_t L[32];
  uint8_t signs[4];
  uint32_t q2[2 * (QK_K / 32)];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    y[ibl].d = f32_to_f16(0.f);
    std::memset(q2, 0, sizeof(q2));
    float max_scale = 0;
    const float* xbl = x + QK_K * ibl;
    const float sigma2 = sum_squares(xbl, QK_K) / QK_K;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float* xb = xbl + 32 * ib;
      group_weights(32, xb, qw_row + QK_K * ibl + 32 * ib, sigma2, weight, false);
      for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
      take_signs(32, xb, weight, true, xval, signs);
      float max = xval[0];
      for (int i = 1; i < 32; ++i) max = std::max(max, xval[i]);
      if (max < kEps) {
        scales[ib] = 0;
        std::memset(L, 0, 32);
        continue;
      }
      float scale = fit_positive_scale(32, kMaxQ + 1, xval, reinterpret_cast<uint8_t*>(L), weight);
      const float eff_max = scale * kMaxQ;
      if (eff_max <= 0) {
        scales[ib] = 0;
        std::memset(L, 0, 32);
        continue;
      }
      scale = scan_scales(t, 32, xval, weight, waux, eff_max, -6, 6, 0.1f, scale, L, nullptr);
      if (scale > 0) scale = refit(t, 32, xval, weight, waux, scale, L, nullptr);
      if (scale < 0) {
        scale = -scale;
        for (auto& s : signs) s = static_cast<uint8_t>(~s & 127);
      }
      for (int k = 0; k < 4; ++k) {
        q2[2 * ib + 0] |= static_cast<uint32_t>(grid_index(t, L + 8 * k)) << (8 * k);
        q2[2 * ib + 1] |= static_cast<uint32_t>(signs[k]) << (7 * k);
      }
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }
    if (!max_scale) {
      std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = f32_to_f16(d);
    const float id = 1 / d;
    for (int ib = 0; ib < QK_K / 32; ++ib) q2[2 * ib + 1] |= static_cast<uint32_t>(chunk_scale_code(id, scales[ib])) << 28;
    std::memcpy(y[ibl].qs, q2, sizeof(q2));
  }
}

// IQ2_XS (9-bit grid, half-chunk scales) and IQ2_S (10-bit grid, plain sign bytes).
template <bool kIq2s>
void iq2_16_row(const float* x, void* vy, int64_t n, const float* qw_row) {
  const Lattice& t = kIq2s ? lattice_iq2s() : lattice_iq2xs();
  constexpr int kMaxQ = 3;
  float scales[QK_K / 16], weight[16], xval[16], waux[16];
  int8_t L[16];
  bool on_grid[2];
  uint8_t signs[2];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    BlockIQ2_XS* yx = static_cast<BlockIQ2_XS*>(vy) + ibl;
    BlockIQ2_S* ys = static_cast<BlockIQ2_S*>(vy) + ibl;
    uint16_t q2[2 * (QK_K / 16)] = {};
    if (kIq2s) {
      std::memset(ys, 0, sizeof(*ys));
    } else {
      yx->d = f32_to_f16(0.f);
      std::memset(yx->scales, 0, sizeof(yx->scales));
    }
    float max_scale = 0;
    const float* xbl = x + QK_K * ibl;
    const float sumx2 = sum_squares(xbl, QK_K);
    const float sigma2 = kIq2s ? 2 * sumx2 / QK_K : sumx2 / QK_K;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      const float* xb = xbl + 16 * ib;
      group_weights(16, xb, qw_row ? qw_row + QK_K * ibl + 16 * ib : nullptr, sigma2, weight, true);
      for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
      take_signs(16, xb, weight, !kIq2s, xval, signs);
      float max = xval[0];
      for (int i = 1; i < 16; ++i) max = std::max(max, xval[i]);
      std::memset(L, 0, 16);
      if (max < (kIq2s ? kEpsIq2s : kEps)) {
        scales[ib] = 0;
        continue;
      }
      on_grid[0] = on_grid[1] = true;
      float scale = scan_scales(t, 16, xval, weight, waux, max, -9, 9, 0.1f, max / (2 * kMaxQ - 1), L, on_grid);
      if ((!on_grid[0] || !on_grid[1]) && scale > 0) scale = refit(t, 16, xval, weight, waux, scale, L, on_grid);
      if (scale < 0) {
        scale = -scale;
        for (auto& s : signs) s = kIq2s ? static_cast<uint8_t>(~s) : static_cast<uint8_t>(~s & 127);
      }
      for (int k = 0; k < 2; ++k) {
        const int g = grid_index(t, L + 8 * k);
        if (kIq2s) {
          const int i8 = 2 * ib + k;
          ys->qs[i8] = static_cast<uint8_t>(g & 255);
          ys->qh[i8 / 4] |= static_cast<uint8_t>((g >> 8) << (2 * (i8 % 4)));
          ys->qs[QK_K / 8 + i8] = signs[k];
        } else {
          q2[2 * ib + k] = static_cast<uint16_t>(g | (signs[k] << 9));
        }
      }
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }
    if (!max_scale) {
      if (!kIq2s) std::memset(yx->qs, 0, sizeof(yx->qs));
      continue;
    }
    const float d = max_scale / 31;
    uint8_t* sc = kIq2s ? ys->scales : yx->scales;
    if (kIq2s) ys->d = f32_to_f16(d * 0.9875f);
    else yx->d = f32_to_f16(d);
    const float id = 1 / d;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      const int l = chunk_scale_code(id, scales[ib]);
      if (ib % 2 == 0) sc[ib / 2] = static_cast<uint8_t>(l);
      else sc[ib / 2] |= static_cast<uint8_t>(l << 4);
    }
    if (!kIq2s) std::memcpy(yx->qs, q2, sizeof(q2));
  }
}

// ---------------------------------------------------------------- IQ3_XXS / IQ3_S

void iq3_xxs_row(const float* x, BlockIQ3_XXS* y, int64_t n, const float* qw_row) {
  const Lattice& t = lattice_iq3xxs();
  constexpr int kMaxQ = 8;
  float scales[QK_K / 32], weight[32], xval[32], waux[32];
  int8_t L[32];
  bool on_grid[8];
  uint8_t signs[4];
  uint8_t q3[3 * (QK_K / 8)];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    y[ibl].d = f32_to_f16(0.f);
    std::memset(q3, 0, sizeof(q3));
    uint32_t scales_and_signs[QK_K / 32] = {};
    float max_scale = 0;
    const float* xbl = x + QK_K * ibl;
    const float sigma2 = 2 * sum_squares(xbl, QK_K) / QK_K;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
      const float* xb = xbl + 32 * ib;
      group_weights(32, xb, qw_row ? qw_row + QK_K * ibl + 32 * ib : nullptr, sigma2, weight, false);
      for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
      take_signs(32, xb, weight, true, xval, signs);
      float max = xval[0];
      for (int i = 1; i < 32; ++i) max = std::max(max, xval[i]);
      std::memset(L, 0, 32);
      if (max < kEpsIq3xxs) {
        scales[ib] = 0;
        continue;
      }
      std::fill(on_grid, on_grid + 8, true);
      float scale = scan_scales(t, 32, xval, weight, waux, max, -15, 15, 0.2f, max / (2 * kMaxQ - 1), L, on_grid);
      bool any_off = false;
      for (bool g : on_grid) any_off |= !g;
      if (any_off && scale > 0) scale = refit(t, 32, xval, weight, waux, scale, L, on_grid);
      if (scale < 0) {
        scale = -scale;
        for (auto& s : signs) s = static_cast<uint8_t>(~s & 127);
      }
      for (int k = 0; k < 8; ++k) q3[8 * ib + k] = static_cast<uint8_t>(grid_index(t, L + 4 * k));
      scales_and_signs[ib] = signs[0] | (signs[1] << 7) | (signs[2] << 14) | (signs[3] << 21);
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }
    if (!max_scale) {
      std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
      continue;
    }
    const float d = max_scale / 31;
    y[ibl].d = f32_to_f16(d * 1.0125f);
    const float id = 1 / d;
    for (int ib = 0; ib < QK_K / 32; ++ib) scales_and_signs[ib] |= static_cast<uint32_t>(chunk_scale_code(id, scales[ib])) << 28;
    std::memcpy(y[ibl].qs, q3, QK_K / 4);
    std::memcpy(y[ibl].qs + QK_K / 4, scales_and_signs, sizeof(scales_and_signs));
  }
}

void iq3_s_row(const float* x, BlockIQ3_S* y, int64_t n, const float* qw_row) {
  const Lattice& t = lattice_iq3s();
  constexpr int kMaxQ = 8, kBs = 32;
  float scales[QK_K / kBs], weight[kBs], xval[kBs], waux[kBs];
  int8_t L[kBs];
  bool on_grid[kBs / 4];
  uint8_t signs[kBs / 8];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    std::memset(&y[ibl], 0, sizeof(y[ibl]));
    float max_scale = 0;
    const float* xbl = x + QK_K * ibl;
    const float sigma2 = 2 * sum_squares(xbl, QK_K) / QK_K;
    for (int ib = 0; ib < QK_K / kBs; ++ib) {
      const float* xb = xbl + kBs * ib;
      group_weights(kBs, xb, qw_row ? qw_row + QK_K * ibl + kBs * ib : nullptr, sigma2, weight, false);
      for (int i = 0; i < kBs; ++i) waux[i] = std::sqrt(weight[i]);
      take_signs(kBs, xb, weight, false, xval, signs);
      float max = xval[0];
      for (int i = 1; i < kBs; ++i) max = std::max(max, xval[i]);
      std::memset(L, 0, kBs);
      if (!max) {
        scales[ib] = 0;
        continue;
      }
      std::fill(on_grid, on_grid + kBs / 4, false);
      float scale = scan_scales(t, kBs, xval, weight, waux, max, -9, 9, 0.2f, max / (2 * kMaxQ - 1), L, on_grid);
      bool any_off = false;
      for (bool g : on_grid) any_off |= !g;
      if (any_off && scale > 0) scale = refit(t, kBs, xval, weight, waux, scale, L, nullptr);  // every group again
      if (scale < 0) {
        scale = -scale;
        for (auto& s : signs) s = static_cast<uint8_t>(~s);
      }
      for (int k = 0; k < kBs / 4; ++k) {
        const int g = grid_index(t, L + 4 * k);
        y[ibl].qs[(kBs / 4) * ib + k] = static_cast<uint8_t>(g & 255);
        y[ibl].qh[(ib * (kBs / 4) + k) / 8] |= static_cast<uint8_t>((g >> 8) << ((ib * (kBs / 4) + k) % 8));
      }
      for (int k = 0; k < kBs / 8; ++k) y[ibl].signs[(kBs / 8) * ib + k] = signs[k];
      scales[ib] = scale;
      max_scale = std::max(max_scale, scale);
    }
    if (!max_scale) continue;
    const float d = max_scale / 31;
    y[ibl].d = f32_to_f16(d * 1.033f);
    const float id = 1 / d;
    for (int ib = 0; ib < QK_K / kBs; ib += 2) {
      const int l1 = chunk_scale_code(id, scales[ib]), l2 = chunk_scale_code(id, scales[ib + 1]);
      y[ibl].scales[ib / 2] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
}

// ---------------------------------------------------------------- IQ1_S / IQ1_M

// A group's value and its position in the chunk, sorted by value with the C library's
// qsort as llama.cpp sorts them (the order of equal values is qsort's).
struct ValueIndex {
  float x;
  int i;
};
int by_value(const void* a, const void* b) {
  const float l = static_cast<const ValueIndex*>(a)->x, r = static_cast<const ValueIndex*>(b)->x;
  return l < r ? -1 : l > r ? 1 : 0;
}

// The grid entry of the cell's neighbours (all entries when none fits) nearest to xval at
// `scale` with the shifted levels xg[level].
int iq1_best_neighbour(const Lattice& t, uint32_t cell, const float* xval, const float* w, float scale, const float* xg,
                       int8_t* L) {
  const uint16_t* nb = t.neighbours_of(cell);
  float best = FLT_MAX;
  int gi = -1;
  auto dist = [&](int g) {
    const int8_t* pg = t.point(g);
    float d2 = 0;
    for (int i = 0; i < 8; ++i) {
      const float q = xg[(pg[i] - 1) / 2];
      const float diff = scale * q - xval[i];
      d2 += w[i] * diff * diff;
    }
    return d2;
  };
  for (int j = 1; j <= nb[0]; ++j) {
    const float d2 = dist(nb[j]);
    if (d2 < best) {
      best = d2;
      gi = nb[j];
    }
  }
  if (gi < 0) {  // every neighbour's distance is NaN or infinite
    for (int g = 0; g < t.size; ++g) {
      const float d2 = dist(g);
      if (d2 < best) {
        best = d2;
        gi = g;
      }
    }
  }
  if (gi < 0) gi = nb[1];
  const int8_t* pg = t.point(gi);
  for (int i = 0; i < 8; ++i) L[i] = static_cast<int8_t>((pg[i] - 1) / 2);
  return gi;
}

// Grid indices of the chunk's groups of 8 from levels L (off-grid groups moved to their
// best neighbour with the shifted levels of xx(k)); returns false when one was off.
template <typename XxFn>
bool iq1_indices(const Lattice& t, int bs, const float* xb, const float* w, float scale, XxFn xx, int8_t* L,
                 uint16_t* index) {
  bool all_on = true;
  for (int k = 0; k < bs / 8; ++k) {
    const uint32_t u = cell_of(t, L + 8 * k);
    int g = t.map[u];
    if (g < 0) {
      all_on = false;
      g = iq1_best_neighbour(t, u, xb + 8 * k, w + 8 * k, scale, xx(k), L + 8 * k);
    }
    index[k] = static_cast<uint16_t>(g);
  }
  return all_on;
}

void iq1_s_row(const float* x, BlockIQ1_S* y, int64_t n, const float* qw_row) {
  const Lattice& t = lattice_iq1();
  constexpr int kBs = 32;
  const float x_p[3] = {-1 + kIq1Delta, kIq1Delta, 1 + kIq1Delta};
  const float x_m[3] = {-1 - kIq1Delta, -kIq1Delta, 1 - kIq1Delta};
  float scales[QK_K / kBs], weight[kBs], sumx[kBs + 1], sumw[kBs + 1];
  int8_t L[kBs], shifts[QK_K / kBs];
  uint16_t index[kBs / 8];
  ValueIndex pairs[kBs];
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    y[ibl].d = f32_to_f16(0.f);
    std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
    std::memset(y[ibl].qh, 0, sizeof(y[ibl].qh));
    float max_scale = 0;
    const float* xbl = x + QK_K * ibl;
    const float sigma2 = 2 * sum_squares(xbl, QK_K) / QK_K;
    for (int ib = 0; ib < QK_K / kBs; ++ib) {
      const float* xb = xbl + kBs * ib;
      group_weights(kBs, xb, qw_row + QK_K * ibl + kBs * ib, sigma2, weight, false);
      float max = std::fabs(xb[0]);
      for (int i = 1; i < kBs; ++i) max = std::max(max, std::fabs(xb[i]));
      if (max < kEpsIq1s) {
        scales[ib] = 0;
        shifts[ib] = 1;
        continue;
      }
      // Three levels: the exact weighted optimum over the two split points of the sorted values.
      for (int j = 0; j < kBs; ++j) pairs[j] = {xb[j], j};
      std::qsort(pairs, kBs, sizeof(ValueIndex), by_value);
      sumx[0] = sumw[0] = 0;
      for (int j = 0; j < kBs; ++j) {
        const int i = pairs[j].i;
        sumx[j + 1] = sumx[j] + weight[i] * xb[i];
        sumw[j + 1] = sumw[j] + weight[i];
      }
      float best_score = -FLT_MAX, scale = max;
      int besti1 = -1, besti2 = -1, best_shift = 0;
      for (int i1 = 0; i1 <= kBs; ++i1) {
        for (int i2 = i1; i2 <= kBs; ++i2) {
          for (int sgn = 1; sgn >= -1; sgn -= 2) {
            const float* v = sgn == 1 ? x_p : x_m;
            const float sumqx = (sumx[i1] - sumx[0]) * v[0] + (sumx[i2] - sumx[i1]) * v[1] + (sumx[kBs] - sumx[i2]) * v[2];
            const float sumq2 = (sumw[i1] - sumw[0]) * v[0] * v[0] + (sumw[i2] - sumw[i1]) * v[1] * v[1] +
                                (sumw[kBs] - sumw[i2]) * v[2] * v[2];
            if (sumq2 > 0 && sumqx * sumqx > best_score * sumq2) {
              scale = sumqx / sumq2;
              best_score = scale * sumqx;
              besti1 = i1;
              besti2 = i2;
              best_shift = sgn;
            }
          }
        }
      }
      if (besti1 < 0 || besti2 < 0 || best_shift == 0) {
        scales[ib] = 0;
        shifts[ib] = 1;
        continue;
      }
      for (int j = 0; j < besti1; ++j) L[pairs[j].i] = 0;
      for (int j = besti1; j < besti2; ++j) L[pairs[j].i] = 1;
      for (int j = besti2; j < kBs; ++j) L[pairs[j].i] = 2;
      if (scale < 0) {
        for (auto& l : L) l = static_cast<int8_t>(2 - l);
        scale = -scale;
        best_shift = -best_shift;
      }
      const float* xx = best_shift == 1 ? x_p : x_m;
      if (!iq1_indices(t, kBs, xb, weight, scale, [&](int) { return xx; }, L, index)) {
        float sumqx = 0, sumq2 = 0;
        for (int k = 0; k < kBs / 8; ++k) {
          const int8_t* pg = t.point(index[k]);
          for (int j = 0; j < 8; ++j) {
            const float w = weight[8 * k + j];
            const float q = xx[(pg[j] - 1) / 2];
            sumqx += w * q * xb[8 * k + j];
            sumq2 += w * q * q;
          }
        }
        if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
      }
      uint16_t h = 0;
      for (int k = 0; k < kBs / 8; ++k) {
        y[ibl].qs[(kBs / 8) * ib + k] = static_cast<uint8_t>(index[k] & 255);
        h |= static_cast<uint16_t>((index[k] >> 8) << (3 * k));
      }
      y[ibl].qh[ib] = h;
      scales[ib] = scale;
      shifts[ib] = static_cast<int8_t>(best_shift);
      max_scale = std::max(max_scale, scale);
    }
    if (!max_scale) continue;
    const float d = max_scale / 15;
    y[ibl].d = f32_to_f16(d * 1.125f);
    const float id = 1 / d;
    for (int ib = 0; ib < QK_K / kBs; ++ib) {
      int l = std::clamp(nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
      if (shifts[ib] == -1) l |= 8;
      y[ibl].qh[ib] |= static_cast<uint16_t>(l << 12);
    }
  }
}

void iq1_m_row(const float* x, BlockIQ1_M* y, int64_t n, const float* qw_row) {
  const Lattice& t = lattice_iq1();
  constexpr int kBs = 16;
  const float x_p[3] = {-1 + kIq1Delta, kIq1Delta, 1 + kIq1Delta};
  const float x_m[3] = {-1 - kIq1Delta, -kIq1Delta, 1 - kIq1Delta};
  const uint8_t masks[4] = {0x00, 0x80, 0x08, 0x88};
  float scales[QK_K / kBs], weight[kBs];
  int8_t L[kBs], shifts[QK_K / kBs];
  uint16_t index[kBs / 8];
  ValueIndex pairs[kBs];
  // Shift k: bit 1 the first group's delta sign, bit 0 the second's (0: +, 1: -).
  auto xx_of = [&](int k_shift, int k) { return (k == 0 ? k_shift < 2 : k_shift % 2 == 0) ? x_p : x_m; };
  for (int64_t ibl = 0; ibl < n / QK_K; ++ibl) {
    std::memset(y[ibl].qs, 0, sizeof(y[ibl].qs));
    std::memset(y[ibl].qh, 0, sizeof(y[ibl].qh));
    std::memset(y[ibl].scales, 0, sizeof(y[ibl].scales));
    float max_scale = 0;
    const float* xbl = x + QK_K * ibl;
    const float sigma2 = 2 * sum_squares(xbl, QK_K) / QK_K;
    const float* qw_bl = qw_row ? qw_row + QK_K * ibl : nullptr;
    for (int ib = 0; ib < QK_K / kBs; ++ib) {
      const float* xb = xbl + kBs * ib;
      group_weights(kBs, xb, qw_bl ? qw_bl + kBs * ib : nullptr, sigma2, weight, false);
      float max = std::fabs(xb[0]);
      for (int i = 1; i < kBs; ++i) max = std::max(max, std::fabs(xb[i]));
      if (max < kEpsIq1m) {
        scales[ib] = 0;
        shifts[ib] = 0;
        continue;
      }
      for (int j = 0; j < kBs; ++j) pairs[j] = {xb[j], j};
      std::qsort(pairs, kBs, sizeof(ValueIndex), by_value);
      float best_score = -FLT_MAX, scale = max;
      int besti1 = -1, besti2 = -1, best_k = -1;
      // Prefix sums per half (each half has its own delta sign); with level steps of 1 the
      // sums of a split are t * v[2] - p[i1] - p[i2] and the squares follow likewise.
      float px[2][kBs + 1], pw[2][kBs + 1];
      px[0][0] = px[1][0] = pw[0][0] = pw[1][0] = 0;
      for (int j = 0; j < kBs; ++j) {
        const int i = pairs[j].i;
        const int h = i < kBs / 2 ? 0 : 1;
        px[h][j + 1] = px[h][j] + weight[i] * xb[i];
        px[1 - h][j + 1] = px[1 - h][j];
        pw[h][j + 1] = pw[h][j] + weight[i];
        pw[1 - h][j + 1] = pw[1 - h][j];
      }
      const float txs[2] = {px[0][kBs], px[1][kBs]}, tws[2] = {pw[0][kBs], pw[1][kBs]};
      const float p2 = x_p[2], m2 = x_m[2];
      const float cp1 = x_p[0] * x_p[0] - x_p[1] * x_p[1], cp2 = x_p[1] * x_p[1] - x_p[2] * x_p[2];
      const float cm1 = x_m[0] * x_m[0] - x_m[1] * x_m[1], cm2 = x_m[1] * x_m[1] - x_m[2] * x_m[2];
      for (int i1 = 0; i1 <= kBs; ++i1) {
        for (int i2 = i1; i2 <= kBs; ++i2) {
          float qx_p[2], qx_m[2], q2_p[2], q2_m[2];
          for (int h = 0; h < 2; ++h) {
            const float sx = px[h][i1] + px[h][i2];
            qx_p[h] = txs[h] * p2 - sx;
            qx_m[h] = txs[h] * m2 - sx;
            q2_p[h] = tws[h] * p2 * p2 + pw[h][i1] * cp1 + pw[h][i2] * cp2;
            q2_m[h] = tws[h] * m2 * m2 + pw[h][i1] * cm1 + pw[h][i2] * cm2;
          }
          const float sumqx[4] = {qx_p[0] + qx_p[1], qx_p[0] + qx_m[1], qx_m[0] + qx_p[1], qx_m[0] + qx_m[1]};
          const float sumq2[4] = {q2_p[0] + q2_p[1], q2_p[0] + q2_m[1], q2_m[0] + q2_p[1], q2_m[0] + q2_m[1]};
          for (int k = 0; k < 4; ++k) {
            if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > best_score * sumq2[k]) {
              scale = sumqx[k] / sumq2[k];
              best_score = scale * sumqx[k];
              besti1 = i1;
              besti2 = i2;
              best_k = k;
            }
          }
        }
      }
      if (besti1 < 0 || besti2 < 0 || best_k < 0) {
        scales[ib] = 0;
        shifts[ib] = 0;
        continue;
      }
      for (int j = 0; j < besti1; ++j) L[pairs[j].i] = 0;
      for (int j = besti1; j < besti2; ++j) L[pairs[j].i] = 1;
      for (int j = besti2; j < kBs; ++j) L[pairs[j].i] = 2;
      if (scale < 0) {
        for (auto& l : L) l = static_cast<int8_t>(2 - l);
        scale = -scale;
        best_k = 3 - best_k;
      }
      if (!iq1_indices(t, kBs, xb, weight, scale, [&](int k) { return xx_of(best_k, k); }, L, index)) {
        float sumqx = 0, sumq2 = 0;
        for (int k = 0; k < kBs / 8; ++k) {
          const float* xx = xx_of(best_k, k);
          const int8_t* pg = t.point(index[k]);
          for (int j = 0; j < 8; ++j) {
            const float w = weight[8 * k + j];
            const float q = xx[(pg[j] - 1) / 2];
            sumqx += w * q * xb[8 * k + j];
            sumq2 += w * q * q;
          }
        }
        if (sumqx > 0 && sumq2 > 0) scale = sumqx / sumq2;
      }
      y[ibl].qs[2 * ib + 0] = static_cast<uint8_t>(index[0] & 255);
      y[ibl].qs[2 * ib + 1] = static_cast<uint8_t>(index[1] & 255);
      y[ibl].qh[ib] = static_cast<uint8_t>((index[0] >> 8) | ((index[1] >> 8) << 4));
      scales[ib] = scale;
      shifts[ib] = static_cast<int8_t>(best_k);
      max_scale = std::max(max_scale, scale);
    }
    if (!max_scale) continue;
    uint16_t sc[4] = {};
    float d = max_scale / 15;
    const float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int ib = 0; ib < QK_K / kBs; ++ib) {
      const int l = std::clamp(nearest_int(0.5f * (id * scales[ib] - 1)), 0, 7);
      sc[ib / 4] |= static_cast<uint16_t>(l << (3 * (ib % 4)));
      y[ibl].qh[ib] |= masks[shifts[ib]];
      const float* xb = xbl + kBs * ib;
      group_weights(kBs, xb, qw_bl ? qw_bl + kBs * ib : nullptr, sigma2, weight, false);
      for (int k = 0; k < kBs / 8; ++k) {
        const float* xx = xx_of(shifts[ib], k);
        const int g = y[ibl].qs[2 * ib + k] + ((y[ibl].qh[ib] << (8 - 4 * k)) & 0x700);
        const int8_t* pg = t.point(g);
        for (int j = 0; j < 8; ++j) {
          const float w = weight[8 * k + j];
          const float q = xx[(pg[j] - 1) / 2] * (2 * l + 1);
          sumqx += w * q * xb[8 * k + j];
          sumq2 += w * q * q;
        }
      }
    }
    if (sumq2 > 0) d = sumqx / sumq2;
    const uint16_t s = f32_to_f16(d * 1.1125f);
    sc[0] |= static_cast<uint16_t>((s & 0x000f) << 12);
    sc[1] |= static_cast<uint16_t>((s & 0x00f0) << 8);
    sc[2] |= static_cast<uint16_t>((s & 0x0f00) << 4);
    sc[3] |= static_cast<uint16_t>(s & 0xf000);
    std::memcpy(y[ibl].scales, sc, sizeof(sc));
  }
}

void iq2_xs_row(const float* x, BlockIQ2_XS* y, int64_t n, const float* qw) { iq2_16_row<false>(x, y, n, qw); }
void iq2_s_row(const float* x, BlockIQ2_S* y, int64_t n, const float* qw) { iq2_16_row<true>(x, y, n, qw); }

}  // namespace

void quantize_iq2_xxs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ2_XXS, QK_K, iq2_xxs_row>(x, y, n, imatrix, n_cols);
}
void quantize_iq2_xs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ2_XS, QK_K, iq2_xs_row>(x, y, n, imatrix, n_cols);
}
void quantize_iq2_s_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ2_S, QK_K, iq2_s_row>(x, y, n, imatrix, n_cols);
}
void quantize_iq3_xxs_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ3_XXS, QK_K, iq3_xxs_row>(x, y, n, imatrix, n_cols);
}
void quantize_iq3_s_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ3_S, QK_K, iq3_s_row>(x, y, n, imatrix, n_cols);
}
void quantize_iq1_s_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ1_S, QK_K, iq1_s_row>(x, y, n, imatrix, n_cols);
}
void quantize_iq1_m_weighted_ref(const float* x, void* y, int64_t n, const float* imatrix, int64_t n_cols) {
  weighted_rows<BlockIQ1_M, QK_K, iq1_m_row>(x, y, n, imatrix, n_cols);
}

void quantize_iq2_s_ref(const float* x, void* y, int64_t n) { iq2_s_row(x, static_cast<BlockIQ2_S*>(y), n, nullptr); }
void quantize_iq3_xxs_ref(const float* x, void* y, int64_t n) {
  iq3_xxs_row(x, static_cast<BlockIQ3_XXS*>(y), n, nullptr);
}
void quantize_iq3_s_ref(const float* x, void* y, int64_t n) { iq3_s_row(x, static_cast<BlockIQ3_S*>(y), n, nullptr); }
void quantize_iq1_m_ref(const float* x, void* y, int64_t n) { iq1_m_row(x, static_cast<BlockIQ1_M*>(y), n, nullptr); }

int iq_lattice_neighbour_count(DType t) {
  switch (t) {
    case DType::IQ2_XXS: return static_cast<int>(lattice_iq2xxs().neighbours.size());
    case DType::IQ2_XS: return static_cast<int>(lattice_iq2xs().neighbours.size());
    case DType::IQ2_S: return static_cast<int>(lattice_iq2s().neighbours.size());
    case DType::IQ3_XXS: return static_cast<int>(lattice_iq3xxs().neighbours.size());
    case DType::IQ3_S: return static_cast<int>(lattice_iq3s().neighbours.size());
    case DType::IQ1_S:
    case DType::IQ1_M: return static_cast<int>(lattice_iq1().neighbours.size());
    default: return 0;
  }
}

}  // namespace tachyon::kernels
