// Pre-tokenizer regexes per tokenizer.ggml.pre and llama.cpp's split procedure.
//
// llama.cpp runs each family's regexes one after another; every match and every stretch
// between matches becomes a word. It evaluates the GPT-2, Llama-3 and Qwen2 expressions
// with hand-written matchers and the others with std::regex over "collapsed" text (every
// non-ASCII code point replaced by a byte naming its category). Both are reproduced here
// with PCRE2 (UTF + UCP) on the real text, with these equivalences:
//  - non-ASCII whitespace (llama.cpp's White_Space set) is rewritten to U+000B before
//    matching, exactly as llama.cpp does, so \s means that set (U+0085 included) and literal
//    classes never match e.g. U+3000;
//  - (?i:'s|'t...) is spelled '[sS]|'[tT]... (PCRE2 would also fold U+017F into 's');
//  - std::regex '$' (end of the piece) is written \z;
//  - llama.cpp's collapsed \p{S} misses ASCII '~'; patterns using \p{S} spell that out;
//  - the GPT-2 regex gets llama.cpp's implicit trailing |\s+ (its matcher has it; as a
//    regex the lone whitespace would become a gap word of the same extent anyway).
// Invalid UTF-8 becomes U+FFFD per bad byte (llama.cpp's decoder) before matching.
#include <algorithm>

#include "tokenizer/vocab.h"

