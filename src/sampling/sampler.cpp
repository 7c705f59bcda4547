#include "sampling/sampler.h"

#include <algorithm>
#include <cassert>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "kernels/ops.h"

namespace tachyon::sampling {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// top_p finds its cut without a full sort: bucket the candidates by logit, find the
// bucket where the cumulative mass crosses the target, keep only that bucket's members
// and repeat on their narrower range; sort only once a few hundred remain (or all
// remaining logits are equal, when id order is already the best-first order). The first
// level spans 32 nats below the max (e^-32 ~ 1e-14: the catch-all last bucket carries
// no meaningful mass), later ones the members' own range.
constexpr int kTopPBuckets = 4096;
constexpr float kTopPFirstRange = 32.0f;
constexpr int kTopPSortBelow = 512;
constexpr int kTopPMaxLevels = 5;  // then sort whatever is left (pathological spreads)

// Buckets [lo, hi] into 0 (hi) .. kTopPBuckets - 1 (lo and below); monotone in the logit.
// In double so that no float range (up to +-FLT_MAX, down to denormal widths) overflows.
struct TopPBucketing {
  double hi, scale;
  TopPBucketing(float lo_, float hi_) : hi(hi_), scale(kTopPBuckets / (static_cast<double>(hi_) - lo_)) {}
  int operator()(float logit) const {
    double r = (hi - logit) * scale;
    return r < kTopPBuckets ? static_cast<int>(r) : kTopPBuckets - 1;
  }
};

// The k of top_k below which a heap pass (partial_sort_copy, ~1 compare per token)
// beats nth_element on a copy.
constexpr int kTopKHeapBelow = 1024;

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

// "Better" in the total order every truncation uses: higher logit, then lower id.
bool better(float la, int32_t ia, float lb, int32_t ib) { return la > lb || (la == lb && ia < ib); }

}  // namespace

Status SamplingParams::validate(int n_vocab) const {
  if (!(std::isfinite(temperature) && temperature >= 0.0f))
    return invalid_argument("temperature must be a finite number >= 0, got " + fmt(temperature));
  if (top_k < -1)
    return invalid_argument("top_k must be >= 0 (0 or -1 = disabled), got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f))
    return invalid_argument("top_p must be in (0, 1], got " + fmt(top_p));
  if (!(min_p >= 0.0f && min_p <= 1.0f))
    return invalid_argument("min_p must be in [0, 1], got " + fmt(min_p));
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f))
    return invalid_argument("repetition_penalty must be a finite number > 0, got " +
                            fmt(repetition_penalty));
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    return invalid_argument("presence_penalty must be in [-2, 2], got " + fmt(presence_penalty));
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    return invalid_argument("frequency_penalty must be in [-2, 2], got " + fmt(frequency_penalty));
  if (penalty_last_n < -1)
    return invalid_argument("penalty_last_n must be >= -1 (-1 = whole history, 0 = none), got " +
                            std::to_string(penalty_last_n));
  for (size_t i = 0; i < banned_tokens.size(); ++i) {
    int32_t t = banned_tokens[i];
    if (t < 0 || (n_vocab > 0 && t >= n_vocab)) {
      std::string range = n_vocab > 0 ? "[0, " + std::to_string(n_vocab) + ")" : ">= 0";
      return invalid_argument("banned_tokens[" + std::to_string(i) + "] = " + std::to_string(t) +
                              " is not a token id " + range);
    }
  }
  return Status::ok();
}

// ---- RNG --------------------------------------------------------------------------------

void Sampler::Rng::seed(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& w : s) {  // splitmix64
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    w = z ^ (z >> 31);
  }
}

