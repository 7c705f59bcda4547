// Cost of the structured-output constraint stage (src/constrain/ + the engine's "constraint
// stage"), per generated token, on a real GGUF vocabulary or a synthetic 100k-token one.
//
//   constrain_bench --vocab FILE.gguf --schema FILE.json [--tokens N] [--requests R]
//                   [--grammars G] [--seed S] [--mode uniform|follow|both] [--strict]
//   constrain_bench [--schema FILE.json]     (no --vocab: the synthetic vocabulary)
//
// Built by bench/CMakeLists.txt (target constrain_bench); bench/structured.sh runs it.
//
// With --vocab: the vocabulary is loaded with the project's tokenizer and the TokenIndex is
// built exactly as Engine::token_index() builds it (control and EOG tokens out of the trie,
// EOG ids from the tokenizer); the schema is compiled as the server compiles
// response_format json_schema (json_schema_to_gbnf, then parse_gbnf). Then it simulates
// generations of up to N tokens. Each step:
//   draw    the "model" token, untimed. uniform: uniform over the vocabulary (a random-weight
//           model, whose argmax the grammar almost always refuses). follow: 90% of the time a
//           uniform draw among the tokens the grammar allows (a trained model that follows
//           the format; drawn from an untimed oracle Matcher on its own Grammar copy, so it
//           warms none of the measured caches), else uniform over the vocabulary.
//   check   min_completion_after(draw) <= budget (the engine's first test; budget = tokens
//           left after this one)
//   mask    when refused: fill_mask, then a random allowed token (the pick is untimed: in the
//           engine the sampler's masked pass does it)
//   budget  when that token cannot finish within the budget: the engine's restrict_to_budget
//           (min_completion_after on every allowed token), then another pick
//   accept  accept(token) and can_continue() (the engine's advance_constraint)
// The per-token constraint time is check + mask + budget + accept. Request 0 of each freshly
// compiled Grammar is "cold" (empty shared mask cache, empty lazy DFA); requests 1..R-1 on
// the same Grammar are "warm" (fresh Matcher per request, as in the engine, but the
// Grammar's shared mask cache filled by the earlier requests). Every request walks its own
// random path. Masks "computed" are trie walks; "hits" come from the Matcher's own cache or
// the Grammar's shared one.
//
// Without --vocab (the original synthetic mode): a synthetic vocabulary (below), per-context
// mask costs and a random walk over a generic JSON grammar; with --schema also the
// simulation above on that vocabulary.
//
// Synthetic vocabulary: all 256 single bytes plus random byte strings shaped like a BPE
// vocabulary (length 2-16, mean ~6; half start with a space; letters, digits, punctuation,
// JSON fragments, whitespace runs, 2- and 3-byte UTF-8 characters and some split characters),
// deduplicated, plus a few control tokens and an EOG token. For each context it reports
//   cold  : a fresh Grammar and Matcher (empty caches, empty lazy DFA), the first fill_mask:
//           the trie walk plus building the DFA rows it needs. Every recognizer state not seen
//           before (e.g. the same lexical context at another nesting depth) costs this.
//   hit   : fill_mask again in the same state (the per-matcher cache)
//   shared: a second Matcher on the same Grammar reaching the same state (the shared cache)
// and a random-walk "generation" over a JSON grammar: per-token mask time and hit rate.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "constrain/grammar.h"
#include "constrain/json_schema.h"
#include "constrain/matcher.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

using namespace tachyon;
using namespace tachyon::constrain;

namespace {

const char* kJsonGbnf = R"(
root   ::= ws value ws
value  ::= object | array | string | number | ("true" | "false" | "null")
object ::= "{" ws ( string ws ":" ws value ("," ws string ws ":" ws value)* )? ws "}"
array  ::= "[" ws ( value (ws "," ws value)* )? ws "]"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4}) )* "\""
number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [-+]? [0-9]+)?
ws     ::= [ \t\n]*
)";

