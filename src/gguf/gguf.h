// GGUF v2/v3 reader: memory-mapped, zero-copy, fully validated.
//
// open() checks everything a consumer would otherwise trust: magic, version, counts
// against the file size, every string length, value types, array lengths, duplicate keys
// and tensor names, alignment, tensor dims against the type's block size, and that every
// tensor's bytes lie inside the data section without overlap. After a successful open()
// all views (strings, arrays, tensor data) point into the mapping and stay valid for the
// File's lifetime. Errors name the file, the key or tensor, and the problem.
//
// Split models (llama-gguf-split's PREFIX-00001-of-0000N.gguf): open() on part 1 opens
// and validates every other part by name and merges their tensors; see File::open.
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
  uint64_t offset = 0;     // relative to the data section of its part
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapping of its part
  uint32_t part = 0;              // 0-based split part holding the data (0 for single files)

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;
};

// Keys llama-gguf-split writes into every part.
inline constexpr std::string_view kKeySplitNo = "split.no";                    // u16, 0-based
inline constexpr std::string_view kKeySplitCount = "split.count";              // u16
inline constexpr std::string_view kKeySplitTensorsCount = "split.tensors.count";  // i32, over all parts

// Name of split part `split_no` (0-based) of `n_split`: "<prefix>-%05d-of-%05d.gguf".
std::string split_path(const std::string& prefix, int split_no, int n_split);
// The prefix of `path` when it is named as part `split_no` of `n_split`, else "".
std::string split_prefix(const std::string& path, int split_no, int n_split);

class File {
 public:
  // Maps and validates a file. On failure the Status message reads
  // "<path>: <key or tensor>: <problem>".
  //
  // A file whose 'split.count' is above 1 must be part 1 ('split.no' 0) and be named
  // PREFIX-00001-of-NNNNN.gguf; the other parts PREFIX-0000k-of-NNNNN.gguf are then
  // mapped and validated the same way, must carry the same 'split.count' and their own
  // 'split.no', and their tensors are appended to tensors() in part order (names unique
  // over all parts, total equal to part 1's 'split.tensors.count'). Metadata comes from
  // part 1 only; the parts stay mapped for the File's lifetime. Cost: one mmap per part.
  static Result<std::unique_ptr<File>> open(const std::string& path);
  // Validates an in-memory buffer (used by the fuzzer); `name` stands in for the path.
  // Single-buffer only: split keys are not followed, so a buffer declaring
  // 'split.count' > 1 parses as that one part with its own tensors.
  static Result<std::unique_ptr<File>> parse(const uint8_t* data, size_t size, std::string name);

  const std::string& path() const { return path_; }  // part 1 for split models
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // of part 1
  uint64_t file_size() const { return size_; }           // sum over all parts

  // Split parts: 1 for single files. part_path(0) == path().
  int n_parts() const { return 1 + static_cast<int>(parts_.size()); }
  const std::string& part_path(int i) const { return i == 0 ? path_ : parts_[i - 1]->path_; }

  const std::vector<KeyValue>& metadata() const { return kvs_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  const Value* find(std::string_view key) const;
  const TensorInfo* tensor(std::string_view name) const;
  // Where a tensor's data starts in its part's file (part_path(t.part)), for readers that
  // pread instead of touching the mapping (the expert cache).
  uint64_t tensor_file_offset(const TensorInfo& t) const {
    return (t.part == 0 ? data_offset_ : parts_[t.part - 1]->data_offset_) + t.offset;
  }

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
  static Result<std::unique_ptr<File>> open_one(const std::string& path);
  Status parse_all();
  Status open_parts();


  MappedFile map_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  std::vector<std::unique_ptr<File>> parts_;  // split parts 2..N, kept mapped
};

}  // namespace tachyon::gguf
