// Python str semantics on UTF-8 text: case mapping, strip/split/replace/find by code
// point, the str methods templates call, %-formatting, str.format, slicing, strftime.
//
// Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic, Armenian and
// fullwidth Latin, which is what chat templates meet in practice; other scripts are
// left unchanged (Python would map a few more, e.g. Georgian and Cherokee).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "chat/interp.h"

namespace tachyon::chat::detail {

namespace {

// Simple one-to-one mappings; returns c when there is none.
uint32_t cp_to_upper(uint32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c == 0xB5) return 0x39C;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if (c == 0x131) return 'I';
  if (c == 0x17F) return 'S';
  if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
    return c % 2 == 1 ? c - 1 : c;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 0 ? c - 1 : c;
  if (c >= 0x3B1 && c <= 0x3C9) return c == 0x3C2 ? 0x3A3 : c - 32;
  if (c == 0x3AC) return 0x386;
  if (c >= 0x3AD && c <= 0x3AF) return c - 37;
  if (c == 0x3CC) return 0x38C;
  if (c == 0x3CD || c == 0x3CE) return c - 63;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
    return c % 2 == 1 ? c - 1 : c;
  if (c >= 0x561 && c <= 0x586) return c - 48;
  if (c >= 0xFF41 && c <= 0xFF5A) return c - 32;
  return c;
}

uint32_t cp_to_lower(uint32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
    return c % 2 == 0 ? c + 1 : c;
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1 ? c + 1 : c;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 37;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 63;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || (c >= 0x4D0 && c <= 0x52F))
    return c % 2 == 0 ? c + 1 : c;
  if (c >= 0x531 && c <= 0x556) return c + 48;
  if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
  return c;
}

bool is_cased(uint32_t c) { return cp_to_upper(c) != c || cp_to_lower(c) != c || c == 0xDF || c == 0x130; }

void append_lower(std::string& out, uint32_t c) {
  if (c == 0x130) {  // İ -> i + combining dot above (full case mapping)
    out += "i\xCC\x87";
    return;
  }
  utf8_append(out, cp_to_lower(c));
}

void append_upper(std::string& out, uint32_t c) {
  if (c == 0xDF) {  // ß -> SS (full case mapping)
    out += "SS";
    return;
  }
  utf8_append(out, cp_to_upper(c));
}

template <class F>
std::string map_cps(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  if (is_ascii(s)) {
    for (char c : s) f(out, static_cast<unsigned char>(c));
  } else {
    for (uint32_t c : utf8_decode(s)) f(out, c);
  }
  return out;
}

bool is_ws_char(uint32_t c) { return py_isspace_cp(c); }

size_t cp_index_of_byte(std::string_view s, size_t byte) {
  if (is_ascii(s)) return byte;
  return utf8_length(s.substr(0, byte));
}

}  // namespace

bool py_isspace_cp(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string py_lower(std::string_view s) {
  return map_cps(s, [](std::string& o, uint32_t c) { append_lower(o, c); });
}

std::string py_upper(std::string_view s) {
  return map_cps(s, [](std::string& o, uint32_t c) { append_upper(o, c); });
}

std::string py_capitalize(std::string_view s) {
  bool first = true;
  return map_cps(s, [&](std::string& o, uint32_t c) {
    if (first)
      append_upper(o, c);
    else
      append_lower(o, c);
    first = false;
  });
}

std::string py_title(std::string_view s) {
  bool prev_cased = false;
  return map_cps(s, [&](std::string& o, uint32_t c) {
    if (is_cased(c)) {
      if (prev_cased)
        append_lower(o, c);
      else
        append_upper(o, c);
      prev_cased = true;
    } else {
      utf8_append(o, c);
      prev_cased = false;
    }
  });
}

std::string jinja_title(std::string_view s) {
  // "".join(w[0].upper() + w[1:].lower() for w in re.split(r"([-\s\(\{\[\<]+)", s) if w)
  auto sep = [](uint32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || is_ws_char(c); };
  std::string out;
  bool word_start = true;
  bool in_sep = false;
  for (uint32_t c : utf8_decode(s)) {
    bool is_sep = sep(c);
    if (is_sep != in_sep) word_start = true;
    in_sep = is_sep;
    if (word_start)
      append_upper(out, c);
    else
      append_lower(out, c);
    word_start = false;
  }
  return out;
}

std::string py_strip(std::string_view s, const Value& chars, bool left, bool right) {
  if (!chars.is_none() && !chars.is_undefined() && !chars.is_str()) fail("TypeError", "strip arg must be None or str");
  auto cps = utf8_decode(s);
  std::vector<uint32_t> set;
  bool ws = !chars.is_str();
  if (!ws) set = utf8_decode(chars.as_str());
  auto strip_it = [&](uint32_t c) { return ws ? is_ws_char(c) : std::find(set.begin(), set.end(), c) != set.end(); };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_it(cps[b])) ++b;
  if (right)
    while (e > b && strip_it(cps[e - 1])) --e;
  return utf8_encode(cps, b, e);
}

