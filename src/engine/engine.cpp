// The engine thread: admission (with the radix prefix cache), scheduling under a token
// budget, one forward step for the whole mixed batch, sampling, and commit (text, stop
// strings, events, cache insertion).
#include "engine/engine.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <list>

#include "base/clock.h"
#include "base/thread_pool.h"
#include "engine/text_stream.h"
#include "kv/kv_pool.h"
#include "kv/radix_cache.h"
#include "model/model.h"
#include "sched/plan.h"
#include "spec/drafter.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::engine {

namespace {

constexpr int kTiledPromptTokens = 64;  // prompts this long use the prefill attention numerics
constexpr int kAdmitWindow = 4;         // waiting requests considered for cache-aware order
constexpr int kMaxSkips = 4;            // times the oldest waiting request may be passed over
constexpr int kMaxDraft = 16;           // draft tokens per sequence and step at most
constexpr int kKvTile = 64;             // key tile of the prefill attention (model/attention_rows.h kAttnTile)

// First position whose sliding-window KV a sequence may still read once positions
// [0, n_tokens) hold KV. Its queries come at positions p >= n_tokens and see keys from
// p - window + 1, but the prefill kernels start reading at the 64-key tile holding a
// row's first key (the f32 decode ones at its 16-key block, inside that tile) and mask
// the keys before it; one more tile of margin. Pages wholly before it may give up their
// local slots; a cached prefix of P tokens is usable when [window_keep_from(P), P) kept
// them.
int window_keep_from(int n_tokens, int window) {
  const int first = n_tokens - window + 1;
  if (window <= 0 || first <= 0) return 0;
  return std::max(0, first / kKvTile * kKvTile - kKvTile);
}

// Local slots one sequence holds at most: its pages from window_keep_from to its next
// position, plus those of a prefill chunk of `chunk` tokens.
int64_t seq_local_slots(int window, int ps, int chunk) {
  return (window + 2 * kKvTile + ps - 1) / ps + 2 + (chunk + ps - 1) / ps;
}

// Slots of the local arena for n_pages pages (budget-derived sizing): room for every
// running sequence's window plus one step's prefill (all_need), but at least a quarter of
// the pages (windows that cached prefixes dropped stay reusable a while) and at most half
// (a large max_running would eat the saving: sequences beyond it wait or are preempted,
// as for pages), never less than one sequence needs (one_need).
int derived_local_slots(int n_pages, int64_t one_need, int64_t all_need) {
  const int64_t n = std::max<int64_t>({one_need, n_pages / 4, std::min<int64_t>(all_need, n_pages / 2)});
  return static_cast<int>(std::min<int64_t>(n_pages, n));
}

struct Sequence {
  std::shared_ptr<RequestHandle> handle;
  GenerateRequest req;
  std::vector<int32_t> tokens;  // prompt, then generated tokens
  int n_prompt = 0;
  int n_generated = 0;
  int cached_tokens = 0;  // from the prefix cache at first admission
  bool admitted_once = false;
  bool tiled = false;
  int skips = 0;
  int prefill_skips = 0;  // consecutive steps this prompt got no prefill tokens
  kv::PageTable pt;  // pt.n_tokens = tokens with KV computed
  int local_from = 0;  // pages [local_from, pt.pages.size()) hold this sequence's local (window KV) reference
  std::vector<kv::RadixCache::Node*> path;  // locked cache nodes = the first path.size() pages
  std::unique_ptr<sampling::Sampler> sampler;
  std::unique_ptr<TextStream> text;
  // speculative decoding
  spec::Mode spec = spec::Mode::kOff;
  int spec_max = 0;
  std::vector<int32_t> draft;  // this step's draft tokens (after the sampled last token)
  spec::DraftLengthController controller;
  int64_t n_drafted = 0, n_accepted = 0, n_verify_steps = 0;
  // Draft model: positions [0, draft_n) hold the draft's KV of committed tokens (its first
  // draft_flagged pages are marked as such for the radix tree); draft_written: positions
  // the drafting of this step wrote (committed ones, then drafts). Sampled requests draw
  // drafts from the draft's distribution (draft_q: one row per draft token) and verify by
  // rejection sampling; greedy ones take the draft's argmax and verify by matching.
  int draft_n = 0, draft_flagged = 0, draft_written = 0;
  std::unique_ptr<sampling::Sampler> draft_sampler;
  std::vector<std::vector<float>> draft_q;
  double t_submit = 0, t_admit = 0, t_first = 0, t_last = 0;
};

}  // namespace

struct Engine::Impl {
  EngineConfig cfg;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<tok::Tokenizer> tokenizer;
  std::unique_ptr<kv::KvPool> kv;
  std::unique_ptr<kv::RadixCache> cache;
  std::unique_ptr<ThreadPool> pool;
  int n_ctx = 0;

  // submission side (any thread)
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::unique_ptr<Sequence>> incoming;
  bool stopping = false;
  uint64_t next_id = 1;
  int waiting_count = 0;  // incoming + waiting, for queue limits (under mu)

  // engine thread only
  std::list<std::unique_ptr<Sequence>> waiting, running;
  std::thread thread;

  std::mutex stats_mu;
  EngineStats stats;

  // Notify callbacks of this iteration's events, run by flush_notify() at its end.
  NotifyBatch notify_batch;
  std::vector<float> logits_buf;  // step()'s logits

  // speculative decoding
  spec::NgramDrafter ngram;
  spec::SharedNgramIndex shared_ngrams;  // outputs of finished requests
  std::unique_ptr<model::Model> draft;   // draft model (optional)
  std::unique_ptr<kv::KvPool> draft_kv;  // its KV: the same page ids as kv
  std::vector<uint8_t> page_draft_ok;    // [page] 1 = the page's draft KV is complete and committed
  std::vector<float> draft_logits;
  double draft_step_rel = 0.3;           // a draft-model step of one token / a target step of one
  void draft_with_model(std::vector<std::pair<Sequence*, int>>& seqs);
  void sync_draft_pages(Sequence& s);
  spec::Mode drafter_of(const Sequence& s) const {
    if (s.spec == spec::Mode::kAuto)
      return gate_arm == 2 ? spec::Mode::kDraft : gate_arm == 1 ? spec::Mode::kNgram : spec::Mode::kOff;
    return s.spec;
  }
  static constexpr int kCalibrateMax = 12;
  std::vector<double> step_ms;  // [n-1]: ms of a step of n tokens of one sequence (calibrated on first use)
  bool calibrated = false;
  void propose_drafts();
  // auto's empirical guard (spec::SpecGate) and this step's part in it
  spec::SpecGate gate;
  bool gate_step = false;  // an auto sequence was decoding this step: the step is a sample
  int gate_arm = 0;        // what auto sequences do this step: 0 no drafts, 1 n-gram, 2 draft model
  double t_step0 = 0;      // when this step's drafting began (auto's guard times whole steps)
  std::vector<double> step_cost_curve(int n_decode, int max_k) const;
  double step_time(int n_tokens) const;  // ms of a step of n tokens (calibrated; interpolated)
  void calibrate_step_costs();
  std::mutex dispatch_mu;
  std::function<void(NotifyBatch&&)> dispatch;  // under dispatch_mu
  void flush_notify();

