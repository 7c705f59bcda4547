// The front door stands alone: a model generated without a vocabulary file (what
// scripts/run.sh serves when given no model) carries a usable vocabulary of its own —
// text round-trips through it, ChatML's markers are single control tokens and
// <|im_end|> ends a turn, and every piece is distinct.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "engine/engine.h"
#include "model/quantize.h"
#include "tokenizer/tokenizer.h"

using namespace tachyon;

TEST(DemoVocabulary, StandsAloneAndChats) {
  const std::string path = (std::filesystem::temp_directory_path() / "tachyon-demo-vocab.gguf").string();
  auto t = model::parse_quant_target("Q8_0");
  ASSERT_TRUE(t.is_ok());
  ASSERT_TRUE(model::generate_model("gemma2-test-tiny", "", t.value(), path, 3, 1).is_ok());
  engine::EngineConfig cfg;
  cfg.model_path = path;
  cfg.n_threads = 1;
  cfg.n_ctx = 256;
  auto e = engine::Engine::create(cfg);
  ASSERT_TRUE(e.is_ok()) << e.status().message();
  const tok::Tokenizer& tk = e.value()->tokenizer();
  std::set<std::string> seen;
  for (int32_t id = 0; id < tk.n_vocab(); ++id) EXPECT_TRUE(seen.insert(tk.token_text(id)).second) << id;
  const std::string text = "Hello, world! The demo model says: bako rimu 42.";
  const auto ids = tk.encode(text, false, false);
  EXPECT_LT(ids.size(), text.size());  // words, not only bytes
  EXPECT_EQ(tk.decode(ids), text);
  const auto im = tk.encode("<|im_start|>user\nHi<|im_end|>", false, true);
  ASSERT_GE(im.size(), 2u);
  EXPECT_TRUE(tk.is_control(im.front()));
  EXPECT_TRUE(tk.is_eog(im.back()));
  std::filesystem::remove(path);
}
