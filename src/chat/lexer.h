// Tokens of a template: text between tags, tag delimiters, and the expression tokens
// inside tags. Internal to src/chat.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tachyon::chat::detail {

// A syntax error at a source line (thrown by the lexer and the parser only).
struct ParseError {
  int line;
  std::string message;
};

enum class Tok { kData, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  Tok type = Tok::kEof;
  std::string text;  // data, name, operator, unescaped string
  int line = 1;
  int64_t ival = 0;
  double fval = 0;
};

// Source -> tokens, ending with kEof. Applies all whitespace control (see lexer.cpp).
// Throws ParseError.
std::vector<Token> lex(std::string_view source);
std::string describe(const Token& t);  // for error messages, as Jinja2 names tokens

}  // namespace tachyon::chat::detail