  void loop();
  void take_incoming();
  void drop_cancelled();
  void admit();
  bool reserve_pages(Sequence& s, int n_tokens);
  int usable_prefix(const std::vector<kv::RadixCache::Node*>& path) const;
  void drop_passed_windows(Sequence& s);
  void release(Sequence& s);
  void preempt(Sequence& victim);
  void finish(std::unique_ptr<Sequence> s, const std::string& reason, const std::string& error = "");
  void insert_full_pages(Sequence& s);
  void step();
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() { shutdown(); }

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& cfg) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  auto m = model::Model::load(cfg.model_path);
  if (!m) return m.status();
  impl->model = std::move(m.value());
  impl->model->set_decode_numerics(cfg.decode_numerics);
  auto t = tok::Tokenizer::from_gguf(impl->model->file());
  if (!t) return t.status();
  impl->tokenizer = std::move(t.value());
  if (impl->tokenizer->n_vocab() != impl->model->hparams().n_vocab)
    return corrupt(cfg.model_path + ": tokenizer has " + std::to_string(impl->tokenizer->n_vocab()) +
                   " tokens but the model " + std::to_string(impl->model->hparams().n_vocab));
  if (cfg.page_size <= 0 || cfg.max_batch_tokens <= 0 || cfg.prefill_batch_target <= 0 || cfg.max_running <= 0 ||
      cfg.max_queue < 0)
    return invalid_argument("engine: page size, batch budget and limits must be positive");
  impl->n_ctx = cfg.n_ctx > 0 ? cfg.n_ctx : std::min(impl->model->hparams().n_ctx_train, 8192);
  impl->model->set_context_size(impl->n_ctx);
  const int ps = cfg.page_size;
  const int pages_per_ctx = (impl->n_ctx + ps - 1) / ps + 1;
  if (cfg.kv_pages < 0 || cfg.kv_local_slots < 0)
    return invalid_argument("engine: KV pages and local slots must not be negative");
  kv::KvConfig kc = impl->model->kv_config(1, ps, cfg.kv_type);
  const bool local = kc.n_local() > 0;
  int n_pages = cfg.kv_pages, n_slots = local ? cfg.kv_local_slots : 0;
  // One sequence's window and prefill chunk, and every running sequence's (+ one chunk).
  const int64_t one_need = std::min<int64_t>(pages_per_ctx, seq_local_slots(kc.window, ps, cfg.max_batch_tokens));
  const int64_t all_need =
      static_cast<int64_t>(cfg.max_running) * seq_local_slots(kc.window, ps, ps) + (cfg.max_batch_tokens + ps - 1) / ps;
  if (n_pages == 0) {
    const size_t budget =
        cfg.kv_mem_bytes > 0 ? cfg.kv_mem_bytes : 4 * static_cast<size_t>(pages_per_ctx) * kc.page_bytes();
    const size_t g = kc.global_page_bytes(), l = kc.local_slot_bytes();
    auto cost = [&](int64_t np, int64_t ns) { return static_cast<size_t>(np) * g + static_cast<size_t>(ns + 1) * l; };
    if (!local) {
      n_pages = static_cast<int>(std::min<size_t>(budget / kc.page_bytes(), INT32_MAX / 2));
    } else if (n_slots > 0) {
      const size_t rest = budget - std::min(budget, cost(0, n_slots));
      n_pages = static_cast<int>(g > 0 ? std::min<size_t>(rest / g, INT32_MAX / 2) : 4 * static_cast<size_t>(n_slots));
    } else {
      // The most pages whose arenas fit the budget: a local arena of fewer slots than
      // pages leaves room for more pages (cost grows with n_pages: binary search).
      int64_t lo = 0, hi = static_cast<int64_t>(std::min<size_t>(4 * budget / (4 * g + l) + 4, INT32_MAX / 2));
      while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (cost(mid, derived_local_slots(static_cast<int>(mid), one_need, all_need)) <= budget) lo = mid;
        else hi = mid - 1;
      }
      n_pages = static_cast<int>(lo);
      n_slots = derived_local_slots(n_pages, one_need, all_need);
    }
  }
  if (n_pages < pages_per_ctx)
    return invalid_argument("engine: KV cache of " + std::to_string(n_pages) + " pages cannot hold one context of " +
                            std::to_string(impl->n_ctx) + " tokens (needs " + std::to_string(pages_per_ctx) +
                            "; raise --kv-pages/--kv-mem or lower --ctx)");
  if (local) {
    n_slots = n_slots == 0 ? n_pages : std::min(n_slots, n_pages);
    if (n_slots < one_need)
      return invalid_argument("engine: " + std::to_string(n_slots) + " local KV slots cannot hold one request's " +
                              std::to_string(kc.window) + "-token sliding window and " +
                              std::to_string(cfg.max_batch_tokens) + "-token prefill chunk (needs " +
                              std::to_string(one_need) + ")");
  }
  kc.n_pages = n_pages;
  kc.n_local_slots = n_slots;
  auto kv = kv::KvPool::create(kc);
  if (!kv) return kv.status();
  impl->kv = std::make_unique<kv::KvPool>(std::move(kv.value()));
  impl->cache = std::make_unique<kv::RadixCache>(*impl->kv);
  if (!cfg.draft_path.empty()) {
    auto dm = model::Model::load(cfg.draft_path);
    if (!dm) return dm.status();
    auto dt = tok::Tokenizer::from_gguf(dm.value()->file());
    if (!dt) return dt.status();
    // The same vocabulary: the draft's token ids must mean the target's (same count, same
    // bytes for every id). Verification never trusts the draft, but a draft over another
    // vocabulary would only ever be rejected.
    const int nv = impl->tokenizer->n_vocab();
    if (dt.value()->n_vocab() != nv || dm.value()->hparams().n_vocab != impl->model->hparams().n_vocab)
      return invalid_argument("draft model " + cfg.draft_path + ": vocabulary of " +
                              std::to_string(dt.value()->n_vocab()) + " tokens, the target's has " + std::to_string(nv));
    for (int32_t id = 0; id < nv; ++id)
      if (dt.value()->token_to_piece(id, true) != impl->tokenizer->token_to_piece(id, true))
        return invalid_argument("draft model " + cfg.draft_path + ": token " + std::to_string(id) +
                                " differs from the target's (not the same vocabulary)");
    impl->draft = std::move(dm.value());
    impl->draft->set_decode_numerics(cfg.decode_numerics);
    impl->draft->set_context_size(impl->n_ctx);
    // Companion arena: one draft page per target page, every layer in the global arena
    // (a sliding-window draft masks by window but keeps all its pages' KV).
    kv::KvConfig dc = impl->draft->kv_config(n_pages, ps, cfg.kv_type);
    dc.local_layers.clear();
    dc.window = 0;
    dc.n_local_slots = 0;
    auto dkv = kv::KvPool::create(dc);
    if (!dkv) return dkv.status();
    impl->draft_kv = std::make_unique<kv::KvPool>(std::move(dkv.value()));
    impl->page_draft_ok.assign(n_pages, 0);
    impl->stats.has_draft_model = true;
    impl->gate = spec::SpecGate(3);
  }
  impl->pool = std::make_unique<ThreadPool>(cfg.n_threads);
  impl->stats.kv_pages_total = n_pages;
  impl->stats.kv_pages_free = n_pages;
  impl->stats.kv_local_slots_total = impl->kv->n_local_slots();
  impl->stats.kv_local_slots_free = impl->kv->n_local_slots();
  impl->stats.kv_bytes = impl->kv->bytes() + (impl->draft_kv ? impl->draft_kv->bytes() : 0);
  impl->stats.spec_accept_hist.assign(kMaxDraft + 1, 0);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->loop(); });
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

