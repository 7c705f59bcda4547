// The value model of the template engine: Python's data model as far as chat templates
// observe it (Jinja2 evaluates templates with Python objects, so truthiness, printing,
// equality, arithmetic and JSON serialisation all follow Python).
//
// Values are cheap to copy: strings and containers are shared, immutable once built
// (the sandbox Jinja2 runs chat templates in forbids mutating lists and dicts; only
// namespace() objects and loop state change, and those are reference objects in Python
// too). Internal to src/chat; the public API is chat_template.h.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tachyon::chat::detail {

// A template runtime error. Thrown inside the engine only; ChatTemplate::render turns it
// into a Status. `message` reads like Jinja2's: "<ExceptionType>: <text>".
struct RenderError {
  std::string message;
};
[[noreturn]] void fail(std::string_view type, std::string_view message);

enum class Kind : uint8_t {
  kUndefined,  // jinja2.Undefined: prints empty, falsy, most operations raise
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,  // flag = Markup (a "safe" string: `+` with a plain str escapes the other side)
  kList,
  kTuple,
  kGenerator,  // lazy results of map/select/items/...: iterable once, not JSON-serialisable
  kDict,
  kNamespace,
  kFunc,  // macro, builtin function or bound method
  kLoop,  // the `loop` object of a for statement
};

struct HeapObj {
  virtual ~HeapObj() = default;
};

// Containers release their children through a work list instead of recursively, so that
// freeing a deeply nested value (a template can chain namespaces or lists a million
// levels deep) cannot overflow the stack. Container destructors call this.
class Value;
void release_children(Value* values, size_t n);
class Value;
using ValueList = std::vector<Value>;

class Value {
 public:
  Value() = default;  // Undefined
  static Value undefined(std::string hint = {}, bool unsafe = false);
  static Value none() { return Value(Kind::kNone); }
  static Value boolean(bool b) {
    Value v(Kind::kBool);
    v.i_ = b;
    return v;
  }
  static Value integer(int64_t i) {
    Value v(Kind::kInt);
    v.i_ = i;
    return v;
  }
  static Value number(double f) {
    Value v(Kind::kFloat);
    v.f_ = f;
    return v;
  }
  static Value str(std::string s, bool markup = false);
  static Value list(ValueList items, Kind kind = Kind::kList);
  static Value tuple(ValueList items) { return list(std::move(items), Kind::kTuple); }
  static Value object(Kind kind, std::shared_ptr<HeapObj> obj);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_str() const { return kind_ == Kind::kStr; }
  bool is_int_like() const { return kind_ == Kind::kInt || kind_ == Kind::kBool; }
  bool is_number() const { return is_int_like() || kind_ == Kind::kFloat; }
  bool is_sequence() const { return kind_ == Kind::kList || kind_ == Kind::kTuple || kind_ == Kind::kGenerator; }
  bool is_markup() const { return kind_ == Kind::kStr && flag_; }
  // Undefined produced by an attribute the sandbox refuses (list.append, ...).
  bool is_unsafe() const { return kind_ == Kind::kUndefined && flag_; }

  bool as_bool() const { return i_ != 0; }
  int64_t as_int() const { return i_; }  // kInt and kBool
  double as_float() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(i_); }
  const std::string& as_str() const { return *s_; }              // kStr
  std::string hint() const { return s_ ? *s_ : std::string(); }  // kUndefined: why
  const ValueList& items() const;                                // kList, kTuple, kGenerator
  template <class T>
  T& obj() const {
    return static_cast<T&>(*obj_);
  }
  const std::shared_ptr<HeapObj>& obj_ptr() const { return obj_; }
  std::shared_ptr<HeapObj> take_obj() { return std::move(obj_); }  // for release_children

 private:
  explicit Value(Kind k) : kind_(k) {}
  Kind kind_ = Kind::kUndefined;
  bool flag_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<HeapObj> obj_;
};

struct ListObj : HeapObj {
  ~ListObj() override { release_children(items.data(), items.size()); }
  ValueList items;
  // kList only: the Python type when it is not a list. dict.keys()/values()/items()
  // return views ("dict_keys", ...: printed "dict_keys([...])", not subscriptable) and
  // range() a "range" (printed "range(0, 3)"); none is JSON-serialisable or concatenable.
  const char* view = nullptr;
  int64_t range_start = 0, range_stop = 0, range_step = 1;
  // kGenerator only. Python generators are lazy and single-use: `consumed` items have
  // been taken, and an error raised while producing the items is deferred to the first
  // consumer, as Python would raise it only then.
  size_t consumed = 0;
  std::string deferred_error;
};
Value make_range(int64_t start, int64_t stop, int64_t step);
bool is_plain_list(const Value& v);  // a list, not a view or range

