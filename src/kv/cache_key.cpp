#include "kv/cache_key.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace tachyon::kv {

namespace {

constexpr size_t kMaxFingerprintEntries = 64;

Key128 from_xxh(XXH128_hash_t h) { return {h.low64, h.high64}; }

void put_u32(std::string* b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b->push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string* b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b->push_back(static_cast<char>(v >> (8 * i)));
}
void put_key(std::string* b, const Key128& k) {
  put_u64(b, k.lo);
  put_u64(b, k.hi);
}

struct FingerprintEntry {
  Key128 key;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string path;  // absolute
};

template <class T>
bool parse_number(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "<hex> <size> <mtime_ns> <absolute path>"; the path is the rest of the line.
bool parse_line(std::string_view line, FingerprintEntry* e) {
  std::string_view f[3];
  for (auto& field : f) {
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return false;
    field = line.substr(0, sp);
    line.remove_prefix(sp + 1);
  }
  if (line.empty() || line[0] != '/') return false;
  if (!Key128::parse_hex(std::string(f[0]), &e->key)) return false;
  if (!parse_number(f[1], &e->size) || !parse_number(f[2], &e->mtime_ns)) return false;
  e->path = std::string(line);
  return true;
}

std::string format_entries(const std::vector<FingerprintEntry>& entries) {
  std::string s;
  for (const auto& e : entries) {
    s += e.key.hex() + ' ' + std::to_string(e.size) + ' ' + std::to_string(e.mtime_ns) + ' ' + e.path + '\n';
  }
  return s;
}

// Best effort: a cache that cannot be written only costs a rehash next time.
void write_atomically(const std::string& file, const std::string& text) {
  std::error_code ec;
  const auto parent = std::filesystem::path(file).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const std::string tmp = file + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  const bool ok = done == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) ::unlink(tmp.c_str());
}

Result<Key128> hash_fd(int fd, size_t size, const std::string& path) {
  if (size == 0) return from_xxh(XXH3_128bits(nullptr, 0));
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return Status(ErrorCode::kIo, path + ": mmap: " + std::strerror(errno));
  ::madvise(p, size, MADV_SEQUENTIAL);
  const Key128 k = from_xxh(XXH3_128bits(p, size));
  ::munmap(p, size);
  return k;
}

}  // namespace

std::string Key128::hex() const {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(hi),
                static_cast<unsigned long long>(lo));
  return std::string(buf, 32);
}

bool Key128::parse_hex(const std::string& s, Key128* out) {
  if (s.size() != 32) return false;
  uint64_t v[2] = {0, 0};
  for (size_t i = 0; i < 32; ++i) {
    const char c = s[i];
    uint64_t d;
    if (c >= '0' && c <= '9') d = static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<uint64_t>(c - 'a' + 10);
    else return false;
    v[i / 16] = (v[i / 16] << 4) | d;
  }
  out->hi = v[0];
  out->lo = v[1];
  return true;
}

Result<Key128> file_fingerprint(const std::string& path, const std::string& cache_file) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return Status(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo, path + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const std::string why = S_ISREG(st.st_mode) || st.st_mode == 0 ? std::strerror(errno) : "not a regular file";
    ::close(fd);
    return Status(ErrorCode::kIo, path + ": " + why);
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;

  std::string abs;
  std::vector<FingerprintEntry> entries;
  std::string old_text;
  bool use_cache = !cache_file.empty();
  if (use_cache) {
    std::error_code ec;
    auto canon = std::filesystem::canonical(path, ec);
    if (ec) canon = std::filesystem::absolute(path, ec).lexically_normal();
    abs = canon.string();
    use_cache = !ec && !abs.empty() && abs[0] == '/' && abs.find('\n') == std::string::npos;
  }
  if (use_cache) {
    std::ifstream in(cache_file, std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      old_text = ss.str();
    }
    std::istringstream lines(old_text);
    std::string line;
    while (std::getline(lines, line)) {
      FingerprintEntry e;
      if (parse_line(line, &e)) entries.push_back(std::move(e));
    }
  }

  Key128 key;
  bool hit = false;
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->path == abs && it->size == size && it->mtime_ns == mtime_ns) {
      key = it->key;
      hit = true;
      break;
    }
  }
  if (!hit) {
    auto r = hash_fd(fd, size, path);
    if (!r.is_ok()) {
      ::close(fd);
      return r.status();
    }
    key = r.value();
  }
  ::close(fd);

  if (use_cache) {
    // One entry per path, most recently used last; the oldest fall off.
    std::erase_if(entries, [&](const FingerprintEntry& e) { return e.path == abs; });
    entries.push_back({key, size, mtime_ns, abs});
    if (entries.size() > kMaxFingerprintEntries) {
      entries.erase(entries.begin(), entries.end() - kMaxFingerprintEntries);
    }
    const std::string text = format_entries(entries);
    if (text != old_text) write_atomically(cache_file, text);
  }
  return key;
}

Key128 root_key(const Key128& model, const std::string& description) {
  std::string b;
  b.reserve(4 + 16 + description.size());
  put_u32(&b, kKvFormatVersion);
  put_key(&b, model);
  b += description;
  return from_xxh(XXH3_128bits(b.data(), b.size()));
}

Key128 page_key(const Key128& parent, const int32_t* tokens, int n) {
  std::string b;
  b.reserve(16 + 4 * static_cast<size_t>(n > 0 ? n : 0));
  put_key(&b, parent);
  for (int i = 0; i < n; ++i) put_u32(&b, static_cast<uint32_t>(tokens[i]));
  return from_xxh(XXH3_128bits(b.data(), b.size()));
}

}  // namespace tachyon::kv