double now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> synthetic_vocab(int n, std::mt19937* rng) {
  std::set<std::string> seen;
  std::vector<std::string> v;
  auto add = [&](const std::string& s) {
    if (seen.insert(s).second) v.push_back(s);
  };
  for (int b = 0; b < 256; ++b) add(std::string(1, static_cast<char>(b)));
  const std::string lower = "etaoinshrdlucmfwypvbgkjqxz";
  const std::string punct = ".,;:!?()[]{}<>\"'-_/\\=+*&%$#@|`~";
  const char* fragments[] = {"\":", "{\"", "\",", "\"}", "},", "],", "\": \"", "\n", "\n\n", "  ", "    ", "\t", "://",
                             "->", "==", "0", "00", "123", "true", "null", "false", "\\n", "\\\""};
  const char* utf8[] = {"é", "ü", "ñ", "ç", "日", "本", "語", "中", "文", "の", "は", "д", "я", "ж", "€", "—"};
  std::geometric_distribution<int> extra(0.25);
  while (static_cast<int>(v.size()) < n) {
    const int len = 2 + std::min(14, extra(*rng));
    std::string s;
    const int kind = (*rng)() % 100;
    if (kind < 50) s += ' ';
    while (static_cast<int>(s.size()) < len) {
      const int r = (*rng)() % 100;
      if (r < 70) {
        s += lower[std::min<int>(lower.size() - 1, std::geometric_distribution<int>(0.15)(*rng))];
      } else if (r < 76) {
        s += static_cast<char>('A' + (*rng)() % 26);
      } else if (r < 81) {
        s += static_cast<char>('0' + (*rng)() % 10);
      } else if (r < 88) {
        s += punct[(*rng)() % punct.size()];
      } else if (r < 93) {
        s += fragments[(*rng)() % (sizeof fragments / sizeof *fragments)];
      } else {
        s += utf8[(*rng)() % (sizeof utf8 / sizeof *utf8)];
      }
    }
    if ((*rng)() % 50 == 0) s.pop_back();  // occasionally split a UTF-8 character
    add(s);
  }
  return v;
}

struct Pct {
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

Pct percentiles(std::vector<double> xs) {
  Pct p;
  if (xs.empty()) return p;
  std::sort(xs.begin(), xs.end());
  double sum = 0;
  for (double x : xs) sum += x;
  auto at = [&](double q) { return xs[std::min(xs.size() - 1, static_cast<size_t>(q * (xs.size() - 1) + 0.5))]; };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  p.max = xs.back();
  p.mean = sum / xs.size();
  return p;
}

// The vocabulary as the TokenIndex constructor takes it.
struct Vocab {
  std::vector<std::string> bytes;  // [n_vocab]
  std::vector<bool> allowed;       // [n_vocab]
  std::vector<int32_t> eog;
  std::string what;
};

Vocab make_synthetic_vocab() {
  std::mt19937 rng(1234);
  Vocab v;
  v.bytes = synthetic_vocab(100000, &rng);
  v.allowed.assign(v.bytes.size(), true);
  for (const char* ctrl : {"<s>", "<|im_start|>", "<|im_end|>"}) {
    v.bytes.push_back(ctrl);
    v.allowed.push_back(false);
  }
  v.eog = {static_cast<int32_t>(v.bytes.size() - 1)};
  v.what = "synthetic";
  return v;
}

// Exactly Engine::token_index()'s construction.
bool load_gguf_vocab(const std::string& path, Vocab* v) {
  auto f = gguf::File::open(path);
  if (!f.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), f.status().message().c_str());
    return false;
  }
  auto t = tok::Tokenizer::from_gguf(*f.value());
  if (!t.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), t.status().message().c_str());
    return false;
  }
  const tok::Tokenizer& tk = *t.value();
  const int n = tk.n_vocab();
  v->bytes.assign(n, std::string());
  v->allowed.assign(n, false);
  for (int32_t id = 0; id < n; ++id) {
    if (tk.is_control(id) || tk.is_eog(id)) continue;  // never part of constrained text
    v->bytes[id] = tk.token_to_piece(id, false);
    v->allowed[id] = !v->bytes[id].empty();
  }
  v->eog = tk.eog_ids();
  v->what = path;
  return true;
}

