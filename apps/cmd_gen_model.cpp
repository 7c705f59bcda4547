// tachyon gen-model --preset NAME --type TYPE --vocab VOCAB.gguf -o FILE
// tachyon quantize IN.gguf OUT.gguf TYPE [--imatrix FILE]
#include <CLI/CLI.hpp>
#include <cstdio>

#include "app_util.h"
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
  std::string in, out, type, imatrix_path;
  std::vector<std::string> overrides;
  int threads = default_threads();
  bool verbose = false;
  app.add_option("input", in, "input GGUF (F32/F16/BF16, or any supported type)")->required();
  app.add_option("output", out, "output GGUF")->required();
  app.add_option("type", type, "a type or mix: " + model::quant_target_names())->required();
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
  auto t = model::parse_quant_target(type);
  if (!t) return fail(t.status());
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
  if (Status st = model::quantize_file(in, out, t.value(), opt); !st) return fail(st);
  std::fprintf(stderr, "wrote %s (%s) in %.1f s\n", out.c_str(), t->name.c_str(), (now_ms() - t0) / 1000);
  return 0;
}

}  // namespace tachyon::apps
