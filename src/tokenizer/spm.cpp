// SentencePiece-style BPE over scores (llama.cpp's llm_tokenizer_spm): start from UTF-8
// characters, repeatedly merge the adjacent pair whose concatenation is the vocabulary
// token with the highest score (leftmost on ties), then emit each final symbol's id or
// its bytes as <0xNN> tokens.
//
// llama.cpp runs one priority queue over the whole text. Merges only ever build tokens, so
// two adjacent characters that never appear next to each other inside any token can never
// end up in one symbol: cutting the text there and merging the pieces independently gives
// the same result (each piece sees its own bigrams in the same relative order) with far
// smaller queues.
#include <algorithm>
#include <cstring>

#include "tokenizer/vocab.h"

namespace tachyon::tok::detail {

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t off;  // byte offset in the text
  uint32_t n;    // bytes; 0 once merged into its left neighbour
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // bytes of left+right when queued; a mismatch later means it is stale
};

struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// Splits text into llama.cpp's SPM symbols: UTF-8 sequences by their lead byte, cut short
// at the end. Returns {offset, length} pairs.
template <class Fn>
void for_each_symbol(std::string_view text, Fn&& fn) {
  for (size_t off = 0; off < text.size();) {
    const size_t len = std::min(utf8_len(static_cast<uint8_t>(text[off])), text.size() - off);
    fn(off, len);
    off += len;
  }
}

uint32_t pack_symbol(std::string_view s) {
  uint32_t p = 0;
  std::memcpy(&p, s.data(), std::min<size_t>(s.size(), 4));
  return p;
}

uint64_t pair_key(std::string_view a, std::string_view b) {
  return (static_cast<uint64_t>(pack_symbol(a)) << 32) | pack_symbol(b);
}

// Merges the symbols [begin, end) of `sym` (a chain) and appends the resulting ids.
void merge_segment(const Vocab& v, std::string_view text, std::vector<Symbol>& sym, int32_t begin, int32_t end,
                   std::vector<Bigram>* heap_storage, std::vector<int32_t>* out) {
  sym[end - 1].next = -1;
  sym[begin].prev = -1;
  std::vector<Bigram>& heap = *heap_storage;  // max-heap under BigramLess
  heap.clear();
  const auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const uint32_t n = sym[l].n + sym[r].n;
    if (n > v.max_token_len) return;
    const int32_t id = v.find(text.substr(sym[l].off, n));
    if (id < 0) return;
    heap.push_back({v.tokens[id].score, l, r, n});
    std::push_heap(heap.begin(), heap.end(), BigramLess{});
  };
  for (int32_t i = begin + 1; i < end; ++i) try_add(i - 1, i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BigramLess{});
    const Bigram b = heap.back();
    heap.pop_back();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  // Merged symbols are tokens by construction; a leftover character that is not a token
  // falls back to its bytes.
  for (int32_t i = begin; i != -1; i = sym[i].next) {
    const std::string_view s = text.substr(sym[i].off, sym[i].n);
    const int32_t id = v.find(s);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    for (char c : s) {
      const int32_t b = v.spm_byte_token(static_cast<uint8_t>(c));
      if (b >= 0) out->push_back(b);
    }
  }
}

}  // namespace

void spm_build_pair_filter(Vocab* v) {
  for (const TokenData& t : v->tokens) {
    std::string_view prev;
    for_each_symbol(t.text, [&](size_t off, size_t len) {
      const std::string_view cur = std::string_view(t.text).substr(off, len);
      if (!prev.empty()) v->spm_inner_pairs.insert(pair_key(prev, cur));
      prev = cur;
    });
  }
}

void spm_tokenize(const Vocab& v, std::string_view text, std::vector<int32_t>* out, bool segmented) {
  std::vector<Symbol> sym;  // [n_symbols]
  sym.reserve(text.size());
  for_each_symbol(text, [&](size_t off, size_t len) {
    const auto i = static_cast<int32_t>(sym.size());
    sym.push_back({i - 1, i + 1, static_cast<uint32_t>(off), static_cast<uint32_t>(len)});
  });
  if (sym.empty()) return;
  const auto n = static_cast<int32_t>(sym.size());
  std::vector<Bigram> heap_storage;
  int32_t begin = 0;
  for (int32_t i = 1; i < n; ++i) {
    if (!segmented) break;
    const std::string_view a = text.substr(sym[i - 1].off, sym[i - 1].n);
    const std::string_view b = text.substr(sym[i].off, sym[i].n);
    if (!v.spm_inner_pairs.contains(pair_key(a, b))) {
      merge_segment(v, text, sym, begin, i, &heap_storage, out);
      begin = i;
    }
  }
  merge_segment(v, text, sym, begin, n, &heap_storage, out);
}

}  // namespace tachyon::tok::detail
