// JSON Schema -> GBNF: every schema of the e2e suite (tests/e2e/schemas) compiles with the
// GBNF parser and its grammar accepts the valid instances and rejects the invalid ones listed
// here (the lists were checked with Python's jsonschema, FormatChecker on); exhaustive and
// random checks of integer / number ranges; warnings and errors for unsupported keywords
// and invalid schemas.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "constrain/grammar.h"
#include "constrain/json_schema.h"
#include "constrain/matcher.h"

#ifndef TACHYON_SOURCE_DIR
// tests/unit/constrain/json_schema_test.cpp -> the source tree root
#define TACHYON_SOURCE_DIR \
  (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path().string())
#endif

namespace tachyon::constrain {
namespace {

using ojson = nlohmann::ordered_json;

std::string suite_dir() { return std::string(TACHYON_SOURCE_DIR) + "/tests/e2e/schemas"; }

std::shared_ptr<const TokenIndex> tiny_index() {
  static auto idx = std::make_shared<TokenIndex>(std::vector<std::string>{"{", "}"}, std::vector<bool>{true, true},
                                                 std::vector<int32_t>{});
  return idx;
}

bool matches(const std::shared_ptr<const Grammar>& g, std::string_view text) {
  Matcher m(g, tiny_index());
  return m.accept_bytes(text) && m.is_complete();
}

struct Compiled {
  SchemaGrammar sg;
  std::shared_ptr<const Grammar> g;
};

Compiled compile(const ojson& schema, SchemaOptions opt = {}) {
  Compiled c;
  std::string err;
  EXPECT_TRUE(json_schema_to_gbnf(schema, opt, &c.sg, &err)) << err << "\nschema: " << schema.dump();
  c.g = parse_gbnf(c.sg.gbnf, &err);
  EXPECT_TRUE(c.g) << err << "\n" << c.sg.gbnf;
  return c;
}

std::string convert_error(const ojson& schema, SchemaOptions opt = {}) {
  SchemaGrammar sg;
  std::string err;
  EXPECT_FALSE(json_schema_to_gbnf(schema, opt, &sg, &err)) << schema.dump() << "\n" << sg.gbnf;
  return err;
}

struct Case {
  const char* file;
  std::vector<std::string> valid, invalid;
};

// Valid instances are written in the property order of the schema (the grammar fixes it).
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"01-person",
       {R"({"name":"Ann","age":0})", R"({"name":"","age":120})", R"({"name":"abcdefgh","age":42})",
        "{\n  \"name\": \"Bo\",\n  \"age\": 7\n}"},
       {R"({"name":"Ann"})", R"({"name":"Ann","age":121})", R"({"name":"Ann","age":-1})",
        R"({"name":"abcdefghi","age":1})", R"({"name":"x","age":1,"extra":1})", R"({"name":"Ann","age":"5"})"}},
      {"02-enum-color",
       {R"({"color":"red"})", R"({"color":"blue"})"},
       {R"({"color":"Red"})", R"({"color":"yellow"})", R"({})"}},
      {"03-const-version",
       {R"({"version":2,"kind":"config"})"},
       {R"({"version":3,"kind":"config"})", R"({"version":2})", R"({"version":2,"kind":"Config"})"}},
      {"04-temperature-range",
       {R"({"celsius":-40})", R"({"celsius":120})", R"({"celsius":0})", R"({"celsius":-9})", R"({"celsius":99})"},
       {R"({"celsius":-41})", R"({"celsius":121})", R"({"celsius":1000})", R"({"celsius":-100})",
        R"({"celsius":12.5})"}},
      {"05-number-bounds",
       {R"({"ratio":0})", R"({"ratio":1})", R"({"ratio":0.5})", R"({"ratio":1.0})",
        R"({"ratio":0.25,"delta":-4.99})", R"({"ratio":0,"delta":4.5})", R"({"ratio":0,"delta":0})"},
       {R"({"ratio":1.01})", R"({"ratio":-0.1})", R"({"ratio":2})", R"({"ratio":0,"delta":5})",
        R"({"ratio":0,"delta":-5})", R"({"ratio":0,"delta":-5.5})", R"({"delta":1})"}},
      {"06-array-min-max",
       {R"([1])", R"([9,9,9])", R"([1, 2])"},
       {R"([])", R"([1,2,3,4])", R"([0])", R"([10])", R"(["1"])"}},
      {"07-prefix-items",
       {R"(["ab",1])", R"(["abcd",-5,true])"},
       {R"(["ab"])", R"(["ab",1,true,1])", R"(["abcde",1])", R"([1,1])", R"(["a","b"])"}},
      {"08-nested-array-objects",
       {R"({"items":[]})", R"({"items":[{"id":1},{"id":999,"qty":50}]})"},
       {R"({"items":[{"qty":1}]})", R"({"items":[{"id":0}]})",
        R"({"items":[{"id":1},{"id":2},{"id":3},{"id":4}]})", R"({"items":[{"id":1,"qty":51}]})"}},
      {"09-tree-recursive",
       {R"({"value":1})", R"({"value":0,"children":[{"value":1},{"value":2,"children":[]}]})"},
       {R"({"value":10})", R"({"children":[]})", R"({"value":1,"children":[{"value":1},{"value":2},{"value":3}]})",
        R"({"value":1,"children":[{}]})"}},
      {"10-linked-list",
       {R"({"list":{"head":"a","tail":null}})", R"({"list":{"head":"abc","tail":{"head":"","tail":null}}})"},
       {R"({"list":{"head":"a"}})", R"({"list":{"head":"abcd","tail":null}})", R"({"list":null})"}},
      {"11-pattern-code",
       {R"({"code":"AB-123"})"},
       {R"({"code":"ab-123"})", R"({"code":"AB-12"})", R"({"code":"XAB-123"})", R"({"code":"AB-1234"})"}},
      {"12-format-date",
       {R"({"day":"2024-02-29"})", R"({"day":"1999-12-31"})"},
       {R"({"day":"2024-13-01"})", R"({"day":"2024-1-01"})", R"({"day":"24-01-01"})", R"({"day":"2024-01-32"})"}},
      {"13-format-date-time",
       {R"({"at":"2024-01-01T12:30:00Z"})", R"({"at":"2024-01-01T00:00:00.5+02:00","time":"23:59:59Z"})"},
       {R"({"at":"2024-01-01T25:00:00Z"})", R"({"at":"2024-01-01"})", R"({"at":"2024-01-01T12:30Z"})"}},
      {"14-format-uuid",
       {R"({"id":"123e4567-e89b-12d3-a456-426614174000"})", R"({"id":"123E4567-E89B-12D3-A456-426614174000"})"},
       {R"({"id":"123e4567e89b12d3a456426614174000"})", R"({"id":"123e4567-e89b-12d3-a456-42661417400"})",
        R"({"id":"g23e4567-e89b-12d3-a456-426614174000"})"}},
      {"15-format-email",
       {R"({"email":"a@b.co"})", R"({"email":"john.doe+x@mail.example.com"})"},
       {R"({"email":"ab.co"})", R"({"email":""})"}},
      {"16-anyof-shapes",
       {R"({"shape":{"kind":"circle","r":3}})", R"({"shape":{"kind":"square","side":10}})"},
       {R"({"shape":{"kind":"circle","side":3}})", R"({"shape":{"kind":"triangle","r":1}})",
        R"({"shape":{"kind":"circle","r":11}})"}},
      {"17-allof-merge",
       {R"({"id":1,"label":"x"})", R"({"id":100,"label":"abcdef","more":true})"},
       {R"({"id":1})", R"({"label":"x"})", R"({"id":0,"label":"x"})", R"({"id":1,"label":"abcdefg"})"}},
      {"18-additional-schema",
       {R"({"name":"ab"})", R"({"name":"ab","x":1,"y":9})", R"({"name":"ab","names":0})"},
       {R"({"name":"ab","x":10})", R"({"name":"ab","x":"1"})", R"({"x":1})", R"({"name":5})"}},
      {"19-additional-true",
       {R"({"a":true})", R"({"a":false,"b":[1,{"c":null}]})"},
       {R"({"b":1})", R"({"a":1})"}},
      {"20-required-subset",
       {R"({"b":true,"d":null})", R"({"a":5,"b":false,"c":"xyz","d":null})", R"({"b":true,"c":"","d":null})"},
       {R"({"b":true})", R"({"a":6,"b":true,"d":null})", R"({"d":null})", R"({"b":true,"d":null,"e":1})"}},
      {"21-no-required",
       {R"({})", R"({"x":0})", R"({"y":3})", R"({"x":1,"y":2})", R"({ })"},
       {R"({"x":4})", R"({"z":1})", R"({"x":"1"})"}},
      {"22-type-array-nullable",
       {R"({"nick":null,"score":null})", R"({"nick":"abcd","score":10})"},
       {R"({"nick":"abcde","score":1})", R"({"nick":null})", R"({"nick":null,"score":11})", R"({"nick":1,"score":1})"}},
      {"23-string-lengths",
       {R"({"pin":"1234","note":"a"})", R"({"pin":"abcd","note":"12345678"})", R"({"pin":"a\nb\u0041","note":"\"q\""})",
        R"({"pin":"ééé€","note":"日本"})"},
       {R"({"pin":"123","note":"a"})", R"({"pin":"12345","note":"a"})", R"({"pin":"1234","note":""})",
        R"({"pin":"1234","note":"123456789"})"}},
      {"24-oneof-literal",
       {R"({"answer":true})", R"({"answer":"unknown"})"},
       {R"({"answer":"yes"})", R"({"answer":null})"}},
      {"25-empty-schema-value",
       {R"({"payload":null})", R"({"payload":{"a":[1,2,{"b":"c"}]}})", R"({"payload":-1.5e3})"},
       {R"({})", R"({"payload":1,"x":2})"}},
      {"26-matrix",
       {R"({"m":[[0]]})", R"({"m":[[-9,9],[1]]})"},
       {R"({"m":[]})", R"({"m":[[]]})", R"({"m":[[1,2,3]]})", R"({"m":[[10]]})", R"({"m":[[1],[2],[3]]})"}},
      {"27-definitions-draft7",
       {R"({"from":{"x":0,"y":0},"to":{"x":-99,"y":99}})"},
       {R"({"from":{"x":0},"to":{"x":1,"y":1}})", R"({"from":{"x":100,"y":0},"to":{"x":0,"y":0}})"}},
      {"28-enum-mixed",
       {R"({"level":1})", R"({"level":"max"})", R"({"level":null,"flag":true})"},
       {R"({"level":4})", R"({"level":"min"})", R"({"level":1,"flag":false})"}},
      {"29-large-int-range",
       {R"({"year":1900})", R"({"year":2100,"big":-100000,"pos":1})", R"({"year":2000,"big":99999})",
        R"({"year":1999,"big":0,"pos":123456})"},
       {R"({"year":1899})", R"({"year":2101})", R"({"year":2000,"big":100000})", R"({"year":2000,"big":-100001})",
        R"({"year":2000,"pos":0})", R"({"year":2000,"pos":-1})"}},
      {"30-tool-call-args",
       {R"({"location":"Paris","unit":"c"})", R"({"location":"Oslo","unit":"f","days":7})"},
       {R"({"location":"Paris"})", R"({"location":"Paris","unit":"k"})", R"({"location":"Paris","unit":"c","days":8})"}},
      {"31-annotations-ignored",
       {R"({"ok":true})"},
       {R"({})", R"({"ok":"true"})"}},
      {"32-pattern-search",
       {R"({"tag":"#a"})", R"({"tag":"#abc_12","anywhere":"xxabyy"})", R"({"tag":"#x","anywhere":"ab"})"},
       {R"({"tag":"a"})", R"({"tag":"#"})", R"({"tag":"#abcdefg"})", R"({"tag":"#A"})", R"({"tag":"#a","anywhere":"ba"})"}},
      {"33-allof-ref",
       {R"({"id":0,"ok":true})", R"({"id":9,"ok":false,"x":1})"},
       {R"({"id":0})", R"({"ok":true})", R"({"id":10,"ok":true})"}},
      {"34-root-array-of-enums",
       {R"(["a","b"])", R"(["c","c"])"},
       {R"(["a"])", R"(["a","b","c"])", R"(["d","a"])"}},
      {"35-ref-root-recursion",
       {R"({"name":"a"})", R"({"name":"ab","next":{"name":"c","next":{"name":""}}})"},
       {R"({"next":{"name":"a"}})", R"({"name":"a","next":{}})", R"({"name":"abcde"})"}},
      {"36-format-uri-ipv4",
       {R"({"ip":"192.168.0.1"})", R"({"ip":"0.0.0.0","home":"https://example.com/a?b=c"})"},
       {R"({"ip":"256.1.1.1"})", R"({"ip":"1.2.3"})", R"({"ip":"01.2.3.4"})"}},
  };
  return c;
}

ojson load(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  return ojson::parse(ss.str());
}

TEST(JsonSchemaSuite, EveryFileHasCasesAndTheSuiteIsLarge) {
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(suite_dir()))
    if (e.path().extension() == ".json") files.insert(e.path().stem().string());
  EXPECT_GE(files.size(), 32u);
  std::set<std::string> covered;
  for (const auto& c : cases()) covered.insert(c.file);
  EXPECT_EQ(files, covered);
}

TEST(JsonSchemaSuite, ValidAcceptedInvalidRejected) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.file);
    const Compiled g = compile(load(suite_dir() + "/" + c.file + ".json"));
    ASSERT_TRUE(g.g);
    for (const auto& v : c.valid) EXPECT_TRUE(matches(g.g, v)) << "valid instance rejected: " << v << "\n" << g.sg.gbnf;
    for (const auto& v : c.invalid)
      EXPECT_FALSE(matches(g.g, v)) << "invalid instance accepted: " << v << "\n" << g.sg.gbnf;
  }
}

