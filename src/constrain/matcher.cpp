// Recognizer, lazy DFA and token masks; see matcher.h for the design.
#include "constrain/matcher.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstring>

namespace tachyon::constrain {

namespace {

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xFF51AFD7ED558CCDull;
  x ^= x >> 33;
  x *= 0xC4CEB9FE1A85EC53ull;
  return x ^ (x >> 33);
}

constexpr uint32_t kSeparator = 0xFFFFFFFFu;

}  // namespace

// ---------------------------------------------------------------- TokenIndex

TokenIndex::TokenIndex(std::vector<std::string> token_bytes, std::vector<bool> allowed, std::vector<int32_t> eog)
    : bytes_(std::move(token_bytes)) {
  const int32_t n = static_cast<int32_t>(bytes_.size());
  kind_.assign(n, kText);
  for (int32_t id = 0; id < n; ++id) {
    if ((static_cast<size_t>(id) < allowed.size() && !allowed[id]) || bytes_[id].empty()) kind_[id] = kNever;
  }
  for (int32_t id : eog) {
    if (id >= 0 && id < n) {
      kind_[id] = kEog;
      eog_.push_back(id);
    }
  }
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());

  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t id = 0; id < n; ++id) {
    const uint64_t len = bytes_[id].size();
    h = fnv1a(h, &len, sizeof len);
    h = fnv1a(h, bytes_[id].data(), bytes_[id].size());
    h = fnv1a(h, &kind_[id], 1);
  }
  hash_ = h;

  // The trie, from the text tokens in byte order: consecutive strings share their common
  // prefix, so the path of the previous string is the stack of open nodes.
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < n; ++id) {
    if (kind_[id] == kText) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    const int c = bytes_[a].compare(bytes_[b]);
    return c != 0 ? c < 0 : a < b;
  });
  std::vector<uint32_t> path;  // open nodes; path[d] is at depth d + 1
  const std::string* prev = nullptr;
  for (int32_t id : ids) {
    const std::string& s = bytes_[id];
    size_t lcp = 0;
    if (prev) {
      while (lcp < s.size() && lcp < prev->size() && s[lcp] == (*prev)[lcp]) ++lcp;
    }
    while (path.size() > lcp) {
      trie_[path.back()].end = static_cast<uint32_t>(trie_.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < s.size(); ++d) {
      path.push_back(static_cast<uint32_t>(trie_.size()));
      trie_.push_back({0, static_cast<uint32_t>(trie_tokens_.size()), static_cast<uint32_t>(d + 1),
                       static_cast<uint8_t>(s[d])});
    }
    trie_tokens_.push_back(id);
    max_depth_ = std::max<uint32_t>(max_depth_, static_cast<uint32_t>(s.size()));
    prev = &s;
  }
  while (!path.empty()) {
    trie_[path.back()].end = static_cast<uint32_t>(trie_.size());
    path.pop_back();
  }
  trie_.push_back({static_cast<uint32_t>(trie_.size() + 1), static_cast<uint32_t>(trie_tokens_.size()), 0, 0});
}

// ---------------------------------------------------------------- Matcher: interning

Matcher::Matcher(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenIndex> idx)
    : g_(std::move(g)), idx_(std::move(idx)), elems_(g_->elems().data()) {
  nodes_.push_back({kSeparator, kSeparator});  // kBottom
  std::vector<uint32_t> none;
  intern_state(&none, false);  // kDead
  start_ = cur_ = initial_state();
  walk_stack_.resize(idx_->max_depth() + 1);
}

uint32_t Matcher::intern_node(uint32_t pos, uint32_t parent) const {
  const uint64_t key = (static_cast<uint64_t>(pos) << 32) | parent;
  auto [it, inserted] = node_ids_.try_emplace(key, static_cast<uint32_t>(nodes_.size()));
  if (inserted) nodes_.push_back({pos, parent});
  return it->second;
}

