// tachyon run -m FILE -p TEXT [-n N] [--temp T] [--seed S] [-t THREADS] [--json]
//             [--spec off|ngram|draft|auto] [--draft FILE] [--spec-max N]
// Generates a continuation of a prompt. Text streams to stdout; timings go to stderr
// (or into the JSON object with --json). With --spec or --draft the request runs through
// the serving engine (one sequence), which does the speculative decoding; without them,
// through a plain model::Session (llama.cpp's numerics step for step).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app_util.h"
#include "expert_util.h"
#include "base/clock.h"
#include "base/cpu.h"
#include "commands.h"
#include "engine/engine.h"
#include "kernels/traits.h"
#include "model/model.h"
#include "model/session.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::apps {

namespace {
std::string hex_bytes(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string h;
  h.reserve(s.size() * 2);
  for (unsigned char c : s) {
    h += d[c >> 4];
    h += d[c & 15];
  }
  return h;
}
struct EngineRun {
  std::string path, prompt, draft;
  engine::EngineConfig ec;
  sampling::SamplingParams sp;
  int n_predict = 0;
  bool json = false, no_special = false, ignore_eos = false;
};

// One request through the engine (speculative decoding lives there).
int run_with_engine(EngineRun r) {
  const double t0 = now_ms();
  r.ec.model_path = r.path;
  r.ec.draft_path = r.draft;
  r.ec.max_running = 1;
  auto e = engine::Engine::create(r.ec);
  if (!e) return fail(e.status());
  engine::Engine& eng = *e.value();
  const double load_ms = now_ms() - t0;
  const tok::Tokenizer& tokenizer = eng.tokenizer();
  if (Status st = r.sp.validate(tokenizer.n_vocab()); !st) return fail(st);
  engine::GenerateRequest req;
  req.prompt = tokenizer.encode(r.prompt, true, !r.no_special);
  if (req.prompt.empty()) return fail(invalid_argument("prompt: empty (and the model adds no BOS)"));
  req.sampling = r.sp;
  req.max_tokens = r.n_predict;
  req.ignore_eos = r.ignore_eos;
  const std::vector<int32_t> prompt_ids = req.prompt;
  auto h = eng.submit(std::move(req));
  if (!h) return fail(h.status());
  std::vector<int32_t> out_ids;
  std::string text;
  engine::Event fin;
  for (bool done = false; !done;) {
    std::vector<engine::Event> ev;
    h.value()->wait_drain(&ev, 1000);
    for (auto& x : ev) {
      if (x.kind == engine::Event::Kind::kFinish) {
        fin = x;
        done = true;
      } else {
        out_ids.push_back(x.token);
      }
      text += x.text;
      if (!r.json && !x.text.empty()) {
        std::fwrite(x.text.data(), 1, x.text.size(), stdout);
        std::fflush(stdout);
      }
    }
  }
  if (fin.finish_reason == "error") return fail(Status(ErrorCode::kInternal, fin.error));
  const int n_prompt = static_cast<int>(prompt_ids.size());
  // decode_ms runs from the first token to the finish: out_ids.size() - 1 decode steps' worth
  const int n_dec = std::max(0, static_cast<int>(out_ids.size()) - 1);
  const double prompt_tps = fin.prompt_ms > 0 ? n_prompt / (fin.prompt_ms / 1000.0) : 0;
  const double gen_tps = fin.decode_ms > 0 && n_dec > 0 ? n_dec / (fin.decode_ms / 1000.0) : 0;
  if (r.json) {
    nlohmann::json out = {
        {"model", r.path},
        {"prompt_tokens", prompt_ids},
        {"tokens", out_ids},
        {"text", text},
        {"text_hex", hex_bytes(text)},
        {"finish_reason", fin.finish_reason},
        {"timings",
         {{"load_ms", load_ms},
          {"prompt_n", n_prompt},
          {"prompt_ms", fin.prompt_ms},
          {"prompt_tokens_per_s", prompt_tps},
          {"predicted_n", static_cast<int>(out_ids.size())},
          {"predicted_ms", fin.decode_ms},
          {"predicted_tokens_per_s", gen_tps},
          {"threads", r.ec.n_threads},
          {"spec", spec::mode_name(r.ec.spec_mode)},
          {"draft_tokens", fin.draft_tokens},
          {"accepted_tokens", fin.accepted_tokens},
          {"verify_steps", fin.verify_steps}}}};
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
    std::fprintf(stderr,
                 "\nload %.0f ms | prompt %d tok, %.1f tok/s | generation %zu tok, %.1f tok/s | speculative %s: %d drafted, "
                 "%d accepted in %d steps | %d threads, %s\n",
                 load_ms, n_prompt, prompt_tps, out_ids.size(), gen_tps, spec::mode_name(r.ec.spec_mode),
                 fin.draft_tokens, fin.accepted_tokens, fin.verify_steps, r.ec.n_threads, cpu_features_string().c_str());
  }
  return 0;
}
}  // namespace

