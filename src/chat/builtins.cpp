// The builtin library: Jinja2's filters and tests, Python methods of dict/list (str
// methods are in strings.cpp), which of them the sandbox forbids, the globals chat
// templates call (range, namespace, dict, raise_exception, strftime_now,
// joiner) and the attributes of `loop`.
//
// Filters follow jinja2/filters.py (3.1), except `tojson`, which is the transformers
// override: json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False) without HTML escaping. Lazy results (map, select, items, ...) are
// generators, as in Python: iterable, but not JSON-serialisable and without len().
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>

#include "chat/interp.h"

namespace tachyon::chat::detail {

namespace {

std::string soft_str(const Value& v) { return to_str(v); }

Value generator(ValueList items) { return Value::list(std::move(items), Kind::kGenerator); }

// Jinja2 implements map/select/items/unique/batch/... as Python generator functions:
// nothing runs until the result is consumed, so their errors surface only then.
template <class F>
Value lazily(F produce) {
  try {
    return produce();
  } catch (const RenderError& e) {
    Value g = generator({});
    g.obj<ListObj>().deferred_error = e.message.empty() ? "Error" : e.message;
    return g;
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined:
      return 0;
    case Kind::kStr:
      return static_cast<int64_t>(utf8_length(v.as_str()));
    case Kind::kList:
    case Kind::kTuple:
      return static_cast<int64_t>(v.items().size());
    case Kind::kDict:
      return static_cast<int64_t>(v.obj<DictObj>().items.size());
    case Kind::kLoop:
      return static_cast<int64_t>(v.obj<LoopObj>().seq.items().size());
    default:
      fail("TypeError", "object of type '" + type_name(v) + "' has no len()");
  }
}

Value ignore_case(const Value& v) { return v.is_str() ? Value::str(py_lower(v.as_str())) : v; }

// make_attrgetter: "a.b.0" looked up with getitem per part; Undefined -> default.
Value get_attribute_path(Interp& in, const Value& item, const Value& attribute, const Value& def) {
  Value v = item;
  if (attribute.is_int_like()) {
    v = in.getitem(v, attribute);
  } else {
    std::string path = to_str(attribute);
    size_t b = 0;
    for (;;) {
      size_t e = path.find('.', b);
      std::string part = path.substr(b, e == std::string::npos ? std::string::npos : e - b);
      bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
      v = in.getitem(v, digits ? Value::integer(std::stoll(part)) : Value::str(part));
      if (e == std::string::npos) break;
      b = e + 1;
    }
  }
  if (v.is_undefined() && !def.is_none()) return def;
  return v;
}

// Key for unique/min/max (make_attrgetter): the attribute path, lower-cased strings.
Value sort_key(Interp& in, const Value& item, const Value& attribute, bool case_sensitive) {
  auto post = [&](Value v) { return case_sensitive ? v : ignore_case(v); };
  if (attribute.is_none()) return post(item);
  return post(get_attribute_path(in, item, attribute, Value::none()));
}

// Key for sort (make_multi_attrgetter): always a list, one entry per comma-separated
// attribute, so that equal (even Undefined) keys compare without error, as in Python.
Value multi_sort_key(Interp& in, const Value& item, const Value& attribute, bool case_sensitive) {
  auto post = [&](Value v) { return case_sensitive ? v : ignore_case(v); };
  ValueList parts;
  if (attribute.is_none()) {
    parts.push_back(post(item));
  } else if (attribute.is_str()) {
    for (const auto& a : py_split(attribute.as_str(), Value::str(","), -1, false))
      parts.push_back(post(get_attribute_path(in, item, a, Value::none())));
  } else {
    parts.push_back(post(get_attribute_path(in, item, attribute, Value::none())));
  }
  return Value::list(std::move(parts));
}

void sort_values(Interp& in, std::vector<std::pair<Value, Value>>& keyed, bool reverse) {
  in.charge(keyed.size() * 4);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
    return reverse ? compare(b.first, a.first, "<") < 0 : compare(a.first, b.first, "<") < 0;
  });
}

std::string indent_filter(const Value& input, const Value& width, bool first, bool blank) {
  // do_indent appends "\n" to its argument without converting it first.
  if (input.is_undefined()) fail_undefined(input);
  if (is_plain_list(input)) fail("AttributeError", "'list' object has no attribute 'splitlines'");
  if (input.kind() == Kind::kTuple) fail("TypeError", "can only concatenate tuple (not \"str\") to tuple");
  if (!input.is_str()) fail("TypeError", "unsupported operand type(s) for +=: '" + type_name(input) + "' and 'str'");
  const std::string& s = input.as_str();
  std::string ind =
      width.is_str()
          ? width.as_str()
          : std::string(static_cast<size_t>(std::clamp<int64_t>(width.is_number() ? width.as_int() : 4, 0, 10000)),
                        ' ');
  std::vector<std::string> lines = py_splitlines(s + "\n");
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + ind;
      rv += lines[i];
    }
  } else {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + (lines[i].empty() ? std::string() : ind);
      rv += lines[i];
    }
  }
  if (first) rv = ind + rv;
  return rv;
}

