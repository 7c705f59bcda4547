// logits -> token for one request: penalties, truncation (top-k / top-p / min-p),
// temperature, a seeded draw, and OpenAI-style logprobs.
//
// Order of operations (llama.cpp's default chain, minus the samplers we do not have):
//
//   1. copy     logits -> scratch; NaN -> -inf, +inf -> FLT_MAX (a model bug must not
//               poison the softmax)
//   2. penalties over the last penalty_last_n accepted tokens, per distinct token with
//               count c > 0:  l = l > 0 ? l / repetition_penalty : l * repetition_penalty
//                             l -= frequency_penalty * c + presence_penalty
//   3. banned   l = -inf; with a constraint mask (sample()'s `allowed`), also every token
//               whose bit is 0 (structured output: the grammar's allowed tokens)
//   4. logprobs log-softmax of these logits over the whole vocabulary (temperature and
//               truncation do not enter it, as in the OpenAI API); `top` = the best
//               n_top_logprobs of that distribution
//   5. greedy   temperature <= 0: argmax, ties -> lowest id. Stops here; no RNG use.
//   6. top_k    keep the k best
//   7. top_p    keep the smallest best-first prefix whose probability (softmax at
//               temperature 1, renormalized over what top_k kept) reaches top_p
//   8. min_p    keep p >= min_p * p_max (temperature 1), i.e. exp(l - max_l) >= min_p
//   9. temperature + softmax over the survivors: w = exp((l - max_l) / temperature)
//  10. draw     one uniform u in [0, 1) from the request's RNG; the token where the running
//               sum of w, taken in ascending token id order, first exceeds u * sum(w)
//
// "Best" is the total order (logit descending, id ascending), so every truncation keeps a
// prefix of it and ties are resolved the same way everywhere. Truncations always keep at
// least the best token. Results depend only on the logits, the params, the accept()
// history and the seed: the PRNG (xoshiro256**) and its float conversion are our own,
// sums run in a fixed order, and no step depends on the standard library's sort or
// selection internals. The one outside dependency of the draw is libm's expf (glibc's
// is correctly rounded in practice; another libm can only flip a draw that lands within
// rounding of a boundary); log() only enters the reported logprobs.
//
// Degenerate input: if every logit is -inf after step 3 (all banned, or the model
// produced nothing finite), the lowest token id that is not banned is returned (0 if
// every token is banned) with logprob -inf and an empty `top`, without using the RNG.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace tachyon::sampling {

struct SamplingParams {
  float temperature = 1.0f;          // <= 0: greedy. validate() requires a finite value >= 0
  int top_k = 0;                     // 0 (or -1, as vLLM clients send it) = disabled
  float top_p = 1.0f;                // (0, 1]; 1 = disabled
  float min_p = 0.0f;                // [0, 1]; 0 = disabled
  float repetition_penalty = 1.0f;   // > 0; 1 = disabled (llama.cpp's repeat_penalty)
  float presence_penalty = 0.0f;     // [-2, 2] (OpenAI range); 0 = disabled
  float frequency_penalty = 0.0f;    // [-2, 2] (OpenAI range); 0 = disabled
  int penalty_last_n = 64;           // penalty window in tokens: -1 = whole history, 0 = none
  uint64_t seed = 0;                 // the request's seed; the caller picks one when unset
  std::vector<int32_t> banned_tokens;  // never sampled (e.g. EOS when ignore_eos)

  // Rejects NaN/inf, negative and out-of-range values with a message naming the field,
  // e.g. "top_p must be in (0, 1], got 0". With n_vocab > 0 it also rejects banned
  // token ids outside [0, n_vocab) (without it those are ignored by sample()).
  Status validate(int n_vocab = 0) const;
};

struct TokenLogprob {
  int32_t id;
  float logprob;
};

struct SampleResult {
  int32_t token;
  float logprob;                  // of `token`, under step 4's distribution
  std::vector<TokenLogprob> top;  // best first (logprob desc, id asc); only tokens with
                                  // finite logprob, so it may be shorter than requested
};

// Per-request sampling state: params, penalty history, RNG, scratch buffers.
// Not thread-safe; one engine thread drives it. Memory: ~24 bytes * n_vocab of scratch
// (allocated on the first sample(), reused after) plus the penalty window.
class Sampler {
 public:
  // Params should have passed validate(); invalid values do not crash but their effect is
  // unspecified. The RNG is seeded from p.seed.
  explicit Sampler(const SamplingParams& p);

  // Samples one token from logits[n_vocab] (read only). n_top_logprobs is clamped to
  // [0, n_vocab]. Advances the RNG by exactly one draw unless greedy (or degenerate, see
  // above). Does not add the token to the history: call accept().
  // Cost: a few O(n_vocab) passes with one expf per token (two at temperature != 1), an
  // O(n_vocab) selection for top_k and for the top logprobs, and for top_p a bucketed
  // search that sorts a few hundred tokens at most; never a full sort. No allocation
  // after the first call, except `top` when n_top_logprobs > 0. ~1 ms for 150k tokens.
  SampleResult sample(const float* logits, int n_vocab, int n_top_logprobs = 0);
  // The constraint stage: as sample(), with every token whose bit in allowed (bit id of
  // allowed[id / 32]) is 0 treated as banned in step 3, so logprobs, truncation and the
  // draw all see the constrained distribution. Degenerate (nothing allowed is finite):
  // the lowest allowed id that is not banned. allowed == nullptr: sample().
  SampleResult sample(const float* logits, int n_vocab, int n_top_logprobs, const uint32_t* allowed);