uint64_t Sampler::Rng::next() {  // xoshiro256**
  auto rotl = [](uint64_t v, int k) { return (v << k) | (v >> (64 - k)); };
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double Sampler::Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

// ---- Sampler ----------------------------------------------------------------------------

Sampler::Sampler(const SamplingParams& p) : params_(p) {
  for (int32_t t : p.banned_tokens)
    if (t >= 0) banned_.push_back(t);
  std::sort(banned_.begin(), banned_.end());
  banned_.erase(std::unique(banned_.begin(), banned_.end()), banned_.end());
  reset();
}

void Sampler::reset() {
  window_.clear();
  window_pos_ = 0;
  counts_.clear();
  rng_.seed(params_.seed);
}

bool Sampler::penalties_active() const {
  return params_.penalty_last_n != 0 &&
         (params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
          params_.frequency_penalty != 0.0f);
}

void Sampler::accept(int32_t token) {
  if (token < 0 || !penalties_active()) return;
  const int n = params_.penalty_last_n;
  if (n > 0) {
    if (window_.size() < static_cast<size_t>(n)) {
      window_.push_back(token);
    } else {  // full ring: the oldest token leaves the window
      int32_t old = window_[window_pos_];
      auto it = counts_.find(old);
      if (--it->second == 0) counts_.erase(it);
      window_[window_pos_] = token;
      window_pos_ = (window_pos_ + 1) % window_.size();
    }
  }
  ++counts_[token];
}

void Sampler::apply_penalties(int n_vocab) {
  if (counts_.empty() || !penalties_active()) return;
  const float rep = params_.repetition_penalty;
  const float presence = params_.presence_penalty;
  const float freq = params_.frequency_penalty;
  for (const auto& [token, count] : counts_) {
    if (token >= n_vocab) continue;
    float& l = lg_[token];
    if (rep != 1.0f) l = l > 0.0f ? l / rep : l * rep;
    l -= static_cast<float>(count) * freq + presence;
  }
}

int32_t Sampler::lowest_unbanned_id(const uint32_t* allowed, int n_vocab) const {
  if (allowed != nullptr) {
    for (int32_t id = 0; id < n_vocab; ++id)
      if ((allowed[id >> 5] >> (id & 31) & 1u) && !std::binary_search(banned_.begin(), banned_.end(), id)) return id;
    return 0;
  }
  int32_t id = 0;
  for (int32_t b : banned_) {  // sorted: the first gap
    if (b != id) break;
    ++id;
  }
  return id;
}

// Keeps the k best of cand_[0, n_cand) (k < n_cand) in ascending id order; returns k.
int Sampler::keep_top_k(int n_cand, int k) {
  auto cmp = [](const Candidate& a, const Candidate& b) { return better(a.logit, a.id, b.logit, b.id); };
  if (k < kTopKHeapBelow) {
    std::partial_sort_copy(cand_.begin(), cand_.begin() + n_cand, work_.begin(), work_.begin() + k, cmp);
  } else {
    std::copy(cand_.begin(), cand_.begin() + n_cand, work_.begin());
    std::nth_element(work_.begin(), work_.begin() + (k - 1), work_.begin() + n_cand, cmp);
  }
  const Candidate thr = work_[k - 1];  // the k-th best: keep it and everything better
  auto end = std::remove_if(cand_.begin(), cand_.begin() + n_cand,
                            [&](const Candidate& c) { return better(thr.logit, thr.id, c.logit, c.id); });
  assert(end - cand_.begin() == k);
  return static_cast<int>(end - cand_.begin());
}

// The worst candidate top_p keeps: the smallest best-first prefix of cand_[0, n_cand)
// whose softmax mass (temperature 1, i.e. the weights w) reaches top_p of their total.
// max_logit is the best candidate's logit. Uses work_.
Sampler::Candidate Sampler::top_p_threshold(int n_cand, float max_logit) {
  auto cmp = [](const Candidate& a, const Candidate& b) { return better(a.logit, a.id, b.logit, b.id); };
  double total = 0.0;
  for (int i = 0; i < n_cand; ++i) total += cand_[i].w;
  const double target = static_cast<double>(params_.top_p) * total;

  const Candidate* src = cand_.data();  // the members still in question, ascending id:
  int m = n_cand;                       // cand_[0, n_cand) first, then work_[0, m)
  double cum = 0.0;                     // mass of everything better than the members
  bool all_equal = false;
  for (int level = 0; m > kTopPSortBelow && level < kTopPMaxLevels; ++level) {
    float lo = max_logit - kTopPFirstRange, hi = max_logit;
    if (level > 0) {
      lo = hi = src[0].logit;
      for (int i = 1; i < m; ++i) {
        lo = std::min(lo, src[i].logit);
        hi = std::max(hi, src[i].logit);
      }
      if (lo == hi) {
        all_equal = true;
        break;
      }
    }
    const TopPBucketing bucket(lo, hi);
    bucket_mass_.assign(kTopPBuckets, 0.0);
    for (int i = 0; i < m; ++i) bucket_mass_[bucket(src[i].logit)] += src[i].w;
    int crossing = -1;
    for (int b = 0; b < kTopPBuckets; ++b) {
      if (cum + bucket_mass_[b] >= target) {
        crossing = b;
        break;
      }
      cum += bucket_mass_[b];
    }
    if (crossing < 0)  // rounding with top_p ~ 1: keep every member
      return *std::max_element(src, src + m, cmp);  // the worst
    int kept = 0;  // stable compaction into work_ (in place from the second level on)
    for (int i = 0; i < m; ++i)
      if (bucket(src[i].logit) == crossing) work_[kept++] = src[i];
    src = work_.data();
    m = kept;
  }
  if (src != work_.data()) std::copy(src, src + m, work_.begin());
  if (!all_equal) std::sort(work_.begin(), work_.begin() + m, cmp);
  for (int j = 0; j < m; ++j) {
    cum += work_[j].w;
    if (cum >= target) return work_[j];
  }
  return work_[m - 1];
}

namespace {

// The sum of the candidates' weights in double, over four interleaved partial sums (one
// serial chain of 32k double adds was ~40 us per sample, paid twice at temperature 1).
template <class C>
double sum_weights(const C* c, int n) {
  double a[4] = {0.0, 0.0, 0.0, 0.0};
  int i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) a[j] += c[i + j].w;
  for (; i < n; ++i) a[i & 3] += c[i].w;
  return (a[0] + a[1]) + (a[2] + a[3]);
}

}  // namespace

