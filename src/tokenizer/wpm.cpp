// WordPiece for BERT-style embedding models (llama.cpp's llm_tokenizer_wpm): BERT's basic
// normalization (drop control characters, optional accent stripping and lowercasing,
// split on whitespace, isolate punctuation and CJK ideographs), then greedy longest-match
// of "▁"+word against the vocabulary; a word that cannot be covered becomes [UNK].
#include "tokenizer/vocab.h"

namespace tachyon::tok::detail {

namespace {

bool is_chinese_char(uint32_t cpt) {
  return (cpt >= 0x04E00 && cpt <= 0x09FFF) || (cpt >= 0x03400 && cpt <= 0x04DBF) ||
         (cpt >= 0x20000 && cpt <= 0x2A6DF) || (cpt >= 0x2A700 && cpt <= 0x2B73F) ||
         (cpt >= 0x2B740 && cpt <= 0x2B81F) || (cpt >= 0x2B920 && cpt <= 0x2CEAF) ||  // sic (HF uses 0x2B920)
         (cpt >= 0x0F900 && cpt <= 0x0FAFF) || (cpt >= 0x2F800 && cpt <= 0x2FA1F);
}

std::vector<std::string> preprocess(const Vocab& v, std::string_view text) {
  Regex::Matcher scratch(v.classifier->regex());
  std::vector<std::string> words(1);
  size_t off = 0;
  while (off < text.size()) {
    uint32_t cpt = utf8_next(text, &off);
    if (v.wpm_strip_accents) cpt = nfd_first(cpt);
    if (is_whitespace(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      continue;
    }
    const CharClass cls = v.classifier->classify(cpt, &scratch);
    if (cpt == 0 || cpt == kReplacementChar || cls == kClassControl) continue;
    if (v.wpm_strip_accents && cls == kClassMark) continue;
    std::string s;
    append_utf8(&s, v.wpm_lowercase ? to_lower(cpt) : cpt);
    if (cls == kClassPunct || (cpt < 0x7F && cls == kClassSymbol) || is_chinese_char(cpt)) {
      if (!words.back().empty()) words.emplace_back();
      words.back() = std::move(s);
      words.emplace_back();
    } else {
      words.back() += s;
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

}  // namespace

void wpm_tokenize(const Vocab& v, std::string_view text, std::vector<int32_t>* out) {
  for (const std::string& word : preprocess(v, text)) {
    if (word.empty()) continue;
    const std::string w = "\xE2\x96\x81" + word;  // phantom space marks a word start
    const size_t n = w.size();
    const size_t n_before = out->size();
    for (size_t i = 0; i < n; ++i) {
      bool matched = false;
      for (size_t j = std::min(n, i + v.max_token_len + 1); j > i; --j) {
        const int32_t id = v.find(std::string_view(w).substr(i, j - i));
        if (id >= 0) {
          out->push_back(id);
          matched = true;
          i = j - 1;
          break;
        }
      }
      if (!matched) {  // the whole word becomes [UNK]
        out->resize(n_before);
        break;
      }
    }
    if (out->size() == n_before && v.unk >= 0) out->push_back(v.unk);
  }
}

}  // namespace tachyon::tok::detail
