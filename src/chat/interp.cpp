// The interpreter: statements, expressions, scoping, calls, attribute access.
//
// Scoping follows Jinja2: a for loop body gets a fresh scope per iteration (so `set`
// inside a loop never leaks out, hence namespace()); if/elif/else share the enclosing
// scope; macros see the scope they were defined in (live, like a Python closure), never
// their caller's.
#include "chat/interp.h"

#include <algorithm>
#include <cmath>

namespace tachyon::chat::detail {

namespace {

struct DepthGuard {
  int& depth;
  explicit DepthGuard(int& d, int limit) : depth(d) {
    if (++depth > limit) {
      --depth;
      fail("RecursionError",
           "maximum recursion depth exceeded (macro calls nested deeper than " + std::to_string(limit) + ")");
    }
  }
  ~DepthGuard() { --depth; }
};

[[noreturn]] void overflow() { fail("OverflowError", "integer result does not fit in 64 bits"); }

int64_t checked_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1)
      if (__builtin_mul_overflow(result, base, &result)) overflow();
    exp >>= 1;
    if (exp && __builtin_mul_overflow(base, base, &base)) overflow();
  }
  return result;
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}

// Bounds the interpreter's C++ recursion (statement and expression nesting times macro
// recursion) so that no template can overflow the stack, whatever the thread's stack size
// above ~2 MiB.
constexpr int kMaxNest = 2000;

struct NestGuard {
  int& nest;
  explicit NestGuard(int& n) : nest(n) {
    if (++nest > kMaxNest) {
      --nest;
      fail("RecursionError", "template evaluation nested too deeply");
    }
  }
  ~NestGuard() { --nest; }
};

// Raised in folding mode where Jinja2's as_const raises nodes.Impossible.
[[noreturn]] void impossible() { throw RenderError{"Impossible"}; }

// Names a frame assigns before any read (see symbols.cpp) start out undefined there.
void bind_locals(Scope& scope, const std::vector<std::string>& names) {
  for (const auto& n : names) scope.vars[n] = Value::undefined(py_str_repr(n) + " is undefined");
}

}  // namespace

// --- budget --------------------------------------------------------------------------------

void Interp::charge(uint64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps)
    fail("ResourceLimitError",
         "template exceeded the evaluation step limit (" + std::to_string(limits_.max_steps) + ")");
}

void Interp::check_size(size_t n) {
  if (n > limits_.max_output_bytes)
    fail("ResourceLimitError", "a value of " + std::to_string(n) + " bytes/items exceeds the limit of " +
                                   std::to_string(limits_.max_output_bytes));
}

Value Interp::make_str(std::string s, bool markup) {
  check_size(s.size());
  charge(s.size() / 16);
  return Value::str(std::move(s), markup);
}

