// Drafters for speculative decoding: given a sequence's tokens (prompt + generated so
// far), propose the tokens that likely come next. The engine verifies every draft with
// the target model in one step, so a drafter may be wrong at no cost to correctness,
// only to speed.
//
// NgramDrafter (prompt lookup): the longest suffix of the sequence (max_n down to min_n
// tokens) that occurred earlier in the same sequence; the draft is what followed its most
// recent earlier occurrence. Failing that, a SharedNgramIndex over the recent outputs of
// all requests (agents repeat tool schemas, JSON keys and code across requests) is asked
// the same question. O(length * max_n) per draft with a backwards scan that stops at the
// first hit; microseconds for a few thousand tokens.
//
// DraftLengthController: a per-request acceptance estimate (EMA of the per-token accept
// rate) and the draft length that maximises expected tokens per unit of step time, given
// the engine's measured cost of a step of 1 + k tokens relative to one token.
#pragma once
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace tachyon::spec {

// off; ngram (prompt lookup); draft (a smaller model with the same vocabulary); auto (the
// draft model when the engine has one, else n-gram lookup, at the length that pays).
enum class Mode { kOff, kNgram, kDraft, kAuto };
// "off" | "ngram" | "draft" | "auto"; false on anything else.
bool parse_mode(const std::string& s, Mode* out);
const char* mode_name(Mode m);

// Recent tokens of every request, indexed by the hash of each n-gram (n = kN) -> the
// position after its latest occurrence. Thread-safe (one mutex; the engine thread is the
// only writer and reader today). Bounded: a ring of kCapacity tokens.
class SharedNgramIndex {
 public:
  static constexpr int kN = 3;
  static constexpr size_t kCapacity = 1 << 16;
  // Appends a run of tokens (one request's committed output); n-grams never span runs.
  void add(std::span<const int32_t> run);
  // Tokens that followed the latest earlier occurrence of the last kN tokens of `ctx`, up
  // to max_n; empty when none.
  void lookup(std::span<const int32_t> ctx, int max_n, std::vector<int32_t>* out) const;
  size_t size() const;

 private:
  static uint64_t hash(const int32_t* t);
  mutable std::mutex mu_;
  std::vector<int32_t> ring_;   // token at absolute position p lives at ring_[p % kCapacity]
  std::vector<uint32_t> run_;   // run id of each ring slot (n-grams and drafts stay in one run)
  uint64_t end_ = 0;            // absolute position after the last token
  uint32_t next_run_ = 1;
  std::unordered_map<uint64_t, uint64_t> last_;  // n-gram hash -> absolute position after it
};

class NgramDrafter {
 public:
  NgramDrafter(int min_n = 2, int max_n = 4) : min_n_(min_n), max_n_(max_n) {}
  // Appends up to max_draft tokens to *out (cleared first). `shared` may be null.
  void draft(std::span<const int32_t> tokens, int max_draft, const SharedNgramIndex* shared,
             std::vector<int32_t>* out) const;

 private:
  int min_n_, max_n_;
};

// The non-decreasing sequence closest to *v in least squares (pool adjacent violators),
// in place: a measured cost curve with its noise dips and spikes averaged out.
void fit_non_decreasing(std::vector<double>* v);

class DraftLengthController {
 public:
  // cost[k] = time of a step with 1 + k tokens of this sequence / time of a 1-token step
  // (cost[0] = 1), for k = 0..max.
  explicit DraftLengthController(double prior_accept = 0.5) : hits_(2 * prior_accept), misses_(2 * (1 - prior_accept)) {}
  // Records a verified draft of `drafted` tokens of which the first `accepted` matched.
  void record(int drafted, int accepted);
  // The k in [0, max_k] maximising the step's expected tokens per unit of time,
  // (others + E(k)) / cost[k], where E(k) = sum_{i=0..k} a^i (a: the acceptance estimate)
  // and `others` the tokens the rest of the batch is expected to produce in the same
  // step; 0 when no k > 0 beats a plain step by 2%. A sequence that stopped drafting
  // tries one token every kProbeEvery steps so that its estimate can recover.
  int choose(const std::vector<double>& cost, int max_k, double others = 0);
  // E(k) for the current estimate.
  double expected_tokens(int k) const;
  // Per-token acceptance: decayed counts of matched and rejected draft tokens.
  double acceptance() const { return hits_ / (hits_ + misses_); }

  static constexpr int kProbeEvery = 16;
  static constexpr double kDecay = 0.8;  // per verified draft

 private:
  double hits_, misses_;
  int idle_steps_ = 0;
};

// The empirical guard of auto: whatever the cost model predicts, a drafter stays in use
// only where it measurably produces tokens faster. Arms: 0 = no drafts, 1 = n-gram
// lookup, 2 = the draft model (when there is one). Per batch-size bucket (1, 2-3, 4-7,
// 8-15, 16+ decoding sequences) it keeps an EMA of the wall time per generated token of
// the decode steps each arm ran (drafting included), and runs the fastest; the others
// stay measured: every kExploreEvery steps the next of them runs kExploreSteps steps (an
// arm kEliminate x slower than the best only every kFarExplore-th time).
// Until each arm has kWarmup samples in a bucket, they take turns (an arm kEliminate x
// slower than the best after two samples drops out of the turns). Engine thread only.
class SpecGate {
 public:
  static constexpr int kBuckets = 5;
  static constexpr int kMaxArms = 3;
  static constexpr int kWarmup = 8;
  static constexpr int kExploreEvery = 32;
  static constexpr int kExploreSteps = 2;
  static constexpr double kAlpha = 0.05;
  static constexpr double kEliminate = 1.3;
  static constexpr int kFarExplore = 32;

  explicit SpecGate(int n_arms = 2) : n_arms_(n_arms) {}
  static int bucket(int n_decode);
  // The arm this step runs (advances the bucket's schedule).
  int choose(int n_decode);
  // A decode-only step of `arm`: its wall time and the tokens it committed.
  void record(int n_decode, int arm, double ms, int tokens);
  // ms per token of an arm (0: no sample yet) and the arm currently fastest (-1: warming up).
  double ms_per_token(int n_decode, int arm) const { return b_[bucket(n_decode)].est[arm]; }
  int best(int n_decode) const;
  int n_arms() const { return n_arms_; }

 private:
  struct Bucket {
    double est[kMaxArms] = {};
    int n[kMaxArms] = {};
    int64_t step = 0;
  };
  bool warmed(int bucket_index, int arm) const;
  int n_arms_;
  Bucket b_[kBuckets];
};

}  // namespace tachyon::spec
