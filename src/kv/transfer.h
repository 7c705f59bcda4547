// KV transfer: a prompt's KV pages as bytes, for prefill/decode disaggregation (a prefill
// worker computes a prompt's KV, a decode worker imports it into its prefix cache).
//
// Layout (little-endian):
//   [0, 8)   magic "TKVXFER\0"      [8, 12)  u32 format version (kKvFormatVersion)
//   [12, 16) u32 page size          [16, 20) u32 n_tokens   [20, 24) u32 n_pages
//   [24, 32) u64 XXH3-64 of bytes [0, 24) and the tokens
//   int32 tokens[n_tokens]           the prompt (n_pages * page size <= n_tokens)
//   n_pages page records             each exactly a page file of the disk tier (disk_tier.h):
//                                    header (root, parent and page key, the page's tokens,
//                                    checksums) + payload, pages 0, 1, ... of the prompt
// Trust: decode_transfer() accepts the bytes only when everything verifies against the
// receiver's own root key: the header checksum, each record's header checksum, root key
// (the same model file bytes, KV type and layout, page size, context and CPU kernel path:
// kv/cache_key.h), parent key = the previous page's key, page key = page_key(parent, the
// page's tokens) with those tokens equal to the prompt's, payload size = the receiver's
// page payload size, payload checksum. Anything else is an error naming the first failure.
// Costs: encode copies and hashes each payload once; decode hashes each once and copies it
// once (into its own buffer).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "kv/cache_key.h"

namespace tachyon::kv {

// Bytes of a transfer of n_pages pages of page_bytes each for a prompt of n_tokens.
size_t transfer_bytes(int n_tokens, int page_size, int n_pages, size_t page_bytes);

// Encodes tokens[0, n_tokens) and the KV of its first n_pages pages: read_page(i, out)
// writes page i's payload (page_bytes) to out.
std::string encode_transfer(const Key128& root, const int32_t* tokens, int n_tokens, int page_size, int n_pages,
                            size_t page_bytes, const std::function<void(int page, uint8_t* out)>& read_page);

struct TransferPages {
  std::vector<int32_t> tokens;  // the prompt
  int page_size = 0;
  // payloads[i]: page i's KV bytes (tokens [i * page_size, (i + 1) * page_size))
  std::vector<std::shared_ptr<const std::vector<uint8_t>>> payloads;
};

// Verifies and decodes (see the header comment). Errors: kCorrupt with the reason.
Result<TransferPages> decode_transfer(const uint8_t* data, size_t n, const Key128& root, int page_size,
                                      size_t page_bytes);

}  // namespace tachyon::kv
