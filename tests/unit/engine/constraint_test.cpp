// Structured output in the engine: a constrained request's text is a sentence of its
// grammar (greedy and sampled, on random-weight models that never follow a format by
// themselves), also when max_tokens cuts it short (the token budget closes the output);
// a lazy grammar leaves text free until its trigger; the text is the tokens' exact bytes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "constrain/grammar.h"
#include "constrain/json_schema.h"
#include "constrain/matcher.h"
#include "engine/engine.h"
#include "tokenizer/tokenizer.h"

using namespace tachyon;
using namespace tachyon::engine;

namespace {

const std::string kModels = std::string(TACHYON_SHARED_DATA) + "/models";

struct Out {
  std::string text;
  std::vector<int32_t> tokens;
  Event finish;
};

Out collect(const std::shared_ptr<RequestHandle>& h) {
  Out o;
  for (;;) {
    std::vector<Event> ev;
    h->wait_drain(&ev, 1000);
    for (auto& e : ev) {
      o.text += e.text;
      if (e.kind == Event::Kind::kToken) o.tokens.push_back(e.token);
      else {
        o.finish = e;
        return o;
      }
    }
  }
}

std::unique_ptr<Engine> make_engine(const std::string& file) {
  EngineConfig cfg;
  cfg.model_path = kModels + "/" + file;
  cfg.n_threads = 1;
  cfg.n_ctx = 1024;
  auto e = Engine::create(cfg);
  EXPECT_TRUE(e.is_ok()) << e.status().message();
  return e.is_ok() ? std::move(e.value()) : nullptr;
}

std::shared_ptr<const constrain::Grammar> grammar(const std::string& gbnf) {
  std::string err;
  auto g = constrain::parse_gbnf(gbnf, &err);
  EXPECT_TRUE(g) << err;
  return g;
}

std::shared_ptr<const constrain::Grammar> schema_grammar(const char* schema_json) {
  constrain::SchemaGrammar sg;
  std::string err;
  EXPECT_TRUE(constrain::json_schema_to_gbnf(nlohmann::ordered_json::parse(schema_json), {}, &sg, &err)) << err;
  return grammar(sg.gbnf);
}

bool sentence_of(const std::shared_ptr<const constrain::Grammar>& g, const std::string& text) {
  auto idx = std::make_shared<constrain::TokenIndex>(std::vector<std::string>{}, std::vector<bool>{}, std::vector<int32_t>{});
  constrain::Matcher m(g, idx);
  return m.accept_bytes(text) && m.is_complete();
}

constexpr const char* kSchema = R"({"type": "object", "properties": {
    "name": {"type": "string"}, "tags": {"type": "array", "items": {"enum": ["a", "bc", "d"]}, "maxItems": 4},
    "age": {"type": "integer", "minimum": -5, "maximum": 130}}, "required": ["name", "age"]})";

class ConstrainedOutput : public ::testing::TestWithParam<std::string> {};

TEST_P(ConstrainedOutput, OutputIsASentenceOfTheGrammarGreedySampledAndCutShort) {
  auto eng = make_engine(GetParam());
  if (!eng) return;
  auto g = schema_grammar(kSchema);
  const auto prompt = eng->tokenizer().encode("Describe a person as JSON:", true, false);
  // max_tokens 12 is far below what a free string runs to on a random model: the budget
  // must close the object in time; 300 lets it run.
  for (int max_tokens : {12, 300}) {
    for (float temp : {0.0f, 1.0f}) {
      std::vector<std::shared_ptr<RequestHandle>> hs;
      for (uint64_t seed = 1; seed <= 3; ++seed) {
        GenerateRequest r;
        r.prompt = prompt;
        r.max_tokens = max_tokens;
        r.sampling.temperature = temp;
        r.sampling.seed = seed;
        r.constraint = engine::Constraint{g, {}};
        auto h = eng->submit(r);
        ASSERT_TRUE(h.is_ok()) << h.status().message();
        hs.push_back(h.value());
      }
      for (auto& h : hs) {
        Out o = collect(h);
        EXPECT_TRUE(sentence_of(g, o.text)) << GetParam() << " max_tokens " << max_tokens << " t " << temp << ": "
                                            << o.text;
        auto j = nlohmann::json::parse(o.text, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << o.text;
        EXPECT_TRUE(j.contains("name") && j["age"].is_number_integer()) << o.text;
        EXPECT_LE(static_cast<int>(o.tokens.size()), max_tokens);
        // the exact bytes of the tokens (no clean-up of spaces)
        std::string bytes;
        for (int32_t t : o.tokens) bytes += eng->tokenizer().token_to_piece(t);
        EXPECT_EQ(o.text, bytes);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ConstrainedOutput, ::testing::Values("mini-qwen2-Q8_0.gguf", "mini-llama-Q4_0.gguf"));

TEST(ConstraintLazy, FreeUntilTheTriggerThenTheGrammar) {
  auto eng = make_engine("mini-qwen2-Q8_0.gguf");
  if (!eng) return;
  // A trigger a random model emits now and then (a letter inside its tokens): the text
  // before it is free; from the trigger on, the output follows the grammar, also when the
  // trigger sits inside a token (a token whose bytes after it do not fit is redrawn).
  auto g = grammar(R"(root ::= "q" [0-9]{1,3} "!")");
  const auto prompt = eng->tokenizer().encode("hello", true, false);
  int triggered = 0, completed = 0;
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    GenerateRequest r;
    r.prompt = prompt;
    r.max_tokens = 60;
    r.sampling.temperature = 1.5f;
    r.sampling.seed = seed;
    r.constraint = engine::Constraint{g, {"q"}};
    Out o = collect(eng->submit(r).value());
    const size_t at = o.text.find('q');
    if (at == std::string::npos) continue;
    ++triggered;
    const std::string tail = o.text.substr(at);
    for (size_t i = 1; i < tail.size() && i < 4; ++i) EXPECT_TRUE(isdigit(static_cast<unsigned char>(tail[i]))) << o.text;
    if (o.finish.finish_reason == "stop" && tail.back() == '!') ++completed;
    // complete: nothing may follow "!" (the request stops there), else max_tokens cut it
    if (tail.find('!') != std::string::npos) EXPECT_EQ(tail.find('!'), tail.size() - 1) << o.text;
  }
  EXPECT_GT(triggered, 0);
  EXPECT_GT(completed, 0);
}

}  // namespace
