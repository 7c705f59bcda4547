#pragma once
#include <cstddef>

#include "base/thread_pool.h"

namespace tachyon {

// Measured memory read bandwidth in GB/s: all pool threads stream disjoint parts of a
// `bytes`-sized buffer (far larger than the caches); best of `reps` passes.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t(1) << 30, int reps = 5);

}  // namespace tachyon
