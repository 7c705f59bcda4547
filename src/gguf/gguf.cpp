#include "gguf/gguf.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <unordered_map>
#include <unordered_set>

namespace tachyon::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayNesting = 8;

// Bounds-checked little-endian cursor over the mapped bytes. Every read checks the
// remaining length first, so a truncated or lying file can never read out of bounds.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <class T>
  bool read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool read_string(std::string_view* out) {
    uint64_t len;
    if (!read(&len)) return false;
    if (len > remaining()) return false;
    *out = std::string_view(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return true;
  }
  const uint8_t* here() const { return base_ + pos_; }
  bool skip(uint64_t n) {
    if (n > remaining()) return false;
    pos_ += n;
    return true;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= 12; }

std::string quote(std::string_view s) {
  // Names come from untrusted files: print them safely and bounded.
  std::string out;
  for (char c : s.substr(0, 120)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  if (s.size() > 120) out += "...";
  return out;
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "u8";
    case ValueType::INT8: return "i8";
    case ValueType::UINT16: return "u16";
    case ValueType::INT16: return "i16";
    case ValueType::UINT32: return "u32";
    case ValueType::INT32: return "i32";
    case ValueType::FLOAT32: return "f32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "str";
    case ValueType::ARRAY: return "arr";
    case ValueType::UINT64: return "u64";
    case ValueType::INT64: return "i64";
    case ValueType::FLOAT64: return "f64";
  }
  return "?";
}

size_t value_type_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL: return 1;
    case ValueType::UINT16:
    case ValueType::INT16: return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32: return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64: return 8;
    default: return 0;
  }
}

bool Value::is_int() const {
  switch (type) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::UINT16:
    case ValueType::INT16:
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::UINT64:
    case ValueType::INT64: return true;
    default: return false;
  }
}

std::string Value::to_string(size_t max_elems) const {
  char buf[64];
  switch (type) {
    case ValueType::UINT8:
    case ValueType::UINT16:
    case ValueType::UINT32:
    case ValueType::UINT64: return std::to_string(u);
    case ValueType::INT8:
    case ValueType::INT16:
    case ValueType::INT32:
    case ValueType::INT64: return std::to_string(i);
    case ValueType::FLOAT32:
    case ValueType::FLOAT64:
      std::snprintf(buf, sizeof buf, "%g", f);
      return buf;
    case ValueType::BOOL: return u ? "true" : "false";
    case ValueType::STRING: return "\"" + quote(str) + "\"";
    case ValueType::ARRAY: {
      std::string s = "[" + std::string(value_type_name(arr_type)) + " x " + std::to_string(arr_count) + "] [";
      const uint64_t n = std::min<uint64_t>(arr_count, max_elems);
      for (uint64_t k = 0; k < n; ++k) {
        if (k) s += ", ";
        if (arr_type == ValueType::STRING) {
          s += "\"" + quote(arr_strings[k]) + "\"";
        } else if (arr_type == ValueType::ARRAY) {
          s += arr_values[k].to_string(max_elems);
        } else if (arr_type == ValueType::FLOAT32 || arr_type == ValueType::FLOAT64) {
          std::snprintf(buf, sizeof buf, "%g", arr_at<double>(k));
          s += buf;
        } else if (arr_type == ValueType::INT64) {
          s += std::to_string(arr_at<int64_t>(k));
        } else {
          s += std::to_string(arr_at<int64_t>(k));
        }
      }
      if (arr_count > n) s += ", ...";
      return s + "]";
    }
  }
  return "?";
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (uint32_t d = 0; d < n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(ne[d]);
  }
  return s + "]";
}

