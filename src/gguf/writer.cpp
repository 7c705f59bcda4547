#include "gguf/writer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

namespace tachyon::gguf {

namespace {

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  uint8_t tmp[sizeof(T)];
  std::memcpy(tmp, &v, sizeof(T));
  b.insert(b.end(), tmp, tmp + sizeof(T));
}

void put_str(std::vector<uint8_t>& b, std::string_view s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

void put_value(std::vector<uint8_t>& b, const Value& v) {
  switch (v.type) {
    case ValueType::UINT8: put<uint8_t>(b, static_cast<uint8_t>(v.u)); break;
    case ValueType::INT8: put<int8_t>(b, static_cast<int8_t>(v.i)); break;
    case ValueType::UINT16: put<uint16_t>(b, static_cast<uint16_t>(v.u)); break;
    case ValueType::INT16: put<int16_t>(b, static_cast<int16_t>(v.i)); break;
    case ValueType::UINT32: put<uint32_t>(b, static_cast<uint32_t>(v.u)); break;
    case ValueType::INT32: put<int32_t>(b, static_cast<int32_t>(v.i)); break;
    case ValueType::UINT64: put<uint64_t>(b, v.u); break;
    case ValueType::INT64: put<int64_t>(b, v.i); break;
    case ValueType::FLOAT32: put<float>(b, static_cast<float>(v.f)); break;
    case ValueType::FLOAT64: put<double>(b, v.f); break;
    case ValueType::BOOL: put<uint8_t>(b, v.u ? 1 : 0); break;
    case ValueType::STRING: put_str(b, v.str); break;
    case ValueType::ARRAY:
      put<uint32_t>(b, static_cast<uint32_t>(v.arr_type));
      put<uint64_t>(b, v.arr_count);
      if (v.arr_type == ValueType::STRING) {
        for (auto s : v.arr_strings) put_str(b, s);
      } else if (v.arr_type == ValueType::ARRAY) {
        for (const auto& e : v.arr_values) put_value(b, e);
      } else {
        const size_t n = v.arr_count * value_type_size(v.arr_type);
        b.insert(b.end(), v.arr_data, v.arr_data + n);
      }
      break;
  }
}

bool is_split_key(std::string_view key) {
  return key == kKeySplitNo || key == kKeySplitCount || key == kKeySplitTensorsCount;
}

}  // namespace

Writer::Kv& Writer::new_kv(const std::string& key, ValueType type) {
  kvs_.erase(std::remove_if(kvs_.begin(), kvs_.end(), [&](const Kv& kv) { return kv.key == key; }), kvs_.end());
  kvs_.push_back({key, {}});
  put<uint32_t>(kvs_.back().bytes, static_cast<uint32_t>(type));
  return kvs_.back();
}

void Writer::set_u16(const std::string& key, uint16_t v) { put<uint16_t>(new_kv(key, ValueType::UINT16).bytes, v); }
void Writer::set_u32(const std::string& key, uint32_t v) { put<uint32_t>(new_kv(key, ValueType::UINT32).bytes, v); }
void Writer::set_i32(const std::string& key, int32_t v) { put<int32_t>(new_kv(key, ValueType::INT32).bytes, v); }
void Writer::set_u64(const std::string& key, uint64_t v) { put<uint64_t>(new_kv(key, ValueType::UINT64).bytes, v); }
void Writer::set_f32(const std::string& key, float v) { put<float>(new_kv(key, ValueType::FLOAT32).bytes, v); }
void Writer::set_bool(const std::string& key, bool v) { put<uint8_t>(new_kv(key, ValueType::BOOL).bytes, v ? 1 : 0); }
void Writer::set_str(const std::string& key, const std::string& v) { put_str(new_kv(key, ValueType::STRING).bytes, v); }
void Writer::set_arr_str(const std::string& key, const std::vector<std::string>& v) {
  auto& b = new_kv(key, ValueType::ARRAY).bytes;
  put<uint32_t>(b, static_cast<uint32_t>(ValueType::STRING));
  put<uint64_t>(b, v.size());
  for (const auto& s : v) put_str(b, s);
}
void Writer::set_arr_f32(const std::string& key, const std::vector<float>& v) {
  auto& b = new_kv(key, ValueType::ARRAY).bytes;
  put<uint32_t>(b, static_cast<uint32_t>(ValueType::FLOAT32));
  put<uint64_t>(b, v.size());
  for (float x : v) put<float>(b, x);
}
void Writer::set_arr_i32(const std::string& key, const std::vector<int32_t>& v) {
  auto& b = new_kv(key, ValueType::ARRAY).bytes;
  put<uint32_t>(b, static_cast<uint32_t>(ValueType::INT32));
  put<uint64_t>(b, v.size());
  for (int32_t x : v) put<int32_t>(b, x);
}
void Writer::copy_kv(const std::string& key, const Value& v) { put_value(new_kv(key, v.type).bytes, v); }

Status Writer::check_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, size_t n_bytes) const {
  const DTypeInfo info = dtype_info(type);
  if (info.block_elems == 0) return invalid_argument("gguf writer: tensor '" + name + "': unknown type");
  if (ne.empty() || ne.size() > 4) return invalid_argument("gguf writer: tensor '" + name + "': 1 to 4 dims");
  if (ne[0] % info.block_elems != 0)
    return invalid_argument("gguf writer: tensor '" + name + "': row length not a multiple of the block size");
  int64_t n = 1;
  for (auto d : ne) n *= d;
  const size_t expect = static_cast<size_t>(n / info.block_elems) * info.block_bytes;
  if (n_bytes != expect)
    return invalid_argument("gguf writer: tensor '" + name + "': " + std::to_string(n_bytes) + " bytes, expected " +
                            std::to_string(expect));
  return Status::ok();
}

