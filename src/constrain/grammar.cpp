// GBNF parser and compiler; see grammar.h for the syntax and the compiled form.
#include "constrain/grammar.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

namespace tachyon::constrain {

namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kSurrogateLo = 0xD800, kSurrogateHi = 0xDFFF;

struct ParseError {
  size_t offset;
  std::string message;
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string hex_cp(uint32_t cp) {
  char buf[16];
  snprintf(buf, sizeof buf, "U+%04X", cp);
  return buf;
}

int utf8_encode(uint32_t cp, uint8_t out[4]) {
  if (cp < 0x80) {
    out[0] = static_cast<uint8_t>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
    out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
    out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
  out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  return 4;
}

using ByteSeq = std::vector<std::pair<uint8_t, uint8_t>>;  // one [lo, hi] range per byte

// Splits code points [lo, hi] (no surrogates inside) into byte-range sequences whose
// concatenation matches exactly the UTF-8 encodings of [lo, hi]. A sequence is a "box": each
// byte ranges independently, which holds once every continuation byte spans 80-BF except at
// the ends of the range, hence the splits at multiples of 64^i.
void split_utf8(uint32_t lo, uint32_t hi, std::vector<ByteSeq>* out) {
  static const uint32_t kLenMax[4] = {0x7F, 0x7FF, 0xFFFF, kMaxCodePoint};
  for (uint32_t m : kLenMax) {
    if (lo <= m && hi > m) {
      split_utf8(lo, m, out);
      split_utf8(m + 1, hi, out);
      return;
    }
  }
  if (hi <= 0x7F) {
    out->push_back({{static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)}});
    return;
  }
  uint8_t a[4], b[4];
  const int len = utf8_encode(lo, a);
  for (int i = 1; i < len; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        split_utf8(lo, lo | m, out);
        split_utf8((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        split_utf8(lo, (hi & ~m) - 1, out);
        split_utf8(hi & ~m, hi, out);
        return;
      }
    }
  }
  utf8_encode(hi, b);
  ByteSeq seq;
  for (int i = 0; i < len; ++i) seq.push_back({a[i], b[i]});
  out->push_back(std::move(seq));
}

using CpRanges = std::vector<std::pair<uint32_t, uint32_t>>;

// Sorts and merges; negates over [0, U+10FFFF]; removes the surrogates (never valid UTF-8).
CpRanges normalize_class(CpRanges r, bool negate) {
  std::sort(r.begin(), r.end());
  CpRanges merged;
  for (auto [lo, hi] : r) {
    if (!merged.empty() && lo <= merged.back().second + 1) {
      merged.back().second = std::max(merged.back().second, hi);
    } else {
      merged.push_back({lo, hi});
    }
  }
  if (negate) {
    CpRanges neg;
    uint32_t next = 0;
    for (auto [lo, hi] : merged) {
      if (lo > next) neg.push_back({next, lo - 1});
      next = hi + 1;
    }
    if (next <= kMaxCodePoint) neg.push_back({next, kMaxCodePoint});
    merged = std::move(neg);
  }
  CpRanges out;
  for (auto [lo, hi] : merged) {
    if (hi < kSurrogateLo || lo > kSurrogateHi) {
      out.push_back({lo, hi});
      continue;
    }
    if (lo < kSurrogateLo) out.push_back({lo, kSurrogateLo - 1});
    if (hi > kSurrogateHi) out.push_back({kSurrogateHi + 1, hi});
  }
  return out;
}

GrammarElem bytes_elem(uint8_t lo, uint8_t hi) {
  GrammarElem e;
  e.kind = GrammarElem::kBytes;
  e.lo = lo;
  e.hi = hi;
  return e;
}

GrammarElem rule_elem(uint32_t rule) {
  GrammarElem e;
  e.kind = GrammarElem::kRule;
  e.rule = rule;
  return e;
}

}  // namespace

// Rules under construction, before flattening into Grammar::elems_.
class GrammarBuilder {
 public:
  using Seq = std::vector<GrammarElem>;
  struct Rule {
    std::string name;
    std::vector<Seq> alts;
    bool defined = false;
    size_t def_offset = 0;        // where the defining rule (or its user rule) starts
    size_t first_use = 0;         // first reference, for "undefined rule"
    uint32_t origin = 0;          // the user rule this one was generated for (itself if user)
  };