int cmd_run(int argc, char** argv) {
  CLI::App app{"generate a continuation of a prompt", "tachyon run"};
  std::string path, prompt, prompt_file;
  int n_predict = 64, threads = default_threads(), n_ctx = 0, ubatch = 512;
  sampling::SamplingParams sp;
  sp.temperature = 0.8f;
  sp.penalty_last_n = 64;
  bool json = false, no_special = false, ignore_eos = false, scalar = false, seed_set = false;
  std::string spec_mode, draft;
  MemBudgetFlags mem;
  int spec_max = 8;
  uint64_t seed = 0;
  app.add_option("-m,--model", path, "GGUF model file")->required();
  auto* p_opt = app.add_option("-p,--prompt", prompt, "prompt text");
  app.add_option("-f,--file", prompt_file, "read the prompt from a file")->excludes(p_opt);
  app.add_option("-n,--n-predict", n_predict, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  app.add_option("--temp", sp.temperature, "temperature (0 = greedy)");
  app.add_option("--top-k", sp.top_k, "top-k (0 = off)");
  app.add_option("--top-p", sp.top_p, "top-p (1 = off)");
  app.add_option("--min-p", sp.min_p, "min-p (0 = off)");
  app.add_option("--repeat-penalty", sp.repetition_penalty, "repetition penalty (1 = off)");
  app.add_option("--presence-penalty", sp.presence_penalty, "presence penalty");
  app.add_option("--frequency-penalty", sp.frequency_penalty, "frequency penalty");
  app.add_option("--repeat-last-n", sp.penalty_last_n, "penalty window (-1 = all)");
  app.add_option("--seed", seed, "RNG seed (default: random)")->each([&](const std::string&) { seed_set = true; });
  app.add_option("-t,--threads", threads, "compute threads")->check(CLI::Range(1, 1024));
  std::string attn_numerics = "auto";
  app.add_option("--attn-numerics", attn_numerics, kAttnNumericsHelp)->check(CLI::IsMember({"auto", "llama", "f32"}));
  std::string kv_type_name = "f16";
  app.add_option("--kv-type", kv_type_name, kKvTypeHelp)->check(CLI::IsMember({"f16", "q8_0"}));
  app.add_option("-c,--ctx", n_ctx, "context length (default: the model's, at most 4096)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--ubatch", ubatch, "prompt tokens per forward step")->check(CLI::Range(1, 1 << 16));
  app.add_flag("--json", json, "print one JSON object (prompt_tokens, tokens, text, timings)");
  app.add_flag("--no-special", no_special, "do not parse special-token text in the prompt");
  app.add_flag("--ignore-eos", ignore_eos, "keep generating past end-of-generation tokens");
  app.add_flag("--scalar", scalar, "use the scalar reference kernels");
  app.add_option("--spec", spec_mode,
                 "speculative decoding (runs through the serving engine): off, ngram, draft (needs --draft), auto")
      ->check(CLI::IsMember({"off", "ngram", "draft", "auto"}));
  app.add_option("--draft", draft, "draft model: a smaller GGUF with the same vocabulary")->check(CLI::ExistingFile);
  app.add_option("--spec-max", spec_max, "draft tokens per step at most")->check(CLI::Range(0, 16));
  mem.add(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!prompt_file.empty()) {
    auto text = read_text_file(prompt_file);
    if (!text) return fail(text.status());
    prompt = text.value();
  }
  if (scalar) kernels::force_scalar_kernels(true);
  const auto lo_or = mem.load_options();
  if (!lo_or) return fail(lo_or.status());
  const model::LoadOptions lo = lo_or.value();
  sp.seed = seed_set ? seed : static_cast<uint64_t>(now_us());
  if (!spec_mode.empty() || !draft.empty()) {
    EngineRun r;
    r.path = path;
    r.prompt = prompt;
    r.draft = draft;
    r.sp = sp;
    r.n_predict = n_predict;
    r.json = json;
    r.no_special = no_special;
    r.ignore_eos = ignore_eos;
    r.ec.n_threads = threads;
    r.ec.max_batch_tokens = ubatch;
    r.ec.spec_mode = spec::Mode::kAuto;  // --draft alone: auto
    if (!spec_mode.empty()) spec::parse_mode(spec_mode, &r.ec.spec_mode);
    r.ec.spec_max = spec_max;
    model::parse_decode_numerics(attn_numerics, &r.ec.decode_numerics);
    kv::parse_kv_type(kv_type_name, &r.ec.kv_type);
    r.ec.n_ctx = n_ctx;
    r.ec.mem_budget = lo.mem_budget;
    r.ec.expert_prefetch = lo.expert_prefetch;
    return run_with_engine(r);
  }

  const double t0 = now_ms();
  auto m = model::Model::load(path, lo);
  if (!m) return fail(m.status());
  model::Model& model = *m.value();
  {
    model::DecodeNumerics dn = model::DecodeNumerics::kAuto;
    model::parse_decode_numerics(attn_numerics, &dn);
    model.set_decode_numerics(dn);
  }
  auto tk = tok::Tokenizer::from_gguf(model.file());
  if (!tk) return fail(tk.status());
  const tok::Tokenizer& tokenizer = *tk.value();
  if (tokenizer.n_vocab() != model.hparams().n_vocab)
    return fail(corrupt(path + ": tokenizer has " + std::to_string(tokenizer.n_vocab()) + " tokens but the model " +
                        std::to_string(model.hparams().n_vocab)));
  if (ignore_eos) sp.banned_tokens = tokenizer.eog_ids();
  if (Status st = sp.validate(tokenizer.n_vocab()); !st) return fail(st);
  const double load_ms = now_ms() - t0;

  const std::vector<int32_t> prompt_ids = tokenizer.encode(prompt, true, !no_special);
  if (prompt_ids.empty()) return fail(invalid_argument("prompt: empty (and the model adds no BOS)"));
  if (n_ctx == 0) n_ctx = std::min(model.hparams().n_ctx_train, 4096);
  const int n_total = static_cast<int>(prompt_ids.size()) + n_predict;
  if (n_total > n_ctx)
    return fail(invalid_argument("prompt: " + std::to_string(prompt_ids.size()) + " tokens + " + std::to_string(n_predict) +
                                 " to generate exceed the context length " + std::to_string(n_ctx) + " (see --ctx)"));

  model::Session::Options sopt;
  sopt.n_ctx = n_total;
  sopt.ubatch = ubatch;
  kv::parse_kv_type(kv_type_name, &sopt.kv_type);
  ThreadPool pool(threads);
  auto session = model::Session::create(model, pool, sopt);
  if (!session) return fail(session.status());
  model::Session& sess = *session.value();
  model.set_context_size(n_ctx);  // the configured context, not just this prompt's (LongRoPE)
  sampling::Sampler sampler(sp);
  tok::StreamDecoder::Options dopt;
  dopt.leading = tok::LeadingSpace::kKeep;
  tok::StreamDecoder decoder(tokenizer, dopt);

  // Prefill in ubatches; logits only for the last prompt token.
  std::vector<float> logits;
  const double t_prompt = now_ms();
  const int n_prompt = static_cast<int>(prompt_ids.size());
  if (Status st = sess.append_last(prompt_ids, &logits); !st) return fail(st);
  const double prompt_ms = now_ms() - t_prompt;

  std::vector<int32_t> out_ids;
  std::string text;
  const int n_vocab = model.hparams().n_vocab;
  const double t_gen = now_ms();
  std::string finish = "length";
  for (int i = 0; i < n_predict; ++i) {
    const auto r = sampler.sample(logits.data(), n_vocab);
    if (!ignore_eos && tokenizer.is_eog(r.token)) {
      finish = "stop";
      break;
    }
    sampler.accept(r.token);
    out_ids.push_back(r.token);
    const std::string piece = decoder.push(r.token);
    text += piece;
    if (!json && !piece.empty()) {
      std::fwrite(piece.data(), 1, piece.size(), stdout);
      std::fflush(stdout);
    }
    if (i + 1 == n_predict) break;  // the last token needs no forward pass
    if (Status st = sess.append(&r.token, 1, 0, 1, &logits); !st) return fail(st);
  }
  const std::string tail = decoder.flush();
  text += tail;
  const double gen_ms = now_ms() - t_gen;
  const int n_gen_steps = std::max(0, static_cast<int>(out_ids.size()) - (finish == "length" ? 1 : 0));

  const double prompt_tps = prompt_ms > 0 ? n_prompt / (prompt_ms / 1000.0) : 0;
  const double gen_tps = gen_ms > 0 && n_gen_steps > 0 ? n_gen_steps / (gen_ms / 1000.0) : 0;
  const double gbps = gen_tps * model.weight_bytes() / 1e9;
  if (json) {
    nlohmann::json out = {
        {"model", path},
        {"prompt_tokens", prompt_ids},
        {"tokens", out_ids},
        {"text", text},  // invalid UTF-8 (possible from random or byte tokens) -> U+FFFD
        {"text_hex", hex_bytes(text)},
        {"finish_reason", finish},
        {"timings",
         {{"load_ms", load_ms},
          {"prompt_n", n_prompt},
          {"prompt_ms", prompt_ms},
          {"prompt_tokens_per_s", prompt_tps},
          {"predicted_n", static_cast<int>(out_ids.size())},
          {"predicted_ms", gen_ms},
          {"predicted_tokens_per_s", gen_tps},
          {"weights_gb_per_s", gbps},
          {"threads", threads},
          {"draft_tokens", 0},
          {"accepted_tokens", 0}}}};
    if (const model::ExpertCache* ec = model.expert_cache()) out["expert_cache"] = expert_stats_json(ec->stats());
    out["rss_peak_bytes"] = peak_rss_bytes();
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    if (!tail.empty()) std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::printf("\n");
    std::fprintf(stderr,
                 "\nload %.0f ms | prompt %d tok, %.1f tok/s | generation %zu tok, %.1f tok/s, %.1f ms/tok, %.2f GB/s of "
                 "weights | %d threads, %s\n",
                 load_ms, n_prompt, prompt_tps, out_ids.size(), gen_tps, gen_tps > 0 ? 1000.0 / gen_tps : 0.0, gbps,
                 threads, cpu_features_string().c_str());
    if (const model::ExpertCache* ec = model.expert_cache())
      std::fprintf(stderr, "%s\n", expert_stats_line(ec->stats(), n_prompt + static_cast<double>(out_ids.size())).c_str());
  }
  return 0;
}

}  // namespace tachyon::apps
