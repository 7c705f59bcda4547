// The recognizer against a slow reference, JSON acceptance, token masks against brute force,
// EOG handling and the mask caches.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "constrain/grammar.h"
#include "constrain/matcher.h"

namespace tachyon::constrain {
namespace {

// A standard JSON grammar (RFC 8259, any nesting), as users write it in GBNF.
const char* kJsonGbnf = R"(
root   ::= ws value ws
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::=
  "{" ws (
            string ws ":" ws value
    ("," ws string ws ":" ws value)*
  )? ws "}"
array  ::=
  "[" ws (
            value
    (ws "," ws value)*
  )? ws "]"
string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\""
number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
ws     ::= [ \t\n]*
)";

// ---------------------------------------------------------------- reference recognizer
// Memoized "end positions" over the compiled byte grammar: ends(rule, i) = the j such that
// the rule derives s[i, j). Cycles (tail cycles are allowed) are handled by iterating the
// memo to its least fixpoint. In prefix mode, reaching the end of the input satisfies the
// rest of any sequence (sound because compiled grammars have only productive rules), so
// "s is a viable prefix" is n in ends(root, 0).
class Reference {
 public:
  Reference(const Grammar& g, std::string s, bool prefix) : g_(g), s_(std::move(s)), prefix_(prefix) {}

  bool root_reaches_end() {
    const int n = static_cast<int>(s_.size());
    do {
      changed_ = false;
      fresh_.clear();
      rule_ends(g_.root_rule(), 0);
    } while (changed_);
    return memo_[{g_.root_rule(), 0}].count(n) > 0;
  }

 private:
  std::set<int> seq_ends(uint32_t pos, int i) {
    const int n = static_cast<int>(s_.size());
    if (prefix_ && i == n) return {n};
    const GrammarElem& e = g_.elems()[pos];
    switch (e.kind) {
      case GrammarElem::kEnd:
        return {i};
      case GrammarElem::kBytes: {
        if (i < n && static_cast<uint8_t>(s_[i]) >= e.lo && static_cast<uint8_t>(s_[i]) <= e.hi) {
          return seq_ends(pos + 1, i + 1);
        }
        return {};
      }
      case GrammarElem::kRule: {
        std::set<int> out;
        for (int j : rule_ends(e.rule, i)) {
          for (int k : seq_ends(pos + 1, j)) out.insert(k);
        }
        return out;
      }
    }
    return {};
  }

  std::set<int> rule_ends(uint32_t r, int i) {
    const std::pair<uint32_t, int> key{r, i};
    if (!fresh_.insert(key).second) return memo_[key];  // computed (or in progress) this pass
    std::set<int> out = memo_[key];
    for (uint32_t a : g_.alternatives(r)) {
      for (int j : seq_ends(a, i)) out.insert(j);
    }
    std::set<int>& m = memo_[key];
    if (out.size() != m.size()) {
      m = out;
      changed_ = true;
    }
    return out;
  }