  explicit GrammarBuilder(std::string_view text) : t_(text) {}

  std::shared_ptr<const Grammar> build(std::string_view root_name) {
    parse_grammar();
    for (const Rule& r : rules_) {
      if (!r.defined) throw ParseError{r.first_use, "undefined rule '" + r.name + "'"};
    }
    auto it = by_name_.find(std::string(root_name));
    if (it == by_name_.end()) throw ParseError{0, "root rule '" + std::string(root_name) + "' is not defined"};
    const uint32_t root = it->second;
    prune_unproductive(root);
    check_left_recursion();
    return flatten(root);
  }

 private:
  // ---------------------------------------------------------------- lexing
  [[noreturn]] void fail(size_t off, std::string msg) { throw ParseError{off, std::move(msg)}; }
  bool at_end() const { return pos_ >= t_.size(); }
  char peek() const { return at_end() ? '\0' : t_[pos_]; }

  void skip_space(bool newline_ok) {
    while (!at_end()) {
      const char c = t_[pos_];
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && t_[pos_] != '\n' && t_[pos_] != '\r') ++pos_;
      } else if ((c == '\n' || c == '\r') && newline_ok) {
        ++pos_;
      } else {
        break;
      }
    }
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (!at_end() && is_name_char(t_[pos_])) ++pos_;
    if (pos_ == start) fail(pos_, "expecting a rule name");
    return std::string(t_.substr(start, pos_ - start));
  }

  uint32_t decode_utf8() {
    const auto* s = reinterpret_cast<const uint8_t*>(t_.data());
    const size_t n = t_.size();
    const size_t start = pos_;
    const uint8_t c = s[pos_];
    int len;
    uint32_t cp, min;
    if (c < 0x80) {
      ++pos_;
      return c;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      fail(start, "invalid UTF-8 in grammar text");
    }
    if (start + len > n) fail(start, "invalid UTF-8 in grammar text");
    for (int i = 1; i < len; ++i) {
      if ((s[start + i] & 0xC0) != 0x80) fail(start, "invalid UTF-8 in grammar text");
      cp = (cp << 6) | (s[start + i] & 0x3F);
    }
    if (cp < min || cp > kMaxCodePoint || (cp >= kSurrogateLo && cp <= kSurrogateHi)) {
      fail(start, "invalid UTF-8 in grammar text");
    }
    pos_ += len;
    return cp;
  }

  uint32_t parse_hex(size_t esc_off, int digits, char kind) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = peek();
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else fail(esc_off, "expecting " + std::to_string(digits) + " hex digits after \\" + kind);
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  // One code point of a literal or class, with escapes.
  uint32_t parse_char() {
    if (t_[pos_] != '\\') return decode_utf8();
    const size_t esc = pos_;
    ++pos_;
    if (at_end()) fail(esc, "unterminated escape");
    const char c = t_[pos_++];
    uint32_t cp;
    switch (c) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/': return c;
      case 'x': cp = parse_hex(esc, 2, c); break;
      case 'u': cp = parse_hex(esc, 4, c); break;
      case 'U': cp = parse_hex(esc, 8, c); break;
      default: fail(esc, std::string("unknown escape '\\") + c + "'");
    }
    if (cp > kMaxCodePoint) fail(esc, "code point " + hex_cp(cp) + " is beyond U+10FFFF");
    if (cp >= kSurrogateLo && cp <= kSurrogateHi) fail(esc, "code point " + hex_cp(cp) + " is a surrogate");
    return cp;
  }

  // ---------------------------------------------------------------- rules
  uint32_t new_rule(uint32_t origin) {
    Rule r;
    r.name = rules_[origin].name + "_" + std::to_string(++n_generated_[origin]);
    r.defined = true;
    r.def_offset = rules_[origin].def_offset;
    r.origin = origin;
    rules_.push_back(std::move(r));
    n_generated_.push_back(0);
    return static_cast<uint32_t>(rules_.size() - 1);
  }

  uint32_t symbol(const std::string& name, size_t use_off) {
    auto [it, inserted] = by_name_.try_emplace(name, static_cast<uint32_t>(rules_.size()));
    if (inserted) {
      Rule r;
      r.name = name;
      r.first_use = use_off;
      r.origin = it->second;
      rules_.push_back(std::move(r));
      n_generated_.push_back(0);
    }
    return it->second;
  }

  void count_elems(size_t n) {
    n_elems_ += n;
    if (n_elems_ > Grammar::kMaxElems) fail(pos_, "grammar too large after expanding repetitions");
  }

  // ---------------------------------------------------------------- grammar
  void parse_grammar() {
    if (t_.size() > Grammar::kMaxTextBytes) fail(0, "grammar text exceeds 1 MiB");
    skip_space(true);
    if (at_end()) fail(0, "grammar is empty (no rules)");
    while (!at_end()) {
      const size_t name_off = pos_;
      const std::string name = parse_name();
      skip_space(false);
      if (t_.substr(pos_, 3) != "::=") fail(pos_, "expecting '::=' after rule name '" + name + "'");
      pos_ += 3;
      const uint32_t id = symbol(name, name_off);
      if (rules_[id].defined) fail(name_off, "rule '" + name + "' is defined twice");
      if (++n_user_rules_ > Grammar::kMaxRules) fail(name_off, "too many rules (limit 10000)");
      rules_[id].defined = true;
      rules_[id].def_offset = name_off;
      skip_space(true);
      auto alts = parse_alternates(id, false);
      rules_[id].alts = std::move(alts);
      if (!at_end() && peek() != '\n' && peek() != '\r') {
        fail(pos_, std::string("expecting newline or end of input, got '") + peek() + "'");
      }
      skip_space(true);
    }
  }

  std::vector<Seq> parse_alternates(uint32_t owner, bool nested) {
    std::vector<Seq> alts;
    alts.push_back(parse_sequence(owner, nested));
    for (;;) {
      if (peek() == '|') {
        ++pos_;
        skip_space(true);
        alts.push_back(parse_sequence(owner, nested));
        continue;
      }
      if (!nested && (peek() == '\n' || peek() == '\r')) {  // a next line starting with '|'
        const size_t save = pos_;
        skip_space(true);
        if (peek() == '|') continue;
        pos_ = save;
      }
      break;
    }
    return alts;
  }

  Seq parse_sequence(uint32_t owner, bool nested) {
    Seq seq;
    long last = -1;  // where the last item starts in seq, for postfix operators
    while (!at_end()) {
      const char c = peek();
      if (c == '"') {
        last = static_cast<long>(seq.size());
        parse_literal(&seq);
      } else if (c == '[') {
        last = static_cast<long>(seq.size());
        const size_t open = pos_;
        bool negate = false;
        CpRanges r = parse_class(&negate);
        add_class(owner, open, normalize_class(std::move(r), negate), &seq);
      } else if (c == '.') {
        last = static_cast<long>(seq.size());
        add_class(owner, pos_, normalize_class({{0, kMaxCodePoint}}, false), &seq);
        ++pos_;
      } else if (c == '(') {
        const size_t open = pos_;
        ++pos_;
        skip_space(true);
        auto alts = parse_alternates(owner, true);
        if (peek() != ')') fail(pos_, "expecting ')' to close the group at " + line_col(open));
        ++pos_;
        last = static_cast<long>(seq.size());
        if (alts.size() == 1) {  // a plain group needs no rule
          seq.insert(seq.end(), alts[0].begin(), alts[0].end());
        } else {
          const uint32_t r = new_rule(owner);
          rules_[r].alts = std::move(alts);
          seq.push_back(rule_elem(r));
        }
      } else if (is_name_char(c)) {
        const size_t off = pos_;
        const std::string name = parse_name();
        last = static_cast<long>(seq.size());
        seq.push_back(rule_elem(symbol(name, off)));
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (last < 0) fail(pos_, std::string("'") + c + "' has no preceding item to repeat");
        parse_postfix(owner, last, &seq);
      } else {
        break;
      }
      skip_space(nested);
    }
    count_elems(seq.size() + 1);
    return seq;
  }

  void parse_literal(Seq* seq) {
    const size_t open = pos_;
    ++pos_;
    for (;;) {
      if (at_end() || peek() == '\n' || peek() == '\r') fail(open, "unterminated string literal");
      if (peek() == '"') break;
      uint8_t b[4];
      const int n = utf8_encode(parse_char(), b);
      for (int i = 0; i < n; ++i) seq->push_back(bytes_elem(b[i], b[i]));
    }
    ++pos_;
  }

  CpRanges parse_class(bool* negate) {
    const size_t open = pos_;
    ++pos_;
    if (peek() == '^') {
      *negate = true;
      ++pos_;
    }
    CpRanges r;
    for (;;) {
      if (at_end()) fail(open, "unterminated character class");
      if (peek() == ']') break;
      const size_t item = pos_;
      const uint32_t lo = parse_char();
      uint32_t hi = lo;
      if (peek() == '-' && pos_ + 1 < t_.size() && t_[pos_ + 1] != ']') {
        ++pos_;
        hi = parse_char();
        if (hi < lo) fail(item, "reversed range " + hex_cp(lo) + "-" + hex_cp(hi) + " in character class");
      }
      r.push_back({lo, hi});
    }
    ++pos_;
    if (r.empty() && !*negate) fail(open, "empty character class");
    return r;
  }

  void add_class(uint32_t owner, size_t off, const CpRanges& r, Seq* seq) {
    if (r.empty()) fail(off, "character class matches no character");
    if (r.size() == 1 && r[0].second < 0x80) {
      seq->push_back(bytes_elem(static_cast<uint8_t>(r[0].first), static_cast<uint8_t>(r[0].second)));
      return;
    }
    auto it = class_rules_.find(r);
    if (it == class_rules_.end()) {
      const uint32_t id = new_rule(owner);
      std::vector<ByteSeq> seqs;
      for (auto [lo, hi] : r) split_utf8(lo, hi, &seqs);
      for (const ByteSeq& bs : seqs) {
        Seq alt;
        for (auto [lo, hi] : bs) alt.push_back(bytes_elem(lo, hi));
        count_elems(alt.size() + 1);
        rules_[id].alts.push_back(std::move(alt));
      }
      it = class_rules_.emplace(r, id).first;
    }
    seq->push_back(rule_elem(it->second));
  }

  int parse_bound(size_t open) {
    if (!(peek() >= '0' && peek() <= '9')) fail(pos_, "expecting a number in repetition bounds");
    long v = 0;
    while (peek() >= '0' && peek() <= '9') {
      v = v * 10 + (peek() - '0');
      if (v > Grammar::kMaxRepeat) fail(open, "repetition bound exceeds the limit of 10000");
      ++pos_;
    }
    return static_cast<int>(v);
  }

  void parse_postfix(uint32_t owner, long last, Seq* seq) {
    const size_t op = pos_;
    int min = 0, max = -1;  // -1: unbounded
    switch (peek()) {
      case '*': ++pos_; break;
      case '+': ++pos_, min = 1; break;
      case '?': ++pos_, max = 1; break;
      default: {  // {m} {m,} {m,n}
        ++pos_;
        skip_space(false);
        min = max = parse_bound(op);
        skip_space(false);
        if (peek() == ',') {
          ++pos_;
          skip_space(false);
          max = (peek() == '}') ? -1 : parse_bound(op);
          skip_space(false);
        }
        if (peek() != '}') fail(pos_, "expecting '}' to close repetition bounds");
        ++pos_;
        if (max >= 0 && max < min) {
          fail(op, "repetition bounds {" + std::to_string(min) + "," + std::to_string(max) + "} have max < min");
        }
      }
    }
    Seq item(seq->begin() + last, seq->end());
    seq->resize(last);
    if (item.empty()) return;  // ""* is ""
    if (item.size() > 1 && !(min == 1 && max == 1)) {  // repeat one reference, not a copy
      const uint32_t r = new_rule(owner);
      rules_[r].alts.push_back(item);
      item = {rule_elem(r)};
    }
    count_elems(static_cast<size_t>(min) + (max < 0 ? 3 : 3 * static_cast<size_t>(max - min)));
    for (int i = 0; i < min; ++i) seq->push_back(item[0]);
    if (item.size() > 1) seq->insert(seq->end(), item.begin() + 1, item.end());  // only {1,1}
    if (max < 0) {  // r ::= item r | ""
      const uint32_t r = new_rule(owner);
      Seq alt = item;
      alt.push_back(rule_elem(r));
      rules_[r].alts = {std::move(alt), Seq{}};
      seq->push_back(rule_elem(r));
    } else if (max > min) {  // o_k ::= item o_(k-1) | "", o_1 ::= item | ""
      uint32_t prev = 0;
      for (int k = 1; k <= max - min; ++k) {
        const uint32_t r = new_rule(owner);
        Seq alt = item;
        if (k > 1) alt.push_back(rule_elem(prev));
        rules_[r].alts = {std::move(alt), Seq{}};
        prev = r;
      }
      seq->push_back(rule_elem(prev));
    }
  }

  // ---------------------------------------------------------------- analysis
  std::string line_col(size_t off) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < off && i < t_.size(); ++i) {
      if (t_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return std::to_string(line) + ":" + std::to_string(col);
  }

 public:
  std::string format(const ParseError& e) const { return line_col(e.offset) + ": " + e.message; }

 private:
  // Least fixpoint over alternatives: an alternative "holds" once each of its elements does
  // (a byte element holds iff bytes_hold). Returns which rules hold. Linear: every alternative
  // keeps a count of elements still pending.
  std::vector<bool> fixpoint(bool bytes_hold) const {
    const size_t n = rules_.size();
    std::vector<bool> holds(n, false);
    std::vector<std::vector<std::pair<uint32_t, uint32_t>>> users(n);  // rule -> (rule, alt)
    std::vector<std::vector<uint32_t>> pending(n);
    std::vector<uint32_t> queue;
    for (uint32_t r = 0; r < n; ++r) {
      pending[r].resize(rules_[r].alts.size());
      for (uint32_t a = 0; a < rules_[r].alts.size(); ++a) {
        uint32_t p = 0;
        for (const GrammarElem& e : rules_[r].alts[a]) {
          if (e.kind == GrammarElem::kRule) {
            users[e.rule].push_back({r, a});
            ++p;
          } else if (!bytes_hold) {
            p = 1u << 31;  // never holds
          }
        }
        pending[r][a] = p;
        if (p == 0 && !holds[r]) {
          holds[r] = true;
          queue.push_back(r);
        }
      }
    }
    while (!queue.empty()) {
      const uint32_t t = queue.back();
      queue.pop_back();
      for (auto [r, a] : users[t]) {
        if (--pending[r][a] == 0 && !holds[r]) {
          holds[r] = true;
          queue.push_back(r);
        }
      }
    }
    return holds;
  }

  void prune_unproductive(uint32_t root) {
    const std::vector<bool> productive = fixpoint(true);
    if (!productive[root]) {
      fail(rules_[root].def_offset, "the grammar matches no string: rule '" + rules_[root].name +
                                        "' can never finish (every alternative recurses forever)");
    }
    for (Rule& r : rules_) {
      std::erase_if(r.alts, [&](const Seq& s) {
        return std::any_of(s.begin(), s.end(),
                           [&](const GrammarElem& e) { return e.kind == GrammarElem::kRule && !productive[e.rule]; });
      });
    }
  }

  // Left calls: A -> B when B can be called from A before any byte is consumed. A cycle
  // through a call that is not last in its alternative makes the recognizer's stacks grow
  // forever; a cycle of only last-position calls is harmless (the matcher replaces such
  // calls by a jump and dedupes).
  void check_left_recursion() {
    const std::vector<bool> nullable = fixpoint(false);
    const uint32_t n = static_cast<uint32_t>(rules_.size());
    struct Edge {
      uint32_t to;
      bool tail;
    };
    std::vector<std::vector<Edge>> g(n);
    for (uint32_t r = 0; r < n; ++r) {
      for (const Seq& s : rules_[r].alts) {
        for (size_t i = 0; i < s.size(); ++i) {
          if (s[i].kind != GrammarElem::kRule) break;
          g[r].push_back({s[i].rule, i + 1 == s.size()});
          if (!nullable[s[i].rule]) break;
        }
      }
    }
    // Tarjan's SCC, iterative (generated rule chains can be 10^4 deep).
    std::vector<int> index(n, -1), low(n, 0), comp(n, -1);
    std::vector<bool> on_stack(n, false);
    std::vector<uint32_t> stack;
    std::vector<std::pair<uint32_t, size_t>> call;  // (node, next edge)
    int counter = 0, n_comp = 0;
    for (uint32_t s = 0; s < n; ++s) {
      if (index[s] >= 0) continue;
      call.push_back({s, 0});
      while (!call.empty()) {
        auto& [v, ei] = call.back();
        if (ei == 0 && index[v] < 0) {
          index[v] = low[v] = counter++;
          stack.push_back(v);
          on_stack[v] = true;
        }
        if (ei < g[v].size()) {
          const uint32_t w = g[v][ei++].to;
          if (index[w] < 0) {
            call.push_back({w, 0});
          } else if (on_stack[w]) {
            low[v] = std::min(low[v], index[w]);
          }
          continue;
        }
        if (low[v] == index[v]) {
          uint32_t w;
          do {
            w = stack.back();
            stack.pop_back();
            on_stack[w] = false;
            comp[w] = n_comp;
          } while (w != v);
          ++n_comp;
        }
        const uint32_t done = v;
        call.pop_back();
        if (!call.empty()) low[call.back().first] = std::min(low[call.back().first], low[done]);
      }
    }
    for (uint32_t r = 0; r < n; ++r) {
      for (const Edge& e : g[r]) {
        if (!e.tail && comp[e.to] == comp[r]) {
          const Rule& user = rules_[rules_[r].origin];
          fail(user.def_offset, "left recursion: rule '" + user.name +
                                    "' can reach itself without consuming input (via '" + rules_[e.to].name + "')");
        }
      }
    }
  }

  std::shared_ptr<const Grammar> flatten(uint32_t root) {
    auto g = std::make_shared<Grammar>();
    g->alts_.resize(rules_.size());
    g->names_.resize(rules_.size());
    for (uint32_t r = 0; r < rules_.size(); ++r) {
      g->names_[r] = rules_[r].name;
      for (const Seq& s : rules_[r].alts) {
        g->alts_[r].push_back(static_cast<uint32_t>(g->elems_.size()));
        g->elems_.insert(g->elems_.end(), s.begin(), s.end());
        g->elems_.push_back(GrammarElem{});
      }
    }
    g->root_ = root;
    g->compute_min_rest();
    return g;
  }

  std::string_view t_;
  size_t pos_ = 0;
  std::vector<Rule> rules_;
  std::vector<int> n_generated_;  // per rule: helper rules generated for it so far
  std::map<std::string, uint32_t> by_name_;
  std::map<CpRanges, uint32_t> class_rules_;
  int n_user_rules_ = 0;
  size_t n_elems_ = 0;
};