Value do_int(const Value& v, const Value& def, int64_t base) {
  if (v.is_undefined()) fail_undefined(v);  // int(Undefined) raises UndefinedError
  auto parse_int = [&](std::string s, int64_t b, int64_t* out) {
    s = py_strip(s, Value::none(), true, true);
    s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
    if (s.empty()) return false;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (b == 16 && s.size() > i + 1 && s[i] == '0' && (s[i + 1] | 0x20) == 'x') i += 2;
    if (i >= s.size()) return false;
    errno = 0;
    char* end = nullptr;
    std::string digits = (s[0] == '-' ? "-" : "") + s.substr(i);
    long long r = std::strtoll(digits.c_str(), &end, static_cast<int>(b));
    if (*end || errno) return false;
    *out = r;
    return true;
  };
  if (v.is_int_like()) return Value::integer(v.as_int());
  if (v.kind() == Kind::kFloat) {
    double d = v.as_float();
    if (std::isnan(d)) return def;
    if (std::isinf(d) || std::fabs(d) > 9.2e18) fail("OverflowError", "cannot convert float to integer");
    return Value::integer(static_cast<int64_t>(d));
  }
  if (v.is_str()) {
    int64_t r = 0;
    if (parse_int(v.as_str(), base, &r)) return Value::integer(r);
    std::string t = py_strip(v.as_str(), Value::none(), true, true);
    char* end = nullptr;
    double d = std::strtod(t.c_str(), &end);
    if (!t.empty() && !*end && std::isfinite(d) && std::fabs(d) < 9.2e18)
      return Value::integer(static_cast<int64_t>(d));
  }
  return def;
}

Value do_float(const Value& v, const Value& def) {
  if (v.is_undefined()) fail_undefined(v);
  if (v.is_number()) return Value::number(v.as_float());
  if (v.is_str()) {
    std::string t = py_strip(v.as_str(), Value::none(), true, true);
    t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
    std::string low = py_lower(t);
    if (low == "inf" || low == "+inf" || low == "infinity" || low == "+infinity") return Value::number(INFINITY);
    if (low == "-inf" || low == "-infinity") return Value::number(-INFINITY);
    if (low == "nan" || low == "+nan" || low == "-nan") return Value::number(NAN);
    char* end = nullptr;
    double d = std::strtod(t.c_str(), &end);
    if (!t.empty() && !*end && low.find_first_of("xp") == std::string::npos) return Value::number(d);
  }
  return def;
}

double py_round(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits > 300) return x;
  if (ndigits < -300) return 0.0 * x;
  char buf[512];
  if (ndigits >= 0) {
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(ndigits), x);  // correctly rounded, half-even
    return std::strtod(buf, nullptr);
  }
  double p = std::pow(10.0, static_cast<double>(-ndigits));
  return std::nearbyint(x / p) * p;
}