void Engine::shutdown() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    if (impl_->stopping && !impl_->thread.joinable()) return;
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

const tok::Tokenizer& Engine::tokenizer() const { return *impl_->tokenizer; }
const model::Model& Engine::model() const { return *impl_->model; }
const model::Model* Engine::draft_model() const { return impl_->draft.get(); }
int Engine::n_ctx() const { return impl_->n_ctx; }

void Engine::set_notify_dispatcher(std::function<void(NotifyBatch&&)> dispatch) {
  std::lock_guard<std::mutex> lk(impl_->dispatch_mu);
  impl_->dispatch = std::move(dispatch);
}

EngineStats Engine::stats(bool take_latencies) {
  std::lock_guard<std::mutex> lk(impl_->stats_mu);
  EngineStats s = impl_->stats;
  if (take_latencies) {
    impl_->stats.ttft_ms.clear();
    impl_->stats.itl_ms.clear();
  }
  return s;
}

Result<std::shared_ptr<RequestHandle>> Engine::submit(GenerateRequest req) {
  Impl& d = *impl_;
  if (req.prompt.empty()) return invalid_argument("prompt: empty");
  for (int32_t t : req.prompt)
    if (t < 0 || t >= d.model->hparams().n_vocab)
      return invalid_argument("prompt: token id " + std::to_string(t) + " out of range");
  if (req.max_tokens < 0) return invalid_argument("max_tokens: must be >= 0");
  const int64_t need = static_cast<int64_t>(req.prompt.size()) + req.max_tokens;
  if (need > d.n_ctx)
    return invalid_argument("context_length_exceeded: this model's maximum context length is " + std::to_string(d.n_ctx) +
                            " tokens, but the request has " + std::to_string(req.prompt.size()) + " prompt tokens and max_tokens " +
                            std::to_string(req.max_tokens));
  auto s = std::make_unique<Sequence>();
  s->t_submit = now_ms();
  s->tokens = req.prompt;
  s->n_prompt = static_cast<int>(req.prompt.size());
  if (req.ignore_eos) {
    for (int32_t id : d.tokenizer->eog_ids()) req.sampling.banned_tokens.push_back(id);
  }
  s->sampler = std::make_unique<sampling::Sampler>(req.sampling);
  s->spec = req.spec_mode.value_or(d.cfg.spec_mode);
  if (s->spec == spec::Mode::kDraft && !d.draft)
    return invalid_argument("speculative.mode: 'draft' needs a draft model (start the server with --draft FILE)");
  if (d.draft && s->spec != spec::Mode::kOff && s->spec != spec::Mode::kNgram) {
    // The draft's sampling: the request's temperature and truncation (no penalties: q
    // only has to be the distribution the drafts were drawn from), its own random stream.
    sampling::SamplingParams dp = req.sampling;
    dp.repetition_penalty = 1.0f;
    dp.presence_penalty = dp.frequency_penalty = 0.0f;
    dp.seed = req.sampling.seed ^ 0xd1b54a32d192ed03ULL;
    s->draft_sampler = std::make_unique<sampling::Sampler>(dp);
  }
  s->spec_max = std::clamp(req.spec_max >= 0 ? req.spec_max : d.cfg.spec_max, 0, kMaxDraft);
  s->text = std::make_unique<TextStream>(*d.tokenizer, req.stop);
  s->req = std::move(req);
  std::shared_ptr<RequestHandle> h;
  {
    std::lock_guard<std::mutex> lk(d.mu);
    if (d.stopping) return Status(ErrorCode::kInternal, "shutting_down: the server is stopping");
    if (d.waiting_count >= d.cfg.max_queue) {
      std::lock_guard<std::mutex> sl(d.stats_mu);
      ++d.stats.requests_rejected;
      return Status(ErrorCode::kInternal, "queue_full: " + std::to_string(d.waiting_count) + " requests are waiting");
    }
    h = std::make_shared<RequestHandle>(d.next_id++);
    s->handle = h;
    d.incoming.push_back(std::move(s));
    ++d.waiting_count;
  }
  {
    std::lock_guard<std::mutex> sl(d.stats_mu);
    ++d.stats.requests_submitted;
  }
  d.cv.notify_one();
  return h;
}

// ------------------------------------------------------------------ engine thread

void Engine::Impl::take_incoming() {
  std::lock_guard<std::mutex> lk(mu);
  while (!incoming.empty()) {
    waiting.push_back(std::move(incoming.front()));
    incoming.pop_front();
  }
}

void Engine::Impl::release(Sequence& s) {
  if (kv->has_local_layers())
    for (size_t i = s.local_from; i < s.pt.pages.size(); ++i) kv->drop_local(s.pt.pages[i]);
  s.local_from = 0;
  s.draft_n = s.draft_flagged = s.draft_written = 0;
  cache->unlock(s.path);
  s.path.clear();
  s.pt.clear(*kv);
}

void Engine::Impl::finish(std::unique_ptr<Sequence> s, const std::string& reason, const std::string& error) {
  const double t = now_ms();
  Event e;
  e.kind = Event::Kind::kFinish;
  e.text = s->text->finish(reason == "stop" || reason == "length");
  e.finish_reason = reason;
  e.error = error;
  e.prompt_tokens = s->n_prompt;
  e.cached_tokens = s->cached_tokens;
  e.completion_tokens = s->n_generated;
  e.queue_ms = s->admitted_once ? s->t_admit - s->t_submit : t - s->t_submit;
  e.prompt_ms = s->t_first > 0 ? s->t_first - s->t_admit : 0;
  e.decode_ms = s->t_first > 0 ? t - s->t_first : 0;
  e.draft_tokens = static_cast<int>(s->n_drafted);
  e.accepted_tokens = static_cast<int>(s->n_accepted);
  e.verify_steps = static_cast<int>(s->n_verify_steps);
  if (reason != "cancelled" && reason != "error") {
    insert_full_pages(*s);
    // Its output (with a little of the prompt before it) joins the shared n-gram index
    // that drafts for later requests.
    const size_t from = static_cast<size_t>(std::max(0, s->n_prompt - spec::SharedNgramIndex::kN));
    if (s->n_generated > 0) shared_ngrams.add(std::span<const int32_t>(s->tokens.data() + from, s->tokens.size() - from));
  }
  release(*s);
  {
    std::lock_guard<std::mutex> sl(stats_mu);
    ++stats.requests_finished;
    if (reason == "cancelled") ++stats.requests_cancelled;
  }
  s->handle->push(std::move(e), &notify_batch);
}

void Engine::Impl::drop_cancelled() {
  for (auto* list : {&waiting, &running}) {
    for (auto it = list->begin(); it != list->end();) {
      if ((*it)->handle->cancelled()) {
        auto s = std::move(*it);
        it = list->erase(it);
        if (list == &waiting) {
          std::lock_guard<std::mutex> lk(mu);
          --waiting_count;
        }
        finish(std::move(s), "cancelled");
      } else {
        ++it;
      }
    }
  }
}

