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

// Token text -> the local ids that render as it. Keys: each id's piece with and without
// special rendering, raw and as a JSON encoder with replacement would send it (invalid
// UTF-8 -> U+FFFD), so that endpoints which send text rather than bytes still map.
class PieceMap {
 public:
  explicit PieceMap(const tok::Tokenizer& tk) {
    const int32_t n = tk.n_vocab();
    pieces_.resize(n);
    for (int32_t id = 0; id < n; ++id) {
      pieces_[id] = tk.token_to_piece(id, false);
      // Servers render control tokens as "" (not special): "" maps to every such id.
      if (pieces_[id].empty()) add("", id);
      for (const std::string& p : {pieces_[id], tk.token_to_piece(id, true)}) {
        if (p.empty()) continue;
        add(p, id);
        const std::string s = sanitized(p);
        if (s != p) add(s, id);
      }
    }
  }
  const std::vector<int32_t>* find(const std::string& text) const {
    auto it = map_.find(text);
    return it == map_.end() ? nullptr : &it->second;
  }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  int32_t size() const { return static_cast<int32_t>(pieces_.size()); }

 private:
  static std::string sanitized(const std::string& s) {
    const std::string dumped = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return nlohmann::json::parse(dumped).get<std::string>();
  }
  void add(const std::string& key, int32_t id) {
    auto& v = map_[key];
    if (std::find(v.begin(), v.end(), id) == v.end()) v.push_back(id);
  }
  std::unordered_map<std::string, std::vector<int32_t>> map_;
  std::vector<std::string> pieces_;
};

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
  double covered = 0, total = 0;  // tokens (logprobs mode) or bytes (text mode)
};

// Logprobs mode: compare the endpoint's logprob of its token and of its alternatives.
Status compare_logprobs(Session& s, const PieceMap& pm, int n_vocab, const RemoteProbe& rp, Totals* t) {
  t->total += static_cast<double>(rp.tokens.size());
  for (size_t i = 0; i < rp.tokens.size(); ++i) {
    const RemoteToken& rt = rp.tokens[i];
    const float* row = s.row();
    const auto* ids = pm.find(rt.piece);
    if (!ids) break;  // the endpoint's token has no local counterpart: stop this probe
    const double lse = kernels::log_sum_exp(row, n_vocab);
    const int32_t chosen = best_of(*ids, row);
    t->positions += 1;
    t->covered += 1;
    t->agree += argmax(row, n_vocab) == chosen || row[argmax(row, n_vocab)] == row[chosen];
    if (rt.has_logprob && rt.logprob > kIgnoreLogprobBelow) {
      t->abs_diff += std::fabs((row[chosen] - lse) - rt.logprob);
      t->pairs += 1;
    }
    for (const auto& [text, lp] : rt.top) {
      const auto* alt = pm.find(text);
      if (!alt || lp <= kIgnoreLogprobBelow) continue;
      t->abs_diff += std::fabs((row[best_of(*alt, row)] - lse) - lp);
      t->pairs += 1;
    }
    if (i + 1 < rp.tokens.size()) TACHYON_RETURN_IF_ERROR(s.decode(chosen));
  }
  return Status::ok();
}

// Text mode: at each step, does the local argmax's piece continue the endpoint's text?
// The text is consumed by that piece when it does, else by the longest piece that fits.
Status compare_text(Session& s, const PieceMap& pm, int n_vocab, const RemoteProbe& rp, int max_steps, Totals* t) {
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
  const PieceMap pm(tokenizer);

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
  model::Session::Options sopt;
  sopt.n_ctx = n_max;
  sopt.ubatch = n_max;  // the prompt in one step, as the engine runs a prompt that fits its budget
  sopt.prompt_numerics = true;
  auto session = model::Session::create(model, pool, sopt);
  if (!session) return fail(session.status());

  Totals t;
  for (size_t i = 0; i < probes.size(); ++i) {
    const RemoteProbe& rp = remote.probes[i];
    if (rp.usage_prompt_tokens >= 0 && rp.usage_prompt_tokens != static_cast<int>(ids[i].size()))
      c.n_prompt_token_mismatch += 1;
    if (remote.logprobs ? rp.tokens.empty() : rp.text.empty()) continue;
    Session s(*session.value());
    if (Status st = s.prefill(ids[i]); !st) return fail(st);
    Status st = remote.logprobs ? compare_logprobs(s, pm, n_vocab, rp, &t)
                                : compare_text(s, pm, n_vocab, rp, static_cast<int>(rp.text.size()) + 1, &t);
    if (!st) return fail(st);
  }
  c.n_positions = t.positions;
  c.n_pairs = t.pairs;
  c.n_remote_tokens = remote.logprobs ? static_cast<int64_t>(t.total) : t.positions;
  c.coverage = t.total > 0 ? t.covered / t.total : 0;
  c.argmax_agreement = t.positions > 0 ? static_cast<double>(t.agree) / static_cast<double>(t.positions) : 0;
  c.mean_abs_logprob_diff = t.pairs > 0 ? t.abs_diff / static_cast<double>(t.pairs) : 0;
  if (t.positions == 0 || c.coverage < kMinCoverage) {
    c.distance = std::numeric_limits<double>::infinity();
  } else if (remote.logprobs) {
    c.distance = c.mean_abs_logprob_diff + (1 - c.argmax_agreement) + (1 - c.coverage);
  } else {
    c.distance = (1 - c.argmax_agreement) + (1 - c.coverage);
  }
  return c;
}

}  // namespace tachyon::bench::verify