uint32_t Matcher::intern_state(std::vector<uint32_t>* tops, bool complete) const {
  std::sort(tops->begin(), tops->end());
  tops->erase(std::unique(tops->begin(), tops->end()), tops->end());
  uint64_t h = complete ? 0x51ED27ull : 0x2545F491ull;
  for (uint32_t t : *tops) h = mix(h ^ t) + t;
  auto [it, inserted] = state_ids_.try_emplace(h, -1);
  for (int32_t s = it->second; s >= 0; s = states_[s].next_same_hash) {
    const State& st = states_[s];
    if (st.complete == complete && st.n_tops == tops->size() &&
        std::equal(tops->begin(), tops->end(), tops_.begin() + st.tops_begin)) {
      return static_cast<uint32_t>(s);
    }
  }
  const uint32_t id = static_cast<uint32_t>(states_.size());
  states_.push_back({static_cast<uint32_t>(tops_.size()), static_cast<uint32_t>(tops->size()), complete, h,
                     it->second});
  it->second = static_cast<int32_t>(id);
  tops_.insert(tops_.end(), tops->begin(), tops->end());
  trans_.resize(trans_.size() + 256, -1);
  masks_.emplace_back();
  return id;
}

// Closure of one grammar position: follows calls (pushing a return frame unless the call is
// last in its alternative), returns and empty alternatives until every stack's top is a byte
// range. (pos, parent) pairs already seen in this step are skipped: that dedupes ambiguous
// stacks and ends tail-call cycles (left recursion through non-last calls is rejected by the
// grammar compiler).
void Matcher::expand(uint32_t pos, uint32_t parent) const {
  work_.push_back({pos, parent});
  while (!work_.empty()) {
    auto [p, par] = work_.back();
    work_.pop_back();
    if (!visited_.insert((static_cast<uint64_t>(p) << 32) | par).second) continue;
    const GrammarElem& e = elems_[p];
    switch (e.kind) {
      case GrammarElem::kEnd:
        if (par == kBottom) {
          scratch_complete_ = true;
        } else {
          work_.push_back({nodes_[par].pos, nodes_[par].parent});
        }
        break;
      case GrammarElem::kBytes:
        scratch_tops_.push_back(intern_node(p, par));
        break;
      case GrammarElem::kRule: {
        const uint32_t ret = elems_[p + 1].kind == GrammarElem::kEnd ? par : intern_node(p + 1, par);
        for (uint32_t a : g_->alternatives(e.rule)) work_.push_back({a, ret});
        break;
      }
    }
  }
}

uint32_t Matcher::initial_state() const {
  scratch_tops_.clear();
  scratch_complete_ = false;
  visited_.clear();
  for (uint32_t a : g_->alternatives(g_->root_rule())) expand(a, kBottom);
  return intern_state(&scratch_tops_, scratch_complete_);
}

uint32_t Matcher::compute_step(uint32_t s, uint8_t b) const {
  scratch_tops_.clear();
  scratch_complete_ = false;
  visited_.clear();
  const State st = states_[s];
  for (uint32_t i = 0; i < st.n_tops; ++i) {
    const Node n = nodes_[tops_[st.tops_begin + i]];
    const GrammarElem& e = elems_[n.pos];
    if (b >= e.lo && b <= e.hi) expand(n.pos + 1, n.parent);
  }
  const uint32_t next = (scratch_tops_.empty() && !scratch_complete_) ? kDead : intern_state(&scratch_tops_, scratch_complete_);
  trans_[static_cast<size_t>(s) * 256 + b] = static_cast<int32_t>(next);
  return next;
}

uint32_t Matcher::walk_bytes(uint32_t s, std::string_view bytes) const {
  for (char c : bytes) {
    s = step(s, static_cast<uint8_t>(c));
    if (s == kDead) return kDead;
  }
  return s;
}

// Canonical form of a state, independent of this Matcher's node numbering: the stacks as
// position lists (top first), sorted, separated by kSeparator; then the completion flag.
std::vector<uint32_t> Matcher::canonical_key(uint32_t s) const {
  const State& st = states_[s];
  std::vector<std::vector<uint32_t>> stacks(st.n_tops);
  for (uint32_t i = 0; i < st.n_tops; ++i) {
    for (uint32_t n = tops_[st.tops_begin + i]; n != kBottom; n = nodes_[n].parent) stacks[i].push_back(nodes_[n].pos);
  }
  std::sort(stacks.begin(), stacks.end());
  std::vector<uint32_t> key;
  for (const auto& v : stacks) {
    key.insert(key.end(), v.begin(), v.end());
    key.push_back(kSeparator);
  }
  key.push_back(st.complete ? 1 : 0);
  return key;
}

