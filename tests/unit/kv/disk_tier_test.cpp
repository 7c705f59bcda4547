#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "kv/cache_key.h"
#include "kv/disk_tier.h"

using namespace tachyon::kv;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed (permissions restored first) at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/disk_tier_test_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path = p ? p : "/tmp/disk_tier_test_failed";
  }
  ~TempDir() {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_directory(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

void set_mtime(const std::string& path, int64_t sec) {
  struct timespec ts[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
}

uint64_t dir_bytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code e2;
    const auto n = it->file_size(e2);  // a file may vanish between listing and stat
    if (!e2) total += n;
  }
  return total;
}

size_t count_files(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) ++n;
  return n;
}

Key128 test_root(const std::string& desc = "f16 page=16") { return root_key(Key128{1, 2}, desc); }

// One page of a chain: its tokens, key, parent and payload.
struct Page {
  Key128 key, parent;
  std::vector<int32_t> tokens;
  std::shared_ptr<const std::vector<uint8_t>> payload;
};

std::vector<Page> make_chain(const Key128& root, int n_pages, size_t payload_bytes, int n_tokens = 16,
                             uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<Page> pages;
  Key128 parent = root;
  for (int i = 0; i < n_pages; ++i) {
    Page p;
    p.parent = parent;
    for (int t = 0; t < n_tokens; ++t) p.tokens.push_back(static_cast<int32_t>(rng() % 150000));
    p.key = page_key(parent, p.tokens.data(), n_tokens);
    auto bytes = std::make_shared<std::vector<uint8_t>>(payload_bytes);
    for (auto& b : *bytes) b = static_cast<uint8_t>(rng());
    p.payload = bytes;
    parent = p.key;
    pages.push_back(std::move(p));
  }
  return pages;
}

void write(DiskTier& t, const Page& p) {
  t.write_async(p.key, p.parent, p.tokens.data(), static_cast<int>(p.tokens.size()), p.payload);
}

bool read_back(DiskTier& t, const Page& p) {
  std::vector<uint8_t> out(p.payload->size());
  if (!t.read(p.key, p.parent, p.tokens.data(), static_cast<int>(p.tokens.size()), out.data(), out.size())) {
    return false;
  }
  EXPECT_EQ(out, *p.payload);
  return out == *p.payload;
}

std::string page_file(const DiskTier& t, const Key128& k) { return t.root_dir() + "/" + k.hex() + ".kvp"; }

void flip_byte(const std::string& path, long offset_from_start_or_end) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  if (offset_from_start_or_end < 0) f.seekg(offset_from_start_or_end, std::ios::end);
  else f.seekg(offset_from_start_or_end);
  const std::streampos at = f.tellg();
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(at);
  f.write(&c, 1);
}

constexpr size_t kHeaderBytes16 = 88 + 4 * 16 + 8;  // the header of a 16-token page

}  // namespace

// ---- keys ---------------------------------------------------------------------------

TEST(CacheKey, HexRoundTrip) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) {
    Key128 k{rng(), rng()};
    const std::string h = k.hex();
    ASSERT_EQ(h.size(), 32u);
    Key128 back;
    ASSERT_TRUE(Key128::parse_hex(h, &back));
    EXPECT_EQ(back, k);
  }
  EXPECT_EQ((Key128{0x1, 0xabcdef}).hex(), "0000000000abcdef0000000000000001");  // hi then lo
  Key128 k;
  EXPECT_FALSE(Key128::parse_hex("", &k));
  EXPECT_FALSE(Key128::parse_hex(std::string(31, '0'), &k));
  EXPECT_FALSE(Key128::parse_hex(std::string(33, '0'), &k));
  EXPECT_FALSE(Key128::parse_hex(std::string(31, '0') + "g", &k));
  EXPECT_FALSE(Key128::parse_hex(std::string(31, '0') + "A", &k));  // lowercase only
}

TEST(CacheKey, PageKeysChain) {
  const Key128 root = test_root();
  const std::vector<int32_t> a = {1, 2, 3, 4}, b = {1, 2, 3, 5};
  const Key128 ka = page_key(root, a.data(), 4);
  EXPECT_EQ(ka, page_key(root, a.data(), 4));                 // deterministic
  EXPECT_NE(ka, page_key(root, b.data(), 4));                 // by tokens
  EXPECT_NE(ka, page_key(root, a.data(), 3));                 // by token count
  EXPECT_NE(ka, page_key(test_root("other"), a.data(), 4));   // by parent
  const Key128 k2 = page_key(ka, a.data(), 4);                // chaining
  EXPECT_NE(k2, ka);
  EXPECT_NE(k2, page_key(page_key(root, b.data(), 4), a.data(), 4));
  const std::vector<int32_t> neg = {-1, 0x7fffffff};
  EXPECT_NE(page_key(root, neg.data(), 2), page_key(root, a.data(), 2));
}

