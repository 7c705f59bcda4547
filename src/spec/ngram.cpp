#include <algorithm>
#include <cmath>

#include "spec/drafter.h"

namespace tachyon::spec {

bool parse_mode(const std::string& s, Mode* out) {
  if (s == "off") *out = Mode::kOff;
  else if (s == "ngram") *out = Mode::kNgram;
  else if (s == "auto") *out = Mode::kAuto;
  else return false;
  return true;
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kOff: return "off";
    case Mode::kNgram: return "ngram";
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

}  // namespace tachyon::spec
