// tachyon serve -m FILE [--host 127.0.0.1] [--port 8080] [-t THREADS] [--ctx N]
//   [--max-batch-tokens N] [--kv-pages N | --kv-mem SIZE] [--max-queue N] [--api-key KEY ...]
//   [--name NAME] [--kv-host-mem SIZE] [--kv-disk DIR [--kv-disk-size SIZE]] [--kv-write-through N]
//   [--role colocated|prefill|decode]   (prefill/decode disaggregation behind `tachyon router
//                                        --prefill URL --decode URL`; server/server.h)
// An OpenAI-compatible HTTP server over the engine. Prints "listening on http://HOST:PORT"
// on stderr once it accepts connections (--port 0 picks a free port). SIGINT/SIGTERM stop
// it: in-flight requests are cancelled and connections closed.
#include <CLI/CLI.hpp>
#include <malloc.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "app_util.h"
#include "chat/chat_template.h"
#include "commands.h"
#include "engine/engine.h"
#include "server/engine_backend.h"
#include "server/server.h"

namespace tachyon::apps {

int cmd_serve(int argc, char** argv) {
  CLI::App app{"serve the OpenAI API over HTTP", "tachyon serve"};
  std::string path, host = "127.0.0.1", kv_mem, name, max_body = "8M", kv_host_mem, kv_disk_size = "20G", mem_budget;
  int port = 8080, io_threads = 2, read_timeout_ms = 0;
  engine::EngineConfig ec;
  ec.n_threads = default_threads();
  // Speculation where it pays: auto measures each drafter against plain steps per batch
  // size and drafts nothing where nothing pays (outputs are the same either way).
  ec.spec_mode = spec::Mode::kAuto;
  std::vector<std::string> api_keys;
  app.add_option("-m,--model", path, "GGUF model file");
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "TCP port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("-t,--threads", ec.n_threads, "compute threads")->check(CLI::Range(1, 1024));
  app.add_option_function<std::string>(
         "--attn-numerics", [&](const std::string& v) { model::parse_decode_numerics(v, &ec.decode_numerics); },
         kAttnNumericsHelp)
      ->check(CLI::IsMember({"auto", "llama", "f32"}));
  app.add_option_function<std::string>(
         "--kv-type", [&](const std::string& v) { kv::parse_kv_type(v, &ec.kv_type); }, kKvTypeHelp)
      ->check(CLI::IsMember({"f16", "q8_0"}));
  app.add_option("-c,--ctx", ec.n_ctx, "tokens per sequence (default: the model's, at most 8192)")
      ->check(CLI::Range(0, 1 << 24));
  app.add_option("--max-batch-tokens", ec.max_batch_tokens, "tokens per engine step (decode + prefill chunks)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--prefill-batch-target", ec.prefill_batch_target,
                 "prompt tokens per step after which other prompts wait a step (shortest first; lower = earlier "
                 "first tokens, higher = fewer steps)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  auto* pages_opt = app.add_option("--kv-pages", ec.kv_pages, "KV cache pages (16 tokens each)")->check(CLI::Range(1, 1 << 30));
  app.add_option("--kv-mem", kv_mem, "KV cache memory, e.g. 512M or 2G (default: 4 full contexts)")->excludes(pages_opt);
  app.add_option("--kv-host-mem", kv_host_mem,
                 "host RAM for KV pages evicted from the pool (tier l2), e.g. 4G; 0 = none (default: twice the pool)");
  app.add_option("--kv-disk", ec.kv_disk_dir,
                 "directory for KV page files (tier l3): prefixes survive memory pressure and restarts");
  app.add_option("--kv-disk-size", kv_disk_size, "size cap of --kv-disk, e.g. 20G (least recently used files go first)")
      ->capture_default_str();
  app.add_option("--kv-write-through", ec.kv_write_through,
                 "write a cached page to --kv-disk at its N-th reuse (0: only when evicted or at shutdown)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--max-running", ec.max_running, "sequences decoding at once")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--max-queue", ec.max_queue, "waiting requests beyond which the server answers 429")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--spec", [&](const std::string& v) { spec::parse_mode(v, &ec.spec_mode); },
         "speculative decoding: off, ngram (draft from n-gram lookup whenever it finds a continuation), draft "
         "(the --draft model drafts --spec-max tokens), auto (the draft model if given, else n-gram lookup, at the "
         "length that maximises measured tokens per second; none where it does not pay); default auto")
      ->check(CLI::IsMember({"off", "ngram", "draft", "auto"}));
  app.add_option("--draft", ec.draft_path,
                 "draft model for speculative decoding: a smaller GGUF with the same vocabulary (its KV shares the "
                 "target's pages)")
      ->check(CLI::ExistingFile);
  app.add_option("--spec-max", ec.spec_max, "draft tokens per step at most")->check(CLI::Range(0, 16))->capture_default_str();
  app.add_option("--api-key", api_keys, "accepted API key (Authorization: Bearer KEY); repeatable");
  app.add_option("--name", name, "model name reported by the API (default: the file name)");
  app.add_option("--io-threads", io_threads, "HTTP I/O threads")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--read-timeout", read_timeout_ms, "ms a client may take to send a request's header, and its body "
                 "(default 10000 and 30000)")->check(CLI::Range(1, 3'600'000));
  app.add_option("--mem-budget", mem_budget, kMemBudgetHelp);
  app.add_flag("!--no-expert-prefetch", ec.expert_prefetch, "--mem-budget: do not predict and prefetch experts");
  app.add_option("--max-body", max_body, "request body limit, e.g. 8M (413 beyond)")->capture_default_str();
  std::string chat_template_file;
  app.add_option("--chat-template", chat_template_file,
                 "a Jinja chat template file that replaces the model's (models without one get tachyon's "
                 "ChatML template, which renders tools in the Hermes <tool_call> format)");
  int sse_keep_alive_ms = 10'000;
  app.add_option("--sse-keep-alive", sse_keep_alive_ms,
                 "ms of silence in a stream (a long prompt prefilling) after which a keep-alive goes out "
                 "(Anthropic: a ping event; others: an SSE comment); 0: never")
      ->capture_default_str()
      ->check(CLI::Range(0, 3'600'000));
  bool no_webui = false;
  app.add_flag("--no-webui", no_webui, "do not serve the chat page at / (404 there)");
  std::string role = "colocated";
  app.add_option("--role", role,
                 "colocated | prefill (answers KV export requests with the prompt's KV pages) | decode (accepts "
                 "POST /internal/kv/import); see `tachyon router --prefill/--decode`")
      ->check(CLI::IsMember({"colocated", "prefill", "decode"}))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (path.empty()) {
    std::fprintf(stderr, "error: no model given: use -m FILE (a GGUF file, e.g. ../shared/data/models/mini-qwen2-Q8_0.gguf)\n");
    return 2;
  }
  if (!kv_mem.empty()) {
    auto bytes = parse_size("--kv-mem", kv_mem);
    if (!bytes) return fail(bytes.status());
    ec.kv_mem_bytes = bytes.value();
  }
  if (kv_host_mem == "0") {
    ec.kv_host_bytes = 0;
  } else if (!kv_host_mem.empty()) {
    auto bytes = parse_size("--kv-host-mem", kv_host_mem);
    if (!bytes) return fail(bytes.status());
    ec.kv_host_bytes = static_cast<int64_t>(bytes.value());
  }
  {
    auto bytes = parse_size("--kv-disk-size", kv_disk_size);
    if (!bytes) return fail(bytes.status());
    ec.kv_disk_bytes = bytes.value();
  }
  if (!mem_budget.empty()) {
    auto bytes = parse_size("--mem-budget", mem_budget);
    if (!bytes) return fail(bytes.status());
    ec.mem_budget = bytes.value();
  }
  auto body_limit = parse_size("--max-body", max_body);
  if (!body_limit) return fail(body_limit.status());
  for (const auto& k : api_keys)
    if (k.empty()) return fail(invalid_argument("--api-key: empty key"));

