// GBNF parsing and compilation: error messages, escapes, classes (incl. non-ASCII and
// negated, checked code point by code point against a predicate), repetition bounds, groups,
// recursion, left recursion, limits.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "constrain/grammar.h"
#include "constrain/matcher.h"

namespace tachyon::constrain {
namespace {

std::shared_ptr<const TokenIndex> byte_vocab() {
  static auto idx = [] {
    std::vector<std::string> v;
    for (int b = 0; b < 256; ++b) v.push_back(std::string(1, static_cast<char>(b)));
    return std::make_shared<const TokenIndex>(v, std::vector<bool>{}, std::vector<int32_t>{});
  }();
  return idx;
}

std::shared_ptr<const Grammar> must_parse(const std::string& text) {
  std::string err;
  auto g = parse_gbnf(text, &err);
  EXPECT_TRUE(g) << text << "\n-> " << err;
  return g;
}

// Full match.
bool matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  Matcher m(g, byte_vocab());
  return m.accept_bytes(s) && m.is_complete();
}

// s is a prefix of some sentence.
bool viable(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  Matcher m(g, byte_vocab());
  return m.accept_bytes(s);
}

std::string parse_error(const std::string& text, std::string_view root = "root") {
  std::string err;
  auto g = parse_gbnf(text, &err, root);
  EXPECT_FALSE(g) << text;
  return err;
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

TEST(GbnfErrors, MessagesNameLineColumnAndProblem) {
  struct Case {
    std::string text, error;
  };
  const std::vector<Case> cases = {
      {"", "1:1: grammar is empty (no rules)"},
      {"  # only a comment\n\n", "1:1: grammar is empty (no rules)"},
      {"root = \"a\"", "1:6: expecting '::=' after rule name 'root'"},
      {"root ::= \"a\"\n::= \"b\"", "2:1: expecting a rule name"},
      {"root ::= \"abc", "1:10: unterminated string literal"},
      {"root ::= \"ab\ncd\"", "1:10: unterminated string literal"},
      {"root ::= [abc", "1:10: unterminated character class"},
      {"root ::= []", "1:10: empty character class"},
      {"root ::= [z-a]", "1:11: reversed range U+007A-U+0061 in character class"},
      {"root ::= \"\\q\"", "1:11: unknown escape '\\q'"},
      {"root ::= \"\\x4\"", "1:11: expecting 2 hex digits after \\x"},
      {"root ::= \"\\uD800\"", "1:11: code point U+D800 is a surrogate"},
      {"root ::= \"\\U00110000\"", "1:11: code point U+110000 is beyond U+10FFFF"},
      {"root ::= ( \"a\" | \"b\"", "1:21: expecting ')' to close the group at 1:10"},
      {"root ::= \"a\" )", "1:14: expecting newline or end of input, got ')'"},
      {"root ::= * \"a\"", "1:10: '*' has no preceding item to repeat"},
      {"root ::= \"a\"{3,2}", "1:13: repetition bounds {3,2} have max < min"},
      {"root ::= \"a\"{10001}", "1:13: repetition bound exceeds the limit of 10000"},
      {"root ::= \"a\"{2,x}", "1:16: expecting a number in repetition bounds"},
      {"root ::= \"a\"{2", "1:15: expecting '}' to close repetition bounds"},
      {"root ::= value\nvalue ::= \"x\" valeu", "2:15: undefined rule 'valeu'"},
      {"root ::= \"a\"\nroot ::= \"b\"", "2:1: rule 'root' is defined twice"},
      {"main ::= \"a\"", "1:1: root rule 'root' is not defined"},
      {"root ::= \"a\" root", "1:1: the grammar matches no string: rule 'root' can never finish"},
      {"root ::= root \"a\" | \"b\"", "1:1: left recursion: rule 'root' can reach itself without consuming input"},
      {"root ::= a\na ::= b \"x\"\nb ::= a \"y\" | \"z\"", "2:1: left recursion: rule 'a'"},
      {"root ::= n root \"x\" | \"y\"\nn ::= \"\" | \"q\"", "1:1: left recursion: rule 'root'"},
      {"root ::= (\"\"? root \"x\")? \"y\"", "1:1: left recursion: rule 'root'"},
      {"root ::= \"\xC3\"", "1:11: invalid UTF-8 in grammar text"},
  };
  for (const Case& c : cases) {
    const std::string err = parse_error(c.text);
    EXPECT_EQ(err.rfind(c.error, 0), 0u) << "grammar: " << c.text << "\n  got: " << err << "\n want: " << c.error;
  }
}

TEST(GbnfErrors, Limits) {
  std::string big = "root ::= \"a\"\n# " + std::string(Grammar::kMaxTextBytes, 'x');
  EXPECT_EQ(parse_error(big), "1:1: grammar text exceeds 1 MiB");

  std::string many = "root ::= r0\n";
  for (int i = 0; i < Grammar::kMaxRules; ++i) many += "r" + std::to_string(i) + " ::= \"a\"\n";
  EXPECT_EQ(parse_error(many), "10001:1: too many rules (limit 10000)");

  // Bounds at the limit are fine; nested maxima multiply references, not elements.
  auto g = must_parse("root ::= (\"ab\"{0,10000} \"c\"){2}");
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, "cc"));
  std::string ab;
  for (int i = 0; i < 10000; ++i) ab += "ab";
  EXPECT_TRUE(matches(g, ab + "c" + ab + "c"));
  EXPECT_FALSE(matches(g, ab + "abc" + ab + "c"));
  EXPECT_FALSE(matches(g, ab + "c" + ab + "abc"));
}

