// Regex -> GBNF, differential against std::regex (ECMAScript, regex_match): fixed patterns
// and random ones, each checked on every string up to a small length over an alphabet
// that exercises it; the JSON-string and search modes; errors for what is unsupported.
#include <gtest/gtest.h>

#include <random>
#include <regex>

#include "constrain/grammar.h"
#include "constrain/matcher.h"
#include "constrain/regex.h"

namespace tachyon::constrain {
namespace {

std::shared_ptr<const TokenIndex> tiny_index() {
  static auto idx = std::make_shared<TokenIndex>(std::vector<std::string>{"a"}, std::vector<bool>{true},
                                                 std::vector<int32_t>{});
  return idx;
}

bool matches(const std::shared_ptr<const Grammar>& g, std::string_view text) {
  Matcher m(g, tiny_index());
  return m.accept_bytes(text) && m.is_complete();
}

std::shared_ptr<const Grammar> compile(const std::string& re) {
  std::string gbnf, err;
  EXPECT_TRUE(regex_to_gbnf(re, &gbnf, &err)) << re << ": " << err;
  auto g = parse_gbnf(gbnf, &err);
  EXPECT_TRUE(g) << re << "\n" << gbnf << "\n" << err;
  return g;
}

// All strings over `alphabet` of length <= max_len.
std::vector<std::string> all_strings(const std::string& alphabet, int max_len) {
  std::vector<std::string> out = {""};
  size_t begin = 0;
  for (int len = 1; len <= max_len; ++len) {
    const size_t end = out.size();
    for (size_t i = begin; i < end; ++i)
      for (char c : alphabet) out.push_back(out[i] + c);
    begin = end;
  }
  return out;
}

// Checks the grammar against std::regex on every string; returns the number of matches.
int differential(const std::string& re, const std::vector<std::string>& strings) {
  auto g = compile(re);
  if (!g) return -1;
  const std::regex ref(re, std::regex::ECMAScript);
  int n_match = 0, n_bad = 0;
  for (const auto& s : strings) {
    const bool want = std::regex_match(s, ref);
    n_match += want;
    if (matches(g, s) != want && ++n_bad <= 5)
      ADD_FAILURE() << "regex /" << re << "/ on \"" << s << "\": std::regex says " << want;
  }
  return n_match;
}

TEST(Regex, FixedPatternsDifferential) {
  const std::vector<std::string> strings = all_strings("ab1-.\n", 5);
  const char* patterns[] = {
      "a",          "ab|b",        "a*",           "a+b?",        "(ab)*",       "(a|b)+1",     "[ab]{2}",
      "[ab]{1,3}",  "[ab]{2,}",    "a{0}b",        "[^a]*",       ".",           ".*",          "\\.",
      "\\d+",       "\\D",         "\\w*",         "\\W+",        "\\s?a",       "\\S{2}",      "[a-b1]+",
      "[\\d.]+",    "[-a]+",       "[a-]+",        "(?:a|)b",     "(a*)*",       "(a?b?)+",     "(a|b*)*1",
      "^a$",        "^(a|b)+$",    "a|^b$",        "a{2}?",       "a+?",         "(a(b(1)?)?)?", "[^\\d\\n]+",
      "-?\\d{1,2}", "(\\.|-){2}",  "a{1,2}b{0,1}", "(|a)(b|)",    "[\\s\\S]",
      "[.]",        "a\\-b",        "\\x61\\u0062", "[\\x30-\\x31]", "(((a)))",  "a||b",
  };
  for (const char* p : patterns) {
    SCOPED_TRACE(p);
    differential(p, strings);
  }
}

// Random regexes over {a, b, 1}: atoms, classes, groups, alternation, every quantifier.
std::string random_regex(std::mt19937& rng, int depth) {
  auto pick = [&](int n) { return int(rng() % uint32_t(n)); };
  std::string out;
  const int n_items = 1 + pick(3);
  for (int i = 0; i < n_items; ++i) {
    std::string atom;
    switch (pick(depth > 2 ? 7 : 9)) {
      case 0: atom = "a"; break;
      case 1: atom = "b"; break;
      case 2: atom = "1"; break;
      case 3: atom = "."; break;
      case 4: atom = "[ab]"; break;
      case 5: atom = pick(2) ? "\\d" : "[^a]"; break;
      case 6: atom = "\\w"; break;
      case 7: atom = "(" + random_regex(rng, depth + 1) + ")"; break;
      default: atom = "(?:" + random_regex(rng, depth + 1) + "|" + random_regex(rng, depth + 1) + ")"; break;
    }
    static const char* quants[] = {"", "", "", "*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "{1,3}"};
    out += atom + quants[pick(11)];
  }
  if (depth == 0 && pick(4) == 0) out += "|" + random_regex(rng, 1);
  return out;
}

TEST(Regex, RandomPatternsDifferential) {
  const std::vector<std::string> strings = all_strings("ab1\n", 5);
  std::mt19937 rng(42);
  int total_matches = 0;
  for (int i = 0; i < 120; ++i) {
    const std::string re = random_regex(rng, 0);
    SCOPED_TRACE(re);
    total_matches += differential(re, strings);
  }
  EXPECT_GT(total_matches, 1000);  // the strings exercise both outcomes
}

// Named groups, and Annex B: a '{' that does not start a quantifier is a literal (std::regex rejects these).
TEST(Regex, LiteralBrace) {
  auto g = compile("x{");
  EXPECT_TRUE(matches(g, "x{"));
  auto n = compile("(?<n>a)b");  // a named group (std::regex has none)
  EXPECT_TRUE(matches(n, "ab"));
  EXPECT_FALSE(matches(n, "b"));
  auto h = compile("a{,2}");
  EXPECT_TRUE(matches(h, "a{,2}"));
  EXPECT_FALSE(matches(h, "aa"));
}

TEST(Regex, NonAsciiCodePoints) {
  auto g = compile("[à-ÿ]+€?.");
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, "éè€x"));
  EXPECT_TRUE(matches(g, "ü😀"));   // `.` is one code point, four bytes
  EXPECT_FALSE(matches(g, "e€x"));
  EXPECT_FALSE(matches(g, "é\n"));
  EXPECT_FALSE(matches(g, "é\xC3"));  // half a character
}

TEST(Regex, JsonStringMode) {
  std::vector<std::string> rules;
  std::string expr, err;
  RegexOptions o;
  o.json_string = true;
  ASSERT_TRUE(regex_to_gbnf_rule("a[\"\\\\/\\n]b.", "p-", &rules, &expr, &err, o)) << err;
  std::string gbnf = "root ::= \"\\\"\" " + expr + " \"\\\"\"\n";
  for (const auto& r : rules) gbnf += r + "\n";
  auto g = parse_gbnf(gbnf, &err);
  ASSERT_TRUE(g) << err << "\n" << gbnf;
  for (const char* ok : {R"("a\"bx")", R"("a\\b\t")", R"("a/b\u0001")", R"("a\/b\"")", R"("a\nb\u001F")", R"("a\u000ab.")"})
    EXPECT_TRUE(matches(g, ok)) << ok;
  for (const char* bad : {R"("a"bx")", "\"a\nbx\"", R"("a\qbx")", R"("a\nb\n")", R"("a\nb\r")", R"("axbx")"})
    EXPECT_FALSE(matches(g, bad)) << bad;
}

TEST(Regex, SearchMode) {
  std::vector<std::string> rules;
  std::string expr, err;
  RegexOptions o;
  o.search = true;
  ASSERT_TRUE(regex_to_gbnf_rule("^ab|c$|d", "s-", &rules, &expr, &err, o)) << err;
  std::string gbnf = "root ::= " + expr + "\n";
  for (const auto& r : rules) gbnf += r + "\n";
  auto g = parse_gbnf(gbnf, &err);
  ASSERT_TRUE(g) << err << "\n" << gbnf;
  const std::regex ref("^ab|c$|d", std::regex::ECMAScript);
  for (const auto& s : all_strings("abcdx", 4)) EXPECT_EQ(matches(g, s), std::regex_search(s, ref)) << s;
}

TEST(Regex, Errors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"(a)\\1", "backreference '\\1' is not supported (at offset 3)"},
      {"(?<x>a)\\k<x>", "backreference '\\k<...>' is not supported"},
      {"a(?=b)", "lookahead is not supported (at offset 1)"},
      {"a(?!b)", "lookahead is not supported"},
      {"(?<=a)b", "lookbehind is not supported"},
      {"(?<!a)b", "lookbehind is not supported"},
      {"\\bab", "word boundary '\\b' is not supported"},
      {"a^b", "anchor '^' is only supported at the start"},
      {"a$b", "anchor '$' is only supported at the end"},
      {"(^a)", "anchor '^' is only supported at the start"},
      {"(a", "unterminated group"},
      {"a)", "unmatched ')'"},
      {"[z-a]", "range out of order"},
      {"[ab", "unterminated character class"},
      {"*a", "nothing to repeat"},
      {"a**", "nothing to repeat"},
      {"a{3,2}", "numbers out of order"},
      {"a{10001}", "repetition bound over 10000"},
      {"\\p{L}", "Unicode property escape"},
      {"(?i)a", "invalid group"},
      {"[]", "empty character class"},
      {"a\\", "'\\' at end of pattern"},
  };
  for (const auto& [re, want] : cases) {
    std::string gbnf, err;
    EXPECT_FALSE(regex_to_gbnf(re, &gbnf, &err)) << re;
    EXPECT_NE(err.find(want), std::string::npos) << re << " -> " << err;
    EXPECT_EQ(err.rfind("regex: ", 0), 0u) << err;
  }
}

TEST(Regex, TextHelpers) {
  EXPECT_EQ(gbnf_literal("a\"b\\\n\x01é"), "\"a\\\"b\\\\\\n\\x01\\u00E9\"");
  CodePointSet s = CodePointSet::of('a', 'c');
  s.add('b', 'f');
  s.add('h', 'h');
  ASSERT_EQ(s.ranges().size(), 2u);
  EXPECT_EQ(s.size(), 7u);
  EXPECT_EQ(s.to_gbnf(), "[a-fh]");
  EXPECT_EQ(s.complement().to_gbnf(), "[^a-fh]");
  EXPECT_EQ(CodePointSet::all().to_gbnf(), ".");
  EXPECT_EQ(CodePointSet::of(']', ']').to_gbnf(), "\"]\"");
  EXPECT_EQ(CodePointSet::of('-', '/').to_gbnf(), "[\\x2D-/]");
}

}  // namespace
}  // namespace tachyon::constrain
