// tachyon inspect FILE: metadata and tensor table, human-readable.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "commands.h"
#include "gguf/gguf.h"

namespace tachyon::apps {

int cmd_inspect(int argc, char** argv) {
  CLI::App app{"print a GGUF file's metadata and tensor table", "tachyon inspect"};
  std::string path;
  size_t max_elems = 8;
  app.add_option("file", path, "GGUF file")->required();
  app.add_option("--max-array", max_elems, "array elements to show");
  bool checksums = false;
  app.add_flag("--checksums", checksums,
               "add each tensor's FNV-1a 64 checksum of its data, and one over all tensors (compare two files' weights)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto f = gguf::File::open(path);
  if (!f) {
    std::fprintf(stderr, "error: %s\n", f.status().message().c_str());
    return 2;
  }
  const auto& file = *f.value();
  std::printf("file: %s\nGGUF version %u, %zu metadata keys, %zu tensors, alignment %u, data at %llu of %llu bytes\n\n",
              path.c_str(), file.version(), file.metadata().size(), file.tensors().size(), file.alignment(),
              static_cast<unsigned long long>(file.data_offset()), static_cast<unsigned long long>(file.file_size()));
  std::printf("metadata:\n");
  for (const auto& kv : file.metadata()) {
    std::printf("  %-48.*s %s\n", static_cast<int>(kv.key.size()), kv.key.data(), kv.value.to_string(max_elems).c_str());
  }
  std::printf("\ntensors:\n  %-36s %-6s %-24s %12s %12s%s\n", "name", "type", "shape", "offset", "bytes",
              checksums ? "  fnv1a64" : "");
  auto fnv = [](const uint8_t* p, uint64_t n, uint64_t h) {
    for (uint64_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
  };
  uint64_t all = 0xcbf29ce484222325ull;
  std::map<std::string, std::pair<size_t, uint64_t>> by_type;
  uint64_t total = 0;
  for (const auto& t : file.tensors()) {
    const std::string type_name(dtype_info(t.type).name);
    std::printf("  %-36.*s %-6s %-24s %12llu %12llu", static_cast<int>(t.name.size()), t.name.data(), type_name.c_str(),
                t.shape_string().c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.n_bytes));
    if (checksums) {
      std::printf("  %016llx", static_cast<unsigned long long>(fnv(t.data, t.n_bytes, 0xcbf29ce484222325ull)));
      all = fnv(reinterpret_cast<const uint8_t*>(t.name.data()), t.name.size(), all);
      all = fnv(t.data, t.n_bytes, all);
    }
    std::printf("\n");
    by_type[type_name].first++;
    by_type[type_name].second += t.n_bytes;
    total += t.n_bytes;
  }
  std::printf("\ntensor bytes by type:\n");
  for (const auto& [k, v] : by_type)
    std::printf("  %-6s %4zu tensors %10.2f MiB\n", k.c_str(), v.first, v.second / 1048576.0);
  std::printf("  total  %4zu tensors %10.2f MiB\n", file.tensors().size(), total / 1048576.0);
  if (checksums) std::printf("tensor data checksum (names and bytes, in order): %016llx\n", static_cast<unsigned long long>(all));
  return 0;
}

}  // namespace tachyon::apps
