// The engine: one inference thread that owns the model, the paged KV pool, the radix
// prefix cache and the scheduler, and runs  schedule -> forward -> sample -> commit  in
// a loop. Other threads (HTTP) only submit requests and read their event streams; they
// never touch engine state. Continuous batching: a request submitted while others run
// joins the batch at the next step. Prompts are prefilled in chunks under a per-step
// token budget, so a long prompt never stalls running decodes.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "model/attention.h"
#include "sampling/sampler.h"
#include "spec/drafter.h"

namespace tachyon::model {
class Model;
}
namespace tachyon::tok {
class Tokenizer;
}

namespace tachyon::engine {

struct EngineConfig {
  std::string model_path;
  int n_threads = 2;
  model::DecodeNumerics decode_numerics = model::DecodeNumerics::kAuto;  // decode attention numerics
  kv::KvType kv_type = kv::KvType::kF16;                                 // element type of the KV cache
  int n_ctx = 0;                   // max tokens per sequence; 0 = the model's, capped at 8192
  int max_batch_tokens = 512;      // per-step token budget (decode tokens + prefill chunks)
  int prefill_batch_target = 64;   // prompt tokens per step after which further prompts wait
                                   // for the next step (shortest prompt first)
  int max_running = 64;            // sequences decoding at once
  int max_queue = 256;             // waiting requests beyond which submit() refuses (429)
  int page_size = 16;              // tokens per KV page
  int kv_pages = 0;                // 0 = derive from kv_mem_bytes
  size_t kv_mem_bytes = 0;         // 0 = the memory of 4 full contexts
  // Models with sliding-window layers: slots of the pool's local arena (the KV of those
  // layers, kept only for the pages a query can still read). 0 = derived: from the
  // memory budget when kv_pages is 0 (fewer slots than pages, more pages for the same
  // memory), else one per page.
  int kv_local_slots = 0;
  // Speculative decoding (requests may override): off, ngram (draft whenever the n-gram
  // lookup finds a continuation, up to spec_max tokens), auto (n-gram drafts of the length
  // that maximises expected tokens per second, from the sequence's acceptance and the
  // step costs measured on first use; none when it does not pay).
  spec::Mode spec_mode = spec::Mode::kOff;
  int spec_max = 8;  // draft tokens per step at most (capped at 16)
  // A draft model (a smaller GGUF with the same vocabulary) for modes draft and auto. Its
  // KV lives in a companion arena indexed by the target's page ids: a sequence's page
  // table addresses both, so radix sharing, eviction and preemption cover the draft's KV
  // with no second allocator.
  std::string draft_path;
};

// One generation request: token ids in, tokens out.
struct GenerateRequest {
  std::vector<int32_t> prompt;          // already tokenized (BOS included as the model asks)
  sampling::SamplingParams sampling;    // validated by the caller
  int max_tokens = 256;                 // generated tokens at most (>= 0)
  std::vector<std::string> stop;        // stop strings (text never includes them)
  bool ignore_eos = false;              // do not stop at end-of-generation tokens
  int top_logprobs = -1;                // -1: no logprobs; 0..20: chosen token (+ top n)
  std::optional<spec::Mode> spec_mode;  // unset: the engine's
  int spec_max = -1;                    // < 0: the engine's
};

struct TopLogprob {
  int32_t token;
  std::string text;
  float logprob;
};

// Events of one request, in order: zero or more kToken, then exactly one kFinish.
struct Event {
  enum class Kind { kToken, kFinish };
  Kind kind = Kind::kToken;
  // kToken: one sampled token and the text it completes (may be empty while a UTF-8
  // character or a possible stop string is held back; held text arrives with a later
  // event, or with kFinish).
  int32_t token = -1;
  std::string text;
  float logprob = 0;
  std::vector<TopLogprob> top;
  // kFinish
  std::string finish_reason;  // "stop" (EOG or stop string), "length", "cancelled", "error"
  std::string error;          // for "error"
  int prompt_tokens = 0;
  int cached_tokens = 0;      // prompt tokens served from the prefix cache
  int completion_tokens = 0;
  double queue_ms = 0;        // submit -> admitted
  double prompt_ms = 0;       // admitted -> first token sampled
  double decode_ms = 0;       // first token -> finish
  int draft_tokens = 0;       // speculative decoding: tokens drafted for this request
  int accepted_tokens = 0;    // of which the target model accepted
  int verify_steps = 0;       // steps that verified a draft of this request
};

// The notify callbacks of the events one engine iteration produced, handed over at once.
using NotifyBatch = std::vector<std::function<void()>>;

// The channel between the engine thread and the request's owner. Thread-safe.
class RequestHandle {
 public:
  // Moves all pending events into *out (appends). Returns false when none were pending.
  bool drain(std::vector<Event>* out);
  // Blocks until an event is pending, the request finished, or timeout; for simple
  // synchronous consumers. Returns drain()'s result.
  bool wait_drain(std::vector<Event>* out, int timeout_ms);
  // Called (on the engine thread) after events are pushed; must not block. Set it before
  // the first event can arrive (i.e. right after submit(), events pushed earlier are kept).
  void set_notify(std::function<void()> fn);
  // Asks the engine to stop this request and free its KV at the next step (e.g. the
  // client disconnected). Idempotent.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  uint64_t id() const { return id_; }

