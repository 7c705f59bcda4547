// Lexer: template source -> tokens.
//
// Mirrors Jinja2 3.1's lexer.py closely, because chat templates depend on its exact
// whitespace rules: `{%-`/`-%}` strip all whitespace on that side; trim_blocks removes
// the first newline after a block or comment tag; lstrip_blocks removes spaces and tabs
// between the start of a line and a block or comment tag (`{%+` opts out, `{{` is never
// stripped); one trailing newline of the source is dropped; \r\n and \r become \n.
#include "chat/lexer.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "chat/value.h"

namespace tachyon::chat::detail {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
// Python identifiers may use any letter; non-ASCII bytes are accepted as name characters.
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// --- lexer -------------------------------------------------------------------------------

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_.push_back('\n');
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_.push_back(source[i]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();  // keep_trailing_newline=False
  }

  std::vector<Token> run() {
    size_t bad = utf8_invalid_at(src_);
    if (bad != std::string::npos) error(bad, "template is not valid UTF-8 (byte " + std::to_string(bad) + ")");
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      size_t start = find_tag(pos);
      if (start == std::string::npos) {
        emit_data(pos, src_.substr(pos));
        break;
      }
      char kind = src_[start + 1];
      size_t p = start + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      std::string text = src_.substr(pos, start - pos);
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      } else if (sign != '+' && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size()) {
          bool all_ws = true;
          for (size_t i = l_pos; i < text.size() && all_ws; ++i) all_ws = is_space(text[i]);
          if (all_ws) text.resize(l_pos);
        }
      }
      emit_data(pos, std::move(text));
      if (kind == '%' && try_raw(start, p, pos, line_starting)) continue;
      if (kind == '#') {
        pos = lex_comment(start, p, line_starting);
      } else {
        pos = lex_tag(kind, start, p, line_starting);
      }
    }
    Token eof;
    eof.type = Tok::kEof;
    eof.line = line_at(src_.size());
    out_.push_back(eof);
    return std::move(out_);
  }

 private:
  int line_at(size_t pos) {
    // Incremental: positions are requested in increasing order.
    if (pos < line_pos_) {
      line_pos_ = 0;
      line_ = 1;
    }
    for (; line_pos_ < pos && line_pos_ < src_.size(); ++line_pos_)
      if (src_[line_pos_] == '\n') ++line_;
    return line_;
  }

  size_t find_tag(size_t pos) const {
    for (size_t i = src_.find('{', pos); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  void emit_data(size_t pos, std::string text) {
    if (text.empty()) return;
    Token t;
    t.type = Tok::kData;
    t.line = line_at(pos);
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }

  void emit(Tok type, size_t pos, std::string text = {}) {
    Token t;
    t.type = type;
    t.line = line_at(pos);
    t.text = std::move(text);
    out_.push_back(std::move(t));
  }

  [[noreturn]] void error(size_t pos, std::string msg) { throw ParseError{line_at(pos), std::move(msg)}; }

  size_t skip_ws(size_t p) const {
    while (p < src_.size() && is_space(src_[p])) ++p;
    return p;
  }

  // `{% raw %}...{% endraw %}`: the body is data, verbatim.
  bool try_raw(size_t start, size_t p, size_t& pos, bool& line_starting) {
    size_t q = skip_ws(p);
    if (src_.compare(q, 3, "raw") != 0) return false;
    q = skip_ws(q + 3);
    size_t body;
    if (src_.compare(q, 3, "-%}") == 0)
      body = skip_ws(q + 3);
    else if (src_.compare(q, 2, "%}") == 0)
      body = q + 2;
    else
      return false;
    // find {%[-+]? endraw ... %}
    for (size_t i = src_.find("{%", body); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t k = i + 2;
      char sign = 0;
      if (k < src_.size() && (src_[k] == '-' || src_[k] == '+')) sign = src_[k++];
      k = skip_ws(k);
      if (src_.compare(k, 6, "endraw") != 0) continue;
      k = skip_ws(k + 6);
      size_t end;
      if (src_.compare(k, 3, "+%}") == 0)
        end = k + 3;
      else if (src_.compare(k, 3, "-%}") == 0)
        end = skip_ws(k + 3);
      else if (src_.compare(k, 2, "%}") == 0)
        end = k + 2 + (k + 2 < src_.size() && src_[k + 2] == '\n');
      else
        continue;
      std::string text = src_.substr(body, i - body);
      if (sign == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      }
      emit_data(body, std::move(text));
      pos = end;
      line_starting = end > 0 && src_[end - 1] == '\n';
      return true;
    }
    error(start, "Missing end of raw directive");
  }

  size_t lex_comment(size_t start, size_t p, bool& line_starting) {
    size_t q = src_.find("#}", p);
    if (q == std::string::npos) error(start, "Missing end of comment tag");
    size_t end = q + 2;
    char sign = (q > p && (src_[q - 1] == '-' || src_[q - 1] == '+')) ? src_[q - 1] : 0;
    if (sign == '-')
      end = skip_ws(end);
    else if (sign == 0 && end < src_.size() && src_[end] == '\n')
      ++end;  // trim_blocks
    line_starting = src_[end - 1] == '\n';
    return end;
  }

  size_t lex_tag(char kind, size_t start, size_t p, bool& line_starting) {
    bool block = kind == '%';
    emit(block ? Tok::kBlockBegin : Tok::kVarBegin, start);
    std::vector<char> balance;
    for (;;) {
      if (p >= src_.size()) error(p, "unexpected end of template, expected end of tag");
      if (balance.empty()) {
        size_t end = 0;
        if (block) {
          if (src_.compare(p, 3, "+%}") == 0)
            end = p + 3;
          else if (src_.compare(p, 3, "-%}") == 0)
            end = skip_ws(p + 3);
          else if (src_.compare(p, 2, "%}") == 0)
            end = p + 2 + (p + 2 < src_.size() && src_[p + 2] == '\n');  // trim_blocks
        } else {
          if (src_.compare(p, 3, "-}}") == 0)
            end = skip_ws(p + 3);
          else if (src_.compare(p, 2, "}}") == 0)
            end = p + 2;
        }
        if (end) {
          emit(block ? Tok::kBlockEnd : Tok::kVarEnd, p);
          line_starting = src_[end - 1] == '\n';
          return end;
        }
      }
      char c = src_[p];
      if (is_space(c)) {
        ++p;
      } else if (is_digit(c)) {
        p = lex_number(p);
      } else if (is_name_start(c)) {
        size_t e = p;
        while (e < src_.size() && is_name_char(src_[e])) ++e;
        emit(Tok::kName, p, src_.substr(p, e - p));
        p = e;
      } else if (c == '\'' || c == '"') {
        p = lex_string(p);
      } else {
        static const char* kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op;
        for (const char* o : kOps2)
          if (src_.compare(p, 2, o) == 0) op = o;
        if (op.empty()) {
          if (!std::strchr("+-/*%~[](){}><=.:|,;", c)) {
            auto cps = utf8_decode(std::string_view(src_).substr(p, 4));
            std::string ch;
            utf8_append(ch, cps.empty() ? 0xFFFD : cps[0]);
            error(p, "unexpected char " + py_str_repr(ch) + " at " + std::to_string(p));
          }
          op = std::string(1, c);
        }
        if (op == "{" || op == "(" || op == "[") {
          balance.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
        } else if (op == "}" || op == ")" || op == "]") {
          if (balance.empty()) error(p, "unexpected '" + op + "'");
          if (balance.back() != op[0])
            error(p, "unexpected '" + op + "', expected '" + std::string(1, balance.back()) + "'");
          balance.pop_back();
        }
        emit(Tok::kOp, p, op);
        p += op.size();
      }
    }
  }

  size_t lex_digits(size_t p, std::string& digits) const {
    // \d+ with single underscores between digits
    while (p < src_.size()) {
      if (is_digit(src_[p])) {
        digits.push_back(src_[p++]);
      } else if (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1]) && !digits.empty()) {
        ++p;
      } else {
        break;
      }
    }
    return p;
  }

  size_t lex_number(size_t p) {
    size_t start = p;
    if (src_[p] == '0' && p + 1 < src_.size() && std::strchr("xXoObB", src_[p + 1]) && p + 2 < src_.size()) {
      int base = (src_[p + 1] | 0x20) == 'x' ? 16 : (src_[p + 1] | 0x20) == 'o' ? 8 : 2;
      size_t e = p + 2;
      int64_t v = 0;
      bool any = false;
      while (e < src_.size()) {
        char c = src_[e];
        int d = is_digit(c) ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
        if (c == '_') {
          ++e;
          continue;
        }
        if (d < 0 || d >= base) break;
        if (v > (INT64_MAX - d) / base) error(p, "integer literal too large");
        v = v * base + d;
        any = true;
        ++e;
      }
      if (any) {
        Token t;
        t.type = Tok::kInt;
        t.line = line_at(p);
        t.ival = v;
        t.text = src_.substr(p, e - p);
        out_.push_back(std::move(t));
        return e;
      }
    }
    std::string digits;
    p = lex_digits(p, digits);
    bool is_float = false;
    bool after_dot = start > 0 && src_[start - 1] == '.';  // `x.0.1` is two subscripts
    std::string text = digits;
    if (!after_dot) {
      if (p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
        std::string frac;
        p = lex_digits(p + 1, frac);
        text += "." + frac;
        is_float = true;
      }
      if (p < src_.size() && (src_[p] | 0x20) == 'e') {
        size_t q = p + 1;
        std::string sign;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) sign = src_[q++];
        if (q < src_.size() && is_digit(src_[q])) {
          std::string exp;
          p = lex_digits(q, exp);
          text += "e" + sign + exp;
          is_float = true;
        }
      }
    }
    Token t;
    t.line = line_at(start);
    t.text = text;
    if (is_float) {
      t.type = Tok::kFloat;
      t.fval = std::strtod(text.c_str(), nullptr);
    } else {
      t.type = Tok::kInt;
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (errno == ERANGE) error(start, "integer literal too large");
      t.ival = v;
    }
    out_.push_back(std::move(t));
    return p;
  }

  static int hexval(char c) {
    if (is_digit(c)) return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  // Python's "unicode-escape" decoding of the literal's body.
  size_t lex_string(size_t p) {
    char q = src_[p];
    size_t i = p + 1;
    std::string out;
    for (;;) {
      if (i >= src_.size()) error(p, "unexpected char " + py_str_repr(std::string(1, q)) + " at " + std::to_string(p));
      char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        out.push_back(c);
        ++i;
        continue;
      }
      if (i + 1 >= src_.size())
        error(p, "unexpected char " + py_str_repr(std::string(1, q)) + " at " + std::to_string(p));
      char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t v = 0;
          for (int k = 0; k < n; ++k) {
            int h = i + k < src_.size() ? hexval(src_[i + k]) : -1;
            if (h < 0) error(p, "truncated \\" + std::string(1, e) + " escape in string literal");
            v = v * 16 + h;
          }
          if (v > 0x10FFFF) error(p, "illegal Unicode character in string literal");
          i += n;
          // "\ud83d\ude00": Python keeps two surrogates; UTF-8 output needs the pair joined
          if (v >= 0xD800 && v <= 0xDBFF && i + 6 <= src_.size() && src_[i] == '\\' && src_[i + 1] == 'u') {
            uint32_t lo = 0;
            bool ok = true;
            for (int k = 0; k < 4 && ok; ++k) {
              int h = hexval(src_[i + 2 + k]);
              ok = h >= 0;
              lo = lo * 16 + (ok ? h : 0);
            }
            if (ok && lo >= 0xDC00 && lo <= 0xDFFF) {
              v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
              i += 6;
            }
          }
          utf8_append(out, v);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = e - '0';
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k)
              v = v * 8 + (src_[i++] - '0');
            utf8_append(out, v);
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    Token t;
    t.type = Tok::kString;
    t.line = line_at(p);
    t.text = std::move(out);
    out_.push_back(std::move(t));
    return i + 1;
  }

  std::string src_;
  std::vector<Token> out_;
  size_t line_pos_ = 0;
  int line_ = 1;
};

}  // namespace

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::kData:
      return "template data";
    case Tok::kVarBegin:
      return "begin of print statement";
    case Tok::kVarEnd:
      return "end of print statement";
    case Tok::kBlockBegin:
      return "begin of statement block";
    case Tok::kBlockEnd:
      return "end of statement block";
    case Tok::kName:
      return t.text;
    case Tok::kString:
      return "string";
    case Tok::kInt:
      return "integer";
    case Tok::kFloat:
      return "float";
    case Tok::kOp:
      return t.text;
    case Tok::kEof:
      return "end of template";
  }
  return "?";
}

std::vector<Token> lex(std::string_view source) { return Lexer(source).run(); }

}  // namespace tachyon::chat::detail