Status Writer::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t n_bytes) {
  TACHYON_RETURN_IF_ERROR(check_tensor(name, type, ne, n_bytes));
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, type, std::move(ne), std::vector<uint8_t>(p, p + n_bytes), nullptr, n_bytes});
  return Status::ok();
}

Status Writer::add_tensor_view(const std::string& name, DType type, std::vector<int64_t> ne, const void* data,
                               size_t n_bytes) {
  TACHYON_RETURN_IF_ERROR(check_tensor(name, type, ne, n_bytes));
  tensors_.push_back({name, type, std::move(ne), {}, static_cast<const uint8_t*>(data), n_bytes});
  return Status::ok();
}

Status Writer::add_file(const File& f) {
  for (const auto& kv : f.metadata()) copy_kv(std::string(kv.key), kv.value);
  for (const auto& t : f.tensors())
    TACHYON_RETURN_IF_ERROR(add_tensor_view(std::string(t.name), t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims),
                                            t.data, t.n_bytes));
  return Status::ok();
}

Status Writer::write_file(const std::string& path, const std::vector<const Kv*>& kvs, size_t first, size_t last) const {
  std::vector<uint8_t> head;
  put<uint32_t>(head, 0x46554747);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, last - first);
  put<uint64_t>(head, kvs.size());
  for (const Kv* kv : kvs) {
    put_str(head, kv->key);
    head.insert(head.end(), kv->bytes.begin(), kv->bytes.end());
  }
  uint64_t offset = 0;
  for (size_t i = first; i < last; ++i) {
    const Tensor& t = tensors_[i];
    put_str(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (auto d : t.ne) put<int64_t>(head, d);
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  while (head.size() % alignment_) head.push_back(0);

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return Status(ErrorCode::kIo, path + ": cannot create");
  auto write_all = [&](const void* p, size_t n) { return n == 0 || std::fwrite(p, 1, n, f.get()) == n; };
  bool ok = write_all(head.data(), head.size());
  static const uint8_t zeros[256] = {};
  for (size_t i = first; ok && i < last; ++i) {
    const Tensor& t = tensors_[i];
    ok = write_all(t.bytes(), t.n_bytes);
    size_t pad = (alignment_ - t.n_bytes % alignment_) % alignment_;
    while (ok && pad > 0) {
      const size_t k = std::min(pad, sizeof zeros);
      ok = write_all(zeros, k);
      pad -= k;
    }
  }
  ok = ok && std::fflush(f.get()) == 0;
  if (!ok) return Status(ErrorCode::kIo, path + ": write failed");
  return Status::ok();
}

Status Writer::write(const std::string& path) const {
  std::vector<const Kv*> kvs;
  bool has_alignment_key = false;
  for (const Kv& kv : kvs_) {
    kvs.push_back(&kv);
    has_alignment_key |= kv.key == "general.alignment";
  }
  Kv align{"general.alignment", {}};
  if (!has_alignment_key && alignment_ != 32) {
    put<uint32_t>(align.bytes, static_cast<uint32_t>(ValueType::UINT32));
    put<uint32_t>(align.bytes, alignment_);
    kvs.push_back(&align);
  }
  return write_file(path, kvs, 0, tensors_.size());
}

Result<std::vector<std::pair<size_t, size_t>>> Writer::plan_split(const SplitLimits& limits) const {
  if (limits.max_tensors < 0) return invalid_argument("gguf split: max tensors per part must not be negative");
  std::vector<std::pair<size_t, size_t>> parts;
  if (limits.no_tensor_first_split) parts.push_back({0, 0});
  parts.push_back({0, 0});
  uint64_t part_bytes = 0;  // tensor data of the open part
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const uint64_t nb = (tensors_[i].n_bytes + alignment_ - 1) / alignment_ * alignment_;
    auto& cur = parts.back();
    const size_t n_in = cur.second - cur.first;
    const bool full = (limits.max_tensors > 0 && n_in >= static_cast<size_t>(limits.max_tensors)) ||
                      (limits.max_bytes > 0 && part_bytes + nb > limits.max_bytes);
    if (full && n_in > 0) {
      parts.push_back({i, i});
      part_bytes = 0;
    }
    parts.back().second = i + 1;
    part_bytes += nb;
  }
  if (parts.size() > 65535)
    return invalid_argument("gguf split: " + std::to_string(parts.size()) + " parts needed, at most 65535 allowed");
  return parts;
}