int run_synthetic(const std::shared_ptr<const TokenIndex>& idx) {
  struct Ctx {
    const char* name;
    const char* prefix;
  };
  const Ctx ctxs[] = {{"inside a JSON string", "{\"name\": \"abc"},
                      {"after {", "{"},
                      {"inside a number", "{\"n\": 12"},
                      {"value start", "{\"n\": "}};
  const int kReps = 40;
  std::printf("\n%-22s %10s %10s %10s %10s %10s %10s %9s\n", "context (us)", "cold p50", "cold p99", "hit p50",
              "hit p99", "shared p50", "shared p99", "allowed");
  for (const Ctx& c : ctxs) {
    std::vector<double> cold, miss, hit;
    int n_allowed = 0;
    for (int r = 0; r < kReps; ++r) {
      std::string err;
      auto g = parse_gbnf(kJsonGbnf, &err);
      if (!g) {
        std::printf("grammar error: %s\n", err.c_str());
        return 1;
      }
      Matcher m(g, idx);
      m.accept_bytes(c.prefix);
      std::vector<uint32_t> mask;
      double t = now_us();
      m.fill_mask(&mask);
      cold.push_back(now_us() - t);
      Matcher m2(g, idx);
      m2.accept_bytes(c.prefix);
      t = now_us();
      m2.fill_mask(&mask);
      miss.push_back(now_us() - t);
      for (int k = 0; k < 5; ++k) {
        t = now_us();
        m.fill_mask(&mask);
        hit.push_back(now_us() - t);
      }
      n_allowed = 0;
      for (uint32_t w : mask) n_allowed += __builtin_popcount(w);
    }
    const Pct a = percentiles(cold), b = percentiles(miss), h = percentiles(hit);
    std::printf("%-22s %10.1f %10.1f %10.2f %10.2f %10.2f %10.2f %9d\n", c.name, a.p50, a.p99, h.p50, h.p99, b.p50,
                b.p99, n_allowed);
  }

  // A random walk: a JSON document generated by picking allowed tokens (biased to short
  // tokens and to closing the document after a while), timing every mask and accepts().
  {
    std::string err;
    auto g = parse_gbnf(kJsonGbnf, &err);
    std::vector<double> mask_us, accepts_ns;
    uint64_t masks = 0, hits = 0;
    std::mt19937 wr(7);
    for (int doc = 0; doc < 20; ++doc) {
      Matcher m(g, idx);
      m.accept_bytes("{\"");
      std::vector<uint32_t> mask;
      for (int step = 0; step < 200 && !m.is_complete(); ++step) {
        double t = now_us();
        m.fill_mask(&mask);
        mask_us.push_back(now_us() - t);
        std::vector<int32_t> ok;
        for (int32_t id = 0; id < idx->n_vocab(); ++id) {
          if ((mask[id >> 5] >> (id & 31)) & 1) ok.push_back(id);
        }
        // accepts() on a few random ids (the sampler's first check)
        t = now_us();
        int n_acc = 0;
        for (int k = 0; k < 100; ++k) n_acc += m.accepts(static_cast<int32_t>(wr() % idx->n_vocab()));
        accepts_ns.push_back((now_us() - t) * 1000 / 100);
        (void)n_acc;
        // prefer structure-closing tokens late in the document
        int32_t pick = ok[wr() % ok.size()];
        if (step > 60) {
          for (int32_t id : ok) {
            const std::string& s = idx->token_bytes(id);
            if (s.find_first_of("\"}]") != std::string::npos && wr() % 4 == 0) {
              pick = id;
              break;
            }
          }
        }
        if (idx->is_eog(pick)) break;
        m.accept(pick);
      }
      masks += m.stats().masks;
      hits += m.stats().cache_hits;
    }
    const Pct p = percentiles(mask_us), a = percentiles(accepts_ns);
    std::printf("\nrandom-walk generation: %zu masks, p50 %.1f us, p99 %.1f us, mean %.1f us, cache hits %.0f%%\n",
                mask_us.size(), p.p50, p.p99, p.mean, 100.0 * hits / std::max<uint64_t>(1, masks));
    std::printf("accepts(random id): p50 %.0f ns, p99 %.0f ns per call\n", a.p50, a.p99);
  }
  return 0;
}