namespace {

// Parses one value of type `t` at the cursor. `what` names the key for errors.
Status read_value(Cursor& c, ValueType t, Value* v, int depth, const std::string& what) {
  v->type = t;
  auto trunc = [&] { return corrupt(what + ": value truncated"); };
  switch (t) {
    case ValueType::UINT8: { uint8_t x; if (!c.read(&x)) return trunc(); v->u = x; v->i = x; break; }
    case ValueType::INT8: { int8_t x; if (!c.read(&x)) return trunc(); v->i = x; v->u = static_cast<uint64_t>(x); break; }
    case ValueType::UINT16: { uint16_t x; if (!c.read(&x)) return trunc(); v->u = x; v->i = x; break; }
    case ValueType::INT16: { int16_t x; if (!c.read(&x)) return trunc(); v->i = x; v->u = static_cast<uint64_t>(x); break; }
    case ValueType::UINT32: { uint32_t x; if (!c.read(&x)) return trunc(); v->u = x; v->i = x; break; }
    case ValueType::INT32: { int32_t x; if (!c.read(&x)) return trunc(); v->i = x; v->u = static_cast<uint64_t>(x); break; }
    case ValueType::UINT64: { uint64_t x; if (!c.read(&x)) return trunc(); v->u = x; v->i = static_cast<int64_t>(x); break; }
    case ValueType::INT64: { int64_t x; if (!c.read(&x)) return trunc(); v->i = x; v->u = static_cast<uint64_t>(x); break; }
    case ValueType::FLOAT32: { float x; if (!c.read(&x)) return trunc(); v->f = x; break; }
    case ValueType::FLOAT64: { double x; if (!c.read(&x)) return trunc(); v->f = x; break; }
    case ValueType::BOOL: {
      uint8_t x;
      if (!c.read(&x)) return trunc();
      if (x > 1) return corrupt(what + ": bool value " + std::to_string(x) + " is not 0 or 1");
      v->u = x;
      break;
    }
    case ValueType::STRING:
      if (!c.read_string(&v->str)) return corrupt(what + ": string length exceeds the file");
      break;
    case ValueType::ARRAY: {
      if (depth >= kMaxArrayNesting) return corrupt(what + ": arrays nested too deeply");
      uint32_t et;
      uint64_t n;
      if (!c.read(&et) || !c.read(&n)) return corrupt(what + ": array header truncated");
      if (!valid_value_type(et)) return corrupt(what + ": invalid array element type " + std::to_string(et));
      v->arr_type = static_cast<ValueType>(et);
      v->arr_count = n;
      const size_t es = value_type_size(v->arr_type);
      if (es) {
        if (n > c.remaining() / es) return corrupt(what + ": array of " + std::to_string(n) + " elements exceeds the file");
        v->arr_data = c.here();
        c.skip(n * es);
      } else if (v->arr_type == ValueType::STRING) {
        if (n > c.remaining() / 8) return corrupt(what + ": array of " + std::to_string(n) + " strings exceeds the file");
        v->arr_strings.resize(n);
        for (uint64_t k = 0; k < n; ++k) {
          if (!c.read_string(&v->arr_strings[k]))
            return corrupt(what + ": string " + std::to_string(k) + " of the array exceeds the file");
        }
      } else {  // nested arrays: each needs at least a 12-byte header
        if (n > c.remaining() / 12) return corrupt(what + ": array of " + std::to_string(n) + " arrays exceeds the file");
        v->arr_values.resize(n);
        for (uint64_t k = 0; k < n; ++k) {
          TACHYON_RETURN_IF_ERROR(read_value(c, ValueType::ARRAY, &v->arr_values[k], depth + 1,
                                             what + "[" + std::to_string(k) + "]"));
        }
      }
      break;
    }
  }
  return Status::ok();
}

}  // namespace

std::string split_path(const std::string& prefix, int split_no, int n_split) {
  char tail[48];
  std::snprintf(tail, sizeof tail, "-%05d-of-%05d.gguf", split_no + 1, n_split);
  return prefix + tail;
}

std::string split_prefix(const std::string& path, int split_no, int n_split) {
  const std::string tail = split_path("", split_no, n_split);
  if (path.size() <= tail.size() || path.compare(path.size() - tail.size(), tail.size(), tail) != 0) return "";
  return path.substr(0, path.size() - tail.size());
}