  const Grammar& g_;
  std::string s_;
  bool prefix_;
  std::map<std::pair<uint32_t, int>, std::set<int>> memo_;
  std::set<std::pair<uint32_t, int>> fresh_;
  bool changed_ = false;
};

bool ref_viable(const Grammar& g, const std::string& s) { return Reference(g, s, true).root_reaches_end(); }
bool ref_complete(const Grammar& g, const std::string& s) { return Reference(g, s, false).root_reaches_end(); }

std::shared_ptr<const Grammar> must_parse(const std::string& text) {
  std::string err;
  auto g = parse_gbnf(text, &err);
  EXPECT_TRUE(g) << text << "\n-> " << err;
  return g;
}

std::shared_ptr<const TokenIndex> byte_vocab() {
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.push_back(std::string(1, static_cast<char>(b)));
  return std::make_shared<const TokenIndex>(v, std::vector<bool>{}, std::vector<int32_t>{});
}

bool matches(const std::shared_ptr<const Grammar>& g, std::string_view s) {
  Matcher m(g, byte_vocab());
  return m.accept_bytes(s) && m.is_complete();
}

TEST(Reference, SanityOnKnownCases) {
  auto g = must_parse("root ::= \"(\" root \")\" root | \"\"");
  EXPECT_TRUE(ref_complete(*g, "(()())"));
  EXPECT_FALSE(ref_complete(*g, "(()"));
  EXPECT_TRUE(ref_viable(*g, "(()"));
  EXPECT_FALSE(ref_viable(*g, "())"));
  auto cyc = must_parse("root ::= a\na ::= b\nb ::= a | \"x\"");
  EXPECT_TRUE(ref_complete(*cyc, "x"));
}

TEST(Json, AcceptsAndRejects) {
  auto g = must_parse(kJsonGbnf);
  for (const char* ok : {"{}", "[]", "0", "-0.5e+10", "\"\"", "\"a\\\"b\\u00e9\\n\"", "true", " null ",
                         "{\"a\": [1, 2.5, {\"b\": null}], \"c\": \"d\"}", "[[[[[]]]]]", "\"日本語 🙂\"",
                         "{\n  \"k\" : -12E3\n}", "[1,2,3]", "123456789"}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {"", "{", "{]", "[1,]", "[,1]", "01", "-", "1.", ".5", "1e", "\"abc", "\"a\nb\"",
                          "\"\\x\"", "\"\\u12G4\"", "tru", "nul", "{\"a\" 1}", "{\"a\":}", "{a:1}", "[1 2]",
                          "\"\xC3\"", "\"\xED\xA0\x80\"", "\"\xC0\xAF\"", "{} {}", "[\"a\",]"}) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
  Matcher m(g, byte_vocab());
  EXPECT_TRUE(m.accept_bytes("{\"a\": [1, \"x"));
  EXPECT_FALSE(m.is_complete());
  EXPECT_TRUE(m.can_continue());
  EXPECT_FALSE(m.accept_bytes("\x01"));  // a control character; the state is unchanged
  EXPECT_FALSE(m.accept_bytes("x\"}"));   // a prefix fits, the whole does not
  EXPECT_TRUE(m.accept_bytes("\"]}"));
  EXPECT_TRUE(m.is_complete());
  EXPECT_TRUE(m.can_continue());  // trailing whitespace
  m.reset();
  EXPECT_FALSE(m.is_complete());
  EXPECT_TRUE(m.accept_bytes("7"));
  EXPECT_TRUE(m.is_complete());
}

// Random strings: every prefix's viability and completeness agree with the reference. Each
// next byte is drawn uniformly from the alphabet (30%) or among the bytes the *reference*
// says keep the string viable, so both wrong accepts and wrong rejects are reachable.
void differential(const std::string& gbnf, const std::string& alphabet, int n_strings, int max_len, uint32_t seed) {
  auto g = must_parse(gbnf);
  ASSERT_TRUE(g);
  std::mt19937 rng(seed);
  Matcher m(g, byte_vocab());
  for (int t = 0; t < n_strings; ++t) {
    m.reset();
    std::string s;
    bool alive = true;
    const int len = static_cast<int>(rng() % (max_len + 1));
    while (static_cast<int>(s.size()) < len) {
      std::string pick;
      if (rng() % 10 < 3) {
        pick = alphabet[rng() % alphabet.size()];
      } else {
        std::string ok;
        for (char c : alphabet) {
          if (ref_viable(*g, s + c)) ok += c;
        }
        if (ok.empty()) break;
        pick = ok[rng() % ok.size()];
      }
      const std::string next = s + pick;
      const bool want_viable = ref_viable(*g, next);
      Matcher copy = m;  // the matcher must leave its state unchanged on a rejection
      const bool got = m.accept_bytes(pick);
      ASSERT_EQ(got, want_viable) << gbnf << "\nstring: " << testing::PrintToString(next);
      if (!got) {
        ASSERT_EQ(m.is_complete(), copy.is_complete());
        ASSERT_EQ(m.can_continue(), copy.can_continue());
        alive = false;
        break;
      }
      s = next;
      ASSERT_EQ(m.is_complete(), ref_complete(*g, s)) << gbnf << "\nstring: " << testing::PrintToString(s);
    }
    if (alive) {  // the whole string at once, from a fresh matcher
      Matcher fresh(g, byte_vocab());
      ASSERT_TRUE(fresh.accept_bytes(s));
      ASSERT_EQ(fresh.is_complete(), ref_complete(*g, s));
    }
  }
}

TEST(Differential, BalancedParens) { differential("root ::= \"(\" root \")\" root | \"\"", "()", 300, 14, 1); }

TEST(Differential, Json) { differential(kJsonGbnf, "{}[]\",:0-1.e \\ua\xC3\xA9t", 250, 14, 2); }

TEST(Differential, AmbiguousAndNullable) {
  // Many derivations of the same string, nullable repetitions, tail cycles.
  differential("root ::= (a | b)* \"c\"?\na ::= \"x\" | \"xy\" | \"\"\nb ::= \"y\"* \"x\"?", "xyc", 300, 10, 3);
  differential("root ::= s\ns ::= \"a\" s \"b\" | \"a\" s | \"\"", "ab", 300, 12, 4);
  differential("root ::= p\np ::= q | \"z\"\nq ::= p \"\"? | \"w\" p", "zwx", 200, 8, 5);
}

TEST(Differential, BoundsAndUtf8Classes) {
  differential("root ::= ([a-c] | [\\u00e0-\\u00ff]){1,3} (\"-\" [^a-z]{0,2})*", "ab-\xC3\xA0\xA9\xBF\xE2\x82\xACz",
               300, 10, 6);
  differential("root ::= \"\\U0001F600\"+ | [\\u0800-\\uFFFF]{2}", "\xF0\x9F\x98\x80\xE0\xA0\xEF\xBF\xBD", 300, 9, 7);
}

// ---------------------------------------------------------------- masks

struct Vocab {
  std::vector<std::string> bytes;
  std::vector<bool> allowed;
  std::vector<int32_t> eog;
};

// All 1-3 byte strings over an alphabet, multi-byte UTF-8 tokens (whole, split, joined with
// ASCII), duplicates, control tokens (disallowed), an empty token and two EOG tokens.
Vocab synthetic_vocab(const std::string& alphabet) {
  Vocab v;
  auto add = [&](std::string s, bool allowed = true) {
    v.bytes.push_back(std::move(s));
    v.allowed.push_back(allowed);
  };
  v.eog.push_back(static_cast<int32_t>(v.bytes.size()));
  add("</s>", false);
  for (char a : alphabet) {
    add(std::string(1, a));
    for (char b : alphabet) {
      add(std::string{a, b});
      for (char c : alphabet) add(std::string{a, b, c});
    }
  }
  for (const char* s : {"\xC3\xA9", "\xC3", "\xA9", "\xA9\"", "\"\xC3", "\xE6\x97\xA5", "\xE6\x97", "\xA5\xE6",
                        "\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80", "\xF0\x9F", "\x98\x80\"", "\xFF", "\xC0\xAF",
                        "\xED\xA0\x80", "true", "false", "null", "\"key\"", "\": ", "\\u00e9", "12345", "-0.5e"}) {
    add(s);
  }
  add("ab");  // a duplicate of an earlier token's bytes
  add("<|ctrl|>", false);
  add("{", false);  // a disallowed token whose text would fit
  add("");
  v.eog.push_back(static_cast<int32_t>(v.bytes.size()));
  add("<|eot|>", false);
  return v;
}

std::vector<uint32_t> brute_force_mask(const std::shared_ptr<const Grammar>& g,
                                       const std::shared_ptr<const TokenIndex>& idx, const std::string& history,
                                       bool ended) {
  std::vector<uint32_t> words((idx->n_vocab() + 31) / 32, 0);
  for (int32_t id = 0; id < idx->n_vocab(); ++id) {
    Matcher fresh(g, idx);  // no memo shared with the matcher under test
    EXPECT_TRUE(fresh.accept_bytes(history));
    if (ended) {
      for (int32_t e : idx->eog()) {
        if (fresh.accept(e)) break;
      }
    }
    if (fresh.accept(id)) words[id / 32] |= 1u << (id % 32);
  }
  return words;
}

bool bit(const std::vector<uint32_t>& w, int32_t id) { return (w[id / 32] >> (id % 32)) & 1; }

TEST(Masks, EqualBruteForceAlongRandomWalks) {
  auto g = must_parse(kJsonGbnf);
  const Vocab v = synthetic_vocab("{}[]\",:1a ");
  auto idx = std::make_shared<const TokenIndex>(v.bytes, v.allowed, v.eog);
  std::mt19937 rng(11);
  for (int walk = 0; walk < 4; ++walk) {
    Matcher m(g, idx);
    std::string history;
    for (int step = 0; step < 25; ++step) {
      std::vector<uint32_t> mask;
      m.fill_mask(&mask);
      ASSERT_EQ(mask.size(), (idx->n_vocab() + 31) / 32u);
      const auto want = brute_force_mask(g, idx, history, false);
      ASSERT_EQ(mask, want) << "walk " << walk << " step " << step << " after " << testing::PrintToString(history);
      // accepts() agrees with the mask; the EOG bits follow is_complete().
      for (int32_t id = 0; id < idx->n_vocab(); ++id) ASSERT_EQ(m.accepts(id), bit(mask, id)) << id;
      for (int32_t e : v.eog) ASSERT_EQ(bit(mask, e), m.is_complete());
      // Sample a few tokens against the reference recognizer directly.
      for (int k = 0; k < 20; ++k) {
        const int32_t id = static_cast<int32_t>(rng() % idx->n_vocab());
        if (!idx->in_trie(id)) continue;
        ASSERT_EQ(bit(mask, id), ref_viable(*g, history + v.bytes[id])) << testing::PrintToString(history + v.bytes[id]);
      }
      std::vector<int32_t> allowed;
      for (int32_t id = 0; id < idx->n_vocab(); ++id) {
        if (bit(mask, id) && !idx->is_eog(id)) allowed.push_back(id);
      }
      ASSERT_FALSE(m.is_dead());
      if (allowed.empty()) break;
      const int32_t pick = allowed[rng() % allowed.size()];
      ASSERT_TRUE(m.accept(pick));
      history += v.bytes[pick];
    }
  }
}

TEST(Masks, EogHandling) {
  auto g = must_parse("root ::= \"ab\" | \"ab\" \"c\"+");
  const Vocab v = synthetic_vocab("abc");
  auto idx = std::make_shared<const TokenIndex>(v.bytes, v.allowed, v.eog);
  Matcher m(g, idx);
  std::vector<uint32_t> mask;
  m.fill_mask(&mask);
  EXPECT_FALSE(bit(mask, v.eog[0]));
  EXPECT_FALSE(m.accept(v.eog[0]));
  EXPECT_TRUE(m.accept_bytes("ab"));
  m.fill_mask(&mask);
  EXPECT_TRUE(bit(mask, v.eog[0]));
  EXPECT_TRUE(bit(mask, v.eog[1]));
  EXPECT_TRUE(m.accepts(v.eog[1]));
  EXPECT_EQ(mask, brute_force_mask(g, idx, "ab", false));
  EXPECT_TRUE(m.accept(v.eog[1]));
  // After an EOG nothing more is accepted, until reset().
  EXPECT_TRUE(m.is_dead());
  EXPECT_TRUE(m.is_complete());
  EXPECT_FALSE(m.can_continue());
  m.fill_mask(&mask);
  EXPECT_TRUE(std::all_of(mask.begin(), mask.end(), [](uint32_t w) { return w == 0; }));
  EXPECT_FALSE(m.accepts(1));
  EXPECT_FALSE(m.accept_bytes("c"));
  m.reset();
  EXPECT_FALSE(m.is_dead());
  EXPECT_TRUE(m.accept_bytes("abccc"));
  // complete and unable to continue: only EOG is allowed
  auto fixed = must_parse("root ::= \"ab\"");
  Matcher f(fixed, idx);
  EXPECT_TRUE(f.accept_bytes("ab"));
  EXPECT_FALSE(f.can_continue());
  f.fill_mask(&mask);
  for (int32_t id = 0; id < idx->n_vocab(); ++id) EXPECT_EQ(bit(mask, id), idx->is_eog(id)) << id;
  EXPECT_FALSE(f.is_dead());
}

TEST(Masks, ControlEmptyOutOfRangeAndInvalidUtf8Tokens) {
  auto g = must_parse("root ::= .*");
  const Vocab v = synthetic_vocab("{a");
  auto idx = std::make_shared<const TokenIndex>(v.bytes, v.allowed, v.eog);
  Matcher m(g, idx);
  std::vector<uint32_t> mask;
  m.fill_mask(&mask);
  for (int32_t id = 0; id < idx->n_vocab(); ++id) {
    const std::string& b = v.bytes[id];
    if (!v.allowed[id] && !idx->is_eog(id)) {
      EXPECT_FALSE(bit(mask, id)) << "control token " << b;
    }
    if (b.empty()) {
      EXPECT_FALSE(bit(mask, id)) << "empty token";
    }
  }
  auto id_of = [&](const std::string& s) {
    return static_cast<int32_t>(std::find(v.bytes.begin(), v.bytes.end(), s) - v.bytes.begin());
  };
  EXPECT_TRUE(bit(mask, id_of("\xC3")));       // a character's first byte
  EXPECT_FALSE(bit(mask, id_of("\xA9")));      // a stray continuation byte
  EXPECT_FALSE(bit(mask, id_of("\xFF")));
  EXPECT_FALSE(bit(mask, id_of("\xC0\xAF")));  // overlong
  EXPECT_FALSE(bit(mask, id_of("\xED\xA0\x80")));  // surrogate
  EXPECT_TRUE(m.accept(id_of("\xC3")));
  m.fill_mask(&mask);
  EXPECT_TRUE(bit(mask, id_of("\xA9")));       // now it completes the character
  EXPECT_TRUE(bit(mask, id_of("\xA9\"")));
  EXPECT_FALSE(bit(mask, id_of("\xC3")));
  EXPECT_FALSE(bit(mask, v.eog[0]));          // mid-character is not complete
  EXPECT_FALSE(m.accepts(-1));
  EXPECT_FALSE(m.accepts(idx->n_vocab()));
  EXPECT_FALSE(m.accept(idx->n_vocab()));
}

TEST(Masks, CacheHitsReturnTheSameMask) {
  auto g = must_parse(kJsonGbnf);
  const Vocab v = synthetic_vocab("{}[]\",:1a ");
  auto idx = std::make_shared<const TokenIndex>(v.bytes, v.allowed, v.eog);
  auto id_of = [&](const std::string& s) {
    return static_cast<int32_t>(std::find(v.bytes.begin(), v.bytes.end(), s) - v.bytes.begin());
  };
  Matcher m(g, idx);
  ASSERT_TRUE(m.accept_bytes("[\"a"));
  std::vector<uint32_t> first, again;
  m.fill_mask(&first);
  EXPECT_EQ(m.stats().masks, 1u);
  EXPECT_EQ(m.stats().cache_hits, 0u);
  // Inside a string, the state repeats: later masks are served from the per-matcher cache.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(m.accept(id_of("aaa")));
    m.fill_mask(&again);
    EXPECT_EQ(again, first);
  }
  EXPECT_EQ(m.stats().masks, 6u);
  EXPECT_EQ(m.stats().cache_hits, 5u);
  EXPECT_GT(m.stats().mask_us, 0.0);
  EXPECT_EQ(first, brute_force_mask(g, idx, "[\"aaaaaaaaaaaaaaaa", false));
  // Another request on the same grammar hits the grammar's shared cache, even though its
  // node and state numbering differ (it got there through another path).
  Matcher other(g, idx);
  ASSERT_TRUE(other.accept_bytes("[\"xyz\\n\", \"q"));
  ASSERT_TRUE(other.accept_bytes(""));
  std::vector<uint32_t> shared;
  Matcher other2(g, idx);
  ASSERT_TRUE(other2.accept_bytes("[\"b"));
  other2.fill_mask(&shared);
  EXPECT_EQ(other2.stats().cache_hits, 1u);
  EXPECT_EQ(shared, first);
  other.fill_mask(&shared);
  EXPECT_EQ(other.stats().cache_hits, 0u);  // a different state: inside the second element
  EXPECT_EQ(shared, brute_force_mask(g, idx, "[\"xyz\\n\", \"q", false));
  // The same grammar text parsed again is a different Grammar with its own cache.
  auto g2 = must_parse(kJsonGbnf);
  Matcher third(g2, idx);
  ASSERT_TRUE(third.accept_bytes("[\"a"));
  third.fill_mask(&again);
  EXPECT_EQ(third.stats().cache_hits, 0u);
  EXPECT_EQ(again, first);
  // A different vocabulary on the same grammar does not see these masks.
  const Vocab v2 = synthetic_vocab("{}[]\",:1b ");
  auto idx2 = std::make_shared<const TokenIndex>(v2.bytes, v2.allowed, v2.eog);
  EXPECT_NE(idx2->hash(), idx->hash());
  Matcher fourth(g, idx2);
  ASSERT_TRUE(fourth.accept_bytes("[\"a"));
  fourth.fill_mask(&again);
  EXPECT_EQ(fourth.stats().cache_hits, 0u);
  EXPECT_EQ(again, brute_force_mask(g, idx2, "[\"a", false));
}

