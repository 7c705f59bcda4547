// A forward step's input: one flat list of tokens from one or more sequences, each
// token with its sequence and position. Prefill chunks and decode tokens of many
// sequences mix freely; nothing assumes one sequence or one token.
#pragma once
#include <cstdint>
#include <vector>

#include "kv/kv_pool.h"

namespace tachyon::model {

struct Batch {
  std::vector<int32_t> token;        // [n_tok] token ids
  std::vector<int32_t> pos;          // [n_tok] position within its sequence
  std::vector<int32_t> seq;          // [n_tok] index into seqs
  std::vector<uint8_t> want_logits;  // [n_tok] 1 = return logits for this token
  // Page tables of the sequences in this batch; each must already hold pages for
  // every position it will contain after the step (see PageTable::reserve).
  std::vector<const kv::PageTable*> seqs;
  // Optional, per sequence: tokens at positions below this value use the prefill (tiled)
  // attention numerics, the others the short-batch numerics. When empty, a sequence with
  // >= 64 query tokens in the step uses the tiled path for all of them (as llama.cpp
  // decides per batch). The engine sets it per request (its prompt length if the prompt
  // is long, else 0) so that results do not depend on how prompts were chunked, batched
  // with others, or recomputed after preemption.
  std::vector<int32_t> seq_tiled_until;

  int64_t size() const { return static_cast<int64_t>(token.size()); }
  void clear() {
    token.clear();
    pos.clear();
    seq.clear();
    want_logits.clear();
    seqs.clear();
    seq_tiled_until.clear();
  }
  void add(int32_t tok, int32_t p, int32_t s, bool logits) {
    token.push_back(tok);
    pos.push_back(p);
    seq.push_back(s);
    want_logits.push_back(logits ? 1 : 0);
  }
  int64_t n_logits() const {
    int64_t n = 0;
    for (auto w : want_logits) n += w;
    return n;
  }
};

}  // namespace tachyon::model
