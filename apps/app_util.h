// Small helpers shared by the subcommands (flag parsing and error reporting only).
#pragma once
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"

namespace tachyon::apps {

// Prints "error: <message>" and returns the exit code for the status: 2 for bad input
// (invalid argument, missing or corrupt file, unsupported model), 1 otherwise.
inline int fail(const Status& st) {
  std::fprintf(stderr, "error: %s\n", st.message().c_str());
  switch (st.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kNotFound:
    case ErrorCode::kCorrupt:
    case ErrorCode::kUnsupported:
    case ErrorCode::kIo: return 2;
    default: return 1;
  }
}

inline Result<std::string> read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(ErrorCode::kNotFound, path + ": cannot open");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Help text of --attn-numerics (parsed by model::parse_decode_numerics).
constexpr const char* kAttnNumericsHelp =
    "decode attention numerics: auto (llama.cpp's bits below 128 tokens of context, f32 beyond), llama, f32";

// Help text of --kv-type (parsed by kv::parse_kv_type).
constexpr const char* kKvTypeHelp =
    "KV cache element type: f16 (default) or q8_0 (about half the bytes; attention then uses the f32 numerics)";

// "512M", "2G", "1.5GiB", "4096" (bytes) -> bytes.
inline Result<size_t> parse_size(const std::string& flag, const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  const std::string num = s.substr(0, i);
  std::string unit = s.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double v = 0;
  try {
    size_t used = 0;
    v = num.empty() ? -1 : std::stod(num, &used);
    if (used != num.size()) v = -1;
  } catch (...) {
    v = -1;
  }
  double mul = 0;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mul = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mul = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TIB") mul = 1024.0 * 1024 * 1024 * 1024;
  if (v <= 0 || mul == 0 || v * mul > 1e18)
    return invalid_argument(flag + ": '" + s + "' is not a size (examples: 512M, 2G, 1048576)");
  return static_cast<size_t>(v * mul);
}

// Help text of --mem-budget (run, serve, perf, logits).
constexpr const char* kMemBudgetHelp =
    "MoE models: keep the routed experts in a cache of this size (e.g. 2M, 512M, 40G), read from the file as "
    "needed; attention, norms, routers and embeddings stay resident (default: everything resident)";

inline int default_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

// Parses "1,2,3" (spaces allowed) into ids; rejects anything else.
inline Result<std::vector<int32_t>> parse_token_list(const std::string& s) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    if (i >= s.size()) break;
    size_t j = i;
    if (s[j] == '-') ++j;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i || (s[i] == '-' && j == i + 1) || (j < s.size() && s[j] != ',' && s[j] != ' '))
      return invalid_argument("token list: '" + s.substr(i, 20) + "' is not an integer id");
    if (j - i > 10) return invalid_argument("token list: '" + s.substr(i, j - i) + "' is out of range");
    const long long v = std::stoll(s.substr(i, j - i));
    if (v < INT32_MIN || v > INT32_MAX) return invalid_argument("token list: " + s.substr(i, j - i) + " is out of range");
    out.push_back(static_cast<int32_t>(v));
    i = j;
  }
  return out;
}

}  // namespace tachyon::apps