TEST(GbnfErrors, NoErrorOutputOnSuccessAndNullErrorPointer) {
  std::string err = "stale";
  EXPECT_TRUE(parse_gbnf("root ::= \"a\"", &err));
  EXPECT_EQ(err, "");
  EXPECT_FALSE(parse_gbnf("root ::= ", nullptr, "nope"));
}

TEST(Gbnf, LiteralEscapes) {
  auto g = must_parse(R"(root ::= "\n\t\r\\\"\'\[\]\-\^\/\x41\u00e9\U0001F600 ok")");
  EXPECT_TRUE(matches(g, "\n\t\r\\\"'[]-^/A\xC3\xA9\xF0\x9F\x98\x80 ok"));
  EXPECT_FALSE(matches(g, "\n\t\r\\\"'[]-^/A\xC3\xA9\xF0\x9F\x98\x80 o"));
  // \xHH names a code point, encoded as UTF-8 like any other.
  auto x = must_parse(R"(root ::= "\xFF")");
  EXPECT_TRUE(matches(x, "\xC3\xBF"));
  EXPECT_FALSE(matches(x, "\xFF"));
  // raw UTF-8 in a literal
  auto raw = must_parse("root ::= \"日本\"");
  EXPECT_TRUE(matches(raw, "日本"));
  EXPECT_TRUE(viable(raw, "\xE6\x97"));  // mid-character prefix
  EXPECT_FALSE(viable(raw, "\xE6\x98"));
}

// Checks a one-character grammar against a predicate over code points: every code point
// below U+0800 and around every UTF-8 length / surrogate boundary, plus a stride elsewhere.
void check_class(const std::string& cls, const std::function<bool(uint32_t)>& want) {
  auto g = must_parse("root ::= " + cls);
  ASSERT_TRUE(g);
  std::vector<uint32_t> cps;
  for (uint32_t c = 0; c < 0x900; ++c) cps.push_back(c);
  for (uint32_t b : {0xFFFu, 0x1000u, 0xD7FFu, 0xE000u, 0xFFFFu, 0x10000u, 0x3FFFFu, 0x40000u, 0xFFFFFu, 0x100000u,
                     0x10FFFFu, 0x1F600u, 0x4E00u, 0x9FFFu, 0xFEFFu}) {
    for (uint32_t d = 0; d < 3; ++d) {
      cps.push_back(b - d);
      if (b + d <= 0x10FFFF) cps.push_back(b + d);
    }
  }
  for (uint32_t c = 0x900; c <= 0x10FFFF; c += 251) {
    if (c < 0xD800 || c > 0xDFFF) cps.push_back(c);
  }
  Matcher m(g, byte_vocab());
  for (uint32_t cp : cps) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;  // not encodable; ED A0 80 etc. are tested below
    m.reset();
    const bool got = m.accept_bytes(utf8(cp)) && m.is_complete();
    ASSERT_EQ(got, want(cp)) << cls << " at U+" << std::hex << cp;
  }
  // Invalid UTF-8 never matches: overlongs, surrogates, > U+10FFFF, stray continuation
  // bytes, truncated sequences, F5-FF.
  for (const char* bad : {"\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xE0\x9F\xBF", "\xED\xA0\x80", "\xED\xBF\xBF",
                          "\xF0\x80\x80\x80", "\xF0\x8F\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\x80",
                          "\xBF", "\xFF", "\xC3", "\xE4\xB8"}) {
    m.reset();
    ASSERT_FALSE(m.accept_bytes(bad) && m.is_complete()) << cls << " accepted invalid " << testing::PrintToString(bad);
  }
}

