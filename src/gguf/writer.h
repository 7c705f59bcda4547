// GGUF v3 writer: collects metadata and tensors in memory, then writes one file with
// the standard layout (header, metadata, tensor infos, aligned data), or a split into
// parts laid out as llama-gguf-split lays them out. Files it writes are readable by
// llama.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "gguf/gguf.h"

namespace tachyon::gguf {

// Limits of one split part (llama-gguf-split's --split-max-tensors / --split-max-size).
// A part is closed before a tensor that would pass either limit; a tensor larger than
// max_bytes on its own gets a part to itself (llama-gguf-split fails when that tensor
// is the first one).
struct SplitLimits {
  int max_tensors = 0;                 // tensors per part; 0: no limit
  uint64_t max_bytes = 0;              // tensor data per part, each padded to the alignment; 0: no limit
  bool no_tensor_first_split = false;  // part 1 holds the metadata only
};

class Writer {
 public:
  explicit Writer(uint32_t alignment = 32) : alignment_(alignment) {}

  // Setting a key that is already set removes it and appends the new value (as gguf's
  // gguf_set_val_* does), so a key is written once.
  void set_u16(const std::string& key, uint16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_str(const std::string& key, const std::string& v);
  void set_arr_str(const std::string& key, const std::vector<std::string>& v);
  void set_arr_f32(const std::string& key, const std::vector<float>& v);
  void set_arr_i32(const std::string& key, const std::vector<int32_t>& v);
  // Copies a metadata value from a reader (any type, arrays included).
  void copy_kv(const std::string& key, const Value& v);

  // ne[0] is the innermost dimension; data must hold exactly the tensor's bytes.
  // Copies the data.
  Status add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t n_bytes);
  // Keeps only the pointer: data must stay valid until the last write.
  Status add_tensor_view(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t n_bytes);
  // All of f's metadata (in order) and views of all its tensors; f must outlive the writes.
  Status add_file(const File& f);

  Status write(const std::string& path) const;

  // Tensor index ranges [first, last) of the parts a split under `limits` would write,
  // in order. Fails when a limit is invalid or the split needs more than 65535 parts.
  Result<std::vector<std::pair<size_t, size_t>>> plan_split(const SplitLimits& limits) const;
  // Writes split_path(prefix, k, n) for k = 0..n-1 (n >= 1): part 1 holds all metadata,
  // every part gets 'split.no', 'split.tensors.count' and 'split.count' appended (earlier
  // values of these keys dropped) and its own tensors. With alignment 32 the files are
  // byte-identical to llama-gguf-split's for the same limits. paths_out may be null.
  Status write_split(const std::string& prefix, const SplitLimits& limits, std::vector<std::string>* paths_out) const;

 private:
  struct Kv {
    std::string key;
    std::vector<uint8_t> bytes;  // value type (u32) and value, serialized
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> owned;      // add_tensor's copy
    const uint8_t* view = nullptr;   // add_tensor_view's data
    size_t n_bytes = 0;
    const uint8_t* bytes() const { return view ? view : owned.data(); }
  };
  Kv& new_kv(const std::string& key, ValueType type);
  Status check_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne, size_t n_bytes) const;
  // One file with the given key/value pairs and tensors [first, last).
  Status write_file(const std::string& path, const std::vector<const Kv*>& kvs, size_t first, size_t last) const;

  std::vector<Kv> kvs_;  // in the order written
  std::vector<Tensor> tensors_;
  uint32_t alignment_;
};

}  // namespace tachyon::gguf