Result<std::unique_ptr<File>> File::open(const std::string& path) {
  auto f = open_one(path);
  if (!f) return f.status();
  std::unique_ptr<File> file = std::move(f.value());
  Status st = file->open_parts();
  if (!st) return st;
  return file;
}

Result<std::unique_ptr<File>> File::open_one(const std::string& path) {
  auto m = MappedFile::open(path);
  if (!m) return m.status();
  std::unique_ptr<File> f(new File());
  f->map_ = std::move(m.value());
  f->base_ = f->map_.data();
  f->size_ = f->map_.size();
  f->path_ = path;
  Status st = f->parse_all();
  if (!st) return st;
  return f;
}

Result<std::unique_ptr<File>> File::parse(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<File> f(new File());
  f->base_ = data;
  f->size_ = size;
  f->path_ = std::move(name);
  Status st = f->parse_all();
  if (!st) return st;
  return f;
}

Status File::parse_all() {
  const std::string p = path_ + ": ";
  Cursor c(base_, size_);
  uint32_t magic;
  if (!c.read(&magic)) return corrupt(p + "header: file too small to be GGUF (" + std::to_string(size_) + " bytes)");
  if (magic != kMagic) return corrupt(p + "header: bad magic (not a GGUF file)");
  if (!c.read(&version_)) return corrupt(p + "header: truncated version");
  if (version_ == 1) return unsupported(p + "header: GGUF version 1 is obsolete; re-convert the model");
  if (version_ != 2 && version_ != 3) return corrupt(p + "header: unsupported GGUF version " + std::to_string(version_));
  uint64_t n_tensors, n_kv;
  if (!c.read(&n_tensors) || !c.read(&n_kv)) return corrupt(p + "header: truncated counts");
  // Each KV pair needs >= 8 (key len) + 4 (type) + 1 bytes; each tensor info >= 8+4+4+8 bytes.
  if (n_kv > c.remaining() / 13) return corrupt(p + "header: metadata count " + std::to_string(n_kv) + " exceeds the file");
  if (n_tensors > c.remaining() / 24) return corrupt(p + "header: tensor count " + std::to_string(n_tensors) + " exceeds the file");

  kvs_.reserve(n_kv);
  std::unordered_set<std::string_view> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    KeyValue kv;
    if (!c.read_string(&kv.key)) return corrupt(p + "metadata #" + std::to_string(k) + ": key length exceeds the file");
    const std::string what = p + "key '" + quote(kv.key) + "'";
    if (kv.key.empty()) return corrupt(p + "metadata #" + std::to_string(k) + ": empty key");
    if (!keys.insert(kv.key).second) return corrupt(what + ": duplicate key");
    uint32_t t;
    if (!c.read(&t)) return corrupt(what + ": truncated value type");
    if (!valid_value_type(t)) return corrupt(what + ": invalid value type " + std::to_string(t));
    TACHYON_RETURN_IF_ERROR(read_value(c, static_cast<ValueType>(t), &kv.value, 0, what));
    kvs_.push_back(std::move(kv));
  }

  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::UINT32) return corrupt(p + "key 'general.alignment': must be u32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0)
      return corrupt(p + "key 'general.alignment': " + std::to_string(a->u) + " is not a power of two");
    alignment_ = static_cast<uint32_t>(a->u);
  }

  tensors_.reserve(n_tensors);
  std::unordered_set<std::string_view> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo ti;
    if (!c.read_string(&ti.name)) return corrupt(p + "tensor #" + std::to_string(k) + ": name length exceeds the file");
    const std::string what = p + "tensor '" + quote(ti.name) + "'";
    if (ti.name.empty()) return corrupt(p + "tensor #" + std::to_string(k) + ": empty name");
    if (!names.insert(ti.name).second) return corrupt(what + ": duplicate tensor name");
    if (!c.read(&ti.n_dims)) return corrupt(what + ": truncated");
    if (ti.n_dims == 0 || ti.n_dims > kMaxDims)
      return corrupt(what + ": " + std::to_string(ti.n_dims) + " dimensions (must be 1.." + std::to_string(kMaxDims) + ")");
    for (uint32_t d = 0; d < ti.n_dims; ++d) {
      if (!c.read(&ti.ne[d])) return corrupt(what + ": truncated dims");
      if (ti.ne[d] < 0) return corrupt(what + ": negative dimension " + std::to_string(ti.ne[d]));
    }
    uint32_t type;
    if (!c.read(&type) || !c.read(&ti.offset)) return corrupt(what + ": truncated");
    const DTypeInfo info = dtype_info(type);
    if (info.block_elems == 0) return corrupt(what + ": unknown tensor type " + std::to_string(type) + " (not supported by this build)");
    ti.type = static_cast<DType>(type);
    // Element count without overflow.
    uint64_t n_el = 1;
    for (int d = 0; d < 4; ++d) {
      const uint64_t e = static_cast<uint64_t>(ti.ne[d]);
      if (e != 0 && n_el > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / e)
        return corrupt(what + ": element count overflows");
      n_el *= e;
    }
    if (ti.ne[0] % info.block_elems != 0)
      return corrupt(what + ": row length " + std::to_string(ti.ne[0]) + " is not a multiple of " +
                     std::string(info.name) + "'s block size " + std::to_string(info.block_elems));
    const uint64_t n_blocks = n_el / info.block_elems;
    if (n_blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes) return corrupt(what + ": byte size overflows");
    ti.n_bytes = n_blocks * info.block_bytes;
    if (ti.offset % alignment_ != 0)
      return corrupt(what + ": data offset " + std::to_string(ti.offset) + " is not aligned to " + std::to_string(alignment_));
    tensors_.push_back(ti);
  }

  // Data section starts at the next multiple of the alignment.
  const uint64_t pos = c.pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty()) {
    if (data_offset_ > size_) return corrupt(p + "data section: starts past the end of the file (truncated?)");
    const uint64_t data_size = size_ - data_offset_;
    for (auto& ti : tensors_) {
      if (ti.offset > data_size || ti.n_bytes > data_size - ti.offset)
        return corrupt(p + "tensor '" + quote(ti.name) + "': data [" + std::to_string(ti.offset) + ", +" +
                       std::to_string(ti.n_bytes) + ") extends past the end of the file (truncated?)");
      ti.data = base_ + data_offset_ + ti.offset;
    }
    std::vector<const TensorInfo*> order;
    order.reserve(tensors_.size());
    for (auto& ti : tensors_) order.push_back(&ti);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < order.size(); ++k) {
      if (order[k - 1]->offset + order[k - 1]->n_bytes > order[k]->offset)
        return corrupt(p + "tensor '" + quote(order[k]->name) + "': data overlaps tensor '" + quote(order[k - 1]->name) + "'");
    }
  }
  return Status::ok();
}