namespace tachyon::tok::detail {

namespace {

constexpr const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
#define TACHYON_CONTRACTIONS R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))"
constexpr const char* kLlama3 =
    TACHYON_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    TACHYON_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen35 = TACHYON_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kMinicpm5 =
    TACHYON_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kSeedCoder =
    TACHYON_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+)" TACHYON_CONTRACTIONS
    R"(?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*)" TACHYON_CONTRACTIONS
    R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
#undef TACHYON_CONTRACTIONS
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kBailingmoe =
    R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";
// llama.cpp's collapsed \p{S} does not contain '~': the negated class gains it, the
// positive class loses it.
constexpr const char* kDeepseek3Main =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|(?:~|[^\r\n\p{L}\p{P}\p{S}])?[\p{L}\p{M}]+| ?(?:(?!~)[\p{P}\p{S}])+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kPunctSym = R"([\p{P}\$\+<=>\^~\|]+)";
constexpr const char* kPoro = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
constexpr const char* kCjk = R"([一-龥ࠀ-一가-퟿]+)";
constexpr const char* kDeepseekLetters = R"(\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+)";

std::vector<const char*> patterns_of(PreType t) {
  switch (t) {
    case PreType::kLlama3:
    case PreType::kDbrx:
    case PreType::kSmaug:
    case PreType::kChatglm4:
      return {kLlama3};
    case PreType::kDeepseekLlm:
      return {R"([\r\n])", kDeepseekLetters, R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)", R"(\s+\z)", kCjk, R"(\p{N}+)"};
    case PreType::kDeepseek3:
      return {R"(\p{N}{1,3})", R"([一-龥぀-ゟ゠-ヿ]+)", kDeepseek3Main};
    case PreType::kDeepseekCoder:
      return {R"([\r\n])", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjk, R"(\p{N})"};
    case PreType::kFalcon:
      return {kPunctSym, kGpt2, "[0-9][0-9][0-9]"};
    case PreType::kStarcoder:
    case PreType::kRefact:
    case PreType::kCommandR:
    case PreType::kSmollm:
    case PreType::kCodeshell:
    case PreType::kExaone:
    case PreType::kMinerva:
    case PreType::kMellum2:
      return {R"(\p{N})", kGpt2};
    case PreType::kGpt2:
    case PreType::kMpt:
    case PreType::kOlmo:
    case PreType::kJais:
    case PreType::kTrillion:
    case PreType::kGraniteDocling:
      return {kGpt2};
    case PreType::kStablelm2:
    case PreType::kQwen2:
    case PreType::kHunyuan:
    case PreType::kSolarOpen:
    case PreType::kGrok2:
      return {kQwen2};
    case PreType::kQwen35:
      return {kQwen35};
    case PreType::kPoro:
    case PreType::kBloom:
    case PreType::kGpt3Finnish:
      return {kPoro};
    case PreType::kViking:
      return {kPoro, R"(\p{N})"};
    case PreType::kTekken:
      return {kTekken};
    case PreType::kChameleon:
      return {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", R"(\p{N})",
              R"([\p{P}!-/:-@\[-`{-~])", kGpt2};
    case PreType::kGpt4o:
      return {kGpt4o};
    case PreType::kSeedCoder:
      return {kSeedCoder};
    case PreType::kBailingmoe:
      return {kBailingmoe};
    case PreType::kMinicpm5:
      return {R"(\p{N}{1,3})", kMinicpm5};
    case PreType::kDefault:
      break;
  }
  return {kPunctSym, kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
}

// Splits subject[piece] with one regex the way llama.cpp's std::regex_iterator loop does:
// matches and the gaps between them become pieces; an empty match only separates.
void split_piece(Regex::Matcher& m, std::string_view subject, size_t begin, size_t end,
                 std::vector<std::pair<size_t, size_t>>* out) {
  const std::string_view s = subject.substr(begin, end - begin);
  const size_t n = s.size();
  size_t gap = 0, search = 0;
  const auto emit = [&](size_t a, size_t b) {
    if (b > a) out->emplace_back(begin + a, begin + b);
  };
  while (search <= n) {
    size_t mb, me;
    if (!m.find(s, search, &mb, &me)) break;
    if (me > mb) {
      emit(gap, mb);
      emit(mb, me);
      gap = search = me;
      continue;
    }
    emit(gap, mb);
    gap = mb;
    if (m.find(s, mb, &mb, &me, /*anchored_nonempty=*/true)) {
      emit(mb, me);
      gap = search = me;
      continue;
    }
    if (mb >= n) break;
    search = mb + std::min(utf8_len(static_cast<uint8_t>(s[mb])), n - mb);
  }
  emit(gap, n);
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(PreType t) {
  auto p = std::make_unique<PreTokenizer>();
  for (const char* pat : patterns_of(t)) {
    auto re = Regex::compile(pat);
    if (!re.is_ok()) return re.status();
    p->regexes.push_back(std::move(re.value()));
  }
  return p;
}

std::vector<std::string> pre_tokenize(const PreTokenizer& p, std::string_view text) {
  // The regex subject: llama.cpp's code points re-encoded, non-ASCII whitespace -> U+000B,
  // code points UTF-8 cannot carry (surrogates, > U+10FFFF) -> U+FFFD. When that is the
  // input itself (valid UTF-8, no such whitespace), words are slices of `text`.
  std::vector<uint32_t> cpts;
  std::vector<size_t> cpt_off;  // [n_cpts + 1] byte offset of each code point in `subject`
  std::string subject_buf;
  std::string_view subject = text;
  bool identity = is_valid_utf8(text);
  if (identity) {
    for (size_t off = 0; off < text.size();) {
      const uint32_t c = utf8_next(text, &off);
      if (c >= 0x80 && is_whitespace(c)) {
        identity = false;
        break;
      }
    }
  }
  if (!identity) {
    cpts = utf8_to_cpts(text);
    cpt_off.reserve(cpts.size() + 1);
    subject_buf.reserve(text.size());
    for (uint32_t c : cpts) {
      cpt_off.push_back(subject_buf.size());
      if (c >= 0x80 && is_whitespace(c)) {
        subject_buf.push_back('\x0B');
      } else if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
        append_utf8(&subject_buf, kReplacementChar);
      } else {
        append_utf8(&subject_buf, c);
      }
    }
    cpt_off.push_back(subject_buf.size());
    subject = subject_buf;
  }

  std::vector<std::pair<size_t, size_t>> pieces{{0, subject.size()}}, next;
  if (subject.empty()) pieces.clear();
  for (const auto& re : p.regexes) {
    Regex::Matcher m(*re);
    next.clear();
    next.reserve(pieces.size() * 2);
    for (const auto& [b, e] : pieces) split_piece(m, subject, b, e, &next);
    pieces.swap(next);
  }

  std::vector<std::string> words;
  words.reserve(pieces.size());
  for (const auto& [b, e] : pieces) {
    if (identity) {
      words.emplace_back(text.substr(b, e - b));
      continue;
    }
    const size_t i0 = std::lower_bound(cpt_off.begin(), cpt_off.end(), b) - cpt_off.begin();
    const size_t i1 = std::lower_bound(cpt_off.begin(), cpt_off.end(), e) - cpt_off.begin();
    std::string w;
    for (size_t i = i0; i < i1; ++i) append_utf8(&w, cpts[i]);
    words.push_back(std::move(w));
  }
  return words;
}

Status resolve_pre_type(std::string_view name, Vocab* v) {
  const auto is = [&](std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  PreType& t = v->pre_type;
  if (is({"default"})) {
    t = PreType::kDefault;
  } else if (is({"minicpm5"})) {
    t = PreType::kMinicpm5, v->ignore_merges = true;
  } else if (is({"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                 "jina-v5-nano"})) {
    t = PreType::kLlama3, v->ignore_merges = true, v->add_bos = true;
  } else if (is({"deepseek-llm"})) {
    t = PreType::kDeepseekLlm, v->clean_spaces = false;
  } else if (is({"deepseek-coder"})) {
    t = PreType::kDeepseekCoder, v->clean_spaces = false;
  } else if (is({"deepseek-v3"})) {
    t = PreType::kDeepseek3, v->clean_spaces = false;
  } else if (is({"falcon"})) {
    t = PreType::kFalcon;
  } else if (is({"mpt"})) {
    t = PreType::kMpt;
  } else if (is({"starcoder"})) {
    t = PreType::kStarcoder;
  } else if (is({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
                 "modern-bert", "exaone4"})) {
    t = PreType::kGpt2;
  } else if (is({"jina-v1-en", "jina-v2-code", "roberta-bpe"})) {
    t = PreType::kGpt2, v->add_sep = true;
  } else if (is({"refact"})) {
    t = PreType::kRefact;
  } else if (is({"command-r"})) {
    t = PreType::kCommandR, v->clean_spaces = false;
  } else if (is({"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"})) {
    t = PreType::kQwen2, v->clean_spaces = false;
  } else if (is({"megrez"})) {
    t = PreType::kQwen2;
  } else if (is({"qwen35"})) {
    t = PreType::kQwen35, v->clean_spaces = false;
  } else if (is({"stablelm2"})) {
    t = PreType::kStablelm2;
  } else if (is({"olmo"})) {
    t = PreType::kOlmo;
  } else if (is({"dbrx"})) {
    t = PreType::kDbrx;
  } else if (is({"smaug-bpe"})) {
    t = PreType::kSmaug;
  } else if (is({"poro-chat"})) {
    t = PreType::kPoro, v->clean_spaces = false;
  } else if (is({"glm4", "chatglm-bpe"})) {
    t = PreType::kChatglm4, v->bos = -1;
  } else if (is({"viking"})) {
    t = PreType::kViking, v->clean_spaces = false;
  } else if (is({"jais"})) {
    t = PreType::kJais;
  } else if (is({"tekken"})) {
    t = PreType::kTekken, v->clean_spaces = false, v->ignore_merges = true, v->add_bos = true;
  } else if (is({"smollm"})) {
    t = PreType::kSmollm, v->clean_spaces = false;
  } else if (is({"codeshell"})) {
    t = PreType::kCodeshell;
  } else if (is({"bloom"})) {
    t = PreType::kBloom;
  } else if (is({"gpt3-finnish"})) {
    t = PreType::kGpt3Finnish;
  } else if (is({"exaone"})) {
    t = PreType::kExaone;
  } else if (is({"chameleon"})) {
    t = PreType::kChameleon, v->add_bos = true, v->clean_spaces = false;
  } else if (is({"minerva-7b"})) {
    t = PreType::kMinerva;
  } else if (is({"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"})) {
    t = PreType::kGpt4o, v->clean_spaces = false;
  } else if (is({"seed-coder"})) {
    t = PreType::kSeedCoder, v->clean_spaces = false;
  } else if (is({"bailingmoe", "bailingmoe2", "llada-moe"})) {
    t = PreType::kBailingmoe, v->clean_spaces = false;
  } else if (is({"trillion"})) {
    t = PreType::kTrillion, v->clean_spaces = false;
  } else if (is({"granite-docling"})) {
    t = PreType::kGraniteDocling, v->clean_spaces = false;
  } else if (is({"hunyuan"})) {
    t = PreType::kHunyuan, v->clean_spaces = false;
  } else if (is({"grok-2"})) {
    t = PreType::kGrok2, v->clean_spaces = false;
  } else if (is({"solar-open"})) {
    t = PreType::kSolarOpen, v->clean_spaces = false;
  } else if (is({"mellum2"})) {
    t = PreType::kMellum2;
  } else {
    return Status(ErrorCode::kUnsupported,
                  "tokenizer.ggml.pre: pre-tokenizer '" + std::string(name) + "' is not supported by this build");
  }
  return Status::ok();
}

}  // namespace tachyon::tok::detail
