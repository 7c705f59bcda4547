// tachyon gguf-split: split a GGUF model into parts, or merge the parts back into one
// file, with llama-gguf-split's flags and file layout.
//   tachyon gguf-split [--split] [--split-max-tensors N | --split-max-size N(K|M|G)]
//                      [--no-tensor-first-split] [--dry-run] IN.gguf OUT_PREFIX
//   tachyon gguf-split --merge [--dry-run] IN-00001-of-0000N.gguf OUT.gguf
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "app_util.h"
#include "commands.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace tachyon::apps {

namespace {

// "100M" -> 100,000,000: a positive integer and a decimal unit K, M or G (llama-gguf-split
// takes M and G).
Result<uint64_t> parse_size(const std::string& s) {
  const auto bad = [&] { return invalid_argument("--split-max-size: '" + s + "' is not a size like 500K, 100M or 2G"); };
  if (s.size() < 2 || s.size() > 12) return bad();
  uint64_t n = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return bad();
    n = n * 10 + static_cast<uint64_t>(s[i] - '0');
  }
  uint64_t unit = 0;
  switch (s.back()) {
    case 'K': unit = 1000; break;
    case 'M': unit = 1000 * 1000; break;
    case 'G': unit = 1000 * 1000 * 1000; break;
    default: return bad();
  }
  if (n == 0) return invalid_argument("--split-max-size: must be positive");
  return n * unit;
}

int split(const std::string& in, const std::string& out_prefix, const gguf::SplitLimits& limits, bool dry_run) {
  auto f = gguf::File::open(in);
  if (!f) return fail(f.status());
  const gguf::File& file = *f.value();
  gguf::Writer w(file.alignment());
  if (Status st = w.add_file(file); !st) return fail(st);
  auto plan = w.plan_split(limits);
  if (!plan) return fail(plan.status());
  const auto& parts = plan.value();
  const int n = static_cast<int>(parts.size());
  std::printf("%s: %zu tensors -> %d parts\n", in.c_str(), file.tensors().size(), n);
  for (int k = 0; k < n; ++k) {
    uint64_t bytes = 0;
    for (size_t i = parts[k].first; i < parts[k].second; ++i) bytes += file.tensors()[i].n_bytes;
    std::printf("  %s: %zu tensors, %.2f MB of tensor data\n", gguf::split_path(out_prefix, k, n).c_str(),
                parts[k].second - parts[k].first, bytes / 1e6);
  }
  if (dry_run) return 0;
  if (Status st = w.write_split(out_prefix, limits, nullptr); !st) return fail(st);
  std::printf("wrote %d parts\n", n);
  return 0;
}

int merge(const std::string& in, const std::string& out, bool dry_run) {
  if (std::filesystem::exists(out)) return fail(invalid_argument(out + ": already exists (not overwritten)"));
  auto f = gguf::File::open(in);
  if (!f) return fail(f.status());
  const gguf::File& file = *f.value();
  const auto count = file.get_int(gguf::kKeySplitCount);
  if (!count || *count < 1)
    return fail(invalid_argument(in + ": key 'split.count': " + (count ? std::to_string(*count) : std::string("missing")) +
                                 " (not part 1 of a split)"));
  gguf::Writer w(file.alignment());
  if (Status st = w.add_file(file); !st) return fail(st);
  // As llama-gguf-split --merge: split.count 0 marks a merged file (it is moved last).
  w.set_u16(std::string(gguf::kKeySplitCount), 0);
  std::printf("%s: %d parts, %zu tensors -> %s\n", in.c_str(), file.n_parts(), file.tensors().size(), out.c_str());
  if (dry_run) return 0;
  if (Status st = w.write(out); !st) return fail(st);
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace

int cmd_gguf_split(int argc, char** argv) {
  CLI::App app{"split a GGUF model into parts PREFIX-00001-of-0000N.gguf..., or merge parts into one file "
               "(llama-gguf-split's flags and layout)",
               "tachyon gguf-split"};
  bool do_split = false, do_merge = false, dry_run = false;
  gguf::SplitLimits limits;
  int max_tensors = 128;
  std::string max_size, in, out;
  app.add_flag("--split", do_split, "split IN into OUT-00001-of-0000N.gguf ... (the default)");
  app.add_flag("--merge", do_merge, "merge the parts of IN (part 1) into the single file OUT");
  auto* o_tensors = app.add_option("--split-max-tensors", max_tensors, "max tensors in each part (default 128)")
                        ->check(CLI::Range(1, 1 << 30));
  auto* o_size = app.add_option("--split-max-size", max_size,
                                "max tensor data in each part: N followed by K, M or G (decimal units)");
  o_tensors->excludes(o_size);
  app.add_flag("--no-tensor-first-split", limits.no_tensor_first_split, "part 1 holds the metadata only");
  app.add_flag("--dry-run", dry_run, "print the plan, write nothing");
  app.add_option("in", in, "input GGUF file (part 1 of a split with --merge)")->required();
  app.add_option("out", out, "output prefix (split) or output file (merge)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (do_split && do_merge) return fail(invalid_argument("--split and --merge exclude each other"));
  if (do_merge) {
    if (o_tensors->count() || o_size->count() || limits.no_tensor_first_split)
      return fail(invalid_argument("--merge takes no split limits"));
    return merge(in, out, dry_run);
  }
  if (o_size->count()) {
    auto b = parse_size(max_size);
    if (!b) return fail(b.status());
    limits.max_bytes = b.value();
  } else {
    limits.max_tensors = max_tensors;
  }
  return split(in, out, limits, dry_run);
}

}  // namespace tachyon::apps
