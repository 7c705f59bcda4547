// tachyon: one binary, one subcommand per job. Flags become config structs here; the
// logic lives in the libraries.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "commands.h"

namespace {

struct Command {
  const char* name;
  int (*fn)(int, char**);
  const char* help;
};

const Command kCommands[] = {
    {"run", tachyon::apps::cmd_run, "generate a continuation of a prompt"},
    {"serve", tachyon::apps::cmd_serve, "serve the OpenAI API (chat/completions, completions) over HTTP"},
    {"router", tachyon::apps::cmd_router, "route OpenAI API requests over serve workers (cache-aware)"},
    {"bench", tachyon::apps::cmd_bench, "load-test, compare and probe OpenAI-compatible endpoints"},
    {"logits", tachyon::apps::cmd_logits, "teacher-forced top-k logits for a token sequence (JSON)"},
    {"perf", tachyon::apps::cmd_perf, "prompt and generation speed (like llama-bench), GB/s and % of bandwidth"},
    {"perplexity", tachyon::apps::cmd_perplexity, "perplexity of a text (llama-perplexity's method), KL divergence from a base"},
    {"gen-model", tachyon::apps::cmd_gen_model, "write a random-weight GGUF model at a real model's shape"},
    {"quantize", tachyon::apps::cmd_quantize, "convert a GGUF model's weights to another type"},
    {"inspect", tachyon::apps::cmd_inspect, "print a GGUF file's metadata and tensor table"},
    {"gguf-split", tachyon::apps::cmd_gguf_split, "split a GGUF model into parts or merge them (llama-gguf-split's layout)"},
    {"chat-template", tachyon::apps::cmd_chat_template, "render a chat prompt from JSON messages with a chat template"},
    {"tokenize", tachyon::apps::cmd_tokenize, "print the token ids of a text"},
    {"detokenize", tachyon::apps::cmd_detokenize, "print the text of a token id sequence"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: tachyon <command> [options]\n\ncommands:\n");
  for (const auto& c : kCommands) std::fprintf(out, "  %-14s %s\n", c.name, c.help);
  std::fprintf(out, "\nrun 'tachyon <command> --help' for a command's options\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    usage(stdout);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (name == c.name) return c.fn(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "tachyon: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
