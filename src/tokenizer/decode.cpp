// Detokenization: per-token pieces, whole-sequence decode with llama.cpp's leading-space
// and clean-up rules, and the streaming decoder that reproduces decode() chunk by chunk.
#include <algorithm>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace tachyon::tok {

namespace {

// llama.cpp's clean_up_tokenization_spaces, three in-place passes over the whole text.
void clean_spaces(std::string* s) {
  std::string& text = *s;
  // 1: " ?", " !", " .", " ," lose the space
  size_t total1 = text.size(), total = total1 ? 1 : 0;
  for (size_t i = 1; i < total1; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) --total;
    text[total++] = x;
  }
  // 2: " ' " becomes "'"
  const size_t total2 = total;
  total = total ? 1 : 0;
  for (size_t i = 1; i < total2; ++i) {
    const char x = text[i];
    if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
      --total;
      text[++i] = '\0';
    }
    text[total++] = x;
  }
  // 3: " 's", " 'm", " 're", " 've" lose the space
  const size_t total3 = total;
  total = total ? 1 : 0;
  for (size_t i = 1; i < total3; ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
      const char x1 = text[i + 1];
      if (x1 == 's' || x1 == 'm') {
        --total;
      } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
        const char x2 = text[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) --total;
      }
    }
    text[total++] = x;
  }
  text.resize(total);
}

// Clean-up decisions never reach across a character outside this set, so the text can be
// cleaned in independent segments that end right after any other character.
bool clean_blocks_cut(char c) { return c == ' ' || c == '\'' || c == 'r' || c == 'v'; }

// Applies the leading-space rule to the piece of the token at the head of a sequence.
// `*pending`: the rule is still to be applied; `at_start`: this is the first token.
void strip_leading(const Tokenizer& tok, LeadingSpace leading, int32_t id, bool at_start, bool* pending,
                   std::string* piece) {
  if (!*pending) return;
  if (leading == LeadingSpace::kSkipBos && at_start && id == tok.bos_id()) return;  // keep pending
  if (!piece->empty() && (*piece)[0] == ' ') piece->erase(0, 1);
  *pending = false;
}

}  // namespace

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (!valid_id(id)) return "";
  if (!render_special && (v_->tokens[id].attr & (detail::kAttrUnknown | detail::kAttrControl))) return "";
  return v_->pieces[id];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special, LeadingSpace leading) const {
  std::string text;
  bool pending = v_->add_space_prefix && leading != LeadingSpace::kKeep;
  bool at_start = true;
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    strip_leading(*this, leading, id, at_start, &pending, &piece);
    at_start = false;
    text += piece;
  }
  if (v_->clean_spaces) clean_spaces(&text);
  return text;
}

StreamDecoder::StreamDecoder(const Tokenizer& tok, Options opts) : tok_(tok), opts_(opts) { reset(); }

void StreamDecoder::reset() {
  at_start_ = true;
  strip_pending_ = tok_.add_space_prefix() && opts_.leading != LeadingSpace::kKeep;
  pending_raw_.clear();
  pending_out_.clear();
}

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.token_to_piece(id, opts_.render_special);
  strip_leading(tok_, opts_.leading, id, at_start_, &strip_pending_, &piece);
  at_start_ = false;
  if (!tok_.clean_up_spaces() || !opts_.clean_up_spaces) return emit(std::move(piece), false);
  pending_raw_ += piece;
  size_t cut = pending_raw_.size();
  while (cut > 0 && clean_blocks_cut(pending_raw_[cut - 1])) --cut;
  if (cut == 0) return emit("", false);
  std::string head = pending_raw_.substr(0, cut);
  pending_raw_.erase(0, cut);
  clean_spaces(&head);
  return emit(std::move(head), false);
}

std::string StreamDecoder::flush() {
  std::string rest = std::move(pending_raw_);
  if (tok_.clean_up_spaces() && opts_.clean_up_spaces) clean_spaces(&rest);
  std::string out = emit(std::move(rest), true);
  reset();
  return out;
}

std::string StreamDecoder::emit(std::string text, bool final) {
  pending_out_ += text;
  size_t keep = final ? 0 : utf8_incomplete_tail(pending_out_);
  std::string ready = pending_out_.substr(0, pending_out_.size() - keep);
  pending_out_.erase(0, pending_out_.size() - keep);
  if (opts_.replace_invalid_utf8 && !is_valid_utf8(ready)) ready = sanitize_utf8(ready);
  return ready;
}

}  // namespace tachyon::tok
