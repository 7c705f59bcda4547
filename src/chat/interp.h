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

struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;

  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
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
  enum class Type { kBuiltin, kMethod, kMacro, kLoopMethod, kJoiner, kCycler };
  Type type = Type::kBuiltin;
  std::string name;              // builtin, method or macro name
  Value self;                    // kMethod: the receiver; kLoopMethod: the loop
  const Stmt* macro = nullptr;   // kMacro: a macro or a call block (as `caller`)
  ScopePtr closure;              // kMacro: the scope the macro was defined in
  Value state;                   // kJoiner/kCycler: separator / items
  size_t counter = 0;            // kJoiner/kCycler: calls so far
};

struct LoopObj : HeapObj {
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
  void check_size(size_t n);  // bytes of a string or elements of a list about to be built
  Value make_str(std::string s, bool markup = false);  // check_size + charge + wrap
  const RenderOptions& opts() const { return opts_; }

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
  void append(std::string& out, std::string_view s);

  const RenderOptions& opts_;
  RenderLimits limits_;
  uint64_t steps_ = 0;
  int depth_ = 0;  // macro calls
  int nest_ = 0;   // C++ recursion: statements + expressions being evaluated
};

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
std::string py_lower(std::string_view s);
std::string py_upper(std::string_view s);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);      // str.title()
std::string jinja_title(std::string_view s);   // the `title` filter
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
