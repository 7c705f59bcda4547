// Internal: the loaded vocabulary shared by the tokenizer algorithms (spm.cpp, bpe.cpp,
// wpm.cpp), the special-token splitter (encode.cpp) and the detokenizer (decode.cpp).
// Immutable after load_vocab().
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tachyon::tok::detail {

// llama.cpp's token attribute bits (llama_token_attr).
enum Attr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrNormalized = 1u << 6,
  kAttrLstrip = 1u << 7,
  kAttrRstrip = 1u << 8,
  kAttrSingleWord = 1u << 9,
};

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
  TokenType type = TokenType::kNormal;
};

// Pre-tokenizer families (llama.cpp's LLAMA_VOCAB_PRE_TYPE_*) this module implements.
enum class PreType {
  kDefault, kLlama3, kDeepseekLlm, kDeepseekCoder, kDeepseek3, kFalcon, kMpt, kStarcoder,
  kGpt2, kRefact, kCommandR, kStablelm2, kQwen2, kQwen35, kOlmo, kDbrx, kSmaug, kPoro,
  kChatglm4, kViking, kJais, kTekken, kSmollm, kCodeshell, kBloom, kGpt3Finnish, kExaone,
  kChameleon, kMinerva, kGpt4o, kSeedCoder, kBailingmoe, kTrillion, kGraniteDocling,
  kHunyuan, kGrok2, kSolarOpen, kMellum2, kMinicpm5,
};

// Hash/equality that let std::string-keyed maps be searched with a string_view. The hash
// equals std::hash<std::string>, so iteration order matches a plain
// std::unordered_map<std::string, int> built the same way (llama.cpp's token_to_id),
// which decides ties in llama.cpp's text-based special-token detection.
struct SvHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, SvHash, std::equal_to<>>;

// Open-addressing index text -> id: the hot lookup of every algorithm (a bigram is looked
// up for each merge step). Texts are kept in one blob so a probe touches little memory.
class TokenIndex {
 public:
  // Precondition: texts are distinct.
  void build(const std::vector<TokenData>& tokens);
  int32_t find(std::string_view s) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(s);
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (uint64_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (slot.tag == tag) {
        const uint32_t b = off_[slot.id], e = off_[slot.id + 1];
        if (e - b == s.size() && std::memcmp(blob_.data() + b, s.data(), s.size()) == 0) return slot.id;
      }
    }
  }
  static uint64_t hash(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    size_t n = s.size();
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 31;
      p += 8;
      n -= 8;
    }
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
  }

 private:
  struct Slot {
    uint32_t tag;
    int32_t id;  // -1: empty
  };
  std::vector<Slot> slots_;  // [power of two >= 2 * n_vocab]
  uint64_t mask_ = 0;
  std::string blob_;          // all texts back to back
  std::vector<uint32_t> off_;  // [n_vocab + 1] offsets into blob_
};

// Set of 64-bit keys (open addressing), for the SentencePiece symbol-pair filter.
class KeySet64 {
 public:
  void insert(uint64_t k);
  bool contains(uint64_t k) const {
    if (k == 0) return has_zero_;
    if (slots_.empty()) return false;
    for (uint64_t i = mix(k) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i] == k) return true;
      if (slots_[i] == 0) return false;
    }
  }
  size_t size() const { return n_ + has_zero_; }

 private:
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    return k ^ (k >> 33);
  }
  void grow();
  std::vector<uint64_t> slots_;  // 0: empty
  uint64_t mask_ = 0;
  size_t n_ = 0;
  bool has_zero_ = false;
};

// Byte trie over special-token texts, for finding which ones occur in a text.
struct SpecialTrie {
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // (byte, child node)
    int32_t token = -1;
  };
  std::vector<Node> nodes{1};
  int32_t root[256];  // child of the root per first byte, -1 if none
  SpecialTrie() { std::fill(std::begin(root), std::end(root), -1); }
  void insert(std::string_view text, int32_t id);
  // Calls fn(id) for every token whose text occurs at some position of `text`.
  template <class Fn>
  void for_each_occurrence(std::string_view text, Fn&& fn) const;
};

// The regexes of one pre-tokenizer family, applied in order (pretokenize.cpp).
struct PreTokenizer {
  std::vector<std::shared_ptr<const Regex>> regexes;
};

struct Vocab {
  VocabType type = VocabType::kSpm;
  PreType pre_type = PreType::kDefault;
  std::string model;  // tokenizer.ggml.model
  std::string pre;    // tokenizer.ggml.pre

