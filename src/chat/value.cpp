// Python semantics of template values: printing, equality, ordering, hashing, JSON.
#include "chat/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace tachyon::chat::detail {

void fail(std::string_view type, std::string_view message) {
  std::string m;
  m.reserve(type.size() + message.size() + 2);
  m.append(type).append(": ").append(message);
  throw RenderError{std::move(m)};
}

// --- destruction -------------------------------------------------------------------------

namespace {
thread_local std::vector<std::shared_ptr<HeapObj>> t_pending;  // objects waiting to be freed
thread_local bool t_draining = false;
}  // namespace

void release_children(Value* values, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    std::shared_ptr<HeapObj> p = values[i].take_obj();
    if (p && p.use_count() == 1) t_pending.push_back(std::move(p));  // last owner: free later
  }
  if (t_draining) return;  // an outer call is draining the work list
  t_draining = true;
  while (!t_pending.empty()) {
    std::shared_ptr<HeapObj> p = std::move(t_pending.back());
    t_pending.pop_back();
    p.reset();  // its destructor queues its own children
  }
  t_draining = false;
}

[[noreturn]] static void too_deep() { fail("RecursionError", "maximum recursion depth exceeded in comparison"); }

// --- construction ----------------------------------------------------------------------

Value Value::undefined(std::string hint, bool unsafe) {
  Value v(Kind::kUndefined);
  if (!hint.empty()) v.s_ = std::make_shared<const std::string>(std::move(hint));
  v.flag_ = unsafe;
  return v;
}

Value Value::str(std::string s, bool markup) {
  Value v(Kind::kStr);
  v.s_ = std::make_shared<const std::string>(std::move(s));
  v.flag_ = markup;
  return v;
}

Value Value::list(ValueList items, Kind kind) {
  Value v(kind);
  auto obj = std::make_shared<ListObj>();
  obj->items = std::move(items);
  v.obj_ = std::move(obj);
  return v;
}

Value Value::object(Kind kind, std::shared_ptr<HeapObj> obj) {
  Value v(kind);
  v.obj_ = std::move(obj);
  return v;
}

const ValueList& Value::items() const { return static_cast<const ListObj&>(*obj_).items; }

Value make_range(int64_t start, int64_t stop, int64_t step) {
  ValueList items;
  if (step > 0 && stop > start) items.reserve(static_cast<size_t>((stop - start + step - 1) / step));
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.push_back(Value::integer(i));
  Value v = Value::list(std::move(items));
  auto& obj = v.obj<ListObj>();
  obj.view = "range";
  obj.range_start = start;
  obj.range_stop = stop;
  obj.range_step = step;
  return v;
}

bool is_plain_list(const Value& v) { return v.kind() == Kind::kList && !v.obj<ListObj>().view; }

Value make_dict(DictObj dict) { return Value::object(Kind::kDict, std::make_shared<DictObj>(std::move(dict))); }

const Value* DictObj::find(const Value& key) const {
  auto it = index.find(dict_key(key));
  return it == index.end() ? nullptr : &items[it->second].second;
}

const Value* DictObj::find(std::string_view key) const {
  std::string k = "s";
  k.append(key);
  auto it = index.find(k);
  return it == index.end() ? nullptr : &items[it->second].second;
}

void DictObj::set(const Value& key, Value value) {
  std::string k = dict_key(key);
  auto it = index.find(k);
  if (it != index.end()) {
    items[it->second].second = std::move(value);
    return;
  }
  index.emplace(std::move(k), items.size());
  items.emplace_back(key, std::move(value));
}

// --- UTF-8 -------------------------------------------------------------------------------

std::vector<uint32_t> utf8_decode(std::string_view s) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0xFFFD;
    size_t n = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 6 || (c >> 4) == 14 || (c >> 3) == 30) {
      size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
      uint32_t v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
      bool ok = i + len <= s.size();
      for (size_t k = 1; ok && k < len; ++k) {
        unsigned char cc = static_cast<unsigned char>(s[i + k]);
        if ((cc >> 6) != 2) ok = false;
        v = (v << 6) | (cc & 0x3F);
      }
      if (ok) {
        cp = v;
        n = len;
      }
    }
    out.push_back(cp);
    i += n;
  }
  return out;
}

