#include "kv/disk_tier.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "kv/le_bytes.h"

namespace tachyon::kv {

namespace {

namespace fs = std::filesystem;

// File header, all fields little-endian:
//   [ 0,  8) magic "TKVPAGE\0"      [ 8, 12) u32 format version  [12, 16) u32 header bytes
//   [16, 32) root key (lo, hi)       [32, 48) parent key          [48, 64) page key
//   [64, 68) u32 n_tokens            [68, 72) u32 zero            [72, 80) u64 payload bytes
//   [80, 88) u64 XXH3-64 of payload  [88, 88 + 4 n_tokens) int32 tokens
//   then u64 XXH3-64 of every header byte before it.
// The payload follows at offset `header bytes`; the file is exactly header + payload.
constexpr char kMagic[8] = {'T', 'K', 'V', 'P', 'A', 'G', 'E', '\0'};
constexpr size_t kFixedHeaderBytes = 88;
constexpr uint32_t kMaxTokens = 1u << 20;  // sanity bound on a header's token count
constexpr const char* kPageSuffix = ".kvp";

size_t header_bytes_for(uint32_t n_tokens) { return kFixedHeaderBytes + 4 * size_t{n_tokens} + 8; }

using le::get_u32;
using le::get_u64;
using le::put_u32;
using le::put_u64;

void put_key(uint8_t* p, const Key128& k) {
  put_u64(p, k.lo);
  put_u64(p + 8, k.hi);
}
Key128 get_key(const uint8_t* p) { return {get_u64(p), get_u64(p + 8)}; }

using PageHeader = PageRecordHeader;

}  // namespace

std::vector<uint8_t> encode_page_header(const PageRecordHeader& h, const int32_t* tokens) {
  std::vector<uint8_t> b(header_bytes_for(h.n_tokens), 0);
  std::memcpy(b.data(), kMagic, 8);
  put_u32(&b[8], kKvFormatVersion);
  put_u32(&b[12], static_cast<uint32_t>(b.size()));
  put_key(&b[16], h.root);
  put_key(&b[32], h.parent);
  put_key(&b[48], h.key);
  put_u32(&b[64], h.n_tokens);
  put_u64(&b[72], h.payload_bytes);
  put_u64(&b[80], h.payload_hash);
  for (uint32_t i = 0; i < h.n_tokens; ++i) put_u32(&b[kFixedHeaderBytes + 4 * i], static_cast<uint32_t>(tokens[i]));
  const size_t sum_at = b.size() - 8;
  put_u64(&b[sum_at], XXH3_64bits(b.data(), sum_at));
  return b;
}

// Decodes the fixed part; false when the magic, version or sizes are not ours.
static bool decode_fixed(const uint8_t* p, PageHeader* h) {
  if (std::memcmp(p, kMagic, 8) != 0 || get_u32(p + 8) != kKvFormatVersion || get_u32(p + 68) != 0) return false;
  h->header_bytes = get_u32(p + 12);
  h->root = get_key(p + 16);
  h->parent = get_key(p + 32);
  h->key = get_key(p + 48);
  h->n_tokens = get_u32(p + 64);
  h->payload_bytes = get_u64(p + 72);
  h->payload_hash = get_u64(p + 80);
  return h->n_tokens <= kMaxTokens && h->header_bytes == header_bytes_for(h->n_tokens);
}

bool decode_page_header(const uint8_t* p, size_t n, PageRecordHeader* h) {
  if (n < kFixedHeaderBytes || !decode_fixed(p, h) || n < h->header_bytes) return false;
  return XXH3_64bits(p, h->header_bytes - 8) == get_u64(p + h->header_bytes - 8);
}

size_t page_header_bytes(uint32_t n_tokens) { return header_bytes_for(n_tokens); }

namespace {

// Decodes and checks a whole header (`n` bytes read from the start of a file).
bool decode_header(const uint8_t* p, size_t n, PageHeader* h) {
  return decode_page_header(p, n, h) && n == h->header_bytes;
}

bool pread_all(int fd, void* dst, size_t n, uint64_t offset) {
  auto* d = static_cast<uint8_t*>(dst);
  while (n > 0) {
    const ssize_t r = ::pread(fd, d, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    d += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

bool write_all(int fd, const void* src, size_t n) {
  auto* s = static_cast<const uint8_t*>(src);
  while (n > 0) {
    const ssize_t w = ::write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return false;
    if (w == 0) {
      errno = EIO;
      return false;
    }
    s += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

int64_t mtime_ns(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// Temp names are "<anything>.tmp.<pid>.<n>". One whose writer is alive in another
// process (a second server sharing DIR) is left alone; any other is a leftover.
bool is_stale_temp(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos) return false;
  const long pid = std::atol(name.c_str() + at + 5);
  if (pid <= 0 || pid == static_cast<long>(::getpid())) return true;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

std::atomic<uint64_t> g_temp_counter{0};  // process-wide: two tiers may share a directory

std::string temp_name(const std::string& stem) {
  return stem + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(g_temp_counter++);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

struct DiskTier::Impl {
  struct Entry {
    uint64_t file_bytes = 0, payload_bytes = 0;
    uint32_t header_bytes = 0;
    ino_t ino = 0;    // tells this file from a later one under the same name
    int readers = 0;  // reads in progress; the cap does not evict such a file
    std::list<Key128>::iterator lru;
  };
  struct Job {
    Key128 key, parent;
    std::vector<int32_t> tokens;
    std::shared_ptr<const std::vector<uint8_t>> payload;
  };
  using Index = std::unordered_map<Key128, Entry, Key128Hash>;

  DiskTierConfig cfg;
  std::string root_dir;

  mutable std::mutex mu;
  std::condition_variable work_cv, idle_cv;
  Index index;
  std::list<Key128> lru;  // front = least recently used
  uint64_t bytes = 0;     // sum of index's file_bytes
  std::deque<Job> queue;
  std::unordered_set<Key128, Key128Hash> pending;  // queued or being written
  uint64_t queued_payload_bytes = 0;
  bool busy = false, stop = false, writable = false, warned = false;
  std::vector<std::pair<Key128, bool>> events;
  DiskTierStats st;
  std::thread writer;

  std::string page_path(const Key128& key) const { return root_dir + "/" + key.hex() + kPageSuffix; }

  void warn_locked(const std::string& why) {
    writable = false;
    if (warned) return;
    warned = true;
    std::fprintf(stderr, "tachyon: kv disk cache: %s: %s; continuing without writing to disk\n", root_dir.c_str(),
                 why.c_str());
  }

  // Forgets a file; deletes it when writable (a reader holding it open keeps its bytes).
  void unindex_locked(Index::iterator it, bool event, bool delete_file = true) {
    if (delete_file && writable) ::unlink(page_path(it->first).c_str());
    bytes -= it->second.file_bytes;
    lru.erase(it->second.lru);
    if (event) events.emplace_back(it->first, false);
    index.erase(it);
  }

  void touch_locked(Entry& e) { lru.splice(lru.end(), lru, e.lru); }

  // Evicts least recently used files until `need` more bytes (the file about to be
  // written; one writer, so at most one in flight) fit under the cap.
  bool make_room_locked(uint64_t need) {
    if (cfg.cap_bytes == 0) return true;
    if (need > cfg.cap_bytes) return false;
    while (bytes + need > cfg.cap_bytes) {
      auto victim = std::find_if(lru.begin(), lru.end(), [&](const Key128& k) { return index.at(k).readers == 0; });
      if (victim == lru.end()) return false;
      unindex_locked(index.find(*victim), /*event=*/true);
      ++st.evicted_files;
    }
    return true;
  }

  // Stops writing for good: every queued job is reported lost.
  void degrade_locked(const std::string& why) {
    warn_locked(why);
    for (const Job& j : queue) {
      events.emplace_back(j.key, false);
      pending.erase(j.key);
      ++st.dropped_writes;
    }
    queue.clear();
    queued_payload_bytes = 0;
  }

  // Checks a page file's header at open (not its payload). Returns false for a bad file.
  bool index_file(const std::string& name, const Key128& key, std::vector<std::pair<int64_t, Key128>>* order) {
    const std::string path = root_dir + "/" + name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat s {};
    uint8_t fixed[kFixedHeaderBytes];
    PageHeader h;
    bool ok = ::fstat(fd, &s) == 0 && pread_all(fd, fixed, sizeof fixed, 0) && decode_fixed(fixed, &h) &&
              h.root == cfg.root && h.key == key &&
              static_cast<uint64_t>(s.st_size) == h.header_bytes + h.payload_bytes;
    if (ok) {
      std::vector<uint8_t> hdr(h.header_bytes);
      ok = pread_all(fd, hdr.data(), hdr.size(), 0) && decode_header(hdr.data(), hdr.size(), &h);
    }
    ::close(fd);
    if (!ok) return false;
    Entry e;
    e.file_bytes = static_cast<uint64_t>(s.st_size);
    e.payload_bytes = h.payload_bytes;
    e.header_bytes = h.header_bytes;
    e.ino = s.st_ino;
    index.emplace(key, e);
    order->emplace_back(mtime_ns(s), key);
    return true;
  }

  void scan() {
    std::error_code ec;
    fs::create_directories(root_dir, ec);
    if (ec) return warn_locked(ec.message());
    // A probe write tells a read-only directory apart before the first page write.
    const std::string probe = temp_name(root_dir + "/probe");
    const int pfd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (pfd < 0) {
      warn_locked(std::strerror(errno));
    } else {
      ::close(pfd);
      ::unlink(probe.c_str());
      writable = true;
    }
    std::vector<std::pair<int64_t, Key128>> order;
    fs::directory_iterator it(root_dir, ec), end;
    if (ec) return warn_locked(ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      const std::string name = it->path().filename().string();
      if (name.find(".tmp.") != std::string::npos) {
        if (writable && is_stale_temp(name)) ::unlink(it->path().c_str());
        continue;
      }
      Key128 key;
      if (name.size() != 32 + std::strlen(kPageSuffix) || !name.ends_with(kPageSuffix) ||
          !Key128::parse_hex(name.substr(0, 32), &key)) {
        continue;  // not ours
      }
      if (!index_file(name, key, &order)) {
        ++st.rejected;
        if (writable) ::unlink(it->path().c_str());
      }
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [t, key] : order) {
      Entry& e = index.at(key);
      e.lru = lru.insert(lru.end(), key);
      bytes += e.file_bytes;
    }
    // A cap lowered since the files were written.
    if (writable && cfg.cap_bytes > 0 && bytes > cfg.cap_bytes) {
      make_room_locked(0);
      events.clear();  // nobody can have known these keys yet
    }
  }

  // Writes one page file (temp, fsync, rename). On failure returns the reason in *why.
  bool write_file(const Job& job, uint64_t* file_bytes, ino_t* ino, std::string* why) {
    PageHeader h;
    h.root = cfg.root;
    h.parent = job.parent;
    h.key = job.key;
    h.n_tokens = static_cast<uint32_t>(job.tokens.size());
    h.payload_bytes = job.payload->size();
    h.payload_hash = XXH3_64bits(job.payload->data(), job.payload->size());
    const std::vector<uint8_t> hdr = encode_page_header(h, job.tokens.data());
    *file_bytes = hdr.size() + job.payload->size();
    const std::string tmp = temp_name(root_dir + "/" + job.key.hex());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      *why = std::strerror(errno);
      return false;
    }
    struct stat s {};
    bool ok = write_all(fd, hdr.data(), hdr.size()) && write_all(fd, job.payload->data(), job.payload->size()) &&
              ::fsync(fd) == 0 && ::fstat(fd, &s) == 0;
    int err = errno;
    if (::close(fd) != 0 && ok) {
      ok = false;
      err = errno;
    }
    if (ok && ::rename(tmp.c_str(), page_path(job.key).c_str()) != 0) {
      ok = false;
      err = errno;
    }
    if (!ok) {
      ::unlink(tmp.c_str());
      *why = std::strerror(err);
      return false;
    }
    *ino = s.st_ino;
    return true;
  }

  void writer_loop() {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      work_cv.wait(lk, [&] { return stop || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and every queued write is done
      Job job = std::move(queue.front());
      queue.pop_front();
      queued_payload_bytes -= job.payload->size();
      busy = true;
      const uint64_t need = header_bytes_for(static_cast<uint32_t>(job.tokens.size())) + job.payload->size();
      if (!make_room_locked(need)) {
        ++st.dropped_writes;
        events.emplace_back(job.key, false);
      } else {
        lk.unlock();
        const auto t0 = std::chrono::steady_clock::now();
        uint64_t file_bytes = 0;
        ino_t ino = 0;
        std::string why;
        const bool ok = write_file(job, &file_bytes, &ino, &why);
        const double secs = seconds_since(t0);
        lk.lock();
        if (ok) {
          Entry e;
          e.file_bytes = file_bytes;
          e.payload_bytes = job.payload->size();
          e.header_bytes = static_cast<uint32_t>(file_bytes - e.payload_bytes);
          e.ino = ino;
          e.lru = lru.insert(lru.end(), job.key);
          index.emplace(job.key, e);
          bytes += file_bytes;
          ++st.writes;
          st.write_bytes += file_bytes;
          st.write_seconds += secs;
          events.emplace_back(job.key, true);
        } else {
          ++st.write_errors;
          events.emplace_back(job.key, false);
          degrade_locked(why);
        }
      }
      pending.erase(job.key);
      busy = false;
      if (queue.empty()) idle_cv.notify_all();
    }
  }
};

DiskTier::DiskTier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<DiskTier> DiskTier::open(const DiskTierConfig& cfg) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->root_dir = (fs::path(cfg.dir) / cfg.root.hex()).string();
  {
    std::lock_guard<std::mutex> lk(impl->mu);
    impl->scan();
  }
  Impl* p = impl.get();
  impl->writer = std::thread([p] { p->writer_loop(); });
  return std::unique_ptr<DiskTier>(new DiskTier(std::move(impl)));
}

DiskTier::~DiskTier() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  if (impl_->writer.joinable()) impl_->writer.join();
}

bool DiskTier::writable() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->writable;
}

bool DiskTier::contains(const Key128& key) const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->index.count(key) != 0;
}

void DiskTier::write_async(const Key128& key, const Key128& parent, const int32_t* tokens, int n_tokens,
                           std::shared_ptr<const std::vector<uint8_t>> payload) {
  Impl& m = *impl_;
  if (!payload || n_tokens < 0) return;
  std::lock_guard<std::mutex> lk(m.mu);
  if (m.index.count(key) || m.pending.count(key)) return;
  if (!m.writable) {
    m.events.emplace_back(key, false);
    return;
  }
  const uint64_t size = payload->size();
  const uint64_t file_bytes = header_bytes_for(static_cast<uint32_t>(n_tokens)) + size;
  if (static_cast<uint32_t>(n_tokens) > kMaxTokens || (m.cfg.cap_bytes > 0 && file_bytes > m.cfg.cap_bytes) ||
      m.queued_payload_bytes + size > m.cfg.max_pending_bytes) {
    ++m.st.dropped_writes;
    m.events.emplace_back(key, false);
    return;
  }
  m.queue.push_back({key, parent, std::vector<int32_t>(tokens, tokens + n_tokens), std::move(payload)});
  m.pending.insert(key);
  m.queued_payload_bytes += size;
  m.work_cv.notify_one();
}

std::vector<std::pair<Key128, bool>> DiskTier::poll() {
  std::lock_guard<std::mutex> lk(impl_->mu);
  std::vector<std::pair<Key128, bool>> out;
  out.swap(impl_->events);
  return out;
}

bool DiskTier::read(const Key128& key, const Key128& parent, const int32_t* tokens, int n_tokens, uint8_t* out,
                    size_t n_bytes) {
  Impl& m = *impl_;
  int fd = -1;
  ino_t ino = 0;
  uint32_t header_bytes = 0;
  bool touch_mtime = false;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    auto it = m.index.find(key);
    if (it == m.index.end()) return false;
    Impl::Entry& e = it->second;
    // The key fixes the tokens and the root fixes the layout, so a size that differs from
    // the file's means the file is not the page asked for.
    if (n_tokens < 0 || static_cast<uint32_t>(n_tokens) > kMaxTokens || e.payload_bytes != n_bytes ||
        e.header_bytes != header_bytes_for(static_cast<uint32_t>(n_tokens))) {
      ++m.st.rejected;
      m.unindex_locked(it, /*event=*/true);
      return false;
    }
    fd = ::open(m.page_path(key).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {  // deleted behind our back
      m.unindex_locked(it, /*event=*/true, /*delete_file=*/false);
      return false;
    }
    ++e.readers;
    ino = e.ino;
    header_bytes = e.header_bytes;
    touch_mtime = m.writable;
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<uint8_t> hdr(header_bytes);
  struct stat s {};
  PageHeader h;
  bool ok = ::fstat(fd, &s) == 0 && s.st_ino == ino && static_cast<uint64_t>(s.st_size) == header_bytes + n_bytes &&
            pread_all(fd, hdr.data(), hdr.size(), 0) && decode_header(hdr.data(), hdr.size(), &h) &&
            h.root == m.cfg.root && h.key == key && h.parent == parent &&
            h.n_tokens == static_cast<uint32_t>(n_tokens) && h.payload_bytes == n_bytes;
  for (int i = 0; ok && i < n_tokens; ++i) {
    ok = get_u32(&hdr[kFixedHeaderBytes + 4 * static_cast<size_t>(i)]) == static_cast<uint32_t>(tokens[i]);
  }
  ok = ok && pread_all(fd, out, n_bytes, header_bytes) && XXH3_64bits(out, n_bytes) == h.payload_hash;
  const double secs = seconds_since(t0);
  // The restart's LRU order is by mtime, so a read refreshes it (best effort).
  if (ok && touch_mtime) ::futimens(fd, nullptr);

  std::lock_guard<std::mutex> lk(m.mu);
  ::close(fd);
  auto it = m.index.find(key);
  const bool same_file = it != m.index.end() && it->second.ino == ino;
  if (same_file) --it->second.readers;
  if (ok) {
    ++m.st.reads;
    m.st.read_bytes += n_bytes;
    m.st.read_seconds += secs;
    if (same_file) m.touch_locked(it->second);
    return true;
  }
  ++m.st.rejected;
  if (same_file) m.unindex_locked(it, /*event=*/true);
  return false;
}

void DiskTier::remove(const Key128& key) {
  std::lock_guard<std::mutex> lk(impl_->mu);
  auto it = impl_->index.find(key);
  if (it != impl_->index.end()) impl_->unindex_locked(it, /*event=*/false);
}

void DiskTier::flush() {
  std::unique_lock<std::mutex> lk(impl_->mu);
  impl_->idle_cv.wait(lk, [&] { return impl_->queue.empty() && !impl_->busy; });
}

DiskTierStats DiskTier::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  DiskTierStats s = impl_->st;
  s.files = impl_->index.size();
  s.bytes = impl_->bytes;
  s.writable = impl_->writable;
  return s;
}

const std::string& DiskTier::root_dir() const { return impl_->root_dir; }

}  // namespace tachyon::kv
