// The tree-walking interpreter and the builtin library (filters, tests, methods,
// globals) it calls. Internal to src/chat.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chat/ast.h"
#include "chat/chat_template.h"
#include "chat/value.h"

namespace tachyon::chat::detail {

// Variables of one frame. Frames hold a handful of names (a loop body: the target and
// `loop`), so a flat vector beats a hash map, and scopes are created per iteration.
class Vars {
 public:
  Value* find(std::string_view name) {
    for (auto& [k, v] : items_)
      if (k == name) return &v;
    return nullptr;
  }
  const Value* find(std::string_view name) const { return const_cast<Vars*>(this)->find(name); }
  void clear() {
    release();
    items_.clear();
  }
  void release() {
    for (auto& kv : items_) release_children(&kv.second, 1);
  }
  Value& operator[](std::string_view name) {
    if (Value* v = find(name)) return *v;
    if (items_.empty()) items_.reserve(4);
    items_.emplace_back(std::string(name), Value());
    return items_.back().second;
  }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

struct Scope {
  ~Scope() { vars.release(); }
  std::shared_ptr<Scope> parent;
  Vars vars;

  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get())
      if (const Value* v = s->vars.find(name)) return v;
    return nullptr;
  }
};
using ScopePtr = std::shared_ptr<Scope>;

// Evaluated call arguments.
struct Args {
  ValueList pos;
  std::vector<std::pair<std::string, Value>> kw;
};

struct FuncObj : HeapObj {
  ~FuncObj() override {
    release_children(&self, 1);
    release_children(&state, 1);
  }
  enum class Type { kBuiltin, kMethod, kMacro, kLoopMethod, kJoiner, kCycler };
  Type type = Type::kBuiltin;
  std::string name;             // builtin, method or macro name
  Value self;                   // kMethod: the receiver; kLoopMethod: the loop
  const Stmt* macro = nullptr;  // kMacro: a macro or a call block (as `caller`)
  ScopePtr closure;             // kMacro: the scope the macro was defined in
  Value state;                  // kJoiner/kCycler: separator / items
  size_t counter = 0;           // kJoiner/kCycler: calls so far
};

struct LoopObj : HeapObj {
  ~LoopObj() override {
    release_children(&seq, 1);
    release_children(&changed_value, 1);
  }
  Value seq;  // the (filtered) items, a list
  size_t index0 = 0;
  bool has_changed_value = false;
  Value changed_value;
};

class Interp {
 public:
  explicit Interp(const RenderOptions& opts) : opts_(opts), limits_(opts.limits) {}

  // Renders `program` with `globals` as the outermost scope.
  std::string render(const Program& program, const ScopePtr& globals);

  // --- used by the builtin library ---
  Value call(const Value& fn, Args& args);
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value filter(std::string_view name, const Value& input, Args& args);
  bool test(std::string_view name, const Value& input, Args& args);
  // Budget accounting; both throw a RenderError when a limit is exceeded.
  void charge(uint64_t steps);
  void check_size(size_t n);                           // bytes of a string or elements of a list about to be built
  Value make_str(std::string s, bool markup = false);  // check_size + charge + wrap
  const RenderOptions& opts() const { return opts_; }
  // Objects that can close reference cycles (a scope holding a macro whose closure is
  // that scope; a namespace reachable from its own attributes). render() empties them
  // when it ends so that shared_ptr cycles do not leak.
  void track(const std::shared_ptr<Scope>& scope);
  void track(const std::shared_ptr<NamespaceObj>& ns);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec_stmt(const Stmt& s, const ScopePtr& scope, std::string& out);
  void exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
  void assign(const Expr& target, const Value& v, const ScopePtr& scope);
  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_filter_chain(const Expr& e, const ScopePtr& scope, const Value& block_input);
  Args eval_args(const std::vector<Arg>& args, const ScopePtr& scope);
  Value eval_binary(BinOp op, const Value& a, const Value& b);
  Value eval_compare(const Expr& e, const ScopePtr& scope);
  Value call_macro(const FuncObj& fn, Args& args, const Value& caller);
  bool try_fold(const Expr& e, const ScopePtr& scope, Value& out, bool need_literal);
  void append(std::string& out, std::string_view s);