void Engine::Impl::insert_full_pages(Sequence& s) {
  const int ps = kv->page_size();
  const int n_full = std::min(s.pt.n_tokens, static_cast<int>(s.tokens.size())) / ps;
  if (n_full <= static_cast<int>(s.path.size())) return;
  cache->insert(s.tokens.data(), s.pt.pages.data(), n_full, &s.path);
  // Where the cache already held the same tokens, share its page and drop ours (not
  // where this sequence still reads the window KV that the cached page no longer has).
  for (int i = 0; i < n_full; ++i) {
    const int32_t cached = cache->page_of(s.path[i]);
    if (cached != s.pt.pages[i]) {
      const bool reads_window = i >= s.local_from && kv->has_local_layers();
      if (reads_window && !kv->retain_local(cached)) continue;
      kv->retain(cached);
      if (reads_window) kv->drop_local(s.pt.pages[i]);
      kv->release(s.pt.pages[i]);
      s.pt.pages[i] = cached;
      if (draft && !page_draft_ok[cached] && s.draft_n > i * ps) {
        s.draft_n = s.draft_written = i * ps;  // the cached page has no draft KV: the drafter catches up from here
        s.draft_flagged = std::min(s.draft_flagged, i);
      }
    }
  }
}

// The pages of a radix match a sequence may use. Its first query comes at position P
// (the prefix length) and no query reads sliding-window KV before window_keep_from(P),
// so the prefix is usable exactly when the pages holding [window_keep_from(P), P) still
// have their local slots (dropped slots stay attached until alloc() reuses them); else
// shorter prefixes are tried. Global layers keep every page's KV: nothing to check.
int Engine::Impl::usable_prefix(const std::vector<kv::RadixCache::Node*>& path) const {
  int n = static_cast<int>(path.size());
  if (!kv->has_local_layers()) return n;
  const int ps = kv->page_size(), window = kv->config().window;
  while (n > 0) {
    int missing = -1;
    for (int i = n - 1; i >= window_keep_from(n * ps, window) / ps; --i) {
      if (!kv->has_local(cache->page_of(path[i]))) {
        missing = i;
        break;
      }
    }
    if (missing < 0) break;
    n = missing;  // every prefix that ends after page `missing` (and is shorter) needs it too
  }
  return n;
}

// Gives back the local slots of the sequence's pages that no later query of it reads
// (its next positions' windows start after them). Pages other readers share keep their
// slot while those hold it; a page the radix tree holds keeps its dropped slot attached
// until alloc() reuses it.
void Engine::Impl::drop_passed_windows(Sequence& s) {
  if (!kv->has_local_layers()) return;
  const int upto = window_keep_from(s.pt.n_tokens, kv->config().window) / kv->page_size();
  for (; s.local_from < upto; ++s.local_from) kv->drop_local(s.pt.pages[s.local_from]);
}

void Engine::Impl::admit() {
  const int ps = kv->page_size();
  while (!waiting.empty() && static_cast<int>(running.size()) < cfg.max_running) {
    // Among the first few waiting requests prefer the longest cached prefix; the oldest
    // may be passed over at most kMaxSkips times (bounded unfairness).
    auto best = waiting.begin();
    size_t best_len = 0;
    int considered = 0;
    for (auto it = waiting.begin(); it != waiting.end() && considered < kAdmitWindow; ++it, ++considered) {
      const auto& s = **it;
      const int n = static_cast<int>(s.tokens.size());
      const size_t len = usable_prefix(cache->match(s.tokens.data(), n, (n - 1) / ps));
      if (it == waiting.begin() || len > best_len) {
        best = it;
        best_len = len;
      }
    }
    if (best != waiting.begin() && (*waiting.begin())->skips >= kMaxSkips) best = waiting.begin();
    Sequence& s = **best;
    const int n = static_cast<int>(s.tokens.size());
    auto path = cache->match(s.tokens.data(), n, (n - 1) / ps);
    path.resize(usable_prefix(path));
    // No duplicate work: if a running request is still prefilling a longer common prefix,
    // wait for its pages to enter the cache instead of computing them twice.
    bool defer = false;
    for (const auto& r : running) {
      if (r->pt.n_tokens >= r->n_prompt) continue;  // not prefilling
      const int lim = std::min<int>(n - 1, static_cast<int>(r->tokens.size()));
      int common = 0;
      while (common < lim && r->tokens[common] == s.tokens[common]) ++common;
      if (common / ps > static_cast<int>(path.size()) && r->pt.n_tokens < (common / ps) * ps) {
        defer = true;
        break;
      }
    }
    if (defer) {
      if (running.empty()) break;  // cannot happen, but never spin
      if (best == waiting.begin()) break;
      ++(*waiting.begin())->skips;
      break;
    }
    if (best != waiting.begin()) ++(*waiting.begin())->skips;
    cache->lock(path);
    s.path = path;
    for (auto* node : path) {
      const int32_t p = cache->page_of(node);
      kv->retain(p);
      s.pt.pages.push_back(p);
    }
    s.pt.n_tokens = static_cast<int>(path.size()) * ps;
    if (draft) {
      int ok = 0;
      while (ok < static_cast<int>(s.pt.pages.size()) && page_draft_ok[s.pt.pages[ok]]) ++ok;
      s.draft_flagged = ok;
      s.draft_n = s.draft_written = ok * ps;
    }
    // Read the window KV of the prefix's last pages: hold their slots (usable_prefix
    // checked they are attached; nothing was allocated since).
    s.local_from = window_keep_from(s.pt.n_tokens, kv->config().window) / ps;
    for (size_t i = s.local_from; i < s.pt.pages.size(); ++i) {
      const bool ok = kv->retain_local(s.pt.pages[i]);
      assert(ok);
      (void)ok;
    }
    if (!s.admitted_once) {
      s.cached_tokens = std::min(s.pt.n_tokens, s.n_prompt);
      s.t_admit = now_ms();
      s.admitted_once = true;
      std::lock_guard<std::mutex> sl(stats_mu);
      stats.cached_prompt_tokens += s.cached_tokens;
      stats.prompt_tokens += s.n_prompt;
    }
    // A property of the prompt alone (not of what the cache or a preemption left to
    // compute), so results do not depend on cache hits or scheduling.
    s.tiled = s.n_prompt >= kTiledPromptTokens;
    running.push_back(std::move(*best));
    waiting.erase(best);
    std::lock_guard<std::mutex> lk(mu);
    --waiting_count;
  }
}

// Frees a running sequence's KV and sends it back to the front of the queue; it will
// recompute its tokens (prompt + generated so far) when readmitted.
void Engine::Impl::preempt(Sequence& victim) {
  release(victim);
  for (auto it = running.begin(); it != running.end(); ++it) {
    if (it->get() == &victim) {
      waiting.push_front(std::move(*it));
      running.erase(it);
      break;
    }
  }
  std::lock_guard<std::mutex> lk(mu);
  ++waiting_count;
  std::lock_guard<std::mutex> sl(stats_mu);
  ++stats.preemptions;
}

