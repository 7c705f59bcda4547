// The engine thread: admission (with the radix prefix cache), scheduling under a token
// budget, one forward step for the whole mixed batch, sampling, and commit (text, stop
// strings, events, cache insertion).
#include "engine/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <list>

#include "base/clock.h"
#include "base/thread_pool.h"
#include "engine/text_stream.h"
#include "kv/kv_pool.h"
#include "kv/radix_cache.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::engine {

namespace {

constexpr int kTiledPromptTokens = 64;  // prompts this long use the prefill attention numerics
constexpr int kAdmitWindow = 4;         // waiting requests considered for cache-aware order
constexpr int kMaxSkips = 4;            // times the oldest waiting request may be passed over
constexpr int kMaxPrefillSkips = 8;     // steps a prefilling request may be passed over

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
  std::vector<kv::RadixCache::Node*> path;  // locked cache nodes = the first path.size() pages
  std::unique_ptr<sampling::Sampler> sampler;
  std::unique_ptr<TextStream> text;
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
  std::mutex dispatch_mu;
  std::function<void(NotifyBatch&&)> dispatch;  // under dispatch_mu
  void flush_notify();

  void loop();
  void take_incoming();
  void drop_cancelled();
  void admit();
  bool reserve_pages(Sequence& s, int n_tokens);
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
  int n_pages = cfg.kv_pages;
  if (n_pages == 0) {
    const size_t page_bytes = impl->model->kv_config(1, ps, cfg.kv_type).page_bytes();
    n_pages = cfg.kv_mem_bytes > 0 ? static_cast<int>(cfg.kv_mem_bytes / page_bytes) : 4 * pages_per_ctx;
  }
  if (n_pages < pages_per_ctx)
    return invalid_argument("engine: KV cache of " + std::to_string(n_pages) + " pages cannot hold one context of " +
                            std::to_string(impl->n_ctx) + " tokens (needs " + std::to_string(pages_per_ctx) +
                            "; raise --kv-pages/--kv-mem or lower --ctx)");
  auto kv = kv::KvPool::create(impl->model->kv_config(n_pages, ps, cfg.kv_type));
  if (!kv) return kv.status();
  impl->kv = std::make_unique<kv::KvPool>(std::move(kv.value()));
  impl->cache = std::make_unique<kv::RadixCache>(*impl->kv);
  impl->pool = std::make_unique<ThreadPool>(cfg.n_threads);
  impl->stats.kv_pages_total = n_pages;
  impl->stats.kv_pages_free = n_pages;
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
  if (reason != "cancelled" && reason != "error") insert_full_pages(*s);
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
  // Where the cache already held the same tokens, share its page and drop ours.
  for (int i = 0; i < n_full; ++i) {
    const int32_t cached = cache->page_of(s.path[i]);
    if (cached != s.pt.pages[i]) {
      kv->retain(cached);
      kv->release(s.pt.pages[i]);
      s.pt.pages[i] = cached;
    }
  }
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
      const size_t len = cache->match(s.tokens.data(), n, (n - 1) / ps).size();
      if (it == waiting.begin() || len > best_len) {
        best = it;
        best_len = len;
      }
    }
    if (best != waiting.begin() && (*waiting.begin())->skips >= kMaxSkips) best = waiting.begin();
    Sequence& s = **best;
    const int n = static_cast<int>(s.tokens.size());
    auto path = cache->match(s.tokens.data(), n, (n - 1) / ps);
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
  if (kv->n_free() < need) cache->evict(need - kv->n_free());
  if (kv->n_free() < need) return false;
  return s.pt.reserve(*kv, n_tokens);
}