  std::vector<TokenData> tokens;  // [n_vocab]
  TokenMap token_to_id;           // llama.cpp's map: only its iteration order is used
  TokenIndex index;               // lookups
  size_t max_token_len = 0;  // bytes

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, sep = -1, pad = -1, mask = -1;
  int32_t fim_pre = -1, fim_suf = -1, fim_mid = -1, fim_pad = -1, fim_rep = -1, fim_sep = -1;

  bool add_space_prefix = false;
  bool add_bos = false;
  bool add_eos = false;
  bool add_sep = false;
  bool ignore_merges = false;
  bool clean_spaces = false;  // clean_up_tokenization_spaces
  bool remove_extra_whitespaces = false;
  bool escape_whitespaces = true;
  bool wpm_lowercase = true;      // BERT normalizer
  bool wpm_strip_accents = true;  // BERT normalizer

  std::vector<int32_t> eog;            // ascending
  std::vector<int32_t> special_cache;  // control/user-defined/unknown ids, longest text first
  SpecialTrie special_trie;            // over special_cache texts
  std::vector<std::string> pieces;     // [n_vocab] token_to_piece(id, special=true)

  // Byte-level BPE merges. A merge whose two sides are both vocabulary tokens is keyed by
  // (left id << 32 | right id); others (rare) by "left\xFFright".
  std::unordered_map<uint64_t, int32_t> merge_rank_by_ids;
  std::unordered_map<std::string, int32_t> merge_rank_by_text;
  std::vector<int32_t> merge_result;  // [n_merges] id of left+right, -1 if not a token
  int32_t byte_token[256];            // BPE: id of the byte's GPT-2 stand-in; SPM: <0xNN>; -1 if none
  // SPM: every pair of adjacent symbols (UTF-8 sequences split as spm.cpp splits text) that
  // occurs inside some token, packed by spm_pair_key(). A text position whose pair is not
  // here can never be inside a merge, so the text is merged in independent segments.
  KeySet64 spm_inner_pairs;

  std::unique_ptr<PreTokenizer> pre_tokenizer;     // BPE only
  std::unique_ptr<CharClassifier> classifier;      // WPM only
  std::vector<std::string> warnings;

  Vocab();
  ~Vocab();

  int32_t find(std::string_view text) const { return index.find(text); }
  int32_t n_vocab() const { return static_cast<int32_t>(tokens.size()); }
  // SPM byte fallback (llama.cpp's byte_to_token): <0xNN>, else the 1-byte token, else unk.
  int32_t spm_byte_token(uint8_t b) const;
};

Result<std::unique_ptr<Vocab>> load_vocab(const gguf::File& f);

// Algorithms: append the ids of one raw text fragment (no special tokens inside) to *out.
// `segmented` = false disables the independent-segment shortcut (tests compare both).
void spm_tokenize(const Vocab& v, std::string_view text, std::vector<int32_t>* out, bool segmented = true);
void spm_build_pair_filter(Vocab* v);
// Words already tokenized during one encode() call (a word's ids depend only on the word).
using BpeWordCache = std::unordered_map<std::string, std::vector<int32_t>>;
void bpe_tokenize(const Vocab& v, std::string_view text, BpeWordCache* cache, std::vector<int32_t>* out);
void wpm_tokenize(const Vocab& v, std::string_view text, std::vector<int32_t>* out);

// pretokenize.cpp
Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(PreType t);
// Splits `text` into words with the pre-tokenizer's regexes, applied one after another
// (text between matches stays a word of its own), as llama.cpp's unicode_regex_split.
// Words are byte-exact UTF-8 of llama.cpp's code points (bad bytes -> U+FFFD), not yet
// byte-encoded.
std::vector<std::string> pre_tokenize(const PreTokenizer& p, std::string_view text);
// Maps a tokenizer.ggml.pre name to its family and applies that family's flag defaults
// (clean_spaces, ignore_merges, add_bos, ...), as llama.cpp's loader does.
Status resolve_pre_type(std::string_view name, Vocab* v);

template <class Fn>
void SpecialTrie::for_each_occurrence(std::string_view text, Fn&& fn) const {
  for (size_t i = 0; i < text.size(); ++i) {
    int32_t node = root[static_cast<uint8_t>(text[i])];
    if (node < 0) continue;
    if (nodes[node].token >= 0) fn(nodes[node].token);
    for (size_t j = i + 1; j < text.size(); ++j) {
      const uint8_t c = static_cast<uint8_t>(text[j]);
      int32_t child = -1;
      for (const auto& [b, n] : nodes[node].next) {
        if (b == c) {
          child = n;
          break;
        }
      }
      if (child < 0) break;
      node = child;
      if (nodes[node].token >= 0) fn(nodes[node].token);
    }
  }
}

}  // namespace tachyon::tok::detail