bool Engine::Impl::reserve_pages(Sequence& s, int n_tokens) {
  const int ps = kv->page_size();
  const int need = (n_tokens + ps - 1) / ps - static_cast<int>(s.pt.pages.size());
  if (need <= 0) return true;
  // Evicting cached prefixes frees pages; local slots it cannot free (the tree holds
  // none: only running sequences do), so a shortage of those preempts.
  if (kv->n_free_pages() < need) cache->evict(need - kv->n_free_pages());
  if (kv->n_free() < need) return false;
  const size_t before = s.pt.pages.size();
  const bool ok = s.pt.reserve(*kv, n_tokens);
  if (draft)
    for (size_t i = before; i < s.pt.pages.size(); ++i) page_draft_ok[s.pt.pages[i]] = 0;
  return ok;
}

// Marks the pages wholly inside [0, draft_n) as holding committed draft KV.
void Engine::Impl::sync_draft_pages(Sequence& s) {
  if (!draft) return;
  const int ps = kv->page_size();
  const int full = std::min<int>(s.draft_n / ps, static_cast<int>(s.pt.pages.size()));
  s.draft_flagged = std::min(s.draft_flagged, full);
  for (; s.draft_flagged < full; ++s.draft_flagged) page_draft_ok[s.pt.pages[s.draft_flagged]] = 1;
}

void Engine::Impl::propose_drafts() {
  // Drafts for the decoding sequences that speculate: n-gram lookup over their own tokens,
  // then over recent outputs of every request, or the draft model (all its sequences in
  // one batched step per draft position). ngram/draft: spec_max tokens (n-gram: as many as
  // the lookup finds); auto: the length the controller picks from the sequence's
  // acceptance and the measured step costs at this batch size.
  int n_decode = 0;
  for (auto& s : running) n_decode += static_cast<int>(s->tokens.size()) - s->pt.n_tokens == 1;
  // The whole batch's objective: each sequence's draft length is chosen given the tokens
  // already planned (n_step) and expected (expected) for the step, so that 8 sequences do
  // not each assume they are the only one lengthening it; draft-model rounds are shared,
  // so a sequence pays only for rounds beyond those already planned.
  int n_step = n_decode;
  double expected = n_decode;
  int rounds_planned = 0;
  gate_step = false;
  for (auto& s : running)
    gate_step |= s->spec == spec::Mode::kAuto && static_cast<int>(s->tokens.size()) - s->pt.n_tokens == 1;
  if (gate_step && !calibrated) {
    // The step-cost curve, measured once on first need, before the step's clock starts:
    // auto's guard must not charge the calibration to a drafter.
    calibrate_step_costs();
    calibrated = true;
  }
  t_step0 = now_ms();
  gate_arm = gate_step ? gate.choose(n_decode) : 0;
  std::vector<std::pair<Sequence*, int>> by_model;
  const int ps = kv->page_size();
  for (auto& sp : running) {
    Sequence& s = *sp;
    s.draft.clear();
    s.draft_q.clear();
    if (s.spec == spec::Mode::kOff || static_cast<int>(s.tokens.size()) - s.pt.n_tokens != 1) continue;
    // Room: max_tokens counts the token this step samples anyway; n_ctx bounds the KV.
    int room = std::min(s.req.max_tokens - s.n_generated - 1, n_ctx - static_cast<int>(s.tokens.size()) - 1);
    room = std::min(room, s.spec_max);
    if (room <= 0) continue;
    const spec::Mode how = drafter_of(s);
    int k = room;
    if (s.spec == spec::Mode::kAuto) {
      if (how == spec::Mode::kOff) continue;
      std::vector<double> cost = step_cost_curve(n_step, room);
      if (how == spec::Mode::kDraft) {
        const double rel = draft_step_rel * step_time(1) / step_time(std::max(1, n_step));
        for (int j = rounds_planned + 1; j <= room; ++j) cost[j] += (j - rounds_planned) * rel;
      }
      k = s.controller.choose(cost, room, expected - 1);
    }
    if (k <= 0) continue;
    if (how == spec::Mode::kNgram) {
      ngram.draft(s.tokens, k, &shared_ngrams, &s.draft);
      n_step += static_cast<int>(s.draft.size());
      expected += s.controller.expected_tokens(static_cast<int>(s.draft.size())) - 1;
      continue;
    }
    // Pages for the drafts' KV (the draft model writes it first); drafts never evict or
    // preempt anything.
    const int L = static_cast<int>(s.tokens.size());
    const int need = (L + k + ps - 1) / ps - static_cast<int>(s.pt.pages.size());
    if (need > 0 && (kv->n_free() < need || !reserve_pages(s, L + k))) continue;
    by_model.push_back({&s, k});
    n_step += k;
    expected += s.controller.expected_tokens(k) - 1;
    rounds_planned = std::max(rounds_planned, k);
  }
  if (!by_model.empty()) draft_with_model(by_model);
}

// The draft model's part of a step: round 0 feeds each sequence's committed tokens the
// draft has not seen (usually the last sampled one or two; the whole prompt the first
// time, within the step's token budget) and drafts one token; round r feeds draft r and
// drafts r + 1. One forward per round for all sequences. Greedy requests take the draft's
// argmax; sampled ones draw from its distribution (kept for rejection sampling).
void Engine::Impl::draft_with_model(std::vector<std::pair<Sequence*, int>>& seqs) {
  const double t0 = now_ms();
  const int nv = draft->hparams().n_vocab;
  int budget = cfg.max_batch_tokens;
  model::Batch b;
  std::vector<Sequence*> rows;  // sequences with a logits row, in order
  std::vector<std::pair<Sequence*, int>> partial;  // caught up part way: (sequence, tokens fed)
  for (auto& [s, k] : seqs) {
    const int L = static_cast<int>(s->tokens.size());
    const int n = L - s->draft_n;
    const int idx = static_cast<int>(b.seqs.size());
    if (n > budget) {
      if (budget > 0) {
        b.seqs.push_back(&s->pt);
        for (int i = 0; i < budget; ++i) b.add(s->tokens[s->draft_n + i], s->draft_n + i, idx, false);
        partial.push_back({s, budget});
        budget = 0;
      }
      k = 0;
      continue;
    }
    budget -= n;
    b.seqs.push_back(&s->pt);
    for (int i = 0; i < n; ++i) b.add(s->tokens[s->draft_n + i], s->draft_n + i, idx, i == n - 1);
    rows.push_back(s);
  }
  auto sample_rows = [&](const std::vector<Sequence*>& rs) {
    for (size_t r = 0; r < rs.size(); ++r) {
      Sequence& s = *rs[r];
      const float* row = draft_logits.data() + r * static_cast<size_t>(nv);
      if (!(s.req.sampling.temperature > 0.0f)) {
        // greedy: the draft's argmax (ties: the lowest id), no distribution to keep; one
        // pass instead of the sampler's exponentials over the vocabulary
        int32_t d = -1;
        float best = -std::numeric_limits<float>::infinity();
        for (int32_t j = 0; j < nv; ++j)
          if (row[j] > best) best = row[j], d = j;
        if (d < 0) continue;
        s.draft.push_back(d);
        continue;
      }
      std::vector<float> q;
      const int32_t d = s.draft_sampler->sample_draft(row, nv, &q);
      if (d < 0) continue;
      s.draft.push_back(d);
      s.draft_q.push_back(std::move(q));
    }
  };
  Status st = b.size() > 0 ? draft->forward(b, *draft_kv, *pool, &draft_logits) : Status::ok();
  if (!st) {
    for (auto& [s, k] : seqs) s->draft.clear(), s->draft_q.clear();
    return;
  }
  for (auto& [s, n] : partial) {
    s->draft_n += n;
    s->draft_written = s->draft_n;
    sync_draft_pages(*s);
  }
  for (Sequence* s : rows) s->draft_n = s->draft_written = static_cast<int>(s->tokens.size());
  for (Sequence* s : rows) sync_draft_pages(*s);
  sample_rows(rows);
  for (int r = 1;; ++r) {
    b.clear();
    std::vector<Sequence*> next;
    for (auto& [s, k] : seqs) {
      if (k <= r || static_cast<int>(s->draft.size()) != r) continue;  // done, or stopped early
      if (tokenizer->is_eog(s->draft.back())) continue;  // nothing follows an end of generation
      const int idx = static_cast<int>(b.seqs.size());
      b.seqs.push_back(&s->pt);
      b.add(s->draft.back(), static_cast<int>(s->tokens.size()) - 1 + r, idx, true);
      next.push_back(s);
    }
    if (next.empty()) break;
    if (!draft->forward(b, *draft_kv, *pool, &draft_logits)) break;
    for (Sequence* s : next) s->draft_written = static_cast<int>(s->tokens.size()) + r;
    sample_rows(next);
  }
  const double dt = now_ms() - t0;
  std::lock_guard<std::mutex> sl(stats_mu);
  stats.spec_draft_ms += dt;
}

