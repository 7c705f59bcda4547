// Every subcommand is one function taking the arguments after its name (argv[0] is the
// subcommand name). It returns the process exit code: 0 success, 1 runtime failure,
// 2 bad input (unreadable/corrupt file, bad flags).
#pragma once

namespace tachyon::apps {

int cmd_inspect(int argc, char** argv);
int cmd_gguf_split(int argc, char** argv);
int cmd_chat_template(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_router(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_logits(int argc, char** argv);
int cmd_gen_model(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_perf(int argc, char** argv);
int cmd_perplexity(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_detokenize(int argc, char** argv);

}  // namespace tachyon::apps
