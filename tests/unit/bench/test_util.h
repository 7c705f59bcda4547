// Helpers shared by the bench tests: a RunConfig aimed at a stub server, and a runner.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "bench/metrics.h"
#include "bench/runner.h"
#include "bench/workload.h"
#include "stub_server.h"

namespace bench_test {

using namespace tachyon::bench;

inline RunConfig config_for(const std::string& url, int n_requests, int concurrency) {
  RunConfig c;
  auto u = Url::parse(url);
  EXPECT_TRUE(u.is_ok()) << u.status().message();
  c.endpoint.url = *u;
  c.endpoint.model = "stub-model";
  c.num_requests = n_requests;
  c.load.concurrency = concurrency;
  c.timeout_ms = 10'000;
  return c;
}

inline WorkloadConfig small_workload(int output_len = 16, uint64_t seed = 1) {
  WorkloadConfig w;
  w.input_len = 8;
  w.output_len = output_len;
  w.seed = seed;
  return w;
}

inline RunResult run(const RunConfig& c, const WorkloadConfig& wc = small_workload()) {
  auto wl = Workload::create(wc, nullptr);
  EXPECT_TRUE(wl.is_ok()) << wl.status().message();
  WorkloadConfig wwc = wc;
  wwc.seed ^= 0xabcdef;
  auto wwl = Workload::create(wwc, nullptr);
  auto r = run_load(c, **wl, wwl->get(), nullptr, {});
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return std::move(r.value());
}

inline const std::vector<double> kPcts = {50, 90, 95, 99};

}  // namespace bench_test