TEST(CacheKey, RootKeyDependsOnEverything) {
  const Key128 m1{1, 2}, m2{1, 3};
  EXPECT_EQ(root_key(m1, "kv=f16"), root_key(m1, "kv=f16"));
  EXPECT_NE(root_key(m1, "kv=f16"), root_key(m1, "kv=q8"));
  EXPECT_NE(root_key(m1, "kv=f16"), root_key(m2, "kv=f16"));
  EXPECT_NE(root_key(m1, ""), root_key(m2, ""));
}

TEST(CacheKey, FileFingerprint) {
  TempDir d;
  const std::string file = d.path + "/model.gguf";
  const std::string cache = d.path + "/fp/cache.txt";  // its directory is created
  std::string content(100000, 'x');
  content[500] = 'y';
  write_text(file, content);
  set_mtime(file, 1000);
  auto a = file_fingerprint(file);
  ASSERT_TRUE(a.is_ok());

  content[777] = 'z';  // one byte, same size
  write_text(file, content);
  set_mtime(file, 2000);
  auto b = file_fingerprint(file);
  ASSERT_TRUE(b.is_ok());
  EXPECT_NE(*a, *b);

  // Through the cache: same value, remembered in the cache file.
  auto c = file_fingerprint(file, cache);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(*c, *b);
  const std::string text = read_text(cache);
  EXPECT_NE(text.find(b->hex() + " 100000 2000000000000 /"), std::string::npos) << text;
  EXPECT_NE(text.find("/model.gguf\n"), std::string::npos);

  // The cache is believed while path, size and mtime match: plant a fake value.
  const Key128 fake{0x1234, 0x5678};
  write_text(cache, "garbage line\n\n" + fake.hex() + " 100000 2000000000000 " +
                        fs::canonical(file).string() + "\nnot hex 1 2 /x\n");
  auto e = file_fingerprint(file, cache);
  ASSERT_TRUE(e.is_ok());
  EXPECT_EQ(*e, fake);
  EXPECT_EQ(read_text(cache).find("garbage"), std::string::npos);  // rewritten clean

  // A new mtime (same bytes) is rehashed and replaces the entry.
  set_mtime(file, 3000);
  auto f = file_fingerprint(file, cache);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(*f, *b);
  EXPECT_EQ(read_text(cache).find(fake.hex()), std::string::npos);

  // An unwritable cache location only costs the caching.
  auto g = file_fingerprint(file, file + "/not/a/dir");
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ(*g, *b);

  // Errors and edge cases.
  EXPECT_FALSE(file_fingerprint(d.path + "/missing").is_ok());
  EXPECT_FALSE(file_fingerprint(d.path).is_ok());  // a directory
  write_text(d.path + "/empty", "");
  auto h = file_fingerprint(d.path + "/empty", cache);
  ASSERT_TRUE(h.is_ok());
  EXPECT_NE(*h, *b);
}

TEST(CacheKey, FingerprintCacheKeepsAtMost64Entries) {
  TempDir d;
  const std::string cache = d.path + "/cache.txt";
  for (int i = 0; i < 70; ++i) {
    const std::string f = d.path + "/m" + std::to_string(i);
    write_text(f, "model " + std::to_string(i));
    ASSERT_TRUE(file_fingerprint(f, cache).is_ok());
  }
  const std::string text = read_text(cache);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 64);
  EXPECT_EQ(text.find("/m5\n"), std::string::npos);   // the oldest fell off
  EXPECT_NE(text.find("/m69\n"), std::string::npos);
}

// ---- disk tier ----------------------------------------------------------------------