  const RenderOptions& opts_;
  RenderLimits limits_;
  uint64_t steps_ = 0;
  int depth_ = 0;         // macro calls
  int nest_ = 0;          // C++ recursion: statements + expressions being evaluated
  bool folding_ = false;  // evaluating a constant output as Jinja2's compile-time folding
  std::vector<std::weak_ptr<Scope>> cyclic_scopes_;
  std::vector<std::weak_ptr<NamespaceObj>> cyclic_namespaces_;
  void break_cycles();
};

// Python-style argument binding: positional slots first, then keywords by name.
class Bound {
 public:
  Bound(std::string_view fname, const Args& args, std::initializer_list<const char*> names)
      : names_(names.begin(), names.end()), slots_(names.size()) {
    if (args.pos.size() > names_.size())
      fail("TypeError", std::string(fname) + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
                            std::to_string(args.pos.size()) + " given)");
    for (size_t i = 0; i < args.pos.size(); ++i) slots_[i] = &args.pos[i];
    for (const auto& [k, v] : args.kw) {
      size_t i = 0;
      while (i < names_.size() && k != names_[i]) ++i;
      if (i == names_.size())
        fail("TypeError", std::string(fname) + "() got an unexpected keyword argument '" + k + "'");
      if (slots_[i]) fail("TypeError", std::string(fname) + "() got multiple values for argument '" + k + "'");
      slots_[i] = &v;
    }
  }
  bool has(size_t i) const { return slots_[i] != nullptr; }
  Value get(size_t i, Value def = Value::none()) const { return slots_[i] ? *slots_[i] : def; }
  bool flag(size_t i, bool def = false) const { return slots_[i] ? truthy(*slots_[i]) : def; }
  int64_t integer(size_t i, int64_t def) const {
    if (!slots_[i] || slots_[i]->is_none()) return def;
    if (!slots_[i]->is_number())
      fail("TypeError", "'" + type_name(*slots_[i]) + "' object cannot be interpreted as an integer");
    return slots_[i]->kind() == Kind::kFloat ? static_cast<int64_t>(slots_[i]->as_float()) : slots_[i]->as_int();
  }

 private:
  std::vector<const char*> names_;
  std::vector<const Value*> slots_;
};

// A string derived from `self` keeps its Markup-ness (markupsafe's str methods do).
inline Value str_like(Interp& in, const Value& self, std::string s) {
  return in.make_str(std::move(s), self.is_markup());
}

// --- builtins.cpp ---
Value apply_filter(Interp& in, std::string_view name, const Value& v, Args& args);
bool apply_test(Interp& in, std::string_view name, const Value& v, Args& args);
Value call_global(Interp& in, const FuncObj& fn, Args& args);
// `obj.name` when obj's Python type has that attribute: a bound method, or an unsafe
// Undefined for mutating methods the sandbox forbids. nullopt when no such attribute.
std::optional<Value> lookup_method(const Value& obj, const std::string& name);
Value call_method(Interp& in, const Value& self, const std::string& name, Args& args);
Value loop_attr(const Value& loop, const std::string& name);
Value call_loop_method(Interp& in, const FuncObj& fn, Args& args);
void install_globals(Scope& scope);

// --- strings.cpp: Python str semantics ---
Value str_method(Interp& in, const Value& self, const std::string& name, Args& args);  // self.name(args)
std::string py_lower(std::string_view s);
std::string py_upper(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);     // str.title()
std::string jinja_title(std::string_view s);  // the `title` filter
std::string py_strip(std::string_view s, const Value& chars, bool left, bool right);
ValueList py_split(std::string_view s, const Value& sep, int64_t maxsplit, bool from_right);
std::vector<std::string> py_splitlines(std::string_view s);
std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
int64_t py_find(std::string_view s, std::string_view sub, bool from_right);
int64_t py_count(std::string_view s, std::string_view sub);
bool py_isspace_cp(uint32_t cp);
std::string html_escape(std::string_view s);
// "fmt" % args (printf-style) and "fmt".format(*args, **kwargs).
std::string py_percent_format(Interp& in, std::string_view fmt, const Value& args);
std::string py_str_format(Interp& in, std::string_view fmt, Args& args);
// Python-style slicing and indexing of code-point strings and lists.
Value py_slice(Interp& in, const Value& obj, const Value& start, const Value& stop, const Value& step);
std::string strftime_py(std::string_view fmt, const std::string& iso_now);

}  // namespace tachyon::chat::detail