TEST(Gbnf, CharClasses) {
  check_class("[a-c]", [](uint32_t c) { return c >= 'a' && c <= 'c'; });
  check_class("[a-cx0-9_]", [](uint32_t c) { return (c >= 'a' && c <= 'c') || c == 'x' || (c >= '0' && c <= '9') || c == '_'; });
  check_class("[^a]", [](uint32_t c) { return c != 'a'; });
  check_class(".", [](uint32_t) { return true; });
  check_class("[^\"\\\\\\x00-\\x1F]", [](uint32_t c) { return c != '"' && c != '\\' && c >= 0x20; });
  check_class("[à-ÿ]", [](uint32_t c) { return c >= 0xE0 && c <= 0xFF; });
  check_class("[\\u0100-\\U0010FFFF]", [](uint32_t c) { return c >= 0x100; });
  check_class("[\\u07F0-\\u0801\\U0001F600-\\U0001F64F]",
              [](uint32_t c) { return (c >= 0x7F0 && c <= 0x801) || (c >= 0x1F600 && c <= 0x1F64F); });
  // Ranges whose ends are not aligned to 64^k (every split path of the UTF-8 splitter).
  check_class("[\\u0081-\\u0845]", [](uint32_t c) { return c >= 0x81 && c <= 0x845; });
  check_class("[\\u0801-\\u1042\\U00010401-\\U00010FFE\\U00100001-\\U0010FFFE]", [](uint32_t c) {
    return (c >= 0x801 && c <= 0x1042) || (c >= 0x10401 && c <= 0x10FFE) || (c >= 0x100001 && c <= 0x10FFFE);
  });
  check_class("[^a\\U0010FFFE]", [](uint32_t c) { return c != 'a' && c != 0x10FFFE; });
  check_class("[^\\u0080-\\uFFFF]", [](uint32_t c) { return c < 0x80 || c > 0xFFFF; });
  check_class("[\\u0000-\\uFFFF]", [](uint32_t c) { return c <= 0xFFFF; });  // spans the surrogates
  check_class("[\\]\\[\\-^]", [](uint32_t c) { return c == ']' || c == '[' || c == '-' || c == '^'; });
  check_class("[-a]", [](uint32_t c) { return c == '-' || c == 'a'; });
  check_class("[a-]", [](uint32_t c) { return c == '-' || c == 'a'; });
  check_class("[日本語]", [](uint32_t c) { return c == 0x65E5 || c == 0x672C || c == 0x8A9E; });
}

TEST(Gbnf, RepetitionBounds) {
  auto g = must_parse("root ::= \"a\"{2,4} \"b\"{3} \"c\"{2,} \"d\"{0,1} \"e\"{ 1 , 2 }");
  EXPECT_TRUE(matches(g, "aabbbccde"));
  EXPECT_TRUE(matches(g, "aaaabbbccccccee"));
  EXPECT_FALSE(matches(g, "abbbcce"));      // one a
  EXPECT_FALSE(matches(g, "aaaaabbbcce"));  // five a
  EXPECT_FALSE(matches(g, "aabbcce"));      // two b
  EXPECT_FALSE(matches(g, "aabbbce"));      // one c
  EXPECT_FALSE(matches(g, "aabbbccdde"));   // two d
  EXPECT_FALSE(matches(g, "aabbbcceee"));   // three e
  EXPECT_FALSE(matches(g, "aabbbcc"));      // no e

  auto star = must_parse("root ::= \"x\"* \"ab\"+ (\"c\" \"d\")? \"\"*");
  EXPECT_TRUE(matches(star, "ab"));
  EXPECT_TRUE(matches(star, "xxxababcd"));
  EXPECT_FALSE(matches(star, "xxx"));
  EXPECT_FALSE(matches(star, "abc"));
  EXPECT_FALSE(matches(star, "aba"));

  auto zero = must_parse("root ::= \"a\"{0} \"b\"{0,0} \"c\"");
  EXPECT_TRUE(matches(zero, "c"));
  EXPECT_FALSE(matches(zero, "ac"));
}