void utf8_append(std::string& out, uint32_t cp) {
  if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = 0xFFFD;  // keep the output valid UTF-8
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end) {
  std::string out;
  out.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) utf8_append(out, cps[i]);
  return out;
}

size_t utf8_invalid_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return i;
    uint32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

size_t utf8_length(std::string_view s) {
  if (is_ascii(s)) return s.size();
  return utf8_decode(s).size();
}

// --- printing ----------------------------------------------------------------------------

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci: [-]D[.DDD]e[+-]XX
  bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp = std::atoi(sci.c_str() + e + 1);
  std::string out = neg ? "-" : "";
  if (exp >= -4 && exp < 16) {  // Python's repr uses exponent form outside [1e-4, 1e16)
    if (exp >= 0) {
      std::string ip = digits.substr(0, std::min<size_t>(digits.size(), exp + 1));
      while (static_cast<int>(ip.size()) < exp + 1) ip.push_back('0');
      std::string fp = digits.size() > static_cast<size_t>(exp + 1) ? digits.substr(exp + 1) : "0";
      out += ip + "." + fp;
    } else {
      out += "0." + std::string(-exp - 1, '0') + digits;
    }
    return out;
  }
  out.push_back(digits[0]);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char eb[16];
  std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
  return out + eb;
}

static bool py_printable(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
  if (cp >= 0x2000 && cp <= 0x200F) return false;
  if (cp >= 0x2028 && cp <= 0x202F) return false;
  if (cp >= 0x205F && cp <= 0x206F) return false;
  if (cp == 0x3000 || cp == 0xFEFF || cp == 0x1680 || cp == 0x180E || cp == 0x61C) return false;
  if (cp >= 0x600 && cp <= 0x605) return false;
  if (cp >= 0xD800 && cp <= 0xF8FF) return false;  // surrogates, private use
  if (cp >= 0xFFF9 && cp <= 0xFFFB) return false;
  if (cp == 0xFFFE || cp == 0xFFFF || cp >= 0xE0000) return false;
  return true;
}

std::string py_str_repr(std::string_view s) {
  char quote = '\'';
  if (s.find('\'') != std::string_view::npos && s.find('"') == std::string_view::npos) quote = '"';
  std::string out(1, quote);
  char buf[16];
  for (uint32_t cp : utf8_decode(s)) {
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (!py_printable(cp)) {
      if (cp <= 0xFF)
        std::snprintf(buf, sizeof(buf), "\\x%02x", cp);
      else if (cp <= 0xFFFF)
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      else
        std::snprintf(buf, sizeof(buf), "\\U%08x", cp);
      out += buf;
    } else {
      utf8_append(out, cp);
    }
  }
  out.push_back(quote);
  return out;
}

std::string type_name(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return v.is_markup() ? "Markup" : "str";
    case Kind::kList:
      return v.obj<ListObj>().view ? v.obj<ListObj>().view : "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kGenerator:
      return v.obj<ListObj>().view ? v.obj<ListObj>().view : "generator";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kFunc:
      return "function";
    case Kind::kLoop:
      return "LoopContext";
  }
  return "object";
}

std::string object_type_repr(const Value& v) {
  if (v.is_none()) return "None";
  switch (v.kind()) {
    case Kind::kNamespace:
      return "jinja2.utils.Namespace object";
    case Kind::kLoop:
      return "jinja2.runtime.LoopContext object";
    case Kind::kStr:
      if (v.is_markup()) return "markupsafe.Markup object";
      break;
    default:
      break;
  }
  return type_name(v) + " object";
}

static void repr_into(std::string& out, const Value& v, bool top, size_t limit, int depth);

static void check_limit(const std::string& out, size_t limit) {
  if (out.size() > limit)
    fail("ResourceLimitError", "printed value exceeds the limit of " + std::to_string(limit) + " bytes");
}

static void repr_seq(std::string& out, const ValueList& items, char open, char close, bool tuple, size_t limit,
                     int depth) {
  out.push_back(open);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    repr_into(out, items[i], false, limit, depth + 1);
    check_limit(out, limit);
  }
  if (tuple && items.size() == 1) out.push_back(',');
  out.push_back(close);
}