// Softmax at the temperature over cand_[0, n_cand) and one draw, in ascending id order.
// At temperature 1 the weights are already in cand_[i].w (and, untruncated, their sum is
// prepare()'s: known_total); otherwise they are replaced.
int Sampler::draw(int n_cand, float max_logit, double known_total) {
  const float temp = params_.temperature;
  double total = 0.0;
  if (temp == 1.0f) {
    total = known_total >= 0.0 ? known_total : sum_weights(cand_.data(), n_cand);
  } else {
    // w = exp((logit - max) / temp), the best one 1: vector exp, the same bits as std::exp
    float* x = w_.data();
    for (int i = 0; i < n_cand; ++i) x[i] = (cand_[i].logit - max_logit) / temp;
    kernels::exp_libm(x, n_cand, x);
    for (int i = 0; i < n_cand; ++i) cand_[i].w = x[i];
    total = sum_weights(cand_.data(), n_cand);
  }
  const double target = rng_.uniform() * total;
  double cum = 0.0;
  int last_positive = 0;
  for (int i = 0; i < n_cand; ++i) {
    if (cand_[i].w <= 0.0f) continue;
    cum += cand_[i].w;
    last_positive = i;
    if (cum > target) return i;
  }
  return last_positive;  // rounding at the top end
}

// Steps 1-4 into cand_: the finite candidates in ascending id order with w filled in.
// Array passes (the exponentials 8 at a time, the same bits as std::exp): ~0.25 -> ~0.08 ms
// for a 32k vocabulary, which an 8-stream decode step pays 8 times.
Sampler::Prepared Sampler::prepare(const float* logits, int n_vocab, const uint32_t* allowed) {
  if (cand_.size() < static_cast<size_t>(n_vocab)) {
    cand_.resize(n_vocab);
    work_.resize(n_vocab);
    lg_.resize(n_vocab);
    w_.resize(n_vocab);
  }
  float* lg = lg_.data();
  float* w = w_.data();
  kernels::sanitize_logits(logits, n_vocab, lg);  // NaN -> -inf, +inf -> FLT_MAX
  apply_penalties(n_vocab);
  for (int32_t t : banned_) {
    if (t >= n_vocab) break;
    lg[t] = kNegInf;
  }
  if (allowed != nullptr) {  // the constraint stage: 32 tokens per mask word
    for (int w0 = 0; w0 < n_vocab; w0 += 32) {
      const uint32_t bits = allowed[w0 >> 5];
      if (bits == 0xffffffffu) continue;
      const int end = std::min(n_vocab, w0 + 32);
      for (int j = w0; j < end; ++j)
        if (!(bits >> (j - w0) & 1u)) lg[j] = kNegInf;
    }
  }
  Prepared r;
  r.max_logit = kernels::max_f32(lg, n_vocab);
  if (r.max_logit == kNegInf) return r;

  // w = p / p_max at temperature 1; then drop the -inf entries (stable, so ids stay
  // ascending), find the argmax (the first token at the max) and sum the log-softmax
  // normalizer.
  kernels::exp_shifted(lg, n_vocab, r.max_logit, w);
  for (int j = 0; j < n_vocab; ++j) {
    if (lg[j] == kNegInf) continue;
    if (lg[j] == r.max_logit && r.best < 0) r.best = j;
    cand_[r.n_cand++] = {lg[j], j, w[j]};
  }
  r.sum_w = sum_weights(cand_.data(), r.n_cand);
  r.log_norm = static_cast<double>(r.max_logit) + std::log(r.sum_w);
  return r;
}

