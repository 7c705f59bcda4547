// GGUF v3 writer: collects metadata and tensors in memory, then writes one file with
// the standard layout (header, metadata, tensor infos, aligned data). Files it writes
// are readable by llama.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "gguf/gguf.h"

namespace tachyon::gguf {

class Writer {
 public:
  explicit Writer(uint32_t alignment = 32) : alignment_(alignment) {}

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
  Status add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data, size_t n_bytes);

  Status write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  std::vector<uint8_t> meta_;  // serialized key/value pairs
  uint64_t n_kv_ = 0;
  std::vector<Tensor> tensors_;
  uint32_t alignment_;
  bool has_alignment_key_ = false;
};

}  // namespace tachyon::gguf
