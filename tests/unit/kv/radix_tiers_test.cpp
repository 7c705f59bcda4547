// The radix cache's tiers: demotion to host RAM and disk, promotion back into the pool
// (bit-exact), lazy discovery of disk pages after a restart, write-through, and the
// handling of a page file that went bad.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "kv/radix_cache.h"

using namespace tachyon;
using namespace tachyon::kv;

namespace {

constexpr int kPs = 4;

KvConfig small_config(int n_pages) {
  KvConfig c;
  c.n_layer = 2;
  c.n_kv_head = 2;
  c.head_dim_k = 8;
  c.head_dim_v = 8;
  c.page_size = kPs;
  c.n_pages = n_pages;
  return c;
}

// Fills a page with bytes derived from (seed, position): what "the KV of these tokens" is.
void fill_page(KvPool& pool, int32_t page, uint32_t seed) {
  std::vector<uint8_t> b(pool.page_payload_bytes());
  std::mt19937 rng(seed);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  pool.write_page(page, b.data());
}

std::vector<uint8_t> page_bytes(const KvPool& pool, int32_t page) {
  std::vector<uint8_t> b(pool.page_payload_bytes());
  pool.read_page(page, b.data());
  return b;
}

std::vector<uint8_t> expected_bytes(const KvPool& pool, uint32_t seed) {
  std::vector<uint8_t> b(pool.page_payload_bytes());
  std::mt19937 rng(seed);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/tachyon_tiers_XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A request computes the pages of `tokens` (those the cache did not have), inserts them,
// and finishes. Page i's contents are seeded by seed_base + i. Returns the acquire result's
// tiers.
std::array<int, 3> run_request(RadixCache& cache, KvPool& pool, const std::vector<int32_t>& tokens,
                               uint32_t seed_base, std::vector<std::vector<uint8_t>>* seen = nullptr) {
  const int n_pages = static_cast<int>(tokens.size()) / kPs;
  auto got = cache.acquire(cache.match(tokens.data(), static_cast<int>(tokens.size()), n_pages), tokens.data());
  PageTable pt;
  for (int i = 0; i < got.handle.n_pages(); ++i) {
    pool.retain(cache.page(got.handle, i));
    pt.pages.push_back(cache.page(got.handle, i));
  }
  const int have = static_cast<int>(pt.pages.size());
  if (pool.n_free() < n_pages - have) cache.evict(n_pages - have - pool.n_free());
  EXPECT_TRUE(pt.reserve(pool, n_pages * kPs));
  for (int i = have; i < n_pages; ++i) fill_page(pool, pt.pages[i], seed_base + i);
  if (seen) {
    seen->clear();
    for (int i = 0; i < n_pages; ++i) seen->push_back(page_bytes(pool, pt.pages[i]));
  }
  cache.insert(tokens.data(), pt.pages.data(), n_pages, &got.handle);
  cache.release(&got.handle);
  pt.clear(pool);
  return {got.pages_from[0], got.pages_from[1], got.pages_from[2]};
}

std::vector<int32_t> seq(int n, int32_t base) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = base + i;
  return t;
}

}  // namespace

TEST(RadixTiers, EvictionDemotesToHostAndPromotionIsBitExact) {
  auto pool = KvPool::create(small_config(8));
  ASSERT_TRUE(pool.is_ok());
  KvPool& p = pool.value();
  TierConfig tc;
  tc.host_bytes = 64 * p.page_payload_bytes();
  RadixCache cache(p, tc);
  const auto a = seq(6 * kPs, 100), b = seq(6 * kPs, 5000);
  std::vector<std::vector<uint8_t>> a_bytes, again;
  run_request(cache, p, a, 1, &a_bytes);
  // b needs 6 of the 8 pages: 4 of a's go down to host RAM
  run_request(cache, p, b, 1000);
  auto st = cache.stats();
  EXPECT_EQ(st.demotions[kL2], 4u);
  EXPECT_EQ(st.pages[kL2], 4u);
  EXPECT_EQ(st.dropped, 0u);
  // a again: 2 pages from the pool, 4 promoted from host RAM, bytes identical
  const auto from = run_request(cache, p, a, 777, &again);
  EXPECT_EQ(from[kL1] + from[kL2], 6);
  EXPECT_GE(from[kL2], 4);
  EXPECT_EQ(again, a_bytes);
  EXPECT_EQ(cache.stats().promotions[kL2], static_cast<uint64_t>(from[kL2]));
}