static void repr_dict(std::string& out, const DictObj& d, size_t limit, int depth) {
  out.push_back('{');
  for (size_t i = 0; i < d.items.size(); ++i) {
    if (i) out += ", ";
    repr_into(out, d.items[i].first, false, limit, depth + 1);
    out += ": ";
    repr_into(out, d.items[i].second, false, limit, depth + 1);
    check_limit(out, limit);
  }
  out.push_back('}');
}

// top: str() of v; otherwise repr() of v (as inside a container).
static void repr_into(std::string& out, const Value& v, bool top, size_t limit, int depth) {
  if (depth > 512) fail("RecursionError", "maximum recursion depth exceeded while getting the repr of an object");
  switch (v.kind()) {
    case Kind::kUndefined:
      if (!top) out += "Undefined";
      return;
    case Kind::kNone:
      out += "None";
      return;
    case Kind::kBool:
      out += v.as_bool() ? "True" : "False";
      return;
    case Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Kind::kFloat:
      out += py_float_repr(v.as_float());
      return;
    case Kind::kStr:
      if (top) {
        out += v.as_str();
      } else if (v.is_markup()) {
        out += "Markup(" + py_str_repr(v.as_str()) + ")";
      } else {
        out += py_str_repr(v.as_str());
      }
      return;
    case Kind::kList:
      if (const char* view = v.obj<ListObj>().view) {
        const auto& l = v.obj<ListObj>();
        if (std::string_view(view) == "range") {
          out += "range(" + std::to_string(l.range_start) + ", " + std::to_string(l.range_stop);
          if (l.range_step != 1) out += ", " + std::to_string(l.range_step);
          out += ")";
          return;
        }
        out += view;
        out += "(";
        repr_seq(out, v.items(), '[', ']', false, limit, depth);
        out += ")";
        return;
      }
      repr_seq(out, v.items(), '[', ']', false, limit, depth);
      return;
    case Kind::kTuple:
      repr_seq(out, v.items(), '(', ')', true, limit, depth);
      return;
    case Kind::kGenerator:
      out += "<" + type_name(v) + " object>";
      return;
    case Kind::kDict:
      repr_dict(out, v.obj<DictObj>(), limit, depth);
      return;
    case Kind::kNamespace:
      out += "<Namespace ";
      repr_dict(out, v.obj<NamespaceObj>().attrs, limit, depth);
      out += ">";
      return;
    case Kind::kFunc:
      out += func_repr(v);
      return;
    case Kind::kLoop:
      out += "<LoopContext>";
      return;
  }
}

std::string to_str(const Value& v, size_t limit) {
  if (v.kind() == Kind::kStr) return v.as_str();
  std::string out;
  repr_into(out, v, true, limit, 0);
  check_limit(out, limit);
  return out;
}

std::string repr(const Value& v, size_t limit) {
  std::string out;
  repr_into(out, v, false, limit, 0);
  check_limit(out, limit);
  return out;
}

// --- truthiness, equality, ordering, hashing --------------------------------------------

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
    case Kind::kInt:
      return v.as_int() != 0;
    case Kind::kFloat:
      return v.as_float() != 0.0;
    case Kind::kStr:
      return !v.as_str().empty();
    case Kind::kList:
    case Kind::kTuple:
      return !v.items().empty();
    case Kind::kDict:
      return !v.obj<DictObj>().items.empty();
    default:
      return true;  // generators, namespaces, functions: objects are truthy
  }
}

static bool num_equal(const Value& a, const Value& b) {
  if (a.kind() != Kind::kFloat && b.kind() != Kind::kFloat) return a.as_int() == b.as_int();
  return a.as_float() == b.as_float();
}

bool equals(const Value& a, const Value& b, int depth) {
  if (depth > 512) too_deep();
  if (a.is_number() && b.is_number()) return num_equal(a, b);
  if (a.kind() != b.kind()) return false;
  if (a.obj_ptr() && a.obj_ptr() == b.obj_ptr()) return true;  // Python checks identity first
  switch (a.kind()) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kStr:
      return a.as_str() == b.as_str();
    case Kind::kList:
    case Kind::kTuple: {
      if (a.kind() == Kind::kList && a.obj<ListObj>().view != b.obj<ListObj>().view) return false;
      const auto& x = a.items();
      const auto& y = b.items();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!equals(x[i], y[i], depth + 1)) return false;
      return true;
    }
    case Kind::kDict: {
      const auto& x = a.obj<DictObj>();
      const auto& y = b.obj<DictObj>();
      if (x.items.size() != y.items.size()) return false;
      for (const auto& [k, v] : x.items) {
        const Value* w = y.find(k);
        if (!w || !equals(v, *w, depth + 1)) return false;
      }
      return true;
    }
    default:
      return a.obj_ptr() == b.obj_ptr();
  }
}