void Engine::Impl::step() {
  // Plan: every decoding sequence gets its one token; then prompts, shortest remaining
  // first, until the step holds cfg.prefill_batch_target prefill tokens (or the budget is
  // spent). Prefill is compute-bound: four 100-token prompts cost the same in one step
  // or in four, but one at a time their first tokens arrive after 1, 2, 3 and 4 quarters
  // of that time instead of all at the end. A prompt passed over kMaxPrefillSkips steps
  // in a row goes first (bounded unfairness for long prompts).
  model::Batch batch;
  std::vector<Sequence*> in_batch;
  std::vector<int> chunk;
  int budget = cfg.max_batch_tokens;
  auto remaining_of = [](const Sequence* s) { return static_cast<int>(s->tokens.size()) - s->pt.n_tokens; };
  std::vector<Sequence*> order, prompts;
  for (auto& s : running) (remaining_of(s.get()) == 1 ? order : prompts).push_back(s.get());
  const size_t n_decode = order.size();
  std::stable_sort(prompts.begin(), prompts.end(), [&](const Sequence* a, const Sequence* b) {
    const bool oa = a->prefill_skips >= kMaxPrefillSkips, ob = b->prefill_skips >= kMaxPrefillSkips;
    if (oa != ob) return oa;
    return remaining_of(a) < remaining_of(b);
  });
  order.insert(order.end(), prompts.begin(), prompts.end());
  int prefill_tokens = 0;
  for (size_t oi = 0; oi < order.size(); ++oi) {
    Sequence* s = order[oi];
    if (budget <= 0) break;
    if (oi >= n_decode && prefill_tokens >= cfg.prefill_batch_target) break;
    const int remaining = remaining_of(s);
    const int take = std::min(remaining, budget);
    if (!reserve_pages(*s, s->pt.n_tokens + take)) {
      // Out of KV: preempt the most recently admitted other sequence not yet in this
      // batch, else stop planning (what is planned still runs).
      Sequence* victim = nullptr;
      for (auto it = running.rbegin(); it != running.rend(); ++it) {
        Sequence* c = it->get();
        if (c != s && std::find(in_batch.begin(), in_batch.end(), c) == in_batch.end()) {
          victim = c;
          break;
        }
      }
      if (victim) {
        preempt(*victim);
        // the victim comes after s in `order` (it is not in the batch yet): drop it
        order.erase(std::remove(order.begin() + oi + 1, order.end(), victim), order.end());
        if (!reserve_pages(*s, s->pt.n_tokens + take)) break;
      } else {
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
    for (int i = 0; i < take; ++i) {
      const int pos = s->pt.n_tokens + i;
      batch.add(s->tokens[pos], pos, seq_idx, i == remaining - 1);
    }
    in_batch.push_back(s);
    chunk.push_back(take);
    budget -= take;
    if (oi >= n_decode) prefill_tokens += take;
  }
  for (Sequence* s : prompts) {
    if (std::find(in_batch.begin(), in_batch.end(), s) != in_batch.end()) s->prefill_skips = 0;
    else ++s->prefill_skips;
  }
  if (in_batch.empty()) return;

  std::vector<float>& logits = logits_buf;  // reused: 1 MB for 8 x 32k logits, allocated and zeroed per step before
  const double t_fwd0 = now_ms();
  Status st = model->forward(batch, *kv, *pool, &logits);
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
  const int n_vocab = model->hparams().n_vocab;
  std::vector<int> row_of(in_batch.size(), -1);
  std::vector<Sequence*> to_sample;
  for (size_t k = 0; k < in_batch.size(); ++k) {
    if (in_batch[k]->pt.n_tokens + chunk[k] == static_cast<int>(in_batch[k]->tokens.size())) {
      row_of[k] = static_cast<int>(to_sample.size());
      to_sample.push_back(in_batch[k]);
    }
  }
  std::vector<sampling::SampleResult> sampled(to_sample.size());
  auto sample_one = [&](int64_t i) {
    Sequence& s = *to_sample[i];
    sampled[i] = s.sampler->sample(logits.data() + static_cast<size_t>(i) * n_vocab, n_vocab,
                                   std::max(0, s.req.top_logprobs));
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

  // Commit.
  const double t = now_ms();
  std::vector<Sequence*> done;
  std::vector<std::string> done_reason;
  for (size_t k = 0; k < in_batch.size(); ++k) {
    Sequence& s = *in_batch[k];
    s.pt.n_tokens += chunk[k];
    if (row_of[k] < 0) {
      insert_full_pages(s);  // share finished prompt pages with requests arriving now
      continue;
    }
    const auto& r = sampled[row_of[k]];
    s.sampler->accept(r.token);
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
      continue;
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
    } else if (s.n_generated >= s.req.max_tokens || static_cast<int>(s.tokens.size()) >= n_ctx) {
      done.push_back(&s);
      done_reason.push_back("length");
    }
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
    stats.kv_pages_free = kv->n_free();
    stats.kv_pages_cached = cache->n_unlocked();
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