TEST(JsonSchemaSuite, CompactAndStrictModes) {
  SchemaOptions compact;
  compact.compact = true;
  SchemaOptions strict;
  strict.strict = true;
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.file);
    const ojson s = load(suite_dir() + "/" + c.file + ".json");
    const Compiled g = compile(s, compact);
    ASSERT_TRUE(g.g);
    EXPECT_EQ(g.sg.gbnf.find("ws"), std::string::npos) << g.sg.gbnf;
    for (const auto& v : c.valid) {
      const ojson parsed = ojson::parse(v);
      EXPECT_TRUE(matches(g.g, parsed.dump())) << parsed.dump();  // dump(): compact spelling
      if (v.find('\n') != std::string::npos) {
        EXPECT_FALSE(matches(g.g, v)) << v;
      }
    }
    for (const auto& v : c.invalid) EXPECT_FALSE(matches(g.g, v)) << v;
    compile(s, strict);  // no unsupported keywords in the suite
  }
}

// ---- integer and number ranges --------------------------------------------------------

std::shared_ptr<const Grammar> range_grammar(const ojson& schema) {
  Compiled c = compile(schema);
  return c.g;
}

TEST(JsonSchemaRanges, IntegerRangesExhaustive) {
  const std::vector<std::pair<int, int>> ranges = {
      {0, 0},     {0, 9},    {0, 10},     {1, 9},      {-40, 120}, {-1, 1},     {-100, -7}, {7, 7},
      {17, 83},   {99, 101}, {100, 999},  {123, 4567}, {-999, 0},  {-1234, -1}, {5, 1005},  {-5, 5},
      {190, 210}, {-10, -10}, {1000, 1000}, {29, 30},   {0, 99},   {9, 11}};
  for (const auto& [lo, hi] : ranges) {
    SCOPED_TRACE(std::to_string(lo) + ".." + std::to_string(hi));
    auto g = range_grammar({{"type", "integer"}, {"minimum", lo}, {"maximum", hi}});
    ASSERT_TRUE(g);
    for (int v = lo - 120; v <= hi + 120; ++v)
      ASSERT_EQ(matches(g, std::to_string(v)), v >= lo && v <= hi) << v;
    EXPECT_FALSE(matches(g, "-0"));
    EXPECT_FALSE(matches(g, "0" + std::to_string(std::max(lo, 1))));  // leading zero
    EXPECT_FALSE(matches(g, std::to_string(lo) + ".0"));
  }
}

