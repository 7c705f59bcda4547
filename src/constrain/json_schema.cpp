// JSON Schema -> GBNF. One Converter per call: it walks the schema, emits one rule per
// object / array / union / referenced definition, and appends the shared primitive rules
// (ws, string, number, ...) it used. See json_schema.h for the supported subset.
#include "constrain/json_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "constrain/grammar.h"
#include "constrain/regex.h"

namespace tachyon::constrain {
namespace {

using ojson = nlohmann::ordered_json;

constexpr int kWsMax = 20;          // bounded whitespace run, see the header
constexpr int kMaxUnboundedDigits = 16;
constexpr int64_t kMaxBound = 10000;  // the grammar parser's repetition limit
constexpr int kMaxDerefDepth = 32;

const std::set<std::string>& annotation_keywords() {
  static const std::set<std::string> k = {"title",      "description", "default",          "examples",
                                          "$schema",    "$id",         "$comment",         "deprecated",
                                          "readOnly",   "writeOnly",   "contentMediaType", "contentEncoding"};
  return k;
}

const std::set<std::string>& handled_keywords() {
  static const std::set<std::string> k = {
      "type",     "enum",     "const",     "properties", "required",  "additionalProperties",
      "items",    "prefixItems", "minItems", "maxItems", "minLength", "maxLength",
      "pattern",  "format",   "minimum",   "maximum",    "exclusiveMinimum", "exclusiveMaximum",
      "anyOf",    "oneOf",    "allOf",     "$ref",       "$defs",     "definitions"};
  return k;
}

const char* const kTypeNames[] = {"null", "boolean", "object", "array", "string", "number", "integer"};

// JSON pointer segment escaping (RFC 6901).
std::string ptr_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '~') o += "~0";
    else if (c == '/') o += "~1";
    else o += c;
  }
  return o;
}

std::string show_ptr(const std::string& p) { return p.empty() ? "/" : p; }

// A rule-name fragment from arbitrary text: [a-zA-Z0-9-], at most 32 chars.
std::string sanitize(const std::string& s) {
  std::string o;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (ok) o += c;
    else if (!o.empty() && o.back() != '-') o += '-';
    if (o.size() >= 32) break;
  }
  while (!o.empty() && o.back() == '-') o.pop_back();
  return o.empty() ? "r" : o;
}

// Joins the non-empty parts with single spaces.
std::string cat(std::initializer_list<std::string> parts) {
  std::string o;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!o.empty()) o += ' ';
    o += p;
  }
  return o;
}

std::string alt_group(const std::vector<std::string>& alts) {
  if (alts.size() == 1) return alts[0];
  std::string o = "(";
  for (size_t i = 0; i < alts.size(); ++i) o += (i ? " | " : "") + alts[i];
  return o + ")";
}

std::string digits_class(char lo, char hi) {
  if (lo == hi) return std::string("\"") + lo + "\"";
  if (lo == '0' && hi == '9') return "[0-9]";
  return std::string("[") + lo + "-" + hi + "]";
}

std::string rep(const std::string& atom, int n) {
  if (n <= 0) return "";
  if (n == 1) return atom;
  return atom + "{" + std::to_string(n) + "}";
}

// Decimal strings of the same length k, all in [lo, hi] (lo <= hi; leading zeros allowed:
// the caller picks lo/hi so that the first digit is right).
std::string same_length_range(const std::string& lo, const std::string& hi) {
  const size_t k = lo.size();
  if (k == 0) return "";
  size_t i = 0;
  while (i < k && lo[i] == hi[i]) ++i;
  const std::string prefix = i ? "\"" + lo.substr(0, i) + "\"" : "";
  if (i == k) return prefix;
  const std::string rl = lo.substr(i + 1), rh = hi.substr(i + 1);
  const int r = int(k - i - 1);
  const bool rl_zero = rl.find_first_not_of('0') == std::string::npos;
  const bool rh_nine = rh.find_first_not_of('9') == std::string::npos;
  std::vector<std::string> alts;
  // First differing digit: lo[i] (then >= rl), strictly between (anything), hi[i] (then <= rh).
  char mid_lo = lo[i] + 1, mid_hi = hi[i] - 1;
  if (rl_zero) mid_lo = lo[i];
  else alts.push_back(cat({std::string("\"") + lo[i] + "\"", same_length_range(rl, std::string(r, '9'))}));
  if (rh_nine) mid_hi = hi[i];
  if (mid_lo <= mid_hi) alts.push_back(cat({digits_class(mid_lo, mid_hi), rep("[0-9]", r)}));
  if (!rh_nine) alts.push_back(cat({std::string("\"") + hi[i] + "\"", same_length_range(std::string(r, '0'), rh)}));
  return cat({prefix, alt_group(alts)});
}

// Decimal integers without leading zeros in [a, b]; b == nullopt: unbounded (at most
// max(16, digits(a)) digits).
std::string magnitude_range(uint64_t a, std::optional<uint64_t> b) {
  const std::string sa = std::to_string(a);
  const int la = int(sa.size());
  const int lb = b ? int(std::to_string(*b).size()) : std::max(kMaxUnboundedDigits, la);
  std::vector<std::string> alts;
  auto pow10 = [](int e) {
    uint64_t p = 1;
    for (int i = 0; i < e; ++i) p *= 10;
    return p;
  };
  int full_from = -1, full_to = -1;  // lengths whose every number is in range
  for (int len = la; len <= lb; ++len) {
    const uint64_t len_lo = len == 1 ? 0 : pow10(len - 1);
    const uint64_t len_hi = len >= 20 ? std::numeric_limits<uint64_t>::max() : pow10(len) - 1;
    const uint64_t lo = std::max(a, len_lo);
    const uint64_t hi = b ? std::min(*b, len_hi) : len_hi;
    if (lo > hi) continue;
    if (lo == len_lo && hi == len_hi && len > 1) {
      if (full_from < 0) full_from = len;
      full_to = len;
      continue;
    }
    std::string slo = std::to_string(lo), shi = std::to_string(hi);
    alts.push_back(same_length_range(slo, shi));
  }
  if (full_from > 0) {
    const int r0 = full_from - 1, r1 = full_to - 1;
    std::string tail = r0 == r1 ? rep("[0-9]", r0) : "[0-9]{" + std::to_string(r0) + "," + std::to_string(r1) + "}";
    alts.push_back(cat({"[1-9]", tail}));
  }
  return alt_group(alts);
}

struct Bound {
  double v;
  bool exclusive;
};

class Converter {
 public:
  Converter(const ojson& root, const SchemaOptions& opt) : root_(root), opt_(opt) {
    ws_ = opt.compact ? "" : "ws";
    for (const char* p : {"ws", "value", "object", "array", "member", "string", "char", "number", "integer",
                          "boolean", "null", "fmt-date", "fmt-year", "fmt-leap-year", "fmt-month-day", "fmt-time", "fmt-date-time", "fmt-uuid", "fmt-email",
                          "fmt-label", "fmt-ipv4", "fmt-octet", "fmt-hostname", "fmt-uri", "root"})
      taken_.insert(p);
  }