Status File::open_parts() {
  if (!find(kKeySplitCount)) return Status::ok();
  const std::string p = path_ + ": ";
  const auto count = get_int(kKeySplitCount);
  if (!count || *count < 0 || *count > 65535)
    return corrupt(p + "key 'split.count': " + (count ? std::to_string(*count) : std::string("not an integer")) +
                   " (must be 0..65535)");
  if (*count <= 1) return Status::ok();  // merged files keep 'split.count' = 0
  const int n = static_cast<int>(*count);
  const std::string of_n = " of " + std::to_string(n);
  const auto no = get_int(kKeySplitNo);
  if (!no || *no < 0 || *no >= n)
    return corrupt(p + "key 'split.no': " + (no ? std::to_string(*no) : std::string("missing or not an integer")) +
                   " (must be 0.." + std::to_string(n - 1) + " for split.count " + std::to_string(n) + ")");
  if (*no != 0) {
    const std::string pre = split_prefix(path_, static_cast<int>(*no), n);
    return invalid_argument(p + "split part " + std::to_string(*no + 1) + of_n + ": open part 1" +
                            (pre.empty() ? std::string() : " (" + split_path(pre, 0, n) + ")") + " to load the model");
  }
  const auto n_total = get_int(kKeySplitTensorsCount);
  if (!n_total || *n_total < 0)
    return corrupt(p + "key 'split.tensors.count': missing or not a non-negative integer (split.count is " +
                   std::to_string(n) + ")");
  const std::string prefix = split_prefix(path_, 0, n);
  if (prefix.empty())
    return invalid_argument(p + "split part 1" + of_n + ": the file name does not end in " + split_path("", 0, n) +
                            ", so the other parts cannot be found");

  // Tensor name -> part holding it.
  std::unordered_map<std::string_view, int> owner;
  for (const auto& t : tensors_) owner.emplace(t.name, 0);
  for (int k = 1; k < n; ++k) {
    const std::string pp = split_path(prefix, k, n);
    const std::string part = "split part " + std::to_string(k + 1) + of_n;
    auto r = open_one(pp);
    if (!r) {
      if (r.status().code() == ErrorCode::kNotFound) return not_found(pp + ": " + part + ": missing (needed by " + path_ + ")");
      return Status(r.status().code(), r.status().message() + " (" + part + " of " + path_ + ")");
    }
    const File& f = *r.value();
    const auto c = f.get_int(kKeySplitCount), i = f.get_int(kKeySplitNo);
    if (!c || *c != n)
      return corrupt(pp + ": " + part + ": key 'split.count' is " + (c ? std::to_string(*c) : std::string("missing")) +
                     ", expected " + std::to_string(n) + " (a part of another split?)");
    if (!i || *i != k)
      return corrupt(pp + ": " + part + ": key 'split.no' is " + (i ? std::to_string(*i) : std::string("missing")) +
                     ", expected " + std::to_string(k) + " (a part of another split?)");
    for (TensorInfo ti : f.tensors_) {
      const auto [it, fresh] = owner.emplace(ti.name, k);
      if (!fresh)
        return corrupt(pp + ": tensor '" + quote(ti.name) + "': duplicate, also in split part " +
                       std::to_string(it->second + 1) + " (" + split_path(prefix, it->second, n) + ")");
      ti.part = static_cast<uint32_t>(k);
      tensors_.push_back(ti);
    }
    size_ += f.size_;
    parts_.push_back(std::move(r.value()));
  }
  if (tensors_.size() != static_cast<uint64_t>(*n_total))
    return corrupt(p + "key 'split.tensors.count': " + std::to_string(*n_total) + " tensors expected, " +
                   std::to_string(tensors_.size()) + " found in the " + std::to_string(n) + " parts");
  return Status::ok();
}

const Value* File::find(std::string_view key) const {
  for (const auto& kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const TensorInfo* File::tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::optional<uint64_t> File::get_uint(std::string_view key) const {
  const Value* v = find(key);
  if (!v || !v->is_int()) return std::nullopt;
  const bool is_signed = v->type == ValueType::INT8 || v->type == ValueType::INT16 || v->type == ValueType::INT32 ||
                         v->type == ValueType::INT64;
  if (is_signed && v->i < 0) return std::nullopt;
  return v->u;
}

std::optional<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v || !v->is_int()) return std::nullopt;
  if (v->type == ValueType::UINT64 && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return v->i;
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return v->f;
  if (v->is_int()) return static_cast<double>(v->i);
  return std::nullopt;
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::BOOL) return std::nullopt;
  return v->u != 0;
}

std::optional<std::string_view> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::STRING) return std::nullopt;
  return v->str;
}

const Value* File::get_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v || v->type != ValueType::ARRAY) return nullptr;
  return v;
}

}  // namespace tachyon::gguf