TEST(JsonSchemaRanges, IntegerRangesRandomLarge) {
  std::mt19937_64 rng(20);
  for (int iter = 0; iter < 60; ++iter) {
    auto pick = [&]() -> int64_t {
      const int digits = 1 + int(rng() % 15);
      int64_t m = 1;
      for (int i = 0; i < digits; ++i) m *= 10;
      int64_t v = int64_t(rng() % uint64_t(m));
      return rng() % 3 == 0 ? -v : v;
    };
    int64_t lo = pick(), hi = pick();
    if (lo > hi) std::swap(lo, hi);
    const bool excl = iter % 2 == 1;
    ojson s = {{"type", "integer"}};
    if (iter % 5 != 4) s[excl ? "exclusiveMinimum" : "minimum"] = excl ? lo - 1 : lo;
    if (iter % 5 != 3) s[excl ? "exclusiveMaximum" : "maximum"] = excl ? hi + 1 : hi;
    SCOPED_TRACE(s.dump());
    auto g = range_grammar(s);
    ASSERT_TRUE(g);
    const bool has_lo = s.contains("minimum") || s.contains("exclusiveMinimum");
    const bool has_hi = s.contains("maximum") || s.contains("exclusiveMaximum");
    std::vector<int64_t> probes = {lo, hi, lo - 1, hi + 1, lo + 1, hi - 1, 0, -1, 1, (lo + hi) / 2};
    for (int k = 0; k < 40; ++k) probes.push_back(pick());
    for (int64_t d : {10LL, 100LL, 1000LL, 1000000LL}) probes.insert(probes.end(), {lo - d, lo + d, hi - d, hi + d});
    for (int64_t v : probes) {
      const bool in = (!has_lo || v >= lo) && (!has_hi || v <= hi) && std::to_string(v).size() <= 17;
      EXPECT_EQ(matches(g, std::to_string(v)), in) << v;
    }
  }
}