std::shared_ptr<const Grammar> parse_gbnf(std::string_view text, std::string* error, std::string_view root) {
  GrammarBuilder b(text);
  try {
    auto g = b.build(root);
    if (error) error->clear();
    return g;
  } catch (const ParseError& e) {
    if (error) *error = b.format(e);
    return nullptr;
  }
}

// Fewest bytes that complete each rule (a fixpoint: a rule's minimum is its cheapest
// alternative's; rules that can never finish were pruned, so every one converges), then
// for every position the fewest bytes to the end of its alternative.
void Grammar::compute_min_rest() {
  constexpr uint32_t kInf = UINT32_MAX / 4;
  std::vector<uint32_t> rule_min(alts_.size(), kInf);
  auto alt_cost = [&](uint32_t pos) {
    uint64_t c = 0;
    for (; elems_[pos].kind != GrammarElem::kEnd; ++pos)
      c += elems_[pos].kind == GrammarElem::kBytes ? 1 : rule_min[elems_[pos].rule];
    return static_cast<uint32_t>(std::min<uint64_t>(c, kInf));
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (uint32_t r = 0; r < alts_.size(); ++r)
      for (uint32_t a : alts_[r]) {
        const uint32_t c = alt_cost(a);
        if (c < rule_min[r]) {
          rule_min[r] = c;
          changed = true;
        }
      }
  }
  min_rest_.assign(elems_.size(), 0);
  for (uint32_t r = 0; r < alts_.size(); ++r)
    for (uint32_t a : alts_[r]) {
      uint32_t end = a;
      while (elems_[end].kind != GrammarElem::kEnd) ++end;
      uint64_t c = 0;
      for (uint32_t p = end; p-- > a;) {
        c += elems_[p].kind == GrammarElem::kBytes ? 1 : rule_min[elems_[p].rule];
        min_rest_[p] = static_cast<uint32_t>(std::min<uint64_t>(c, kInf));
      }
    }
}

