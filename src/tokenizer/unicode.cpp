#include "tokenizer/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>

namespace tachyon::tok {

uint32_t utf8_next(std::string_view s, size_t* off) {
  const size_t i = *off;
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const uint8_t b0 = b(0);
  if (!(b0 & 0x80)) {
    *off += 1;
    return b0;
  }
  if ((b0 & 0x40) && !(b0 & 0x20)) {
    if (cont(1)) {
      *off += 2;
      return ((b0 & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    }
  } else if ((b0 & 0x40) && !(b0 & 0x10)) {
    if (cont(1) && cont(2)) {
      *off += 3;
      return ((b0 & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    }
  } else if ((b0 & 0x40) && !(b0 & 0x08)) {
    if (cont(1) && cont(2) && cont(3)) {
      *off += 4;
      return ((b0 & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    }
  }
  *off += 1;
  return kReplacementChar;
}

std::vector<uint32_t> utf8_to_cpts(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t off = 0;
  while (off < s.size()) out.push_back(utf8_next(s, &off));
  return out;
}

void append_utf8(std::string* out, uint32_t cpt) {
  if (cpt > 0x10FFFF) cpt = kReplacementChar;
  if (cpt <= 0x7F) {
    out->push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7FF) {
    out->push_back(static_cast<char>(0xC0 | (cpt >> 6)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else if (cpt <= 0xFFFF) {
    out->push_back(static_cast<char>(0xE0 | (cpt >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cpt >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cpt & 0x3F)));
  }
}

namespace {

// Length of the well-formed sequence starting at s[i] (Unicode Table 3-7), or, when it is
// ill-formed, minus the length of its maximal ill-formed subpart (at least 1).
// `*truncated` is set when the sequence is a valid prefix cut short by the end of `s`.
int utf8_seq(std::string_view s, size_t i, bool* truncated) {
  *truncated = false;
  const auto at = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  const uint8_t b0 = at(0);
  if (b0 < 0x80) return 1;
  int need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k < need; ++k) {
    if (i + k >= s.size()) {
      *truncated = true;
      return -k;
    }
    const uint8_t c = at(k);
    const bool ok = (k == 1) ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return -k;
  }
  return need;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    bool truncated;
    const int n = utf8_seq(s, i, &truncated);
    if (n < 0) return false;
    i += n;
  }
  return true;
}

size_t utf8_incomplete_tail(std::string_view s) {
  // A completable tail is a lead byte followed by 0..2 continuation bytes at the very end.
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const uint8_t c = static_cast<uint8_t>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation: keep looking for the lead
    bool truncated;
    const int len = utf8_seq(s, n - back, &truncated);
    return (len < 0 && truncated) ? back : 0;
  }
  return 0;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    bool truncated;
    const int n = utf8_seq(s, i, &truncated);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      append_utf8(&out, kReplacementChar);
      i += -n;
    }
  }
  return out;
}

bool is_whitespace(uint32_t cpt) {
  if (cpt <= 0x20) return cpt == 0x20 || (cpt >= 0x09 && cpt <= 0x0D);
  if (cpt < 0x85) return false;
  switch (cpt) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cpt >= 0x2000 && cpt <= 0x200A;
  }
}

uint32_t to_lower(uint32_t cpt) {
  if (cpt < 0x80) return (cpt >= 'A' && cpt <= 'Z') ? cpt + 32 : cpt;
  const auto* begin = unicode_tables::kLowercase;
  const auto* end = begin + unicode_tables::kLowercaseCount;
  const auto* it = std::lower_bound(begin, end, cpt, [](const uint32_t(&p)[2], uint32_t v) { return p[0] < v; });
  return (it != end && (*it)[0] == cpt) ? (*it)[1] : cpt;
}

uint32_t nfd_first(uint32_t cpt) {
  if (cpt < 0xC0) return cpt;
  const auto* begin = unicode_tables::kNfdRanges;
  const auto* end = begin + unicode_tables::kNfdRangesCount;
  // first range whose `first` is > cpt, then step back
  const auto* it = std::upper_bound(begin, end, cpt, [](uint32_t v, const uint32_t(&r)[3]) { return v < r[0]; });
  if (it == begin) return cpt;
  --it;
  return (cpt >= (*it)[0] && cpt <= (*it)[1]) ? (*it)[2] : cpt;
}

namespace {

struct ByteMap {
  std::array<std::string, 256> to_utf8;
  std::array<int, 512> from_cpt;  // stand-ins are all below 0x144
  ByteMap() {
    from_cpt.fill(-1);
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cpt = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      append_utf8(&to_utf8[b], cpt);
      from_cpt[cpt] = b;
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) { return byte_map().to_utf8[b]; }

int unicode_to_byte(uint32_t cpt) { return cpt < 512 ? byte_map().from_cpt[cpt] : -1; }

// ---- Regex ----------------------------------------------------------------------------

Result<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return Status(ErrorCode::kInternal, "pre-tokenizer regex does not compile at offset " + std::to_string(err_off) +
                                            ": " + reinterpret_cast<const char*>(msg));
  }
  std::shared_ptr<Regex> re(new Regex());
  re->pattern_ = std::string(pattern);
  re->code_ = code;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return std::shared_ptr<const Regex>(std::move(re));
}

Regex::~Regex() {
  if (code_) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Regex::Matcher::Matcher(const Regex& re)
    : re_(re), md_(pcre2_match_data_create_from_pattern(static_cast<pcre2_code*>(re.code_), nullptr)) {}

Regex::Matcher::~Matcher() { pcre2_match_data_free(static_cast<pcre2_match_data*>(md_)); }

bool Regex::Matcher::find(std::string_view subject, size_t start, size_t* m_begin, size_t* m_end,
                          bool anchored_nonempty) {
  auto* code = static_cast<pcre2_code*>(re_.code_);
  auto* md = static_cast<pcre2_match_data*>(md_);
  uint32_t opts = PCRE2_NO_UTF_CHECK;
  if (anchored_nonempty) opts |= PCRE2_ANCHORED | PCRE2_NOTEMPTY_ATSTART;
  const auto* subj = reinterpret_cast<PCRE2_SPTR>(subject.data());
  int rc = pcre2_match(code, subj, subject.size(), start, opts, md, nullptr);
  if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
    // very long runs can exhaust the default 32 KiB JIT stack; the interpreter uses the heap
    rc = pcre2_match(code, subj, subject.size(), start, opts | PCRE2_NO_JIT, md, nullptr);
  }
  if (rc < 0) return false;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  *m_begin = ov[0];
  *m_end = ov[1];
  return true;
}

int Regex::Matcher::first_group() const {
  auto* md = static_cast<pcre2_match_data*>(md_);
  const uint32_t n = pcre2_get_ovector_count(md);
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
  for (uint32_t g = 1; g < n; ++g) {
    if (ov[2 * g] != PCRE2_UNSET) return static_cast<int>(g);
  }
  return 0;
}

// ---- CharClassifier --------------------------------------------------------------------

namespace {
constexpr uint32_t kTableSize = 0x3000;
}

Result<std::unique_ptr<CharClassifier>> CharClassifier::create() {
  // group order = CharClass values 1..6
  auto re = Regex::compile(R"((\p{L})|(\p{N})|(\p{M})|(\p{P})|(\p{S})|([\p{Cc}\p{Cf}\p{Co}\p{Cs}]))");
  if (!re.is_ok()) return re.status();
  std::unique_ptr<CharClassifier> c(new CharClassifier());
  c->re_ = std::move(re.value());
  Regex::Matcher m(*c->re_);
  c->table_.resize(kTableSize);
  for (uint32_t cpt = 0; cpt < kTableSize; ++cpt) {
    std::string buf;
    append_utf8(&buf, cpt);
    size_t b, e;
    c->table_[cpt] = static_cast<uint8_t>(m.find(buf, 0, &b, &e, true) ? m.first_group() : 0);
  }
  return c;
}

CharClass CharClassifier::classify(uint32_t cpt, Regex::Matcher* scratch) const {
  if (cpt < kTableSize) return static_cast<CharClass>(table_[cpt]);
  if (cpt >= 0xD800 && cpt <= 0xDFFF) return kClassControl;  // surrogates: not encodable for PCRE2
  if (cpt > 0x10FFFF) return kClassOther;
  std::string buf;
  append_utf8(&buf, cpt);
  size_t b, e;
  return scratch->find(buf, 0, &b, &e, true) ? static_cast<CharClass>(scratch->first_group()) : kClassOther;
}

}  // namespace tachyon::tok
