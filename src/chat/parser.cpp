// Parser: tokens -> syntax tree, mirroring Jinja2 3.1's parser.py (operator precedence,
// the quirks of `is` tests and filters, statement tags and their error messages).
#include <set>

#include "chat/ast.h"
#include "chat/lexer.h"

namespace tachyon::chat::detail {
namespace {

constexpr int kMaxNesting = 200;  // expression and block nesting: bounds parser recursion

// --- parser ------------------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  std::shared_ptr<Program> run() {
    auto prog = std::make_shared<Program>();
    prog->body = subparse({});
    if (cur().type != Tok::kEof) fail("unexpected '" + describe(cur()) + "'");
    analyze_program(*prog);
    return prog;
  }

 private:
  const Token& cur() const { return toks_[pos_]; }
  const Token& look() const { return toks_[pos_ + 1 < toks_.size() ? pos_ + 1 : pos_]; }
  void next() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(std::string_view op) const { return cur().type == Tok::kOp && cur().text == op; }
  bool is_name(std::string_view n) const { return cur().type == Tok::kName && cur().text == n; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(std::string msg) const { throw ParseError{cur().line, std::move(msg)}; }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) fail("expected token '" + std::string(op) + "', got '" + describe(cur()) + "'");
  }
  void expect(Tok type, const char* what) {
    if (cur().type != type) fail(std::string("expected token '") + what + "', got '" + describe(cur()) + "'");
    next();
  }
  std::string expect_name() {
    if (cur().type != Tok::kName) fail("expected token 'name', got '" + describe(cur()) + "'");
    std::string n = cur().text;
    next();
    return n;
  }

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.fail("template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };

  ExprPtr node(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // --- statements ---

  struct Block {
    std::string name;
    std::vector<std::string> end_tokens;
  };

  Body subparse(const std::vector<std::string>& end_tokens) {
    Body body;
    for (;;) {
      const Token& t = cur();
      if (t.type == Tok::kEof) {
        if (!end_tokens.empty()) fail_eof();
        return body;
      }
      if (t.type == Tok::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kText;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        next();
      } else if (t.type == Tok::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::kOutput;
        s->line = t.line;
        next();
        s->expr = parse_tuple(false, true, {}, false);
        expect(Tok::kVarEnd, "end of print statement");
        body.push_back(std::move(s));
      } else if (t.type == Tok::kBlockBegin) {
        next();
        if (cur().type == Tok::kName) {
          for (const auto& e : end_tokens)
            if (cur().text == e) return body;
        }
        body.push_back(parse_statement());
        expect(Tok::kBlockEnd, "end of statement block");
      } else {
        fail("unexpected '" + describe(t) + "'");
      }
    }
  }

  [[noreturn]] void fail_unknown_tag(const std::string& name) {
    std::string msg = "Encountered unknown tag '" + name + "'.";
    if (!stack_.empty()) {
      const Block& b = stack_.back();
      msg += " Jinja was looking for the following tags: ";
      for (size_t i = 0; i < b.end_tokens.size(); ++i) {
        if (i) msg += i + 1 == b.end_tokens.size() ? " or " : " or ";
        msg += "'" + b.end_tokens[i] + "'";
      }
      msg += ". The innermost block that needs to be closed is '" + b.name + "'.";
    }
    fail(msg);
  }

  [[noreturn]] void fail_eof() {
    std::string msg = "Unexpected end of template.";
    if (!stack_.empty()) msg += " Jinja was looking for the end of the '" + stack_.back().name + "' block.";
    fail(msg);
  }

  // Parses a block body up to one of `end_tokens`; leaves the end tag's name current
  // (consumed when drop_needle).
  Body statements(const std::string& block, std::vector<std::string> end_tokens, bool drop_needle) {
    skip_op(":");
    expect(Tok::kBlockEnd, "end of statement block");
    stack_.push_back({block, end_tokens});
    Body b = subparse(end_tokens);
    stack_.pop_back();
    if (drop_needle) next();
    return b;
  }

  std::unique_ptr<Stmt> parse_statement() {
    DepthGuard guard(*this);
    if (cur().type != Tok::kName) fail("tag name expected");
    const std::string tag = cur().text;
    auto s = std::make_unique<Stmt>();
    s->line = cur().line;
    if (tag == "for") return parse_for(std::move(s));
    if (tag == "if") return parse_if(std::move(s));
    if (tag == "set") return parse_set(std::move(s));
    if (tag == "macro") return parse_macro(std::move(s));
    if (tag == "call") return parse_call_block(std::move(s));
    if (tag == "filter") {
      next();
      s->kind = StmtKind::kFilterBlock;
      s->expr = parse_filter(nullptr, true);
      s->body = statements("filter", {"endfilter"}, true);
      return s;
    }
    if (tag == "with") {
      next();
      s->kind = StmtKind::kWith;
      while (cur().type != Tok::kBlockEnd) {
        if (!s->assigns.empty()) expect_op(",");
        ExprPtr target = parse_assign_target(true, false, {}, false);
        expect_op("=");
        s->assigns.emplace_back(std::move(target), parse_expression(true));
      }
      s->body = statements("with", {"endwith"}, true);
      return s;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside loop");
      next();
      s->kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      return s;
    }
    if (tag == "block" || tag == "extends" || tag == "include" || tag == "import" || tag == "from")
      fail("'" + tag + "' is not supported in chat templates (no template loader)");
    fail_unknown_tag(tag);
  }

  std::unique_ptr<Stmt> parse_for(std::unique_ptr<Stmt> s) {
    next();
    s->kind = StmtKind::kFor;
    s->target = parse_assign_target(true, false, {"in"}, false);
    if (!skip_name("in")) fail("expected token 'in', got '" + describe(cur()) + "'");
    s->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) s->cond = parse_expression(true);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    ++loop_depth_;
    s->body = statements("for", {"endfor", "else"}, false);
    --loop_depth_;
    std::string end = cur().text;
    next();
    if (end == "else") s->else_body = statements("for", {"endfor"}, true);
    return s;
  }

  std::unique_ptr<Stmt> parse_if(std::unique_ptr<Stmt> s) {
    next();
    s->kind = StmtKind::kIf;
    for (;;) {
      ExprPtr cond = parse_tuple(false, false, {}, false);
      Body body = statements("if", {"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(cond), std::move(body));
      std::string end = cur().text;
      next();
      if (end == "elif") continue;
      if (end == "else") s->else_body = statements("if", {"endif"}, true);
      break;
    }
    return s;
  }

  std::unique_ptr<Stmt> parse_set(std::unique_ptr<Stmt> s) {
    next();
    s->target = parse_assign_target(true, false, {}, true);
    if (skip_op("=")) {
      s->kind = StmtKind::kSet;
      s->expr = parse_tuple(false, true, {}, false);
      return s;
    }
    s->kind = StmtKind::kSetBlock;
    if (is_op("|")) s->expr = parse_filter(nullptr, false);
    s->body = statements("set", {"endset"}, true);
    return s;
  }

  void parse_signature(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      s.params.push_back(expect_name());
      if (skip_op("=")) {
        s.defaults.push_back(parse_expression(true));
      } else if (!s.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
    }
    expect_op(")");
  }

  // Parses a macro or call-block body, recording whether it reads varargs/kwargs/caller
  // (Jinja2 only accepts extra call arguments for macros that do).
  void parse_callable_body(Stmt& s, const std::string& block, const std::string& end) {
    std::set<std::string> names;
    name_sinks_.push_back(&names);
    int saved_loop = loop_depth_;
    loop_depth_ = 0;
    s.body = statements(block, {end}, true);
    loop_depth_ = saved_loop;
    name_sinks_.pop_back();
    s.uses_varargs = names.count("varargs") > 0;
    s.uses_kwargs = names.count("kwargs") > 0;
    s.uses_caller = names.count("caller") > 0;
  }

  std::unique_ptr<Stmt> parse_macro(std::unique_ptr<Stmt> s) {
    next();
    s->kind = StmtKind::kMacro;
    s->name = expect_name();
    parse_signature(*s);
    parse_callable_body(*s, "macro", "endmacro");
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block(std::unique_ptr<Stmt> s) {
    next();
    s->kind = StmtKind::kCallBlock;
    if (is_op("(")) parse_signature(*s);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail("expected call");
    parse_callable_body(*s, "call", "endcall");
    return s;
  }

  ExprPtr parse_assign_target(bool with_tuple, bool name_only, const std::vector<std::string>& extra_end,
                              bool with_namespace) {
    int line = cur().line;
    if (with_namespace && cur().type == Tok::kName && look().type == Tok::kOp && look().text == ".") {
      auto e = node(ExprKind::kGetattr, line);
      auto n = node(ExprKind::kName, line);
      n->name = expect_name();
      next();  // '.'
      e->a = std::move(n);
      e->name = expect_name();
      return e;
    }
    ExprPtr target;
    if (name_only) {
      target = node(ExprKind::kName, line);
      target->name = expect_name();
    } else if (with_tuple) {
      target = parse_tuple(true, true, extra_end, false);
    } else {
      target = parse_primary();
    }
    check_assignable(*target);
    return target;
  }

  void check_assignable(const Expr& e) {
    if (e.kind == ExprKind::kName) {
      if (e.name == "true" || e.name == "false" || e.name == "none" || e.name == "True" || e.name == "False" ||
          e.name == "None")
        fail("Can't assign to " + e.name);
      return;
    }
    if (e.kind == ExprKind::kTuple) {
      for (const auto& it : e.items) check_assignable(*it);
      return;
    }
    fail("can't assign to this expression");
  }

  // --- expressions ---

  bool is_tuple_end(const std::vector<std::string>& extra_end) const {
    if (cur().type == Tok::kVarEnd || cur().type == Tok::kBlockEnd || is_op(")")) return true;
    if (cur().type == Tok::kName)
      for (const auto& e : extra_end)
        if (cur().text == e) return true;
    return false;
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string>& extra_end,
                      bool explicit_parens) {
    int line = cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    for (;;) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(","))
        is_tuple = true;
      else
        break;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parens) fail("Expected an expression, got '" + describe(cur()) + "'");
    }
    auto e = node(ExprKind::kTuple, line);
    e->items = std::move(args);
    return e;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    int line = cur().line;
    ExprPtr expr1 = parse_or();
    while (skip_name("if")) {
      auto e = node(ExprKind::kCond, line);
      e->a = parse_or();
      e->b = std::move(expr1);
      if (skip_name("else")) {
        DepthGuard guard(*this);
        e->c = parse_condexpr();
      }
      expr1 = std::move(e);
    }
    return expr1;
  }

  ExprPtr binary(ExprKind kind, ExprPtr a, ExprPtr b, int line) {
    auto e = node(kind, line);
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr parse_or() {
    int line = cur().line;
    ExprPtr left = parse_and();
    while (skip_name("or")) left = binary(ExprKind::kOr, std::move(left), parse_and(), line);
    return left;
  }

  ExprPtr parse_and() {
    int line = cur().line;
    ExprPtr left = parse_not();
    while (skip_name("and")) left = binary(ExprKind::kAnd, std::move(left), parse_not(), line);
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      int line = cur().line;
      next();
      DepthGuard guard(*this);
      auto e = node(ExprKind::kNot, line);
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr first = parse_math1();
    auto e = node(ExprKind::kCompare, line);
    for (;;) {
      CmpOp op;
      if (is_op("=="))
        op = CmpOp::kEq;
      else if (is_op("!="))
        op = CmpOp::kNe;
      else if (is_op("<"))
        op = CmpOp::kLt;
      else if (is_op("<="))
        op = CmpOp::kLe;
      else if (is_op(">"))
        op = CmpOp::kGt;
      else if (is_op(">="))
        op = CmpOp::kGe;
      else if (is_name("in"))
        op = CmpOp::kIn;
      else if (is_name("not") && look().type == Tok::kName && look().text == "in") {
        next();
        op = CmpOp::kNotIn;
      } else {
        break;
      }
      next();
      e->cmp_ops.push_back(op);
      e->items.push_back(parse_math1());
    }
    if (e->cmp_ops.empty()) return first;
    e->items.insert(e->items.begin(), std::move(first));
    return e;
  }

  ExprPtr arith(BinOp op, ExprPtr a, ExprPtr b, int line) {
    auto e = binary(ExprKind::kBinary, std::move(a), std::move(b), line);
    e->op = op;
    return e;
  }

  ExprPtr parse_math1() {
    int line = cur().line;
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      BinOp op = is_op("+") ? BinOp::kAdd : BinOp::kSub;
      next();
      left = arith(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = cur().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto e = node(ExprKind::kConcat, line);
    e->items.push_back(std::move(first));
    while (skip_op("~")) e->items.push_back(parse_math2());
    return e;
  }

  ExprPtr parse_math2() {
    int line = cur().line;
    ExprPtr left = parse_pow();
    for (;;) {
      BinOp op;
      if (is_op("*"))
        op = BinOp::kMul;
      else if (is_op("/"))
        op = BinOp::kDiv;
      else if (is_op("//"))
        op = BinOp::kFloorDiv;
      else if (is_op("%"))
        op = BinOp::kMod;
      else
        break;
      next();
      left = arith(op, std::move(left), parse_pow(), line);
    }
    return left;
  }

  ExprPtr parse_pow() {
    int line = cur().line;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = arith(BinOp::kPow, std::move(left), parse_unary(true), line);
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    int line = cur().line;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      ExprKind k = is_op("-") ? ExprKind::kNeg : ExprKind::kPos;
      next();
      e = node(k, line);
      e->a = parse_unary(false);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr literal(Value v, int line) {
    auto e = node(ExprKind::kLiteral, line);
    e->literal = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this);
    const Token& t = cur();
    int line = t.line;
    switch (t.type) {
      case Tok::kName: {
        ExprPtr e;
        if (t.text == "true" || t.text == "True")
          e = literal(Value::boolean(true), line);
        else if (t.text == "false" || t.text == "False")
          e = literal(Value::boolean(false), line);
        else if (t.text == "none" || t.text == "None")
          e = literal(Value::none(), line);
        else {
          e = node(ExprKind::kName, line);
          e->name = t.text;
          for (auto* sink : name_sinks_) sink->insert(t.text);
        }
        next();
        return e;
      }
      case Tok::kString: {
        std::string s = t.text;
        next();
        while (cur().type == Tok::kString) {  // adjacent literals concatenate
          s += cur().text;
          next();
        }
        return literal(Value::str(std::move(s)), line);
      }
      case Tok::kInt: {
        auto e = literal(Value::integer(t.ival), line);
        next();
        return e;
      }
      case Tok::kFloat: {
        auto e = literal(Value::number(t.fval), line);
        next();
        return e;
      }
      case Tok::kOp:
        if (t.text == "(") {
          next();
          ExprPtr e = parse_tuple(false, true, {}, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail("unexpected '" + describe(t) + "'");
  }

  ExprPtr parse_list() {
    auto e = node(ExprKind::kList, cur().line);
    expect_op("[");
    while (!is_op("]")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("]")) break;
      e->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return e;
  }

  ExprPtr parse_dict() {
    auto e = node(ExprKind::kDict, cur().line);
    expect_op("{");
    while (!is_op("}")) {
      if (!e->items.empty()) expect_op(",");
      if (is_op("}")) break;
      e->items.push_back(parse_expression(true));
      expect_op(":");
      e->items.push_back(parse_expression(true));
    }
    expect_op("}");
    return e;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".") || is_op("["))
        e = parse_subscript(std::move(e));
      else if (is_op("("))
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    for (;;) {
      if (is_op("|"))
        e = parse_filter(std::move(e), false);
      else if (is_name("is"))
        e = parse_test(std::move(e));
      else if (is_op("("))
        e = parse_call(std::move(e));
      else
        return e;
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    DepthGuard guard(*this);
    int line = cur().line;
    if (skip_op(".")) {
      const Token& t = cur();
      if (t.type == Tok::kName) {
        auto e = node(ExprKind::kGetattr, line);
        e->a = std::move(obj);
        e->name = t.text;
        next();
        return e;
      }
      if (t.type != Tok::kInt) fail("expected name or number");
      auto e = node(ExprKind::kGetitem, line);
      e->a = std::move(obj);
      e->b = literal(Value::integer(t.ival), line);
      next();
      return e;
    }
    expect_op("[");
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.size() > 1)
      for (const auto& a : args)
        if (a->kind == ExprKind::kSlice) fail("multi-dimensional slicing is not supported");
    if (args.size() == 1 && args[0]->kind == ExprKind::kSlice && !args[0]->a) {
      args[0]->a = std::move(obj);
      return std::move(args[0]);
    }
    auto e = node(ExprKind::kGetitem, line);
    e->a = std::move(obj);
    if (args.size() == 1) {
      e->b = std::move(args[0]);
    } else {
      auto t = node(ExprKind::kTuple, line);
      t->items = std::move(args);
      e->b = std::move(t);
    }
    return e;
  }

  // One subscript: an expression or a slice (returned as kSlice with a == null).
  ExprPtr parse_subscribed() {
    int line = cur().line;
    ExprPtr start;
    if (!skip_op(":")) {
      start = parse_expression(true);
      if (!is_op(":")) return start;
      next();
    }
    auto e = node(ExprKind::kSlice, line);
    e->b = std::move(start);
    if (!is_op(":") && !is_op("]") && !is_op(",")) e->c = parse_expression(true);
    if (skip_op(":")) {
      if (!is_op("]") && !is_op(",")) e->d = parse_expression(true);
    }
    return e;
  }

  std::vector<Arg> parse_call_args() {
    expect_op("(");
    std::vector<Arg> args;
    bool require_comma = false, seen_kw = false, seen_dyn = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      Arg a;
      if (is_op("*") || is_op("**")) {
        a.name = cur().text;
        next();
        seen_dyn = true;
      } else if (cur().type == Tok::kName && look().type == Tok::kOp && look().text == "=") {
        a.name = cur().text;
        next();
        next();
        seen_kw = true;
      } else if (seen_kw || seen_dyn) {
        fail("invalid syntax for function call expression");
      }
      a.value = parse_expression(true);
      args.push_back(std::move(a));
      require_comma = true;
    }
    expect_op(")");
    return args;
  }

  ExprPtr parse_call(ExprPtr fn) {
    DepthGuard guard(*this);
    auto e = node(ExprKind::kCall, cur().line);
    e->a = std::move(fn);
    e->args = parse_call_args();
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  ExprPtr parse_filter(ExprPtr input, bool start_inline) {
    while (is_op("|") || start_inline) {
      DepthGuard guard(*this);
      if (!start_inline) next();
      start_inline = false;
      auto e = node(ExprKind::kFilter, cur().line);
      e->name = dotted_name();
      if (is_op("(")) e->args = parse_call_args();
      e->a = std::move(input);
      input = std::move(e);
    }
    return input;
  }

  ExprPtr parse_test(ExprPtr input) {
    DepthGuard guard(*this);
    auto e = node(ExprKind::kTest, cur().line);
    next();  // 'is'
    if (skip_name("not")) e->negated = true;
    e->name = dotted_name();
    const Token& t = cur();
    if (is_op("(")) {
      e->args = parse_call_args();
    } else if ((t.type == Tok::kName || t.type == Tok::kString || t.type == Tok::kInt || t.type == Tok::kFloat ||
                is_op("[") || is_op("{")) &&
               !(t.type == Tok::kName && (t.text == "else" || t.text == "or" || t.text == "and"))) {
      if (is_name("is")) fail("You cannot chain multiple tests with is");
      Arg a;
      a.value = parse_postfix(parse_primary());
      e->args.push_back(std::move(a));
    }
    e->a = std::move(input);
    return e;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<Block> stack_;
  std::vector<std::set<std::string>*> name_sinks_;
};

}  // namespace

Result<std::shared_ptr<const Program>> parse_program(std::string_view source) {
  try {
    Parser parser(lex(source));
    return std::shared_ptr<const Program>(parser.run());
  } catch (const ParseError& e) {
    return invalid_argument("chat template syntax error at line " + std::to_string(e.line) + ": " + e.message);
  } catch (const RenderError& e) {
    return invalid_argument("chat template syntax error: " + e.message);
  }
}

}  // namespace tachyon::chat::detail