int32_t Sampler::greedy_token(const float* logits, int n_vocab, const uint32_t* allowed) {
  if (penalties_active() || !banned_.empty()) return sample(logits, n_vocab, 0, allowed).token;
  // sample()'s steps 1, 3 and 5: NaN is -inf (never chosen), +inf counts as FLT_MAX, the
  // first maximum wins; nothing finite allowed: the lowest allowed id.
  int32_t best = -1;
  float best_l = -std::numeric_limits<float>::infinity();
  for (int j = 0; j < n_vocab; ++j) {
    if (allowed != nullptr && !(allowed[j >> 5] >> (j & 31) & 1u)) continue;
    const float l = std::min(logits[j], std::numeric_limits<float>::max());
    if (l > best_l) {  // false for NaN and -inf
      best_l = l;
      best = j;
    }
  }
  return best >= 0 ? best : lowest_unbanned_id(allowed, n_vocab);
}

SampleResult Sampler::sample(const float* logits, int n_vocab, int n_top_logprobs) {
  return sample(logits, n_vocab, n_top_logprobs, nullptr);
}

SampleResult Sampler::sample(const float* logits, int n_vocab, int n_top_logprobs, const uint32_t* allowed) {
  assert(logits != nullptr && n_vocab > 0);
  const Prepared prep = prepare(logits, n_vocab, allowed);
  SampleResult result;
  if (prep.n_cand == 0) {  // nothing finite: see the header
    const int32_t id = lowest_unbanned_id(allowed, n_vocab);
    result.token = id < n_vocab ? id : 0;
    result.logprob = kNegInf;
    return result;
  }
  int n_cand = prep.n_cand;

  const int n_top = std::clamp(n_top_logprobs, 0, n_cand);
  if (n_top > 0) {
    auto cmp = [](const Candidate& a, const Candidate& b) { return better(a.logit, a.id, b.logit, b.id); };
    std::partial_sort_copy(cand_.begin(), cand_.begin() + n_cand, work_.begin(), work_.begin() + n_top, cmp);
    result.top.reserve(n_top);
    for (int j = 0; j < n_top; ++j)
      result.top.push_back({work_[j].id, static_cast<float>(work_[j].logit - prep.log_norm)});
  }

  // 5: greedy
  if (!(params_.temperature > 0.0f)) {
    result.token = prep.best;
    result.logprob = static_cast<float>(prep.max_logit - prep.log_norm);
    return result;
  }

  // 6-8: truncation
  n_cand = truncate(prep);

  // 9-10: temperature, softmax, draw
  const Candidate chosen = cand_[draw(n_cand, prep.max_logit, n_cand == prep.n_cand ? prep.sum_w : -1.0)];
  result.token = chosen.id;
  result.logprob = static_cast<float>(chosen.logit - prep.log_norm);
  return result;
}

// Steps 6-8 over prepare()'s candidates: each keeps a best-first prefix, applied as a
// stable filter (ids stay ascending). Returns the survivors' count (>= 1).
int Sampler::truncate(const Prepared& prep) {
  int n_cand = prep.n_cand;
  const int k = params_.top_k;
  if (k > 0 && k < n_cand) n_cand = keep_top_k(n_cand, k);
  const bool use_top_p = params_.top_p < 1.0f && n_cand > 1;
  const bool use_min_p = params_.min_p > 0.0f && n_cand > 1;
  if (use_top_p || use_min_p) {
    const Candidate thr = use_top_p ? top_p_threshold(n_cand, prep.max_logit)
                                    : Candidate{kNegInf, std::numeric_limits<int32_t>::max(), 0.0f};
    const float min_w = use_min_p ? params_.min_p : 0.0f;  // p / p_max >= min_p
    auto end = std::remove_if(cand_.begin(), cand_.begin() + n_cand, [&](const Candidate& c) {
      return better(thr.logit, thr.id, c.logit, c.id) || c.w < min_w;
    });
    n_cand = static_cast<int>(end - cand_.begin());
  }
  assert(n_cand >= 1);  // the best candidate survives every filter
  return n_cand;
}

