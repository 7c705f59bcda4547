#include "model/imatrix.h"

#include <cmath>
#include <cstring>

#include "gguf/gguf.h"

namespace tachyon::model {

namespace {

constexpr std::string_view kSumSuffix = ".in_sum2", kCountSuffix = ".counts";

bool strip_suffix(std::string_view name, std::string_view suffix, std::string* base) {
  if (name.size() <= suffix.size() || name.substr(name.size() - suffix.size()) != suffix) return false;
  *base = std::string(name.substr(0, name.size() - suffix.size()));
  return true;
}

// The n F32 values of tensor t, checked finite and >= 0.
Result<std::vector<float>> read_values(const std::string& path, const gguf::TensorInfo& t) {
  const std::string where = path + ": tensor '" + std::string(t.name) + "'";
  if (t.type != DType::F32) return corrupt(where + ": type " + std::string(dtype_info(t.type).name) + ", expected F32");
  std::vector<float> v(static_cast<size_t>(t.n_elements()));
  if (t.n_bytes < v.size() * sizeof(float)) return corrupt(where + ": truncated");
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || v[i] < 0)
      return corrupt(where + ": value " + std::to_string(v[i]) + " at " + std::to_string(i) +
                     " (must be finite and >= 0)");
  return v;
}

}  // namespace

Result<const float*> Imatrix::for_tensor(const std::string& name, int64_t n_cols, int64_t n_mat) const {
  const auto it = entries.find(name);
  if (it == entries.end()) return static_cast<const float*>(nullptr);
  const Entry& e = it->second;
  if (e.n_cols * e.n_mat == n_cols * n_mat) return e.values.data();
  // llama.cpp tolerates a mismatch only for the token embeddings (quantized unweighted)
  if (name == "token_embd.weight") return static_cast<const float*>(nullptr);
  return invalid_argument(path + ": the importance of tensor '" + name + "' has " + std::to_string(e.n_cols * e.n_mat) +
                          " values, the tensor needs " + std::to_string(n_cols * n_mat) + " (" + std::to_string(n_mat) +
                          " x " + std::to_string(n_cols) + " columns): the imatrix was made for another model");
}

Result<Imatrix> load_imatrix(const std::string& path) {
  auto f = gguf::File::open(path);
  if (!f) return Status(f.status().code(), path + ": not a GGUF imatrix: " + f.status().message());
  const gguf::File& in = *f.value();
  Imatrix m;
  m.path = path;
  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> pairs;  // sums, counts
  for (const auto& t : in.tensors()) {
    std::string base;
    if (strip_suffix(t.name, kSumSuffix, &base)) pairs[base].first = &t;
    else if (strip_suffix(t.name, kCountSuffix, &base)) pairs[base].second = &t;
  }
  if (pairs.empty())
    return corrupt(path + ": not a GGUF imatrix: no '<tensor>.in_sum2' / '<tensor>.counts' tensors");
  for (const char* key : {"imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size"})
    if (!in.find(key)) return corrupt(path + ": not a GGUF imatrix: key '" + std::string(key) + "' missing");
  if (const auto* ds = in.get_array("imatrix.datasets"))
    for (const auto s : ds->arr_strings) m.datasets.emplace_back(s);
  m.chunk_count = static_cast<uint32_t>(in.get_uint("imatrix.chunk_count").value_or(0));
  for (const auto& [name, p] : pairs) {
    const auto* sums_t = p.first;
    const auto* counts_t = p.second;
    if (!sums_t || !counts_t)
      return corrupt(path + ": tensor '" + name + (sums_t ? ".counts" : ".in_sum2") + "' missing (the other one is there)");
    auto sums = read_values(path, *sums_t);
    if (!sums) return sums.status();
    auto counts = read_values(path, *counts_t);
    if (!counts) return counts.status();
    const int64_t n_mat = static_cast<int64_t>(counts->size());
    if (n_mat == 0 || static_cast<int64_t>(sums->size()) % n_mat != 0 || sums_t->ne[0] * n_mat != sums_t->n_elements())
      return corrupt(path + ": tensor '" + name + ".in_sum2' " + sums_t->shape_string() + " does not match " +
                     std::to_string(n_mat) + " counts");
    Imatrix::Entry e;
    e.n_mat = n_mat;
    e.n_cols = static_cast<int64_t>(sums->size()) / n_mat;
    e.values.resize(sums->size());
    for (int64_t j = 0; j < n_mat; ++j) {
      // llama.cpp rounds the counts to integers; a matrix never used (an expert no token
      // reached) gets importance 1 everywhere
      const float count = static_cast<float>(std::lround((*counts)[j]));
      for (int64_t i = 0; i < e.n_cols; ++i) {
        const size_t k = static_cast<size_t>(j * e.n_cols + i);
        e.values[k] = count > 0 ? (*sums)[k] / count : 1.f;
      }
    }
    m.entries.emplace(name, std::move(e));
  }
  return m;
}

}  // namespace tachyon::model