std::string Grammar::dump() const {
  std::string out;
  char buf[16];
  for (uint32_t r = 0; r < n_rules(); ++r) {
    out += names_[r] + " ::=";
    for (size_t a = 0; a < alts_[r].size(); ++a) {
      if (a > 0) out += " |";
      uint32_t p = alts_[r][a];
      if (elems_[p].kind == GrammarElem::kEnd) out += " \"\"";
      for (; elems_[p].kind != GrammarElem::kEnd; ++p) {
        const GrammarElem& e = elems_[p];
        if (e.kind == GrammarElem::kRule) {
          out += " " + names_[e.rule];
        } else if (e.lo == e.hi) {
          snprintf(buf, sizeof buf, " [%02X]", e.lo);
          out += buf;
        } else {
          snprintf(buf, sizeof buf, " [%02X-%02X]", e.lo, e.hi);
          out += buf;
        }
      }
    }
    out += "\n";
  }
  return out;
}

// ---------------------------------------------------------------- mask cache

size_t Grammar::KeyHash::operator()(const std::vector<uint32_t>& k) const {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ k.size();
  for (uint32_t v : k) h = (h ^ v) * 0x100000001B3ull + (h >> 29);
  return static_cast<size_t>(h);
}

namespace {
std::vector<uint32_t> full_key(uint64_t vocab_hash, const std::vector<uint32_t>& state_key) {
  std::vector<uint32_t> k;
  k.reserve(state_key.size() + 2);
  k.push_back(static_cast<uint32_t>(vocab_hash));
  k.push_back(static_cast<uint32_t>(vocab_hash >> 32));
  k.insert(k.end(), state_key.begin(), state_key.end());
  return k;
}
}  // namespace

std::shared_ptr<const Grammar::Mask> Grammar::find_mask(uint64_t vocab_hash, const std::vector<uint32_t>& state_key) const {
  const std::vector<uint32_t> k = full_key(vocab_hash, state_key);
  std::lock_guard<std::mutex> lock(cache_mu_);
  auto it = cache_.map.find(k);
  return it == cache_.map.end() ? nullptr : it->second;
}

void Grammar::store_mask(uint64_t vocab_hash, const std::vector<uint32_t>& state_key, std::shared_ptr<const Mask> mask) const {
  std::vector<uint32_t> k = full_key(vocab_hash, state_key);
  const size_t bytes = mask->size() * 4 + k.size() * 8;
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (bytes > kMaskCacheBytes || cache_.map.count(k)) return;
  while (cache_.bytes + bytes > kMaskCacheBytes && !cache_.order.empty()) {
    auto it = cache_.map.find(cache_.order.front());
    cache_.bytes -= it->second->size() * 4 + it->first.size() * 8;
    cache_.map.erase(it);
    cache_.order.pop_front();
  }
  cache_.order.push_back(k);
  cache_.map.emplace(std::move(k), std::move(mask));
  cache_.bytes += bytes;
}

}  // namespace tachyon::constrain
