// GBNF text -> a compiled grammar over BYTES, the input of the constraint matcher.
//
// Syntax (llama.cpp's GBNF):
//
//   rule-name ::= alternative | alternative ...     # a comment runs to the end of the line
//
//   "literal"         escapes \n \t \r \\ \" \' \[ \] \- \^ \/ \xHH \uHHHH \UHHHHHHHH (all
//                     name code points; \xFF is U+00FF, encoded as UTF-8 like the rest)
//   [a-z0-9_]         a character class over code points: ranges, ^ negation, the escapes above
//   .                 any code point
//   name              a reference to a rule; names are [a-zA-Z0-9_-]+
//   ( ... )           a group of alternatives
//   x* x+ x?          postfix repetition; x{m} x{m,} x{m,n} with m, n <= 10000
//
// A rule ends at the end of its line, except inside parentheses, after `::=` and after `|`; a
// line that starts with `|` also continues the previous rule (an extension of llama.cpp's
// syntax). Grammar text is UTF-8.
//
// Compilation: literals and classes become byte-level elements. A class over code points is
// split into alternatives of byte ranges along UTF-8's encoding (e.g. U+0080..U+07FF ->
// [C2-DF][80-BF]), so the matcher works byte by byte, tokens that end in the middle of a
// character work, and invalid UTF-8 (overlongs, surrogates, > U+10FFFF) never matches `.` or a
// class. Groups, classes and repetitions become generated helper rules. Rules that derive no
// finite string are pruned (their language is empty), so every live prefix can be completed.
//
// Errors (the `error` string of parse_gbnf) start with "line:column: " of the offending text,
// e.g. "3:10: undefined rule 'valeu'". Rejected: syntax errors, undefined and duplicated rules,
// a missing root rule, left recursion that would loop the recognizer (a rule that can reach
// itself without consuming a byte through a call that is not the last element of its
// alternative: `a ::= a "x"` is rejected, while `(x?)*` and `a ::= b`, `b ::= a | "x"` are
// fine), a grammar that matches no string, an empty grammar text, text > 1 MiB, > 10000 rules,
// repetition bounds > 10000, and grammars > 16M elements after expanding repetitions.
//
// Ambiguity is allowed but costs: the matcher keeps one stack per live derivation, so e.g.
// ("a"{0,n}){2} has O(k) stacks after k bytes. Write unambiguous grammars where it matters.
//
// Thread safety: a Grammar is immutable after parse_gbnf except for the mask cache, which has
// its own mutex; share one std::shared_ptr<const Grammar> between any number of requests.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tachyon::constrain {

class Grammar;

// Parses `text` and compiles the rule named `root`. On error returns nullptr and, if `error`
// is non-null, stores "line:col: problem" there. Cost: linear in the text plus the expanded
// repetitions; ~1 ms for a typical JSON-schema grammar.
std::shared_ptr<const Grammar> parse_gbnf(std::string_view text, std::string* error,
                                          std::string_view root = "root");

// One element of an alternative. An alternative is a run of elements in Grammar::elems()
// that ends with a kEnd element.
struct GrammarElem {
  enum Kind : uint8_t { kEnd = 0, kBytes = 1, kRule = 2 };
  Kind kind = kEnd;
  uint8_t lo = 0, hi = 0;  // kBytes: one byte in [lo, hi]
  uint32_t rule = 0;       // kRule: the rule to match
};

class Grammar {
 public:
  static constexpr size_t kMaxTextBytes = 1 << 20;
  static constexpr int kMaxRules = 10000;  // rules defined in the text
  static constexpr int kMaxRepeat = 10000;
  static constexpr size_t kMaxElems = 1 << 24;

  // The compiled grammar (read-only; the matcher and tests walk it).
  const std::vector<GrammarElem>& elems() const { return elems_; }
  // alternatives(r): the positions in elems() where rule r's alternatives start.
  const std::vector<uint32_t>& alternatives(uint32_t rule) const { return alts_[rule]; }
  uint32_t n_rules() const { return static_cast<uint32_t>(alts_.size()); }
  uint32_t root_rule() const { return root_; }
  // The rule's name; generated rules are named after the rule they were written in, e.g.
  // "object_3".
  const std::string& rule_name(uint32_t rule) const { return names_[rule]; }
  // The fewest bytes from position pos (inclusive) to the end of its alternative, with
  // each rule it calls completed the shortest way (kEnd positions: 0).
  uint32_t min_rest(uint32_t pos) const { return min_rest_[pos]; }
  // One line per rule, e.g. `ws_2 ::= [20] ws_2 | ""`, for debugging.
  std::string dump() const;

  // ---- shared mask cache (used by Matcher) ----
  // Keyed by (vocabulary hash, canonical recognizer state); values are token bitsets. Bounded
  // by kMaskCacheBytes; the oldest entry goes first. Thread-safe (one mutex, held only for the
  // lookup/insert, never during a mask computation).
  using Mask = std::vector<uint32_t>;
  static constexpr size_t kMaskCacheBytes = 64u << 20;
  std::shared_ptr<const Mask> find_mask(uint64_t vocab_hash, const std::vector<uint32_t>& state_key) const;
  void store_mask(uint64_t vocab_hash, const std::vector<uint32_t>& state_key, std::shared_ptr<const Mask> mask) const;

 private:
  friend std::shared_ptr<const Grammar> parse_gbnf(std::string_view, std::string*, std::string_view);
  friend class GrammarBuilder;

  std::vector<GrammarElem> elems_;
  std::vector<std::vector<uint32_t>> alts_;  // [n_rules] alternative start positions
  std::vector<std::string> names_;           // [n_rules]
  std::vector<uint32_t> min_rest_;           // [elems] see min_rest()
  uint32_t root_ = 0;
  void compute_min_rest();

  struct KeyHash {
    size_t operator()(const std::vector<uint32_t>& k) const;
  };
  struct CacheShard {
    std::unordered_map<std::vector<uint32_t>, std::shared_ptr<const Mask>, KeyHash> map;
    std::deque<std::vector<uint32_t>> order;  // insertion order, for eviction
    size_t bytes = 0;
  };
  mutable std::mutex cache_mu_;
  mutable CacheShard cache_;  // key = [vocab hash lo, hi, state key...]
};

}  // namespace tachyon::constrain