ValueList py_split(std::string_view s, const Value& sep, int64_t maxsplit, bool from_right) {
  ValueList out;
  if (sep.is_none() || sep.is_undefined()) {
    auto cps = utf8_decode(s);
    std::vector<std::pair<size_t, size_t>> words;
    if (!from_right) {
      size_t i = 0;
      while (i < cps.size()) {
        while (i < cps.size() && is_ws_char(cps[i])) ++i;
        if (i >= cps.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t e = cps.size();
          while (e > i && is_ws_char(cps[e - 1])) --e;
          words.emplace_back(i, e);
          break;
        }
        size_t j = i;
        while (j < cps.size() && !is_ws_char(cps[j])) ++j;
        words.emplace_back(i, j);
        i = j;
      }
    } else {
      size_t i = cps.size();
      while (i > 0) {
        while (i > 0 && is_ws_char(cps[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t b = 0;
          while (b < i && is_ws_char(cps[b])) ++b;
          words.emplace_back(b, i);
          break;
        }
        size_t j = i;
        while (j > 0 && !is_ws_char(cps[j - 1])) --j;
        words.emplace_back(j, i);
        i = j;
      }
      std::reverse(words.begin(), words.end());
    }
    for (auto [b, e] : words) out.push_back(Value::str(utf8_encode(cps, b, e)));
    return out;
  }
  if (!sep.is_str()) fail("TypeError", "must be str or None, not " + type_name(sep));
  const std::string& d = sep.as_str();
  if (d.empty()) fail("ValueError", "empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t pos = 0;
    for (;;) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) break;
      size_t q = s.find(d, pos);
      if (q == std::string_view::npos) break;
      parts.emplace_back(s.substr(pos, q - pos));
      pos = q + d.size();
    }
    parts.emplace_back(s.substr(pos));
  } else {
    size_t end = s.size();
    for (;;) {
      if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) break;
      if (end < d.size()) break;
      size_t q = s.rfind(d, end - d.size());
      if (q == std::string_view::npos) break;
      parts.emplace_back(s.substr(q + d.size(), end - q - d.size()));
      end = q;
    }
    parts.emplace_back(s.substr(0, end));
    std::reverse(parts.begin(), parts.end());
  }
  for (auto& p : parts) out.push_back(Value::str(std::move(p)));
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s) {
  std::vector<std::string> out;
  auto cps = utf8_decode(s);
  size_t b = 0, i = 0;
  while (i < cps.size()) {
    uint32_t c = cps[i];
    bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
               c == 0x2028 || c == 0x2029;
    if (!brk) {
      ++i;
      continue;
    }
    out.push_back(utf8_encode(cps, b, i));
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    b = ++i;
  }
  if (b < cps.size()) out.push_back(utf8_encode(cps, b, cps.size()));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    auto cps = utf8_decode(s);
    int64_t n = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || n < count) {
        out.append(repl);
        ++n;
      }
      if (i < cps.size()) utf8_append(out, cps[i]);
    }
    return out;
  }
  size_t pos = 0;
  int64_t n = 0;
  for (;;) {
    if (count >= 0 && n >= count) break;
    size_t q = s.find(old, pos);
    if (q == std::string_view::npos) break;
    out.append(s.substr(pos, q - pos));
    out.append(repl);
    pos = q + old.size();
    ++n;
  }
  out.append(s.substr(pos));
  return out;
}

int64_t py_find(std::string_view s, std::string_view sub, bool from_right) {
  size_t q = from_right ? s.rfind(sub) : s.find(sub);
  if (q == std::string_view::npos) return -1;
  return static_cast<int64_t>(cp_index_of_byte(s, q));
}

