// Shared helpers for the tokenizer tests: loading vocabularies from ../shared/data and
// reading llama.cpp's .inp/.out golden pairs.
#pragma once
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::tok::testing {

inline std::string data_dir() { return TACHYON_SHARED_DATA; }
inline std::string vocab_path(const std::string& name) {
  return data_dir() + "/tokenizer/ggml-vocab-" + name + ".gguf";
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Loads a tokenizer (and keeps the GGUF mapping alive for the caller's scope).
struct Loaded {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tok;
};

inline Loaded load(const std::string& path) {
  Loaded l;
  auto f = gguf::File::open(path);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  if (!f.is_ok()) return l;
  l.file = std::move(f.value());
  auto t = Tokenizer::from_gguf(*l.file);
  EXPECT_TRUE(t.is_ok()) << t.status().message();
  if (t.is_ok()) l.tok = std::move(t.value());
  return l;
}

// Cached per path: vocabularies are large and tests are read-only users.
inline const Tokenizer* cached(const std::string& name_or_path) {
  static std::vector<std::pair<std::string, Loaded>> cache;
  for (auto& [k, v] : cache) {
    if (k == name_or_path) return v.tok.get();
  }
  const std::string path = name_or_path.find('/') == std::string::npos ? vocab_path(name_or_path) : name_or_path;
  cache.emplace_back(name_or_path, load(path));
  return cache.back().second.tok.get();
}

// llama.cpp's test-tokenizer-0 format: strings separated by "\n__ggml_vocab_test__\n".
inline std::vector<std::string> read_inp(const std::string& path) {
  const std::string raw = read_file(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) break;
    out.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  return out;
}

// One line of space-separated ids per string.
inline std::vector<std::vector<int32_t>> read_out(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ss >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

inline std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

inline const std::vector<std::string>& golden_vocabs() {
  static const std::vector<std::string> names = {"baichuan", "bert-bge", "deepseek-coder", "deepseek-llm",
                                                 "falcon",   "gpt-2",    "gpt-neox",       "llama-spm",
                                                 "mpt",      "phi-3",    "refact",         "starcoder"};
  return names;
}

}  // namespace tachyon::tok::testing