int compare(const Value& a, const Value& b, std::string_view op, int depth) {
  if (depth > 512) too_deep();
  if (a.is_number() && b.is_number()) {
    if (a.kind() != Kind::kFloat && b.kind() != Kind::kFloat)
      return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    double x = a.as_float(), y = b.as_float();
    return x < y ? -1 : x > y ? 1 : 0;  // NaN compares "equal": every op but != is false
  }
  if (a.is_str() && b.is_str()) {
    int c = a.as_str().compare(b.as_str());  // UTF-8 byte order is code-point order
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if ((is_plain_list(a) && is_plain_list(b)) || (a.kind() == Kind::kTuple && b.kind() == Kind::kTuple)) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i], depth + 1)) continue;
      return compare(x[i], y[i], op, depth + 1);
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  fail("TypeError", "'" + std::string(op) + "' not supported between instances of '" + type_name(a) + "' and '" +
                        type_name(b) + "'");
}

std::string dict_key(const Value& v, int depth) {
  if (depth > 512) fail("RecursionError", "maximum recursion depth exceeded while hashing");
  switch (v.kind()) {
    case Kind::kStr:
      return "s" + v.as_str();
    case Kind::kBool:
    case Kind::kInt:
      return "n" + std::to_string(v.as_int());
    case Kind::kFloat: {
      double f = v.as_float();
      if (std::isfinite(f) && f == std::floor(f) && std::fabs(f) < 9.2e18)
        return "n" + std::to_string(static_cast<int64_t>(f));
      return "f" + py_float_repr(f);
    }
    case Kind::kNone:
      return "N";
    case Kind::kUndefined:
      return "U";
    case Kind::kTuple: {
      std::string k = "t(";
      for (const auto& x : v.items()) k += dict_key(x, depth + 1) + "\x1f";
      return k + ")";
    }
    case Kind::kList:
    case Kind::kDict:
      fail("TypeError", "unhashable type: '" + type_name(v) + "'");
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "p%p", static_cast<void*>(v.obj_ptr().get()));
      return buf;
    }
  }
}

void fail_undefined(const Value& v) {
  std::string hint = v.hint();
  if (v.is_unsafe()) fail("SecurityError", hint);
  fail("UndefinedError", hint.empty() ? "value is undefined" : hint);
}

ValueList iterate(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return {};
    case Kind::kList:
    case Kind::kTuple:
      return v.items();
    case Kind::kGenerator: {
      auto& g = v.obj<ListObj>();
      if (!g.deferred_error.empty()) throw RenderError{g.deferred_error};
      ValueList out(g.items.begin() + std::min(g.consumed, g.items.size()), g.items.end());
      g.consumed = g.items.size();
      return out;
    }
    case Kind::kDict: {
      ValueList out;
      for (const auto& kv : v.obj<DictObj>().items) out.push_back(kv.first);
      return out;
    }
    case Kind::kStr: {
      ValueList out;
      const std::string& s = v.as_str();
      if (is_ascii(s)) {
        for (char c : s) out.push_back(Value::str(std::string(1, c)));
      } else {
        for (uint32_t cp : utf8_decode(s)) {
          std::string one;
          utf8_append(one, cp);
          out.push_back(Value::str(std::move(one)));
        }
      }
      return out;
    }
    default:
      fail("TypeError", "'" + type_name(v) + "' object is not iterable");
  }
}

// --- JSON --------------------------------------------------------------------------------

