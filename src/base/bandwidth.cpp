#include "base/bandwidth.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tachyon {

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  const size_t n = bytes / sizeof(uint64_t);
  std::vector<uint64_t> buf(n);
  pool.run([&](int ith, int nth) {  // first touch by the reading threads
    int64_t b, e;
    split_range(static_cast<int64_t>(n), ith, nth, &b, &e);
    for (int64_t i = b; i < e; ++i) buf[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  });
  double best = 0;
  std::vector<uint64_t> sink(pool.n_threads() * 8);
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int ith, int nth) {
      int64_t b, e;
      split_range(static_cast<int64_t>(n), ith, nth, &b, &e);
      uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      int64_t i = b;
      for (; i + 4 <= e; i += 4) {
        a0 ^= buf[i];
        a1 ^= buf[i + 1];
        a2 ^= buf[i + 2];
        a3 ^= buf[i + 3];
      }
      for (; i < e; ++i) a0 ^= buf[i];
      sink[ith * 8] = a0 ^ a1 ^ a2 ^ a3;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, bytes / s / 1e9);
  }
  volatile uint64_t keep = sink[0];
  (void)keep;
  return best;
}

}  // namespace tachyon
