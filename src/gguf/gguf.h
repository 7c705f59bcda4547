// GGUF v2/v3 reader: memory-mapped, zero-copy, fully validated.
//
// open() checks everything a consumer would otherwise trust: magic, version, counts
// against the file size, every string length, value types, array lengths, duplicate keys
// and tensor names, alignment, tensor dims against the type's block size, and that every
// tensor's bytes lie inside the data section without overlap. After a successful open()
// all views (strings, arrays, tensor data) point into the mapping and stay valid for the
// File's lifetime. Errors name the file, the key or tensor, and the problem.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/mmap_file.h"
#include "base/status.h"

namespace tachyon::gguf {

enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view value_type_name(ValueType t);
// Size in bytes of a scalar value type; 0 for STRING and ARRAY.
size_t value_type_size(ValueType t);

// One metadata value. Scalars are decoded; arrays of scalars stay as a raw little-endian
// view into the file; arrays of strings are indexed once at open().
struct Value {
  ValueType type = ValueType::UINT8;
  uint64_t u = 0;      // unsigned integers and BOOL
  int64_t i = 0;       // signed integers (also set for unsigned ones that fit)
  double f = 0;        // FLOAT32 / FLOAT64
  std::string_view str;  // STRING

  // ARRAY
  ValueType arr_type = ValueType::UINT8;
  uint64_t arr_count = 0;
  const uint8_t* arr_data = nullptr;          // scalar element arrays
  std::vector<std::string_view> arr_strings;  // STRING element arrays
  std::vector<Value> arr_values;              // nested ARRAY element arrays

  bool is_int() const;
  bool is_float() const { return type == ValueType::FLOAT32 || type == ValueType::FLOAT64; }

  // Scalar element i of a numeric array converted to T. Precondition: i < arr_count and
  // arr_type is a scalar type.
  template <class T>
  T arr_at(uint64_t idx) const {
    const uint8_t* p = arr_data + idx * value_type_size(arr_type);
    switch (arr_type) {
      case ValueType::UINT8: return static_cast<T>(*p);
      case ValueType::INT8: return static_cast<T>(static_cast<int8_t>(*p));
      case ValueType::BOOL: return static_cast<T>(*p != 0);
      case ValueType::UINT16: { uint16_t v; std::memcpy(&v, p, 2); return static_cast<T>(v); }
      case ValueType::INT16: { int16_t v; std::memcpy(&v, p, 2); return static_cast<T>(v); }
      case ValueType::UINT32: { uint32_t v; std::memcpy(&v, p, 4); return static_cast<T>(v); }
      case ValueType::INT32: { int32_t v; std::memcpy(&v, p, 4); return static_cast<T>(v); }
      case ValueType::FLOAT32: { float v; std::memcpy(&v, p, 4); return static_cast<T>(v); }
      case ValueType::UINT64: { uint64_t v; std::memcpy(&v, p, 8); return static_cast<T>(v); }
      case ValueType::INT64: { int64_t v; std::memcpy(&v, p, 8); return static_cast<T>(v); }
      case ValueType::FLOAT64: { double v; std::memcpy(&v, p, 8); return static_cast<T>(v); }
      default: return T{};
    }
  }

  // Human-readable rendering (arrays abbreviated after max_elems elements).
  std::string to_string(size_t max_elems = 8) const;
};

struct KeyValue {
  std::string_view key;
  Value value;
};

struct TensorInfo {
  std::string_view name;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (contiguous) dimension
  DType type = DType::F32;
  uint64_t offset = 0;     // relative to the data section
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;
};

class File {
 public:
  // Maps and validates a file. On failure the Status message reads
  // "<path>: <key or tensor>: <problem>".
  static Result<std::unique_ptr<File>> open(const std::string& path);
  // Validates an in-memory buffer (used by the fuzzer); `name` stands in for the path.
  static Result<std::unique_ptr<File>> parse(const uint8_t* data, size_t size, std::string name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t file_size() const { return size_; }

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* find(std::string_view key) const;
  const TensorInfo* tensor(std::string_view name) const;

  // Typed look-ups. Integer getters accept any integer type whose value fits; float
  // getters accept floats and integers. nullopt when absent or of another kind.
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  // Array value (any element type), nullptr when absent or not an array.
  const Value* get_array(std::string_view key) const;

 private:
  File() = default;
  Status parse_all();

  MappedFile map_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
};

}  // namespace tachyon::gguf
