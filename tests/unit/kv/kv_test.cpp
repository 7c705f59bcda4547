#include <gtest/gtest.h>

#include "kv/kv_pool.h"

using namespace tachyon::kv;

TEST(KvPool, AllocRetainReleaseAndExhaustion) {
  KvConfig c{2, 2, 8, 8, 4, 3};
  auto p = KvPool::create(c);
  ASSERT_TRUE(p.is_ok());
  KvPool& pool = p.value();
  EXPECT_EQ(pool.n_free(), 3);
  PageTable a, b;
  ASSERT_TRUE(a.reserve(pool, 5));  // 2 pages of 4 tokens
  EXPECT_EQ(a.pages.size(), 2u);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_FALSE(b.reserve(pool, 9));  // needs 3, only 1 left
  EXPECT_EQ(b.pages.size(), 1u);
  EXPECT_EQ(pool.n_free(), 0);
  // sharing: b takes a reference on a's first page
  pool.retain(a.pages[0]);
  EXPECT_EQ(pool.refcount(a.pages[0]), 2);
  const int32_t shared = a.pages[0];
  a.clear(pool);
  EXPECT_EQ(pool.refcount(shared), 1);
  EXPECT_EQ(pool.n_free(), 1);
  pool.release(shared);
  b.clear(pool);
  EXPECT_EQ(pool.n_free(), 3);
}

TEST(KvPool, PagesDoNotAlias) {
  KvConfig c{3, 2, 16, 16, 8, 4};
  auto p = KvPool::create(c);
  ASSERT_TRUE(p.is_ok());
  KvPool& pool = p.value();
  for (int pg = 0; pg < 4; ++pg)
    for (int l = 0; l < 3; ++l)
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 8 * 16; ++i) pool.k(pg, l, h)[i] = static_cast<uint16_t>(pg * 1000 + l * 100 + h * 10 + i % 7);
  for (int pg = 0; pg < 4; ++pg)
    for (int l = 0; l < 3; ++l)
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 8 * 16; ++i) ASSERT_EQ(pool.k(pg, l, h)[i], pg * 1000 + l * 100 + h * 10 + i % 7);
  EXPECT_EQ(pool.bytes(), 2u * 4 * 3 * 2 * 8 * 16 * 2);
}

TEST(KvPool, RejectsBadConfig) {
  EXPECT_FALSE(KvPool::create(KvConfig{0, 2, 8, 8, 4, 3}).is_ok());
  EXPECT_FALSE(KvPool::create(KvConfig{1, 2, 8, 8, 4, 0}).is_ok());
}

namespace {
// 4 layers, layers 1 and 2 sliding-window: 4 pages, 2 local slots.
KvConfig local_config(int n_pages, int n_slots) {
  KvConfig c{4, 2, 8, 8, 4, n_pages};
  c.local_layers = {0, 1, 1, 0};
  c.window = 8;
  c.n_local_slots = n_slots;
  return c;
}
}  // namespace

TEST(KvPool, LocalSlotsRunOutBeforePages) {
  auto p = KvPool::create(local_config(4, 2));
  ASSERT_TRUE(p.is_ok()) << p.status().message();
  KvPool& pool = p.value();
  EXPECT_TRUE(pool.has_local_layers());
  EXPECT_EQ(pool.n_local_slots(), 2);
  EXPECT_EQ(pool.n_free(), 2);  // min(4 pages, 2 slots)
  EXPECT_EQ(pool.n_free_pages(), 4);
  const int32_t a = pool.alloc(), b = pool.alloc();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(pool.local_refs(a), 1);
  EXPECT_EQ(pool.n_free(), 0);
  EXPECT_EQ(pool.n_free_pages(), 2);
  EXPECT_EQ(pool.alloc(), -1);       // pages remain, slots do not
  EXPECT_EQ(pool.n_free_pages(), 2);  // the failed alloc gave its page back
  // Dropping a's window frees a slot; a keeps it attached until alloc() takes it.
  pool.drop_local(a);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_TRUE(pool.has_local(a));
  EXPECT_TRUE(pool.retain_local(a));  // reclaimed, contents intact
  EXPECT_EQ(pool.n_free(), 0);
  pool.drop_local(a);
  const int32_t c = pool.alloc();
  ASSERT_GE(c, 0);
  EXPECT_FALSE(pool.has_local(a));  // its slot went to c
  EXPECT_FALSE(pool.retain_local(a));
  EXPECT_EQ(pool.local_refs(a), 0);
  EXPECT_TRUE(pool.has_local(c));
  // Releasing a page frees its slot with it, whatever local references remain.
  pool.release(b);
  EXPECT_EQ(pool.n_free(), 1);
  EXPECT_EQ(pool.n_free_pages(), 2);
  pool.release(a);
  pool.release(c);
  EXPECT_EQ(pool.n_free(), 2);
  EXPECT_EQ(pool.n_free_pages(), 4);
}

