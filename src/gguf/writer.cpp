#include "gguf/writer.h"

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

}  // namespace

#define TACHYON_KV_HEADER(type)                        \
  do {                                                 \
    put_str(meta_, key);                               \
    put<uint32_t>(meta_, static_cast<uint32_t>(type)); \
    ++n_kv_;                                           \
  } while (0)

void Writer::set_u32(const std::string& key, uint32_t v) {
  if (key == "general.alignment") has_alignment_key_ = true;
  TACHYON_KV_HEADER(ValueType::UINT32);
  put<uint32_t>(meta_, v);
}
void Writer::set_i32(const std::string& key, int32_t v) {
  TACHYON_KV_HEADER(ValueType::INT32);
  put<int32_t>(meta_, v);
}
void Writer::set_u64(const std::string& key, uint64_t v) {
  TACHYON_KV_HEADER(ValueType::UINT64);
  put<uint64_t>(meta_, v);
}
void Writer::set_f32(const std::string& key, float v) {
  TACHYON_KV_HEADER(ValueType::FLOAT32);
  put<float>(meta_, v);
}
void Writer::set_bool(const std::string& key, bool v) {
  TACHYON_KV_HEADER(ValueType::BOOL);
  put<uint8_t>(meta_, v ? 1 : 0);
}
void Writer::set_str(const std::string& key, const std::string& v) {
  TACHYON_KV_HEADER(ValueType::STRING);
  put_str(meta_, v);
}
void Writer::set_arr_str(const std::string& key, const std::vector<std::string>& v) {
  TACHYON_KV_HEADER(ValueType::ARRAY);
  put<uint32_t>(meta_, static_cast<uint32_t>(ValueType::STRING));
  put<uint64_t>(meta_, v.size());
  for (const auto& s : v) put_str(meta_, s);
}
void Writer::set_arr_f32(const std::string& key, const std::vector<float>& v) {
  TACHYON_KV_HEADER(ValueType::ARRAY);
  put<uint32_t>(meta_, static_cast<uint32_t>(ValueType::FLOAT32));
  put<uint64_t>(meta_, v.size());
  for (float x : v) put<float>(meta_, x);
}
void Writer::set_arr_i32(const std::string& key, const std::vector<int32_t>& v) {
  TACHYON_KV_HEADER(ValueType::ARRAY);
  put<uint32_t>(meta_, static_cast<uint32_t>(ValueType::INT32));
  put<uint64_t>(meta_, v.size());
  for (int32_t x : v) put<int32_t>(meta_, x);
}
void Writer::copy_kv(const std::string& key, const Value& v) {
  if (key == "general.alignment") has_alignment_key_ = true;
  TACHYON_KV_HEADER(v.type);
  put_value(meta_, v);
}

#undef TACHYON_KV_HEADER

Status Writer::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t n_bytes) {
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
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_.push_back({name, type, std::move(ne), std::vector<uint8_t>(p, p + n_bytes)});
  return Status::ok();
}

Status Writer::write(const std::string& path) const {
  std::vector<uint8_t> head;
  put<uint32_t>(head, 0x46554747);
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  const bool add_align = !has_alignment_key_ && alignment_ != 32;
  put<uint64_t>(head, n_kv_ + (add_align ? 1 : 0));
  head.insert(head.end(), meta_.begin(), meta_.end());
  if (add_align) {
    put_str(head, "general.alignment");
    put<uint32_t>(head, static_cast<uint32_t>(ValueType::UINT32));
    put<uint32_t>(head, alignment_);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    put_str(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (auto d : t.ne) put<int64_t>(head, d);
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    offset += (t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  while (head.size() % alignment_) head.push_back(0);

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return Status(ErrorCode::kIo, path + ": cannot create");
  auto write_all = [&](const void* p, size_t n) { return std::fwrite(p, 1, n, f.get()) == n; };
  bool ok = write_all(head.data(), head.size());
  static const uint8_t zeros[256] = {};
  for (const auto& t : tensors_) {
    ok = ok && write_all(t.data.data(), t.data.size());
    size_t pad = (alignment_ - t.data.size() % alignment_) % alignment_;
    while (ok && pad > 0) {
      const size_t k = std::min(pad, sizeof zeros);
      ok = write_all(zeros, k);
      pad -= k;
    }
  }
  if (!ok) return Status(ErrorCode::kIo, path + ": write failed");
  return Status::ok();
}

}  // namespace tachyon::gguf