  ec.model_path = path;
  ec.kv_transfer = role != "colocated";
  if (ec.kv_transfer) {
    // A KV transfer is one buffer of tens of MB per request (46 MB for 2k tokens of a 1B
    // model), above glibc's largest mmap threshold: each was a fresh mapping, zero-filled
    // page by page and unmapped again, and the page faults made an import cost 0.4 s of
    // the decode worker's core. Served from the heap and kept there, it costs 0.09 s.
    // The price: the process keeps its peak heap (no trimming back to the OS).
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  auto eng = engine::Engine::create(ec);
  if (!eng) return fail(eng.status());
  engine::Engine& engine = *eng.value();

  server::ChatFormat chat_format{chat::ChatTemplate::parse(chat::default_template()).value(), "<s>", "</s>"};
  if (auto ci = chat::read_gguf_chat_info(engine.model().file()); !ci) {
    std::fprintf(stderr, "warning: %s; using the ChatML template\n", ci.status().message().c_str());
  } else {
    chat_format.bos_token = ci->bos_token;
    chat_format.eos_token = ci->eos_token;
    if (auto t = chat::ChatTemplate::parse(ci->chat_template); t) {
      chat_format.tmpl = std::move(t.value());
    } else {
      std::fprintf(stderr, "warning: the model's chat template: %s; using ChatML\n", t.status().message().c_str());
    }
    if (!ci->has_template && chat_template_file.empty())
      std::fprintf(stderr, "note: the model has no chat template; using ChatML\n");
  }
  if (!chat_template_file.empty()) {
    std::ifstream in(chat_template_file, std::ios::binary);
    if (!in) return fail(invalid_argument("--chat-template: cannot read " + chat_template_file));
    std::stringstream ss;
    ss << in.rdbuf();
    auto t = chat::ChatTemplate::parse(ss.str());
    if (!t) return fail(invalid_argument("--chat-template " + chat_template_file + ": " + t.status().message()));
    chat_format.tmpl = std::move(t.value());
  }

  server::ServerConfig sc;
  sc.http.host = host;
  sc.http.port = port;
  sc.http.n_io_threads = io_threads;
  sc.http.max_body_bytes = body_limit.value();
  if (read_timeout_ms > 0) sc.http.header_timeout_ms = sc.http.body_timeout_ms = read_timeout_ms;
  sc.api_keys = api_keys;
  sc.handle_signals = true;
  sc.webui = !no_webui;
  sc.sse_keep_alive_ms = sse_keep_alive_ms;
  sc.role = role == "prefill" ? server::ServerRole::kPrefill
            : role == "decode" ? server::ServerRole::kDecode
                               : server::ServerRole::kColocated;
  if (sc.role == server::ServerRole::kDecode) {
    // An import carries a whole context's KV: room for that (plus headers) beyond --max-body.
    const size_t ctx_kv = static_cast<size_t>(engine.n_ctx() + 16) *
                          (engine.model().kv_config(1, ec.page_size, ec.kv_type).page_bytes() / ec.page_size + 64);
    sc.http.max_body_bytes = std::max(sc.http.max_body_bytes, ctx_kv + (1u << 20));
  }
  server::EngineBackend backend(engine);
  const server::ModelInfo info = server::model_info_from_engine(engine, path, name);
  server::Server srv(sc, backend, engine.tokenizer(), std::move(chat_format), info);
  if (Status st = srv.listen(); !st) {
    engine.shutdown();
    return fail(st);
  }
  const auto s = backend.stats(false);
  const std::string local = s.kv_local_slots_total > 0
                                ? ", " + std::to_string(s.kv_local_slots_total) + " sliding-window slots"
                                : std::string();
  std::fprintf(stderr, "model %s (%s, %s), ctx %d, %d KV pages%s (%s, %.1f MiB), %d threads, max queue %d%s\n",
               info.id.c_str(), info.arch.c_str(), info.quantization.c_str(), info.n_ctx, s.kv_pages_total, local.c_str(),
               ec.kv_type == kv::KvType::kQ8_0 ? "q8_0" : "f16", s.kv_bytes / 1048576.0, ec.n_threads, ec.max_queue,
               api_keys.empty() ? "" : ", API key required");
  if (s.kv_host_capacity > 0 || s.kv_disk_enabled)
    std::fprintf(stderr, "KV cache tiers: host RAM %.1f MiB%s%s%s\n", s.kv_host_capacity / 1048576.0,
                 s.kv_disk_enabled ? ", disk " : "", ec.kv_disk_dir.c_str(),
                 s.kv_disk_enabled && !s.kv_disk.writable ? " (read-only: not writing)" : "");
  if (!ec.draft_path.empty() || ec.spec_mode != spec::Mode::kOff)
    std::fprintf(stderr, "speculative decoding: %s (at most %d draft tokens)%s%s\n", spec::mode_name(ec.spec_mode),
                 ec.spec_max, ec.draft_path.empty() ? "" : ", draft model ", ec.draft_path.c_str());
  if (sc.role != server::ServerRole::kColocated)
    std::fprintf(stderr, "role: %s (KV transfer: %s)\n", role.c_str(),
                 sc.role == server::ServerRole::kPrefill ? "exports prompt KV on request"
                                                         : "imports at POST /internal/kv/import");
  const bool v6 = host.find(':') != std::string::npos;
  std::fprintf(stderr, "listening on http://%s%s%s:%d\n", v6 ? "[" : "", host.c_str(), v6 ? "]" : "", srv.port());
  std::fflush(stderr);
  srv.run();  // until SIGINT/SIGTERM; shuts the engine down before returning
  std::fprintf(stderr, "server stopped\n");
  return 0;
}

}  // namespace tachyon::apps