TEST(KvPool, SharedPageKeepsItsSlotWhileAnyReaderHoldsIt) {
  auto p = KvPool::create(local_config(4, 2));
  ASSERT_TRUE(p.is_ok());
  KvPool& pool = p.value();
  const int32_t a = pool.alloc();
  pool.retain(a);  // a second reader
  ASSERT_TRUE(pool.retain_local(a));
  EXPECT_EQ(pool.local_refs(a), 2);
  pool.drop_local(a);  // the first reader is past the window
  EXPECT_EQ(pool.n_free_local_slots(), 1);
  const int32_t b = pool.alloc();  // takes the never-used slot
  ASSERT_GE(b, 0);
  EXPECT_EQ(pool.alloc(), -1);
  EXPECT_TRUE(pool.has_local(a));
  pool.release(a);  // the first reader's page reference
  EXPECT_TRUE(pool.has_local(a));
  EXPECT_EQ(pool.refcount(a), 1);
  pool.drop_local(a);
  pool.release(a);
  pool.release(b);
  EXPECT_EQ(pool.n_free(), 2);
}

// Dropped slots are reused oldest drop first, after slots never attached: recently
// dropped windows (of prefixes the radix cache holds) survive longest.
TEST(KvPool, DroppedSlotsAreReusedOldestFirst) {
  auto p = KvPool::create(local_config(6, 3));
  ASSERT_TRUE(p.is_ok());
  KvPool& pool = p.value();
  const int32_t a = pool.alloc(), b = pool.alloc();
  pool.drop_local(a);
  pool.drop_local(b);
  const int32_t c = pool.alloc();  // the third, unused slot
  EXPECT_TRUE(pool.has_local(a));
  EXPECT_TRUE(pool.has_local(b));
  const int32_t d = pool.alloc();  // a's (dropped first)
  EXPECT_FALSE(pool.has_local(a));
  EXPECT_TRUE(pool.has_local(b));
  const int32_t e = pool.alloc();  // b's
  ASSERT_GE(e, 0);
  EXPECT_FALSE(pool.has_local(b));
  EXPECT_EQ(pool.alloc(), -1);
  EXPECT_EQ(pool.n_free_pages(), 1);
  for (int32_t x : {a, b, c, d, e}) pool.release(x);
  EXPECT_EQ(pool.n_free(), 3);
  EXPECT_EQ(pool.n_free_pages(), 6);
}