// ---------------------------------------------------------------- the engine's constraint stage

// Engine::Impl::restrict_to_budget's full scan: keeps the mask's tokens after which the
// grammar can be completed within `budget` tokens; when none can, the ones that get closest.
// (The engine first checks only the model's 256 likeliest allowed tokens and scans everything
// only when none of them fits; the simulation has no logits, so it times the full scan: the
// worst case.)
void restrict_to_budget(const Matcher& m, std::vector<uint32_t>* mask, uint32_t budget) {
  uint32_t best = UINT32_MAX;
  std::vector<std::pair<int32_t, uint32_t>> kept;
  for (int w = 0; w < static_cast<int>(mask->size()); ++w) {
    for (uint32_t bits = (*mask)[w]; bits != 0; bits &= bits - 1) {
      const int32_t t = w * 32 + __builtin_ctz(bits);
      const uint32_t c = m.min_completion_after(t);
      if (c > budget) (*mask)[w] &= ~(1u << (t & 31));
      if (c < best) best = c;
      if (c <= budget || c == best) kept.push_back({t, c});
    }
  }
  if (best <= budget) return;
  for (auto [t, c] : kept)
    if (c == best) (*mask)[t >> 5] |= 1u << (t & 31);
}

// A uniformly random set bit of the mask (-1 if none): the stand-in for the sampler's draw.
int32_t random_allowed(const std::vector<uint32_t>& mask, std::mt19937_64* rng) {
  uint64_t n = 0;
  for (uint32_t w : mask) n += __builtin_popcount(w);
  if (n == 0) return -1;
  uint64_t k = (*rng)() % n;
  for (size_t w = 0; w < mask.size(); ++w) {
    const uint64_t c = __builtin_popcount(mask[w]);
    if (k >= c) {
      k -= c;
      continue;
    }
    uint32_t bits = mask[w];
    for (; k > 0; --k) bits &= bits - 1;
    return static_cast<int32_t>(w * 32 + __builtin_ctz(bits));
  }
  return -1;
}

enum class DrawMode { kUniform, kFollow };

// Per-token times (us) and counts of one phase (cold or warm).
struct Bucket {
  std::vector<double> total, check, mask, budget, accept;  // [tokens]
  std::vector<double> mask_only;                            // [fill_mask calls]
  uint64_t tokens = 0, masked = 0, restricted = 0, masks = 0, hits = 0;
  int requests = 0, completed = 0;
};