  // The token sample(logits, n_vocab, 0, allowed) returns for a greedy request
  // (temperature <= 0), without the log-softmax (no logprob): one pass over the row when
  // no penalty or ban applies (else sample()'s). ~3x cheaper than sample() on a 100k
  // vocabulary; the engine uses it for greedy requests that want no logprobs.
  int32_t greedy_token(const float* logits, int n_vocab, const uint32_t* allowed = nullptr);

  // Appends a token to the penalty history (generated tokens; the engine may also feed
  // prompt tokens, as llama.cpp's server does). O(1). Negative ids are ignored.
  void accept(int32_t token);

  // Clears the history and re-seeds the RNG: the next samples repeat the first ones.
  void reset();

  // Speculative decoding with a sampled draft (Leviathan et al.; Chen et al.).
  // sample_draft: the drafter's side. Fills *q [n_vocab] with the distribution sample()
  // draws from (steps 1-9, normalized; greedy: all mass on the argmax) and draws one
  // token from it (one RNG draw, in ascending id order); -1 when nothing is finite.
  int32_t sample_draft(const float* logits, int n_vocab, std::vector<float>* q);
  // verify_draft: the target's side, for a draft token drawn from q. With p this
  // sampler's distribution for `logits`: accepts the draft with probability
  // min(1, p(draft) / q(draft)) (one draw), else draws from the normalized residual
  // max(0, p - q) (a second draw). Either way the token returned is distributed exactly as
  // sample()'s would be. *accepted tells which happened; logprob and top are step 4's,
  // as sample() reports them. Does not call accept().
  SampleResult verify_draft(const float* logits, int n_vocab, int n_top_logprobs, int32_t draft, const float* q,
                            bool* accepted);

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    float logit;
    int32_t id;
    float w;  // exp(logit - max_logit): p / p_max at temperature 1; the draw's weight at the end
  };

  // xoshiro256** seeded through splitmix64: small, fast, identical on every platform.
  struct Rng {
    uint64_t s[4];
    void seed(uint64_t seed);
    uint64_t next();
    double uniform();  // [0, 1), 53 random bits
  };

  struct Prepared {
    int n_cand = 0;         // finite candidates, now in cand_[0, n_cand)
    float max_logit = 0.0f; // their max (-inf if none)
    int32_t best = -1;      // the argmax, ties -> lowest id
    double log_norm = 0.0;  // log-sum-exp of the penalized logits
    double sum_w = 0.0;     // the candidates' weights summed (sum_weights in sampler.cpp)
  };

  Prepared prepare(const float* logits, int n_vocab, const uint32_t* allowed = nullptr);
  int truncate(const Prepared& prep);  // steps 6-8 over cand_; the survivors' count
  SampleResult result_for(const Prepared& prep, int32_t token, float token_logit, int n_top_logprobs);
  bool fill_distribution(const Prepared& prep, int n_vocab);  // into dist_
  int32_t draw_dense(const float* w, int n, double total);     // one draw over w[0, n), ascending id
  bool penalties_active() const;
  void apply_penalties(int n_vocab);
  int32_t lowest_unbanned_id(const uint32_t* allowed = nullptr, int n_vocab = 0) const;
  int keep_top_k(int n_cand, int k);
  Candidate top_p_threshold(int n_cand, float max_logit);
  // index into cand_; known_total: the weights' sum when already known (< 0: not)
  int draw(int n_cand, float max_logit, double known_total);

  SamplingParams params_;
  Rng rng_;

  // penalty window: the last penalty_last_n accepted tokens (ring) and their counts
  std::vector<int32_t> window_;  // [min(accepted, penalty_last_n)] ring; unused for -1
  size_t window_pos_ = 0;        // oldest entry once the ring is full
  std::unordered_map<int32_t, int32_t> counts_;  // token -> occurrences in the window

  std::vector<int32_t> banned_;  // params_.banned_tokens, sorted, unique, >= 0

  // scratch, reused across calls
  std::vector<float> lg_;            // [n_vocab] penalized logits by id
  std::vector<float> w_;             // [n_vocab] exp(lg_ - max) by id
  std::vector<Candidate> cand_;      // [n_vocab] the finite candidates, then survivors; ascending id
  std::vector<Candidate> work_;      // [n_vocab] selection scratch (top_k, top_p, logprobs)
  std::vector<double> bucket_mass_;  // [kTopPBuckets] top_p mass per logit bucket
  std::vector<float> dist_;          // [n_vocab] a dense distribution (speculative decoding)
};

}  // namespace tachyon::sampling
