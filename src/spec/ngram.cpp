#include <algorithm>
#include <cmath>

#include "spec/drafter.h"

namespace tachyon::spec {

bool parse_mode(const std::string& s, Mode* out) {
  if (s == "off") *out = Mode::kOff;
  else if (s == "ngram") *out = Mode::kNgram;
  else if (s == "draft") *out = Mode::kDraft;
  else if (s == "auto") *out = Mode::kAuto;
  else return false;
  return true;
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kOff: return "off";
    case Mode::kNgram: return "ngram";
    case Mode::kDraft: return "draft";
    case Mode::kAuto: return "auto";
  }
  return "off";
}

uint64_t SharedNgramIndex::hash(const int32_t* t) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < kN; ++i) {
    h ^= static_cast<uint32_t>(t[i]);
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  return h;
}

void SharedNgramIndex::add(std::span<const int32_t> run) {
  if (run.empty()) return;
  std::lock_guard<std::mutex> lk(mu_);
  if (ring_.empty()) {
    ring_.assign(kCapacity, 0);
    run_.assign(kCapacity, 0);
  }
  const uint32_t id = next_run_++;
  for (size_t i = 0; i < run.size(); ++i) {
    ring_[end_ % kCapacity] = run[i];
    run_[end_ % kCapacity] = id;
    ++end_;
    if (i + 1 >= static_cast<size_t>(kN)) last_[hash(run.data() + i + 1 - kN)] = end_;
  }
  // Forget entries that point at overwritten tokens (keeps the map bounded).
  if (last_.size() > 2 * kCapacity) {
    for (auto it = last_.begin(); it != last_.end();)
      it = end_ - it->second >= kCapacity ? last_.erase(it) : std::next(it);
  }
}

void SharedNgramIndex::lookup(std::span<const int32_t> ctx, int max_n, std::vector<int32_t>* out) const {
  if (static_cast<int>(ctx.size()) < kN || max_n <= 0) return;
  std::lock_guard<std::mutex> lk(mu_);
  auto it = last_.find(hash(ctx.data() + ctx.size() - kN));
  if (it == last_.end()) return;
  uint64_t p = it->second;
  if (end_ - p >= kCapacity || p >= end_) return;  // overwritten, or nothing followed yet
  // Check the n-gram really matches (a hash collision drafts garbage, harmless but wasteful).
  for (int i = 0; i < kN; ++i)
    if (ring_[(p - kN + i) % kCapacity] != ctx[ctx.size() - kN + i]) return;
  const uint32_t run = run_[(p - 1) % kCapacity];
  while (p < end_ && static_cast<int>(out->size()) < max_n && run_[p % kCapacity] == run)
    out->push_back(ring_[p++ % kCapacity]);
}

size_t SharedNgramIndex::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return static_cast<size_t>(std::min<uint64_t>(end_, kCapacity));
}

void NgramDrafter::draft(std::span<const int32_t> t, int max_draft, const SharedNgramIndex* shared,
                         std::vector<int32_t>* out) const {
  out->clear();
  const int len = static_cast<int>(t.size());
  if (max_draft <= 0) return;
  for (int n = std::min(max_n_, len - 1); n >= min_n_; --n) {
    const int32_t* suffix = t.data() + len - n;
    // The most recent earlier occurrence: start positions len-n-1 down to 0.
    for (int start = len - n - 1; start >= 0; --start) {
      if (t[start] != suffix[0] || !std::equal(suffix, suffix + n, t.data() + start)) continue;
      for (int j = start + n; j < len && static_cast<int>(out->size()) < max_draft; ++j) out->push_back(t[j]);
      return;
    }
  }
  if (shared) shared->lookup(t, max_draft, out);
}

void fit_non_decreasing(std::vector<double>* v) {
  // blocks of (sum, count); merge while a block's mean falls below the previous one's
  std::vector<std::pair<double, int>> blocks;
  for (double x : *v) {
    blocks.push_back({x, 1});
    while (blocks.size() > 1) {
      auto& b = blocks[blocks.size() - 1];
      auto& a = blocks[blocks.size() - 2];
      if (a.first / a.second <= b.first / b.second) break;
      a.first += b.first;
      a.second += b.second;
      blocks.pop_back();
    }
  }
  size_t i = 0;
  for (const auto& [sum, n] : blocks)
    for (int j = 0; j < n; ++j) (*v)[i++] = sum / n;
}

