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
  std::printf("\ntensors:\n  %-36s %-6s %-24s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
  std::map<std::string, std::pair<size_t, uint64_t>> by_type;
  uint64_t total = 0;
  for (const auto& t : file.tensors()) {
    const std::string type_name(dtype_info(t.type).name);
    std::printf("  %-36.*s %-6s %-24s %12llu %12llu\n", static_cast<int>(t.name.size()), t.name.data(), type_name.c_str(),
                t.shape_string().c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.n_bytes));
    by_type[type_name].first++;
    by_type[type_name].second += t.n_bytes;
    total += t.n_bytes;
  }
  std::printf("\ntensor bytes by type:\n");
  for (const auto& [k, v] : by_type)
    std::printf("  %-6s %4zu tensors %10.2f MiB\n", k.c_str(), v.first, v.second / 1048576.0);
  std::printf("  total  %4zu tensors %10.2f MiB\n", file.tensors().size(), total / 1048576.0);
  return 0;
}

}  // namespace tachyon::apps
