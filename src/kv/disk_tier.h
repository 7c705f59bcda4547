// L3 of the KV cache: pages as files under a directory, with a size cap.
//
// Layout: DIR/<root key hex>/<page key hex>.kvp, one file per page. A file is a header
// (magic "TKVPAGE\0", format version, header size, root key, parent key, page key, token
// count, payload size, payload checksum XXH3-64, the page's tokens, then an XXH3-64 of all
// header bytes before it) followed by the payload (the page's KV bytes, opaque here).
// Writes go to DIR/<root>/<key>.tmp.<pid>.<n>, are fsynced, then renamed into place, so a
// process killed at any moment leaves either no file or a complete one (plus temp files,
// deleted at the next open unless their pid is a live process: another server sharing DIR).
// Byte layout: the comment at the top of disk_tier.cpp.
//
// Trust: a file is used only when its header parses, its root key is this tier's, its
// header checksum holds, its size is header + payload, and (at read) its key, parent key
// and tokens are the ones asked for and the payload checksum holds. Anything else is
// "rejected": counted, deleted (when writable), never returned.
//
// Threads: one background writer thread performs writes (and the deletions the cap
// requires); every public method may be called from the engine thread while it runs
// (internal mutex). read() is synchronous (the caller decides where it runs).
//
// Cap: the bytes of this root's files (complete ones, plus writes in flight) never exceed
// cap_bytes: before a write, least-recently-used files (by last read or write; at open,
// by mtime) are deleted; a page larger than the cap is not written. Files of other roots
// in DIR are neither read nor counted nor touched.
//
// Degrading: when DIR cannot be created, or a write fails (full disk, read-only file
// system, permissions), the tier logs one warning to stderr and stops writing
// (writable() = false); reads of files already indexed go on. Never throws.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "kv/cache_key.h"

namespace tachyon::kv {

// The page file's header (the byte layout is at the top of disk_tier.cpp). The same bytes
// (header + payload) are the page records of a KV transfer (kv/transfer.h).
struct PageRecordHeader {
  uint32_t header_bytes = 0;  // set by decode; encode derives it from n_tokens
  Key128 root, parent, key;
  uint32_t n_tokens = 0;
  uint64_t payload_bytes = 0, payload_hash = 0;  // payload_hash: XXH3-64 of the payload
};
// The header bytes for h and tokens[0, h.n_tokens) (ends with a checksum of the rest).
std::vector<uint8_t> encode_page_header(const PageRecordHeader& h, const int32_t* tokens);
// Decodes the header at p (n: bytes available, at least the header's); false when the
// magic, format version, sizes or header checksum do not hold. Tokens are read separately
// (little-endian int32 at offset 88).
bool decode_page_header(const uint8_t* p, size_t n, PageRecordHeader* h);
size_t page_header_bytes(uint32_t n_tokens);

struct DiskTierConfig {
  std::string dir;
  uint64_t cap_bytes = 0;  // 0 = no cap
  Key128 root;
  // Writes whose payloads wait in the queue beyond this many bytes are dropped (counted).
  uint64_t max_pending_bytes = 256ull << 20;
};

struct DiskTierStats {
  uint64_t files = 0, bytes = 0;           // this root's complete files now
  uint64_t reads = 0, read_bytes = 0;      // successful reads (payload bytes)
  uint64_t writes = 0, write_bytes = 0;    // completed writes (file bytes)
  uint64_t rejected = 0;                   // files found bad (at open or at read)
  uint64_t write_errors = 0, dropped_writes = 0, evicted_files = 0;
  double read_seconds = 0, write_seconds = 0;  // time inside reads / writes (for bandwidth)
  bool writable = false;
};

class DiskTier {
 public:
  // Creates DIR/<root hex> if needed, deletes leftover temp files there, and indexes the
  // page files by reading their headers (bad ones are rejected). Never fails: a directory
  // that cannot be created or listed gives an empty, non-writable tier (with a warning).
  static std::unique_ptr<DiskTier> open(const DiskTierConfig& cfg);
  ~DiskTier();  // finishes queued writes, then stops the writer
  DiskTier(const DiskTier&) = delete;
  DiskTier& operator=(const DiskTier&) = delete;

  bool writable() const;
  // Whether a complete file for `key` is indexed (O(1)). A write still in flight is not.
  bool contains(const Key128& key) const;
  // Queues a write of the page; the payload is shared, not copied. Completion is reported
  // by poll(). No-op without an event when the key is already on disk or queued. Not
  // written, with a (key, false) event, when the tier is not writable (so a caller that
  // checked writable() just before the writer thread degraded never waits forever), when
  // the queue is full or the file would exceed the cap (these two count dropped_writes).
  void write_async(const Key128& key, const Key128& parent, const int32_t* tokens, int n_tokens,
                   std::shared_ptr<const std::vector<uint8_t>> payload);
  // Events since the last poll, in order: (key, true) = a write completed and the file is
  // indexed; (key, false) = the file for key is gone (its write failed or was dropped, or
  // the cap or a rejection deleted it).
  std::vector<std::pair<Key128, bool>> poll();
  // Reads and verifies the page into out[0, n_bytes) (n_bytes must equal its payload
  // size). False when there is no such file or it is rejected (then it is deleted and a
  // (key, false) event follows). Marks the file recently used.
  bool read(const Key128& key, const Key128& parent, const int32_t* tokens, int n_tokens, uint8_t* out,
            size_t n_bytes);
  // Deletes the file for key, if any (no event). A queued or in-flight write of key is not
  // cancelled (its event follows as usual).
  void remove(const Key128& key);
  // Blocks until every queued write has completed (tests, shutdown).
  void flush();
  DiskTierStats stats() const;
  const std::string& root_dir() const;  // DIR/<root hex>

 private:
  struct Impl;
  explicit DiskTier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tachyon::kv