TEST(DiskTier, WriteThenReadBack) {
  TempDir d;
  const Key128 root = test_root();
  auto t = DiskTier::open({d.path, 0, root});
  ASSERT_TRUE(t->writable());
  EXPECT_EQ(t->root_dir(), d.path + "/" + root.hex());
  const auto pages = make_chain(root, 3, 4096);
  for (const auto& p : pages) write(*t, p);
  write(*t, pages[0]);  // already queued or on disk: no-op
  t->flush();
  const auto ev = t->poll();
  ASSERT_EQ(ev.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ev[i].first, pages[i].key);
    EXPECT_TRUE(ev[i].second);
    EXPECT_TRUE(t->contains(pages[i].key));
    EXPECT_TRUE(fs::exists(page_file(*t, pages[i].key)));
  }
  EXPECT_TRUE(t->poll().empty());
  write(*t, pages[1]);  // on disk: no-op
  t->flush();
  EXPECT_TRUE(t->poll().empty());
  for (const auto& p : pages) EXPECT_TRUE(read_back(*t, p));
  EXPECT_FALSE(t->contains(test_root("nope")));
  std::vector<uint8_t> out(4096);
  EXPECT_FALSE(t->read(test_root("nope"), root, pages[0].tokens.data(), 16, out.data(), out.size()));

  const auto s = t->stats();
  EXPECT_EQ(s.files, 3u);
  EXPECT_EQ(s.bytes, 3 * (kHeaderBytes16 + 4096));
  EXPECT_EQ(s.bytes, dir_bytes(t->root_dir()));
  EXPECT_EQ(s.writes, 3u);
  EXPECT_EQ(s.write_bytes, s.bytes);
  EXPECT_EQ(s.reads, 3u);
  EXPECT_EQ(s.read_bytes, 3u * 4096);
  EXPECT_EQ(s.rejected, 0u);
  EXPECT_GT(s.write_seconds, 0.0);
  EXPECT_GT(s.read_seconds, 0.0);
  EXPECT_TRUE(s.writable);

  // remove(): gone, no event.
  t->remove(pages[2].key);
  EXPECT_FALSE(t->contains(pages[2].key));
  EXPECT_FALSE(fs::exists(page_file(*t, pages[2].key)));
  EXPECT_TRUE(t->poll().empty());
  EXPECT_EQ(t->stats().files, 2u);
}

TEST(DiskTier, EmptyPayloadAndNoTokens) {
  TempDir d;
  const Key128 root = test_root();
  auto t = DiskTier::open({d.path, 0, root});
  auto pages = make_chain(root, 1, 0, 0);
  write(*t, pages[0]);
  t->flush();
  EXPECT_TRUE(t->contains(pages[0].key));
  EXPECT_TRUE(read_back(*t, pages[0]));
}

TEST(DiskTier, WarmRestartAndRootIsolation) {
  TempDir d;
  const Key128 root = test_root(), other = test_root("q8 page=16");
  const auto pages = make_chain(root, 4, 1000);
  {
    auto t = DiskTier::open({d.path, 0, root});
    for (const auto& p : pages) write(*t, p);
  }  // the destructor finishes queued writes
  {
    auto t = DiskTier::open({d.path, 0, root});
    EXPECT_EQ(t->stats().files, 4u);
    for (const auto& p : pages) {
      EXPECT_TRUE(t->contains(p.key));
      EXPECT_TRUE(read_back(*t, p));
    }
    EXPECT_EQ(t->stats().rejected, 0u);
  }
  const std::string root_dir = d.path + "/" + root.hex();
  const auto before = dir_bytes(root_dir);
  {
    auto u = DiskTier::open({d.path, 1, other});  // a tiny cap: would evict anything it counted
    EXPECT_EQ(u->stats().files, 0u);
    for (const auto& p : pages) EXPECT_FALSE(u->contains(p.key));
    const auto mine = make_chain(other, 2, 10);
    write(*u, mine[0]);  // bigger than the cap: dropped
    u->flush();
  }
  {
    auto u = DiskTier::open({d.path, 0, other});
    const auto mine = make_chain(other, 2, 10);
    for (const auto& p : mine) write(*u, p);
    u->flush();
    EXPECT_EQ(u->stats().files, 2u);
  }
  EXPECT_EQ(count_files(root_dir), 4u);
  EXPECT_EQ(dir_bytes(root_dir), before);
  auto t = DiskTier::open({d.path, 0, root});
  EXPECT_EQ(t->stats().files, 4u);
}