// One request: a fresh Matcher on `g` (as the engine makes per request), up to max_tokens.
void simulate_request(const std::shared_ptr<const Grammar>& g, const std::shared_ptr<const Grammar>& oracle_g,
                      const std::shared_ptr<const TokenIndex>& idx, DrawMode mode, int max_tokens,
                      std::mt19937_64* rng, Bucket* b) {
  Matcher m(g, idx);
  std::optional<Matcher> oracle;
  if (mode == DrawMode::kFollow) oracle.emplace(oracle_g, idx);
  std::vector<uint32_t> mask, oracle_mask;
  const int n_vocab = idx->n_vocab();
  bool completed = false;
  for (int n_generated = 0; n_generated < max_tokens; ++n_generated) {
    const uint32_t budget = static_cast<uint32_t>(max_tokens - n_generated - 1);
    int32_t draw = static_cast<int32_t>((*rng)() % n_vocab);
    if (oracle && (*rng)() % 100 < 90) {
      oracle->fill_mask(&oracle_mask);
      const int32_t a = random_allowed(oracle_mask, rng);
      if (a >= 0) draw = a;
    }
    // Timed: the constraint work only; the picks (the sampler's job) are outside the timers.
    int32_t pick = draw;
    double t = now_us();
    const bool ok = m.min_completion_after(draw) <= budget;
    const double check_us = now_us() - t;
    double mask_us = 0, budget_us = 0;
    if (!ok) {
      t = now_us();
      m.fill_mask(&mask);
      mask_us = now_us() - t;
      b->mask_only.push_back(mask_us);
      ++b->masked;
      pick = random_allowed(mask, rng);
      t = now_us();
      const bool fits = pick >= 0 && m.min_completion_after(pick) <= budget;
      if (!fits) {
        restrict_to_budget(m, &mask, budget);
        ++b->restricted;
      }
      budget_us = now_us() - t;
      if (!fits) pick = random_allowed(mask, rng);
    }
    if (pick < 0) break;  // a dead grammar: cannot happen after a mask
    t = now_us();
    bool more = false;
    if (!idx->is_eog(pick)) more = m.accept(pick) && m.can_continue();
    else m.accept(pick);
    const double accept_us = now_us() - t;
    b->check.push_back(check_us);
    b->mask.push_back(mask_us);
    b->budget.push_back(budget_us);
    b->accept.push_back(accept_us);
    b->total.push_back(check_us + mask_us + budget_us + accept_us);
    ++b->tokens;
    if (oracle) oracle->accept(pick);
    if (!more) {
      completed = m.is_complete();
      break;
    }
  }
  b->masks += m.stats().masks;
  b->hits += m.stats().cache_hits;
  ++b->requests;
  b->completed += completed;
}

void print_bucket(const char* name, const Bucket& b) {
  const Pct p = percentiles(b.total), mo = percentiles(b.mask_only);
  auto mean = [](const std::vector<double>& xs) {
    double s = 0;
    for (double x : xs) s += x;
    return xs.empty() ? 0.0 : s / xs.size();
  };
  std::printf("  %-5s %4d req %3d done %6llu tok %5.1f%% masked | per token us: p50 %7.2f p90 %7.2f p99 %8.1f max %8.1f "
              "mean %7.2f | masks %llu: computed %llu, hits %llu (%.0f%%); fill_mask p50 %.1f p99 %.1f us | "
              "mean us: check %.2f mask %.2f budget %.2f (%llu restricts) accept %.2f\n",
              name, b.requests, b.completed, static_cast<unsigned long long>(b.tokens),
              100.0 * b.masked / std::max<uint64_t>(1, b.tokens), p.p50, p.p90, p.p99, p.max, p.mean,
              static_cast<unsigned long long>(b.masks), static_cast<unsigned long long>(b.masks - b.hits),
              static_cast<unsigned long long>(b.hits), 100.0 * b.hits / std::max<uint64_t>(1, b.masks), mo.p50, mo.p99,
              mean(b.check), mean(b.mask), mean(b.budget), static_cast<unsigned long long>(b.restricted),
              mean(b.accept));
}

struct Options {
  std::string vocab, schema;
  int tokens = 256, requests = 8, grammars = 3;
  uint64_t seed = 1;
  bool uniform = true, follow = true, strict = false;
};

