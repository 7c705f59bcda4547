// Loading a vocabulary from GGUF metadata, following llama.cpp's llama_vocab::impl::load
// step by step (defaults per model type, special ids, text-based EOG detection, token
// attribute fix-ups) so that every later decision matches it.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

#include "tokenizer/vocab.h"

namespace tachyon::tok::detail {

Vocab::Vocab() { std::fill(std::begin(byte_token), std::end(byte_token), -1); }
Vocab::~Vocab() = default;

int32_t Vocab::spm_byte_token(uint8_t b) const {
  if (byte_token[b] >= 0) return byte_token[b];
  return unk;  // llama.cpp throws here; a vocab without byte tokens degrades to <unk>
}

void TokenIndex::build(const std::vector<TokenData>& tokens) {
  off_.clear();
  blob_.clear();
  for (const TokenData& t : tokens) {
    off_.push_back(static_cast<uint32_t>(blob_.size()));
    blob_ += t.text;
  }
  off_.push_back(static_cast<uint32_t>(blob_.size()));
  size_t cap = 16;
  while (cap < tokens.size() * 2) cap *= 2;
  slots_.assign(cap, Slot{0, -1});
  mask_ = cap - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const uint64_t h = hash(tokens[id].text);
    uint64_t i = h & mask_;
    while (slots_[i].id >= 0) i = (i + 1) & mask_;
    slots_[i] = Slot{static_cast<uint32_t>(h >> 32), static_cast<int32_t>(id)};
  }
}

void KeySet64::grow() {
  std::vector<uint64_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
  mask_ = slots_.size() - 1;
  n_ = 0;
  for (uint64_t k : old) {
    if (k != 0) insert(k);
  }
}

void KeySet64::insert(uint64_t k) {
  if (k == 0) {
    has_zero_ = true;
    return;
  }
  if ((n_ + 1) * 2 > slots_.size()) grow();
  uint64_t i = mix(k) & mask_;
  while (slots_[i] != 0) {
    if (slots_[i] == k) return;
    i = (i + 1) & mask_;
  }
  slots_[i] = k;
  ++n_;
}

void SpecialTrie::insert(std::string_view text, int32_t id) {
  if (text.empty()) return;
  int32_t node = root[static_cast<uint8_t>(text[0])];
  if (node < 0) {
    node = static_cast<int32_t>(nodes.size());
    nodes.emplace_back();
    root[static_cast<uint8_t>(text[0])] = node;
  }
  for (size_t i = 1; i < text.size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    int32_t child = -1;
    for (const auto& [b, n] : nodes[node].next) {
      if (b == c) {
        child = n;
        break;
      }
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes.size());
      nodes[node].next.emplace_back(c, child);
      nodes.emplace_back();
    }
    node = child;
  }
  if (nodes[node].token < 0) nodes[node].token = id;
}