// An insertion-ordered Python dict. Keys are hashable Values (str, numbers, None, tuples).
struct DictObj : HeapObj {
  DictObj() = default;
  DictObj(const DictObj&) = default;
  DictObj(DictObj&&) = default;
  DictObj& operator=(const DictObj&) = default;
  DictObj& operator=(DictObj&&) = default;
  ~DictObj() override {
    for (auto& kv : items) {
      release_children(&kv.first, 1);
      release_children(&kv.second, 1);
    }
  }
  std::vector<std::pair<Value, Value>> items;
  std::unordered_map<std::string, size_t> index;  // dict_key(key) -> position in items

  const Value* find(const Value& key) const;  // throws TypeError for unhashable keys
  const Value* find(std::string_view key) const;
  void set(const Value& key, Value value);
};
Value make_dict(DictObj dict);

struct NamespaceObj : HeapObj {
  DictObj attrs;
};

// --- Python semantics -------------------------------------------------------------------

bool truthy(const Value& v);
std::string type_name(const Value& v);  // Python's type(v).__name__: 'str', 'dict', ...
// Jinja's object_type_repr, used in "'X' has no attribute 'y'" messages.
std::string object_type_repr(const Value& v);
// str(v) and repr(v). Both throw a ResourceLimitError once the text passes `limit` bytes
// (nested shared containers can print exponentially large).
std::string to_str(const Value& v, size_t limit = SIZE_MAX);
std::string repr(const Value& v, size_t limit = SIZE_MAX);
// Both recurse into containers and raise RecursionError past 512 levels, as Python does.
bool equals(const Value& a, const Value& b, int depth = 0);
// Python ordering for <, <=, >, >=; returns <0, 0, >0. Throws TypeError naming `op`.
int compare(const Value& a, const Value& b, std::string_view op, int depth = 0);
// Canonical hash key (Python hash equality: 1 == 1.0 == True). Throws for unhashable.
std::string dict_key(const Value& v, int depth = 0);
// Throws UndefinedError (or SecurityError) carrying the hint of an Undefined value.
[[noreturn]] void fail_undefined(const Value& v);

std::string py_float_repr(double d);
std::string func_repr(const Value& v);        // kFunc: "<Macro 'name'>", ... (builtins.cpp)
std::string py_str_repr(std::string_view s);  // repr() of a str, with Python's quoting

// Elements of an iterable as Python's iter() yields them: list items, dict keys, the
// characters of a string; Undefined yields nothing. Throws TypeError otherwise.
ValueList iterate(const Value& v);

// --- JSON --------------------------------------------------------------------------------

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

struct JsonStyle {
  bool ensure_ascii = false;
  bool sort_keys = false;
  int indent = -1;         // < 0: no newlines
  std::string indent_str;  // used when indent >= 0 (Python accepts a string indent too)
  std::string item_sep = ", ";
  std::string key_sep = ": ";
  size_t max_bytes = SIZE_MAX;  // ResourceLimitError beyond this
};
// json.dumps(v, ...) of Python. Throws TypeError for values JSON cannot represent.
std::string to_json(const Value& v, const JsonStyle& style);
// JSON text -> Value, keeping key order (Python's json.loads). Throws on bad JSON.
Value parse_json(std::string_view text);

// --- UTF-8 helpers (Python strings are code-point sequences) ---------------------------

// Decoding maps malformed bytes to U+FFFD; encoding maps surrogates and values past
// U+10FFFF to U+FFFD, so every string the engine builds is valid UTF-8.
std::vector<uint32_t> utf8_decode(std::string_view s);
void utf8_append(std::string& out, uint32_t cp);
// Byte offset of the first malformed sequence, or npos when `s` is valid UTF-8.
size_t utf8_invalid_at(std::string_view s);
std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end);
size_t utf8_length(std::string_view s);
bool is_ascii(std::string_view s);

}  // namespace tachyon::chat::detail