Value tojson_filter(Interp& in, const Value& v, Args& args) {
  Bound b("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonStyle st;
  st.ensure_ascii = b.flag(0);
  st.sort_keys = b.flag(3);
  st.max_bytes = in.opts().limits.max_output_bytes;
  Value indent = b.get(1);
  if (!indent.is_none()) {
    if (indent.is_str()) {
      st.indent = 0;
      st.indent_str = indent.as_str();
    } else {
      st.indent = static_cast<int>(std::clamp<int64_t>(indent.as_int(), 0, 1000));
      st.indent_str = std::string(st.indent, ' ');
    }
    st.item_sep = ",";
  }
  Value seps = b.get(2);
  if (!seps.is_none()) {
    if (!seps.is_sequence() || seps.items().size() != 2 || !seps.items()[0].is_str() || !seps.items()[1].is_str())
      fail("ValueError", "separators must be a (item_separator, key_separator) pair of strings");
    st.item_sep = seps.items()[0].as_str();
    st.key_sep = seps.items()[1].as_str();
  }
  return in.make_str(to_json(v, st));
}

Value map_filter(Interp& in, const Value& v, Args& args) {
  ValueList out;
  if (!truthy(v)) return generator({});
  if (args.pos.empty()) {
    Value attribute, def = Value::none();
    bool have_attr = false;
    for (auto& [k, val] : args.kw) {
      if (k == "attribute")
        attribute = val, have_attr = true;
      else if (k == "default")
        def = val;
      else
        fail("FilterArgumentError", "Unexpected keyword argument " + py_str_repr(k));
    }
    if (!have_attr) fail("FilterArgumentError", "map requires a filter argument");
    for (const auto& item : iterate(v)) out.push_back(get_attribute_path(in, item, attribute, def));
    return generator(std::move(out));
  }
  std::string name = to_str(args.pos[0]);
  Args rest;
  rest.pos.assign(args.pos.begin() + 1, args.pos.end());
  rest.kw = args.kw;
  for (const auto& item : iterate(v)) {
    Args a = rest;
    out.push_back(in.filter(name, item, a));
  }
  return generator(std::move(out));
}

Value select_filter(Interp& in, const Value& v, Args& args, bool select, bool by_attr) {
  if (!truthy(v)) return generator({});
  size_t off = 0;
  Value attribute;
  if (by_attr) {
    if (args.pos.empty()) fail("FilterArgumentError", "Missing parameter for attribute name");
    attribute = args.pos[0];
    off = 1;
  }
  bool has_test = args.pos.size() > off;
  std::string test = has_test ? to_str(args.pos[off]) : "";
  Args rest;
  if (has_test) rest.pos.assign(args.pos.begin() + off + 1, args.pos.end());
  rest.kw = args.kw;
  ValueList out;
  for (const auto& item : iterate(v)) {
    Value x = by_attr ? get_attribute_path(in, item, attribute, Value::none()) : item;
    bool r;
    if (has_test) {
      Args a = rest;
      r = in.test(test, x, a);
    } else {
      r = truthy(x);
    }
    if (r == select) out.push_back(item);
  }
  return generator(std::move(out));
}

Value sort_filter(Interp& in, const Value& v, Args& args) {
  Bound b("sort", args, {"reverse", "case_sensitive", "attribute"});
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& item : iterate(v)) keyed.emplace_back(multi_sort_key(in, item, b.get(2), b.flag(1)), item);
  sort_values(in, keyed, b.flag(0));
  ValueList out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value dictsort_filter(Interp& in, const Value& v, Args& args) {
  Bound b("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (v.is_undefined()) fail_undefined(v);
  if (v.kind() == Kind::kNamespace) fail("AttributeError", "items");  // Namespace.__getattribute__
  if (v.kind() != Kind::kDict) fail("AttributeError", "'" + type_name(v) + "' object has no attribute 'items'");
  std::string by = b.has(1) ? to_str(b.get(1)) : "key";
  if (by != "key" && by != "value") fail("FilterArgumentError", "You can only sort by either \"key\" or \"value\"");
  std::vector<std::pair<Value, Value>> keyed;
  for (const auto& [k, val] : v.obj<DictObj>().items) {
    Value key = by == "key" ? k : val;
    if (!b.flag(0)) key = ignore_case(key);
    keyed.emplace_back(key, Value::tuple({k, val}));
  }
  sort_values(in, keyed, b.flag(2));
  ValueList out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return Value::list(std::move(out));
}

Value unique_filter(Interp& in, const Value& v, Args& args) {
  Bound b("unique", args, {"case_sensitive", "attribute"});
  std::vector<std::string> seen;
  ValueList out;
  for (auto& item : iterate(v)) {
    std::string k = dict_key(sort_key(in, item, b.get(1), b.flag(0)));
    if (std::find(seen.begin(), seen.end(), k) != seen.end()) continue;
    seen.push_back(std::move(k));
    out.push_back(item);
  }
  in.charge(seen.size() * seen.size() / 16);
  return generator(std::move(out));
}

Value minmax_filter(Interp& in, const Value& v, Args& args, bool want_max) {
  Bound b(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  ValueList items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = sort_key(in, items[0], b.get(1), b.flag(0));
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = sort_key(in, items[i], b.get(1), b.flag(0));
    int c = compare(k, best_key, want_max ? ">" : "<");
    if (want_max ? c > 0 : c < 0) best = i, best_key = k;
  }
  return items[best];
}

Value truncate_filter(Interp& in, const Value& v, Args& args) {
  Bound b("truncate", args, {"length", "killwords", "end", "leeway"});
  if (!v.is_str()) {  // do_truncate takes len() of its input without converting it
    int64_t n = py_len(v);
    if (n <= b.integer(0, 255) + b.integer(3, 5)) return v;
    fail("AttributeError", "'" + type_name(v) + "' object has no attribute 'rsplit'");
  }
  std::string s = soft_str(v);
  int64_t length = b.integer(0, 255);
  std::string end = b.has(2) ? to_str(b.get(2)) : "...";
  int64_t leeway = b.integer(3, 5);
  auto cps = utf8_decode(s);
  int64_t end_len = static_cast<int64_t>(utf8_length(end));
  if (length < end_len)
    fail("AssertionError", "expected length >= " + std::to_string(end_len) + ", got " + std::to_string(length));
  if (static_cast<int64_t>(cps.size()) <= length + leeway) return v.is_str() ? v : Value::str(s);
  std::string head = utf8_encode(cps, 0, static_cast<size_t>(length - end_len));
  if (!b.flag(1)) {
    size_t sp = head.rfind(' ');
    if (sp != std::string::npos) head.resize(sp);
  }
  return in.make_str(head + end);
}

Value batch_or_slice(Interp& in, const Value& v, Args& args, bool is_batch) {
  Bound b(is_batch ? "batch" : "slice", args, {is_batch ? "linecount" : "slices", "fill_with"});
  int64_t n = b.integer(0, 1);
  if (n <= 0) fail("ValueError", is_batch ? "batch size must be positive" : "slice count must be positive");
  ValueList items = iterate(v);
  ValueList out;
  bool fill = b.has(1) && !b.get(1).is_none();
  if (is_batch) {
    for (size_t i = 0; i < items.size(); i += n) {
      ValueList chunk(items.begin() + i, items.begin() + std::min(items.size(), i + static_cast<size_t>(n)));
      while (fill && static_cast<int64_t>(chunk.size()) < n) chunk.push_back(b.get(1));
      out.push_back(Value::list(std::move(chunk)));
    }
  } else {
    size_t per = items.size() / n, extra = items.size() % n, offset = 0;
    for (int64_t i = 0; i < n; ++i) {
      size_t start = offset + i * per;
      if (static_cast<size_t>(i) < extra) ++offset;
      size_t stop = offset + (i + 1) * per;
      ValueList chunk(items.begin() + start, items.begin() + stop);
      if (fill && static_cast<size_t>(i) >= extra) chunk.push_back(b.get(1));
      out.push_back(Value::list(std::move(chunk)));
    }
  }
  in.charge(items.size());
  return generator(std::move(out));
}

size_t word_count(const std::string& s) {
  size_t n = 0;
  bool in_word = false;
  for (uint32_t c : utf8_decode(s)) {
    bool w = (c < 0x80) ? (std::isalnum(static_cast<int>(c)) || c == '_')
                        : !(py_isspace_cp(c) || (c >= 0x2000 && c <= 0x206F) || (c >= 0x3000 && c <= 0x303F) ||
                            (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xA0 && c <= 0xBF) || c == 0xD7 || c == 0xF7);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return n;
}

}  // namespace

// --- filters -------------------------------------------------------------------------------

Value apply_filter(Interp& in, std::string_view name, const Value& v, Args& args) {
  // string filters: input through str(); Undefined -> ''
  if (name == "trim") {
    Bound b("trim", args, {"chars"});
    return str_like(in, v, py_strip(soft_str(v), b.get(0), true, true));
  }
  if (name == "upper") return str_like(in, v, py_upper(soft_str(v)));
  if (name == "lower") return str_like(in, v, py_lower(soft_str(v)));
  if (name == "capitalize") return str_like(in, v, py_capitalize(soft_str(v)));
  if (name == "title") return str_like(in, v, jinja_title(soft_str(v)));
  if (name == "string") return v.is_str() ? v : in.make_str(soft_str(v));
  if (name == "safe") return v.is_markup() ? v : in.make_str(soft_str(v), true);
  if (name == "e" || name == "escape" || name == "forceescape") {
    if (v.is_markup() && name != "forceescape") return v;
    return in.make_str(html_escape(soft_str(v)), true);
  }
  if (name == "replace") {
    Bound b("replace", args, {"old", "new", "count"});
    return str_like(in, v, py_replace(soft_str(v), to_str(b.get(0)), to_str(b.get(1)), b.integer(2, -1)));
  }
  if (name == "indent") {
    Bound b("indent", args, {"width", "first", "blank"});
    return str_like(in, v, indent_filter(v, b.get(0, Value::integer(4)), b.flag(1), b.flag(2)));
  }
  if (name == "center") {
    Bound b("center", args, {"width"});
    std::string s = soft_str(v);
    int64_t w = std::min<int64_t>(b.integer(0, 80), 100000), len = static_cast<int64_t>(utf8_length(s));
    if (len >= w) return in.make_str(s);
    int64_t total = w - len, left = total / 2 + (total & w & 1);
    return in.make_str(std::string(left, ' ') + s + std::string(total - left, ' '));
  }
  if (name == "wordcount") return Value::integer(static_cast<int64_t>(word_count(soft_str(v))));
  if (name == "truncate") return truncate_filter(in, v, args);
  if (name == "format") {
    Value a = args.kw.empty() ? Value::tuple(args.pos) : Value();
    if (!args.kw.empty()) {
      DictObj d;
      for (auto& [k, val] : args.kw) d.set(Value::str(k), val);
      a = make_dict(std::move(d));
    }
    return in.make_str(py_percent_format(in, soft_str(v), a));
  }
  if (name == "tojson") return tojson_filter(in, v, args);
  if (name == "pprint") return in.make_str(repr(v, in.opts().limits.max_output_bytes));
  if (name == "length" || name == "count") return Value::integer(py_len(v));
  if (name == "default" || name == "d") {
    Bound b("default", args, {"default_value", "boolean"});
    if (v.is_undefined() || (b.flag(1) && !truthy(v))) return b.get(0, Value::str(""));
    return v;
  }
  if (name == "list") {
    ValueList items = iterate(v);
    in.charge(items.size());
    return Value::list(std::move(items));
  }
  if (name == "items")
    return lazily([&] {
      if (v.is_undefined()) return generator({});
      if (v.kind() != Kind::kDict) fail("TypeError", "Can only get item pairs from a mapping.");
      ValueList out;
      for (const auto& [k, val] : v.obj<DictObj>().items) out.push_back(Value::tuple({k, val}));
      return generator(std::move(out));
    });
  if (name == "first") {
    if (v.kind() == Kind::kGenerator) {  // next(iter(gen)) takes one item
      auto& g = v.obj<ListObj>();
      if (!g.deferred_error.empty()) throw RenderError{g.deferred_error};
      if (g.consumed < g.items.size()) return g.items[g.consumed++];
      return Value::undefined("No first item, sequence was empty.");
    }
    ValueList items = iterate(v);
    return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
  }
  if (name == "last") {  // next(iter(reversed(seq)))
    if (v.is_undefined()) return Value::undefined("No last item, sequence was empty.");
    if (!(v.is_str() || v.kind() == Kind::kList || v.kind() == Kind::kTuple || v.kind() == Kind::kDict))
      fail("TypeError", "'" + type_name(v) + "' object is not reversible");
    ValueList items = iterate(v);
    return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
  }
  if (name == "join") {
    Bound b("join", args, {"d", "attribute"});
    std::string sep = b.has(0) ? to_str(b.get(0)) : "";
    std::string out;
    bool first = true;
    for (const auto& item : iterate(v)) {
      if (!first) out += sep;
      first = false;
      out += to_str(b.has(1) ? get_attribute_path(in, item, b.get(1), Value::none()) : item);
      in.check_size(out.size());
    }
    return in.make_str(std::move(out));
  }
  if (name == "map") return lazily([&] { return map_filter(in, v, args); });
  if (name == "select" || name == "reject")
    return lazily([&] { return select_filter(in, v, args, name == "select", false); });
  if (name == "selectattr" || name == "rejectattr")
    return lazily([&] { return select_filter(in, v, args, name == "selectattr", true); });
  if (name == "sort") return sort_filter(in, v, args);
  if (name == "dictsort") return dictsort_filter(in, v, args);
  if (name == "unique") return lazily([&] { return unique_filter(in, v, args); });
  if (name == "min" || name == "max") return minmax_filter(in, v, args, name == "max");
  if (name == "reverse") {
    if (v.is_str()) {
      auto cps = utf8_decode(v.as_str());
      std::reverse(cps.begin(), cps.end());
      return in.make_str(utf8_encode(cps, 0, cps.size()), v.is_markup());
    }
    bool reversible =
        v.kind() == Kind::kList || v.kind() == Kind::kTuple || v.kind() == Kind::kDict || v.is_undefined();
    if (!reversible && v.kind() != Kind::kGenerator) fail("FilterArgumentError", "argument must be iterable");
    ValueList items = iterate(v);
    std::reverse(items.begin(), items.end());
    // reversed(seq) is an iterator; a generator is first copied into a list
    if (!reversible) return Value::list(std::move(items));
    Value it = generator(std::move(items));
    it.obj<ListObj>().view = v.kind() == Kind::kDict    ? "dict_reversekeyiterator"
                             : v.kind() == Kind::kTuple ? "reversed"
                             : is_plain_list(v)         ? "list_reverseiterator"
                                                        : "reversed";
    return it;
  }
  if (name == "sum") {
    Bound b("sum", args, {"attribute", "start"});
    Value total = b.get(1, Value::integer(0));
    for (const auto& item : iterate(v)) {
      Value x = b.has(0) ? get_attribute_path(in, item, b.get(0), Value::none()) : item;
      if (x.is_undefined()) fail_undefined(x);
      if (!total.is_number() || !x.is_number())
        fail("TypeError", "unsupported operand type(s) for +: '" + type_name(total) + "' and '" + type_name(x) + "'");
      if (total.kind() == Kind::kFloat || x.kind() == Kind::kFloat)
        total = Value::number(total.as_float() + x.as_float());
      else {
        int64_t r;
        if (__builtin_add_overflow(total.as_int(), x.as_int(), &r))
          fail("OverflowError", "integer result does not fit in 64 bits");
        total = Value::integer(r);
      }
    }
    return total;
  }
  if (name == "int") {
    Bound b("int", args, {"default", "base"});
    return do_int(v, b.get(0, Value::integer(0)), b.integer(1, 10));
  }
  if (name == "float") {
    Bound b("float", args, {"default"});
    return do_float(v, b.get(0, Value::number(0.0)));
  }
  if (name == "abs") {
    if (v.kind() == Kind::kFloat) return Value::number(std::fabs(v.as_float()));
    if (v.is_int_like()) {
      if (v.as_int() == INT64_MIN) fail("OverflowError", "integer result does not fit in 64 bits");
      return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
    }
    if (v.is_undefined()) fail_undefined(v);
    fail("TypeError", "bad operand type for abs(): '" + type_name(v) + "'");
  }
  if (name == "round") {
    Bound b("round", args, {"precision", "method"});
    int64_t prec = b.integer(0, 0);
    std::string method = b.has(1) ? to_str(b.get(1)) : "common";
    if (!v.is_number()) {
      if (v.is_undefined() && method != "common") fail_undefined(v);
      fail("TypeError", "type " + type_name(v) + " doesn't define __round__ method");
    }
    double x = v.as_float();
    if (method == "common") {
      if (v.is_int_like())  // round(int, n) stays an int
        return Value::integer(prec >= 0 ? v.as_int() : static_cast<int64_t>(py_round(x, prec)));
      return Value::number(py_round(x, prec));
    }
    if (method != "ceil" && method != "floor") fail("FilterArgumentError", "method must be common, ceil or floor");
    double p = std::pow(10.0, static_cast<double>(prec));
    return Value::number((method == "ceil" ? std::ceil(x * p) : std::floor(x * p)) / p);
  }
  if (name == "attr") {
    Bound b("attr", args, {"name"});
    return in.getattr(v, to_str(b.get(0)));
  }
  if (name == "batch") return lazily([&] { return batch_or_slice(in, v, args, true); });
  if (name == "slice") return lazily([&] { return batch_or_slice(in, v, args, false); });
  if (is_known_filter(name)) fail("TemplateRuntimeError", "the filter " + py_str_repr(name) + " is not supported");
  fail("TemplateRuntimeError", "No filter named " + py_str_repr(name) + " found.");
}

// --- tests ---------------------------------------------------------------------------------

namespace {
// Jinja2 3.1's builtin filters and tests. Those without an implementation here
// (groupby, urlize, ...) still parse; using one is a render error.
const char* const kKnownFilters[] = {"abs",    "attr",       "batch",       "capitalize", "center",   "count",
                                     "d",      "default",    "dictsort",    "e",          "escape",   "filesizeformat",
                                     "first",  "float",      "forceescape", "format",     "groupby",  "indent",
                                     "int",    "items",      "join",        "last",       "length",   "list",
                                     "lower",  "map",        "max",         "min",        "pprint",   "random",
                                     "reject", "rejectattr", "replace",     "reverse",    "round",    "safe",
                                     "select", "selectattr", "slice",       "sort",       "string",   "striptags",
                                     "sum",    "title",      "tojson",      "trim",       "truncate", "unique",
                                     "upper",  "urlencode",  "urlize",      "wordcount",  "wordwrap", "xmlattr"};
const char* const kKnownTests[] = {
    "boolean", "callable",  "defined", "divisibleby", "eq",     "equalto", "escaped",  "even",     "false",  "filter",
    "float",   "ge",        "gt",      "greaterthan", "in",     "integer", "iterable", "le",       "lower",  "lessthan",
    "lt",      "mapping",   "ne",      "none",        "number", "odd",     "sameas",   "sequence", "string", "test",
    "true",    "undefined", "upper",   "==",          "!=",     ">",       ">=",       "<",        "<="};
}  // namespace

bool is_known_filter(std::string_view name) {
  for (const char* f : kKnownFilters)
    if (name == f) return true;
  return false;
}

bool is_known_test(std::string_view name) {
  for (const char* t : kKnownTests)
    if (name == t) return true;
  return false;
}

bool apply_test(Interp& in, std::string_view name, const Value& v, Args& args) {
  auto arg = [&](const char* what) -> const Value& {
    if (args.pos.empty()) {
      if (!args.kw.empty()) return args.kw[0].second;
      fail("TypeError", std::string(what) + "() missing 1 required positional argument");
    }
    return args.pos[0];
  };
  auto num_mod = [&](const Value& a, const Value& m) {
    if (a.is_undefined()) fail_undefined(a);
    if (a.is_str()) {  // Python: str % x is printf-style formatting, never equal to 0 or 1
      py_percent_format(in, a.as_str(), m);
      return -1.0;
    }
    if (!a.is_number() || !m.is_number())
      fail("TypeError", "unsupported operand type(s) for %: '" + type_name(a) + "' and '" + type_name(m) + "'");
    if (m.as_float() == 0) fail("ZeroDivisionError", "integer division or modulo by zero");
    if (a.is_int_like() && m.is_int_like()) {
      int64_t r = m.as_int() == -1 ? 0 : a.as_int() % m.as_int();
      if (r != 0 && ((r < 0) != (m.as_int() < 0))) r += m.as_int();
      return static_cast<double>(r);
    }
    double r = std::fmod(a.as_float(), m.as_float());
    if (r != 0 && ((r < 0) != (m.as_float() < 0))) r += m.as_float();
    return r;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_str();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind() == Kind::kInt;
  if (name == "float") return v.kind() == Kind::kFloat;
  if (name == "boolean") return v.kind() == Kind::kBool;
  if (name == "true") return v.kind() == Kind::kBool && v.as_bool();
  if (name == "false") return v.kind() == Kind::kBool && !v.as_bool();
  if (name == "mapping") return v.kind() == Kind::kDict;
  if (name == "iterable")
    return v.is_str() || v.is_sequence() || v.kind() == Kind::kDict || v.is_undefined() || v.kind() == Kind::kLoop;
  if (name == "sequence")
    return v.is_str() || v.kind() == Kind::kList || v.kind() == Kind::kTuple || v.kind() == Kind::kDict ||
           v.is_undefined();
  if (name == "callable") return v.kind() == Kind::kFunc || v.is_undefined();  // Undefined has __call__
  if (name == "escaped") return v.is_markup();
  if (name == "even") return num_mod(v, Value::integer(2)) == 0;
  if (name == "odd") return num_mod(v, Value::integer(2)) == 1;
  if (name == "divisibleby") return num_mod(v, arg("divisibleby")) == 0;
  if (name == "lower" || name == "upper") {  // str(value).islower() / .isupper()
    std::string s = soft_str(v), lo = py_lower(s), up = py_upper(s);
    return lo != up && (name == "lower" ? lo == s : up == s);
  }
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, arg(std::string(name).c_str()));
  if (name == "ne" || name == "!=") return !equals(v, arg("ne"));
  if (name == "lt" || name == "lessthan" || name == "<") return compare(v, arg("lt"), "<") < 0;
  if (name == "le" || name == "<=") return compare(v, arg("le"), "<=") <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(v, arg("gt"), ">") > 0;
  if (name == "ge" || name == ">=") return compare(v, arg("ge"), ">=") >= 0;
  if (name == "in") {
    const Value& seq = arg("in");
    if (seq.is_str()) {
      if (!v.is_str()) fail("TypeError", "'in <string>' requires string as left operand, not " + type_name(v));
      return seq.as_str().find(v.as_str()) != std::string::npos;
    }
    if (seq.kind() == Kind::kDict) return seq.obj<DictObj>().find(v) != nullptr;
    for (const auto& x : iterate(seq))
      if (equals(x, v)) return true;
    return false;
  }
  if (name == "sameas") {
    const Value& o = arg("sameas");
    if (v.kind() != o.kind()) return false;
    if (v.obj_ptr()) return v.obj_ptr() == o.obj_ptr();
    return equals(v, o);
  }
  if (name == "filter") return is_known_filter(to_str(arg("filter")));
  if (name == "test") return is_known_test(to_str(arg("test")));
  fail("TemplateRuntimeError", "No test named " + py_str_repr(name) + " found.");
}

// --- methods -------------------------------------------------------------------------------

namespace {

const char* const kStrMethods[] = {
    "capitalize", "center",  "count",     "endswith",   "find",      "format",       "index",        "isalnum",
    "isalpha",    "isdigit", "isnumeric", "isdecimal",  "islower",   "isspace",      "istitle",      "isupper",
    "join",       "ljust",   "lower",     "lstrip",     "partition", "removeprefix", "removesuffix", "replace",
    "rfind",      "rindex",  "rjust",     "rpartition", "rsplit",    "rstrip",       "split",        "splitlines",
    "startswith", "strip",   "swapcase",  "title",      "upper",     "zfill",        "casefold",     "expandtabs"};
const char* const kDictMethods[] = {"get", "items", "keys", "values", "copy"};
const char* const kDictUnsafe[] = {"pop", "popitem", "setdefault", "update", "clear"};
const char* const kListMethods[] = {"count", "index", "copy"};
const char* const kListUnsafe[] = {"append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"};

template <size_t N>
bool in_list(const char* const (&list)[N], const std::string& name) {
  for (const char* m : list)
    if (name == m) return true;
  return false;
}

Value bound_method(const Value& self, const std::string& name) {
  auto fn = std::make_shared<FuncObj>();
  fn->type = FuncObj::Type::kMethod;
  fn->name = name;
  fn->self = self;
  return Value::object(Kind::kFunc, std::move(fn));
}

Value unsafe_attr(const Value& obj, const std::string& name) {
  return Value::undefined(
      "access to attribute " + py_str_repr(name) + " of " + py_str_repr(type_name(obj)) + " object is unsafe.", true);
}

}  // namespace

std::optional<Value> lookup_method(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Kind::kStr:
      if (in_list(kStrMethods, name)) return bound_method(obj, name);
      return std::nullopt;
    case Kind::kDict:
      if (in_list(kDictMethods, name)) return bound_method(obj, name);
      if (in_list(kDictUnsafe, name)) return unsafe_attr(obj, name);
      return std::nullopt;
    case Kind::kList:
      if (const char* view = obj.obj<ListObj>().view) {
        bool range = std::string_view(view) == "range";
        if (range && (name == "count" || name == "index")) return bound_method(obj, name);
        if (range && name == "start") return Value::integer(obj.obj<ListObj>().range_start);
        if (range && name == "stop") return Value::integer(obj.obj<ListObj>().range_stop);
        if (range && name == "step") return Value::integer(obj.obj<ListObj>().range_step);
        return std::nullopt;
      }
      if (in_list(kListMethods, name)) return bound_method(obj, name);
      if (in_list(kListUnsafe, name)) return unsafe_attr(obj, name);
      return std::nullopt;
    case Kind::kTuple:
      if (name == "count" || name == "index") return bound_method(obj, name);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

Value call_method(Interp& in, const Value& self, const std::string& name, Args& args) {
  if (self.is_str()) return str_method(in, self, name, args);
  if (self.kind() == Kind::kDict) {
    const DictObj& d = self.obj<DictObj>();
    if (name == "get") {
      Bound b("get", args, {"key", "default"});
      const Value* v = d.find(b.get(0));
      return v ? *v : b.get(1);
    }
    if (name == "copy") return self.is_none() ? self : make_dict(d);
    ValueList out;
    for (const auto& [k, v] : d.items) {
      if (name == "items")
        out.push_back(Value::tuple({k, v}));
      else if (name == "keys")
        out.push_back(k);
      else
        out.push_back(v);
    }
    Value view = Value::list(std::move(out));
    view.obj<ListObj>().view = name == "items" ? "dict_items" : name == "keys" ? "dict_keys" : "dict_values";
    return view;
  }
  // list / tuple
  const ValueList& items = self.items();
  if (name == "copy") return Value::list(items);
  Bound b(name, args, {"value"});
  if (name == "count") {
    int64_t n = 0;
    for (const auto& x : items) n += equals(x, b.get(0));
    return Value::integer(n);
  }
  for (size_t i = 0; i < items.size(); ++i)
    if (equals(items[i], b.get(0))) return Value::integer(static_cast<int64_t>(i));
  if (self.kind() == Kind::kTuple) fail("ValueError", "tuple.index(x): x not in tuple");
  fail("ValueError", repr(b.get(0)) + " is not in list");
}

std::string func_repr(const Value& v) {
  const FuncObj& f = v.obj<FuncObj>();
  switch (f.type) {
    case FuncObj::Type::kMacro:
      return "<Macro " + py_str_repr(f.name) + ">";
    case FuncObj::Type::kMethod:
      return "<built-in method " + f.name + " of " + type_name(f.self) + " object>";
    case FuncObj::Type::kLoopMethod:
      return "<bound method LoopContext." + f.name + ">";
    default:
      return "<function " + f.name + ">";
  }
}

// --- loop ----------------------------------------------------------------------------------

Value loop_attr(const Value& loop, const std::string& name) {
  const LoopObj& l = loop.obj<LoopObj>();
  const ValueList& seq = l.seq.items();
  int64_t n = static_cast<int64_t>(seq.size()), i = static_cast<int64_t>(l.index0);
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(n - i);
  if (name == "revindex0") return Value::integer(n - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == n - 1);
  if (name == "length") return Value::integer(n);
  if (name == "depth") return Value::integer(1);
  if (name == "depth0") return Value::integer(0);
  if (name == "previtem") return i > 0 ? seq[i - 1] : Value::undefined("there is no previous item");
  if (name == "nextitem") return i + 1 < n ? seq[i + 1] : Value::undefined("there is no next item");
  if (name == "cycle" || name == "changed") {
    auto fn = std::make_shared<FuncObj>();
    fn->type = FuncObj::Type::kLoopMethod;
    fn->name = name;
    fn->self = loop;
    return Value::object(Kind::kFunc, std::move(fn));
  }
  return Value::undefined("'jinja2.runtime.LoopContext object' has no attribute " + py_str_repr(name));
}

Value call_loop_method(Interp& in, const FuncObj& fn, Args& args) {
  LoopObj& l = fn.self.obj<LoopObj>();
  if (fn.name == "cycle") {
    if (args.pos.empty()) fail("TypeError", "no items for cycling given");
    return args.pos[l.index0 % args.pos.size()];
  }
  Value v = Value::tuple(args.pos);
  if (l.has_changed_value && equals(v, l.changed_value)) return Value::boolean(false);
  l.has_changed_value = true;
  l.changed_value = v;
  (void)in;
  return Value::boolean(true);
}

// --- globals -------------------------------------------------------------------------------

void install_globals(Scope& scope) {
  for (const char* name : {"range", "namespace", "dict", "raise_exception", "strftime_now", "joiner"}) {
    auto fn = std::make_shared<FuncObj>();
    fn->type = FuncObj::Type::kBuiltin;
    fn->name = name;
    scope.vars[name] = Value::object(Kind::kFunc, std::move(fn));
  }
}

Value call_global(Interp& in, const FuncObj& fn, Args& args) {
  const std::string& name = fn.name;
  if (fn.type == FuncObj::Type::kJoiner) {
    auto& f = const_cast<FuncObj&>(fn);
    return f.counter++ == 0 ? Value::str("") : f.state;
  }
  if (name == "range") {
    if (!args.kw.empty()) fail("TypeError", "range() takes no keyword arguments");
    if (args.pos.empty() || args.pos.size() > 3)
      fail("TypeError", "range expected at most 3 arguments, got " + std::to_string(args.pos.size()));
    for (const auto& a : args.pos)
      if (!a.is_int_like()) fail("TypeError", "'" + type_name(a) + "' object cannot be interpreted as an integer");
    int64_t start = 0, stop, step = 1;
    if (args.pos.size() == 1) {
      stop = args.pos[0].as_int();
    } else {
      start = args.pos[0].as_int();
      stop = args.pos[1].as_int();
      if (args.pos.size() == 3) step = args.pos[2].as_int();
    }
    if (step == 0) fail("ValueError", "range() arg 3 must not be zero");
    long double count = step > 0 ? (static_cast<long double>(stop) - start + step - 1) / step
                                 : (static_cast<long double>(start) - stop - step - 1) / -step;
    if (count > 100000)
      fail("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    in.charge(static_cast<uint64_t>(std::max<long double>(count, 0)));
    return make_range(start, stop, step);
  }
  if (name == "namespace" || name == "dict") {
    DictObj d;
    for (const auto& a : args.pos) {
      if (a.kind() == Kind::kDict) {
        for (const auto& [k, v] : a.obj<DictObj>().items) d.set(k, v);
      } else {
        for (const auto& pair : iterate(a)) {
          ValueList kv = iterate(pair);
          if (kv.size() != 2)
            fail("ValueError",
                 "dictionary update sequence element has length " + std::to_string(kv.size()) + "; 2 is required");
          d.set(kv[0], kv[1]);
        }
      }
    }
    for (const auto& [k, v] : args.kw) d.set(Value::str(k), v);
    if (name == "dict") return make_dict(std::move(d));
    auto ns = std::make_shared<NamespaceObj>();
    ns->attrs = std::move(d);
    in.track(ns);
    return Value::object(Kind::kNamespace, std::move(ns));
  }
  if (name == "raise_exception") {
    Bound b("raise_exception", args, {"message"});
    fail("TemplateError", to_str(b.get(0, Value::str(""))));
  }
  if (name == "strftime_now") {
    Bound b("strftime_now", args, {"format"});
    return in.make_str(strftime_py(to_str(b.get(0)), in.opts().strftime_now_iso));
  }
  if (name == "joiner") {
    Bound b("joiner", args, {"sep"});
    auto j = std::make_shared<FuncObj>();
    j->type = FuncObj::Type::kJoiner;
    j->name = "joiner";
    j->state = b.has(0) ? b.get(0) : Value::str(", ");
    return Value::object(Kind::kFunc, std::move(j));
  }
  fail("TemplateRuntimeError", "'" + name + "' is not supported");
}

}  // namespace tachyon::chat::detail