TEST(DiskTier, BadFilesAreRejectedAndDeleted) {
  TempDir d;
  const Key128 root = test_root();
  const auto pages = make_chain(root, 6, 2048);
  std::string rdir;
  {
    auto t = DiskTier::open({d.path, 0, root});
    rdir = t->root_dir();
    for (const auto& p : pages) write(*t, p);
  }
  flip_byte(rdir + "/" + pages[0].key.hex() + ".kvp", -1);     // payload byte
  flip_byte(rdir + "/" + pages[1].key.hex() + ".kvp", 100);    // header byte (a token)
  fs::resize_file(rdir + "/" + pages[2].key.hex() + ".kvp", kHeaderBytes16 + 1000);  // truncated
  // A valid file under another page's name.
  const Key128 stranger = page_key(root, pages[0].tokens.data(), 3);
  fs::copy_file(rdir + "/" + pages[3].key.hex() + ".kvp", rdir + "/" + stranger.hex() + ".kvp");
  // Leftover temp files of a killed writer (pid 999999999 cannot exist), and garbage.
  write_text(rdir + "/" + pages[4].key.hex() + ".tmp.999999999.3", "half a page");
  write_text(rdir + "/junk.tmp.x", "junk");
  write_text(rdir + "/" + std::string(32, 'f') + ".kvp", "");  // empty page file
  write_text(rdir + "/README", "not ours");                    // unrelated: left alone

  auto t = DiskTier::open({d.path, 0, root});
  auto s = t->stats();
  EXPECT_EQ(s.rejected, 4u);  // header byte, truncated, stranger, empty
  EXPECT_EQ(s.files, 4u);     // pages 0 (its payload flip is found at read), 3, 4, 5
  EXPECT_FALSE(t->contains(pages[1].key));
  EXPECT_FALSE(t->contains(pages[2].key));
  EXPECT_FALSE(t->contains(stranger));
  EXPECT_FALSE(fs::exists(rdir + "/" + pages[1].key.hex() + ".kvp"));
  EXPECT_FALSE(fs::exists(rdir + "/" + pages[2].key.hex() + ".kvp"));
  EXPECT_FALSE(fs::exists(rdir + "/" + stranger.hex() + ".kvp"));
  EXPECT_FALSE(fs::exists(rdir + "/" + pages[4].key.hex() + ".tmp.999999999.3"));
  EXPECT_FALSE(fs::exists(rdir + "/junk.tmp.x"));
  EXPECT_TRUE(fs::exists(rdir + "/README"));

  // The payload flip passes the header check and is caught at read.
  ASSERT_TRUE(t->contains(pages[0].key));
  std::vector<uint8_t> out(2048);
  EXPECT_FALSE(t->read(pages[0].key, pages[0].parent, pages[0].tokens.data(), 16, out.data(), out.size()));
  EXPECT_FALSE(t->contains(pages[0].key));
  EXPECT_FALSE(fs::exists(rdir + "/" + pages[0].key.hex() + ".kvp"));
  auto ev = t->poll();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0], std::make_pair(pages[0].key, false));
  EXPECT_EQ(t->stats().rejected, 5u);

  // Asked with the wrong parent, tokens or size: not the page asked for.
  std::vector<int32_t> wrong = pages[3].tokens;
  wrong[7] ^= 1;
  EXPECT_FALSE(t->read(pages[3].key, pages[3].parent, wrong.data(), 16, out.data(), out.size()));
  EXPECT_FALSE(t->read(pages[4].key, root, pages[4].tokens.data(), 16, out.data(), out.size()));
  EXPECT_FALSE(t->read(pages[5].key, pages[5].parent, pages[5].tokens.data(), 16, out.data(), 2047));
  s = t->stats();
  EXPECT_EQ(s.rejected, 8u);
  EXPECT_EQ(s.files, 0u);
  EXPECT_EQ(s.reads, 0u);
  EXPECT_EQ(t->poll().size(), 3u);
  EXPECT_EQ(count_files(rdir), 1u);  // README
}