  // engine side
  explicit RequestHandle(uint64_t id) : id_(id) {}
  // Queues the event; calls the notify callback now, or appends it to *deferred for the
  // caller to run later (with the rest of its iteration's).
  void push(Event e, NotifyBatch* deferred = nullptr);

 private:
  uint64_t id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  std::function<void()> notify_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
};

// Counters and gauges for /metrics; a consistent snapshot, cheap to take.
struct EngineStats {
  uint64_t requests_submitted = 0, requests_finished = 0, requests_cancelled = 0, requests_rejected = 0;
  uint64_t prompt_tokens = 0, generated_tokens = 0, cached_prompt_tokens = 0;
  uint64_t steps = 0, preemptions = 0;
  int queue_depth = 0, running = 0, last_batch_tokens = 0;
  int kv_pages_total = 0, kv_pages_free = 0, kv_pages_cached = 0;  // cached: held by the prefix cache
  // Sliding-window models (else 0): local KV slots, those free (held by no running
  // request), and the most held at once since start.
  int kv_local_slots_total = 0, kv_local_slots_free = 0, kv_local_slots_peak = 0;
  size_t kv_bytes = 0;  // memory of the KV pool (both arenas)
  // Speculative decoding: draft tokens verified, those accepted, steps that verified any;
  // the measured step cost of 1..12 tokens of one sequence relative to one (empty until
  // an auto request first needed it).
  uint64_t spec_drafted = 0, spec_accepted = 0, spec_verify_steps = 0;
  std::vector<double> spec_step_cost;
  // [n] sequence-steps that verified a draft and accepted n of its tokens (n = 0..16).
  std::vector<uint64_t> spec_accept_hist;
  double spec_draft_ms = 0;  // time in draft-model forward steps
  // Estimated decode time saved (ms): per verified draft, accepted tokens x the measured
  // one-token step, minus the step's measured extra cost for its drafts (0 until the step
  // costs are calibrated). Draft-model time is counted separately (spec_draft_ms).
  double spec_saved_ms = 0;
  bool has_draft_model = false;
  // Decode steps of auto requests by what auto ran: no drafts, n-gram lookup, draft model.
  uint64_t spec_auto_steps[3] = {0, 0, 0};
  // Latency samples since the last snapshot_and_reset_latencies() call (ms).
  std::vector<double> ttft_ms, itl_ms;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const EngineConfig& cfg);
  ~Engine();  // stops the thread; pending requests finish with "cancelled"

  // Queues a request. Errors: kInvalidArgument (empty prompt, prompt + max_tokens over
  // n_ctx: message starts with "context_length_exceeded"), kUnavailable-like refusal when
  // the queue is full (ErrorCode::kInternal with message "queue_full").
  Result<std::shared_ptr<RequestHandle>> submit(GenerateRequest req);

  // Stops accepting requests; running ones are cancelled; joins the thread. Idempotent.
  void shutdown();

  const tok::Tokenizer& tokenizer() const;
  const model::Model& model() const;
  const model::Model* draft_model() const;  // null without one
  int n_ctx() const;
  EngineStats stats(bool take_latencies = false);
  // Receives, on the engine thread once per iteration, every notify callback that
  // iteration's events call for (must not block). Without one they run one by one. A
  // server posts the batch to its I/O threads in one wake-up instead of one per stream:
  // on this 2-core VM each cross-thread post cost the engine thread ~60 us, 0.5 ms of an
  // 8-stream decode step.
  void set_notify_dispatcher(std::function<void(NotifyBatch&&)> dispatch);

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tachyon::engine