TEST(RadixTiers, WithoutTiersEvictionDrops) {
  auto pool = KvPool::create(small_config(8));
  KvPool& p = pool.value();
  RadixCache cache(p);
  const auto a = seq(6 * kPs, 100), b = seq(6 * kPs, 5000);
  run_request(cache, p, a, 1);
  run_request(cache, p, b, 1000);
  const auto from = run_request(cache, p, a, 1);
  EXPECT_LT(from[kL1], 6);
  EXPECT_EQ(from[kL2] + from[kL3], 0);
}

TEST(RadixTiers, HostFullWritesBackToDiskAndRestartFindsIt) {
  TempDir dir;
  Key128 root{1, 2};
  std::vector<std::vector<uint8_t>> a_bytes;
  const auto a = seq(6 * kPs, 100), b = seq(7 * kPs, 5000);
  {
    auto pool = KvPool::create(small_config(8));
    KvPool& p = pool.value();
    auto disk = DiskTier::open({dir.path, 0, root});
    TierConfig tc;
    tc.host_bytes = 2 * p.page_payload_bytes();  // room for 2 pages in L2
    tc.disk = disk.get();
    tc.root = root;
    tc.write_through_hits = 0;
    RadixCache cache(p, tc);
    run_request(cache, p, a, 1, &a_bytes);
    run_request(cache, p, b, 1000);  // a's pages: 2 to L2, the rest written back to disk
    disk->flush();
    cache.poll();
    auto st = cache.stats();
    EXPECT_EQ(st.pages[kL2], 2u);
    EXPECT_GE(st.demotions[kL3], 3u);
    EXPECT_EQ(st.dropped, 0u);
    std::vector<std::vector<uint8_t>> again;
    const auto from = run_request(cache, p, a, 777, &again);
    EXPECT_EQ(from[kL1] + from[kL2] + from[kL3], 6);
    EXPECT_GT(from[kL3], 0);
    EXPECT_EQ(again, a_bytes);
  }  // the cache writes everything back at destruction
  // "Restart": a new pool, tree and tier over the same directory.
  auto pool = KvPool::create(small_config(8));
  KvPool& p = pool.value();
  auto disk = DiskTier::open({dir.path, 0, root});
  TierConfig tc;
  tc.host_bytes = 0;
  tc.disk = disk.get();
  tc.root = root;
  RadixCache cache(p, tc);
  auto m = cache.match(a.data(), static_cast<int>(a.size()), 6);
  EXPECT_EQ(m.n_pages(), 6);
  EXPECT_EQ(m.n_pages_in(kL3), 6);
  std::vector<std::vector<uint8_t>> again;
  const auto from = run_request(cache, p, a, 777, &again);
  EXPECT_EQ(from[kL3], 6);
  EXPECT_EQ(again, a_bytes);
  // b's 7 pages are there too (written back at shutdown), and another root sees nothing
  EXPECT_EQ(cache.match(b.data(), static_cast<int>(b.size()), 7).n_pages(), 7);
  auto other = DiskTier::open({dir.path, 0, Key128{1, 3}});
  TierConfig tc2;
  tc2.host_bytes = 0;
  tc2.disk = other.get();
  tc2.root = Key128{1, 3};
  auto pool2 = KvPool::create(small_config(8));
  RadixCache cache2(pool2.value(), tc2);
  EXPECT_EQ(cache2.match(a.data(), static_cast<int>(a.size()), 6).n_pages(), 0);
}

TEST(RadixTiers, WriteThroughAtTheNthHit) {
  TempDir dir;
  auto pool = KvPool::create(small_config(16));
  KvPool& p = pool.value();
  auto disk = DiskTier::open({dir.path, 0, Key128{7, 7}});
  TierConfig tc;
  tc.disk = disk.get();
  tc.write_through_hits = 2;
  tc.root = Key128{7, 7};
  RadixCache cache(p, tc);
  const auto a = seq(3 * kPs, 100);
  run_request(cache, p, a, 1);  // inserted: no hit yet
  run_request(cache, p, a, 1);  // hit 1
  disk->flush();
  EXPECT_EQ(disk->stats().writes, 0u);
  run_request(cache, p, a, 1);  // hit 2: written through
  disk->flush();
  cache.poll();
  EXPECT_EQ(disk->stats().writes, 3u);
  EXPECT_EQ(cache.stats().pages[kL1], 3u);  // still in the pool too
}

