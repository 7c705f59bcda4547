// Syntax tree of a parsed template, mirroring the node types of Jinja2's parser.
// Internal to src/chat.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "chat/value.h"

namespace tachyon::chat::detail {

enum class ExprKind {
  kLiteral,  // literal
  kName,     // name
  kList,     // [items...]
  kTuple,    // (items...)
  kDict,     // {items[0]: items[1], ...}
  kGetattr,  // a.name
  kGetitem,  // a[b]
  kSlice,    // a[b:c:d], any of b/c/d may be null
  kCall,     // a(args)
  kFilter,   // a|name(args); a == null for filter blocks: the block's rendered body
  kTest,     // a is [not] name(args)
  kNeg,      // -a
  kPos,      // +a
  kNot,      // not a
  kBinary,   // a op b (arithmetic)
  kAnd,      // a and b
  kOr,       // a or b
  kConcat,   // items joined with ~
  kCompare,  // items[0] cmp_ops[0] items[1] ...
  kCond,     // b if a else c  (c may be null)
};

enum class BinOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// A call argument: positional (name empty), keyword, `*name` ("*") or `**name` ("**").
struct Arg {
  std::string name;
  ExprPtr value;
};

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;
  ExprPtr a, b, c, d;
  std::vector<ExprPtr> items;
  std::vector<Arg> args;
  BinOp op = BinOp::kAdd;
  std::vector<CmpOp> cmp_ops;
  bool negated = false;
  // Jinja2's optimizer evaluates constant subexpressions at compile time (as_const) and
  // keeps results with a literal repr. That differs from run time in one way: a slice
  // goes through environment.getitem, which turns a failing slice into Undefined, where
  // the run-time Python subscript raises. `fold` marks the subexpressions where this can
  // matter: they contain a slice, and no name or call, or one that short-circuiting may
  // skip. The interpreter first tries them in folding mode (see Interp::eval).
  bool fold = false;
};

enum class StmtKind {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches, else_body
  kFor,          // for target in expr [if cond]: body, else_body
  kSet,          // set target = expr
  kSetBlock,     // set target [| filter]: body   (expr: filter chain or null)
  kMacro,        // macro name(params = defaults): body
  kCallBlock,    // call(params) expr: body
  kFilterBlock,  // filter expr: body
  kBreak,
  kContinue,
  kWith,  // with targets = values: body
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr, target, cond;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  // macros and call blocks
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // aligned with the last defaults.size() params
  bool uses_varargs = false, uses_kwargs = false, uses_caller = false;
  // with
  std::vector<std::pair<ExprPtr, ExprPtr>> assigns;

  // Names local to the frame this statement opens (loop body, macro body, block) that
  // start out undefined there, shadowing outer values; else_locals: the for-else frame.
  // Filled by analyze_program.
  std::vector<std::string> locals, else_locals;
};

struct Program {
  Body body;
  std::vector<std::string> locals;  // of the root frame, as in Stmt::locals
};

// Names of Jinja2's builtin filters and tests (builtins.cpp). Like Jinja2, the parser
// rejects an unknown name unless it sits inside an if statement or if-expression, where
// the error is deferred to the moment it is evaluated.
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// The compile-time checks and scope analysis Jinja2 runs before rendering: unknown
// filter/test names (outside soft frames), and Stmt::locals. Throws ParseError.
void analyze_program(Program& program);

// Template source -> syntax tree. Errors name the line: "line 3: unexpected 'endfor'".
Result<std::shared_ptr<const Program>> parse_program(std::string_view source);

}  // namespace tachyon::chat::detail