double Engine::Impl::step_time(int n) const {
  if (step_ms.empty()) return 1.0;
  if (n <= 1) return step_ms[0];
  const int last = static_cast<int>(step_ms.size());
  if (n <= last) return step_ms[n - 1];
  const double slope = last >= 2 ? (step_ms[last - 1] - step_ms[last - 2]) : step_ms[0];
  return step_ms[last - 1] + slope * (n - last);
}

// cost[k] = (time of a step of n_decode + k tokens) / (time of n_decode tokens), from the
// calibration at start-up (interpolated; beyond its largest size, linear).
std::vector<double> Engine::Impl::step_cost_curve(int n_decode, int max_k) const {
  std::vector<double> c(max_k + 1);
  const double base = step_time(std::max(1, n_decode));
  for (int k = 0; k <= max_k; ++k) c[k] = step_time(std::max(1, n_decode) + k) / base;
  return c;
}

// Times forward steps of one scratch sequence with 1..kCalibrateMax tokens (best of two),
// the verify-cost curve the auto draft length uses. A few hundred ms for a 1B model.
void Engine::Impl::calibrate_step_costs() {
  // Without a measurement (no free pages now): a conservative prior, each extra token
  // 30% of a one-token step.
  step_ms.assign(kCalibrateMax, 0.0);
  for (int n = 1; n <= kCalibrateMax; ++n) step_ms[n - 1] = 1.0 + 0.3 * (n - 1);
  kv::PageTable pt;
  if (kv->n_free() < (kCalibrateMax + kv->page_size() - 1) / kv->page_size() + 1 || !pt.reserve(*kv, kCalibrateMax))
    return;
  std::vector<float> logits;
  // Three interleaved rounds over the sizes, the fastest of each: a burst of noise (this
  // machine is shared) spoils one sample of a few sizes, not every sample of one size.
  std::vector<double> measured(kCalibrateMax, 1e30);
  for (int round = 0; round < 3; ++round) {
    for (int n = 1; n <= kCalibrateMax; ++n) {
      model::Batch b;
      b.seqs.push_back(&pt);
      b.seq_tiled_until.push_back(0);
      for (int i = 0; i < n; ++i) b.add(i % model->hparams().n_vocab, i, 0, true);
      const double t0 = now_ms();
      if (!model->forward(b, *kv, *pool, &logits)) {
        pt.clear(*kv);
        pool->rest();
        return;
      }
      measured[n - 1] = std::min(measured[n - 1], now_ms() - t0);
    }
  }
  // A larger step never costs less than a smaller one: the closest non-decreasing curve
  // (a running max would carry one slow sample to every larger size).
  spec::fit_non_decreasing(&measured);
  step_ms = measured;
  if (draft) {
    // One draft-model round of one token, relative to a one-token target step.
    double best = 1e30;
    for (int rep = 0; rep < 3; ++rep) {
      model::Batch b;
      b.seqs.push_back(&pt);
      b.add(rep % model->hparams().n_vocab, rep, 0, true);
      const double t0 = now_ms();
      if (!draft->forward(b, *draft_kv, *pool, &logits)) break;
      best = std::min(best, now_ms() - t0);
    }
    if (best < 1e30 && measured[0] > 0) draft_step_rel = best / measured[0];
  }
  {
    std::lock_guard<std::mutex> sl(stats_mu);
    stats.spec_step_cost.clear();
    for (double v : measured) stats.spec_step_cost.push_back(v / measured[0]);
  }
  pt.clear(*kv);
  pool->rest();
}