// Steps 1-4 and the logprob fields of a result for `token` (top list included).
SampleResult Sampler::result_for(const Prepared& prep, int32_t token, float token_logit, int n_top_logprobs) {
  SampleResult result;
  result.token = token;
  result.logprob = static_cast<float>(token_logit - prep.log_norm);
  const int n_top = std::clamp(n_top_logprobs, 0, prep.n_cand);
  if (n_top > 0) {
    auto cmp = [](const Candidate& a, const Candidate& b) { return better(a.logit, a.id, b.logit, b.id); };
    std::partial_sort_copy(cand_.begin(), cand_.begin() + prep.n_cand, work_.begin(), work_.begin() + n_top, cmp);
    result.top.reserve(n_top);
    for (int j = 0; j < n_top; ++j)
      result.top.push_back({work_[j].id, static_cast<float>(work_[j].logit - prep.log_norm)});
  }
  return result;
}

// The distribution sample() draws from, dense: steps 1-9 with the weights normalized
// (greedy: all mass on the argmax). Fills dist_ [n_vocab]; false when nothing is finite.
bool Sampler::fill_distribution(const Prepared& prep, int n_vocab) {
  dist_.assign(n_vocab, 0.0f);
  if (prep.n_cand == 0) return false;
  if (!(params_.temperature > 0.0f)) {
    dist_[prep.best] = 1.0f;
    return true;
  }
  const int n_cand = truncate(prep);
  const float temp = params_.temperature;
  double total = 0.0;
  for (int i = 0; i < n_cand; ++i) {
    const float w = temp == 1.0f ? cand_[i].w : std::exp((cand_[i].logit - prep.max_logit) / temp);
    dist_[cand_[i].id] = w;
    total += w;
  }
  const float inv = static_cast<float>(1.0 / total);
  for (int i = 0; i < n_cand; ++i) dist_[cand_[i].id] *= inv;
  return true;
}

int32_t Sampler::draw_dense(const float* w, int n, double total) {
  const double target = rng_.uniform() * total;
  double cum = 0.0;
  int32_t last_positive = -1;
  for (int i = 0; i < n; ++i) {
    if (w[i] <= 0.0f) continue;
    cum += w[i];
    last_positive = i;
    if (cum > target) return i;
  }
  return last_positive;
}

int32_t Sampler::sample_draft(const float* logits, int n_vocab, std::vector<float>* q) {
  const Prepared prep = prepare(logits, n_vocab);
  if (!fill_distribution(prep, n_vocab)) {
    q->assign(n_vocab, 0.0f);
    return -1;
  }
  q->swap(dist_);
  const int32_t t = draw_dense(q->data(), n_vocab, 1.0);
  return t;
}

SampleResult Sampler::verify_draft(const float* logits, int n_vocab, int n_top_logprobs, int32_t draft, const float* q,
                                   bool* accepted) {
  *accepted = false;
  const Prepared prep = prepare(logits, n_vocab);
  if (prep.n_cand == 0) {
    SampleResult r;
    const int32_t id = lowest_unbanned_id();
    r.token = id < n_vocab ? id : 0;
    r.logprob = kNegInf;
    return r;
  }
  // lg_ keeps the penalized logits by id: the reported logprob of whichever token wins.
  const SampleResult top = result_for(prep, prep.best, prep.max_logit, n_top_logprobs);
  fill_distribution(prep, n_vocab);
  const float* p = dist_.data();
  int32_t token = -1;
  if (draft >= 0 && draft < n_vocab && q[draft] > 0.0f) {
    // accept with probability min(1, p/q)
    const double u = rng_.uniform();
    if (u * static_cast<double>(q[draft]) < static_cast<double>(p[draft])) {
      token = draft;
      *accepted = true;
    }
  }
  if (token < 0) {
    // the normalized residual max(0, p - q); all of p when it is empty (p <= q everywhere
    // can only mean p == q, where the draft is always accepted, or rounding)
    double total = 0.0;
    for (int i = 0; i < n_vocab; ++i) {
      const float r = std::max(0.0f, p[i] - q[i]);
      dist_[i] = r;
      total += r;
    }
    if (!(total > 0.0)) {
      fill_distribution(prep, n_vocab);
      total = 1.0;
    }
    token = draw_dense(dist_.data(), n_vocab, total);
    if (token < 0) token = prep.best;
  }
  SampleResult r = top;
  r.token = token;
  r.logprob = static_cast<float>(lg_[token] - prep.log_norm);
  return r;
}

}  // namespace tachyon::sampling