namespace {

constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyScores = "tokenizer.ggml.scores";
constexpr std::string_view kKeyTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kKeyMerges = "tokenizer.ggml.merges";

Status key_error(ErrorCode code, std::string_view key, const std::string& what) {
  return Status(code, std::string(key) + ": " + what);
}

// Reads an optional bool key; a present key of another type is an error.
Status read_bool(const gguf::File& f, std::string_view key, bool* out) {
  if (!f.find(key)) return Status::ok();
  auto v = f.get_bool(key);
  if (!v) return key_error(ErrorCode::kCorrupt, key, "expected a bool");
  *out = *v;
  return Status::ok();
}

bool is_numeric(gguf::ValueType t) {
  using VT = gguf::ValueType;
  return t != VT::STRING && t != VT::ARRAY && t != VT::BOOL;
}

// Piece of a byte token "<0xNN>" (llama.cpp parses the two hex digits with strtol).
uint8_t byte_of_token_text(const std::string& text) {
  unsigned v = 0;
  for (size_t i = 3; i < 5 && i < text.size(); ++i) {
    const char c = text[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else break;
    v = v * 16 + d;
  }
  return static_cast<uint8_t>(v);
}

void replace_all(std::string* s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s->size());
  size_t pos = 0;
  while (true) {
    const size_t hit = s->find(from, pos);
    if (hit == std::string::npos) break;
    out.append(*s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(*s, pos, std::string::npos);
  *s = std::move(out);
}

// llama.cpp's token_to_piece(special=true) without the cache.
std::string piece_of(const Vocab& v, int32_t id) {
  const TokenData& t = v.tokens[id];
  if (t.attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) return t.text;
  if (t.attr & kAttrNormal) {
    std::string r = t.text;
    if (v.type != VocabType::kBpe || v.escape_whitespaces) {
      replace_all(&r, "\xE2\x96\x81", " ");
      return r;
    }
    // byte-level BPE: map every code point back to its byte
    std::string out;
    size_t off = 0;
    while (off < t.text.size()) {
      const uint32_t cpt = utf8_next(t.text, &off);
      const int b = unicode_to_byte(cpt);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
      } else {
        std::string utf8;
        append_utf8(&utf8, cpt);
        out += "[UNK_BYTE_0x";
        for (unsigned char c : utf8) {
          static const char* hex = "0123456789abcdef";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        }
        out += t.text + "]";
      }
    }
    return out;
  }
  if (t.attr & kAttrByte) return std::string(1, static_cast<char>(byte_of_token_text(t.text)));
  return "";
}

uint32_t attr_of_type(int64_t type) {
  switch (type) {
    case 1: return kAttrNormal;
    case 2: return kAttrUnknown;
    case 3: return kAttrControl;
    case 4: return kAttrUserDefined;
    case 5: return kAttrUnused;
    case 6: return kAttrByte;
    default: return kAttrUndefined;
  }
}

Status load_tokens(const gguf::File& f, Vocab* v) {
  const gguf::Value* toks = f.get_array(kKeyTokens);
  if (!toks) {
    return f.find(kKeyTokens) ? key_error(ErrorCode::kCorrupt, kKeyTokens, "expected an array of strings")
                              : key_error(ErrorCode::kNotFound, kKeyTokens, "missing (no vocabulary in this file)");
  }
  if (toks->arr_type != gguf::ValueType::STRING) return key_error(ErrorCode::kCorrupt, kKeyTokens, "expected an array of strings");
  const uint64_t n = toks->arr_strings.size();
  if (n == 0) return key_error(ErrorCode::kCorrupt, kKeyTokens, "empty vocabulary");
  if (n > static_cast<uint64_t>(INT32_MAX)) return key_error(ErrorCode::kCorrupt, kKeyTokens, "too many tokens");

  const gguf::Value* scores = f.get_array(kKeyScores);
  if (f.find(kKeyScores)) {
    if (!scores || !is_numeric(scores->arr_type)) return key_error(ErrorCode::kCorrupt, kKeyScores, "expected a numeric array");
    if (scores->arr_count < n) {
      return key_error(ErrorCode::kCorrupt, kKeyScores,
                       std::to_string(scores->arr_count) + " scores for " + std::to_string(n) + " tokens");
    }
  }
  const gguf::Value* types = f.get_array(kKeyTypes);
  if (f.find(kKeyTypes)) {
    using VT = gguf::ValueType;
    if (!types || !is_numeric(types->arr_type) || types->arr_type == VT::FLOAT32 || types->arr_type == VT::FLOAT64) {
      return key_error(ErrorCode::kCorrupt, kKeyTypes, "expected an integer array");
    }
    if (types->arr_count < n) {
      return key_error(ErrorCode::kCorrupt, kKeyTypes,
                       std::to_string(types->arr_count) + " token types for " + std::to_string(n) + " tokens");
    }
  }

  v->tokens.resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    TokenData& t = v->tokens[i];
    t.text = std::string(toks->arr_strings[i]);
    if (t.text.empty()) {
      v->warnings.push_back("empty token at index " + std::to_string(i));
      t.text = "[EMPTY_" + std::to_string(i) + "]";
    }
    // operator[] and no reserve(): the same bucket layout as llama.cpp's token_to_id
    auto [it, inserted] = v->token_to_id.try_emplace(t.text, static_cast<int32_t>(i));
    if (!inserted) {
      return key_error(ErrorCode::kCorrupt, kKeyTokens,
                       "duplicate token text '" + t.text + "' at ids " + std::to_string(it->second) + " and " +
                           std::to_string(i));
    }
    v->max_token_len = std::max(v->max_token_len, t.text.size());
    t.score = scores ? scores->arr_at<float>(i) : 0.0f;
    if (types) {
      const int64_t ty = types->arr_at<int64_t>(i);
      t.type = (ty >= 0 && ty <= 6) ? static_cast<TokenType>(ty) : TokenType::kUndefined;
      t.attr = attr_of_type(ty);
    } else {
      t.type = TokenType::kNormal;
      t.attr = kAttrNormal;
    }
  }
  return Status::ok();
}

Status load_merges(const gguf::File& f, Vocab* v) {
  const gguf::Value* merges = f.get_array(kKeyMerges);
  if (!merges) {
    return f.find(kKeyMerges) ? key_error(ErrorCode::kCorrupt, kKeyMerges, "expected an array of strings")
                              : key_error(ErrorCode::kNotFound, kKeyMerges, "missing (required by the gpt2 tokenizer)");
  }
  if (merges->arr_type != gguf::ValueType::STRING) return key_error(ErrorCode::kCorrupt, kKeyMerges, "expected an array of strings");
  const size_t n = merges->arr_strings.size();
  v->merge_result.assign(n, -1);
  for (size_t i = 0; i < n; ++i) {
    const std::string_view m = merges->arr_strings[i];
    const size_t pos = m.find(' ', 1);
    if (pos == std::string_view::npos) continue;  // llama.cpp keys it ("", "") and never matches it
    const std::string_view left = m.substr(0, pos), right = m.substr(pos + 1);
    const int32_t l = v->find(left), r = v->find(right);
    const auto rank = static_cast<int32_t>(i);
    if (l >= 0 && r >= 0) {
      v->merge_rank_by_ids.emplace((static_cast<uint64_t>(l) << 32) | static_cast<uint32_t>(r), rank);
    } else {
      std::string key(left);
      key.push_back('\xFF');
      key.append(right);
      v->merge_rank_by_text.emplace(std::move(key), rank);
    }
    std::string joined(left);
    joined.append(right);
    v->merge_result[i] = v->find(joined);
  }
  return Status::ok();
}

// Special ids from metadata; invalid values keep the default (llama.cpp warns the same way).
Status load_special_ids(const gguf::File& f, Vocab* v) {
  const std::pair<std::string_view, int32_t*> keys[] = {
      {"tokenizer.ggml.bos_token_id", &v->bos},         {"tokenizer.ggml.eos_token_id", &v->eos},
      {"tokenizer.ggml.eot_token_id", &v->eot},         {"tokenizer.ggml.eom_token_id", &v->eom},
      {"tokenizer.ggml.unknown_token_id", &v->unk},     {"tokenizer.ggml.seperator_token_id", &v->sep},
      {"tokenizer.ggml.padding_token_id", &v->pad},     {"tokenizer.ggml.mask_token_id", &v->mask},
      {"tokenizer.ggml.fim_pre_token_id", &v->fim_pre}, {"tokenizer.ggml.fim_suf_token_id", &v->fim_suf},
      {"tokenizer.ggml.fim_mid_token_id", &v->fim_mid}, {"tokenizer.ggml.fim_pad_token_id", &v->fim_pad},
      {"tokenizer.ggml.fim_rep_token_id", &v->fim_rep}, {"tokenizer.ggml.fim_sep_token_id", &v->fim_sep},
      {"tokenizer.ggml.prefix_token_id", &v->fim_pre},  {"tokenizer.ggml.suffix_token_id", &v->fim_suf},
      {"tokenizer.ggml.middle_token_id", &v->fim_mid},
  };
  for (const auto& [key, id] : keys) {
    const gguf::Value* val = f.find(key);
    if (!val) continue;
    if (!val->is_int()) return key_error(ErrorCode::kCorrupt, key, "expected an integer");
    const std::optional<int64_t> x = f.get_int(key);
    if (!x || *x < 0 || *x >= v->n_vocab()) {
      v->warnings.push_back(std::string(key) + " = " + (x ? std::to_string(*x) : std::string("?")) +
                            " is outside the vocabulary (" + std::to_string(v->n_vocab()) +
                            " tokens); using the default " + std::to_string(*id));
      continue;
    }
    *id = static_cast<int32_t>(*x);
  }
  // defaults (e.g. BERT's 101) may not exist in a small vocabulary
  for (int32_t* id : {&v->bos, &v->eos, &v->eot, &v->eom, &v->unk, &v->sep, &v->pad, &v->mask}) {
    if (*id >= v->n_vocab()) *id = -1;
  }
  return Status::ok();
}

void force_control(Vocab* v, int32_t id, std::string_view text) {
  uint32_t& attr = v->tokens[id].attr;
  if ((attr & kAttrControl) == 0) {
    v->warnings.push_back("control-looking token " + std::to_string(id) + " '" + std::string(text) +
                          "' was not control-type; treating it as control");
    attr |= kAttrControl;
  }
}

template <size_t N>
bool one_of(std::string_view s, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

// llama.cpp finds EOT/EOM/FIM and end-of-generation tokens by their text; the first hit in
// token_to_id's iteration order wins.
void detect_special_by_text(Vocab* v) {
  static const std::string_view kEot[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                          "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
                                          "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
                                          "<end_of_utterance>"};
  static const std::string_view kEom[] = {"<|eom_id|>"};
  static const std::string_view kFimPre[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                             "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "<PRE>",
                                             "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
  static const std::string_view kFimSuf[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                             "<\xEF\xBD\x9C" "fim\xE2\x96\x81hole\xEF\xBD\x9C>", "<SUF>",
                                             "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
  static const std::string_view kFimMid[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                             "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "<MID>",
                                             "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
  static const std::string_view kFimPad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
  static const std::string_view kFimRep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"};
  static const std::string_view kFimSep[] = {"<|file_sep|>"};
  static const std::string_view kEog[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                                          "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>",
                                          "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
                                          "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                                          "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"};

  struct Slot {
    int32_t* id;
    const std::string_view* begin;
    const std::string_view* end;
  };
  const Slot slots[] = {
      {&v->eot, std::begin(kEot), std::end(kEot)},          {&v->eom, std::begin(kEom), std::end(kEom)},
      {&v->fim_pre, std::begin(kFimPre), std::end(kFimPre)}, {&v->fim_suf, std::begin(kFimSuf), std::end(kFimSuf)},
      {&v->fim_mid, std::begin(kFimMid), std::end(kFimMid)}, {&v->fim_pad, std::begin(kFimPad), std::end(kFimPad)},
      {&v->fim_rep, std::begin(kFimRep), std::end(kFimRep)}, {&v->fim_sep, std::begin(kFimSep), std::end(kFimSep)},
  };
  for (const auto& [text, id] : v->token_to_id) {
    for (const Slot& s : slots) {
      if (*s.id < 0 && std::find(s.begin, s.end, text) != s.end) {
        *s.id = id;
        force_control(v, id, text);
      }
    }
  }

  // control tokens named "unused..." are unused
  for (const auto& [text, id] : v->token_to_id) {
    uint32_t& attr = v->tokens[id].attr;
    if ((attr & kAttrControl) && text.find("unused") != std::string::npos) attr |= kAttrUnused;
  }

  std::set<int32_t> eog;
  for (int32_t id : {v->fim_pad, v->fim_rep, v->fim_sep}) {
    if (id >= 0) eog.insert(id);
  }
  for (const auto& [text, id] : v->token_to_id) {
    if (one_of(text, kEog)) {
      eog.insert(id);
      force_control(v, id, text);
    }
  }
  // gpt-oss: these are always rendered
  for (const auto& [text, id] : v->token_to_id) {
    if (text == "<|channel|>" || text == "<|message|>" || text == "<|start|>" || text == "<|constrain|>") {
      v->tokens[id].attr = kAttrUserDefined;
    }
  }
  for (int32_t id : {v->eos, v->eot, v->eom}) {
    if (id >= 0) eog.insert(id);
  }
  // o200k_harmony / solar-open: "<|end|>" is not end-of-generation next to these
  {
    bool has_return = false, has_call = false, has_flush = false;
    int32_t end_id = -1;
    for (int32_t id : eog) {
      const std::string& t = v->tokens[id].text;
      if (t == "<|return|>") has_return = true;
      else if (t == "<|call|>" || t == "<|calls|>") has_call = true;
      else if (t == "<|flush|>") has_flush = true;
      else if (t == "<|end|>") end_id = id;
    }
    if (end_id >= 0 && ((has_return && has_call) || (has_call && has_flush))) {
      eog.erase(end_id);
      v->tokens[end_id].attr = kAttrUserDefined;
    }
  }
  // gemma4 / paddleocr: "</s>" is not end-of-generation next to "<|tool_response>"
  {
    bool has_tool_response = false;
    int32_t s_id = -1;
    for (int32_t id : eog) {
      const std::string& t = v->tokens[id].text;
      if (t == "<|tool_response>") has_tool_response = true;
      else if (t == "</s>") s_id = id;
    }
    if (has_tool_response && s_id >= 0) {
      eog.erase(s_id);
      v->tokens[s_id].attr = kAttrNormal;
    }
  }
  v->eog.assign(eog.begin(), eog.end());
}

std::string lower_ascii(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Per-model attribute fix-ups llama.cpp applies after building its caches.
void apply_model_attrs(const gguf::File& f, Vocab* v) {
  const std::string name = lower_ascii(f.get_string("general.name").value_or(""));
  const std::string arch(f.get_string("general.architecture").value_or(""));
  const auto contains_any = [](const std::string& s, std::initializer_list<std::string_view> subs) {
    for (auto sub : subs) {
      if (s.find(sub) != std::string::npos) return true;
    }
    return false;
  };
  const auto set_attr = [&](std::string_view text, uint32_t bit, bool on) {
    const int32_t id = v->find(text);
    if (id < 0) return;
    uint32_t& a = v->tokens[id].attr;
    a = on ? (a | bit) : (a & ~bit);
  };
  if (contains_any(v->pre, {"jina-v2-de", "jina-v2-es", "jina-v2-code"}) ||
      contains_any(arch, {"nomic-bert-moe", "jina-bert-v3"})) {
    set_attr("<mask>", kAttrLstrip, true);
  } else if (contains_any(name, {"phi-3", "phi3"})) {
    for (int32_t id : v->special_cache) v->tokens[id].attr |= kAttrRstrip;
    set_attr("</s>", kAttrRstrip, true);
    for (auto t : {"<unk>", "<s>", "<|endoftext|>"}) set_attr(t, kAttrRstrip, false);
  } else if (contains_any(name, {"modern-bert"})) {
    set_attr("[MASK]", kAttrLstrip, true);
  }
}

}  // namespace

Result<std::unique_ptr<Vocab>> load_vocab(const gguf::File& f) {
  auto v = std::make_unique<Vocab>();

  if (!f.find(kKeyModel)) return key_error(ErrorCode::kNotFound, kKeyModel, "missing (no tokenizer in this file)");
  const auto model = f.get_string(kKeyModel);
  if (!model) return key_error(ErrorCode::kCorrupt, kKeyModel, "expected a string");
  v->model = std::string(*model);
  if (f.find("tokenizer.ggml.pre")) {
    const auto pre = f.get_string("tokenizer.ggml.pre");
    if (!pre) return key_error(ErrorCode::kCorrupt, "tokenizer.ggml.pre", "expected a string");
    v->pre = std::string(*pre);
  }

  if (v->model == "llama") {
    v->type = VocabType::kSpm;
    v->bos = 1, v->eos = 2, v->unk = 0;
  } else if (v->model == "bert") {
    v->type = VocabType::kWpm;
    v->bos = 101, v->unk = 100, v->sep = 102, v->pad = 0, v->mask = 103;
    v->add_sep = true;
  } else if (v->model == "gpt2") {
    v->type = VocabType::kBpe;
    v->bos = 11, v->eos = 11;
  } else {
    return key_error(ErrorCode::kUnsupported, kKeyModel,
                     "tokenizer '" + v->model + "' is not supported (supported: llama, gpt2, bert)");
  }

  TACHYON_RETURN_IF_ERROR(load_tokens(f, v.get()));
  if (v->tokens.size() > UINT32_MAX / 2) return key_error(ErrorCode::kCorrupt, kKeyTokens, "too many tokens");
  v->index.build(v->tokens);

  switch (v->type) {
    case VocabType::kBpe:
      v->add_space_prefix = false;
      v->escape_whitespaces = false;
      v->clean_spaces = true;
      if (v->pre.empty()) {
        v->warnings.push_back("tokenizer.ggml.pre is missing; using the 'default' pre-tokenizer");
        v->pre = "default";
      }
      TACHYON_RETURN_IF_ERROR(resolve_pre_type(v->pre, v.get()));
      TACHYON_RETURN_IF_ERROR(load_merges(f, v.get()));
      break;
    case VocabType::kSpm:
      v->pre_type = PreType::kDefault;
      v->add_space_prefix = true;
      v->clean_spaces = false;
      v->add_bos = true;
      v->add_eos = false;
      break;
    case VocabType::kWpm:
      v->pre_type = PreType::kDefault;
      v->add_space_prefix = false;
      v->clean_spaces = true;
      v->add_bos = true;
      v->add_eos = false;
      v->add_sep = true;
      break;
  }
  TACHYON_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix));
  TACHYON_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.remove_extra_whitespaces", &v->remove_extra_whitespaces));

  TACHYON_RETURN_IF_ERROR(load_special_ids(f, v.get()));
  TACHYON_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.add_bos_token", &v->add_bos));
  TACHYON_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.add_eos_token", &v->add_eos));
  TACHYON_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.add_sep_token", &v->add_sep));
  if (v->add_bos && v->bos < 0) {
    return key_error(ErrorCode::kCorrupt, "tokenizer.ggml.add_bos_token", "BOS is requested but the vocab has no BOS token");
  }
  if (v->add_eos && v->eos < 0) {
    return key_error(ErrorCode::kCorrupt, "tokenizer.ggml.add_eos_token", "EOS is requested but the vocab has no EOS token");
  }
  TACHYON_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.normalizer.lowercase", &v->wpm_lowercase));
  v->wpm_strip_accents = v->wpm_lowercase;
  TACHYON_RETURN_IF_ERROR(read_bool(f, "tokenizer.ggml.normalizer.strip_accents", &v->wpm_strip_accents));

  detect_special_by_text(v.get());

  for (int32_t id = 0; id < v->n_vocab(); ++id) {
    if (v->tokens[id].attr & (kAttrControl | kAttrUserDefined | kAttrUnknown)) v->special_cache.push_back(id);
  }
  // std::sort (not stable) on the same input as llama.cpp, so ties fall the same way
  std::sort(v->special_cache.begin(), v->special_cache.end(), [&](int32_t a, int32_t b) {
    return v->tokens[a].text.size() > v->tokens[b].text.size();
  });
  for (int32_t id : v->special_cache) v->special_trie.insert(v->tokens[id].text, id);

  v->pieces.resize(v->tokens.size());
  for (int32_t id = 0; id < v->n_vocab(); ++id) v->pieces[id] = piece_of(*v, id);

  apply_model_attrs(f, v.get());

  if (v->type == VocabType::kBpe) {
    for (int b = 0; b < 256; ++b) v->byte_token[b] = v->find(byte_to_unicode(static_cast<uint8_t>(b)));
    auto pre = make_pre_tokenizer(v->pre_type);
    if (!pre.is_ok()) return pre.status();
    v->pre_tokenizer = std::move(pre.value());
  } else if (v->type == VocabType::kSpm) {
    spm_build_pair_filter(v.get());
    for (int b = 0; b < 256; ++b) {
      char buf[7];
      static const char* hex = "0123456789ABCDEF";
      buf[0] = '<', buf[1] = '0', buf[2] = 'x', buf[3] = hex[b >> 4], buf[4] = hex[b & 15], buf[5] = '>';
      int32_t id = v->find(std::string_view(buf, 6));
      const char raw = static_cast<char>(b);
      if (id < 0) id = v->find(std::string_view(&raw, 1));
      v->byte_token[b] = id;
    }
  } else {
    auto cls = CharClassifier::create();
    if (!cls.is_ok()) return cls.status();
    v->classifier = std::move(cls.value());
  }
  return v;
}

}  // namespace tachyon::tok::detail
