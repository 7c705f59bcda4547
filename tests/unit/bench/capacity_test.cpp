// The client must never be the bottleneck: 1000 concurrent streams delivering 20,000
// token chunks per second from a local stub, with every chunk arriving on time.
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "test_util.h"

namespace bench_test {
namespace {

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(Capacity, ThousandStreamsTwentyThousandChunksPerSecond) {
  const int n_streams = std::getenv("TACHYON_BENCH_CAP_STREAMS") ? std::atoi(std::getenv("TACHYON_BENCH_CAP_STREAMS")) : 1000;
  const int n_chunks = 60;      // per stream
  const double gap_ms = 50;     // 1000 streams / 50 ms = 20,000 chunks/s
  stub::Server srv([&](int, const nlohmann::json&) {
    stub::Script s;
    s.ttft_ms = 50;
    s.gap_ms = gap_ms;
    s.n_tokens = n_chunks;
    s.role_chunk = false;
    return s;
  }, 1);
  RunConfig c = config_for(srv.url(), n_streams, n_streams);
  c.timeout_ms = 60'000;
  const double cpu0 = thread_cpu_s(), pcpu0 = process_cpu_s();
  const auto r = run(c, small_workload(n_chunks));
  const double client_cpu_s = thread_cpu_s() - cpu0;  // the client's one I/O thread
  const double stub_cpu_s = process_cpu_s() - pcpu0 - client_cpu_s;
  const Summary s = summarize(r.records, {}, kPcts);
  int64_t chunks = 0;
  for (const auto& rec : r.records) chunks += static_cast<int64_t>(rec.chunks.size());
  // Steady state: the window in which all streams were open (after the last first
  // chunk, before the first last chunk).
  int64_t t_a = 0, t_b = INT64_MAX, in_window = 0;
  for (const auto& rec : r.records) {
    if (rec.chunks.empty()) continue;
    t_a = std::max(t_a, rec.chunks.front().t_us);
    t_b = std::min(t_b, rec.chunks.back().t_us);
  }
  for (const auto& rec : r.records)
    for (const auto& ch : rec.chunks) in_window += ch.t_us >= t_a && ch.t_us <= t_b;
  const double steady_rate = t_b > t_a ? in_window / ((t_b - t_a) / 1e6) : 0;
  std::printf("capacity: %d streams (max in flight %d), %lld chunks in %.2f s: %.0f chunks/s overall, "
              "%.0f chunks/s steady; ITL p50 %.2f p99 %.2f max %.2f ms (scripted %.0f); TTFT p99 %.1f ms; "
              "client CPU %.2f s = %.1f us/chunk (one core: ~%.0f chunks/s); stub CPU %.2f s\n",
              n_streams, r.max_in_flight, static_cast<long long>(chunks), s.window_s, chunks / s.window_s,
              steady_rate, s.itl.at(50), s.itl.at(99), s.itl.max, gap_ms, s.ttft.at(99), client_cpu_s,
              1e6 * client_cpu_s / static_cast<double>(chunks), static_cast<double>(chunks) / client_cpu_s, stub_cpu_s);
  EXPECT_EQ(s.n_completed, n_streams) << (s.errors.empty() ? "" : s.error_examples.begin()->second);
  EXPECT_EQ(r.max_in_flight, n_streams);
  EXPECT_EQ(chunks, static_cast<int64_t>(n_streams) * n_chunks);
  // The client's CPU cost per chunk must leave room for 20,000 chunks/s on one core with
  // margin (~18 us measured alone; under a parallel ctest on 2 cores it reached 27 us,
  // cache and scheduler effects, so the bound is 3/4 of a core's budget, 37.5 us). The
  // wall-clock rate needs free cores (the stub shares them), so it is checked only when
  // TACHYON_BENCH_STRICT_CAPACITY=1.
  EXPECT_LT(1e6 * client_cpu_s / static_cast<double>(chunks), 0.75 * 1e6 / 20000.0);
  if (std::getenv("TACHYON_BENCH_STRICT_CAPACITY")) {
    EXPECT_GT(steady_rate, 0.95 * n_streams * 1000 / gap_ms);
    EXPECT_NEAR(s.itl.at(50), gap_ms, 2.0);
  }
}

}  // namespace
}  // namespace bench_test
