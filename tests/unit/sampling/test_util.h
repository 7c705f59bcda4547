// Reference math for the sampler tests, in double.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "sampling/sampler.h"

namespace tachyon::sampling::testing {

inline std::vector<double> softmax(const std::vector<float>& logits, double temperature = 1.0) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float l : logits) mx = std::max(mx, static_cast<double>(l));
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - mx) / temperature);
  for (double& x : p) x /= sum;
  return p;
}

inline std::vector<double> log_softmax(const std::vector<float>& logits) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float l : logits) mx = std::max(mx, static_cast<double>(l));
  double sum = 0;
  for (float l : logits) sum += std::exp(l - mx);
  std::vector<double> lp(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) lp[i] = logits[i] - mx - std::log(sum);
  return lp;
}

inline int argmax(const std::vector<float>& logits) {
  return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());  // first max
}

// Deterministic pseudo-random logits ~ N(0, sigma) (Box-Muller over an LCG).
inline std::vector<float> random_logits(int n, uint64_t seed, float sigma = 3.0f) {
  std::vector<float> v(n);
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  auto u01 = [&] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return (static_cast<double>(s >> 11) + 0.5) * 0x1.0p-53;
  };
  for (int i = 0; i < n; ++i)
    v[i] = static_cast<float>(sigma * std::sqrt(-2 * std::log(u01())) * std::cos(6.283185307179586 * u01()));
  return v;
}

// Draws n tokens and returns per-token counts.
inline std::vector<int> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts[s.sample(logits.data(), static_cast<int>(logits.size())).token];
  return counts;
}

// Pearson chi-square of counts against probabilities p (zero-probability cells must be
// empty: they return +inf otherwise).
inline double chi_square(const std::vector<int>& counts, const std::vector<double>& p) {
  double n = 0;
  for (int c : counts) n += c;
  double chi = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) {
      if (counts[i] != 0) return std::numeric_limits<double>::infinity();
      continue;
    }
    double e = n * p[i];
    chi += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi;
}

// A loose acceptance bound for a chi-square with df degrees of freedom (~ p < 1e-6).
inline double chi_bound(int df) { return df + 7.0 * std::sqrt(2.0 * df) + 10.0; }

}  // namespace tachyon::sampling::testing
