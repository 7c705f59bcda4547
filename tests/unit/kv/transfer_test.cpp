// KV transfer bytes (kv/transfer.h) and their import into the radix cache: a round trip
// gives the same KV bytes, every corruption or foreign root is refused with a reason, and
// import_pages places pages in host RAM or the pool, skips what is cached, and the pages
// come back bit-exact through match/acquire.
#include <gtest/gtest.h>

#include <random>

#include "kv/radix_cache.h"
#include "kv/transfer.h"

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

std::vector<uint8_t> page_of_seed(size_t n, uint32_t seed) {
  std::vector<uint8_t> b(n);
  std::mt19937 rng(seed);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

const Key128 kRoot = root_key(Key128{1, 2}, "test root");

std::vector<int32_t> prompt(int n, int base = 100) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = base + i;
  return t;
}

std::string encode(const std::vector<int32_t>& toks, int n_pages, size_t pb, const Key128& root = kRoot) {
  return encode_transfer(root, toks.data(), static_cast<int>(toks.size()), kPs, n_pages, pb, [&](int i, uint8_t* out) {
    auto b = page_of_seed(pb, 1000 + i);
    std::copy(b.begin(), b.end(), out);
  });
}

Result<TransferPages> decode(const std::string& s, size_t pb, const Key128& root = kRoot, int ps = kPs) {
  return decode_transfer(reinterpret_cast<const uint8_t*>(s.data()), s.size(), root, ps, pb);
}

}  // namespace

TEST(KvTransfer, RoundTripKeepsTokensAndBytes) {
  const size_t pb = 256;
  auto toks = prompt(4 * kPs + 3);
  const std::string s = encode(toks, 4, pb);
  EXPECT_EQ(s.size(), transfer_bytes(static_cast<int>(toks.size()), kPs, 4, pb));
  auto d = decode(s, pb);
  ASSERT_TRUE(d.is_ok()) << d.status().message();
  EXPECT_EQ(d->tokens, toks);
  ASSERT_EQ(d->payloads.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*d->payloads[i], page_of_seed(pb, 1000 + i)) << i;
  // no pages at all is a valid (empty) transfer
  auto e = decode(encode(prompt(3), 0, pb), pb);
  ASSERT_TRUE(e.is_ok());
  EXPECT_TRUE(e->payloads.empty());
}

TEST(KvTransfer, EveryFlippedByteIsRefused) {
  const size_t pb = 64;
  const std::string s = encode(prompt(2 * kPs + 1), 2, pb);
  // Every byte of the transfer is covered by a checksum or compared to a recomputed value.
  for (size_t i = 0; i < s.size(); ++i) {
    std::string bad = s;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    auto d = decode(bad, pb);
    EXPECT_FALSE(d.is_ok()) << "byte " << i << " of " << s.size();
    if (!d.is_ok()) EXPECT_EQ(d.status().code(), ErrorCode::kCorrupt);
  }
}

TEST(KvTransfer, ForeignRootSizesAndTruncationAreRefusedWithAReason) {
  const size_t pb = 64;
  const std::string s = encode(prompt(3 * kPs), 3, pb);
  auto other = decode(s, pb, root_key(Key128{1, 2}, "another model"));
  ASSERT_FALSE(other.is_ok());
  EXPECT_NE(other.status().message().find("another root key"), std::string::npos) << other.status().message();
  auto ps = decode(s, pb, kRoot, 8);
  ASSERT_FALSE(ps.is_ok());
  EXPECT_NE(ps.status().message().find("page size"), std::string::npos);
  auto sz = decode(s, pb * 2);
  ASSERT_FALSE(sz.is_ok());
  for (size_t cut : {size_t{0}, size_t{7}, size_t{31}, s.size() / 2, s.size() - 1}) {
    auto t = decode(s.substr(0, cut), pb);
    EXPECT_FALSE(t.is_ok()) << cut;
  }
  auto extra = decode(s + "x", pb);
  EXPECT_FALSE(extra.is_ok());
  // a record whose tokens were swapped for another prompt's (valid checksums, wrong chain)
  const std::string a = encode(prompt(2 * kPs, 100), 2, pb), b = encode(prompt(2 * kPs, 500), 2, pb);
  const size_t head = 32 + 4 * 2 * kPs, rec = (a.size() - head) / 2;
  std::string mixed = a.substr(0, head + rec) + b.substr(head + rec);
  auto m = decode(mixed, pb);
  EXPECT_FALSE(m.is_ok());
}

TEST(KvTransfer, ImportGoesToHostRamThenPromotesBitExact) {
  KvPool pool = KvPool::create(small_config(8)).value();
  TierConfig tc;
  tc.host_bytes = 64 * pool.page_payload_bytes();
  tc.root = kRoot;
  RadixCache cache(pool, tc);
  const size_t pb = pool.page_payload_bytes();
  auto toks = prompt(3 * kPs + 1);
  auto d = decode(encode(toks, 3, pb), pb).value();
  int present = -1;
  EXPECT_EQ(cache.import_pages(d.tokens.data(), 3, d.payloads, &present), 3);
  EXPECT_EQ(present, 0);
  EXPECT_EQ(cache.stats().pages[kL2], 3u);
  EXPECT_EQ(cache.stats().imported, 3u);
  // importing again adds nothing
  EXPECT_EQ(cache.import_pages(d.tokens.data(), 3, d.payloads, &present), 0);
  EXPECT_EQ(present, 3);
  auto m = cache.match(toks.data(), static_cast<int>(toks.size()), 8);
  ASSERT_EQ(m.n_pages(), 3);
  auto got = cache.acquire(m, toks.data());
  ASSERT_EQ(got.handle.n_pages(), 3);
  EXPECT_EQ(got.pages_from[kL2], 3);
  for (int i = 0; i < 3; ++i) {
    std::vector<uint8_t> b(pb);
    pool.read_page(cache.page(got.handle, i), b.data());
    EXPECT_EQ(b, page_of_seed(pb, 1000 + i)) << i;
  }
  cache.release(&got.handle);
}

TEST(KvTransfer, ImportWithoutHostRamUsesPoolPagesAndStopsWhenFull) {
  KvPool pool = KvPool::create(small_config(2)).value();
  TierConfig tc;
  tc.root = kRoot;
  RadixCache cache(pool, tc);
  const size_t pb = pool.page_payload_bytes();
  auto toks = prompt(4 * kPs);
  auto d = decode(encode(toks, 4, pb), pb).value();
  std::vector<int32_t> l1;
  // two pool pages: the first two pages fit, the import stops there
  EXPECT_EQ(cache.import_pages(d.tokens.data(), 4, d.payloads, nullptr, &l1), 2);
  EXPECT_EQ(l1.size(), 2u);
  EXPECT_EQ(pool.n_free_pages(), 0);
  auto m = cache.match(toks.data(), static_cast<int>(toks.size()), 8);
  ASSERT_EQ(m.n_pages(), 2);
  std::vector<uint8_t> b(pb);
  pool.read_page(cache.page_of(m, 1), b.data());
  EXPECT_EQ(b, page_of_seed(pb, 1001));
  // a later import of another prompt evicts the unlocked imported pages (they are ordinary cache)
  auto toks2 = prompt(kPs, 900);
  auto d2 = decode(encode(toks2, 1, pb), pb).value();
  EXPECT_EQ(cache.import_pages(d2.tokens.data(), 1, d2.payloads), 1);
}
