// Regex -> GBNF: a recursive-descent parser builds a small AST (code-point sets, sequences,
// alternations, bounded repetitions); the emitter prints it as GBNF expressions.
//
// Why an AST and not direct printing: a repetition of a nullable body, e.g. (a*)*, is a
// loop without progress for a pushdown recognizer (and looks like left recursion to a
// grammar checker). The emitter rewrites X* with nullable X into (X \ {""})*, which is the
// same language; nonempty() below computes X \ {""} on the AST.
#include "constrain/regex.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <memory>
#include <optional>

namespace tachyon::constrain {

// ---- CodePointSet ------------------------------------------------------------------------

CodePointSet CodePointSet::of(uint32_t lo, uint32_t hi) {
  CodePointSet s;
  s.add(lo, hi);
  return s;
}

void CodePointSet::add(uint32_t lo, uint32_t hi) {
  if (lo > hi) return;
  std::vector<std::pair<uint32_t, uint32_t>> out;
  out.reserve(r_.size() + 1);
  bool placed = false;
  for (const auto& [a, b] : r_) {
    if (b + 1 < lo) {
      out.push_back({a, b});
    } else if (hi + 1 < a) {
      if (!placed) out.push_back({lo, hi}), placed = true;
      out.push_back({a, b});
    } else {  // overlaps or touches: merge into the pending range
      lo = std::min(lo, a);
      hi = std::max(hi, b);
    }
  }
  if (!placed) out.push_back({lo, hi});
  std::sort(out.begin(), out.end());
  r_ = std::move(out);
}

void CodePointSet::add(const CodePointSet& o) {
  for (const auto& [a, b] : o.r_) add(a, b);
}

CodePointSet CodePointSet::complement() const {
  CodePointSet s;
  uint32_t next = 0;
  for (const auto& [a, b] : r_) {
    if (a > next) s.r_.push_back({next, a - 1});
    next = b + 1;
  }
  if (next <= kMax) s.r_.push_back({next, kMax});
  return s;
}

CodePointSet CodePointSet::intersect(const CodePointSet& o) const {
  CodePointSet s;
  size_t i = 0, j = 0;
  while (i < r_.size() && j < o.r_.size()) {
    const uint32_t lo = std::max(r_[i].first, o.r_[j].first);
    const uint32_t hi = std::min(r_[i].second, o.r_[j].second);
    if (lo <= hi) s.r_.push_back({lo, hi});
    if (r_[i].second < o.r_[j].second) ++i; else ++j;
  }
  return s;
}

bool CodePointSet::contains(uint32_t c) const {
  for (const auto& [a, b] : r_)
    if (c >= a && c <= b) return true;
  return false;
}

uint64_t CodePointSet::size() const {
  uint64_t n = 0;
  for (const auto& [a, b] : r_) n += uint64_t(b) - a + 1;
  return n;
}

namespace {

std::string hex(uint32_t v, int digits) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%0*X", digits, v);
  return buf;
}

// One code point as it appears inside a GBNF [class]: alphanumerics and harmless
// punctuation raw, everything else escaped so that ] \ ^ - never need context.
std::string class_char(uint32_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return std::string(1, char(c));
  if (c < 0x80 && std::string_view(" !#$%&'()*+,./:;<=>?@_`{|}~").find(char(c)) != std::string_view::npos)
    return std::string(1, char(c));
  if (c < 0x80) return "\\x" + hex(c, 2);
  if (c <= 0xFFFF) return "\\u" + hex(c, 4);
  return "\\U" + hex(c, 8);
}

// One code point inside a GBNF "literal".
std::string literal_char(uint32_t c) {
  switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    default: break;
  }
  if (c >= 0x20 && c < 0x7F) return std::string(1, char(c));
  if (c < 0x80) return "\\x" + hex(c, 2);
  if (c <= 0xFFFF) return "\\u" + hex(c, 4);
  return "\\U" + hex(c, 8);
}

std::string ranges_text(const CodePointSet& s) {
  std::string t;
  for (const auto& [a, b] : s.ranges()) {
    t += class_char(a);
    if (b == a + 1) t += class_char(b);
    else if (b > a) t += "-" + class_char(b);
  }
  return t;
}