int64_t py_count(std::string_view s, std::string_view sub) {
  if (sub.empty()) return static_cast<int64_t>(utf8_length(s)) + 1;
  int64_t n = 0;
  for (size_t q = s.find(sub); q != std::string_view::npos; q = s.find(sub, q + sub.size())) ++n;
  return n;
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// --- str methods --------------------------------------------------------------------------

namespace {

bool str_pred(const std::string& s, bool (*pred)(uint32_t)) {
  if (s.empty()) return false;
  for (uint32_t c : utf8_decode(s))
    if (!pred(c)) return false;
  return true;
}

bool is_alpha_cp(uint32_t c) {
  if (c < 0x80) return std::isalpha(static_cast<int>(c)) != 0;
  return !py_isspace_cp(c) && !(c >= 0x2000 && c <= 0x206F) && !(c >= 0x3000 && c <= 0x303F) &&
         !(c >= 0xFF00 && c <= 0xFF0F) && !(c >= 0xA0 && c <= 0xBF) && c != 0xD7 && c != 0xF7;
}
bool is_digit_cp(uint32_t c) { return c >= '0' && c <= '9'; }
bool is_alnum_cp(uint32_t c) { return is_alpha_cp(c) || is_digit_cp(c); }
bool is_space_cp(uint32_t c) { return py_isspace_cp(c); }

}  // namespace

Value str_method(Interp& in, const Value& self, const std::string& name, Args& args) {
  const std::string& s = self.as_str();
  // str arguments; `what` is Python's message up to the offending type name
  auto sarg = [&](const Value& v, const std::string& what) -> const std::string& {
    if (!v.is_str()) fail("TypeError", what + type_name(v));
    return v.as_str();
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Bound b(name, args, {"chars"});
    return str_like(in, self, py_strip(s, b.get(0), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    Bound b(name, args, {"sep", "maxsplit"});
    ValueList parts = py_split(s, b.get(0), b.integer(1, -1), name == "rsplit");
    in.charge(parts.size());
    return Value::list(std::move(parts));
  }
  if (name == "splitlines") {
    ValueList out;
    for (auto& l : py_splitlines(s)) out.push_back(Value::str(std::move(l)));
    return Value::list(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    Bound b(name, args, {"prefix", "start", "end"});
    Value p = b.get(0);
    Value sub = self;
    if (b.has(1) || b.has(2)) sub = py_slice(in, self, b.get(1), b.get(2), Value::none());
    const std::string& t = sub.as_str();
    ValueList cands = p.kind() == Kind::kTuple ? p.items() : ValueList{p};
    for (const auto& c : cands) {
      const std::string& x = sarg(c, name + " first arg must be str or a tuple of str, not ");
      if (name == "startswith" ? t.compare(0, x.size(), x) == 0 && t.size() >= x.size()
                               : t.size() >= x.size() && t.compare(t.size() - x.size(), x.size(), x) == 0)
        return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "lower" || name == "casefold") return str_like(in, self, py_lower(s));
  if (name == "upper") return str_like(in, self, py_upper(s));
  if (name == "title") return str_like(in, self, py_title(s));
  if (name == "capitalize") return str_like(in, self, py_capitalize(s));
  if (name == "swapcase") {
    std::string out;
    for (uint32_t c : utf8_decode(s)) {
      std::string one;
      utf8_append(one, c);
      std::string lo = py_lower(one);
      out += lo != one ? lo : py_upper(one);
    }
    return str_like(in, self, std::move(out));
  }
  if (name == "replace") {
    Bound b(name, args, {"old", "new", "count"});
    return str_like(in, self,
                    py_replace(s, sarg(b.get(0), "replace() argument 1 must be str, not "),
                               sarg(b.get(1), "replace() argument 2 must be str, not "), b.integer(2, -1)));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    Bound b(name, args, {"sub", "start", "end"});
    Value hay = (b.has(1) || b.has(2)) ? py_slice(in, self, b.get(1), b.get(2), Value::none()) : self;
    int64_t r = py_find(hay.as_str(), sarg(b.get(0), "must be str, not "), name[0] == 'r');
    if (r >= 0 && b.has(1) && !b.get(1).is_none()) {
      int64_t start = b.get(1).as_int(), n = static_cast<int64_t>(utf8_length(s));
      if (start < 0) start = std::max<int64_t>(0, start + n);
      r += std::min(start, n);
    }
    if (r < 0 && (name == "index" || name == "rindex")) fail("ValueError", "substring not found");
    return Value::integer(r);
  }
  if (name == "count") {
    Bound b(name, args, {"sub"});
    return Value::integer(py_count(s, sarg(b.get(0), "must be str, not ")));
  }
  if (name == "join") {
    Bound b(name, args, {"iterable"});
    std::string out;
    bool first = true;
    size_t idx = 0;
    for (const auto& item : iterate(b.get(0))) {
      if (!item.is_str())
        fail("TypeError",
             "sequence item " + std::to_string(idx) + ": expected str instance, " + type_name(item) + " found");
      ++idx;
      if (!first) out += s;
      first = false;
      out += item.as_str();
      in.check_size(out.size());
    }
    return str_like(in, self, std::move(out));
  }
  if (name == "format") return str_like(in, self, py_str_format(in, s, args));
  if (name == "isalnum") return Value::boolean(str_pred(s, is_alnum_cp));
  if (name == "isalpha") return Value::boolean(str_pred(s, is_alpha_cp));
  if (name == "isdigit" || name == "isnumeric" || name == "isdecimal") return Value::boolean(str_pred(s, is_digit_cp));
  if (name == "isspace") return Value::boolean(str_pred(s, is_space_cp));
  if (name == "islower" || name == "isupper") {
    bool any_cased = py_lower(s) != py_upper(s);
    return Value::boolean(any_cased && (name == "islower" ? py_lower(s) == s : py_upper(s) == s));
  }
  if (name == "istitle") return Value::boolean(!s.empty() && py_title(s) == s && py_lower(s) != py_upper(s));
  if (name == "removeprefix" || name == "removesuffix") {
    Bound b(name, args, {"affix"});
    const std::string& x = sarg(b.get(0), name + "() argument must be str, not ");
    if (name == "removeprefix" && s.compare(0, x.size(), x) == 0 && s.size() >= x.size())
      return str_like(in, self, s.substr(x.size()));
    if (name == "removesuffix" && !x.empty() && s.size() >= x.size() &&
        s.compare(s.size() - x.size(), x.size(), x) == 0)
      return str_like(in, self, s.substr(0, s.size() - x.size()));
    return self;
  }
  if (name == "partition" || name == "rpartition") {
    Bound b(name, args, {"sep"});
    const std::string& x = sarg(b.get(0), "must be str, not ");
    if (x.empty()) fail("ValueError", "empty separator");
    size_t q = name == "partition" ? s.find(x) : s.rfind(x);
    if (q == std::string::npos)
      return name == "partition" ? Value::tuple({self, Value::str(""), Value::str("")})
                                 : Value::tuple({Value::str(""), Value::str(""), self});
    return Value::tuple({Value::str(s.substr(0, q)), Value::str(x), Value::str(s.substr(q + x.size()))});
  }
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
    Bound b(name, args, {"width", "fillchar"});
    int64_t w = std::min<int64_t>(b.integer(0, 0), 100000), len = static_cast<int64_t>(utf8_length(s));
    if (len >= w) return self;
    std::string fill = name == "zfill" ? "0"
                       : b.has(1)      ? sarg(b.get(1), "The fill character must be a unicode character, not ")
                                       : " ";
    int64_t total = w - len;
    auto rep = [&](int64_t n) {
      std::string r;
      for (int64_t i = 0; i < n; ++i) r += fill;
      return r;
    };
    if (name == "ljust") return str_like(in, self, s + rep(total));
    if (name == "rjust") return str_like(in, self, rep(total) + s);
    if (name == "zfill") {
      if (!s.empty() && (s[0] == '-' || s[0] == '+'))
        return str_like(in, self, s.substr(0, 1) + rep(total) + s.substr(1));
      return str_like(in, self, rep(total) + s);
    }
    int64_t left = total / 2 + (total & w & 1);
    return str_like(in, self, rep(left) + s + rep(total - left));
  }
  if (name == "expandtabs") {
    Bound b(name, args, {"tabsize"});
    int64_t ts = std::clamp<int64_t>(b.integer(0, 8), 0, 1000), col = 0;
    std::string out;
    for (uint32_t c : utf8_decode(s)) {
      if (c == '\t') {
        int64_t n = ts ? ts - col % ts : 0;
        out.append(n, ' ');
        col += n;
      } else {
        utf8_append(out, c);
        col = (c == '\n' || c == '\r') ? 0 : col + 1;
      }
    }
    return str_like(in, self, std::move(out));
  }
  fail("AttributeError", "'str' object has no attribute " + py_str_repr(name));
}

// --- slicing ----------------------------------------------------------------------------

Value py_slice(Interp& in, const Value& obj, const Value& start, const Value& stop, const Value& step) {
  // Jinja2 compiles x[a:b] to a plain Python subscript, so errors propagate (unlike x[i]).
  if (obj.is_undefined()) fail_undefined(obj);
  bool is_range =
      obj.kind() == Kind::kList && obj.obj<ListObj>().view && std::string_view(obj.obj<ListObj>().view) == "range";
  bool is_seq = obj.is_str() || is_plain_list(obj) || is_range || obj.kind() == Kind::kTuple;
  if (obj.kind() == Kind::kDict) fail("TypeError", "unhashable type: 'slice'");
  if (!is_seq) fail("TypeError", "'" + type_name(obj) + "' object is not subscriptable");
  for (const Value* v : {&start, &stop, &step}) {
    if (v->is_undefined()) fail_undefined(*v);
    if (!v->is_none() && !v->is_int_like())
      fail("TypeError", "slice indices must be integers or None or have an __index__ method");
  }
  int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) fail("ValueError", "slice step cannot be zero");
  std::vector<uint32_t> cps;
  bool ascii = obj.is_str() && is_ascii(obj.as_str());
  if (obj.is_str() && !ascii) cps = utf8_decode(obj.as_str());
  int64_t n = obj.is_str() ? (ascii ? static_cast<int64_t>(obj.as_str().size()) : static_cast<int64_t>(cps.size()))
                           : static_cast<int64_t>(obj.items().size());
  auto norm = [&](const Value& v, int64_t def) {
    if (v.is_none()) return def;
    int64_t i = v.as_int();
    if (i < 0) {
      i += n;
      if (i < 0) i = st > 0 ? 0 : -1;
    } else if (i >= n) {
      i = st > 0 ? n : n - 1;
    }
    return i;
  };
  int64_t b = norm(start, st > 0 ? 0 : n - 1);
  int64_t e = norm(stop, st > 0 ? n : -1);
  std::vector<int64_t> idx;
  if (st > 0)
    for (int64_t i = b; i < e; i += st) idx.push_back(i);
  else
    for (int64_t i = b; i > e; i += st) idx.push_back(i);
  in.charge(idx.size());
  if (obj.is_str()) {
    std::string out;
    if (ascii && st == 1) {
      out = obj.as_str().substr(b, std::max<int64_t>(0, e - b));
    } else {
      for (int64_t i : idx) {
        if (ascii)
          out.push_back(obj.as_str()[i]);
        else
          utf8_append(out, cps[i]);
      }
    }
    return Value::str(std::move(out), obj.is_markup());
  }
  if (is_range) {  // CPython's compute_slice
    const auto& r = obj.obj<ListObj>();
    return make_range(r.range_start + b * r.range_step, r.range_start + e * r.range_step, r.range_step * st);
  }
  ValueList out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(obj.items()[i]);
  return Value::list(std::move(out), obj.kind());
}

// --- format spec (shared by % and str.format) -------------------------------------------

namespace {

struct Spec {
  uint32_t fill = ' ';
  char align = 0;  // '<' '>' '^' '='
  char sign = '-';
  bool alt = false, zero = false;
  int width = -1, precision = -1;
  char grouping = 0;
  char type = 0;
};

std::string pad(std::string body, const Spec& sp, char default_align) {
  int64_t len = static_cast<int64_t>(utf8_length(body));
  if (sp.width < 0 || len >= sp.width) return body;
  size_t n = static_cast<size_t>(sp.width - len);
  char align = sp.align ? sp.align : default_align;
  std::string fill;
  utf8_append(fill, sp.fill);
  auto rep = [&](size_t k) {
    std::string r;
    for (size_t i = 0; i < k; ++i) r += fill;
    return r;
  };
  if (align == '<') return body + rep(n);
  if (align == '^') return rep(n / 2) + body + rep(n - n / 2);
  if (align == '=' && !body.empty() && (body[0] == '-' || body[0] == '+' || body[0] == ' '))
    return body.substr(0, 1) + rep(n) + body.substr(1);
  return rep(n) + body;
}

std::string format_number(const Value& v, Spec sp) {
  char type = sp.type;
  bool is_float = v.kind() == Kind::kFloat || std::strchr("eEfFgG%", type ? type : 'd');
  if (type == 0 && v.kind() == Kind::kFloat) type = 'r';
  std::string body;
  char buf[512];
  if (!is_float && (type == 0 || type == 'd' || type == 'n' || type == 'x' || type == 'X' || type == 'o' ||
                    type == 'b' || type == 'c')) {
    int64_t i = v.as_int();
    if (type == 'c') {
      utf8_append(body, static_cast<uint32_t>(i));
      return body;
    }
    uint64_t mag = i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
    if (type == 'b') {
      do {
        body.insert(body.begin(), static_cast<char>('0' + (mag & 1)));
        mag >>= 1;
      } while (mag);
      if (sp.alt) body = "0b" + body;
    } else {
      std::snprintf(buf, sizeof(buf),
                    type == 'x'   ? "%llx"
                    : type == 'X' ? "%llX"
                    : type == 'o' ? "%llo"
                                  : "%llu",
                    static_cast<unsigned long long>(mag));
      body = buf;
      if (sp.alt && (type == 'x' || type == 'X' || type == 'o')) body = std::string("0") + type + body;
    }
    if (sp.grouping && type != 'x' && type != 'X' && type != 'o' && type != 'b') {
      std::string g;
      int k = 0;
      for (size_t j = body.size(); j-- > 0;) {
        g.insert(g.begin(), body[j]);
        if (++k % 3 == 0 && j > 0) g.insert(g.begin(), sp.grouping);
      }
      body = g;
    }
    if (i < 0)
      body = "-" + body;
    else if (sp.sign == '+')
      body = "+" + body;
    else if (sp.sign == ' ')
      body = " " + body;
  } else {
    double d = v.as_float();
    int prec = sp.precision < 0 ? 6 : std::min(sp.precision, 300);
    if (type == 'r') {
      body = py_float_repr(d);
    } else if (type == '%') {
      std::snprintf(buf, sizeof(buf), "%.*f%%", prec, d * 100);
      body = buf;
    } else {
      char t = type ? type : 'g';
      if (std::strchr("eEfFgG", t) == nullptr) t = 'g';
      std::string f = std::string("%") + (sp.alt ? "#" : "") + ".*" + t;
      std::snprintf(buf, sizeof(buf), f.c_str(), prec, d);
      body = buf;
    }
    if (sp.sign == '+' && d >= 0)
      body = "+" + body;
    else if (sp.sign == ' ' && d >= 0)
      body = " " + body;
  }
  if (sp.zero && !sp.align) {
    sp.fill = '0';
    sp.align = '=';
  }
  return pad(body, sp, '>');
}

Spec parse_spec(std::string_view s) {
  Spec sp;
  auto cps = utf8_decode(s);
  size_t i = 0;
  auto is_align = [](uint32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (cps.size() >= 2 && is_align(cps[1])) {
    sp.fill = cps[0];
    sp.align = static_cast<char>(cps[1]);
    i = 2;
  } else if (!cps.empty() && is_align(cps[0])) {
    sp.align = static_cast<char>(cps[0]);
    i = 1;
  }
  if (i < cps.size() && (cps[i] == '+' || cps[i] == '-' || cps[i] == ' ')) sp.sign = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '#') sp.alt = true, ++i;
  if (i < cps.size() && cps[i] == '0') sp.zero = true, ++i;
  while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
    sp.width = std::max(sp.width, 0) * 10 + static_cast<int>(cps[i++] - '0');
    if (sp.width > 100000) fail("ValueError", "format width too large");
  }
  if (i < cps.size() && (cps[i] == ',' || cps[i] == '_')) sp.grouping = static_cast<char>(cps[i++]);
  if (i < cps.size() && cps[i] == '.') {
    ++i;
    sp.precision = 0;
    while (i < cps.size() && cps[i] >= '0' && cps[i] <= '9') {
      sp.precision = sp.precision * 10 + static_cast<int>(cps[i++] - '0');
      if (sp.precision > 100000) fail("ValueError", "format precision too large");
    }
  }
  if (i < cps.size()) sp.type = static_cast<char>(cps[i++]);
  if (i < cps.size()) fail("ValueError", "Invalid format specifier");
  return sp;
}

std::string apply_spec(const Value& v, std::string_view spec_text) {
  if (spec_text.empty()) return to_str(v);  // format(v, '') == str(v)
  Spec sp = parse_spec(spec_text);
  if (v.is_number()) return format_number(v, sp);
  if (sp.type && sp.type != 's')
    fail("ValueError", std::string("Unknown format code '") + sp.type + "' for object of type '" + type_name(v) + "'");
  std::string s = to_str(v);
  if (sp.precision >= 0) {
    auto cps = utf8_decode(s);
    if (cps.size() > static_cast<size_t>(sp.precision)) s = utf8_encode(cps, 0, sp.precision);
  }
  return pad(s, sp, '<');
}

}  // namespace

std::string py_percent_format(Interp& in, std::string_view fmt, const Value& args) {
  ValueList pos;
  const DictObj* mapping = nullptr;
  if (args.kind() == Kind::kTuple)
    pos = args.items();
  else
    pos.push_back(args);
  if (args.kind() == Kind::kDict) mapping = &args.obj<DictObj>();
  // CPython skips the "not all arguments converted" check for any argument with
  // __getitem__ (PyMapping_Check): dicts, lists, ranges, Undefined.
  bool mapping_like = mapping || args.kind() == Kind::kList || args.is_undefined();
  size_t next = 0;
  bool used_mapping = false;
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (++i >= fmt.size()) fail("ValueError", "incomplete format");
    if (fmt[i] == '%') {
      out.push_back('%');
      continue;
    }
    const Value* arg = nullptr;
    if (fmt[i] == '(') {
      size_t close = fmt.find(')', i);
      if (close == std::string_view::npos) fail("ValueError", "incomplete format key");
      if (!mapping) {
        if (args.kind() == Kind::kList) fail("TypeError", "list indices must be integers or slices, not str");
        fail("TypeError", "format requires a mapping");
      }
      std::string key(fmt.substr(i + 1, close - i - 1));
      arg = mapping->find(std::string_view(key));
      if (!arg) fail("KeyError", py_str_repr(key));
      used_mapping = true;
      i = close + 1;
    }
    Spec sp;
    sp.align = '>';
    for (; i < fmt.size() && std::strchr("-+ #0", fmt[i]); ++i) {
      if (fmt[i] == '-')
        sp.align = '<';
      else if (fmt[i] == '+')
        sp.sign = '+';
      else if (fmt[i] == ' ')
        sp.sign = sp.sign == '+' ? '+' : ' ';
      else if (fmt[i] == '#')
        sp.alt = true;
      else
        sp.zero = true;
    }
    auto take = [&]() -> const Value& {
      if (next >= pos.size()) fail("TypeError", "not enough arguments for format string");
      return pos[next++];
    };
    if (i < fmt.size() && fmt[i] == '*') {
      sp.width = static_cast<int>(take().as_int());
      ++i;
    } else {
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') sp.width = std::max(sp.width, 0) * 10 + (fmt[i++] - '0');
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      sp.precision = 0;
      if (i < fmt.size() && fmt[i] == '*') {
        sp.precision = static_cast<int>(take().as_int());
        ++i;
      } else {
        while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') sp.precision = sp.precision * 10 + (fmt[i++] - '0');
      }
    }
    if (sp.width > 100000 || sp.precision > 100000) fail("ValueError", "format width too large");
    if (i >= fmt.size()) fail("ValueError", "incomplete format");
    char t = fmt[i];
    if (!arg) arg = &take();
    if (sp.zero && sp.align == '>') {
      sp.fill = '0';
      sp.align = '=';
    }
    if (t == 's' || t == 'r' || t == 'a') {
      std::string s = t == 's' ? to_str(*arg) : repr(*arg);
      if (sp.precision >= 0) {
        auto cps = utf8_decode(s);
        if (cps.size() > static_cast<size_t>(sp.precision)) s = utf8_encode(cps, 0, sp.precision);
      }
      if (sp.align == '=') sp.fill = ' ', sp.align = '>';
      out += pad(s, sp, '>');
    } else if (std::strchr("diouxXeEfFgGc", t)) {
      if (t == 'c' && arg->is_str() && utf8_length(arg->as_str()) == 1) {
        Spec cs = sp;
        if (cs.align == '=') cs.fill = ' ', cs.align = '>';
        out += pad(arg->as_str(), cs, '>');
        continue;
      }
      if (!arg->is_number()) {
        if (arg->is_undefined()) fail_undefined(*arg);
        if (std::strchr("diu", t))
          fail("TypeError", std::string("%") + t + " format: a real number is required, not " + type_name(*arg));
        if (std::strchr("xXoc", t))
          fail("TypeError", std::string("%") + t + " format: an integer is required, not " + type_name(*arg));
        fail("TypeError", "must be real number, not " + type_name(*arg));
      }
      Value num = *arg;
      if ((t == 'd' || t == 'i' || t == 'u') && num.kind() == Kind::kFloat)
        num = Value::integer(static_cast<int64_t>(num.as_float()));
      sp.type = (t == 'i' || t == 'u') ? 'd' : t;
      out += format_number(num, sp);
    } else {
      fail("ValueError", std::string("unsupported format character '") + t + "'");
    }
    in.check_size(out.size());
  }
  if (!used_mapping && next < pos.size() && !mapping_like)
    fail("TypeError", "not all arguments converted during string formatting");
  return out;
}

std::string py_str_format(Interp& in, std::string_view fmt, Args& args) {
  std::string out;
  size_t auto_idx = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        ++i;
        continue;
      }
      fail("ValueError", "Single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      ++i;
      continue;
    }
    size_t close = fmt.find('}', i);
    if (close == std::string_view::npos) fail("ValueError", "Single '{' encountered in format string");
    std::string_view field = fmt.substr(i + 1, close - i - 1);
    i = close;
    std::string_view spec, conv;
    size_t colon = field.find(':');
    if (colon != std::string_view::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    size_t bang = field.find('!');
    if (bang != std::string_view::npos) {
      conv = field.substr(bang + 1);
      field = field.substr(0, bang);
    }
    size_t name_end = field.find_first_of(".[");
    std::string_view head = field.substr(0, name_end);
    Value v;
    if (head.empty()) {
      if (auto_idx >= args.pos.size())
        fail("IndexError", "Replacement index " + std::to_string(auto_idx) + " out of range");
      v = args.pos[auto_idx++];
    } else if (std::all_of(head.begin(), head.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      size_t k = std::stoul(std::string(head));
      if (k >= args.pos.size()) fail("IndexError", "Replacement index " + std::string(head) + " out of range");
      v = args.pos[k];
    } else {
      bool found = false;
      for (auto& [name, val] : args.kw)
        if (name == head) v = val, found = true;
      if (!found) fail("KeyError", py_str_repr(head));
    }
    // accessors: .attr and [key]
    size_t p = name_end;
    while (p != std::string_view::npos && p < field.size()) {
      if (field[p] == '.') {
        size_t e = field.find_first_of(".[", p + 1);
        std::string attr(field.substr(p + 1, e == std::string_view::npos ? std::string_view::npos : e - p - 1));
        if (attr.rfind("_", 0) == 0) fail("SecurityError", "access to attribute " + py_str_repr(attr) + " is unsafe.");
        v = in.getattr(v, attr);
        p = e;
      } else {
        size_t e = field.find(']', p);
        if (e == std::string_view::npos) fail("ValueError", "Missing ']' in format string");
        std::string key(field.substr(p + 1, e - p - 1));
        bool digits =
            !key.empty() && std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
        v = in.getitem(v, digits ? Value::integer(std::stoll(key)) : Value::str(key));
        p = e + 1;
      }
    }
    if (conv == "r" || conv == "a")
      v = Value::str(repr(v));
    else if (conv == "s")
      v = Value::str(to_str(v));
    else if (!conv.empty())
      fail("ValueError", "Unknown conversion specifier " + std::string(conv));
    out += apply_spec(v, spec);
    in.check_size(out.size());
  }
  return out;
}

// --- strftime ---------------------------------------------------------------------------

std::string strftime_py(std::string_view fmt, const std::string& iso_now) {
  std::tm tm{};
  if (!iso_now.empty()) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    int n = std::sscanf(iso_now.c_str(), "%d-%d-%d%*[T ]%d:%d:%d", &y, &mo, &d, &h, &mi, &s);
    if (n < 3) fail("ValueError", "bad strftime_now time '" + iso_now + "', expected YYYY-MM-DDTHH:MM:SS");
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);  // normalizes and fills weekday / day of year
    gmtime_r(&t, &tm);
  } else {
    time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  // datetime.strftime handles %f, %z and %Z itself (naive datetime: %z and %Z are empty).
  std::string f;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] == '%' && i + 1 < fmt.size()) {
      char c = fmt[i + 1];
      if (c == 'f') {
        f += "000000";
        ++i;
        continue;
      }
      if (c == 'z' || c == 'Z') {
        ++i;
        continue;
      }
      f += fmt.substr(i, 2);
      ++i;
      continue;
    }
    f.push_back(fmt[i]);
  }
  if (f.empty()) return "";
  f.push_back('\x01');  // sentinel: strftime's 0 return is ambiguous for empty output
  std::vector<char> buf(256 + f.size() * 4);
  for (int attempt = 0; attempt < 6; ++attempt) {
    size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
    if (n > 0) return std::string(buf.data(), n - 1);
    buf.resize(buf.size() * 4);
  }
  fail("ValueError", "strftime output too large");
}

}  // namespace tachyon::chat::detail