void Engine::Impl::step() {
  // Plan (sched::plan_step): decoding sequences (next token + drafts), then prompt chunks.
  propose_drafts();  // sets t_step0
  std::vector<Sequence*> cand;
  std::vector<sched::SeqCounts> counts;
  for (auto& s : running) {
    cand.push_back(s.get());
    counts.push_back({static_cast<int>(s->tokens.size()) - s->pt.n_tokens, static_cast<int>(s->draft.size()),
                      s->prefill_skips});
  }
  const std::vector<sched::PlanItem> plan = sched::plan_step(counts, {cfg.max_batch_tokens, cfg.prefill_batch_target});

  model::Batch batch;
  std::vector<Sequence*> in_batch;
  std::vector<int> chunk;
  std::vector<Sequence*> preempted;
  for (const sched::PlanItem& item : plan) {
    Sequence* s = cand[item.seq];
    if (std::find(preempted.begin(), preempted.end(), s) != preempted.end()) continue;
    int take = item.take;
    if (!item.prefill && take > 1 && !reserve_pages(*s, s->pt.n_tokens + take)) {
      take = 1;  // drafts are optional: never preempt for them
      s->draft.clear();
    }
    if (!item.prefill) {
      s->draft.resize(take - 1);
      if (s->draft_q.size() > s->draft.size()) s->draft_q.resize(s->draft.size());
    }
    if (!reserve_pages(*s, s->pt.n_tokens + take)) {
      // Out of KV: preempt the most recently admitted other sequence not yet in this
      // batch, else stop planning (what is planned still runs). While the batch is empty
      // keep preempting until s fits: stopping after one would run nothing, readmit that
      // victim and preempt it again, forever, when s needs two victims' KV (local slots
      // of sliding-window models make that common).
      bool fits = false;
      for (;;) {
        Sequence* victim = nullptr;
        for (auto it = running.rbegin(); it != running.rend(); ++it) {
          Sequence* c = it->get();
          if (c != s && std::find(in_batch.begin(), in_batch.end(), c) == in_batch.end()) {
            victim = c;
            break;
          }
        }
        if (!victim) break;
        victim->draft.clear();
        preempted.push_back(victim);
        preempt(*victim);
        fits = reserve_pages(*s, s->pt.n_tokens + take);
        if (fits || !in_batch.empty()) break;
      }
      if (!fits) {
        if (in_batch.empty()) {
          // Alone and still no room: the pool is smaller than this context (config bug).
          auto it = std::find_if(running.begin(), running.end(), [&](auto& p) { return p.get() == s; });
          auto owned = std::move(*it);
          running.erase(it);
          finish(std::move(owned), "error", "kv cache too small for this request");
          return;
        }
        break;
      }
    }
    const int seq_idx = static_cast<int>(batch.seqs.size());
    batch.seqs.push_back(&s->pt);
    batch.seq_tiled_until.push_back(s->tiled ? s->n_prompt : 0);
    const int remaining = static_cast<int>(s->tokens.size()) - s->pt.n_tokens;
    for (int i = 0; i < take; ++i) {
      const int pos = s->pt.n_tokens + i;
      if (item.prefill) {
        batch.add(s->tokens[pos], pos, seq_idx, i == remaining - 1);
      } else {
        // The next token, then the drafts: logits at each (the verification rows).
        batch.add(i == 0 ? s->tokens[pos] : s->draft[i - 1], pos, seq_idx, true);
      }
    }
    in_batch.push_back(s);
    chunk.push_back(take);
  }
  for (auto& s : running) {
    if (static_cast<int>(s->tokens.size()) - s->pt.n_tokens == 1) continue;
    if (std::find(in_batch.begin(), in_batch.end(), s.get()) != in_batch.end()) s->prefill_skips = 0;
    else ++s->prefill_skips;
  }
  if (in_batch.empty()) return;

  if (kv->has_local_layers()) {
    const int held = kv->n_local_slots() - kv->n_free_local_slots();
    std::lock_guard<std::mutex> sl(stats_mu);
    stats.kv_local_slots_peak = std::max(stats.kv_local_slots_peak, held);
  }

  std::vector<float>& logits = logits_buf;  // reused: 1 MB for 8 x 32k logits, allocated and zeroed per step before
  const double t_fwd0 = now_ms();
  Status st = model->forward(batch, *kv, *pool, &logits);
  const double fwd_ms = now_ms() - t_fwd0;
  static const bool step_log = std::getenv("TACHYON_STEP_LOG") != nullptr;  // debugging aid: one line per step
  if (step_log) {
    std::string parts;
    for (size_t k = 0; k < in_batch.size(); ++k) parts += " " + std::to_string(chunk[k]) + "@" + std::to_string(in_batch[k]->pt.n_tokens);
    static double t_prev_end = 0;
    const double t_end = now_ms();
    std::fprintf(stderr, "step %.1f ms (%.1f ms since the last) tokens %d:%s\n", t_end - t_fwd0,
                 t_prev_end > 0 ? t_fwd0 - t_prev_end : 0.0, static_cast<int>(batch.size()), parts.c_str());
    t_prev_end = t_end;
  }
  {
    std::lock_guard<std::mutex> sl(stats_mu);
    ++stats.steps;
    stats.last_batch_tokens = static_cast<int>(batch.size());
  }
  bool decode_only = true;  // no prompt chunk in the step
  for (size_t k = 0; k < in_batch.size(); ++k)
    decode_only &= in_batch[k]->pt.n_tokens + chunk[k] - static_cast<int>(in_batch[k]->draft.size()) ==
                   static_cast<int>(in_batch[k]->tokens.size());
  if (st && calibrated && !step_ms.empty()) {
    // Keep the cost curve current with the real decode steps (no prompt chunks): a slow
    // EMA, each sample clipped to [0.5, 2] x the current value so one stall cannot move it.
    const int n = static_cast<int>(batch.size());
    if (decode_only && n <= static_cast<int>(step_ms.size())) {
      const double cur = step_ms[n - 1], sample = std::clamp(fwd_ms, 0.5 * cur, 2.0 * cur);
      step_ms[n - 1] = 0.95 * cur + 0.05 * sample;
      spec::fit_non_decreasing(&step_ms);
      std::lock_guard<std::mutex> sl(stats_mu);
      stats.spec_step_cost.resize(step_ms.size());
      for (size_t i = 0; i < step_ms.size(); ++i) stats.spec_step_cost[i] = step_ms[i] / step_ms[0];
    }
  }
  if (!st) {
    // A failed step ends its requests with an error (the server answers 500), never
    // silently as if the client had cancelled.
    for (Sequence* s : in_batch) {
      auto it = std::find_if(running.begin(), running.end(), [&](auto& p) { return p.get() == s; });
      auto owned = std::move(*it);
      running.erase(it);
      finish(std::move(owned), "error", st.message());
    }
    return;
  }

  // Sample every sequence that has logits, over the pool (each sequence owns its sampler;
  // a full-vocabulary log-softmax is ~0.3 ms, 2-3 ms of an 8-sequence decode step alone).
  // A sequence with drafts samples its rows in order and stops at the first sampled token
  // that differs from the draft (sample-and-match): the tokens, the sampler's history and
  // its random stream are exactly those of decoding without the drafts, one token a step.
  const int n_vocab = model->hparams().n_vocab;
  std::vector<int> row_of(in_batch.size(), -1);
  std::vector<Sequence*> to_sample;
  int rows = 0;
  for (size_t k = 0; k < in_batch.size(); ++k) {
    Sequence* s = in_batch[k];
    const bool decoding = !s->draft.empty() || s->pt.n_tokens + chunk[k] == static_cast<int>(s->tokens.size());
    if (decoding) {
      row_of[k] = rows;
      rows += 1 + static_cast<int>(s->draft.size());
      to_sample.push_back(s);
    }
  }
  std::vector<std::vector<sampling::SampleResult>> sampled(to_sample.size());
  auto sample_one = [&](int64_t i) {
    Sequence& s = *to_sample[i];
    const size_t k = std::find(in_batch.begin(), in_batch.end(), &s) - in_batch.begin();
    const float* base = logits.data() + static_cast<size_t>(row_of[k]) * n_vocab;
    auto& out = sampled[i];
    out.clear();
    const int n_top = std::max(0, s.req.top_logprobs);
    for (size_t j = 0; j <= s.draft.size(); ++j) {
      if (j < s.draft.size() && j < s.draft_q.size()) {
        // a draft drawn from the draft model's distribution: rejection sampling
        bool accepted = false;
        out.push_back(s.sampler->verify_draft(base + j * n_vocab, n_vocab, n_top, s.draft[j], s.draft_q[j].data(), &accepted));
        s.sampler->accept(out.back().token);
        if (!accepted) break;
        continue;
      }
      out.push_back(s.sampler->sample(base + j * n_vocab, n_vocab, n_top));
      s.sampler->accept(out.back().token);
      if (j == s.draft.size() || out.back().token != s.draft[j]) break;
    }
  };
  if (to_sample.size() > 1 && pool->n_threads() > 1) {
    RangeSplit split(static_cast<int64_t>(to_sample.size()), pool->n_threads());
    pool->run([&](int ith, int) {
      for (int64_t i; split.next(ith, &i);) sample_one(i);
    });
  } else {
    for (size_t i = 0; i < to_sample.size(); ++i) sample_one(static_cast<int64_t>(i));
  }

  // The rest of the iteration is serial (commit, notify, planning): the pool's workers
  // sleep instead of spinning, so that the I/O thread woken by the notifications runs on
  // a free core rather than preempting this one (measured: the notify post cost ~0.45 ms
  // of an 8-stream step; now the step's gap is ~0.3-0.5 ms shorter, for one ~0.1 ms
  // worker wake-up at the next forward).
  pool->rest();

  // Commit: accepted tokens append; the KV of rejected drafts stays behind pt.n_tokens,
  // where the next step overwrites it (only this sequence's own last pages: drafts sit
  // past every full page the radix tree may share).
  const double t = now_ms();
  std::vector<Sequence*> done;
  std::vector<std::string> done_reason;
  int64_t n_drafted = 0, n_accepted = 0, n_spec_steps = 0;
  for (size_t k = 0; k < in_batch.size(); ++k) {
    Sequence& s = *in_batch[k];
    if (row_of[k] < 0) {
      s.pt.n_tokens += chunk[k];
      drop_passed_windows(s);
      insert_full_pages(s);  // share finished prompt pages with requests arriving now
      continue;
    }
    const auto& rs = sampled[std::find(to_sample.begin(), to_sample.end(), &s) - to_sample.begin()];
    const int n_draft = static_cast<int>(s.draft.size());
    const int accepted = static_cast<int>(rs.size()) - 1;  // drafts that matched
    s.pt.n_tokens += chunk[k] - n_draft + accepted;  // a prompt's last chunk, or 1 + the accepted drafts
    drop_passed_windows(s);
    if (draft) {
      // The draft's KV stays valid for the committed tokens it saw; past them it held
      // rejected drafts, which the next round overwrites.
      s.draft_n = s.draft_written = std::min(s.draft_written, s.pt.n_tokens);
      sync_draft_pages(s);
    }
    if (n_draft > 0) {
      s.controller.record(n_draft, accepted);
      {
        std::lock_guard<std::mutex> sl(stats_mu);
        ++stats.spec_accept_hist[std::min(accepted, kMaxDraft)];
        if (!step_ms.empty()) {
          // accepted tokens came at no extra step; the drafts made this step longer
          const int n_step = static_cast<int>(batch.size());
          stats.spec_saved_ms += accepted * step_time(1) - (step_time(n_step) - step_time(n_step - n_draft));
        }
      }
      s.n_drafted += n_draft;
      s.n_accepted += accepted;
      ++s.n_verify_steps;
      n_drafted += n_draft;
      n_accepted += accepted;
      ++n_spec_steps;
    }
    s.draft.clear();
    bool finished = false;
    for (const auto& r : rs) {
      const bool first = s.n_generated == 0;
      {
        std::lock_guard<std::mutex> sl(stats_mu);
        if (first) stats.ttft_ms.push_back(t - s.t_submit);
        else stats.itl_ms.push_back(t - s.t_last);
        ++stats.generated_tokens;
      }
      if (first) {
        s.t_first = t;
        insert_full_pages(s);
      }
      s.t_last = t;
      if (!s.req.ignore_eos && tokenizer->is_eog(r.token)) {
        done.push_back(&s);
        done_reason.push_back("stop");
        finished = true;
        break;
      }
      s.tokens.push_back(r.token);
      ++s.n_generated;
      Event e;
      e.kind = Event::Kind::kToken;
      e.token = r.token;
      bool hit_stop = false;
      e.text = s.text->push(r.token, &hit_stop);
      if (s.req.top_logprobs >= 0) {
        e.logprob = r.logprob;
        for (const auto& tl : r.top) e.top.push_back({tl.id, tokenizer->token_to_piece(tl.id, true), tl.logprob});
      }
      s.handle->push(std::move(e), &notify_batch);
      if (hit_stop) {
        done.push_back(&s);
        done_reason.push_back("stop");
        finished = true;
        break;
      }
      if (s.n_generated >= s.req.max_tokens || static_cast<int>(s.tokens.size()) >= n_ctx) {
        done.push_back(&s);
        done_reason.push_back("length");
        finished = true;
        break;
      }
    }
    (void)finished;
  }
  if (gate_step && decode_only) {
    // auto's guard learns from whole iterations (drafting, verify, sampling, commit)
    int produced = 0;
    for (const auto& rs : sampled) produced += static_cast<int>(rs.size());
    // A step that drafted nothing (the lookup found no continuation, the controller chose
    // 0) was a plain step whatever the arm: it measures "none". So n-gram lookup, free
    // when it finds nothing, is judged by the steps where it did draft.
    const int arm = n_spec_steps > 0 ? gate_arm : 0;
    gate.record(static_cast<int>(in_batch.size()), arm, now_ms() - t_step0, produced);
    std::lock_guard<std::mutex> sl(stats_mu);
    ++stats.spec_auto_steps[arm];
  }
  if (n_spec_steps > 0) {
    std::lock_guard<std::mutex> sl(stats_mu);
    stats.spec_drafted += n_drafted;
    stats.spec_accepted += n_accepted;
    stats.spec_verify_steps += n_spec_steps;
  }
  for (size_t k = 0; k < done.size(); ++k) {
    auto it = std::find_if(running.begin(), running.end(), [&](auto& p) { return p.get() == done[k]; });
    auto owned = std::move(*it);
    running.erase(it);
    finish(std::move(owned), done_reason[k]);
  }
}