TEST(JsonSchemaRanges, NumberBounds) {
  struct Probe {
    const char* text;
    bool in;
  };
  struct NCase {
    ojson schema;
    std::vector<Probe> probes;
  };
  const std::vector<NCase> cs = {
      {{{"type", "number"}, {"minimum", 0}, {"maximum", 1}},
       {{"0", true}, {"1", true}, {"0.999", true}, {"1.0", true}, {"1.000", true}, {"1.001", false}, {"-0.5", false},
        {"0.0", true}, {"2", false}, {"-1", false}}},
      {{{"type", "number"}, {"exclusiveMinimum", 0}, {"exclusiveMaximum", 10}},
       {{"0", false}, {"0.0", false}, {"0.001", true}, {"9.99", true}, {"10", false}, {"10.0", false}, {"5", true}}},
      {{{"type", "number"}, {"minimum", -2}, {"maximum", -1}},
       {{"-2", true}, {"-1", true}, {"-1.5", true}, {"-2.0", true}, {"-2.5", false}, {"-0.5", false}, {"0", false},
        {"1.5", false}}},
      {{{"type", "number"}, {"exclusiveMinimum", -3}, {"maximum", 2}},
       {{"-3", false}, {"-3.0", false}, {"-2.999", true}, {"-0.01", true}, {"0", true}, {"2", true}, {"2.0", true},
        {"2.01", false}}},
      {{{"type", "number"}, {"minimum", 10}},
       {{"10", true}, {"9.99", false}, {"123456.5", true}, {"-10", false}}},
      {{{"type", "number"}, {"maximum", -10}},
       {{"-10", true}, {"-9.99", false}, {"-123456.5", true}, {"10", false}, {"-10.5", true}}},
  };
  for (const auto& c : cs) {
    SCOPED_TRACE(c.schema.dump());
    auto g = range_grammar(c.schema);
    ASSERT_TRUE(g);
    for (const auto& p : c.probes) EXPECT_EQ(matches(g, p.text), p.in) << p.text;
  }
  // A fractional bound is rounded outward, with a warning.
  Compiled c = compile({{"type", "number"}, {"minimum", 0.5}, {"maximum", 2.5}});
  ASSERT_EQ(c.sg.warnings.size(), 2u);
  EXPECT_NE(c.sg.warnings[0].find("'minimum' at / is loosened"), std::string::npos) << c.sg.warnings[0];
  EXPECT_TRUE(matches(c.g, "0.2"));
  EXPECT_TRUE(matches(c.g, "3"));
  EXPECT_FALSE(matches(c.g, "3.5"));
}