TEST(RadixTiers, ABadFileEndsThePrefixThereAndIsNeverUsed) {
  TempDir dir;
  const Key128 root{9, 9};
  const auto a = seq(5 * kPs, 100);
  std::vector<std::vector<uint8_t>> a_bytes;
  {
    auto pool = KvPool::create(small_config(8));
    auto disk = DiskTier::open({dir.path, 0, root});
    TierConfig tc;
    tc.host_bytes = 0;
    tc.disk = disk.get();
    tc.root = root;
    RadixCache cache(pool.value(), tc);
    run_request(cache, pool.value(), a, 1, &a_bytes);
  }
  // Corrupt the third page's file (one payload byte in the middle).
  Key128 k = root;
  for (int i = 0; i < 3; ++i) k = page_key(k, a.data() + i * kPs, kPs);
  std::string file;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path))
    if (e.path().filename().string().rfind(k.hex(), 0) == 0) file = e.path().string();
  ASSERT_FALSE(file.empty());
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(f.tellg());
    f.seekg(size - 10);
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(size - 10);
    f.write(&c, 1);
  }
  auto pool = KvPool::create(small_config(8));
  KvPool& p = pool.value();
  auto disk = DiskTier::open({dir.path, 0, root});
  TierConfig tc;
  tc.host_bytes = 0;
  tc.disk = disk.get();
  tc.root = root;
  RadixCache cache(p, tc);
  std::vector<std::vector<uint8_t>> again;
  const auto from = run_request(cache, p, a, 1, &again);  // recomputes from page 2 on
  EXPECT_EQ(from[kL3], 2);
  EXPECT_EQ(again, a_bytes);
  EXPECT_EQ(cache.stats().promote_failures, 1u);
  EXPECT_GE(disk->stats().rejected, 1u);
}

TEST(RadixTiers, PrefetchReadsDiskPagesIntoHostRamOffTheEngineThread) {
  TempDir dir;
  const Key128 root{5, 5};
  const auto a = seq(6 * kPs, 100);
  std::vector<std::vector<uint8_t>> a_bytes;
  {
    auto pool = KvPool::create(small_config(8));
    auto disk = DiskTier::open({dir.path, 0, root});
    TierConfig tc;
    tc.disk = disk.get();
    tc.root = root;
    tc.host_bytes = 1 << 20;
    RadixCache cache(pool.value(), tc);
    run_request(cache, pool.value(), a, 1, &a_bytes);
  }
  auto pool = KvPool::create(small_config(8));
  KvPool& p = pool.value();
  auto disk = DiskTier::open({dir.path, 0, root});
  TierConfig tc;
  tc.disk = disk.get();
  tc.root = root;
  tc.host_bytes = 1 << 20;
  RadixCache cache(p, tc);
  auto m = cache.match(a.data(), static_cast<int>(a.size()), 6);
  EXPECT_EQ(m.n_pages_in(kL3), 6);
  EXPECT_EQ(cache.prefetch(m, a.data()), 6);
  EXPECT_TRUE(cache.prefetching());
  // the same prefix asked again while its reads are in flight: nothing new is queued
  EXPECT_EQ(cache.prefetch(cache.match(a.data(), static_cast<int>(a.size()), 6), a.data()), 6);
  for (int i = 0; i < 2000 && cache.prefetching(); ++i) {
    cache.wait_prefetch(5);
    cache.poll();
  }
  ASSERT_FALSE(cache.prefetching());
  EXPECT_EQ(cache.stats().prefetched, 6u);
  EXPECT_EQ(disk->stats().reads, 6u);
  m = cache.match(a.data(), static_cast<int>(a.size()), 6);
  EXPECT_EQ(m.n_pages_in(kL2), 6);
  EXPECT_EQ(cache.prefetch(m, a.data()), 0);
  std::vector<std::vector<uint8_t>> again;
  const auto from = run_request(cache, p, a, 777, &again);
  EXPECT_EQ(from[kL3], 6);  // found on disk (brought into host RAM ahead of the request)
  EXPECT_EQ(cache.stats().promotions[kL2], 6u);
  EXPECT_EQ(again, a_bytes);
  EXPECT_EQ(disk->stats().reads, 6u);  // acquire read nothing more
}