TEST(Masks, DeepNestingSurvivesTableRebuilds) {
  // Every nesting level is a new state; thousands of them force the per-matcher tables to
  // be rebuilt around the current state. Masks and acceptance must stay exact.
  auto g = must_parse(kJsonGbnf);
  const Vocab v = synthetic_vocab("[]1,");
  auto idx = std::make_shared<const TokenIndex>(v.bytes, v.allowed, v.eog);
  auto id_of = [&](const std::string& s) {
    return static_cast<int32_t>(std::find(v.bytes.begin(), v.bytes.end(), s) - v.bytes.begin());
  };
  Matcher m(g, idx);
  const int depth = 3000;
  std::vector<uint32_t> mask;
  for (int i = 0; i < depth; ++i) {
    ASSERT_TRUE(m.accept(id_of("[")));
    if (i % 500 == 499) {
      m.fill_mask(&mask);
      EXPECT_TRUE(bit(mask, id_of("[[1")));
      EXPECT_TRUE(bit(mask, id_of("1]]")));
      EXPECT_FALSE(bit(mask, id_of("1,]")));
      EXPECT_FALSE(bit(mask, id_of(",")));
    }
  }
  ASSERT_TRUE(m.accept(id_of("1,1")));
  for (int i = 0; i < depth - 1; ++i) ASSERT_TRUE(m.accept(id_of("]"))) << i;
  EXPECT_FALSE(m.is_complete());
  m.fill_mask(&mask);
  EXPECT_TRUE(bit(mask, id_of("]")));
  EXPECT_FALSE(bit(mask, id_of("]]")));
  EXPECT_TRUE(m.accept(id_of("]")));
  EXPECT_TRUE(m.is_complete());
  EXPECT_FALSE(m.accepts(id_of("]")));
}