// ---- text shape -------------------------------------------------------------------------

TEST(JsonSchemaShape, BoundedWhitespaceAndPropertyOrder) {
  Compiled c = compile(load(suite_dir() + "/01-person.json"));
  ASSERT_TRUE(c.g);
  const std::string ws20(20, ' '), ws21(21, ' ');
  EXPECT_TRUE(matches(c.g, "{" + ws20 + R"("name":"a","age":1})"));
  EXPECT_FALSE(matches(c.g, "{" + ws21 + R"("name":"a","age":1})"));
  EXPECT_TRUE(matches(c.g, "{\"name\"\t:\r\n\"a\" ,\"age\":1\n}"));
  EXPECT_FALSE(matches(c.g, R"( {"name":"a","age":1})"));  // no whitespace around the root value
  EXPECT_FALSE(matches(c.g, R"({"name":"a","age":1} )"));
  EXPECT_FALSE(matches(c.g, R"({"age":1,"name":"a"})"));  // schema order only (documented)
  EXPECT_FALSE(matches(c.g, R"({"name":"a","age":01})"));
}

TEST(JsonSchemaShape, StringEscapesAndLengths) {
  Compiled c = compile({{"type", "string"}, {"minLength", 2}, {"maxLength", 3}});
  ASSERT_TRUE(c.g);
  for (const char* ok : {R"("ab")", R"("abc")", R"("\u00e9\n")", R"("\"\\")", R"("é€")", R"("😀\/")"})
    EXPECT_TRUE(matches(c.g, ok)) << ok;
  for (const char* bad : {R"("a")", R"("abcd")", "\"a\nb\"", R"("\x41b")", R"("\u00g0a")", R"("a\")", R"(ab)"})
    EXPECT_FALSE(matches(c.g, bad)) << bad;
}

TEST(JsonSchemaShape, PatternInsideJsonString) {
  Compiled c = compile({{"type", "string"}, {"pattern", "^a.\"b$"}});
  ASSERT_TRUE(c.g);
  EXPECT_TRUE(matches(c.g, R"("ax\"b")"));
  EXPECT_TRUE(matches(c.g, R"("a\\\"b")"));   // . matched a backslash, escaped
  EXPECT_TRUE(matches(c.g, R"("a\t\"b")"));   // . matched a tab, escaped
  EXPECT_FALSE(matches(c.g, R"("a\n\"b")"));  // . does not match a newline
  EXPECT_FALSE(matches(c.g, R"("ax"b")"));    // a raw quote ends the string
  // Unanchored: substring semantics.
  Compiled d = compile({{"type", "string"}, {"pattern", "[0-9]{2}"}});
  EXPECT_TRUE(matches(d.g, R"("x12y")"));
  EXPECT_TRUE(matches(d.g, R"("12")"));
  EXPECT_FALSE(matches(d.g, R"("1x2")"));
}

TEST(JsonSchemaShape, AnyObjectAndAnyValue) {
  auto obj = parse_gbnf(json_object_gbnf(), nullptr);
  auto val = parse_gbnf(json_value_gbnf(), nullptr);
  ASSERT_TRUE(obj);
  ASSERT_TRUE(val);
  for (const char* ok : {R"({})", R"({"a":[1,2.5e-3,{"b":null}],"c":"\u1234"})", "{ \"a\" : true }"}) {
    EXPECT_TRUE(matches(obj, ok)) << ok;
    EXPECT_TRUE(matches(val, ok)) << ok;
  }
  for (const char* v : {"1", "-0.5", R"("s")", "null", "true", "[]", "[[[]]]"}) {
    EXPECT_FALSE(matches(obj, v)) << v;
    EXPECT_TRUE(matches(val, v)) << v;
  }
  for (const char* bad : {"{", R"({"a"})", R"({"a":1,})", "[1,]", "01", "1.", ".5", "tru", R"({'a':1})"})
    EXPECT_FALSE(matches(val, bad)) << bad;
}

TEST(JsonSchemaShape, RecursionDepth) {
  Compiled c = compile(load(suite_dir() + "/09-tree-recursive.json"));
  std::string s = R"({"value":1})";
  for (int i = 0; i < 30; ++i) s = R"({"value":2,"children":[)" + s + "]}";
  EXPECT_TRUE(matches(c.g, s));
}

TEST(JsonSchemaShape, JsonOverloadSortsProperties) {
  nlohmann::json s = {{"type", "object"},
                      {"properties", {{"b", {{"type", "integer"}}}, {"a", {{"type", "integer"}}}}},
                      {"required", {"a", "b"}},
                      {"additionalProperties", false}};
  SchemaGrammar sg;
  std::string err;
  ASSERT_TRUE(json_schema_to_gbnf(s, SchemaOptions{}, &sg, &err)) << err;
  auto g = parse_gbnf(sg.gbnf, &err);
  ASSERT_TRUE(g) << err;
  EXPECT_TRUE(matches(g, R"({"a":1,"b":2})"));
}

TEST(JsonSchemaShape, StrictDefaultsAdditionalPropertiesToFalse) {
  const ojson s = {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}}}};
  Compiled loose = compile(s);
  SchemaOptions so;
  so.strict = true;
  Compiled strict = compile(s, so);
  EXPECT_TRUE(matches(loose.g, R"({"a":1,"b":[true]})"));
  EXPECT_FALSE(matches(strict.g, R"({"a":1,"b":[true]})"));
  EXPECT_TRUE(matches(strict.g, R"({"a":1})"));
  EXPECT_TRUE(matches(strict.g, R"({})"));
}

// ---- warnings and errors ----------------------------------------------------------------

TEST(JsonSchemaErrors, UnsupportedKeywordsWarnOrFail) {
  const ojson s = {{"type", "object"},
                   {"properties", {{"a", {{"type", "integer"}, {"multipleOf", 3}}}, {"b", {{"if", ojson::object()}}}}},
                   {"minProperties", 1}};
  Compiled c = compile(s);
  const std::vector<std::string> want = {"'minProperties' at / is not enforced",
                                         "'multipleOf' at /properties/a is not enforced",
                                         "'if' at /properties/b is not enforced"};
  for (const auto& w : want)
    EXPECT_NE(std::find(c.sg.warnings.begin(), c.sg.warnings.end(), w), c.sg.warnings.end())
        << w << " not in warnings";
  EXPECT_TRUE(matches(c.g, R"({"a":4})"));  // multipleOf loosened
  SchemaOptions strict;
  strict.strict = true;
  EXPECT_EQ(convert_error({{"properties", {{"a", {{"if", ojson::object()}}}}}}, strict),
            "unsupported keyword 'if' at /properties/a");
  EXPECT_EQ(convert_error({{"type", "array"}, {"uniqueItems", true}}, strict), "unsupported keyword 'uniqueItems' at /");
  for (const char* kw : {"not", "dependentSchemas", "patternProperties", "propertyNames", "unevaluatedProperties",
                         "maxProperties", "contains", "then", "else"}) {
    const ojson x = {{"type", "object"}, {kw, ojson::object()}};
    EXPECT_EQ(convert_error(x, strict), std::string("unsupported keyword '") + kw + "' at /");
    Compiled w = compile(x);
    ASSERT_EQ(w.sg.warnings.size(), 1u);
    EXPECT_EQ(w.sg.warnings[0], std::string("'") + kw + "' at / is not enforced");
  }
  // Annotations are silent, also in strict mode.
  Compiled a = compile({{"type", "string"}, {"title", "t"}, {"description", "d"}, {"default", "x"},
                        {"examples", {"y"}}, {"$comment", "c"}}, strict);
  EXPECT_TRUE(a.sg.warnings.empty());
  // oneOf: loosened to anyOf with a warning, also in strict mode.
  Compiled o = compile({{"oneOf", {{{"type", "integer"}}, {{"type", "number"}}}}}, strict);
  ASSERT_EQ(o.sg.warnings.size(), 1u);
  EXPECT_NE(o.sg.warnings[0].find("'oneOf' at / is enforced as 'anyOf'"), std::string::npos);
  // Unknown format.
  Compiled f = compile({{"type", "string"}, {"format", "ipv6"}});
  ASSERT_EQ(f.sg.warnings.size(), 1u);
  EXPECT_EQ(f.sg.warnings[0], "'format' at / is not enforced: format 'ipv6'");
  // A regex we cannot express.
  Compiled r = compile({{"type", "string"}, {"pattern", "(a)\\1"}});
  ASSERT_EQ(r.sg.warnings.size(), 1u);
  EXPECT_NE(r.sg.warnings[0].find("backreference"), std::string::npos) << r.sg.warnings[0];
  EXPECT_NE(convert_error({{"type", "string"}, {"pattern", "(?=a)"}}, strict).find("lookahead"), std::string::npos);
}

TEST(JsonSchemaErrors, InvalidAndUnsatisfiableSchemas) {
  EXPECT_EQ(convert_error({{"type", "array"}, {"items", {{"type", "array"}, {"minItems", -1}}}}),
            "invalid schema: 'minItems' must be a non-negative integer at /items");
  EXPECT_EQ(convert_error({{"type", "strin"}}), "invalid schema: unknown type \"strin\" at /");
  EXPECT_EQ(convert_error(false), "unsatisfiable schema: false at /");
  EXPECT_EQ(convert_error({{"properties", {{"a", false}}}, {"required", {"a"}}}),
            "unsatisfiable schema: required property 'a' is false at /");
  EXPECT_EQ(convert_error({{"type", "integer"}, {"minimum", 5}, {"maximum", 4}}),
            "unsatisfiable schema: minimum > maximum at /");
  EXPECT_EQ(convert_error({{"type", "string"}, {"minLength", 5}, {"maxLength", 4}}),
            "unsatisfiable schema: minLength > maxLength at /");
  EXPECT_EQ(convert_error({{"$ref", "#/$defs/missing"}}), "invalid schema: '$ref' target '#/$defs/missing' not found at /");
  EXPECT_NE(convert_error({{"$ref", "https://example.com/s.json"}}).find("only local references"), std::string::npos);
  EXPECT_EQ(convert_error({{"type", "object"}, {"required", "a"}}), "invalid schema: 'required' must be an array of strings at /");
  EXPECT_EQ(convert_error({{"properties", {{"x", {{"type", "string"}, {"maxLength", "3"}}}}}}),
            "invalid schema: 'maxLength' must be a non-negative integer at /properties/x");
  EXPECT_EQ(convert_error({{"allOf", {{{"type", "string"}}, {{"type", "integer"}}}}}),
            "unsatisfiable schema: allOf types do not intersect at /allOf/1");
  // allOf with additionalProperties false next to it: the branches' properties are forbidden.
  EXPECT_EQ(convert_error({{"allOf", {{{"properties", {{"a", {{"type", "integer"}}}}}, {"required", {"a"}}}}},
                           {"additionalProperties", false}}),
            "unsatisfiable schema: required property 'a' is false at /");
  // Recursion through allOf only (no rule boundary) is reported, not looped on.
  EXPECT_NE(convert_error({{"allOf", {{{"$ref", "#"}}}}}).find("too deep"), std::string::npos);
  // A required property that is its own object again: no finite value (found by fuzz_structured).
  EXPECT_NE(convert_error({{"type", "object"},
                           {"properties", {{"name", {{"$ref", "#"}}}}},
                           {"required", {"name"}},
                           {"additionalProperties", false}})
                .find("admits no finite JSON value"),
            std::string::npos);
  // The same recursion through an optional property is fine (a tree that ends).
  SchemaGrammar sg;
  std::string err;
  EXPECT_TRUE(json_schema_to_gbnf(
      ojson{{"type", "object"}, {"properties", {{"name", {{"$ref", "#"}}}}}, {"additionalProperties", false}}, {}, &sg,
      &err))
      << err;
}

TEST(JsonSchemaMisc, EmptySchemaTrueAndTypeless) {
  for (const ojson& s : {ojson::object(), ojson(true)}) {
    Compiled c = compile(s);
    for (const char* v : {"1", "null", R"({"a":[]})", R"("x")"}) EXPECT_TRUE(matches(c.g, v)) << v;
  }
  // No type: inferred from the keywords.
  Compiled c = compile({{"properties", {{"a", {{"type", "integer"}}}}}, {"required", {"a"}}});
  EXPECT_TRUE(matches(c.g, R"({"a":1})"));
  EXPECT_FALSE(matches(c.g, "1"));
  // Extra keys must differ from declared names, also with a shared prefix.
  Compiled e = compile({{"type", "object"},
                        {"properties", {{"ab", {{"type", "integer"}}}}},
                        {"additionalProperties", {{"type", "string"}}}});
  EXPECT_TRUE(matches(e.g, R"({"ab":1,"a":"x","abc":"y","b":"z","":"w"})"));
  EXPECT_FALSE(matches(e.g, R"({"ab":1,"ab":"x"})"));
  EXPECT_FALSE(matches(e.g, R"({"ab":"x"})"));
}

TEST(JsonSchemaMisc, EnumConstAndAnyOfWithSiblings) {
  Compiled c = compile({{"type", "integer"}, {"enum", {1, 2.0, "x", 3.5}}});
  EXPECT_TRUE(matches(c.g, "1"));
  EXPECT_TRUE(matches(c.g, "2"));
  EXPECT_FALSE(matches(c.g, "\"x\""));
  EXPECT_FALSE(matches(c.g, "3.5"));
  Compiled o = compile({{"const", {{"a", {1, 2}}}}});
  EXPECT_TRUE(matches(o.g, R"({"a":[1,2]})"));
  // Siblings are merged into each branch: anyOf of required subsets.
  Compiled a = compile({{"type", "object"},
                        {"properties", {{"x", {{"type", "integer"}}}, {"y", {{"type", "integer"}}}}},
                        {"additionalProperties", false},
                        {"anyOf", {{{"required", {"x"}}}, {{"required", {"y"}}}}}});
  EXPECT_TRUE(matches(a.g, R"({"x":1})"));
  EXPECT_TRUE(matches(a.g, R"({"y":1})"));
  EXPECT_TRUE(matches(a.g, R"({"x":1,"y":2})"));
  EXPECT_FALSE(matches(a.g, R"({})"));
}

}  // namespace
}  // namespace tachyon::constrain
