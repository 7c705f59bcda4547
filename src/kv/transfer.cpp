#include "kv/transfer.h"

#include <xxhash.h>

#include <cstring>

#include "kv/disk_tier.h"
#include "kv/le_bytes.h"

namespace tachyon::kv {

namespace {

constexpr char kMagic[8] = {'T', 'K', 'V', 'X', 'F', 'E', 'R', '\0'};
constexpr size_t kFixed = 32;
constexpr size_t kTokensAt = 88;  // a page record's tokens (disk_tier.cpp's layout)

using le::get_u32;
using le::get_u64;
using le::put_u32;
using le::put_u64;

uint64_t head_hash(const uint8_t* fixed24, const uint8_t* tokens, size_t token_bytes) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, fixed24, 24);
  XXH3_64bits_update(st, tokens, token_bytes);
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

}  // namespace

size_t transfer_bytes(int n_tokens, int page_size, int n_pages, size_t page_bytes) {
  return kFixed + 4 * static_cast<size_t>(n_tokens) +
         static_cast<size_t>(n_pages) * (page_header_bytes(static_cast<uint32_t>(page_size)) + page_bytes);
}

std::string encode_transfer(const Key128& root, const int32_t* tokens, int n_tokens, int page_size, int n_pages,
                            size_t page_bytes, const std::function<void(int page, uint8_t* out)>& read_page) {
  std::string out(transfer_bytes(n_tokens, page_size, n_pages, page_bytes), '\0');
  auto* b = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(b, kMagic, 8);
  put_u32(b + 8, kKvFormatVersion);
  put_u32(b + 12, static_cast<uint32_t>(page_size));
  put_u32(b + 16, static_cast<uint32_t>(n_tokens));
  put_u32(b + 20, static_cast<uint32_t>(n_pages));
  uint8_t* tk = b + kFixed;
  for (int i = 0; i < n_tokens; ++i) put_u32(tk + 4 * i, static_cast<uint32_t>(tokens[i]));
  put_u64(b + 24, head_hash(b, tk, 4 * static_cast<size_t>(n_tokens)));
  uint8_t* at = tk + 4 * static_cast<size_t>(n_tokens);
  Key128 parent = root;
  for (int p = 0; p < n_pages; ++p) {
    const int32_t* t = tokens + static_cast<size_t>(p) * page_size;
    PageRecordHeader h;
    h.root = root;
    h.parent = parent;
    h.key = page_key(parent, t, page_size);
    h.n_tokens = static_cast<uint32_t>(page_size);
    h.payload_bytes = page_bytes;
    uint8_t* payload = at + page_header_bytes(h.n_tokens);
    read_page(p, payload);
    h.payload_hash = XXH3_64bits(payload, page_bytes);
    const std::vector<uint8_t> hdr = encode_page_header(h, t);
    std::memcpy(at, hdr.data(), hdr.size());
    at = payload + page_bytes;
    parent = h.key;
  }
  return out;
}

Result<TransferPages> decode_transfer(const uint8_t* data, size_t n, const Key128& root, int page_size,
                                      size_t page_bytes) {
  if (n < kFixed || std::memcmp(data, kMagic, 8) != 0) return corrupt("KV transfer: not a KV transfer (bad magic)");
  if (get_u32(data + 8) != kKvFormatVersion)
    return corrupt("KV transfer: format version " + std::to_string(get_u32(data + 8)) + ", this server reads " +
                   std::to_string(kKvFormatVersion));
  const uint32_t ps = get_u32(data + 12), n_tokens = get_u32(data + 16), n_pages = get_u32(data + 20);
  if (static_cast<int>(ps) != page_size)
    return corrupt("KV transfer: page size " + std::to_string(ps) + ", this server's is " + std::to_string(page_size) +
                   " (start both workers with the same --page-size)");
  if (n_tokens > (1u << 24) || static_cast<uint64_t>(n_pages) * ps > n_tokens)
    return corrupt("KV transfer: " + std::to_string(n_pages) + " pages for " + std::to_string(n_tokens) + " tokens");
  const size_t rec = page_header_bytes(ps) + page_bytes;
  if (n != transfer_bytes(static_cast<int>(n_tokens), page_size, static_cast<int>(n_pages), page_bytes))
    return corrupt("KV transfer: " + std::to_string(n) + " bytes, expected " +
                   std::to_string(transfer_bytes(static_cast<int>(n_tokens), page_size, static_cast<int>(n_pages),
                                                 page_bytes)) +
                   " (truncated, or pages of another size: same model, --kv-type and --ctx needed)");
  const uint8_t* tk = data + kFixed;
  if (head_hash(data, tk, 4 * size_t{n_tokens}) != get_u64(data + 24))
    return corrupt("KV transfer: header checksum mismatch");
  TransferPages out;
  out.page_size = page_size;
  out.tokens.resize(n_tokens);
  for (uint32_t i = 0; i < n_tokens; ++i) out.tokens[i] = static_cast<int32_t>(get_u32(tk + 4 * i));
  const uint8_t* at = tk + 4 * size_t{n_tokens};
  Key128 parent = root;
  for (uint32_t p = 0; p < n_pages; ++p, at += rec) {
    const std::string where = "KV transfer: page " + std::to_string(p) + ": ";
    PageRecordHeader h;
    if (!decode_page_header(at, rec, &h)) return corrupt(where + "bad record header");
    if (!(h.root == root))
      return corrupt(where + "made under another root key (another model file, KV type, context size, page size or "
                             "CPU kernel path)");
    if (h.n_tokens != ps || h.payload_bytes != page_bytes || h.header_bytes != page_header_bytes(ps))
      return corrupt(where + "record sizes differ from this server's pages");
    const int32_t* t = out.tokens.data() + static_cast<size_t>(p) * ps;
    for (uint32_t i = 0; i < ps; ++i)
      if (static_cast<int32_t>(get_u32(at + kTokensAt + 4 * i)) != t[i]) return corrupt(where + "tokens differ from the prompt's");
    if (!(h.parent == parent) || !(h.key == page_key(parent, t, static_cast<int>(ps))))
      return corrupt(where + "key chain broken");
    const uint8_t* payload = at + h.header_bytes;
    if (XXH3_64bits(payload, page_bytes) != h.payload_hash) return corrupt(where + "payload checksum mismatch");
    out.payloads.push_back(std::make_shared<const std::vector<uint8_t>>(payload, payload + page_bytes));
    parent = h.key;
  }
  return out;
}

}  // namespace tachyon::kv
