// Special tokens: control/unknown token text is one id only with parse_special; user-defined
// tokens always are; BOS/EOS/CLS/SEP follow the metadata; control pieces are hidden unless
// rendered; end-of-generation ids come from metadata and llama.cpp's text list.
#include "tok_test_util.h"

namespace tachyon::tok::testing {
namespace {

bool contains(const std::vector<int32_t>& v, int32_t id) { return std::find(v.begin(), v.end(), id) != v.end(); }

TEST(Special, SpmControlTokens) {
  const Tokenizer* tok = cached("llama-spm");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_TRUE(tok->add_bos());
  EXPECT_FALSE(tok->add_eos());
  EXPECT_EQ(tok->encode("<s>", false, true), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok->encode("</s>", false, true), (std::vector<int32_t>{2}));
  const auto as_text = tok->encode("<s>", false, false);
  EXPECT_GT(as_text.size(), 1u);
  EXPECT_FALSE(contains(as_text, 1));
  EXPECT_EQ(tok->decode(as_text), "<s>");
  // BOS added by add_special, then text after a special token gets the space prefix again
  const auto ids = tok->encode("Hello<s>world", true, true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 2);
  EXPECT_EQ(tok->decode(ids), " Hello world");
  EXPECT_EQ(tok->decode(ids, /*render_special=*/true), "<s> Hello<s> world");
  EXPECT_EQ(tok->token_to_piece(1), "");
  EXPECT_EQ(tok->token_to_piece(1, true), "<s>");
  EXPECT_EQ(tok->token_to_piece(13), "\n");  // <0x0A>
  EXPECT_TRUE(tok->is_eog(2));
  EXPECT_FALSE(tok->is_eog(1));
  EXPECT_TRUE(tok->is_control(1));
  EXPECT_EQ(tok->token_type(0), TokenType::kUnknown);
  EXPECT_EQ(tok->token_to_piece(-1), "");
  EXPECT_EQ(tok->token_to_piece(tok->n_vocab()), "");
}

TEST(Special, ChatStyleControlTokens) {
  // phi-3 uses <|user|> / <|assistant|> / <|end|>, the same shape as ChatML's <|im_start|>
  const Tokenizer* tok = cached("phi-3");
  ASSERT_NE(tok, nullptr);
  const int32_t user = tok->find_token("<|user|>");
  const int32_t assistant = tok->find_token("<|assistant|>");
  const int32_t end = tok->find_token("<|end|>");
  ASSERT_GE(user, 0);
  ASSERT_GE(assistant, 0);
  ASSERT_GE(end, 0);
  const auto ids = tok->encode("<|user|>\nHi<|end|>\n<|assistant|>", false, true);
  EXPECT_EQ(ids.front(), user);
  EXPECT_TRUE(contains(ids, end));
  EXPECT_EQ(ids.back(), assistant);
  const auto plain = tok->encode("<|user|>\nHi<|end|>\n<|assistant|>", false, false);
  EXPECT_FALSE(contains(plain, user) || contains(plain, end) || contains(plain, assistant));
  EXPECT_TRUE(tok->is_eog(end));                               // by text
  EXPECT_TRUE(tok->is_eog(tok->find_token("<|endoftext|>")));  // eos
  EXPECT_EQ(tok->eos_id(), 32000);
}

TEST(Special, ByteLevelControlTokens) {
  const Tokenizer* gpt2 = cached("gpt-2");
  ASSERT_NE(gpt2, nullptr);
  EXPECT_EQ(gpt2->encode("a<|endoftext|>b", false, true), (std::vector<int32_t>{64, 50256, 65}));
  EXPECT_FALSE(contains(gpt2->encode("a<|endoftext|>b", false, false), 50256));
  EXPECT_FALSE(gpt2->add_bos());  // no add_bos_token key: BPE default
  EXPECT_EQ(gpt2->encode("a", true, false), (std::vector<int32_t>{64}));
  EXPECT_TRUE(gpt2->is_eog(50256));

  const Tokenizer* ds = cached("deepseek-llm");
  ASSERT_NE(ds, nullptr);
  EXPECT_TRUE(ds->add_bos());
  EXPECT_EQ(ds->encode("hi", true, false).front(), 100000);
  EXPECT_EQ(ds->encode("<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", false, true),
            (std::vector<int32_t>{100000}));
}

TEST(Special, UserDefinedTokensAlwaysMatch) {
  // deepseek-coder has user-defined single-character tokens such as "ö"
  const Tokenizer* tok = cached("deepseek-coder");
  ASSERT_NE(tok, nullptr);
  const int32_t o = tok->find_token("\xC3\xB6");
  ASSERT_GE(o, 0);
  EXPECT_EQ(tok->token_type(o), TokenType::kUserDefined);
  EXPECT_EQ(tok->encode("\xC3\xB6", false, false), (std::vector<int32_t>{o}));
  // mpt / gpt-neox: runs of spaces are user-defined tokens, matched longest first
  const Tokenizer* mpt = cached("mpt");
  ASSERT_NE(mpt, nullptr);
  const int32_t spaces4 = mpt->find_token("    ");
  ASSERT_GE(spaces4, 0);
  EXPECT_TRUE(contains(mpt->encode("x    y", false, false), spaces4));
}

TEST(Special, WordPieceClsSep) {
  const Tokenizer* tok = cached("bert-bge");
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("hello world", true, false);
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
  EXPECT_EQ(tok->encode("[CLS] hi", false, true).front(), 101);
}

}  // namespace
}  // namespace tachyon::tok::testing
