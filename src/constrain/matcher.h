// Constrained decoding: a byte-level recognizer for a compiled Grammar, and token masks over
// a vocabulary.
//
// Recognizer. A pushdown recognizer over the byte grammar: a stack is a list of grammar
// positions (the top is the byte range to match next, the rest are return positions), and
// the state is the deduplicated set of stacks that are still alive (ambiguity = several
// stacks). Stacks are interned persistent lists (node = (position, parent node)), so stacks
// share tails, a state is a sorted array of top-node ids, and equal states are equal arrays.
// A call that is the last element of its alternative does not push a return frame (tail
// call), so `x*` and right recursion keep constant stack depth.
//
// Lazy DFA. Each Matcher interns the states it meets and memoizes transitions in a dense
// [state][256] table, so after warm-up accepting a byte is one table load. The tables are
// per Matcher (no locking); when they pass kMaxStates / kMaxNodes they are rebuilt around
// the current state (memory per Matcher stays under ~8 MiB).
//
// Masks. TokenIndex holds the vocabulary as a byte trie laid out in depth-first order. A
// mask walks it from the current state, keeping the state of every prefix on a stack (a
// sibling reuses its parent's state) and skipping a whole subtree as soon as the state dies.
// Masks are cached by exact recognizer state: per Matcher (state id -> mask) and in the
// Grammar's shared, bounded, mutex-protected cache (canonical stack contents -> mask), so
// every token inside a long JSON string, and every request on the same grammar, reuses one
// mask. Cost on a miss: proportional to the live part of the trie, ~4 ns per visited node
// (100k tokens = 370k nodes: 40 us inside a number, 0.2 ms at a JSON value start, 1.6 ms
// inside a JSON string where 90% of the vocabulary is allowed; bench/constrain_mask_bench.cpp);
// on a hit: copying n_vocab/32 words (< 1 us), ~3 us from the shared cache (key + lock).
//
// Tokens. A token may end in the middle of a UTF-8 character; the grammar is over bytes, so
// that just leaves the recognizer mid-character. Tokens with empty bytes and tokens with
// allowed[id] == false are never accepted. EOG tokens are accepted exactly when the input so
// far is complete; accepting one ends the sentence: afterwards nothing is accepted (is_dead()
// true, is_complete() true) until reset().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "constrain/grammar.h"

namespace tachyon::constrain {

// Per-vocabulary index, built once per model and shared (read-only, thread-safe) by all
// requests. Construction: O(total token bytes * log n_vocab) (a sort), ~100 ms for 100k tokens;
// memory ~16 bytes per trie node (~3.7 nodes per token).
class TokenIndex {
 public:
  // token_bytes[id]: the exact bytes the token adds to the output text. allowed[id] false for
  // tokens that may never appear under a constraint (control tokens); an empty `allowed`
  // means all, a shorter one leaves the rest allowed. eog: end-of-generation ids (allowed
  // exactly when the grammar may end, whatever `allowed` says; ids out of range ignored).
  TokenIndex(std::vector<std::string> token_bytes, std::vector<bool> allowed, std::vector<int32_t> eog);

  int n_vocab() const { return static_cast<int>(bytes_.size()); }
  uint64_t hash() const { return hash_; }  // of bytes, allowed and eog: for caches keyed by vocabulary
  const std::string& token_bytes(int32_t id) const { return bytes_[id]; }
  bool is_eog(int32_t id) const { return kind_[id] == kEog; }
  bool in_trie(int32_t id) const { return kind_[id] == kText; }  // allowed, non-empty, not EOG
  const std::vector<int32_t>& eog() const { return eog_; }

  // The trie: nodes in depth-first order; node i covers nodes [i, end) (its subtree); its
  // bytes are its parent's plus `byte`; the tokens with exactly those bytes are
  // token_ids[tok_begin, nodes[i+1].tok_begin). A sentinel node closes the array.
  struct TrieNode {
    uint32_t end;
    uint32_t tok_begin;
    uint32_t depth;  // 1 for a first byte
    uint32_t byte;
  };
  const std::vector<TrieNode>& trie() const { return trie_; }
  const std::vector<int32_t>& trie_tokens() const { return trie_tokens_; }
  uint32_t max_depth() const { return max_depth_; }

 private:
  enum Kind : uint8_t { kText, kNever, kEog };
  std::vector<std::string> bytes_;   // [n_vocab]
  std::vector<uint8_t> kind_;        // [n_vocab] Kind
  std::vector<int32_t> eog_;         // sorted, unique, in range
  std::vector<TrieNode> trie_;       // [n_nodes + 1]
  std::vector<int32_t> trie_tokens_; // [n tokens in the trie] ids, grouped by node
  uint32_t max_depth_ = 0;
  uint64_t hash_ = 0;
};

// One request's position in the grammar. Not thread-safe (one engine thread drives it);
// copyable (a copy continues independently). The Grammar's mask cache is shared and locked.
class Matcher {
 public:
  static constexpr uint32_t kMaxStates = 4096;   // lazy-DFA states before a rebuild (1 KiB each)
  static constexpr uint32_t kMaxNodes = 1 << 18;  // stack nodes before a rebuild
  static constexpr uint32_t kMaxLocalMasks = 256;  // masks held per Matcher (the rest: Grammar's cache)

  Matcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenIndex> idx);

  // Would accept(token) succeed? Walks the token's bytes through the memoized transitions
  // (a few ns per byte once warm). Ids out of range are rejected. Const for callers; it may
  // grow the memo tables.
  bool accepts(int32_t token) const;
  // Advances by the token's bytes; false (state unchanged) if !accepts(token).
  bool accept(int32_t token);
  // Advances by raw bytes (tests, forced prefixes); false (state unchanged) if the grammar
  // does not allow them. The empty string is always accepted (unless after an EOG).
  bool accept_bytes(std::string_view s);

  // Allowed tokens as a bitset: bit id of (*words)[id/32]; resized to (n_vocab+31)/32.
  // EOG ids are set iff is_complete(). Never all-zero unless is_dead(). Cost: see above.
  void fill_mask(std::vector<uint32_t>* words);

  // The fewest bytes that complete a sentence from here (0 when complete). For budgets: a
  // request near its token limit closes its output (see closing_mask).
  uint32_t min_completion() const { return ended_ ? 0 : min_completion_of(cur_); }
  // min_completion() after the token (UINT32_MAX if it is not accepted); EOG: 0 if complete.
  uint32_t min_completion_after(int32_t token) const;

  bool is_complete() const;   // the input so far is a full sentence of the grammar
  bool can_continue() const;  // some non-empty byte string may still follow
  // No token can be accepted: after an EOG, or when neither text tokens nor EOG fit (a
  // grammar whose next bytes no token starts with). May compute a mask.
  bool is_dead() const;
  // Back to the start of the grammar; keeps the memo tables.
  void reset();

  // Statistics for the benchmark: masks computed, masks served from the cache, time spent.
  struct Stats {
    uint64_t masks = 0, cache_hits = 0;
    double mask_us = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  static constexpr uint32_t kBottom = 0;  // node id of the empty stack
  static constexpr uint32_t kDead = 0;    // state id of the empty, incomplete state
  struct Node {
    uint32_t pos;     // grammar position to match next in this frame
    uint32_t parent;  // node to return to
  };
  struct State {
    uint32_t tops_begin, n_tops;  // in tops_; top nodes sorted ascending, unique
    bool complete;
    uint64_t hash;
    int32_t next_same_hash;  // chain in state_ids_
  };
  using Mask = Grammar::Mask;

  uint32_t intern_node(uint32_t pos, uint32_t parent) const;
  uint32_t intern_state(std::vector<uint32_t>* tops, bool complete) const;
  void expand(uint32_t pos, uint32_t parent) const;  // into scratch_tops_ / scratch_complete_
  uint32_t initial_state() const;
  uint32_t compute_step(uint32_t s, uint8_t b) const;
  uint32_t step(uint32_t s, uint8_t b) const {
    const int32_t v = trans_[static_cast<size_t>(s) * 256 + b];
    return v >= 0 ? static_cast<uint32_t>(v) : compute_step(s, b);
  }
  uint32_t walk_bytes(uint32_t s, std::string_view bytes) const;  // kDead if rejected
  uint32_t min_completion_of(uint32_t s) const;
  uint32_t node_min(uint32_t node) const;  // bytes to finish the stack from this node down
  std::vector<uint32_t> canonical_key(uint32_t s) const;
  std::shared_ptr<const Mask> mask_for(uint32_t s) const;
  void compute_mask(uint32_t s, Mask* m) const;
  void maybe_rebuild();

  std::shared_ptr<const Grammar> g_;
  std::shared_ptr<const TokenIndex> idx_;
  const GrammarElem* elems_;  // g_->elems().data()

  // Memo tables (mutable: accepts() and is_dead() are logically const).
  mutable std::vector<Node> nodes_;
  mutable std::unordered_map<uint64_t, uint32_t> node_ids_;  // pos << 32 | parent -> node
  mutable std::vector<uint32_t> tops_;
  mutable std::vector<State> states_;
  mutable std::unordered_map<uint64_t, int32_t> state_ids_;  // hash -> first state in chain
  mutable std::vector<int32_t> trans_;  // [n_states][256] next state, -1 = not computed yet
  mutable std::vector<std::shared_ptr<const Mask>> masks_;  // [n_states] cached masks
  mutable uint32_t n_masks_ = 0;                            // non-null entries of masks_
  // Scratch of compute_step / expand.
  mutable std::vector<uint32_t> scratch_tops_;
  mutable bool scratch_complete_ = false;
  mutable std::unordered_set<uint64_t> visited_;
  mutable std::vector<std::pair<uint32_t, uint32_t>> work_;
  mutable std::vector<uint32_t> walk_stack_;  // [max_depth + 1] states along the trie path
  mutable std::vector<uint32_t> node_min_;    // [nodes] memo of node_min (UINT32_MAX: not yet)

  uint32_t start_ = 0;  // initial state
  uint32_t cur_ = 0;    // current state
  bool ended_ = false;  // an EOG token was accepted
  mutable Stats stats_;
};

}  // namespace tachyon::constrain
