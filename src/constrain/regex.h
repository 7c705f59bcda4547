// ECMAScript-style regular expressions -> GBNF, and the small GBNF text helpers that the
// structured-output sources (json_schema.cpp, tool-call grammars) share.
//
// Contract: the GBNF produced for a regex R accepts exactly the strings that
// std::regex_match(s, std::regex(R, ECMAScript)) accepts (the whole string matches), over
// Unicode code points: the regex and the text are UTF-8, and a character class or `.`
// matches one code point (std::regex works on bytes, so the two agree on ASCII text).
//
// Supported: literals (UTF-8), escapes \d \D \w \W \s \S (\s is ECMAScript's Unicode set),
// \t \n \r \f \v \0 \cX \xHH \uHHHH and escaped punctuation (\. \* \/ ...), classes
// [a-z] [^...] (with the escapes above inside; \b in a class is backspace), `.` (any code
// point but the line terminators \n \r U+2028 U+2029), groups ( ), (?: ), (?<name> ),
// alternation, quantifiers * + ? {m} {m,} {m,n} and their lazy forms (lazy = greedy: the
// matched *language* is the same), a `{` that does not start a quantifier is a literal
// (Annex B), and ^ / $ only at the start / end of a top-level alternative.
// Errors (with the regex offset): backreferences (\1, \k<..>), lookaround ((?= (?! (?<=
// (?<!), word boundaries (\b \B), anchors elsewhere, inline flags, quantifier bounds over
// 10000 (the grammar parser's limit), malformed syntax (unbalanced parens, bad ranges,
// nothing to repeat). A nullable group under * or + is fine in the language but is emitted
// with a non-nullable body where that is easy (see regex.cpp), as `(a*)*` loops naive
// recognizers.
//
// Cost: one recursive-descent pass; output is linear in the regex size (bounded repetition
// is emitted as GBNF {m,n}, never unrolled).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tachyon::constrain {

struct RegexOptions {
  // The matched text is the *body of a JSON string*: each code point is emitted in its JSON
  // encoding (raw, or escaped where JSON requires it: `"` -> \", `\` -> \\, controls ->
  // \n \t ... or \u00XX; `/` raw or \/). Other \uXXXX spellings of ordinary characters are
  // not accepted (a grammar for every spelling would be much larger; models emit the raw form).
  bool json_string = false;
  // JSON Schema `pattern` semantics: the regex matches a *substring* (RegExp.test), so an
  // alternative without ^ gets "any characters" in front and one without $ gets them after.
  // false: whole-string match; ^ and $ at the ends are no-ops.
  bool search = false;
};

// Full grammar: `root` accepts exactly the strings the regex matches (whole-string match).
// Extra rules are named "re-*". On error returns false and sets *error, e.g.
// "regex: backreference '\1' is not supported (at offset 5)".
bool regex_to_gbnf(std::string_view regex, std::string* gbnf, std::string* error);

// For embedding: appends the helper rules it needs (each a full "name ::= body" line, names
// starting with rule_prefix) to *rules and sets *expr to a GBNF expression (no rule of its
// own) that matches the regex. rule_prefix must be a valid, unique rule-name prefix.
bool regex_to_gbnf_rule(std::string_view regex, const std::string& rule_prefix, std::vector<std::string>* rules,
                        std::string* expr, std::string* error, const RegexOptions& opt = {});

// ---- GBNF text helpers ----------------------------------------------------------------

// A set of Unicode code points as sorted, disjoint, non-adjacent inclusive ranges.
class CodePointSet {
 public:
  static constexpr uint32_t kMax = 0x10FFFF;
  CodePointSet() = default;
  static CodePointSet of(uint32_t lo, uint32_t hi);
  static CodePointSet all() { return of(0, kMax); }
  void add(uint32_t lo, uint32_t hi);
  void add(const CodePointSet& o);
  CodePointSet complement() const;
  CodePointSet intersect(const CodePointSet& o) const;
  CodePointSet minus(const CodePointSet& o) const { return intersect(o.complement()); }
  bool contains(uint32_t c) const;
  bool empty() const { return r_.empty(); }
  uint64_t size() const;
  const std::vector<std::pair<uint32_t, uint32_t>>& ranges() const { return r_; }
  // GBNF for "one code point of this set": a [class], a [^negated class] when that is
  // shorter, or `.` for the full set. Must not be empty (asserted).
  std::string to_gbnf() const;

 private:
  std::vector<std::pair<uint32_t, uint32_t>> r_;
};

// GBNF literal "..." for these UTF-8 bytes (escapes ", \, controls and non-ASCII code
// points; invalid UTF-8 bytes are emitted as \xHH). "" for the empty string.
std::string gbnf_literal(std::string_view utf8);
// The JSON encoding of one code point inside a JSON string, as a GBNF expression that
// accepts every standard spelling described in RegexOptions::json_string.
std::string gbnf_json_char(const CodePointSet& s);

}  // namespace tachyon::constrain