  bool run(SchemaGrammar* out, std::string* error) {
    std::string expr;
    // The root is the target of "#", so recursion to the root reuses the rule "root".
    ref_rules_["#"] = "root";
    rules_.push_back({"root", ""});
    if (!convert(root_, "", "root", &expr, /*as_body=*/true)) {
      *error = err_;
      return false;
    }
    rules_[0].second = expr;
    std::string g;
    for (const auto& [name, body] : rules_) g += name + " ::= " + body + "\n";
    for (const auto& name : prim_order_) g += name + " ::= " + prim_body(name) + "\n";
    // A schema whose every value would be infinite (a required property that refers back
    // to its own object) compiles to a grammar without a finite sentence: refuse it here,
    // with the grammar compiler's reason, rather than hand out a grammar nothing can meet.
    std::string why;
    if (!parse_gbnf(g, &why)) {
      *error = "the schema admits no finite JSON value (" + why + ")";
      return false;
    }
    out->gbnf = std::move(g);
    out->warnings = std::move(warnings_);
    return true;
  }

 private:
  // ---- errors and warnings ----
  bool fail(std::string msg) {
    if (err_.empty()) err_ = std::move(msg);
    return false;
  }
  bool invalid(const std::string& what, const std::string& ptr) {
    return fail("invalid schema: " + what + " at " + show_ptr(ptr));
  }
  // An unsupported keyword: a warning, or with strict an error.
  bool unsupported(const std::string& kw, const std::string& ptr, const std::string& why = "") {
    if (opt_.strict) return fail("unsupported keyword '" + kw + "' at " + show_ptr(ptr) + (why.empty() ? "" : ": " + why));
    warn("'" + kw + "' at " + show_ptr(ptr) + " is not enforced" + (why.empty() ? "" : ": " + why));
    return true;
  }
  void warn(std::string w) {
    if (std::find(warnings_.begin(), warnings_.end(), w) == warnings_.end()) warnings_.push_back(std::move(w));
  }

