#include "sched/plan.h"

#include <algorithm>

namespace tachyon::sched {

std::vector<PlanItem> plan_step(const std::vector<SeqCounts>& seqs, const StepBudget& b) {
  std::vector<int> decode, prompts;
  for (int i = 0; i < static_cast<int>(seqs.size()); ++i) (seqs[i].remaining == 1 ? decode : prompts).push_back(i);
  std::stable_sort(prompts.begin(), prompts.end(), [&](int x, int y) {
    const bool ox = seqs[x].prefill_skips >= kMaxPrefillSkips, oy = seqs[y].prefill_skips >= kMaxPrefillSkips;
    if (ox != oy) return ox;
    return seqs[x].remaining < seqs[y].remaining;
  });
  std::vector<PlanItem> plan;
  int budget = b.max_tokens;
  // Decoding sequences: their next tokens first (one each), then drafts while budget lasts,
  // so that drafts never push a plain decode out of the step.
  int n_decode = 0;
  for (int i : decode) {
    if (budget <= 0) break;
    plan.push_back({i, 1, 0, false});
    --budget;
    ++n_decode;
  }
  for (int k = 0; k < n_decode && budget > 0; ++k) {
    PlanItem& it = plan[k];
    const int d = std::min(seqs[it.seq].draft, budget);
    it.draft = d;
    it.take += d;
    budget -= d;
  }
  int prefill = 0;
  for (int i : prompts) {
    if (budget <= 0 || prefill >= b.prefill_target) break;
    const int take = std::min(seqs[i].remaining, budget);
    plan.push_back({i, take, 0, true});
    budget -= take;
    prefill += take;
  }
  return plan;
}

}  // namespace tachyon::sched