void Interp::append(std::string& out, std::string_view s) {
  if (out.size() + s.size() > limits_.max_output_bytes)
    fail("ResourceLimitError",
         "rendered output exceeds the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
  charge(s.size() / 16);
  out.append(s);
}

// --- statements ------------------------------------------------------------------------------

template <class T>
static void track_weak(std::vector<std::weak_ptr<T>>& list, const std::shared_ptr<T>& p) {
  if (list.size() >= 64 && list.size() == list.capacity())  // drop dead entries before growing
    list.erase(std::remove_if(list.begin(), list.end(), [](const auto& w) { return w.expired(); }), list.end());
  list.push_back(p);
}

void Interp::track(const std::shared_ptr<Scope>& scope) { track_weak(cyclic_scopes_, scope); }
void Interp::track(const std::shared_ptr<NamespaceObj>& ns) { track_weak(cyclic_namespaces_, ns); }

void Interp::break_cycles() {
  for (auto& w : cyclic_scopes_)
    if (auto s = w.lock()) s->vars.clear();
  for (auto& w : cyclic_namespaces_)
    if (auto ns = w.lock()) ns->attrs = DictObj();
  cyclic_scopes_.clear();
  cyclic_namespaces_.clear();
}

std::string Interp::render(const Program& program, const ScopePtr& globals) {
  struct Cleanup {
    Interp& in;
    ~Cleanup() { in.break_cycles(); }
  } cleanup{*this};
  auto root = std::make_shared<Scope>();
  root->parent = globals;
  bind_locals(*root, program.locals);
  std::string out;
  exec(program.body, root, out);
  return out;
}

Interp::Flow Interp::exec(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& s : body) {
    charge(1);
    Flow f = exec_stmt(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interp::Flow Interp::exec_stmt(const Stmt& s, const ScopePtr& scope, std::string& out) {
  NestGuard guard(nest_);
  switch (s.kind) {
    case StmtKind::kText:
      append(out, s.text);
      return Flow::kNormal;
    case StmtKind::kOutput: {
      // A {{ }} whose whole expression folds at compile time prints whatever it folds
      // to, even values without a literal repr (Undefined).
      Value v;
      bool folded = s.expr->fold && try_fold(*s.expr, scope, v, /*need_literal=*/false);
      if (!folded) v = eval(*s.expr, scope);
      if (v.is_str())
        append(out, v.as_str());
      else
        append(out, to_str(v, limits_.max_output_bytes));
      return Flow::kNormal;
    }
    case StmtKind::kIf:
      for (const auto& [cond, body] : s.branches)
        if (truthy(eval(*cond, scope))) return exec(body, scope, out);
      return exec(s.else_body, scope, out);
    case StmtKind::kFor:
      exec_for(s, scope, out);
      return Flow::kNormal;
    case StmtKind::kSet:
      assign(*s.target, eval(*s.expr, scope), scope);
      return Flow::kNormal;
    case StmtKind::kSetBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      bind_locals(*inner, s.locals);
      std::string buf;
      exec(s.body, inner, buf);
      Value v = Value::str(std::move(buf));
      if (s.expr) v = eval_filter_chain(*s.expr, inner, v);
      assign(*s.target, v, scope);
      return Flow::kNormal;
    }
    case StmtKind::kMacro: {
      auto fn = std::make_shared<FuncObj>();
      fn->type = FuncObj::Type::kMacro;
      fn->name = s.name;
      fn->macro = &s;
      fn->closure = scope;
      scope->vars[s.name] = Value::object(Kind::kFunc, std::move(fn));
      track(scope);
      return Flow::kNormal;
    }
    case StmtKind::kCallBlock: {
      auto caller = std::make_shared<FuncObj>();
      caller->type = FuncObj::Type::kMacro;
      caller->name = "caller";
      caller->macro = &s;
      caller->closure = scope;
      const Expr& call = *s.expr;
      Value fn = eval(*call.a, scope);
      Args args = eval_args(call.args, scope);
      args.kw.emplace_back("caller", Value::object(Kind::kFunc, std::move(caller)));
      Value v = this->call(fn, args);
      append(out, to_str(v, limits_.max_output_bytes));
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      bind_locals(*inner, s.locals);
      std::string buf;
      exec(s.body, inner, buf);
      Value v = eval_filter_chain(*s.expr, inner, Value::str(std::move(buf)));
      append(out, to_str(v, limits_.max_output_bytes));
      return Flow::kNormal;
    }
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kWith: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      bind_locals(*inner, s.locals);
      for (const auto& [target, value] : s.assigns) assign(*target, eval(*value, scope), inner);
      return exec(s.body, inner, out);
    }
  }
  return Flow::kNormal;
}

void Interp::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
  ValueList items = iterate(eval(*s.expr, scope));
  charge(items.size());
  if (s.cond) {
    ValueList kept;
    for (auto& item : items) {
      auto probe = std::make_shared<Scope>();
      probe->parent = scope;
      assign(*s.target, item, probe);
      if (truthy(eval(*s.cond, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    bind_locals(*inner, s.else_locals);
    exec(s.else_body, inner, out);
    return;
  }
  auto loop = std::make_shared<LoopObj>();
  loop->seq = Value::list(std::move(items));
  Value loop_value = Value::object(Kind::kLoop, loop);
  const ValueList& seq = loop->seq.items();
  for (size_t i = 0; i < seq.size(); ++i) {
    charge(1);
    auto it = std::make_shared<Scope>();
    it->parent = scope;
    bind_locals(*it, s.locals);
    assign(*s.target, seq[i], it);
    loop->index0 = i;
    it->vars["loop"] = loop_value;
    if (exec(s.body, it, out) == Flow::kBreak) break;
  }
}

void Interp::assign(const Expr& target, const Value& v, const ScopePtr& scope) {
  switch (target.kind) {
    case ExprKind::kName:
      scope->vars[target.name] = v;
      return;
    case ExprKind::kTuple: {
      ValueList items = iterate(v);
      size_t n = target.items.size();
      if (items.size() > n) fail("ValueError", "too many values to unpack (expected " + std::to_string(n) + ")");
      if (items.size() < n)
        fail("ValueError", "not enough values to unpack (expected " + std::to_string(n) + ", got " +
                               std::to_string(items.size()) + ")");
      for (size_t i = 0; i < n; ++i) assign(*target.items[i], items[i], scope);
      return;
    }
    case ExprKind::kGetattr: {
      const Value* ns = scope->lookup(target.a->name);
      if (!ns || ns->kind() != Kind::kNamespace)
        fail("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
      ns->obj<NamespaceObj>().attrs.set(Value::str(target.name), v);
      return;
    }
    default:
      fail("TemplateRuntimeError", "cannot assign to this expression");
  }
}

// --- expressions -----------------------------------------------------------------------------

Args Interp::eval_args(const std::vector<Arg>& args, const ScopePtr& scope) {
  Args out;
  for (const auto& a : args) {
    Value v = eval(*a.value, scope);
    if (a.name.empty()) {
      out.pos.push_back(std::move(v));
    } else if (a.name == "*") {
      for (auto& x : iterate(v)) out.pos.push_back(std::move(x));
    } else if (a.name == "**") {
      if (v.kind() != Kind::kDict) fail("TypeError", "argument after ** must be a mapping, not " + type_name(v));
      for (const auto& [k, val] : v.obj<DictObj>().items) {
        if (!k.is_str()) fail("TypeError", "keywords must be strings");
        out.kw.emplace_back(k.as_str(), val);
      }
    } else {
      out.kw.emplace_back(a.name, std::move(v));
    }
  }
  return out;
}

Value Interp::eval_filter_chain(const Expr& e, const ScopePtr& scope, const Value& block_input) {
  // A filter block's chain: innermost filter has a == null and takes the block's text.
  if (folding_ &&
      (e.name == "map" || e.name == "select" || e.name == "reject" || e.name == "selectattr" || e.name == "rejectattr"))
    impossible();  // context filters are never folded
  Value input = !e.a                             ? block_input
                : e.a->kind == ExprKind::kFilter ? eval_filter_chain(*e.a, scope, block_input)
                                                 : eval(*e.a, scope);
  Args args = eval_args(e.args, scope);
  return filter(e.name, input, args);
}

// Whether Jinja2's Const.from_untrusted accepts a folded value (compiler.has_safe_repr).
static bool has_literal_repr(const Value& v, int depth = 0) {
  if (depth > 512) return false;
  switch (v.kind()) {
    case Kind::kNone:
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kFloat:
    case Kind::kStr:
      return true;
    case Kind::kList:
      if (v.obj<ListObj>().view && std::string_view(v.obj<ListObj>().view) != "range") return false;
      [[fallthrough]];
    case Kind::kTuple:
      for (const auto& x : v.items())
        if (!has_literal_repr(x, depth + 1)) return false;
      return true;
    case Kind::kDict:
      for (const auto& [k, x] : v.obj<DictObj>().items)
        if (!has_literal_repr(k, depth + 1) || !has_literal_repr(x, depth + 1)) return false;
      return true;
    default:
      return false;
  }
}

bool Interp::try_fold(const Expr& e, const ScopePtr& scope, Value& out, bool need_literal) {
  folding_ = true;
  try {
    Value v = eval(e, scope);
    folding_ = false;
    if (need_literal && !has_literal_repr(v)) return false;
    out = std::move(v);
    return true;
  } catch (const RenderError&) {
    folding_ = false;
    return false;
  }
}

Value Interp::eval(const Expr& e, const ScopePtr& scope) {
  NestGuard guard(nest_);
  charge(1);
  if (e.fold && !folding_) {
    Value v;
    if (try_fold(e, scope, v, /*need_literal=*/true)) return v;
  }
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName: {
      if (folding_) impossible();
      const Value* v = scope->lookup(e.name);
      if (v) return *v;
      return Value::undefined(py_str_repr(e.name) + " is undefined");
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      check_size(e.items.size());
      ValueList items;
      items.reserve(e.items.size());
      for (const auto& it : e.items) items.push_back(eval(*it, scope));
      return Value::list(std::move(items), e.kind == ExprKind::kList ? Kind::kList : Kind::kTuple);
    }
    case ExprKind::kDict: {
      DictObj d;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        Value k = eval(*e.items[i], scope);
        d.set(k, eval(*e.items[i + 1], scope));
      }
      return make_dict(std::move(d));
    }
    case ExprKind::kGetattr:
      return getattr(eval(*e.a, scope), e.name);
    case ExprKind::kGetitem: {
      Value obj = eval(*e.a, scope);
      return getitem(obj, eval(*e.b, scope));
    }
    case ExprKind::kSlice: {
      Value obj = eval(*e.a, scope);
      Value start = e.b ? eval(*e.b, scope) : Value::none();
      Value stop = e.c ? eval(*e.c, scope) : Value::none();
      Value step = e.d ? eval(*e.d, scope) : Value::none();
      if (folding_) {  // environment.getitem(obj, slice(...)): TypeError -> Undefined
        try {
          return py_slice(*this, obj, start, stop, step);
        } catch (const RenderError& err) {
          if (err.message.rfind("TypeError", 0) != 0) throw;
          return Value::undefined(object_type_repr(obj) + " has no element " + "slice");
        }
      }
      return py_slice(*this, obj, start, stop, step);
    }
    case ExprKind::kCall: {
      if (folding_) impossible();
      Value fn = eval(*e.a, scope);
      Args args = eval_args(e.args, scope);
      return call(fn, args);
    }
    case ExprKind::kFilter:
      return eval_filter_chain(e, scope, Value());
    case ExprKind::kTest: {
      Value v = eval(*e.a, scope);
      Args args = eval_args(e.args, scope);
      bool r = test(e.name, v, args);
      return Value::boolean(e.negated ? !r : r);
    }
    case ExprKind::kNeg:
    case ExprKind::kPos: {
      Value v = eval(*e.a, scope);
      bool neg = e.kind == ExprKind::kNeg;
      if (v.kind() == Kind::kFloat) return Value::number(neg ? -v.as_float() : v.as_float());
      if (v.is_int_like()) {
        if (neg && v.as_int() == INT64_MIN) overflow();
        return Value::integer(neg ? -v.as_int() : v.as_int());
      }
      if (v.is_undefined()) fail_undefined(v);
      fail("TypeError", std::string("bad operand type for unary ") + (neg ? "-" : "+") + ": '" + type_name(v) + "'");
    }
    case ExprKind::kNot:
      return Value::boolean(!truthy(eval(*e.a, scope)));
    case ExprKind::kBinary: {
      Value a = eval(*e.a, scope);
      Value b = eval(*e.b, scope);
      return eval_binary(e.op, a, b);
    }
    case ExprKind::kAnd: {
      Value a = eval(*e.a, scope);
      return truthy(a) ? eval(*e.b, scope) : a;
    }
    case ExprKind::kOr: {
      Value a = eval(*e.a, scope);
      return truthy(a) ? a : eval(*e.b, scope);
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& it : e.items) {
        Value v = eval(*it, scope);
        if (v.is_str())
          s += v.as_str();
        else
          s += to_str(v, limits_.max_output_bytes);
        check_size(s.size());
      }
      return make_str(std::move(s));
    }
    case ExprKind::kCompare:
      return eval_compare(e, scope);
    case ExprKind::kCond:
      if (truthy(eval(*e.a, scope))) return eval(*e.b, scope);
      if (e.c) return eval(*e.c, scope);
      if (folding_) impossible();
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined.");
  }
  return Value();
}

static bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::kStr:
      if (!item.is_str()) fail("TypeError", "'in <string>' requires string as left operand, not " + type_name(item));
      return container.as_str().find(item.as_str()) != std::string::npos;
    case Kind::kList:
    case Kind::kTuple:
      for (const auto& x : container.items())
        if (equals(x, item)) return true;
      return false;
    case Kind::kGenerator: {  // consumes up to the match, like Python
      auto& g = container.obj<ListObj>();
      if (!g.deferred_error.empty()) throw RenderError{g.deferred_error};
      while (g.consumed < g.items.size())
        if (equals(g.items[g.consumed++], item)) return true;
      return false;
    }
    case Kind::kDict:
      return container.obj<DictObj>().find(item) != nullptr;
    case Kind::kUndefined:
      return false;  // Undefined iterates as empty
    default:
      fail("TypeError", "argument of type '" + type_name(container) + "' is not iterable");
  }
}