TEST(Masks, CopiesAreIndependent) {
  auto g = must_parse(kJsonGbnf);
  const Vocab v = synthetic_vocab("[]1,");
  auto idx = std::make_shared<const TokenIndex>(v.bytes, v.allowed, v.eog);
  Matcher a(g, idx);
  ASSERT_TRUE(a.accept_bytes("[1"));
  Matcher b = a;
  ASSERT_TRUE(b.accept_bytes("]"));
  EXPECT_TRUE(b.is_complete());
  EXPECT_FALSE(a.is_complete());
  ASSERT_TRUE(a.accept_bytes(",1]"));
  EXPECT_TRUE(a.is_complete());
}

TEST(TokenIndexTest, TrieAndHash) {
  const Vocab v = synthetic_vocab("ab");
  TokenIndex idx(v.bytes, v.allowed, v.eog);
  EXPECT_EQ(idx.n_vocab(), static_cast<int>(v.bytes.size()));
  // Every text token appears exactly once in the trie, under the node spelling its bytes.
  std::vector<int> seen(v.bytes.size(), 0);
  const auto& t = idx.trie();
  std::vector<std::string> path;
  for (size_t i = 0; i + 1 < t.size(); ++i) {
    path.resize(t[i].depth - 1);
    path.push_back((path.empty() ? std::string() : path.back()) + static_cast<char>(t[i].byte));
    EXPECT_GT(t[i].end, i);
    for (uint32_t k = t[i].tok_begin; k < t[i + 1].tok_begin; ++k) {
      const int32_t id = idx.trie_tokens()[k];
      EXPECT_EQ(v.bytes[id], path.back());
      ++seen[id];
    }
  }
  for (size_t id = 0; id < v.bytes.size(); ++id) {
    const bool text = v.allowed[id] && !v.bytes[id].empty();
    EXPECT_EQ(seen[id], text ? 1 : 0) << id;
    EXPECT_EQ(idx.in_trie(static_cast<int32_t>(id)), text);
  }
  TokenIndex same(v.bytes, v.allowed, v.eog);
  EXPECT_EQ(same.hash(), idx.hash());
  std::vector<bool> allowed2 = v.allowed;
  allowed2[3] = !allowed2[3];
  EXPECT_NE(TokenIndex(v.bytes, allowed2, v.eog).hash(), idx.hash());
}

}  // namespace
}  // namespace tachyon::constrain