  // ---- rules ----
  std::string unique_name(const std::string& hint) {
    std::string base = sanitize(hint);
    std::string n = base;
    for (int i = 2; taken_.count(n); ++i) n = base + "-" + std::to_string(i);
    taken_.insert(n);
    return n;
  }
  std::string add_rule(const std::string& hint, const std::string& body) {
    const std::string n = unique_name(hint);
    rules_.push_back({n, body});
    return n;
  }
  // Marks a primitive rule as used; returns its name.
  std::string prim(const std::string& name) {
    if (!prim_used_.count(name)) {
      prim_used_.insert(name);
      prim_order_.push_back(name);
      for (const char* dep : prim_deps(name)) prim(dep);
    }
    return name;
  }
  std::vector<const char*> prim_deps(const std::string& n) const {
    std::vector<const char*> d;
    if (!opt_.compact && (n == "value" || n == "object" || n == "array" || n == "member")) d.push_back("ws");
    if (n == "value") d = {"ws", "object", "array", "string", "number"};
    if (n == "object") d.push_back("member");
    if (n == "member") d.push_back("string"), d.push_back("value");
    if (n == "array") d.push_back("value");
    if (n == "string") d.push_back("char");
    if (n == "fmt-date-time") d = {"fmt-date", "fmt-time"};
    if (n == "fmt-date") d = {"fmt-year", "fmt-leap-year", "fmt-month-day"};
    if (n == "fmt-email" || n == "fmt-hostname") d = {"fmt-label"};
    if (n == "fmt-ipv4") d = {"fmt-octet"};
    if (opt_.compact) d.erase(std::remove(d.begin(), d.end(), std::string_view("ws")), d.end());
    return d;
  }
  std::string prim_body(const std::string& n) const {
    const std::string& W = ws_;
    const std::string sep = cat({W, "\",\"", W});
    if (n == "ws") return "[ \\t\\n\\r]{0," + std::to_string(kWsMax) + "}";
    if (n == "value") return "object | array | string | number | \"true\" | \"false\" | \"null\"";
    if (n == "object") return cat({"\"{\"", W, "(member (" + sep + " member)*", W, ")? \"}\""});
    if (n == "member") return cat({"string", W, "\":\"", W, "value"});
    if (n == "array") return cat({"\"[\"", W, "(value (" + sep + " value)*", W, ")? \"]\""});
    if (n == "string") return "\"\\\"\" char* \"\\\"\"";
    if (n == "char") return "[^\\x00-\\x1F\\x22\\x5C] | \"\\\\\" ([\\x22/\\x5Cbfnrt] | \"u\" [0-9A-Fa-f]{4})";
    if (n == "number")
      return "\"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]{1,16})? ([eE] [+\\x2D]? [0-9]{1,3})?";
    if (n == "integer") return "\"0\" | \"-\"? [1-9] [0-9]{0,15}";
    if (n == "boolean") return "\"true\" | \"false\"";
    if (n == "null") return "\"null\"";
    // Exact calendar dates (years 0001-9999, as RFC 3339 validators accept them): each month's
    // days, and February 29th only in leap years (the year comes first, so the grammar can tell).
    if (n == "fmt-date") return "fmt-year \"-\" fmt-month-day | fmt-leap-year \"-02-29\"";
    if (n == "fmt-year")
      return "[1-9] [0-9] [0-9] [0-9] | \"0\" [1-9] [0-9] [0-9] | \"00\" [1-9] [0-9] | \"000\" [1-9]";
    if (n == "fmt-leap-year")
      return "[0-9] [0-9] (\"0\" [48] | [2468] [048] | [13579] [26]) | (\"0\" [48] | [2468] [048] | [13579] [26]) "
             "\"00\"";
    if (n == "fmt-month-day")
      return "(\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01]) | "
             "(\"0\" [469] | \"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\") | "
             "\"02-\" (\"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8])";
    if (n == "fmt-time")
      return "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" ([0-5] [0-9] | \"60\") (\".\" [0-9]{1,9})? "
             "([Zz] | [+\\x2D] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])";
    if (n == "fmt-date-time") return "fmt-date [Tt] fmt-time";
    if (n == "fmt-uuid")
      return "[0-9A-Fa-f]{8} \"-\" [0-9A-Fa-f]{4} \"-\" [0-9A-Fa-f]{4} \"-\" [0-9A-Fa-f]{4} \"-\" [0-9A-Fa-f]{12}";
    if (n == "fmt-label") return "[0-9A-Za-z] ([\\x2D0-9A-Za-z]{0,61} [0-9A-Za-z])?";
    if (n == "fmt-email") return "[%+\\x2D.0-9A-Z_a-z]{1,64} \"@\" fmt-label (\".\" fmt-label){1,8}";
    if (n == "fmt-hostname") return "fmt-label (\".\" fmt-label){0,16}";
    if (n == "fmt-octet") return "\"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9] [0-9] | [0-9]";
    if (n == "fmt-ipv4") return "fmt-octet \".\" fmt-octet \".\" fmt-octet \".\" fmt-octet";
    if (n == "fmt-uri")
      return "[A-Za-z] [+\\x2D.0-9A-Za-z]{0,31} \":\" [!#$%&'()*+,\\x2D./0-9:;=?@A-Z\\x5B\\x5D_a-z~]*";
    return "\"\"";
  }
  std::string sep() { return cat({ws(), "\",\"", ws()}); }
  std::string colon() { return cat({ws(), "\":\"", ws()}); }
  // The whitespace rule (registered on use), or nothing in compact mode.
  std::string ws() { return opt_.compact ? "" : prim("ws"); }

  // ---- keyword readers (validate and report invalid schemas) ----
  bool get_count(const ojson& s, const char* kw, const std::string& ptr, std::optional<int64_t>* v) {
    auto it = s.find(kw);
    if (it == s.end()) return true;
    if (it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0)) {
      *v = it->is_number_unsigned() ? int64_t(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX)) : it->get<int64_t>();
      return true;
    }
    if (it->is_number_float() && it->get<double>() >= 0 && std::floor(it->get<double>()) == it->get<double>()) {
      *v = int64_t(std::min(it->get<double>(), 9.2e18));
      return true;
    }
    return invalid("'" + std::string(kw) + "' must be a non-negative integer", ptr);
  }
  bool get_number(const ojson& s, const char* kw, const std::string& ptr, std::optional<double>* v) {
    auto it = s.find(kw);
    if (it == s.end()) return true;
    if (it->is_boolean()) return invalid("'" + std::string(kw) + "' must be a number (draft-04 boolean form is not supported)", ptr);
    if (!it->is_number()) return invalid("'" + std::string(kw) + "' must be a number", ptr);
    *v = it->get<double>();
    return true;
  }
  bool get_string(const ojson& s, const char* kw, const std::string& ptr, std::optional<std::string>* v) {
    auto it = s.find(kw);
    if (it == s.end()) return true;
    if (!it->is_string()) return invalid("'" + std::string(kw) + "' must be a string", ptr);
    *v = it->get<std::string>();
    return true;
  }

  // ---- $ref ----
  bool resolve(const std::string& ref, const std::string& ptr, const ojson** target, std::string* target_ptr) {
    if (ref.empty() || ref[0] != '#')
      return fail("unsupported keyword '$ref' at " + show_ptr(ptr) + ": only local references ('#...') are supported, got '" + ref + "'");
    std::string p = ref.substr(1);
    if (!p.empty() && p[0] != '/')
      return fail("unsupported keyword '$ref' at " + show_ptr(ptr) + ": anchors are not supported, got '" + ref + "'");
    const ojson* cur = &root_;
    size_t i = 1;
    while (i <= p.size() && !p.empty()) {
      size_t j = p.find('/', i);
      if (j == std::string::npos) j = p.size();
      std::string seg;
      for (size_t k = i; k < j; ++k) {  // RFC 6901 unescape + the %XX of URI fragments
        if (p[k] == '~' && k + 1 < j) seg += p[k + 1] == '1' ? '/' : '~', ++k;
        else if (p[k] == '%' && k + 2 < j + 0 + 1 && std::isxdigit(uint8_t(p[k + 1])) && std::isxdigit(uint8_t(p[k + 2])))
          seg += char(std::stoi(p.substr(k + 1, 2), nullptr, 16)), k += 2;
        else seg += p[k];
      }
      if (cur->is_object() && cur->contains(seg)) {
        cur = &(*cur)[seg];
      } else if (cur->is_array() && !seg.empty() && seg.find_first_not_of("0123456789") == std::string::npos &&
                 std::stoull(seg) < cur->size()) {
        cur = &(*cur)[std::stoull(seg)];
      } else {
        return fail("invalid schema: '$ref' target '" + ref + "' not found at " + show_ptr(ptr));
      }
      i = j + 1;
    }
    *target = cur;
    *target_ptr = p;
    return true;
  }

  // The rule for a referenced schema (created once; recursion refers to it by name).
  bool ref_rule(const std::string& ref, const std::string& ptr, std::string* expr) {
    const ojson* t;
    std::string tptr;
    if (!resolve(ref, ptr, &t, &tptr)) return false;
    const std::string key = "#" + tptr;
    if (auto it = ref_rules_.find(key); it != ref_rules_.end()) {
      *expr = it->second;
      return true;
    }
    const size_t slash = tptr.rfind('/');
    const std::string name = unique_name(slash == std::string::npos ? "ref" : tptr.substr(slash + 1));
    ref_rules_[key] = name;
    const size_t idx = rules_.size();
    rules_.push_back({name, ""});
    std::string body;
    if (!convert(*t, tptr, name, &body, /*as_body=*/true)) return false;
    rules_[idx].second = body;
    *expr = name;
    return true;
  }

  // Follows top-level $refs (for merging), at most kMaxDerefDepth deep.
  bool deref(const ojson& s, const std::string& ptr, ojson* out, std::string* out_ptr) {
    const ojson* cur = &s;
    std::string cur_ptr = ptr;
    ojson merged_siblings = ojson::object();
    for (int depth = 0; cur->is_object() && cur->contains("$ref"); ++depth) {
      if (depth == kMaxDerefDepth) return fail("unsupported keyword '$ref' at " + show_ptr(ptr) + ": reference chain too deep or cyclic");
      if (!(*cur)["$ref"].is_string()) return invalid("'$ref' must be a string", cur_ptr);
      for (auto it = cur->begin(); it != cur->end(); ++it)
        if (it.key() != "$ref" && !merged_siblings.contains(it.key())) merged_siblings[it.key()] = it.value();
      const ojson* t;
      std::string tptr;
      if (!resolve((*cur)["$ref"].get<std::string>(), cur_ptr, &t, &tptr)) return false;
      cur = t;
      cur_ptr = tptr;
    }
    if (merged_siblings.empty()) {
      *out = *cur;
    } else {
      *out = ojson::object();
      if (!merge(&merged_siblings, *cur, ptr)) return false;
      *out = std::move(merged_siblings);
    }
    *out_ptr = cur_ptr;
    return true;
  }

  // ---- allOf merging: *a := a ∧ b (as far as the keywords allow) ----
  static std::set<std::string> type_set(const ojson& t) {
    std::set<std::string> s;
    if (t.is_string()) s.insert(t.get<std::string>());
    else if (t.is_array())
      for (const auto& x : t)
        if (x.is_string()) s.insert(x.get<std::string>());
    return s;
  }

  bool merge(ojson* a, const ojson& b_in, const std::string& ptr) {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return fail("unsupported schema: nesting too deep (or recursion through allOf/anyOf) at " + show_ptr(ptr));
    if (b_in.is_boolean()) {
      if (!b_in.get<bool>()) return fail("unsatisfiable schema: allOf contains false at " + show_ptr(ptr));
      return true;
    }
    if (!b_in.is_object()) return invalid("a schema must be an object or a boolean", ptr);
    ojson b;
    std::string bptr;
    if (!deref(b_in, ptr, &b, &bptr)) return false;
    if (b.contains("allOf")) {  // flatten nested allOf first
      ojson flat = b;
      flat.erase("allOf");
      if (!b["allOf"].is_array()) return invalid("'allOf' must be a non-empty array", ptr);
      for (const auto& x : b["allOf"])
        if (!merge(&flat, x, ptr)) return false;
      b = std::move(flat);
    }
    // additionalProperties of one side applies to the other side's properties that it does
    // not declare itself (false: they are forbidden; a schema: they must also match it).
    auto apply_ap = [](const ojson& ap, ojson& prop_schema) {
      if (ap.is_boolean()) {
        if (!ap.get<bool>()) prop_schema = false;
      } else if (ap.is_object()) {
        prop_schema = ojson{{"allOf", ojson::array({prop_schema, ap})}};
      }
    };
    const bool a_props = a->contains("properties") && (*a)["properties"].is_object();
    const bool b_props = b.contains("properties") && b["properties"].is_object();
    if (b_props && a->contains("additionalProperties"))
      for (auto p = b["properties"].begin(); p != b["properties"].end(); ++p)
        if (!a_props || !(*a)["properties"].contains(p.key())) apply_ap((*a)["additionalProperties"], p.value());
    if (a_props && b.contains("additionalProperties"))
      for (auto p = (*a)["properties"].begin(); p != (*a)["properties"].end(); ++p)
        if (!b_props || !b["properties"].contains(p.key())) apply_ap(b["additionalProperties"], p.value());
    for (auto it = b.begin(); it != b.end(); ++it) {
      const std::string& k = it.key();
      const ojson& v = it.value();
      if (annotation_keywords().count(k)) continue;
      if (!a->contains(k)) {
        (*a)[k] = v;
        continue;
      }
      ojson& av = (*a)[k];
      if (k == "type") {
        std::set<std::string> x = type_set(av), y = type_set(v), r;
        for (const auto& t : x) {
          if (y.count(t)) r.insert(t);
          else if (t == "integer" && y.count("number")) r.insert("integer");
        }
        if (x.count("number") && y.count("integer")) r.insert("integer");
        if (r.empty()) return fail("unsatisfiable schema: allOf types do not intersect at " + show_ptr(ptr));
        ojson arr = ojson::array();
        for (const auto& t : r) arr.push_back(t);
        av = arr.size() == 1 ? arr[0] : arr;
      } else if (k == "properties") {
        if (!av.is_object() || !v.is_object()) return invalid("'properties' must be an object", ptr);
        for (auto p = v.begin(); p != v.end(); ++p) {
          if (av.contains(p.key())) av[p.key()] = ojson{{"allOf", ojson::array({av[p.key()], p.value()})}};
          else av[p.key()] = p.value();
        }
      } else if (k == "required") {
        if (!av.is_array() || !v.is_array()) return invalid("'required' must be an array of strings", ptr);
        for (const auto& r : v)
          if (std::find(av.begin(), av.end(), r) == av.end()) av.push_back(r);
      } else if (k == "additionalProperties" || k == "items") {
        if (av.is_boolean() && !av.get<bool>()) continue;
        if (v.is_boolean() && !v.get<bool>()) av = false;
        else if (av.is_boolean()) av = v;
        else if (!(v.is_boolean())) av = ojson{{"allOf", ojson::array({av, v})}};
      } else if (k == "prefixItems") {
        if (!av.is_array() || !v.is_array()) return invalid("'prefixItems' must be an array", ptr);
        for (size_t i = 0; i < v.size(); ++i) {
          if (i < av.size()) av[i] = ojson{{"allOf", ojson::array({av[i], v[i]})}};
          else av.push_back(v[i]);
        }
      } else if (k == "minimum" || k == "exclusiveMinimum" || k == "minLength" || k == "minItems") {
        if (av.is_number() && v.is_number() && v.get<double>() > av.get<double>()) av = v;
      } else if (k == "maximum" || k == "exclusiveMaximum" || k == "maxLength" || k == "maxItems") {
        if (av.is_number() && v.is_number() && v.get<double>() < av.get<double>()) av = v;
      } else if (k == "enum") {
        if (!av.is_array() || !v.is_array()) return invalid("'enum' must be an array", ptr);
        ojson r = ojson::array();
        for (const auto& x : av)
          if (std::find(v.begin(), v.end(), x) != v.end()) r.push_back(x);
        av = r;
      } else if (k == "const") {
        if (av != v) return fail("unsatisfiable schema: allOf has different 'const' values at " + show_ptr(ptr));
      } else if (av != v) {
        if (!unsupported(k, ptr, "only the first of several allOf branches' '" + k + "' is enforced")) return false;
      }
    }
    return true;
  }

  // ---- conversion ----
  // *expr: a GBNF expression for the schema at `ptr`. With as_body, *expr may be a top-level
  // alternation (it becomes a rule body); otherwise it is a rule name or a single group/term.
  bool convert(const ojson& s, const std::string& ptr, const std::string& hint, std::string* expr, bool as_body = false) {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return fail("unsupported schema: nesting too deep (or recursion through allOf/anyOf) at " + show_ptr(ptr));
    if (s.is_boolean()) {
      if (!s.get<bool>()) return fail("unsatisfiable schema: false at " + show_ptr(ptr));
      *expr = prim("value");
      return true;
    }
    if (!s.is_object()) return invalid("a schema must be an object or a boolean", ptr);

    bool has_ref = false, has_allof = false, has_anyof = false, has_oneof = false, any_constraint = false;
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      if (annotation_keywords().count(k) || k == "$defs" || k == "definitions") continue;
      if (k == "$ref") has_ref = true;
      else if (k == "allOf") has_allof = true;
      else if (k == "anyOf") has_anyof = true;
      else if (k == "oneOf") has_oneof = true;
      else any_constraint = true;
    }
    if (has_ref || has_allof) {
      if (has_ref && !has_allof && !has_anyof && !has_oneof && !any_constraint) {
        if (!s["$ref"].is_string()) return invalid("'$ref' must be a string", ptr);
        return ref_rule(s["$ref"].get<std::string>(), ptr, expr);
      }
      // $ref with siblings, or allOf: merge everything into one schema.
      ojson merged = ojson::object();
      ojson rest = s;
      rest.erase("allOf");
      for (const char* k : {"$defs", "definitions"}) rest.erase(k);
      if (!merge(&merged, rest, ptr)) return false;
      if (has_allof) {
        if (!s["allOf"].is_array() || s["allOf"].empty()) return invalid("'allOf' must be a non-empty array", ptr);
        for (size_t i = 0; i < s["allOf"].size(); ++i)
          if (!merge(&merged, s["allOf"][i], ptr + "/allOf/" + std::to_string(i))) return false;
      }
      return convert(merged, ptr, hint, expr, as_body);
    }
    if (has_anyof || has_oneof) return convert_union(s, ptr, hint, expr, as_body);

    // Keywords: warn about (or reject) what is not handled.
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      if (annotation_keywords().count(k) || handled_keywords().count(k)) continue;
      if (!unsupported(k, ptr)) return false;
    }

    std::set<std::string> types;
    if (auto t = s.find("type"); t != s.end()) {
      if (!t->is_string() && !t->is_array()) return invalid("'type' must be a string or an array of strings", ptr);
      for (const auto& x : t->is_string() ? ojson::array({*t}) : *t) {
        if (!x.is_string() || std::find(std::begin(kTypeNames), std::end(kTypeNames), x.get<std::string>()) == std::end(kTypeNames))
          return invalid("unknown type " + x.dump(), ptr);
        types.insert(x.get<std::string>());
      }
      if (types.empty()) return invalid("'type' must not be an empty array", ptr);
    }
    if (s.contains("enum") || s.contains("const")) return convert_enum(s, ptr, types, expr);
    if (!s.contains("type")) types = infer_types(s);
    if (types.count("number")) types.erase("integer");

    std::vector<std::string> alts;
    for (const char* t : kTypeNames) {
      if (!types.count(t)) continue;
      std::string e;
      const std::string tn = t;
      bool ok = true;
      if (tn == "null") e = prim("null");
      else if (tn == "boolean") e = prim("boolean");
      else if (tn == "object") ok = convert_object(s, ptr, hint, &e, as_body && types.size() == 1);
      else if (tn == "array") ok = convert_array(s, ptr, hint, &e, as_body && types.size() == 1);
      else if (tn == "string") ok = convert_string(s, ptr, hint, &e);
      else if (tn == "integer") ok = convert_integer(s, ptr, &e);
      else if (tn == "number") ok = convert_number(s, ptr, &e);
      if (!ok) return false;
      alts.push_back(e);
    }
    return finish(alts, hint, expr, as_body);
  }

  // Several alternatives -> one expression (a rule when not a body).
  bool finish(const std::vector<std::string>& alts, const std::string& hint, std::string* expr, bool as_body) {
    if (alts.size() == 1) {
      *expr = alts[0];
      return true;
    }
    std::string body;
    for (size_t i = 0; i < alts.size(); ++i) body += (i ? " | " : "") + alts[i];
    *expr = as_body ? body : add_rule(hint, body);
    return true;
  }

  std::set<std::string> infer_types(const ojson& s) const {
    std::set<std::string> t;
    for (const char* k : {"properties", "required", "additionalProperties"})
      if (s.contains(k)) t.insert("object");
    for (const char* k : {"items", "prefixItems", "minItems", "maxItems"})
      if (s.contains(k)) t.insert("array");
    for (const char* k : {"minLength", "maxLength", "pattern", "format"})
      if (s.contains(k)) t.insert("string");
    for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
      if (s.contains(k)) t.insert("number");
    if (t.empty()) t = {"null", "boolean", "object", "array", "string", "number"};
    return t;
  }

  bool convert_union(const ojson& s, const std::string& ptr, const std::string& hint, std::string* expr, bool as_body) {
    const char* kw = s.contains("anyOf") ? "anyOf" : "oneOf";
    if (s.contains("anyOf") && s.contains("oneOf")) {
      if (!unsupported("oneOf", ptr, "'oneOf' next to 'anyOf'")) return false;
    } else if (std::string(kw) == "oneOf") {
      warn("'oneOf' at " + show_ptr(ptr) + " is enforced as 'anyOf' (exclusivity is not enforced)");
    }
    const ojson& branches = s[kw];
    if (!branches.is_array() || branches.empty()) return invalid("'" + std::string(kw) + "' must be a non-empty array", ptr);
    ojson siblings = ojson::object();
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& k = it.key();
      if (k == "anyOf" || k == "oneOf" || k == "$defs" || k == "definitions" || annotation_keywords().count(k)) continue;
      siblings[k] = it.value();
    }
    std::vector<std::string> alts;
    for (size_t i = 0; i < branches.size(); ++i) {
      const std::string bptr = ptr + "/" + kw + "/" + std::to_string(i);
      std::string e;
      if (siblings.empty()) {
        if (!convert(branches[i], bptr, hint + "-" + std::to_string(i), &e)) return false;
      } else {
        if (branches[i].is_boolean() && !branches[i].get<bool>()) continue;
        ojson m = siblings;
        if (!merge(&m, branches[i], bptr)) return false;
        if (!convert(m, bptr, hint + "-" + std::to_string(i), &e)) return false;
      }
      if (std::find(alts.begin(), alts.end(), e) == alts.end()) alts.push_back(e);
    }
    if (alts.empty()) return fail("unsatisfiable schema: every '" + std::string(kw) + "' branch is false at " + show_ptr(ptr));
    return finish(alts, hint, expr, as_body);
  }

  static bool value_has_type(const ojson& v, const std::set<std::string>& types) {
    if (types.empty()) return true;
    switch (v.type()) {
      case ojson::value_t::null: return types.count("null");
      case ojson::value_t::boolean: return types.count("boolean");
      case ojson::value_t::object: return types.count("object");
      case ojson::value_t::array: return types.count("array");
      case ojson::value_t::string: return types.count("string");
      case ojson::value_t::number_integer:
      case ojson::value_t::number_unsigned: return types.count("number") || types.count("integer");
      case ojson::value_t::number_float: {
        const double d = v.get<double>();
        return types.count("number") || (types.count("integer") && std::isfinite(d) && std::floor(d) == d);
      }
      default: return false;
    }
  }

  bool convert_enum(const ojson& s, const std::string& ptr, const std::set<std::string>& types, std::string* expr) {
    std::vector<ojson> values;
    if (auto e = s.find("enum"); e != s.end()) {
      if (!e->is_array()) return invalid("'enum' must be an array", ptr);
      for (const auto& v : *e) values.push_back(v);
    }
    if (auto c = s.find("const"); c != s.end()) {
      if (s.contains("enum")) {
        const bool in = std::find(values.begin(), values.end(), *c) != values.end();
        values.clear();
        if (in) values.push_back(*c);
      } else {
        values.push_back(*c);
      }
    }
    std::vector<std::string> alts;
    for (const auto& v : values) {
      if (!value_has_type(v, types)) continue;
      // An integral float (3.0) under "integer" is written as 3.
      std::string text = v.is_number_float() && types.count("integer") && !types.count("number")
                             ? std::to_string(int64_t(v.get<double>()))
                             : v.dump();
      const std::string lit = gbnf_literal(text);
      if (std::find(alts.begin(), alts.end(), lit) == alts.end()) alts.push_back(lit);
    }
    if (alts.empty()) return fail("unsatisfiable schema: no 'enum'/'const' value has the schema's type at " + show_ptr(ptr));
    *expr = alt_group(alts);
    return true;
  }

  // ---- objects ----
  // Keys other than `names`: a trie of the names; each node's rule accepts the rest of a
  // key (through the closing quote) that leaves the trie or ends at a non-name node.
  std::string other_key_rule(const std::vector<std::string>& names, const std::string& hint) {
    struct TrieNode {
      std::map<uint32_t, int> kids;
      bool terminal = false;
    };
    std::vector<TrieNode> trie(1);
    for (const auto& n : names) {
      // Names with characters that JSON escapes are not excluded (their spellings vary).
      if (std::any_of(n.begin(), n.end(), [](char c) { return c == '"' || c == '\\' || uint8_t(c) < 0x20; })) continue;
      int cur = 0;
      size_t i = 0;
      while (i < n.size()) {
        // Decode one UTF-8 code point (names come from a parsed JSON document: valid UTF-8).
        const auto b0 = uint8_t(n[i]);
        const int len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
        uint32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
        for (int k = 1; k < len && i + k < n.size(); ++k) cp = (cp << 6) | (uint8_t(n[i + k]) & 0x3F);
        i += len;
        auto it = trie[cur].kids.find(cp);
        if (it == trie[cur].kids.end()) {
          trie.push_back({});
          const int id = int(trie.size()) - 1;
          trie[cur].kids[cp] = id;
          cur = id;
        } else {
          cur = it->second;
        }
      }
      trie[cur].terminal = true;
    }
    prim("char");
    const std::string base = unique_name(hint + "-xkey");
    std::vector<std::string> names_of(trie.size());
    for (size_t v = 0; v < trie.size(); ++v) names_of[v] = unique_name(base + "-" + std::to_string(v));
    for (size_t v = 0; v < trie.size(); ++v) {
      std::vector<std::string> alts;
      if (!trie[v].terminal) alts.push_back("\"\\\"\"");
      CodePointSet other = CodePointSet::all();
      for (const auto& [cp, kid] : trie[v].kids) other = other.minus(CodePointSet::of(cp, cp));
      const std::string oc = gbnf_json_char(other);
      alts.push_back((oc.find(" | ") != std::string::npos ? "(" + oc + ")" : oc) + " char* \"\\\"\"");
      for (const auto& [cp, kid] : trie[v].kids) {
        std::string u8;
        if (cp < 0x80) u8 += char(cp);
        else if (cp < 0x800) u8 += char(0xC0 | (cp >> 6)), u8 += char(0x80 | (cp & 0x3F));
        else if (cp < 0x10000) u8 += char(0xE0 | (cp >> 12)), u8 += char(0x80 | ((cp >> 6) & 0x3F)), u8 += char(0x80 | (cp & 0x3F));
        else u8 += char(0xF0 | (cp >> 18)), u8 += char(0x80 | ((cp >> 12) & 0x3F)), u8 += char(0x80 | ((cp >> 6) & 0x3F)), u8 += char(0x80 | (cp & 0x3F));
        const std::string lit = cp == '/' ? "(\"/\" | \"\\\\/\")" : gbnf_literal(u8);
        alts.push_back(lit + " " + names_of[kid]);
      }
      std::string body;
      for (size_t i = 0; i < alts.size(); ++i) body += (i ? " | " : "") + alts[i];
      rules_.push_back({names_of[v], body});
    }
    rules_.push_back({base, "\"\\\"\" " + names_of[0]});
    return base;
  }

  // Objects and arrays get a rule of their own, unless as_body (then *expr is the body).
  bool convert_object(const ojson& s, const std::string& ptr, const std::string& hint, std::string* expr,
                      bool as_body) {
    struct Prop {
      std::string name, kv;
      bool required;
    };
    std::vector<Prop> props;
    std::vector<std::string> required;
    if (auto r = s.find("required"); r != s.end()) {
      if (!r->is_array()) return invalid("'required' must be an array of strings", ptr);
      for (const auto& x : *r) {
        if (!x.is_string()) return invalid("'required' must be an array of strings", ptr);
        if (std::find(required.begin(), required.end(), x.get<std::string>()) == required.end())
          required.push_back(x.get<std::string>());
      }
    }
    // additionalProperties: nullopt = none allowed; else the value expression.
    std::optional<std::string> extra;
    auto ap = s.find("additionalProperties");
    if (ap == s.end()) {
      if (!opt_.strict) extra = prim("value");
    } else if (ap->is_boolean()) {
      if (ap->get<bool>()) extra = prim("value");
    } else if (ap->is_object()) {
      std::string e;
      if (!convert(*ap, ptr + "/additionalProperties", hint + "-additional", &e)) return false;
      extra = e;
    } else {
      return invalid("'additionalProperties' must be a schema", ptr);
    }
    auto kv_of = [&](const std::string& name, const std::string& value) {
      return cat({gbnf_literal(ojson(name).dump()), colon(), value});
    };
    std::vector<std::string> declared;
    if (auto p = s.find("properties"); p != s.end()) {
      if (!p->is_object()) return invalid("'properties' must be an object", ptr);
      for (auto it = p->begin(); it != p->end(); ++it) {
        const bool req = std::find(required.begin(), required.end(), it.key()) != required.end();
        if (it->is_boolean() && !it->get<bool>()) {
          if (req) return fail("unsatisfiable schema: required property '" + it.key() + "' is false at " + show_ptr(ptr));
          declared.push_back(it.key());  // never present, never an "other" key either
          continue;
        }
        std::string v;
        if (!convert(*it, ptr + "/properties/" + ptr_escape(it.key()), hint + "-" + it.key(), &v)) return false;
        props.push_back({it.key(), kv_of(it.key(), v), req});
        declared.push_back(it.key());
      }
    }
    for (const auto& r : required) {
      if (std::find(declared.begin(), declared.end(), r) != declared.end()) continue;
      if (!extra) return fail("unsatisfiable schema: required property '" + r + "' is not allowed by additionalProperties at " + show_ptr(ptr));
      props.push_back({r, kv_of(r, *extra), true});
      declared.push_back(r);
    }
    std::string extra_kv;
    if (extra) {
      const std::string key = declared.empty() ? prim("string") : other_key_rule(declared, hint);
      extra_kv = cat({key, colon(), *extra});
    }
    const std::string open = cat({"\"{\"", ws()}), close = "\"}\"", S = sep();
    const std::string extras_tail = extra ? "(" + S + " " + extra_kv + ")*" : "";
    if (props.empty()) {
      const std::string body =
          extra ? cat({open, "(" + cat({extra_kv, extras_tail, ws()}) + ")?", close}) : cat({open, close});
      *expr = as_body ? body : add_rule(hint, body);
      return true;
    }
    // tails[i]: what may follow once some property before i has been written.
    const size_t n = props.size();
    std::vector<std::string> tails(n + 1);
    tails[n] = extras_tail;
    const std::string name = as_body ? hint : unique_name(hint);
    for (size_t i = n; i-- > 1;) {
      const std::string item = cat({S, props[i].kv});
      std::string body = cat({props[i].required ? item : "(" + item + ")?", tails[i + 1]});
      tails[i] = body.empty() ? "" : add_rule(name + "-t" + std::to_string(i), body);
    }
    size_t first_req = n;
    for (size_t i = 0; i < n; ++i)
      if (props[i].required) {
        first_req = i;
        break;
      }
    std::vector<std::string> firsts;
    for (size_t j = 0; j <= std::min(first_req, n - 1); ++j) firsts.push_back(cat({props[j].kv, tails[j + 1]}));
    if (first_req == n && extra) firsts.push_back(cat({extra_kv, extras_tail}));
    std::string members = alt_group(firsts);
    if (firsts.size() == 1 && first_req == n) members = "(" + members + ")";
    const std::string body = first_req == n ? cat({open, "(" + cat({members, ws()}) + ")?", close})
                                            : cat({open, members, ws(), close});
    if (as_body) {
      *expr = body;
    } else {
      rules_.push_back({name, body});
      *expr = name;
    }
    return true;
  }

  // ---- arrays ----
  bool convert_array(const ojson& s, const std::string& ptr, const std::string& hint, std::string* expr,
                     bool as_body) {
    std::vector<std::string> prefix;
    const ojson* pre = nullptr;
    std::string pre_kw;
    if (auto p = s.find("prefixItems"); p != s.end()) {
      if (!p->is_array()) return invalid("'prefixItems' must be an array of schemas", ptr);
      pre = &*p, pre_kw = "prefixItems";
    }
    auto items = s.find("items");
    bool items_is_tuple = items != s.end() && items->is_array();
    if (items_is_tuple) {  // draft-07 tuple form
      if (pre) return invalid("'items' must be a schema when 'prefixItems' is present", ptr);
      pre = &*items, pre_kw = "items";
    }
    if (pre)
      for (size_t i = 0; i < pre->size(); ++i) {
        std::string e;
        if (!convert((*pre)[i], ptr + "/" + pre_kw + "/" + std::to_string(i), hint + "-" + std::to_string(i), &e))
          return false;
        prefix.push_back(e);
      }
    std::optional<std::string> item;  // nullopt: no items after the prefix
    if (items == s.end() || items_is_tuple) {
      if (items_is_tuple && s.contains("additionalItems")) {
        const ojson& ai = s["additionalItems"];
        if (ai.is_boolean() && !ai.get<bool>()) {
        } else {
          item = prim("value");
        }
      } else {
        item = prim("value");
      }
    } else if (items->is_boolean()) {
      if (items->get<bool>()) item = prim("value");
    } else if (items->is_object()) {
      std::string e;
      if (!convert(*items, ptr + "/items", hint + "-item", &e)) return false;
      item = e;
    } else {
      return invalid("'items' must be a schema", ptr);
    }
    std::optional<int64_t> min_items, max_items;
    if (!get_count(s, "minItems", ptr, &min_items) || !get_count(s, "maxItems", ptr, &max_items)) return false;
    const int64_t k = int64_t(prefix.size());
    int64_t mn = min_items.value_or(0);
    int64_t mx = max_items ? *max_items : -1;  // -1: unbounded
    if (!item) mx = mx < 0 ? k : std::min(mx, k);
    if (mx >= 0 && mn > mx)
      return fail("unsatisfiable schema: minItems " + std::to_string(mn) + " > the most items allowed (" +
                  std::to_string(mx) + ") at " + show_ptr(ptr));
    if (mn > kMaxBound) return fail("unsupported keyword 'minItems' at " + show_ptr(ptr) + ": more than " + std::to_string(kMaxBound));
    if (mx > kMaxBound) {
      warn("'maxItems' at " + show_ptr(ptr) + " over " + std::to_string(kMaxBound) + " is not enforced");
      mx = -1;
    }
    const std::string open = cat({"\"[\"", ws()}), close = "\"]\"", S = sep();
    if (mx == 0) {
      *expr = as_body ? cat({open, close}) : add_rule(hint, cat({open, close}));
      return true;
    }
    // Items after the prefix: positions k+1.. as (sep item){lo,hi}.
    auto rest = [&](int64_t done) -> std::string {  // `done` items written (done >= 1)
      if (!item) return "";
      const int64_t lo = std::max<int64_t>(0, mn - done);
      if (mx >= 0 && mx - done <= 0) return "";
      const std::string g = "(" + S + " " + *item + ")";
      if (mx < 0) return lo == 0 ? g + "*" : g + "{" + std::to_string(lo) + ",}";
      const int64_t hi = mx - done;
      if (lo == 0 && hi == 1) return g + "?";
      if (lo == hi) return g + "{" + std::to_string(lo) + "}";
      return g + "{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
    };
    // Nested chain over the prefix: el(1) [sep el(2) [sep el(3) ...]] with positions <= mn required.
    std::string seq;
    {
      const int64_t last = mx >= 0 ? std::min(k, mx) : k;
      std::string inner = rest(std::max<int64_t>(last, 1));
      if (k == 0) {
        seq = cat({*item, inner});
      } else {
        for (int64_t i = last; i >= 2; --i) {
          std::string step = cat({S, prefix[i - 1], inner});
          inner = i <= mn ? step : "(" + step + ")?";
        }
        seq = cat({prefix[0], inner});
      }
    }
    const std::string body = mn == 0 ? cat({open, "(" + cat({seq, ws()}) + ")?", close}) : cat({open, seq, ws(), close});
    *expr = as_body ? body : add_rule(hint, body);
    return true;
  }

  // ---- strings ----
  bool convert_string(const ojson& s, const std::string& ptr, const std::string& hint, std::string* expr) {
    std::optional<int64_t> min_len, max_len;
    std::optional<std::string> pattern, format;
    if (!get_count(s, "minLength", ptr, &min_len) || !get_count(s, "maxLength", ptr, &max_len) ||
        !get_string(s, "pattern", ptr, &pattern) || !get_string(s, "format", ptr, &format))
      return false;
    const std::string q = "\"\\\"\"";
    std::string inner;  // the body between the quotes
    if (pattern) {
      std::vector<std::string> rules;
      std::string e, err;
      RegexOptions ro;
      ro.json_string = true;
      ro.search = true;
      if (regex_to_gbnf_rule(*pattern, unique_name(hint + "-re") + "-", &rules, &e, &err, ro)) {
        for (const auto& r : rules) {
          const size_t sp = r.find(" ::= ");
          rules_.push_back({r.substr(0, sp), r.substr(sp + 5)});
          taken_.insert(r.substr(0, sp));
        }
        inner = e;
      } else if (!unsupported("pattern", ptr, err)) {
        return false;
      }
    }
    if (format) {
      const std::string& f = *format;
      std::string fe;
      if (f == "date" || f == "time" || f == "date-time" || f == "uuid" || f == "email" || f == "ipv4" ||
          f == "hostname") {
        fe = prim("fmt-" + f);
      } else if (f == "uri") {
        warn("'format: uri' at " + show_ptr(ptr) + " is only loosely enforced (scheme ':' URI characters)");
        fe = prim("fmt-uri");
      } else if (!unsupported("format", ptr, "format '" + f + "'")) {
        return false;
      }
      if (!fe.empty()) {
        if (inner.empty()) inner = fe;
        else if (!unsupported("format", ptr, "'format' next to 'pattern'")) return false;
      }
    }
    if (!inner.empty()) {
      if ((min_len || max_len) && !unsupported(min_len ? "minLength" : "maxLength", ptr, "length limits next to a pattern or format"))
        return false;
      *expr = "(" + cat({q, inner, q}) + ")";
      return true;
    }
    if (!min_len && !max_len) {
      *expr = prim("string");
      return true;
    }
    const int64_t lo = min_len.value_or(0);
    if (max_len && *max_len < lo) return fail("unsatisfiable schema: minLength > maxLength at " + show_ptr(ptr));
    if (lo > kMaxBound) return fail("unsupported keyword 'minLength' at " + show_ptr(ptr) + ": more than " + std::to_string(kMaxBound));
    int64_t hi = max_len ? *max_len : -1;  // -1: unbounded
    if (hi > kMaxBound) {
      warn("'maxLength' at " + show_ptr(ptr) + " over " + std::to_string(kMaxBound) + " is not enforced");
      hi = -1;
    }
    prim("char");
    std::string r;
    if (hi < 0) r = lo == 0 ? "char*" : "char{" + std::to_string(lo) + ",}";
    else if (hi == 0) r = "";
    else if (lo == hi) r = "char{" + std::to_string(lo) + "}";
    else r = "char{" + std::to_string(lo) + "," + std::to_string(hi) + "}";
    *expr = "(" + cat({q, r, q}) + ")";
    return true;
  }

  // ---- numbers ----
  bool bounds(const ojson& s, const std::string& ptr, std::optional<Bound>* lo, std::optional<Bound>* hi) {
    std::optional<double> mn, mx, xmn, xmx;
    if (!get_number(s, "minimum", ptr, &mn) || !get_number(s, "maximum", ptr, &mx) ||
        !get_number(s, "exclusiveMinimum", ptr, &xmn) || !get_number(s, "exclusiveMaximum", ptr, &xmx))
      return false;
    if (mn) *lo = Bound{*mn, false};
    if (xmn && (!*lo || *xmn >= (*lo)->v)) *lo = Bound{*xmn, true};
    if (mx) *hi = Bound{*mx, false};
    if (xmx && (!*hi || *xmx <= (*hi)->v)) *hi = Bound{*xmx, true};
    return true;
  }

  bool convert_integer(const ojson& s, const std::string& ptr, std::string* expr) {
    std::optional<Bound> lo_b, hi_b;
    if (!bounds(s, ptr, &lo_b, &hi_b)) return false;
    constexpr double kLim = 9.0e18;
    std::optional<int64_t> lo, hi;
    if (lo_b && std::fabs(lo_b->v) < kLim) {
      double v = lo_b->exclusive ? std::floor(lo_b->v) + 1 : std::ceil(lo_b->v);
      lo = int64_t(v);
    }
    if (hi_b && std::fabs(hi_b->v) < kLim) {
      double v = hi_b->exclusive ? std::ceil(hi_b->v) - 1 : std::floor(hi_b->v);
      hi = int64_t(v);
    }
    if (lo && hi && *lo > *hi) return fail("unsatisfiable schema: minimum > maximum at " + show_ptr(ptr));
    if (!lo && !hi) {
      *expr = prim("integer");
      return true;
    }
    auto mag = [](int64_t v) { return v < 0 ? uint64_t(-(v + 1)) + 1 : uint64_t(v); };
    std::vector<std::string> alts;
    if (!lo || *lo < 0) {  // negative part: magnitudes [max(1, -hi), -lo]
      const uint64_t a = hi && *hi < 0 ? mag(*hi) : 1;
      std::optional<uint64_t> b;
      if (lo) b = mag(*lo);
      alts.push_back("\"-\" " + wrap(magnitude_range(a, b)));
    }
    if (!hi || *hi >= 0) {  // non-negative part
      const uint64_t a = lo && *lo > 0 ? uint64_t(*lo) : 0;
      std::optional<uint64_t> b;
      if (hi) b = uint64_t(*hi);
      alts.push_back(magnitude_range(a, b));
    }
    // Non-negative first: "0" and small values are the likely outputs.
    std::reverse(alts.begin(), alts.end());
    *expr = alts.size() == 1 ? wrap(alts[0]) : "(" + alts[0] + " | " + alts[1] + ")";
    return true;
  }

  static std::string wrap(const std::string& e) {
    if (e.find(' ') == std::string::npos || (e.front() == '(' && e.back() == ')' && balanced_outer(e))) return e;
    return "(" + e + ")";
  }
  static bool balanced_outer(const std::string& e) {  // "(...)" whose first paren closes at the end
    int d = 0;
    bool in_str = false;
    for (size_t i = 0; i < e.size(); ++i) {
      const char c = e[i];
      if (in_str) {
        if (c == '\\') ++i;
        else if (c == '"') in_str = false;
        continue;
      }
      if (c == '"') in_str = true;
      else if (c == '[') {
        while (i < e.size() && e[i] != ']') i += e[i] == '\\' ? 2 : 1;
      } else if (c == '(') ++d;
      else if (c == ')' && --d == 0 && i + 1 != e.size()) return false;
    }
    return true;
  }

  // Non-negative decimals I(.F)? in [a, b] (integer bounds, each inclusive or exclusive).
  std::string decimal_range(uint64_t a, bool a_excl, std::optional<uint64_t> b, bool b_excl) {
    const std::string frac_any = "(\".\" [0-9]{1,16})?";
    const std::string frac_zero = "(\".\" \"0\"{1,16})?";
    const std::string frac_pos = "\".\" \"0\"{0,15} [1-9] [0-9]{0,15}";
    std::vector<std::string> alts;
    const uint64_t ilo = a_excl ? a + 1 : a;
    if (!b || (*b >= 1 && ilo <= *b - 1)) {  // I in [ilo, b-1], any fraction
      std::optional<uint64_t> ihi;
      if (b) ihi = *b - 1;
      alts.push_back(cat({wrap(magnitude_range(ilo, ihi)), frac_any}));
    }
    if (a_excl && (!b || a < *b)) alts.push_back(cat({"\"" + std::to_string(a) + "\"", frac_pos}));
    if (b && !b_excl && (*b > a || (*b == a && !a_excl))) alts.push_back(cat({"\"" + std::to_string(*b) + "\"", frac_zero}));
    if (alts.empty()) return "";
    return alt_group(alts);
  }

  bool convert_number(const ojson& s, const std::string& ptr, std::string* expr) {
    std::optional<Bound> lo, hi;
    if (!bounds(s, ptr, &lo, &hi)) return false;
    if (!lo && !hi) {
      *expr = prim("number");
      return true;
    }
    constexpr double kLim = 1e15;
    auto loosen = [&](std::optional<Bound>* b, bool lower, const char* kw) {
      if (!*b) return;
      if (std::fabs((*b)->v) >= kLim) {
        warn("'" + std::string(kw) + "' at " + show_ptr(ptr) + " is not enforced (too large)");
        b->reset();
        return;
      }
      if (std::floor((*b)->v) != (*b)->v) {
        warn("'" + std::string(kw) + "' at " + show_ptr(ptr) + " is loosened to the nearest integer");
        *b = Bound{lower ? std::floor((*b)->v) : std::ceil((*b)->v), false};
      }
    };
    loosen(&lo, true, lo && lo->exclusive ? "exclusiveMinimum" : "minimum");
    loosen(&hi, false, hi && hi->exclusive ? "exclusiveMaximum" : "maximum");
    if (!lo && !hi) {
      *expr = prim("number");
      return true;
    }
    if (lo && hi && (lo->v > hi->v || (lo->v == hi->v && (lo->exclusive || hi->exclusive))))
      return fail("unsatisfiable schema: minimum > maximum at " + show_ptr(ptr));
    std::vector<std::string> alts;
    // x >= 0: magnitudes from max(lo, 0).
    if (!hi || hi->v > 0 || (hi->v == 0 && !hi->exclusive)) {
      const bool from_lo = lo && lo->v >= 0;
      const uint64_t a = from_lo ? uint64_t(lo->v) : 0;
      std::optional<uint64_t> b;
      if (hi) b = uint64_t(hi->v);
      const std::string e = decimal_range(a, from_lo && lo->exclusive, b, hi && hi->exclusive);
      if (!e.empty()) alts.push_back(e);
    }
    // x < 0: "-" and a magnitude m > 0 with m <= -lo and m >= -hi.
    if (!lo || lo->v < 0) {
      const bool from_hi = hi && hi->v < 0;
      const uint64_t a = from_hi ? uint64_t(-hi->v) : 0;
      std::optional<uint64_t> b;
      if (lo) b = uint64_t(-lo->v);
      const std::string e = decimal_range(a, from_hi ? hi->exclusive : true, b, lo && lo->exclusive);
      if (!e.empty()) alts.push_back("\"-\" " + wrap(e));
    }
    if (alts.empty()) return fail("unsatisfiable schema: no number in range at " + show_ptr(ptr));
    *expr = alts.size() == 1 ? wrap(alts[0]) : "(" + alts[0] + " | " + alts[1] + ")";
    return true;
  }

  struct DepthGuard {
    explicit DepthGuard(int* d) : d_(d) { ++*d_; }
    ~DepthGuard() { --*d_; }
    int* d_;
  };
  static constexpr int kMaxDepth = 256;
  int depth_ = 0;
  const ojson& root_;
  SchemaOptions opt_;
  std::string ws_;  // "ws" or "" (compact); prim_body() reads it
  std::vector<std::pair<std::string, std::string>> rules_;  // in creation order; root first
  std::set<std::string> taken_;
  std::set<std::string> prim_used_;
  std::vector<std::string> prim_order_;
  std::unordered_map<std::string, std::string> ref_rules_;  // "#/pointer" -> rule name
  std::vector<std::string> warnings_;
  std::string err_;
};

}  // namespace

bool json_schema_to_gbnf(const nlohmann::ordered_json& schema, const SchemaOptions& opt, SchemaGrammar* out,
                         std::string* error) {
  Converter c(schema, opt);
  return c.run(out, error);
}

bool json_schema_to_gbnf(const nlohmann::json& schema, const SchemaOptions& opt, SchemaGrammar* out,
                         std::string* error) {
  return json_schema_to_gbnf(nlohmann::ordered_json::parse(schema.dump()), opt, out, error);
}

std::string json_value_gbnf() {
  SchemaGrammar g;
  std::string err;
  json_schema_to_gbnf(nlohmann::ordered_json(true), SchemaOptions{}, &g, &err);
  return g.gbnf;
}

std::string json_object_gbnf() {
  SchemaGrammar g;
  std::string err;
  json_schema_to_gbnf(nlohmann::ordered_json{{"type", "object"}}, SchemaOptions{}, &g, &err);
  return g.gbnf;
}

}  // namespace tachyon::constrain