Value Interp::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.items[0], scope);
  for (size_t i = 0; i < e.cmp_ops.size(); ++i) {
    Value right = eval(*e.items[i + 1], scope);
    bool r = false;
    switch (e.cmp_ops[i]) {
      case CmpOp::kEq:
        r = equals(left, right);
        break;
      case CmpOp::kNe:
        r = !equals(left, right);
        break;
      case CmpOp::kLt:
        r = compare(left, right, "<") < 0;
        break;
      case CmpOp::kLe:
        r = compare(left, right, "<=") <= 0;
        break;
      case CmpOp::kGt:
        r = compare(left, right, ">") > 0;
        break;
      case CmpOp::kGe:
        r = compare(left, right, ">=") >= 0;
        break;
      case CmpOp::kIn:
        r = contains(right, left);
        break;
      case CmpOp::kNotIn:
        r = !contains(right, left);
        break;
    }
    if (!r) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

static const char* op_symbol(BinOp op) {
  switch (op) {
    case BinOp::kAdd:
      return "+";
    case BinOp::kSub:
      return "-";
    case BinOp::kMul:
      return "*";
    case BinOp::kDiv:
      return "/";
    case BinOp::kFloorDiv:
      return "//";
    case BinOp::kMod:
      return "%";
    case BinOp::kPow:
      return "**";
  }
  return "?";
}

Value Interp::eval_binary(BinOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  // str % x formats any object (Undefined prints empty); other operators hand an
  // Undefined right operand its reflected method, which raises.
  if (b.is_undefined() && !(op == BinOp::kMod && a.is_str())) fail_undefined(b);
  auto unsupported = [&]() -> Value {
    fail("TypeError", std::string("unsupported operand type(s) for ") + op_symbol(op) +
                          (op == BinOp::kPow ? " or pow()" : "") + ": '" + type_name(a) + "' and '" + type_name(b) +
                          "'");
  };
  if (a.is_number() && b.is_number()) {
    bool ints = a.is_int_like() && b.is_int_like();
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    double fx = a.as_float(), fy = b.as_float();
    switch (op) {
      case BinOp::kAdd:
        if (!ints) return Value::number(fx + fy);
        if (__builtin_add_overflow(x, y, &r)) overflow();
        return Value::integer(r);
      case BinOp::kSub:
        if (!ints) return Value::number(fx - fy);
        if (__builtin_sub_overflow(x, y, &r)) overflow();
        return Value::integer(r);
      case BinOp::kMul:
        if (!ints) return Value::number(fx * fy);
        if (__builtin_mul_overflow(x, y, &r)) overflow();
        return Value::integer(r);
      case BinOp::kDiv:
        if (fy == 0) fail("ZeroDivisionError", "division by zero");
        return Value::number(fx / fy);
      case BinOp::kFloorDiv:
        if (ints) {
          if (y == 0) fail("ZeroDivisionError", "integer division or modulo by zero");
          if (x == INT64_MIN && y == -1) overflow();
          int64_t q = x / y;
          if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
          return Value::integer(q);
        }
        if (fy == 0) fail("ZeroDivisionError", "float floor division by zero");
        return Value::number(std::floor(fx / fy));
      case BinOp::kMod:
        if (ints) {
          if (y == 0) fail("ZeroDivisionError", "integer modulo by zero");
          if (y == -1) return Value::integer(0);
          int64_t m = x % y;
          if (m != 0 && ((m < 0) != (y < 0))) m += y;
          return Value::integer(m);
        }
        if (fy == 0) fail("ZeroDivisionError", "float modulo");
        return Value::number(py_fmod(fx, fy));
      case BinOp::kPow:
        if (ints && y >= 0) return Value::integer(checked_pow(x, y));
        if (fx == 0 && fy < 0) fail("ZeroDivisionError", "0.0 cannot be raised to a negative power");
        if (fx < 0 && fy != std::floor(fy)) fail("TypeError", "complex results are not supported");
        {
          double r = std::pow(fx, fy);
          if (std::isinf(r) && std::isfinite(fx) && std::isfinite(fy))
            fail("OverflowError", "(34, 'Numerical result out of range')");
          return Value::number(r);
        }
    }
  }
  switch (op) {
    case BinOp::kAdd:
      if (a.is_str() && b.is_str()) {
        if (a.is_markup() == b.is_markup()) return make_str(a.as_str() + b.as_str(), a.is_markup());
        // Markup + str escapes the plain side (markupsafe semantics).
        std::string l = a.is_markup() ? a.as_str() : html_escape(a.as_str());
        std::string r = b.is_markup() ? b.as_str() : html_escape(b.as_str());
        return make_str(l + r, true);
      }
      if ((is_plain_list(a) && is_plain_list(b)) || (a.kind() == Kind::kTuple && b.kind() == Kind::kTuple)) {
        check_size(a.items().size() + b.items().size());
        charge(a.items().size() + b.items().size());
        ValueList items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return Value::list(std::move(items), a.kind());
      }
      if (a.is_str() || is_plain_list(a) || a.kind() == Kind::kTuple)
        fail("TypeError",
             "can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " + type_name(a));
      return unsupported();
    case BinOp::kMul: {
      const Value* seq = nullptr;
      const Value* count = nullptr;
      if ((a.is_str() || is_plain_list(a) || a.kind() == Kind::kTuple) && b.is_int_like()) {
        seq = &a;
        count = &b;
      } else if ((b.is_str() || is_plain_list(b) || b.kind() == Kind::kTuple) && a.is_int_like()) {
        seq = &b;
        count = &a;
      }
      if (!seq) {
        auto is_seq = [](const Value& v) { return v.is_str() || is_plain_list(v) || v.kind() == Kind::kTuple; };
        if (is_seq(a) || is_seq(b))
          fail("TypeError", "can't multiply sequence by non-int of type '" + type_name(is_seq(a) ? b : a) + "'");
        return unsupported();
      }
      int64_t n = std::max<int64_t>(0, count->as_int());
      if (seq->is_str()) {
        const std::string& s = seq->as_str();
        if (n > 0 && s.size() > 0) check_size(s.size() * static_cast<size_t>(std::min<int64_t>(n, 1LL << 40)));
        std::string out;
        for (int64_t i = 0; i < n && !s.empty(); ++i) out += s;
        return make_str(std::move(out), seq->is_markup());
      }
      const ValueList& items = seq->items();
      if (n > 0 && !items.empty()) check_size(items.size() * static_cast<size_t>(std::min<int64_t>(n, 1LL << 40)));
      ValueList out;
      for (int64_t i = 0; i < n && !items.empty(); ++i) out.insert(out.end(), items.begin(), items.end());
      charge(out.size());
      return Value::list(std::move(out), seq->kind());
    }
    case BinOp::kMod:
      if (a.is_str()) return make_str(py_percent_format(*this, a.as_str(), b), a.is_markup());
      return unsupported();
    default:
      return unsupported();
  }
}

// --- calls, attributes, items ---------------------------------------------------------------

Value Interp::call(const Value& fn, Args& args) {
  charge(1);
  if (fn.kind() == Kind::kFunc) {
    const FuncObj& f = fn.obj<FuncObj>();
    switch (f.type) {
      case FuncObj::Type::kMacro: {
        Value caller;
        for (size_t i = 0; i < args.kw.size(); ++i) {
          if (args.kw[i].first == "caller" && f.macro->uses_caller) {
            caller = args.kw[i].second;
            args.kw.erase(args.kw.begin() + i);
            break;
          }
        }
        return call_macro(f, args, caller);
      }
      case FuncObj::Type::kMethod:
        return call_method(*this, f.self, f.name, args);
      case FuncObj::Type::kLoopMethod:
        return call_loop_method(*this, f, args);
      default:
        return call_global(*this, f, args);
    }
  }
  if (fn.is_undefined()) fail_undefined(fn);
  fail("TypeError", "'" + type_name(fn) + "' object is not callable");
}

Value Interp::call_macro(const FuncObj& fn, Args& args, const Value& caller) {
  // Argument binding mirrors jinja2.runtime.Macro.__call__, including its messages.
  DepthGuard guard(depth_, limits_.max_call_depth);
  const Stmt& m = *fn.macro;
  auto sc = std::make_shared<Scope>();
  sc->parent = fn.closure;
  bind_locals(*sc, m.locals);
  size_t np = m.params.size();
  size_t n_pos = std::min(np, args.pos.size());
  std::vector<bool> bound(np, false);
  for (size_t i = 0; i < n_pos; ++i) {
    sc->vars[m.params[i]] = args.pos[i];
    bound[i] = true;
  }
  auto& kw = args.kw;
  for (size_t i = n_pos; i < np; ++i) {
    for (size_t k = 0; k < kw.size(); ++k) {
      if (kw[k].first != m.params[i]) continue;
      sc->vars[m.params[i]] = kw[k].second;
      bound[i] = true;
      kw.erase(kw.begin() + k);
      break;
    }
  }
  DictObj kwargs;
  if (m.uses_kwargs) {
    for (auto& [k, v] : kw) kwargs.set(Value::str(k), v);
  } else if (!kw.empty()) {
    fail("TypeError", "macro " + py_str_repr(fn.name) + " takes no keyword argument " + py_str_repr(kw[0].first));
  }
  ValueList varargs;
  if (args.pos.size() > np) {
    if (!m.uses_varargs)
      fail("TypeError",
           "macro " + py_str_repr(fn.name) + " takes not more than " + std::to_string(np) + " argument(s)");
    varargs.assign(args.pos.begin() + np, args.pos.end());
  }
  size_t first_default = np - m.defaults.size();
  for (size_t i = 0; i < np; ++i) {
    if (bound[i]) continue;
    if (i >= first_default)
      sc->vars[m.params[i]] = eval(*m.defaults[i - first_default], sc);
    else
      sc->vars[m.params[i]] = Value::undefined("parameter " + py_str_repr(m.params[i]) + " was not provided");
  }
  sc->vars["varargs"] = Value::tuple(std::move(varargs));
  sc->vars["kwargs"] = make_dict(std::move(kwargs));
  if (!caller.is_undefined()) sc->vars["caller"] = caller;
  std::string buf;
  exec(m.body, sc, buf);
  return Value::str(std::move(buf));
}

Value Interp::getattr(const Value& obj, const std::string& name) {
  charge(1);
  if (obj.is_undefined()) fail_undefined(obj);
  if (name.size() >= 2 && name[0] == '_' && name[1] == '_')
    return Value::undefined(
        "access to attribute " + py_str_repr(name) + " of " + py_str_repr(type_name(obj)) + " object is unsafe.", true);
  switch (obj.kind()) {
    case Kind::kLoop:
      return loop_attr(obj, name);
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kFloat:
      if (name == "real") return obj.kind() == Kind::kFloat ? obj : Value::integer(obj.as_int());
      if (name == "imag") return obj.kind() == Kind::kFloat ? Value::number(0.0) : Value::integer(0);
      break;
    case Kind::kNamespace: {
      const Value* v = obj.obj<NamespaceObj>().attrs.find(std::string_view(name));
      if (v) return *v;
      break;
    }
    default: {
      if (auto m = lookup_method(obj, name)) return *m;
      if (obj.kind() == Kind::kDict) {
        const Value* v = obj.obj<DictObj>().find(std::string_view(name));
        if (v) return *v;
      }
    }
  }
  return Value::undefined(py_str_repr(object_type_repr(obj)) + " has no attribute " + py_str_repr(name));
}

Value Interp::getitem(const Value& obj, const Value& key) {
  charge(1);
  if (obj.is_undefined()) fail_undefined(obj);
  switch (obj.kind()) {
    case Kind::kDict: {
      if (key.kind() != Kind::kList && key.kind() != Kind::kDict) {
        const Value* v = obj.obj<DictObj>().find(key);
        if (v) return *v;
      }
      break;
    }
    case Kind::kList:
    case Kind::kTuple:
    case Kind::kStr: {
      if (!key.is_int_like()) break;
      if (obj.kind() == Kind::kList && obj.obj<ListObj>().view && std::string_view(obj.obj<ListObj>().view) != "range")
        break;  // dict views are not subscriptable
      int64_t i = key.as_int();
      if (obj.is_str()) {
        const std::string& s = obj.as_str();
        if (is_ascii(s)) {
          int64_t n = static_cast<int64_t>(s.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return Value::str(std::string(1, s[i]));
        } else {
          auto cps = utf8_decode(s);
          int64_t n = static_cast<int64_t>(cps.size());
          if (i < 0) i += n;
          if (i >= 0 && i < n) return Value::str(utf8_encode(cps, i, i + 1));
        }
      } else {
        const ValueList& items = obj.items();
        int64_t n = static_cast<int64_t>(items.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return items[i];
      }
      return Value::undefined(object_type_repr(obj) + " has no element " + repr(key));
    }
    default:
      break;
  }
  if (key.is_str()) return getattr(obj, key.as_str());
  return Value::undefined(object_type_repr(obj) + " has no element " + repr(key));
}

Value Interp::filter(std::string_view name, const Value& input, Args& args) {
  charge(1);
  return apply_filter(*this, name, input, args);
}

bool Interp::test(std::string_view name, const Value& input, Args& args) {
  charge(1);
  return apply_test(*this, name, input, args);
}

}  // namespace tachyon::chat::detail
