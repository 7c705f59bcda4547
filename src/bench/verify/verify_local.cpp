// The local side of bench verify: one reference file runs the probe prompts (tokenized
// and chat-rendered as `tachyon serve` does), teacher-forced on the endpoint's tokens,
// prefilled and decoded the way the engine does (prompt in one step with the prefill
// numerics when it is long, then one token per step), so that a tachyon endpoint serving
// the same file reproduces its logprobs.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "base/thread_pool.h"
#include "bench/verify/verify.h"
#include "chat/chat_template.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "model/session.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::bench::verify {

namespace {

constexpr double kIgnoreLogprobBelow = -1000;  // -inf sent as -9999 by some servers

TokenMap local_token_map(const tok::Tokenizer& tk) {
  const int32_t n = tk.n_vocab();
  std::vector<std::string> raw(n), special(n);
  for (int32_t id = 0; id < n; ++id) {
    raw[id] = tk.token_to_piece(id, false);
    special[id] = tk.token_to_piece(id, true);
  }
  return TokenMap(std::move(raw), special);
}

int32_t best_of(const std::vector<int32_t>& ids, const float* row) {
  int32_t best = ids[0];
  for (int32_t id : ids)
    if (row[id] > row[best]) best = id;
  return best;
}

int32_t argmax(const float* row, int n) { return static_cast<int32_t>(std::max_element(row, row + n) - row); }

// One sequence driven like the engine drives a request: the prompt in one step with the
// engine's prompt numerics, then one token per step.
class Session {
 public:
  explicit Session(model::Session& s) : s_(s) {}

  Status prefill(const std::vector<int32_t>& ids) {
    s_.rewind(0);
    return s_.append_last(ids, &logits_);
  }
  Status decode(int32_t id) { return s_.append(&id, 1, 0, 1, &logits_); }
  const float* row() const { return logits_.data(); }