// Decodes one UTF-8 code point at s[*i]; returns false on malformed input.
bool decode_utf8(std::string_view s, size_t* i, uint32_t* cp) {
  const auto b0 = uint8_t(s[*i]);
  int n = b0 < 0x80 ? 0 : (b0 >> 5) == 6 ? 1 : (b0 >> 4) == 14 ? 2 : (b0 >> 3) == 30 ? 3 : -1;
  if (n < 0 || *i + n >= s.size()) return false;
  uint32_t c = n == 0 ? b0 : n == 1 ? (b0 & 0x1F) : n == 2 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k <= n; ++k) {
    const auto b = uint8_t(s[*i + k]);
    if ((b >> 6) != 2) return false;
    c = (c << 6) | (b & 0x3F);
  }
  static const uint32_t min_for_len[4] = {0, 0x80, 0x800, 0x10000};
  if (c < min_for_len[n] || c > CodePointSet::kMax || (c >= 0xD800 && c <= 0xDFFF)) return false;
  *i += n + 1;
  *cp = c;
  return true;
}

}  // namespace

std::string CodePointSet::to_gbnf() const {
  assert(!empty());
  if (r_.size() == 1 && r_[0].first == 0 && r_[0].second == kMax) return ".";
  if (size() == 1) return "\"" + literal_char(r_[0].first) + "\"";
  if (r_.back().second == kMax) return "[^" + ranges_text(complement()) + "]";
  return "[" + ranges_text(*this) + "]";
}

std::string gbnf_literal(std::string_view utf8) {
  std::string out = "\"";
  size_t i = 0;
  while (i < utf8.size()) {
    uint32_t c;
    if (decode_utf8(utf8, &i, &c)) {
      out += literal_char(c);
    } else {
      out += "\\x" + hex(uint8_t(utf8[i]), 2);
      ++i;
    }
  }
  return out + "\"";
}