TEST(DiskTier, CorruptionAfterOpenIsCaughtAtRead) {
  TempDir d;
  const Key128 root = test_root();
  const auto pages = make_chain(root, 2, 512);
  auto t = DiskTier::open({d.path, 0, root});
  for (const auto& p : pages) write(*t, p);
  t->flush();
  t->poll();
  flip_byte(page_file(*t, pages[0].key), 20);  // root key in the header
  fs::resize_file(page_file(*t, pages[1].key), kHeaderBytes16 + 511);
  std::vector<uint8_t> out(512);
  EXPECT_FALSE(t->read(pages[0].key, pages[0].parent, pages[0].tokens.data(), 16, out.data(), out.size()));
  EXPECT_FALSE(t->read(pages[1].key, pages[1].parent, pages[1].tokens.data(), 16, out.data(), out.size()));
  EXPECT_EQ(t->stats().rejected, 2u);
  EXPECT_EQ(t->poll().size(), 2u);
  // A file deleted behind the tier's back: not found, forgotten, reported.
  const auto more = make_chain(root, 1, 64, 16, 9);
  write(*t, more[0]);
  t->flush();
  t->poll();
  fs::remove(page_file(*t, more[0].key));
  EXPECT_FALSE(read_back(*t, more[0]));
  EXPECT_FALSE(t->contains(more[0].key));
  EXPECT_EQ(t->poll().size(), 1u);
  EXPECT_EQ(t->stats().files, 0u);
}

TEST(DiskTier, LiveForeignTempFilesAreKept) {
  TempDir d;
  const Key128 root = test_root();
  const std::string rdir = d.path + "/" + root.hex();
  fs::create_directories(rdir);
  // pid 1 exists (init), so this may be another process's write in flight.
  const std::string live = rdir + "/" + std::string(32, 'a') + ".tmp.1.0";
  write_text(live, "in flight");
  auto t = DiskTier::open({d.path, 0, root});
  EXPECT_TRUE(fs::exists(live));
  EXPECT_EQ(t->stats().rejected, 0u);
}

TEST(DiskTier, CapEvictsLeastRecentlyUsed) {
  TempDir d;
  const Key128 root = test_root();
  const size_t file_bytes = kHeaderBytes16 + 10000;
  const uint64_t cap = 5 * file_bytes + 100;  // five files fit
  auto t = DiskTier::open({d.path, cap, root});
  const auto pages = make_chain(root, 12, 10000);
  for (int i = 0; i < 5; ++i) write(*t, pages[i]);
  t->flush();
  EXPECT_EQ(t->stats().files, 5u);
  t->poll();
  EXPECT_TRUE(read_back(*t, pages[0]));  // page 0 becomes the most recently used
  write(*t, pages[5]);
  t->flush();
  EXPECT_TRUE(t->contains(pages[0].key));
  EXPECT_FALSE(t->contains(pages[1].key));  // the least recently used went
  EXPECT_FALSE(fs::exists(page_file(*t, pages[1].key)));
  auto ev = t->poll();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0], std::make_pair(pages[1].key, false));
  EXPECT_EQ(ev[1], std::make_pair(pages[5].key, true));

  // The cap holds at every moment while writes stream (temp files included).
  std::atomic<bool> done{false};
  std::atomic<uint64_t> max_seen{0};
  std::thread watcher([&] {
    while (!done) {
      const uint64_t b = dir_bytes(t->root_dir());
      if (b > max_seen) max_seen = b;
    }
  });
  for (int i = 6; i < 12; ++i) write(*t, pages[i]);
  t->flush();
  done = true;
  watcher.join();
  EXPECT_LE(max_seen.load(), cap);
  EXPECT_LE(dir_bytes(t->root_dir()), cap);
  auto s = t->stats();
  EXPECT_EQ(s.files, 5u);
  EXPECT_EQ(s.evicted_files, 7u);
  EXPECT_EQ(s.bytes, dir_bytes(t->root_dir()));
  for (int i = 7; i < 12; ++i) EXPECT_TRUE(read_back(*t, pages[i]));

  // A page larger than the cap is not written.
  const auto big = make_chain(root, 1, cap, 16, 5);
  t->poll();
  write(*t, big[0]);
  t->flush();
  EXPECT_FALSE(t->contains(big[0].key));
  ev = t->poll();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0], std::make_pair(big[0].key, false));
  EXPECT_EQ(t->stats().dropped_writes, 1u);
  EXPECT_EQ(t->stats().files, 5u);
}

