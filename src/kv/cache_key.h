// Keys of cached KV that can never name the wrong KV.
//
// A root key identifies everything KV bytes depend on: the on-disk format version, the
// model file's bytes (its tensors, and with them the tokenizer, rope parameters and
// hyperparameters stored in the GGUF), and a description of the cache (KV dtype and
// layout, page size, attention numerics) that the engine writes as canonical text. A page's
// key chains its parent's: key(page i) = H(key(page i-1), tokens of page i), with
// key(page -1) = root, so a key names one exact token prefix under one exact root.
// Keys are 128-bit XXH3 (libxxhash): accidental collisions are out of reach, and files
// additionally carry their tokens and parent key, which readers compare.
#pragma once
#include <cstdint>
#include <string>

#include "base/status.h"

namespace tachyon::kv {

struct Key128 {
  uint64_t lo = 0, hi = 0;
  bool operator==(const Key128&) const = default;
  // 32 lowercase hex digits (hi then lo); parse_hex inverts it (false on anything else).
  std::string hex() const;
  static bool parse_hex(const std::string& s, Key128* out);
};

struct Key128Hash {
  size_t operator()(const Key128& k) const { return static_cast<size_t>(k.lo ^ (k.hi * 0x9E3779B97F4A7C15ull)); }
};

// Bumped whenever the page payload layout or the file format changes.
constexpr uint32_t kKvFormatVersion = 1;

// XXH3-128 of a file's bytes, read through mmap. With a non-empty `cache_file`, the result
// is remembered there under (absolute path, size, mtime in ns) and reused while all three
// match, so a restart does not rehash a multi-GB model (the cache file is a small text
// file, rewritten atomically; an unreadable or malformed one is ignored and rewritten).
// Errors: the file cannot be opened or read.
Result<Key128> file_fingerprint(const std::string& path, const std::string& cache_file = "");

// H(kKvFormatVersion, model fingerprint, description).
Key128 root_key(const Key128& model, const std::string& description);

// H(parent, tokens[0, n)).
Key128 page_key(const Key128& parent, const int32_t* tokens, int n);

}  // namespace tachyon::kv