// Rebuilds the memo tables around the current and start states when they grew too big. The
// stacks are re-interned from their canonical contents, so the recognizer's behavior is
// unchanged; only memoized work is lost.
void Matcher::maybe_rebuild() {
  if (n_masks_ > kMaxLocalMasks) {
    std::fill(masks_.begin(), masks_.end(), nullptr);
    n_masks_ = 0;
  }
  if (states_.size() <= kMaxStates && nodes_.size() <= kMaxNodes) return;
  auto save = [&](uint32_t s) {
    std::vector<std::vector<uint32_t>> stacks;
    for (uint32_t i = 0; i < states_[s].n_tops; ++i) {
      std::vector<uint32_t> v;
      for (uint32_t n = tops_[states_[s].tops_begin + i]; n != kBottom; n = nodes_[n].parent) v.push_back(nodes_[n].pos);
      stacks.push_back(std::move(v));
    }
    return std::make_pair(std::move(stacks), states_[s].complete);
  };
  const auto cur = save(cur_);
  nodes_.resize(1);
  node_min_.clear();
  node_ids_.clear();
  tops_.clear();
  states_.clear();
  state_ids_.clear();
  trans_.clear();
  masks_.clear();
  n_masks_ = 0;
  std::vector<uint32_t> tops;
  intern_state(&tops, false);  // kDead
  for (const auto& v : cur.first) {
    uint32_t n = kBottom;
    for (auto it = v.rbegin(); it != v.rend(); ++it) n = intern_node(*it, n);
    tops.push_back(n);
  }
  cur_ = intern_state(&tops, cur.second);
  start_ = initial_state();
}

// ---------------------------------------------------------------- Matcher: API

bool Matcher::accepts(int32_t token) const {
  if (ended_ || token < 0 || token >= idx_->n_vocab()) return false;
  if (idx_->is_eog(token)) return states_[cur_].complete;
  if (!idx_->in_trie(token)) return false;
  return walk_bytes(cur_, idx_->token_bytes(token)) != kDead;
}

bool Matcher::accept(int32_t token) {
  if (ended_ || token < 0 || token >= idx_->n_vocab()) return false;
  if (idx_->is_eog(token)) {
    if (!states_[cur_].complete) return false;
    ended_ = true;
    return true;
  }
  if (!idx_->in_trie(token)) return false;
  maybe_rebuild();
  const uint32_t s = walk_bytes(cur_, idx_->token_bytes(token));
  if (s == kDead) return false;
  cur_ = s;
  return true;
}

bool Matcher::accept_bytes(std::string_view bytes) {
  if (ended_) return false;
  maybe_rebuild();
  const uint32_t s = walk_bytes(cur_, bytes);
  if (s == kDead) return false;
  cur_ = s;
  return true;
}

uint32_t Matcher::node_min(uint32_t node) const {
  if (node == kBottom) return 0;
  if (node_min_.size() < nodes_.size()) node_min_.resize(nodes_.size(), UINT32_MAX);
  if (node_min_[node] != UINT32_MAX) return node_min_[node];
  // Iterative down the parent chain (stacks can be thousands deep), then memoized back up.
  std::vector<uint32_t> chain;
  uint32_t n = node;
  while (n != kBottom && node_min_[n] == UINT32_MAX) {
    chain.push_back(n);
    n = nodes_[n].parent;
  }
  uint64_t acc = n == kBottom ? 0 : node_min_[n];
  for (size_t i = chain.size(); i-- > 0;) {
    acc = std::min<uint64_t>(acc + g_->min_rest(nodes_[chain[i]].pos), UINT32_MAX - 1);
    node_min_[chain[i]] = static_cast<uint32_t>(acc);
  }
  return node_min_[node];
}

