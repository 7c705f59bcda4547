// The step plan: which running sequences take part in the next forward step and how
// many tokens each brings, under the step's token budget. Pure policy over counts (the
// engine reserves KV pages for each item in order and preempts when the pool is short),
// so it is tested without a model (tests/unit/sched).
//
// Policy: every decoding sequence first (its next token plus its draft tokens, the draft
// cut to what the budget leaves), in the order given; then prompts, those passed over
// kMaxPrefillSkips steps in a row first, then shortest remaining first, each taking what
// remains of it up to the budget, until the step holds prefill_target prompt tokens.
// Prefill is compute-bound: four 100-token prompts cost the same in one step or in four,
// but one at a time their first tokens arrive after 1, 2, 3 and 4 quarters of that time
// instead of all at the end.
#pragma once
#include <vector>

namespace tachyon::sched {

inline constexpr int kMaxPrefillSkips = 8;

struct SeqCounts {
  int remaining = 0;      // tokens without KV: 1 = decoding (its last sampled token)
  int draft = 0;          // decoding: draft tokens proposed for this step
  int prefill_skips = 0;  // consecutive steps this prompt got no tokens
};

struct PlanItem {
  int seq = 0;    // index into the input
  int take = 0;   // tokens in this step (decoding: 1 + draft tokens kept)
  int draft = 0;  // of which draft tokens
  bool prefill = false;
};

struct StepBudget {
  int max_tokens = 512;      // tokens in the step
  int prefill_target = 64;   // prompt tokens after which further prompts wait
};

std::vector<PlanItem> plan_step(const std::vector<SeqCounts>& seqs, const StepBudget& budget);

}  // namespace tachyon::sched