Status Writer::write_split(const std::string& prefix, const SplitLimits& limits,
                           std::vector<std::string>* paths_out) const {
  auto plan = plan_split(limits);
  if (!plan) return plan.status();
  const auto& parts = plan.value();
  if (tensors_.size() > static_cast<size_t>(INT32_MAX))
    return invalid_argument("gguf split: too many tensors for 'split.tensors.count'");
  const int n = static_cast<int>(parts.size());

  Kv align{"general.alignment", {}};
  put<uint32_t>(align.bytes, static_cast<uint32_t>(ValueType::UINT32));
  put<uint32_t>(align.bytes, alignment_);
  bool has_alignment_key = false;
  for (const Kv& kv : kvs_) has_alignment_key |= kv.key == "general.alignment";
  // llama-gguf-split sets split.no, split.count (a placeholder), split.tensors.count, then
  // resets split.count, each set moving the key to the end: this is the order it writes.
  Kv no{std::string(kKeySplitNo), {}}, tensors_count{std::string(kKeySplitTensorsCount), {}},
      count{std::string(kKeySplitCount), {}};
  put<uint32_t>(tensors_count.bytes, static_cast<uint32_t>(ValueType::INT32));
  put<int32_t>(tensors_count.bytes, static_cast<int32_t>(tensors_.size()));
  put<uint32_t>(count.bytes, static_cast<uint32_t>(ValueType::UINT16));
  put<uint16_t>(count.bytes, static_cast<uint16_t>(n));

  if (paths_out) paths_out->clear();
  for (int k = 0; k < n; ++k) {
    std::vector<const Kv*> kvs;
    if (k == 0) {
      for (const Kv& kv : kvs_)
        if (!is_split_key(kv.key)) kvs.push_back(&kv);
    }
    // Every part needs the alignment it is laid out with; part 1 may carry it already.
    if (alignment_ != 32 && !(k == 0 && has_alignment_key)) kvs.push_back(&align);
    no.bytes.clear();
    put<uint32_t>(no.bytes, static_cast<uint32_t>(ValueType::UINT16));
    put<uint16_t>(no.bytes, static_cast<uint16_t>(k));
    kvs.push_back(&no);
    kvs.push_back(&tensors_count);
    kvs.push_back(&count);
    const std::string path = split_path(prefix, k, n);
    TACHYON_RETURN_IF_ERROR(write_file(path, kvs, parts[k].first, parts[k].second));
    if (paths_out) paths_out->push_back(path);
  }
  return Status::ok();
}

}  // namespace tachyon::gguf
