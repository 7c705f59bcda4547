// Tokenizer: construction, accessors and encode() — special-token partitioning followed by
// the vocabulary's algorithm on each text fragment (llama.cpp's llama_vocab::impl::tokenize).
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "tokenizer/vocab.h"

namespace tachyon::tok {

using detail::Vocab;

Tokenizer::Tokenizer(std::unique_ptr<Vocab> v) : v_(std::move(v)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const gguf::File& f) {
  auto v = detail::load_vocab(f);
  if (!v.is_ok()) {
    const Status& st = v.status();
    return Status(st.code(), f.path() + ": " + st.message());
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(v.value())));
}

int32_t Tokenizer::n_vocab() const { return v_->n_vocab(); }
VocabType Tokenizer::type() const { return v_->type; }
const std::string& Tokenizer::model_name() const { return v_->model; }
const std::string& Tokenizer::pre_name() const { return v_->pre; }
int32_t Tokenizer::bos_id() const { return v_->bos; }
int32_t Tokenizer::eos_id() const { return v_->eos; }
int32_t Tokenizer::eot_id() const { return v_->eot; }
int32_t Tokenizer::eom_id() const { return v_->eom; }
int32_t Tokenizer::unk_id() const { return v_->unk; }
int32_t Tokenizer::sep_id() const { return v_->sep; }
int32_t Tokenizer::pad_id() const { return v_->pad; }
int32_t Tokenizer::mask_id() const { return v_->mask; }
bool Tokenizer::is_eog(int32_t id) const { return std::binary_search(v_->eog.begin(), v_->eog.end(), id); }
const std::vector<int32_t>& Tokenizer::eog_ids() const { return v_->eog; }
bool Tokenizer::add_bos() const { return v_->add_bos; }
bool Tokenizer::add_eos() const { return v_->add_eos; }
bool Tokenizer::add_space_prefix() const { return v_->add_space_prefix; }
bool Tokenizer::clean_up_spaces() const { return v_->clean_spaces; }
const std::string& Tokenizer::token_text(int32_t id) const { return v_->tokens.at(id).text; }
float Tokenizer::token_score(int32_t id) const { return v_->tokens.at(id).score; }
TokenType Tokenizer::token_type(int32_t id) const { return v_->tokens.at(id).type; }
bool Tokenizer::is_control(int32_t id) const {
  return valid_id(id) && (v_->tokens[id].attr & (detail::kAttrControl | detail::kAttrUnknown));
}
int32_t Tokenizer::find_token(std::string_view text) const { return v_->find(text); }
const std::vector<std::string>& Tokenizer::warnings() const { return v_->warnings; }

namespace {

// A run of raw text [off, off+len) or one special token.
struct Fragment {
  int32_t token;  // -1 for text
  size_t off;
  size_t len;
};

bool c_isspace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// llama.cpp's tokenizer_st_partition: for each special token, longest text first, split
// every text fragment at each occurrence. Control/unknown tokens only take part when
// parse_special; user-defined ones always do. Only tokens that occur somewhere in the text
// are tried (found with one trie pass), which changes nothing but the cost.
std::vector<Fragment> partition(const Vocab& v, std::string_view text, bool parse_special) {
  std::vector<Fragment> frags{{-1, 0, text.size()}};
  std::vector<int32_t> present;
  v.special_trie.for_each_occurrence(text, [&](int32_t id) {
    if (!parse_special && (v.tokens[id].attr & (detail::kAttrControl | detail::kAttrUnknown))) return;
    present.push_back(id);
  });
  if (present.empty()) return frags;
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());

  std::vector<Fragment> next;
  for (int32_t id : v.special_cache) {
    if (!std::binary_search(present.begin(), present.end(), id)) continue;
    const detail::TokenData& tok = v.tokens[id];
    const std::string_view t = tok.text;
    next.clear();
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t base = f.off;
      const size_t end = f.off + f.len;
      while (base < end) {
        const size_t m = text.substr(0, end).find(t, base);
        if (m == std::string_view::npos) break;
        size_t left_len = m - base;
        if (tok.attr & detail::kAttrLstrip) {
          while (left_len > 0 && c_isspace(text[base + left_len - 1])) --left_len;
        }
        if (left_len > 0) next.push_back({-1, base, left_len});
        next.push_back({id, 0, 0});
        base = m + t.size();
        if ((tok.attr & detail::kAttrRstrip) && base < end) {
          while (base < end && c_isspace(text[base])) ++base;
        }
      }
      if (base < end) next.push_back({-1, base, end - base});
    }
    frags.swap(next);
  }
  return frags;
}

}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Vocab& v = *v_;
  std::vector<int32_t> out;
  std::vector<Fragment> frags;
  if (!text.empty()) frags = partition(v, text, parse_special);
  const auto frag_text = [&](const Fragment& f) { return text.substr(f.off, f.len); };

  switch (v.type) {
    case VocabType::kSpm: {
      if (add_special && v.add_bos) out.push_back(v.bos);
      bool prev_special = true;  // the first fragment gets the space prefix too
      std::string buf;
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          out.push_back(f.token);
          prev_special = true;
          continue;
        }
        buf.clear();
        if (v.add_space_prefix && prev_special) buf = "\xE2\x96\x81";
        for (char c : frag_text(f)) {
          if (c == ' ') buf += "\xE2\x96\x81";
          else buf.push_back(c);
        }
        detail::spm_tokenize(v, buf, &out);
        prev_special = false;
      }
      if (add_special && v.add_eos) out.push_back(v.eos);
      break;
    }
    case VocabType::kBpe: {
      if (add_special && v.add_bos) out.push_back(v.bos);
      detail::BpeWordCache cache;
      for (const Fragment& f : frags) {
        if (f.token >= 0) out.push_back(f.token);
        else detail::bpe_tokenize(v, frag_text(f), &cache, &out);
      }
      if (add_special && v.add_eos) out.push_back(v.eos);
      break;
    }
    case VocabType::kWpm: {
      if (add_special && v.bos >= 0) out.push_back(v.bos);  // [CLS]
      for (const Fragment& f : frags) {
        if (f.token >= 0) out.push_back(f.token);
        else detail::wpm_tokenize(v, frag_text(f), &out);
      }
      if (add_special && v.sep >= 0) out.push_back(v.sep);  // [SEP]
      break;
    }
  }
  return out;
}

}  // namespace tachyon::tok
