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
