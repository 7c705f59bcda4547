// tachyon gen-model --preset NAME --type TYPE --vocab VOCAB.gguf -o FILE
// tachyon quantize IN.gguf OUT.gguf (TYPE | --budget SIZE) [--imatrix FILE]
#include <CLI/CLI.hpp>

#include <filesystem>
#include <map>
#include <regex>
#include <cstdio>

#include "app_util.h"
#include "model/quant_budget.h"
#include "base/clock.h"
#include "commands.h"
#include "model/quantize.h"

namespace tachyon::apps {

int cmd_gen_model(int argc, char** argv) {
  CLI::App app{"write a GGUF model with RANDOM weights at a real model's shape (for benchmarks)", "tachyon gen-model"};
  std::string preset, type = "Q4_0", vocab, out;
  uint64_t seed = 1;
  int threads = default_threads();
  bool list = false;
  app.add_option("--preset", preset, "tinyllama-1.1b, llama-3.2-1b, qwen2.5-0.5b, qwen3-0.6b, smollm2-135m, gemma2-2b, gemma3-270m, gemma3-1b, phi-4-mini, phi-3.5-mini (--list)");
  app.add_option("--type", type, "F32 F16 BF16 Q8_0 Q4_0 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M");
  app.add_option("--vocab", vocab, "GGUF file whose tokenizer metadata is copied (its vocabulary size wins)");
  app.add_option("-o,--output", out, "output GGUF file");
  app.add_option("--seed", seed, "weights seed");
  app.add_option("-t,--threads", threads, "threads")->check(CLI::Range(1, 1024));
  app.add_flag("--list", list, "list the presets");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (list) {
    for (const auto& p : model::presets())
      std::printf("%-16s %-6s n_embd %5d layers %3d heads %3d/%-2d head_dim %3d ff %5d vocab %6d\n", p.name.c_str(),
                  p.arch.c_str(), p.n_embd, p.n_layer, p.n_head, p.n_head_kv, p.head_dim, p.n_ff, p.n_vocab);
    return 0;
  }
  if (preset.empty() || out.empty()) return fail(invalid_argument("--preset and -o are required (see --list)"));
  auto t = model::parse_quant_target(type);
  if (!t) return fail(t.status());
  const double t0 = now_ms();
  if (Status st = model::generate_model(preset, vocab, t.value(), out, seed, threads); !st) return fail(st);
  std::fprintf(stderr, "wrote %s (%s, %s, RANDOM WEIGHTS) in %.1f s\n", out.c_str(), preset.c_str(), t->name.c_str(),
               (now_ms() - t0) / 1000);
  return 0;
}

int cmd_quantize(int argc, char** argv) {
  CLI::App app{"convert a GGUF model's weights to another type or mix", "tachyon quantize"};
  std::string in, out, type, imatrix_path, budget_arg;
  std::vector<std::string> overrides;
  int threads = default_threads();
  bool verbose = false;
  app.add_option("input", in, "input GGUF (F32/F16/BF16, or any supported type)")->required();
  app.add_option("output", out, "output GGUF")->required();
  app.add_option("type", type, "a type or mix: " + model::quant_target_names() + " (not with --budget)");
  app.add_option("--budget", budget_arg,
                 "file size to fit, e.g. 3.5G: a type per tensor (Q2_K..Q8_0) chosen to minimise the products' "
                 "expected squared error (weighted by --imatrix when given) within it");
  app.add_option("--tensor-type", overrides,
                 "PATTERN=TYPE: tensors whose name matches the regex PATTERN get TYPE (first match wins; repeatable)");
  app.add_option("--imatrix", imatrix_path,
                 "importance matrix GGUF from llama-imatrix: importance-weighted fits, as llama-quantize --imatrix");
  app.add_option("-t,--threads", threads, "threads")->check(CLI::Range(1, 1024));
  app.add_flag("-v,--verbose", verbose, "print each tensor's old and new type");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (type.empty() == budget_arg.empty())
    return fail(invalid_argument("give a TYPE or --budget SIZE (one of them)"));
  model::QuantizeOptions opt;
  opt.n_threads = threads;
  for (const auto& spec : overrides) {
    auto o = model::parse_tensor_type_override(spec);
    if (!o) return fail(o.status());
    opt.overrides.push_back(std::move(o.value()));
  }
  model::Imatrix imatrix;
  if (!imatrix_path.empty()) {
    auto m = model::load_imatrix(imatrix_path);
    if (!m) return fail(m.status());
    imatrix = std::move(m.value());
    opt.imatrix = &imatrix;
    std::fprintf(stderr, "imatrix %s: %zu entries, %u chunks\n", imatrix_path.c_str(), imatrix.entries.size(),
                 imatrix.chunk_count);
  }
  if (verbose) opt.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  const double t0 = now_ms();
  if (!budget_arg.empty()) {
    auto budget = parse_size("--budget", budget_arg);
    if (!budget) return fail(budget.status());
    if (!overrides.empty()) return fail(invalid_argument("--budget chooses every tensor's type: no --tensor-type with it"));
    auto plan = model::plan_budget_mix(in, budget.value(), opt.imatrix, threads);
    if (!plan) return fail(plan.status());
    std::map<std::string, std::pair<int, size_t>> by;
    size_t most = 0;
    std::string dominant = "Q4_K";
    for (const auto& c : plan->tensors) {
      auto& e = by[std::string(dtype_info(c.type).name)];
      ++e.first;
      e.second += c.bytes;
      if (e.second > most) {
        most = e.second;
        dominant = std::string(dtype_info(c.type).name);
      }
      model::TensorTypeOverride o;
      std::string pat = "^";
      for (char ch : c.name) {
        if (std::string("\\^$.|?*+()[]{}").find(ch) != std::string::npos) pat += '\\';
        pat += ch;
      }
      pat += "$";
      o.pattern = pat;
      o.re = std::regex(pat);
      o.type = c.type;
      opt.overrides.push_back(std::move(o));
    }
    std::fprintf(stderr, "budget %.2f MiB: mix", budget.value() / 1048576.0);
    for (const auto& [name, e] : by) std::fprintf(stderr, " | %s: %d tensors, %.2f MiB", name.c_str(), e.first, e.second / 1048576.0);
    std::fprintf(stderr, " | estimated file %.2f MiB, proxy error %.4g\n", plan->total_bytes / 1048576.0, plan->error);
    auto t = model::parse_quant_target(dominant == "Q8_0" ? "Q8_0" : dominant.substr(0, 2) + "_K_M");
    if (!t) t = model::parse_quant_target("Q4_K_M");
    if (Status st = model::quantize_file(in, out, t.value(), opt); !st) return fail(st);
    std::error_code ec;
    const auto size = std::filesystem::file_size(out, ec);
    std::fprintf(stderr, "wrote %s (%.2f MiB, budget %.2f MiB) in %.1f s\n", out.c_str(), size / 1048576.0,
                 budget.value() / 1048576.0, (now_ms() - t0) / 1000);
    if (!ec && size > budget.value())
      return fail(Status(ErrorCode::kInternal, "the file came out " + std::to_string(size - budget.value()) + " bytes over the budget"));
    return 0;
  }
  auto t = model::parse_quant_target(type);
  if (!t) return fail(t.status());
  if (Status st = model::quantize_file(in, out, t.value(), opt); !st) return fail(st);
  std::fprintf(stderr, "wrote %s (%s) in %.1f s\n", out.c_str(), t->name.c_str(), (now_ms() - t0) / 1000);
  return 0;
}

}  // namespace tachyon::apps