uint32_t Matcher::min_completion_of(uint32_t s) const {
  const State& st = states_[s];
  if (st.complete) return 0;
  uint32_t best = UINT32_MAX;
  for (uint32_t i = 0; i < st.n_tops; ++i) best = std::min(best, node_min(tops_[st.tops_begin + i]));
  return best;
}

uint32_t Matcher::min_completion_after(int32_t token) const {
  if (ended_ || token < 0 || token >= idx_->n_vocab()) return UINT32_MAX;
  if (idx_->is_eog(token)) return states_[cur_].complete ? 0 : UINT32_MAX;
  if (!idx_->in_trie(token)) return UINT32_MAX;
  const uint32_t s = walk_bytes(cur_, idx_->token_bytes(token));
  return s == kDead ? UINT32_MAX : min_completion_of(s);
}

bool Matcher::is_complete() const { return ended_ || states_[cur_].complete; }

bool Matcher::can_continue() const { return !ended_ && states_[cur_].n_tops > 0; }

bool Matcher::is_dead() const {
  if (ended_) return true;
  const State& st = states_[cur_];
  if (st.complete && !idx_->eog().empty()) return false;
  if (st.n_tops == 0) return true;
  const Mask& m = *mask_for(cur_);
  return std::all_of(m.begin(), m.end(), [](uint32_t w) { return w == 0; });
}

void Matcher::reset() {
  cur_ = start_;
  ended_ = false;
}

// The trie walk. walk_stack_[d] is the state after the first d bytes of the current path;
// a node whose state dies is skipped with its whole subtree.
void Matcher::compute_mask(uint32_t s, Mask* m) const {
  m->assign((idx_->n_vocab() + 31) / 32, 0);
  uint32_t* words = m->data();
  if (states_[s].complete) {
    for (int32_t id : idx_->eog()) words[id >> 5] |= 1u << (id & 31);
  }
  if (states_[s].n_tops == 0) return;
  const TokenIndex::TrieNode* nodes = idx_->trie().data();
  const int32_t* ids = idx_->trie_tokens().data();
  const uint32_t n = static_cast<uint32_t>(idx_->trie().size() - 1);
  uint32_t* st = walk_stack_.data();
  st[0] = s;
  const int32_t* trans = trans_.data();  // reloaded whenever a new row is added
  for (uint32_t i = 0; i < n;) {
    const TokenIndex::TrieNode& nd = nodes[i];
    const uint32_t from = st[nd.depth - 1];
    int32_t v = trans[static_cast<size_t>(from) * 256 + nd.byte];
    if (v < 0) {
      v = static_cast<int32_t>(compute_step(from, static_cast<uint8_t>(nd.byte)));
      trans = trans_.data();
    }
    const uint32_t next = static_cast<uint32_t>(v);
    if (next == kDead) {
      i = nd.end;
      continue;
    }
    st[nd.depth] = next;
    for (uint32_t k = nd.tok_begin, e = nodes[i + 1].tok_begin; k < e; ++k) {
      words[ids[k] >> 5] |= 1u << (ids[k] & 31);
    }
    ++i;
  }
}

std::shared_ptr<const Matcher::Mask> Matcher::mask_for(uint32_t s) const {
  if (masks_[s]) {
    ++stats_.cache_hits;
    return masks_[s];
  }
  const std::vector<uint32_t> key = canonical_key(s);
  std::shared_ptr<const Mask> m = g_->find_mask(idx_->hash(), key);
  if (m) {
    ++stats_.cache_hits;
  } else {
    auto fresh = std::make_shared<Mask>();
    compute_mask(s, fresh.get());
    m = std::move(fresh);
    g_->store_mask(idx_->hash(), key, m);
  }
  masks_[s] = m;
  ++n_masks_;
  return m;
}

void Matcher::fill_mask(std::vector<uint32_t>* words) {
  const auto t0 = std::chrono::steady_clock::now();
  ++stats_.masks;
  if (ended_) {
    words->assign((idx_->n_vocab() + 31) / 32, 0);
  } else {
    maybe_rebuild();
    const std::shared_ptr<const Mask> m = mask_for(cur_);
    words->assign(m->begin(), m->end());
  }
  stats_.mask_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace tachyon::constrain