 private:
  model::Session& s_;
  std::vector<float> logits_;
};

struct Totals {
  double abs_diff = 0;
  int64_t pairs = 0, positions = 0, agree = 0;
  int64_t by_id = 0, by_bytes = 0, by_text = 0, ambiguous = 0, merged = 0;
  double covered = 0, total = 0;  // tokens (logprobs mode) or bytes (text mode)
};

// Logprobs mode: compare the endpoint's logprob of its token and of its alternatives.
Status compare_logprobs(Session& s, const TokenMap& tm, int n_vocab, const RemoteProbe& rp, Totals* t) {
  t->total += static_cast<double>(rp.tokens.size());
  for (size_t i = 0; i < rp.tokens.size(); ++i) {
    const RemoteToken& rt = rp.tokens[i];
    const float* row = s.row();
    const TokenMap::Mapped m = tm.map(rt.piece, rt.is_bytes, rt.id);
    if (m.ids.empty()) {
      // Several tokens in one entry (llama-server merges the byte tokens of one UTF-8
      // character): follow them one by one; nothing of it is compared but the first argmax.
      std::string_view rest = rt.piece;
      int32_t tok = -1;
      bool first = true;
      while (!rest.empty()) {
        if (tok >= 0) TACHYON_RETURN_IF_ERROR(s.decode(tok));
        const float* r = s.row();
        const std::vector<int32_t> cands = tm.prefixes(rest);
        if (cands.empty()) {
          tok = -1;
          break;
        }
        tok = best_of(cands, r);
        if (rt.id >= 0 && rt.id < n_vocab && tm.piece(static_cast<int32_t>(rt.id)) == rest)
          tok = static_cast<int32_t>(rt.id);
        if (first) {
          const int32_t top = argmax(r, n_vocab);
          t->agree += top == tok || r[top] == r[tok];
          first = false;
        }
        rest.remove_prefix(tm.piece(tok).size());
      }
      if (tok < 0 || rt.piece.empty()) break;  // no local counterpart: stop this probe
      t->positions += 1;
      t->covered += 1;
      t->merged += 1;
      if (i + 1 < rp.tokens.size()) TACHYON_RETURN_IF_ERROR(s.decode(tok));
      continue;
    }
    switch (m.via) {
      case TokenMap::Via::kId: ++t->by_id; break;
      case TokenMap::Via::kBytes: ++t->by_bytes; break;
      default: ++t->by_text; break;
    }
    const double lse = kernels::log_sum_exp(row, n_vocab);
    // An ambiguous text is followed by the local token it most likely is.
    const int32_t chosen = best_of(m.ids, row);
    const int32_t top = argmax(row, n_vocab);
    t->positions += 1;
    t->covered += 1;
    t->agree += top == chosen || row[top] == row[chosen];
    if (!m.unique()) ++t->ambiguous;
    if (m.unique() && rt.has_logprob && rt.logprob > kIgnoreLogprobBelow) {
      t->abs_diff += std::fabs((row[chosen] - lse) - rt.logprob);
      t->pairs += 1;
    }
    for (const RemoteAlt& alt : rt.top) {
      if (alt.logprob <= kIgnoreLogprobBelow) continue;
      const TokenMap::Mapped a = tm.map(alt.piece, alt.is_bytes, alt.id);
      if (a.ids.empty()) continue;
      if (!a.unique()) {
        ++t->ambiguous;
        continue;
      }
      t->abs_diff += std::fabs((row[a.ids[0]] - lse) - alt.logprob);
      t->pairs += 1;
    }
    if (i + 1 < rp.tokens.size()) TACHYON_RETURN_IF_ERROR(s.decode(chosen));
  }
  return Status::ok();
}

// Text mode: at each step, does the local argmax's piece continue the endpoint's text?
// The text is consumed by that piece when it does, else by the longest piece that fits.
Status compare_text(Session& s, const TokenMap& pm, int n_vocab, const RemoteProbe& rp, int max_steps, Totals* t) {
  const std::string& text = rp.text;
  t->total += static_cast<double>(text.size());
  size_t at = 0;
  for (int step = 0; step < max_steps && at < text.size(); ++step) {
    const float* row = s.row();
    const std::string_view rest = std::string_view(text).substr(at);
    const int32_t top = argmax(row, n_vocab);
    int32_t chosen = -1;
    if (!pm.piece(top).empty() && rest.starts_with(pm.piece(top))) {
      chosen = top;
      t->agree += 1;
    } else {
      for (int32_t id = 0; id < pm.size(); ++id) {
        const std::string& p = pm.piece(id);
        if (p.empty() || !rest.starts_with(p)) continue;
        if (chosen < 0 || p.size() > pm.piece(chosen).size() ||
            (p.size() == pm.piece(chosen).size() && row[id] > row[chosen]))
          chosen = id;
      }
      if (chosen < 0) break;
    }
    t->positions += 1;
    at += pm.piece(chosen).size();
    t->covered = t->covered + static_cast<double>(pm.piece(chosen).size());
    if (at < text.size()) TACHYON_RETURN_IF_ERROR(s.decode(chosen));
  }
  return Status::ok();
}

Result<std::vector<int32_t>> prompt_ids(const VerifyConfig& cfg, const model::Model& m, const tok::Tokenizer& tk,
                                        const Probe& p) {
  if (cfg.endpoint.api == Api::kCompletions) return tk.encode(p.prompt, true, true);
  // As src/server renders chat: the file's template (ChatML when it has none).
  auto ci = chat::read_gguf_chat_info(m.file());
  if (!ci) return ci.status();
  auto tmpl = chat::ChatTemplate::parse(ci->chat_template);
  if (!tmpl) tmpl = chat::ChatTemplate::parse(chat::default_template());
  if (!tmpl) return tmpl.status();
  chat::RenderOptions opts;
  opts.bos_token = ci->bos_token;
  opts.eos_token = ci->eos_token;
  opts.add_generation_prompt = true;
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  msgs.push_back({{"role", "user"}, {"content", p.prompt}});
  auto text = tmpl->render_ordered(msgs, nullptr, opts);
  if (!text) return text.status();
  std::string_view t = text.value();
  if (tk.add_bos() && !ci->bos_token.empty() && t.substr(0, ci->bos_token.size()) == ci->bos_token)
    t.remove_prefix(ci->bos_token.size());
  return tk.encode(t, true, true);
}

}  // namespace