void DraftLengthController::record(int drafted, int accepted) {
  if (drafted <= 0) return;
  hits_ = kDecay * hits_ + accepted;
  misses_ = kDecay * misses_ + (accepted < drafted ? 1 : 0);
}

double DraftLengthController::expected_tokens(int k) const {
  const double a = acceptance();
  double expected = 1, term = 1;
  for (int i = 1; i <= k; ++i) expected += (term *= a);
  return expected;
}

int DraftLengthController::choose(const std::vector<double>& cost, int max_k, double others) {
  const double a = acceptance();
  max_k = std::min<int>(max_k, static_cast<int>(cost.size()) - 1);
  int best_k = 0;
  double best = (others + 1.0) / cost[0];
  double expected = 1, term = 1;
  for (int k = 1; k <= max_k; ++k) {
    term *= a;
    expected += term;
    const double rate = (others + expected) / cost[k];
    if (rate > best * 1.02) {  // a margin: do not draft for a gain inside the noise
      best = rate;
      best_k = k;
    }
  }
  if (best_k > 0) {
    idle_steps_ = 0;
    return best_k;
  }
  if (max_k > 0 && ++idle_steps_ >= kProbeEvery) {
    idle_steps_ = 0;
    return 1;
  }
  return 0;
}

int SpecGate::bucket(int n_decode) {
  int b = 0;
  for (int n = std::max(1, n_decode); n > 1 && b < kBuckets - 1; n >>= 1) ++b;
  return b;
}

namespace {
// The lowest estimate among arms with two samples or more (0: none).
double lead_of(const double* est, const int* n, int n_arms) {
  double lead = 0;
  for (int a = 0; a < n_arms; ++a)
    if (n[a] >= 2 && (lead == 0 || est[a] < lead)) lead = est[a];
  return lead;
}
}  // namespace

// Warmed: kWarmup samples, or two already kEliminate x slower than the lead.
bool SpecGate::warmed(int bucket_index, int arm) const {
  const Bucket& k = b_[bucket_index];
  if (k.n[arm] >= kWarmup) return true;
  const double lead = lead_of(k.est, k.n, n_arms_);
  return k.n[arm] >= 2 && k.est[arm] > kEliminate * lead;
}

int SpecGate::best(int n_decode) const {
  const int bi = bucket(n_decode);
  const Bucket& k = b_[bi];
  int best = -1;
  for (int a = 0; a < n_arms_; ++a) {
    if (!warmed(bi, a)) return -1;
    if (best < 0 || k.est[a] < k.est[best]) best = a;
  }
  return best;
}

int SpecGate::choose(int n_decode) {
  const int bi = bucket(n_decode);
  Bucket& k = b_[bi];
  const int64_t step = k.step++;
  const int b = best(n_decode);
  if (b < 0) {
    // warming up: the unwarmed arm with the fewest samples (ties: the lowest)
    int arm = -1;
    for (int a = 0; a < n_arms_; ++a)
      if (!warmed(bi, a) && (arm < 0 || k.n[a] < k.n[arm])) arm = a;
    return arm < 0 ? 0 : arm;
  }
  if (n_arms_ > 1 && step % kExploreEvery < kExploreSteps) {
    // explore the other arms in turn; one far slower than the best (kEliminate x) only
    // every kFarExplore-th turn: exploring costs what the arm loses
    const int64_t round = step / kExploreEvery;
    const int other = static_cast<int>(round % (n_arms_ - 1));
    const int arm = other < b ? other : other + 1;
    const bool far = k.est[arm] > kEliminate * k.est[b];
    if (!far || (round / (n_arms_ - 1)) % kFarExplore == 0) return arm;
  }
  return b;
}

void SpecGate::record(int n_decode, int arm, double ms, int tokens) {
  if (tokens <= 0 || !(ms > 0) || arm < 0 || arm >= n_arms_) return;
  Bucket& k = b_[bucket(n_decode)];
  const double per = ms / tokens;
  k.est[arm] = k.n[arm] == 0 ? per : (1 - kAlpha) * k.est[arm] + kAlpha * per;
  ++k.n[arm];
}

}  // namespace tachyon::spec