TEST(DiskTier, RestartLruOrderIsMtimeAndLowerCapEvictsAtOpen) {
  TempDir d;
  const Key128 root = test_root();
  const size_t file_bytes = kHeaderBytes16 + 1000;
  const auto pages = make_chain(root, 4, 1000);
  std::string rdir;
  {
    auto t = DiskTier::open({d.path, 0, root});
    rdir = t->root_dir();
    for (int i = 0; i < 3; ++i) write(*t, pages[i]);
  }
  set_mtime(rdir + "/" + pages[0].key.hex() + ".kvp", 3000);  // newest
  set_mtime(rdir + "/" + pages[1].key.hex() + ".kvp", 1000);  // oldest
  set_mtime(rdir + "/" + pages[2].key.hex() + ".kvp", 2000);
  {
    auto t = DiskTier::open({d.path, 3 * file_bytes, root});
    write(*t, pages[3]);
    t->flush();
    EXPECT_FALSE(t->contains(pages[1].key));
    EXPECT_TRUE(t->contains(pages[0].key));
    EXPECT_TRUE(t->contains(pages[2].key));
    // A read refreshes the mtime too, so the order survives the next restart.
    EXPECT_TRUE(read_back(*t, pages[2]));
  }
  auto t = DiskTier::open({d.path, file_bytes, root});  // a cap lowered to one file
  EXPECT_EQ(t->stats().files, 1u);
  EXPECT_TRUE(t->contains(pages[2].key));
  EXPECT_LE(dir_bytes(rdir), file_bytes);
  EXPECT_TRUE(t->poll().empty());
}

TEST(DiskTier, PendingQueueLimitDropsWrites) {
  TempDir d;
  const Key128 root = test_root();
  DiskTierConfig cfg{d.path, 0, root};
  cfg.max_pending_bytes = 3 * 4096;
  auto t = DiskTier::open(cfg);
  const auto pages = make_chain(root, 40, 4096);
  for (const auto& p : pages) write(*t, p);
  t->flush();
  const auto ev = t->poll();
  ASSERT_EQ(ev.size(), pages.size());  // every write is answered exactly once
  std::set<std::pair<uint64_t, uint64_t>> keys;
  size_t ok = 0;
  for (const auto& [k, good] : ev) {
    keys.insert({k.lo, k.hi});
    ok += good;
    EXPECT_EQ(t->contains(k), good);
  }
  EXPECT_EQ(keys.size(), pages.size());
  const auto s = t->stats();
  EXPECT_EQ(s.writes, ok);
  EXPECT_EQ(s.writes + s.dropped_writes, pages.size());
  EXPECT_GT(s.writes, 0u);
}

TEST(DiskTier, UncreatableDirectoryGivesReadOnlyTier) {
  TempDir d;
  write_text(d.path + "/file", "x");
  testing::internal::CaptureStderr();
  auto t = DiskTier::open({d.path + "/file/cache", 0, test_root()});
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("tachyon: kv disk cache: " + d.path + "/file/cache/"), std::string::npos) << err;
  EXPECT_NE(err.find("continuing without writing to disk"), std::string::npos) << err;
  EXPECT_FALSE(t->writable());
  EXPECT_FALSE(t->stats().writable);
  const auto pages = make_chain(test_root(), 2, 100);
  write(*t, pages[0]);  // not written, and said so
  t->flush();
  const auto ev = t->poll();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0], std::make_pair(pages[0].key, false));
  EXPECT_EQ(t->stats().writes, 0u);
  EXPECT_FALSE(t->contains(pages[0].key));
  EXPECT_FALSE(read_back(*t, pages[0]));
  t->remove(pages[0].key);
  EXPECT_EQ(t->stats().files, 0u);
}

TEST(DiskTier, ReadOnlyDirectoryStillServesReads) {
  if (::geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  TempDir d;
  const Key128 root = test_root();
  const auto pages = make_chain(root, 3, 300);
  std::string rdir;
  {
    auto t = DiskTier::open({d.path, 0, root});
    rdir = t->root_dir();
    for (const auto& p : pages) write(*t, p);
  }
  flip_byte(rdir + "/" + pages[2].key.hex() + ".kvp", -1);
  ASSERT_EQ(::chmod(rdir.c_str(), 0555), 0);
  testing::internal::CaptureStderr();
  auto t = DiskTier::open({d.path, 0, root});
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("continuing without writing to disk"), std::string::npos);
  EXPECT_FALSE(t->writable());
  EXPECT_TRUE(read_back(*t, pages[0]));
  EXPECT_TRUE(read_back(*t, pages[1]));
  EXPECT_FALSE(read_back(*t, pages[2]));                              // rejected...
  EXPECT_TRUE(fs::exists(rdir + "/" + pages[2].key.hex() + ".kvp"));  // ...but not deletable
  t->poll();
  const auto more = make_chain(root, 1, 10, 16, 4);
  write(*t, more[0]);
  t->flush();
  EXPECT_FALSE(t->contains(more[0].key));
  EXPECT_EQ(t->poll(), (std::vector<std::pair<Key128, bool>>{{more[0].key, false}}));
}