TEST(Gbnf, GroupsAlternativesAndLayout) {
  auto g = must_parse(
      "# leading comment\n"
      "root ::= (\"ab\" | \"c\")+ tail   # trailing comment\n"
      "tail ::=\n"
      "  \"d\"\n"
      "  | \"e\" (\n"
      "    \"f\" |\n"
      "    \"g\"  # inside a group\n"
      "  )\n"
      "\n");
  ASSERT_TRUE(g);
  EXPECT_TRUE(matches(g, "abd"));
  EXPECT_TRUE(matches(g, "cabcef"));
  EXPECT_TRUE(matches(g, "ceg"));
  EXPECT_FALSE(matches(g, "d"));
  EXPECT_FALSE(matches(g, "ace"));
  EXPECT_FALSE(matches(g, "abe"));
  EXPECT_FALSE(matches(g, "abdd"));
  // A custom root name; rule names with - and _.
  std::string err;
  auto named = parse_gbnf("my-rule_1 ::= \"x\" other\nother ::= \"y\"", &err, "my-rule_1");
  ASSERT_TRUE(named) << err;
  EXPECT_TRUE(matches(named, "xy"));
  // CRLF line ends
  auto crlf = must_parse("root ::= a\r\na ::= \"x\"\r\n");
  EXPECT_TRUE(matches(crlf, "x"));
}

TEST(Gbnf, Recursion) {
  auto parens = must_parse("root ::= \"(\" root \")\" root | \"\"");
  EXPECT_TRUE(matches(parens, ""));
  EXPECT_TRUE(matches(parens, "()"));
  EXPECT_TRUE(matches(parens, "(()())()"));
  EXPECT_FALSE(matches(parens, "(()"));
  EXPECT_TRUE(viable(parens, "(()"));
  EXPECT_FALSE(viable(parens, "())"));
  // deep nesting (thousands of frames; also exercises the matcher's table rebuild)
  const int depth = 6000;
  std::string deep = std::string(depth, '(') + std::string(depth, ')');
  EXPECT_TRUE(matches(parens, deep));
  EXPECT_FALSE(matches(parens, deep + ")"));
  EXPECT_FALSE(matches(parens, deep.substr(1)));
}

TEST(Gbnf, HarmlessCyclesAreAccepted) {
  // Tail-position cycles and repetitions of possibly-empty items do not loop.
  auto opt_star = must_parse("root ::= (\"a\"?)* \"b\"");
  EXPECT_TRUE(matches(opt_star, "b"));
  EXPECT_TRUE(matches(opt_star, "aaab"));
  EXPECT_FALSE(matches(opt_star, "aaa"));
  auto tail_cycle = must_parse("root ::= a\na ::= b\nb ::= a | \"x\"");
  EXPECT_TRUE(matches(tail_cycle, "x"));
  EXPECT_FALSE(matches(tail_cycle, ""));
  auto right_rec = must_parse("root ::= \"a\" root | \"b\"");
  EXPECT_TRUE(matches(right_rec, std::string(20000, 'a') + "b"));
  // A rule that can never finish is pruned when another alternative can.
  auto pruned = must_parse("root ::= \"a\" | loop\nloop ::= \"b\" loop");
  EXPECT_TRUE(matches(pruned, "a"));
  EXPECT_FALSE(viable(pruned, "b"));
}

TEST(Gbnf, EmptyLanguageOnlyEmptyString) {
  auto g = must_parse("root ::= \"\"");
  Matcher m(g, byte_vocab());
  EXPECT_TRUE(m.is_complete());
  EXPECT_FALSE(m.can_continue());
  EXPECT_FALSE(m.accept_bytes("a"));
}

TEST(Gbnf, DumpShowsByteLevelRules) {
  auto g = must_parse("root ::= [a-b] \"c\"");
  EXPECT_EQ(g->dump(), "root ::= [61-62] [63]\n");
  auto u = must_parse("root ::= [\\u0080-\\u07FF]");
  EXPECT_NE(u->dump().find("[C2-DF] [80-BF]"), std::string::npos) << u->dump();
}

}  // namespace
}  // namespace tachyon::constrain