TEST(KvPool, GlobalAndLocalLayersLiveInTheirOwnArenas) {
  const KvConfig full = [] {
    KvConfig c{4, 2, 8, 8, 4, 4};
    return c;
  }();
  const KvConfig loc = local_config(4, 2);
  auto pf = KvPool::create(full);
  auto pl = KvPool::create(loc);
  ASSERT_TRUE(pf.is_ok() && pl.is_ok());
  KvPool& pool = pl.value();
  // 2 global layers x 4 pages + 2 local layers x (2 slots + the NaN slot)
  EXPECT_EQ(pool.bytes(), (2u * 4 + 2u * 3) * loc.layer_page_bytes());
  EXPECT_LT(pool.bytes(), pf.value().bytes());
  EXPECT_EQ(pf.value().bytes(), 4 * full.page_bytes());
  EXPECT_EQ(loc.page_bytes(), full.page_bytes());
  EXPECT_EQ(loc.global_page_bytes() + loc.local_slot_bytes(), loc.page_bytes());
  const int32_t a = pool.alloc(), b = pool.alloc();
  // Write a distinct value into every (page, layer, head) and read them all back.
  auto fill = [&](int32_t pg, int tag) {
    for (int l = 0; l < 4; ++l)
      for (int h = 0; h < 2; ++h) {
        for (int i = 0; i < 4 * 8; ++i)
          pool.k(pg, l, h)[i] = static_cast<uint16_t>(tag * 1000 + l * 100 + h * 10 + i % 7);
        for (int i = 0; i < 4 * 8; ++i) pool.v(pg, l, h)[i] = static_cast<uint16_t>(tag * 1000 + l * 100 + h * 10 + 5);
      }
  };
  auto check = [&](int32_t pg, int tag) {
    for (int l = 0; l < 4; ++l)
      for (int h = 0; h < 2; ++h) {
        for (int i = 0; i < 4 * 8; ++i) ASSERT_EQ(pool.k(pg, l, h)[i], tag * 1000 + l * 100 + h * 10 + i % 7);
        for (int i = 0; i < 4 * 8; ++i) ASSERT_EQ(pool.v(pg, l, h)[i], tag * 1000 + l * 100 + h * 10 + 5);
      }
  };
  fill(a, 1);
  fill(b, 2);
  check(a, 1);
  check(b, 2);
  // Global layers of consecutive pages, local layers of consecutive slots, one run each.
  EXPECT_EQ(pool.k(1, 0, 0) - pool.k(0, 0, 0), 4 * 8);
  EXPECT_EQ(pool.k(0, 3, 0) - pool.k(0, 0, 0), 2 * 4 * 4 * 8);  // global layer 3 = the arena's second
  EXPECT_EQ(pool.k(b, 1, 0) - pool.k(a, 1, 0), 4 * 8);          // slots 0 and 1
  EXPECT_EQ(pool.k(a, 2, 0) - pool.k(a, 1, 0), 2 * 3 * 4 * 8);  // local layer 2 = the arena's second
  // A new page given a's dropped slot sees a's local rows; a's global rows stay its own.
  pool.drop_local(a);
  pool.release(b);
  const int32_t c = pool.alloc();  // b's slot (released slots go first)
  ASSERT_GE(c, 0);
  EXPECT_TRUE(pool.has_local(a));
  const int32_t d = pool.alloc();  // a's slot
  ASSERT_GE(d, 0);
  EXPECT_FALSE(pool.has_local(a));
  EXPECT_EQ(pool.k(d, 1, 1)[3], 1000 + 100 + 10 + 3);
  EXPECT_NE(pool.k(d, 0, 1)[3], 1000 + 0 + 10 + 3);
  for (int i = 0; i < 4 * 8; ++i) ASSERT_EQ(pool.k(a, 3, 1)[i], 1000 + 300 + 10 + i % 7);
}

TEST(KvPool, NoLocalLayersBehavesAsBefore) {
  KvConfig c{2, 2, 8, 8, 4, 3};
  c.local_layers = {0, 0};  // flags but none set: no local arena
  auto p = KvPool::create(c);
  ASSERT_TRUE(p.is_ok());
  KvPool& pool = p.value();
  EXPECT_FALSE(pool.has_local_layers());
  EXPECT_EQ(pool.bytes(), 3 * c.page_bytes());
  const int32_t a = pool.alloc();
  EXPECT_TRUE(pool.has_local(a));
  EXPECT_TRUE(pool.retain_local(a));
  pool.drop_local(a);
  EXPECT_EQ(pool.n_free(), 2);
  pool.release(a);
  EXPECT_EQ(pool.n_free(), 3);
}

TEST(KvPool, RejectsBadLocalConfig) {
  KvConfig c = local_config(4, 2);
  c.local_layers = {1, 0};  // wrong count
  auto r = KvPool::create(c);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("2 sliding-window layer flags for 4 layers"), std::string::npos);
  c = local_config(4, 2);
  c.window = 0;
  EXPECT_FALSE(KvPool::create(c).is_ok());
  c = local_config(4, -1);
  EXPECT_FALSE(KvPool::create(c).is_ok());
}