TEST(DiskTier, WriteFailureDegradesWithOneWarning) {
  TempDir d;
  const Key128 root = test_root();
  auto t = DiskTier::open({d.path, 0, root});
  const auto pages = make_chain(root, 8, 50000);
  write(*t, pages[0]);
  t->flush();
  ASSERT_TRUE(t->contains(pages[0].key));
  t->poll();
  // The directory vanishes and a regular file takes its place.
  fs::remove_all(t->root_dir());
  write_text(t->root_dir(), "not a directory");
  testing::internal::CaptureStderr();
  for (int i = 1; i < 8; ++i) write(*t, pages[i]);
  t->flush();
  const std::string err = testing::internal::GetCapturedStderr();
  size_t n_warnings = 0;
  for (size_t at = 0; (at = err.find("tachyon: kv disk cache:", at)) != std::string::npos; ++at) ++n_warnings;
  EXPECT_EQ(n_warnings, 1u) << err;
  EXPECT_NE(err.find("continuing without writing to disk"), std::string::npos);
  EXPECT_FALSE(t->writable());
  // Every write is answered (failed, dropped from the queue, or refused once not writable).
  const auto ev = t->poll();
  ASSERT_EQ(ev.size(), 7u);
  for (int i = 1; i < 8; ++i) EXPECT_EQ(ev[i - 1], std::make_pair(pages[i].key, false));
  const auto s = t->stats();
  EXPECT_EQ(s.write_errors, 1u);
  EXPECT_EQ(s.writes, 1u);
  EXPECT_FALSE(s.writable);
  EXPECT_EQ(count_files(d.path), 1u);  // the file in the directory's place, nothing else
  // An indexed file that went with the directory: the read fails cleanly and reports it.
  EXPECT_FALSE(read_back(*t, pages[0]));
  write(*t, pages[2]);
  t->flush();
  const auto ev2 = t->poll();
  ASSERT_EQ(ev2.size(), 2u);
  EXPECT_EQ(ev2[0], std::make_pair(pages[0].key, false));
  EXPECT_EQ(ev2[1], std::make_pair(pages[2].key, false));
}

TEST(DiskTier, ConcurrentReadsWhileEvicting) {
  TempDir d;
  const Key128 root = test_root();
  const size_t payload = 8192;
  auto t = DiskTier::open({d.path, 6 * (kHeaderBytes16 + payload), root});
  const auto pages = make_chain(root, 200, payload);
  std::atomic<bool> done{false};
  std::atomic<int> good_reads{0}, bad_reads{0};
  std::thread reader([&] {
    std::mt19937 rng(3);
    std::vector<uint8_t> out(payload);
    while (!done) {
      const Page& p = pages[rng() % pages.size()];
      if (!t->contains(p.key)) continue;
      if (t->read(p.key, p.parent, p.tokens.data(), 16, out.data(), out.size())) {
        (out == *p.payload ? good_reads : bad_reads)++;
      }
    }
  });
  for (const auto& p : pages) {
    write(*t, p);
    if (&p - &pages[0] == 100) t->flush();
  }
  t->flush();
  done = true;
  reader.join();
  EXPECT_EQ(bad_reads.load(), 0);
  const auto s = t->stats();
  EXPECT_EQ(s.rejected, 0u);
  EXPECT_LE(s.files, 6u);
  EXPECT_EQ(s.bytes, dir_bytes(t->root_dir()));
  std::printf("concurrent: %d verified reads, %llu writes, %llu evictions, %llu dropped\n", good_reads.load(),
              static_cast<unsigned long long>(s.writes), static_cast<unsigned long long>(s.evicted_files),
              static_cast<unsigned long long>(s.dropped_writes));
}

TEST(DiskTier, Bandwidth) {
  TempDir d;
  const Key128 root = test_root();
  auto t = DiskTier::open({d.path, 0, root});
  const auto pages = make_chain(root, 32, 1 << 20);  // 32 MiB
  for (const auto& p : pages) write(*t, p);
  t->flush();
  for (const auto& p : pages) ASSERT_TRUE(read_back(*t, p));
  const auto s = t->stats();
  std::printf("write %.0f MB/s (fsync per page), read+verify %.0f MB/s (page cache), 1 MiB pages\n",
              s.write_bytes / s.write_seconds / 1e6, s.read_bytes / s.read_seconds / 1e6);
}