std::string gbnf_json_char(const CodePointSet& s) {
  static const CodePointSet kControls = CodePointSet::of(0, 0x1F);
  CodePointSet special = kControls;
  special.add('"', '"');
  special.add('\\', '\\');
  const CodePointSet raw = s.minus(special);
  // Single-character escapes (the char after the backslash) and \u00XX for controls.
  CodePointSet short_esc;
  for (auto [c, e] : {std::pair<uint32_t, uint32_t>{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {8, 'b'}, {12, 'f'},
                      {10, 'n'}, {13, 'r'}, {9, 't'}})
    if (s.contains(c)) short_esc.add(e, e);
  std::string u00;
  for (uint32_t hi = 0; hi < 2; ++hi) {
    CodePointSet low;
    for (uint32_t lo = 0; lo < 16; ++lo) {
      if (!s.contains(hi * 16 + lo)) continue;
      const uint32_t d = lo < 10 ? '0' + lo : 'a' + lo - 10;
      low.add(d, d);
      if (lo >= 10) low.add(d - 'a' + 'A', d - 'a' + 'A');
    }
    if (low.empty()) continue;
    if (!u00.empty()) u00 += " | ";
    u00 += std::string("\"") + char('0' + hi) + "\" " + low.to_gbnf();
  }
  std::vector<std::string> esc;
  if (!short_esc.empty()) esc.push_back(short_esc.to_gbnf());
  if (!u00.empty()) esc.push_back("\"u00\" (" + u00 + ")");
  std::string out;
  if (!raw.empty()) out = raw.to_gbnf();
  if (!esc.empty()) {
    if (!out.empty()) out += " | ";
    out += "\"\\\\\" ";
    if (esc.size() == 1 && esc[0][0] != '"') {
      out += esc[0];
    } else {
      out += "(" + esc[0];
      for (size_t k = 1; k < esc.size(); ++k) out += " | " + esc[k];
      out += ")";
    }
  }
  return out;
}

// ---- regex AST ----------------------------------------------------------------------------

namespace {

constexpr int kInf = -1;
constexpr int kMaxBound = 10000;

struct Node {
  enum Kind { kSet, kSeq, kAlt, kRep } kind = kSeq;
  CodePointSet set;         // kSet
  std::vector<Node> kids;   // kSeq, kAlt: items; kRep: one body
  int min = 0, max = 0;     // kRep; max == kInf for unbounded
};

Node make_set(CodePointSet s) {
  Node n;
  n.kind = Node::kSet;
  n.set = std::move(s);
  return n;
}

bool nullable(const Node& n) {
  switch (n.kind) {
    case Node::kSet: return false;
    case Node::kSeq:
      return std::all_of(n.kids.begin(), n.kids.end(), [](const Node& k) { return nullable(k); });
    case Node::kAlt:
      return std::any_of(n.kids.begin(), n.kids.end(), [](const Node& k) { return nullable(k); });
    case Node::kRep: return n.min == 0 || n.max == 0 || nullable(n.kids[0]);
  }
  return false;
}

// L(n) \ {""}; nullopt when that is empty (L(n) == {""}).
std::optional<Node> nonempty(const Node& n) {
  if (!nullable(n)) return n;
  switch (n.kind) {
    case Node::kSet: return n;
    case Node::kSeq: {
      // Every item is nullable: the first non-empty item is some k_i, the ones before it empty.
      Node alt;
      alt.kind = Node::kAlt;
      for (size_t i = 0; i < n.kids.size(); ++i) {
        auto first = nonempty(n.kids[i]);
        if (!first) continue;
        Node seq;
        seq.kind = Node::kSeq;
        seq.kids.push_back(std::move(*first));
        seq.kids.insert(seq.kids.end(), n.kids.begin() + i + 1, n.kids.end());
        alt.kids.push_back(std::move(seq));
      }
      if (alt.kids.empty()) return std::nullopt;
      if (alt.kids.size() == 1) return std::move(alt.kids[0]);
      return alt;
    }
    case Node::kAlt: {
      Node alt;
      alt.kind = Node::kAlt;
      for (const Node& k : n.kids)
        if (auto e = nonempty(k)) alt.kids.push_back(std::move(*e));
      if (alt.kids.empty()) return std::nullopt;
      if (alt.kids.size() == 1) return std::move(alt.kids[0]);
      return alt;
    }
    case Node::kRep: {
      if (n.max == 0) return std::nullopt;
      auto body = nonempty(n.kids[0]);
      if (!body) return std::nullopt;
      // A nullable body absorbs the lower bound: X{m,n} == (X\"")"{0,n} when "" is in X.
      Node r;
      r.kind = Node::kRep;
      r.kids.push_back(std::move(*body));
      r.min = 1;
      r.max = n.max;
      return r;
    }
  }
  return std::nullopt;
}

// ---- parser -------------------------------------------------------------------------------

struct Branch {
  Node seq;
  bool anchored_start = false, anchored_end = false;
};

class Parser {
 public:
  explicit Parser(std::string_view re) : re_(re) {}

  bool parse(std::vector<Branch>* top, std::string* error) {
    if (!parse_alt(0, top)) {
      *error = "regex: " + err_ + " (at offset " + std::to_string(err_pos_) + ")";
      return false;
    }
    if (pos_ != re_.size()) {
      *error = "regex: unmatched ')' (at offset " + std::to_string(pos_) + ")";
      return false;
    }
    return true;
  }

 private:
  bool fail(std::string msg, size_t at) {
    if (err_.empty()) err_ = std::move(msg), err_pos_ = at;
    return false;
  }
  bool at_end() const { return pos_ >= re_.size(); }
  char peek(size_t k = 0) const { return pos_ + k < re_.size() ? re_[pos_ + k] : '\0'; }

  bool parse_alt(int depth, std::vector<Branch>* out) {
    for (;;) {
      Branch b;
      if (!parse_seq(depth, &b)) return false;
      out->push_back(std::move(b));
      if (peek() != '|' || at_end()) break;
      ++pos_;
    }
    return true;
  }

  static Node group_of(std::vector<Branch> branches) {
    if (branches.size() == 1) return std::move(branches[0].seq);
    Node alt;
    alt.kind = Node::kAlt;
    for (auto& b : branches) alt.kids.push_back(std::move(b.seq));
    return alt;
  }

  bool parse_seq(int depth, Branch* b) {
    b->seq.kind = Node::kSeq;
    bool first = true;
    while (!at_end() && peek() != '|' && peek() != ')') {
      const size_t start = pos_;
      const char c = peek();
      if (c == '^') {
        if (depth != 0 || !first) return fail("anchor '^' is only supported at the start of the pattern", start);
        ++pos_;
        b->anchored_start = true;
        continue;  // `first` stays true: a quantifier after ^ is still "nothing to repeat"
      }
      if (c == '$') {
        ++pos_;
        if (depth != 0 || !(at_end() || peek() == '|'))
          return fail("anchor '$' is only supported at the end of the pattern", start);
        b->anchored_end = true;
        break;
      }
      Node atom;
      bool is_atom = true;
      if (!parse_atom(depth, &atom, &is_atom)) return false;
      if (!is_atom) {  // a quantifier with nothing before it
        return fail("nothing to repeat", start);
      }
      if (!parse_quantifier(&atom)) return false;
      b->seq.kids.push_back(std::move(atom));
      first = false;
    }
    return true;
  }

  // Tries to read {m}, {m,} or {m,n} at pos_; on success advances past it.
  bool read_braces(int* mn, int* mx) {
    size_t p = pos_ + 1;
    auto num = [&](int* v) {
      const size_t s = p;
      long long x = 0;
      while (p < re_.size() && re_[p] >= '0' && re_[p] <= '9') {
        x = std::min<long long>(x * 10 + (re_[p] - '0'), 1LL << 40);
        ++p;
      }
      *v = int(std::min<long long>(x, 1 << 30));
      return p > s;
    };
    if (!num(mn)) return false;
    *mx = *mn;
    if (p < re_.size() && re_[p] == ',') {
      ++p;
      if (!num(mx)) *mx = kInf;
    }
    if (p >= re_.size() || re_[p] != '}') return false;
    pos_ = p + 1;
    return true;
  }

  bool parse_quantifier(Node* atom) {
    if (at_end()) return true;
    const size_t start = pos_;
    int mn, mx;
    const char c = peek();
    if (c == '*') mn = 0, mx = kInf, ++pos_;
    else if (c == '+') mn = 1, mx = kInf, ++pos_;
    else if (c == '?') mn = 0, mx = 1, ++pos_;
    else if (c == '{') {
      if (!read_braces(&mn, &mx)) return true;  // a literal '{', read as the next atom
    } else {
      return true;
    }
    if (mx != kInf && mx < mn) return fail("numbers out of order in {} quantifier", start);
    if (mn > kMaxBound || mx > kMaxBound)
      return fail("repetition bound over " + std::to_string(kMaxBound) + " is not supported", start);
    if (peek() == '?' && !at_end()) ++pos_;  // lazy: same language
    if (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?')) return fail("nothing to repeat", pos_);
    if (!at_end() && peek() == '{') {
      const size_t save = pos_;
      int a, b;
      if (read_braces(&a, &b)) return fail("nothing to repeat", save);
    }
    Node r;
    r.kind = Node::kRep;
    r.min = mn;
    r.max = mx;
    r.kids.push_back(std::move(*atom));
    *atom = std::move(r);
    return true;
  }

  // Reads one code point of the pattern (UTF-8).
  bool read_cp(uint32_t* cp) {
    const size_t start = pos_;
    if (!decode_utf8(re_, &pos_, cp)) return fail("invalid UTF-8", start);
    return true;
  }

  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool read_hex(size_t at, int n, uint32_t* v) const {
    if (at + n > re_.size()) return false;
    uint32_t x = 0;
    for (int k = 0; k < n; ++k) {
      const int h = hexval(re_[at + k]);
      if (h < 0) return false;
      x = x * 16 + uint32_t(h);
    }
    *v = x;
    return true;
  }

  static CodePointSet digit() { return CodePointSet::of('0', '9'); }
  static CodePointSet word() {
    CodePointSet s = CodePointSet::of('0', '9');
    s.add('A', 'Z');
    s.add('a', 'z');
    s.add('_', '_');
    return s;
  }
  static CodePointSet space() {  // ECMAScript WhiteSpace + LineTerminator
    CodePointSet s = CodePointSet::of(9, 13);
    for (uint32_t c : {0x20u, 0xA0u, 0x1680u, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u, 0xFEFFu}) s.add(c, c);
    s.add(0x2000, 0x200A);
    return s;
  }

  // After a backslash (pos_ at the escaped char). Sets *set; *single is true when it is one
  // character (usable as a class range endpoint).
  bool parse_escape(bool in_class, CodePointSet* set, bool* single) {
    const size_t start = pos_ - 1;
    if (at_end()) return fail("'\\' at end of pattern", start);
    const char c = peek();
    *single = false;
    switch (c) {
      case 'd': ++pos_, *set = digit(); return true;
      case 'D': ++pos_, *set = digit().complement(); return true;
      case 'w': ++pos_, *set = word(); return true;
      case 'W': ++pos_, *set = word().complement(); return true;
      case 's': ++pos_, *set = space(); return true;
      case 'S': ++pos_, *set = space().complement(); return true;
      default: break;
    }
    *single = true;
    uint32_t cp = 0;
    switch (c) {
      case 't': cp = 9; break;
      case 'n': cp = 10; break;
      case 'v': cp = 11; break;
      case 'f': cp = 12; break;
      case 'r': cp = 13; break;
      case 'b':
        if (!in_class) return fail("word boundary '\\b' is not supported", start);
        cp = 8;
        break;
      case 'B': return fail("word boundary '\\B' is not supported", start);
      case '0':
        if (peek(1) >= '0' && peek(1) <= '9') return fail("octal escape is not supported", start);
        cp = 0;
        break;
      case 'c': {
        const char l = peek(1);
        if (!((l >= 'a' && l <= 'z') || (l >= 'A' && l <= 'Z'))) return fail("invalid escape '\\c'", start);
        ++pos_;
        cp = uint32_t(l) % 32;
        break;
      }
      case 'x': {
        uint32_t v;
        if (read_hex(pos_ + 1, 2, &v)) pos_ += 2, cp = v;
        else cp = 'x';  // Annex B identity escape
        break;
      }
      case 'u': {
        uint32_t v;
        if (peek(1) == '{') return fail("'\\u{...}' needs the u flag, which is not supported", start);
        if (!read_hex(pos_ + 1, 4, &v)) {
          cp = 'u';
          break;
        }
        pos_ += 4;
        uint32_t lo;
        if (v >= 0xD800 && v <= 0xDBFF && peek(1) == '\\' && peek(2) == 'u' && read_hex(pos_ + 3, 4, &lo) &&
            lo >= 0xDC00 && lo <= 0xDFFF) {
          pos_ += 6;
          v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (v >= 0xD800 && v <= 0xDFFF) return fail("lone surrogate escape is not supported", start);
        cp = v;
        break;
      }
      case 'k':
        if (peek(1) == '<') return fail("backreference '\\k<...>' is not supported", start);
        cp = 'k';
        break;
      case 'p':
      case 'P': return fail("Unicode property escape '\\" + std::string(1, c) + "' is not supported", start);
      default:
        if (c >= '1' && c <= '9') return fail("backreference '\\" + std::string(1, c) + "' is not supported", start);
        return read_cp(&cp) && (*set = CodePointSet::of(cp, cp), true);
    }
    ++pos_;
    *set = CodePointSet::of(cp, cp);
    return true;
  }

  bool parse_class(CodePointSet* out) {
    const size_t start = pos_ - 1;
    bool negate = false;
    if (peek() == '^' && !at_end()) negate = true, ++pos_;
    CodePointSet s;
    // One class atom: a character (single) or a set escape.
    auto atom = [&](CodePointSet* a, bool* single) {
      if (at_end()) return fail("unterminated character class", start);
      if (peek() == '\\') {
        ++pos_;
        return parse_escape(true, a, single);
      }
      uint32_t cp;
      if (!read_cp(&cp)) return false;
      *a = CodePointSet::of(cp, cp);
      *single = true;
      return true;
    };
    while (true) {
      if (at_end()) return fail("unterminated character class", start);
      if (peek() == ']') {
        ++pos_;
        break;
      }
      CodePointSet a;
      bool single;
      const size_t at = pos_;
      if (!atom(&a, &single)) return false;
      if (peek() == '-' && peek(1) != ']' && pos_ + 1 < re_.size()) {
        ++pos_;
        CodePointSet b;
        bool single_b;
        if (!atom(&b, &single_b)) return false;
        if (single && single_b) {
          const uint32_t lo = a.ranges()[0].first, hi = b.ranges()[0].first;
          if (lo > hi) return fail("range out of order in character class", at);
          s.add(lo, hi);
        } else {  // Annex B: [\d-z] is \d, '-', 'z'
          s.add(a);
          s.add('-', '-');
          s.add(b);
        }
        continue;
      }
      s.add(a);
    }
    if (negate) s = s.complement();
    if (s.empty()) return fail("empty character class matches nothing", start);
    *out = std::move(s);
    return true;
  }

  // *is_atom false: the next token is a quantifier (caller reports "nothing to repeat").
  bool parse_atom(int depth, Node* out, bool* is_atom) {
    const size_t start = pos_;
    const char c = peek();
    if (c == '*' || c == '+' || c == '?') {
      *is_atom = false;
      return true;
    }
    if (c == '{') {
      int a, b;
      const size_t save = pos_;
      if (read_braces(&a, &b)) {
        pos_ = save;
        *is_atom = false;
        return true;
      }
      ++pos_;
      *out = make_set(CodePointSet::of('{', '{'));
      return true;
    }
    if (c == '(') {
      ++pos_;
      if (peek() == '?') {
        if (peek(1) == ':') {
          pos_ += 2;
        } else if (peek(1) == '=' || peek(1) == '!') {
          return fail("lookahead is not supported", start);
        } else if (peek(1) == '<' && (peek(2) == '=' || peek(2) == '!')) {
          return fail("lookbehind is not supported", start);
        } else if (peek(1) == '<') {
          const size_t close = re_.find('>', pos_);
          if (close == std::string_view::npos) return fail("unterminated group name", start);
          pos_ = close + 1;
        } else {
          return fail("invalid group '(?" + std::string(1, peek(1)) + "'", start);
        }
      }
      std::vector<Branch> inner;
      if (!parse_alt(depth + 1, &inner)) return false;
      if (peek() != ')' || at_end()) return fail("unterminated group", start);
      ++pos_;
      *out = group_of(std::move(inner));
      return true;
    }
    if (c == '[') {
      ++pos_;
      CodePointSet s;
      if (!parse_class(&s)) return false;
      *out = make_set(std::move(s));
      return true;
    }
    if (c == '.') {
      ++pos_;
      CodePointSet lt = CodePointSet::of('\n', '\n');
      lt.add('\r', '\r');
      lt.add(0x2028, 0x2029);
      *out = make_set(lt.complement());
      return true;
    }
    if (c == '\\') {
      ++pos_;
      CodePointSet s;
      bool single;
      if (!parse_escape(false, &s, &single)) return false;
      *out = make_set(std::move(s));
      return true;
    }
    uint32_t cp;
    if (!read_cp(&cp)) return false;
    *out = make_set(CodePointSet::of(cp, cp));
    return true;
  }

  std::string_view re_;
  size_t pos_ = 0;
  std::string err_;
  size_t err_pos_ = 0;
};

// ---- emitter ------------------------------------------------------------------------------

// GBNF text plus its binding strength: 0 = atom (takes a postfix), 1 = sequence, 2 = alternation.
struct Text {
  std::string s;
  int prec = 0;
};

class Emitter {
 public:
  Emitter(const RegexOptions& opt, std::string prefix, std::vector<std::string>* rules)
      : opt_(opt), prefix_(std::move(prefix)), rules_(rules) {}

  Text emit(const Node& n) {
    switch (n.kind) {
      case Node::kSet: return emit_set(n.set);
      case Node::kSeq: return emit_seq(n.kids);
      case Node::kAlt: {
        std::vector<std::string> alts;
        bool has_empty = false;
        for (const Node& k : n.kids) {
          Text t = emit(k);
          if (t.s.empty()) has_empty = true;
          else alts.push_back(std::move(t.s));
        }
        if (alts.empty()) return {};
        std::string body = alts[0];
        for (size_t i = 1; i < alts.size(); ++i) body += " | " + alts[i];
        if (has_empty) return {"(" + body + ")?", 0};
        return {body, alts.size() > 1 ? 2 : 1};
      }
      case Node::kRep: {
        int mn = n.min, mx = n.max;
        if (mx == 0) return {};
        std::optional<Node> body = n.kids[0];
        if (nullable(*body)) {
          body = nonempty(*body);
          if (!body) return {};
          mn = 0;
        }
        Text b = emit(*body);
        if (b.s.empty()) return {};
        if (mn == 1 && mx == 1) return b;
        // "a"+* is not GBNF: a body that already ends in a postfix gets parentheses.
        const bool postfixed = std::string_view("*+?}").find(b.s.back()) != std::string_view::npos;
        std::string s = b.prec == 0 && !postfixed ? b.s : "(" + b.s + ")";
        if (mn == 0 && mx == 1) s += "?";
        else if (mn == 0 && mx == kInf) s += "*";
        else if (mn == 1 && mx == kInf) s += "+";
        else if (mx == kInf) s += "{" + std::to_string(mn) + ",}";
        else if (mn == mx) s += "{" + std::to_string(mn) + "}";
        else s += "{" + std::to_string(mn) + "," + std::to_string(mx) + "}";
        return {s, 0};
      }
    }
    return {};
  }

  Text emit_set(const CodePointSet& s) {
    if (!opt_.json_string) return {s.to_gbnf(), 0};
    if (s.size() == CodePointSet::all().size()) {  // any JSON string character: one shared rule
      const std::string name = prefix_ + "char";
      if (!char_rule_) rules_->push_back(name + " ::= " + gbnf_json_char(s)), char_rule_ = true;
      return {name, 0};
    }
    const std::string t = gbnf_json_char(s);
    return {t, t.find(" | ") != std::string::npos ? 2 : (t.find(' ') != std::string::npos ? 1 : 0)};
  }

  Text emit_seq(const std::vector<Node>& kids) {
    std::vector<std::string> parts;
    std::string lit;  // pending run of single characters, printed as one "literal"
    auto flush = [&] {
      if (!lit.empty()) parts.push_back("\"" + lit + "\""), lit.clear();
    };
    for (const Node& k : kids) {
      if (k.kind == Node::kSet && k.set.size() == 1) {
        const uint32_t c = k.set.ranges()[0].first;
        if (!opt_.json_string || (c >= 0x20 && c != '"' && c != '\\' && c != '/')) {
          lit += literal_char(c);
          continue;
        }
      }
      Text t = emit(k);
      if (t.s.empty()) continue;
      flush();
      parts.push_back(t.prec == 2 ? "(" + t.s + ")" : t.s);
    }
    flush();
    if (parts.empty()) return {};
    std::string s = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) s += " " + parts[i];
    return {s, parts.size() == 1 && s == parts[0] && s.find(' ') == std::string::npos ? 0 : 1};
  }

 private:
  RegexOptions opt_;
  std::string prefix_;
  std::vector<std::string>* rules_;
  bool char_rule_ = false;
};

}  // namespace

bool regex_to_gbnf_rule(std::string_view regex, const std::string& rule_prefix, std::vector<std::string>* rules,
                        std::string* expr, std::string* error, const RegexOptions& opt) {
  std::vector<Branch> top;
  Parser p(regex);
  if (!p.parse(&top, error)) return false;
  Node any_star;
  any_star.kind = Node::kRep;
  any_star.min = 0;
  any_star.max = kInf;
  any_star.kids.push_back(make_set(CodePointSet::all()));
  Node alt;
  alt.kind = Node::kAlt;
  for (Branch& b : top) {
    if (opt.search && (!b.anchored_start || !b.anchored_end)) {
      Node seq;
      seq.kind = Node::kSeq;
      if (!b.anchored_start) seq.kids.push_back(any_star);
      seq.kids.push_back(std::move(b.seq));
      if (!b.anchored_end) seq.kids.push_back(any_star);
      alt.kids.push_back(std::move(seq));
    } else {
      alt.kids.push_back(std::move(b.seq));
    }
  }
  Emitter em(opt, rule_prefix, rules);
  const Text t = em.emit(alt.kids.size() == 1 ? alt.kids[0] : alt);
  *expr = t.s.empty() ? "\"\"" : (t.prec == 2 ? "(" + t.s + ")" : t.s);
  return true;
}

bool regex_to_gbnf(std::string_view regex, std::string* gbnf, std::string* error) {
  std::vector<std::string> rules;
  std::string expr;
  if (!regex_to_gbnf_rule(regex, "re-", &rules, &expr, error)) return false;
  std::string g = "root ::= " + expr + "\n";
  for (const auto& r : rules) g += r + "\n";
  *gbnf = std::move(g);
  return true;
}

}  // namespace tachyon::constrain