void Engine::Impl::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return stopping || !incoming.empty() || !running.empty() || !waiting.empty(); });
      if (stopping) break;
    }
    take_incoming();
    drop_cancelled();
    // max_tokens == 0: nothing to generate
    for (auto it = waiting.begin(); it != waiting.end();) {
      if ((*it)->req.max_tokens == 0) {
        auto s = std::move(*it);
        it = waiting.erase(it);
        {
          std::lock_guard<std::mutex> lk(mu);
          --waiting_count;
        }
        finish(std::move(s), "length");
      } else {
        ++it;
      }
    }
    admit();
    step();
    flush_notify();
    int depth;
    {
      std::lock_guard<std::mutex> lk(mu);
      depth = waiting_count;
    }
    std::lock_guard<std::mutex> sl(stats_mu);  // lock order: mu before stats_mu, never nested the other way
    stats.running = static_cast<int>(running.size());
    stats.queue_depth = depth;
    stats.kv_pages_free = kv->n_free_pages();
    stats.kv_pages_cached = cache->n_unlocked();
    stats.kv_local_slots_free = kv->n_free_local_slots();
  }
  // Shutdown: everything still queued or running ends as cancelled.
  take_incoming();
  while (!running.empty()) {
    auto s = std::move(running.front());
    running.pop_front();
    finish(std::move(s), "cancelled");
  }
  while (!waiting.empty()) {
    auto s = std::move(waiting.front());
    waiting.pop_front();
    finish(std::move(s), "cancelled");
  }
  flush_notify();
}

void Engine::Impl::flush_notify() {
  if (notify_batch.empty()) return;
  NotifyBatch batch;
  batch.swap(notify_batch);
  std::lock_guard<std::mutex> lk(dispatch_mu);
  if (dispatch) {
    dispatch(std::move(batch));
  } else {
    for (auto& fn : batch) fn();
  }
}

}  // namespace tachyon::engine
