// Blocks as llama.cpp's quantizer wrote them: the tensors of the mini-llama test models
// (../shared/data/models, made by llama-quantize from mini-llama-F16 without an importance
// matrix), read with gguf::File. For the kernel tests that check formats and kernels on
// real data besides random bytes, and quantizers against llama.cpp's output.
#pragma once
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "base/fp16.h"
#include "gguf/gguf.h"

namespace tachyon::test {

// The test model models/<file>.gguf, opened; throws what gguf::File::open reports.
inline std::unique_ptr<gguf::File> open_model(const std::string& file) {
  auto f = gguf::File::open(std::string(TACHYON_SHARED_DATA) + "/models/" + file + ".gguf");
  if (!f.is_ok()) throw std::runtime_error(f.status().message());
  return std::move(f.value());
}

// The bytes of every tensor of type t in models/<file>.gguf, concatenated in file order;
// empty when it holds none. Read once per (file, type) and kept for the whole run.
inline const std::vector<uint8_t>& real_blocks(const std::string& file, DType t) {
  static std::map<std::pair<std::string, DType>, std::vector<uint8_t>> cache;
  auto it = cache.find({file, t});
  if (it == cache.end()) {
    std::vector<uint8_t> blocks;
    const auto f = open_model(file);
    for (const gguf::TensorInfo& ti : f->tensors())
      if (ti.type == t) blocks.insert(blocks.end(), ti.data, ti.data + ti.n_bytes);
    it = cache.emplace(std::pair{file, t}, std::move(blocks)).first;
  }
  return it->second;
}

// ... in mini-llama-<t>, the model llama.cpp quantized to t.
inline const std::vector<uint8_t>& real_blocks(DType t) {
  return real_blocks("mini-llama-" + std::string(dtype_info(t).name), t);
}

// The weights of tensor `name` of mini-llama-F16, the source of the other models, as
// floats; empty when it has no such F16 tensor.
inline std::vector<float> f16_weights(std::string_view name) {
  static const auto f16 = open_model("mini-llama-F16");
  const gguf::TensorInfo* t = f16->tensor(name);
  if (t == nullptr || t->type != DType::F16) return {};
  std::vector<float> x(static_cast<size_t>(t->n_elements()));
  for (size_t i = 0; i < x.size(); ++i) {
    f16_t h;
    std::memcpy(&h, t->data + 2 * i, 2);
    x[i] = f16_to_f32(h);
  }
  return x;
}

}  // namespace tachyon::test