int run_schema(const Options& o, const std::shared_ptr<const TokenIndex>& idx) {
  std::ifstream in(o.schema);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", o.schema.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(ss.str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", o.schema.c_str(), e.what());
    return 1;
  }
  SchemaOptions opt;
  opt.strict = o.strict;
  SchemaGrammar sg;
  std::string err;
  double t = now_us();
  if (!json_schema_to_gbnf(schema, opt, &sg, &err)) {
    std::fprintf(stderr, "%s: %s\n", o.schema.c_str(), err.c_str());
    return 1;
  }
  const double convert_ms = (now_us() - t) / 1000;
  for (const auto& w : sg.warnings) std::printf("schema warning: %s\n", w.c_str());
  t = now_us();
  auto probe = parse_gbnf(sg.gbnf, &err);
  if (!probe) {
    std::fprintf(stderr, "grammar: %s\n", err.c_str());
    return 1;
  }
  std::printf("schema %s: GBNF %zu bytes, %u rules, %zu elements; json_schema_to_gbnf %.2f ms, parse_gbnf %.2f ms\n",
              o.schema.c_str(), sg.gbnf.size(), probe->n_rules(), probe->elems().size(), convert_ms,
              (now_us() - t) / 1000);
  std::printf("shortest document: %u bytes (from the start; a request whose max_tokens is below this is budget-bound "
              "from its first token)\n",
              Matcher(probe, idx).min_completion());
  std::printf("simulation: %d grammars x %d requests (request 0 of each grammar cold, the rest warm), "
              "max %d tokens each, seed %llu\n",
              o.grammars, o.requests, o.tokens, static_cast<unsigned long long>(o.seed));

  for (DrawMode mode : {DrawMode::kUniform, DrawMode::kFollow}) {
    if (mode == DrawMode::kUniform && !o.uniform) continue;
    if (mode == DrawMode::kFollow && !o.follow) continue;
    std::printf("\nmode %s\n", mode == DrawMode::kUniform
                                   ? "uniform (random-weight model: draw uniform over the vocabulary)"
                                   : "follow (trained model: 90% an allowed token, 10% uniform)");
    std::mt19937_64 rng(o.seed * 1000003 + static_cast<int>(mode));
    Bucket cold, warm;
    for (int gi = 0; gi < o.grammars; ++gi) {
      auto g = parse_gbnf(sg.gbnf, &err);         // fresh: empty shared mask cache
      auto oracle_g = parse_gbnf(sg.gbnf, &err);  // the oracle's own caches
      for (int r = 0; r < o.requests; ++r)
        simulate_request(g, oracle_g, idx, mode, o.tokens, &rng, r == 0 ? &cold : &warm);
    }
    print_bucket("cold", cold);
    print_bucket("warm", warm);
  }
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: constrain_bench [--vocab FILE.gguf] [--schema FILE.json] [--tokens N] [--requests R]\n"
               "                       [--grammars G] [--seed S] [--mode uniform|follow|both] [--strict]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--vocab" && has) o.vocab = argv[++i];
    else if (a == "--schema" && has) o.schema = argv[++i];
    else if (a == "--tokens" && has) o.tokens = std::atoi(argv[++i]);
    else if (a == "--requests" && has) o.requests = std::atoi(argv[++i]);
    else if (a == "--grammars" && has) o.grammars = std::atoi(argv[++i]);
    else if (a == "--seed" && has) o.seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--strict") o.strict = true;
    else if (a == "--mode" && has) {
      const std::string m = argv[++i];
      o.uniform = m == "uniform" || m == "both";
      o.follow = m == "follow" || m == "both";
      if (!o.uniform && !o.follow) return usage();
    } else {
      return usage();
    }
  }
  if (o.tokens < 1 || o.requests < 1 || o.grammars < 1) return usage();
  if (!o.vocab.empty() && o.schema.empty()) {
    std::fprintf(stderr, "--vocab needs --schema\n");
    return usage();
  }

  Vocab v;
  if (o.vocab.empty()) v = make_synthetic_vocab();
  else if (!load_gguf_vocab(o.vocab, &v)) return 1;
  double mean_len = 0;
  int n_text = 0;
  for (size_t i = 0; i < v.bytes.size(); ++i) {
    if (v.allowed[i] && !v.bytes[i].empty()) {
      mean_len += v.bytes[i].size();
      ++n_text;
    }
  }
  const double t0 = now_us();
  auto idx = std::make_shared<const TokenIndex>(v.bytes, v.allowed, v.eog);
  std::printf("vocab %s: %d tokens (%d text, %zu EOG), mean %.2f bytes, trie %zu nodes, index built in %.1f ms\n",
              v.what.c_str(), idx->n_vocab(), n_text, idx->eog().size(), mean_len / std::max(1, n_text),
              idx->trie().size() - 1, (now_us() - t0) / 1000);

  if (o.vocab.empty()) {
    if (int rc = run_synthetic(idx)) return rc;
    if (o.schema.empty()) return 0;
    std::printf("\n");
  }
  return run_schema(o, idx);
}