template <class J>
static Value from_json_impl(const J& j, int depth) {
  if (depth > 512) fail("ValueError", "JSON input nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = j.template get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Value::integer(static_cast<int64_t>(u));
      return Value::number(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::number(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::str(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      ValueList items;
      items.reserve(j.size());
      for (const auto& x : j) items.push_back(from_json_impl(x, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      DictObj d;
      for (auto it = j.begin(); it != j.end(); ++it) d.set(Value::str(it.key()), from_json_impl(it.value(), depth + 1));
      return make_dict(std::move(d));
    }
    default:
      return Value::none();  // binary / discarded: not produced by JSON text
  }
}

Value from_json(const nlohmann::json& j) { return from_json_impl(j, 0); }
Value from_json(const nlohmann::ordered_json& j) { return from_json_impl(j, 0); }

Value parse_json(std::string_view text) {
  auto j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail("JSONDecodeError", "invalid JSON text");
  return from_json(j);
}

static void json_escape(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  char buf[16];
  auto ctrl = [&](uint32_t c) {
    switch (c) {
      case '"':
        out += "\\\"";
        return;
      case '\\':
        out += "\\\\";
        return;
      case '\n':
        out += "\\n";
        return;
      case '\r':
        out += "\\r";
        return;
      case '\t':
        out += "\\t";
        return;
      case '\b':
        out += "\\b";
        return;
      case '\f':
        out += "\\f";
        return;
      default:
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
    }
  };
  if (!ensure_ascii) {
    for (char ch : s) {
      unsigned char c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == '"' || c == '\\')
        ctrl(c);
      else
        out.push_back(ch);
    }
  } else {
    for (uint32_t cp : utf8_decode(s)) {
      if (cp < 0x20 || cp == '"' || cp == '\\') {
        ctrl(cp);
      } else if (cp < 0x7F) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
        out += buf;
      } else {
        uint32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
        out += buf;
      }
    }
  }
  out.push_back('"');
}

static std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return py_float_repr(d);
}

static void json_into(std::string& out, const Value& v, const JsonStyle& st, int level) {
  if (level > 512) fail("RecursionError", "maximum recursion depth exceeded while encoding a JSON object");
  check_limit(out, st.max_bytes);
  auto newline = [&](int lvl) {
    out.push_back('\n');
    for (int i = 0; i < lvl; ++i) out += st.indent_str;
  };
  switch (v.kind()) {
    case Kind::kNone:
      out += "null";
      return;
    case Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Kind::kFloat:
      out += json_float(v.as_float());
      return;
    case Kind::kStr:
      json_escape(out, v.as_str(), st.ensure_ascii);
      return;
    case Kind::kList:
    case Kind::kTuple: {
      if (v.kind() == Kind::kList && v.obj<ListObj>().view)
        fail("TypeError", "Object of type " + type_name(v) + " is not JSON serializable");
      const auto& items = v.items();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      if (st.indent >= 0) newline(level + 1);
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) {
          out += st.item_sep;
          if (st.indent >= 0) newline(level + 1);
        }
        json_into(out, items[i], st, level + 1);
      }
      if (st.indent >= 0) newline(level);
      out.push_back(']');
      return;
    }
    case Kind::kDict: {
      const auto& d = v.obj<DictObj>();
      if (d.items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> entries;
      entries.reserve(d.items.size());
      for (const auto& [k, val] : d.items) {
        std::string key;
        switch (k.kind()) {
          case Kind::kStr:
            key = k.as_str();
            break;
          case Kind::kBool:
            key = k.as_bool() ? "true" : "false";
            break;
          case Kind::kInt:
            key = std::to_string(k.as_int());
            break;
          case Kind::kFloat:
            key = json_float(k.as_float());
            break;
          case Kind::kNone:
            key = "null";
            break;
          default:
            fail("TypeError", "keys must be str, int, float, bool or None, not " + type_name(k));
        }
        entries.emplace_back(std::move(key), &val);
      }
      if (st.sort_keys)
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      out.push_back('{');
      if (st.indent >= 0) newline(level + 1);
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) {
          out += st.item_sep;
          if (st.indent >= 0) newline(level + 1);
        }
        json_escape(out, entries[i].first, st.ensure_ascii);
        out += st.key_sep;
        json_into(out, *entries[i].second, st, level + 1);
      }
      if (st.indent >= 0) newline(level);
      out.push_back('}');
      return;
    }
    default:
      fail("TypeError", "Object of type " + type_name(v) + " is not JSON serializable");
  }
}

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  json_into(out, v, style, 0);
  check_limit(out, style.max_bytes);
  return out;
}

}  // namespace tachyon::chat::detail