CandidateResult score_reference(const VerifyConfig& cfg, const std::vector<Probe>& probes, const RemoteResult& remote,
                                const std::string& path) {
  CandidateResult c;
  c.path = path;
  auto fail = [&](const Status& st) {
    c.error = st.message();
    c.verdict = "error";
    c.distance = std::numeric_limits<double>::infinity();
    return c;
  };
  auto m = model::Model::load(path);
  if (!m) return fail(m.status());
  model::Model& model = *m.value();
  auto tk = tok::Tokenizer::from_gguf(model.file());
  if (!tk) return fail(tk.status());
  const tok::Tokenizer& tokenizer = *tk.value();
  const int n_vocab = model.hparams().n_vocab;
  if (tokenizer.n_vocab() != n_vocab) return fail(corrupt(path + ": tokenizer and model disagree on the vocabulary size"));
  const TokenMap tm = local_token_map(tokenizer);

  std::vector<std::vector<int32_t>> ids(probes.size());
  int n_max = 0;
  for (size_t i = 0; i < probes.size(); ++i) {
    auto r = prompt_ids(cfg, model, tokenizer, probes[i]);
    if (!r) return fail(r.status());
    ids[i] = std::move(r.value());
    const int n_text_steps = static_cast<int>(remote.probes[i].text.size()) + 1;
    const int n_gen = remote.logprobs ? static_cast<int>(remote.probes[i].tokens.size()) : n_text_steps;
    n_max = std::max(n_max, static_cast<int>(ids[i].size()) + n_gen + 1);
  }
  ThreadPool pool(std::max(1, cfg.threads));

  // The numerics to replay with: the endpoint's own when it is recognized, else both.
  std::vector<std::string> numerics;
  if (cfg.numerics == "tachyon" || cfg.numerics == "llama") numerics = {cfg.numerics};
  else if (remote.server == "tachyon") numerics = {"tachyon"};
  else if (remote.server == "llama.cpp") numerics = {"llama"};
  else numerics = {"tachyon", "llama"};

  bool have = false;
  CandidateResult best;
  for (const std::string& num : numerics) {
    CandidateResult r = c;
    r.numerics = num;
    const bool llama = num == "llama";
    // tachyon: the prompt in one step with the engine's prompt numerics, decode kAuto.
    // llama.cpp: each ubatch by its size (flash attention in f16), decode kLlama throughout.
    model.set_decode_numerics(llama ? model::DecodeNumerics::kLlama : model::DecodeNumerics::kAuto);
    model::Session::Options sopt;
    sopt.n_ctx = n_max;
    sopt.ubatch = llama ? std::min(n_max, 512) : n_max;
    sopt.prompt_numerics = !llama;
    auto session = model::Session::create(model, pool, sopt);
    if (!session) return fail(session.status());

    Totals t;
    for (size_t i = 0; i < probes.size(); ++i) {
      const RemoteProbe& rp = remote.probes[i];
      if (rp.usage_prompt_tokens >= 0 && rp.usage_prompt_tokens != static_cast<int>(ids[i].size()))
        r.n_prompt_token_mismatch += 1;
      if (remote.logprobs ? rp.tokens.empty() : rp.text.empty()) continue;
      Session s(*session.value());
      if (Status st = s.prefill(ids[i]); !st) return fail(st);
      Status st = remote.logprobs ? compare_logprobs(s, tm, n_vocab, rp, &t)
                                  : compare_text(s, tm, n_vocab, rp, static_cast<int>(rp.text.size()) + 1, &t);
      if (!st) return fail(st);
    }
    r.n_positions = t.positions;
    r.n_pairs = t.pairs;
    r.n_remote_tokens = remote.logprobs ? static_cast<int64_t>(t.total) : t.positions;
    r.coverage = t.total > 0 ? t.covered / t.total : 0;
    r.argmax_agreement = t.positions > 0 ? static_cast<double>(t.agree) / static_cast<double>(t.positions) : 0;
    r.mean_abs_logprob_diff = t.pairs > 0 ? t.abs_diff / static_cast<double>(t.pairs) : 0;
    r.n_by_id = t.by_id;
    r.n_by_bytes = t.by_bytes;
    r.n_by_text = t.by_text;
    r.n_ambiguous = t.ambiguous;
    r.n_merged = t.merged;
    finish_distance(r, remote.logprobs);
    if (!have || r.distance < best.distance) best = std::move(r);
    have = true;
  }
  model.set_decode_numerics(model::DecodeNumerics::kAuto);
  c = std::move(best);
  return c;
}

}  // namespace tachyon::bench::verify
