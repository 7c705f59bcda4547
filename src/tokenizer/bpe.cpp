// Byte-level BPE (llama.cpp's llm_tokenizer_bpe): pre-tokenize into words, map each byte to
// its GPT-2 stand-in, then repeatedly apply the lowest-ranked merge among adjacent symbol
// pairs (leftmost on ties). Symbols carry token ids so that the common case (both sides
// are vocabulary tokens) needs no string work.
#include <queue>

#include "tokenizer/vocab.h"

namespace tachyon::tok::detail {

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t off;  // byte offset in the raw word
  uint32_t n;    // raw bytes; 0 once merged into its left neighbour
  int32_t id;    // token whose text is this symbol's byte-encoded text, -1 if none
};

struct Bigram {
  int32_t rank;
  int32_t left;
  int32_t right;
  uint32_t size;   // raw bytes of left+right when queued; a mismatch later means stale
  int32_t result;  // id of the merged text, -1 if it is not a token
};

struct BigramGreater {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

std::string byte_encode(std::string_view raw) {
  std::string s;
  s.reserve(raw.size() * 2);
  for (char c : raw) s += byte_to_unicode(static_cast<uint8_t>(c));
  return s;
}

class WordTokenizer {
 public:
  explicit WordTokenizer(const Vocab& v) : v_(v) {}

  void run(std::string_view w, std::vector<int32_t>* out) {
    if (v_.ignore_merges) {
      const int32_t id = v_.find(byte_encode(w));
      if (id >= 0) {
        out->push_back(id);
        return;
      }
    }
    sym_.clear();
    for (size_t i = 0; i < w.size(); ++i) {
      const auto k = static_cast<int32_t>(i);
      sym_.push_back({k - 1, i + 1 == w.size() ? -1 : k + 1, static_cast<uint32_t>(i), 1,
                      v_.byte_token[static_cast<uint8_t>(w[i])]});
    }
    for (int32_t i = 1; i < static_cast<int32_t>(sym_.size()); ++i) try_add(w, i - 1, i);
    while (!queue_.empty()) {
      const Bigram b = queue_.top();
      queue_.pop();
      Symbol& l = sym_[b.left];
      Symbol& r = sym_[b.right];
      if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
      l.n += r.n;
      l.id = b.result;
      r.n = 0;
      l.next = r.next;
      if (r.next >= 0) sym_[r.next].prev = b.left;
      try_add(w, l.prev, b.left);
      try_add(w, b.left, l.next);
    }
    for (int32_t i = 0; i != -1 && !sym_.empty(); i = sym_[i].next) {
      const Symbol& s = sym_[i];
      if (s.id >= 0) {
        out->push_back(s.id);
        continue;
      }
      // llama.cpp: look up each byte of the encoded text as a one-byte token
      for (char c : byte_encode(w.substr(s.off, s.n))) {
        const int32_t id = v_.find(std::string_view(&c, 1));
        if (id >= 0) out->push_back(id);
      }
    }
  }

 private:
  void try_add(std::string_view w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const Symbol& a = sym_[l];
    const Symbol& b = sym_[r];
    int32_t rank = -1, result = -1;
    if (a.id >= 0 && b.id >= 0) {
      const auto it = v_.merge_rank_by_ids.find((static_cast<uint64_t>(a.id) << 32) | static_cast<uint32_t>(b.id));
      if (it == v_.merge_rank_by_ids.end()) return;
      rank = it->second;
      result = v_.merge_result[rank];
    } else {
      if (v_.merge_rank_by_text.empty()) return;
      const std::string left = byte_encode(w.substr(a.off, a.n));
      const std::string right = byte_encode(w.substr(b.off, b.n));
      const auto it = v_.merge_rank_by_text.find(left + '\xFF' + right);
      if (it == v_.merge_rank_by_text.end()) return;
      rank = it->second;
      result = v_.find(left + right);
    }
    queue_.push({rank, l, r, a.n + b.n, result});
  }

  const Vocab& v_;
  std::vector<Symbol> sym_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramGreater> queue_;
};

constexpr size_t kMaxCachedWords = 1 << 16;

}  // namespace

void bpe_tokenize(const Vocab& v, std::string_view text, BpeWordCache* cache, std::vector<int32_t>* out) {
  WordTokenizer wt(v);
  std::vector<int32_t> ids;
  for (const std::string& w : pre_tokenize(*v.pre_tokenizer, text)) {
    if (w.empty()) continue;
    if (const auto it = cache->find(w); it != cache->end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      continue;
    }
    ids.clear();
    wt.run(w, &ids);
    out->insert(out->end(), ids.begin(), ids.end());
    if (cache->size() < kMaxCachedWords) cache->emplace(w, ids);
  }
}

}  // namespace tachyon::tok::detail
