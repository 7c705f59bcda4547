// The forward pass over a flat multi-sequence batch, composed from the layers' configs
// (model/arch.h): llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3. Every weight matrix is streamed once
// per step for all tokens of the batch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "kernels/ops.h"
#include "kernels/packed.h"
#include "kernels/traits.h"
#include "model/attention.h"
#include "model/model.h"

namespace tachyon::model {

namespace {

// Runs fn(t) for every token, split over the pool when the batch is large enough.
template <class Fn>
void for_tokens(ThreadPool& pool, int64_t n_tok, Fn&& fn) {
  if (n_tok < 4 || pool.n_threads() == 1) {
    for (int64_t t = 0; t < n_tok; ++t) fn(t);
    return;
  }
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    split_range(n_tok, ith, nth, &b, &e);
    for (int64_t t = b; t < e; ++t) fn(t);
  });
}

// Runs fn(b, e) over token ranges covering [0, n_tok), one per thread when split.
template <class Fn>
void for_token_ranges(ThreadPool& pool, int64_t n_tok, Fn&& fn) {
  if (n_tok < 4 || pool.n_threads() == 1) {
    fn(int64_t{0}, n_tok);
    return;
  }
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    split_range(n_tok, ith, nth, &b, &e);
    if (e > b) fn(b, e);
  });
}

// x += y over one token's row (the residual stream).
void add_row(float* __restrict x, const float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

// A token's routing (llama.cpp's build_moe_ffn): p[0, X) router logits -> probabilities in
// place; idx[0, K) the K most probable experts, ties to the lower index.
void route_top_k(float* p, int64_t X, int64_t K, std::vector<int32_t>* idx) {
  kernels::softmax(p, X);
  for (int64_t e = 0; e < X; ++e) (*idx)[e] = static_cast<int32_t>(e);
  std::partial_sort(idx->begin(), idx->begin() + K, idx->end(),
                    [p](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
}

void add_bias(float* y, const float* b, int64_t n_tok, int64_t n) {
  if (!b) return;
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += b[i];
}

// Adds the time since the last mark to a phase of the sink, when there is one.
class PhaseClock {
 public:
  explicit PhaseClock(StepPhases* sink) : sink_(sink) {
    if (sink_) t_ = std::chrono::steady_clock::now();
  }
  void mark(StepPhases::Phase p) {
    if (!sink_) return;
    const auto t = std::chrono::steady_clock::now();
    sink_->ms[p] += std::chrono::duration<double, std::milli>(t - t_).count();
    t_ = t;
  }

 private:
  StepPhases* sink_;
  std::chrono::steady_clock::time_point t_;
};

}  // namespace

const char* StepPhases::name(int p) {
  static const char* const kNames[kN] = {"norm+quant", "q/k/v",  "rope+kv", "attention", "quant o",    "wo",
                                         "ffn norm",   "gate/up", "swiglu",  "down",      "final norm", "output"};
  return p >= 0 && p < kN ? kNames[p] : "?";
}

double StepPhases::total_ms() const {
  double t = 0;
  for (double x : ms) t += x;
  return t;
}

Status Model::forward(const Batch& batch, kv::KvView kv, ThreadPool& pool, std::vector<float>* logits) {
  const Hparams& h = hp_;
  const int64_t n = batch.size();
  if (n == 0) {
    logits->clear();
    return Status::ok();
  }
  if (batch.pos.size() != static_cast<size_t>(n) || batch.seq.size() != static_cast<size_t>(n) ||
      batch.want_logits.size() != static_cast<size_t>(n))
    return invalid_argument("batch: token, pos, seq and want_logits lengths differ");
  for (int64_t t = 0; t < n; ++t) {
    if (batch.token[t] < 0 || batch.token[t] >= h.n_vocab)
      return invalid_argument("batch: token id " + std::to_string(batch.token[t]) + " out of range [0, " +
                              std::to_string(h.n_vocab) + ")");
    if (batch.seq[t] < 0 || batch.seq[t] >= static_cast<int32_t>(batch.seqs.size()) || !batch.seqs[batch.seq[t]])
      return invalid_argument("batch: token " + std::to_string(t) + " names no sequence");
    const kv::PageTable& pt = *batch.seqs[batch.seq[t]];
    if (batch.pos[t] < 0 || batch.pos[t] / kv.page_size() >= static_cast<int32_t>(pt.pages.size()))
      return invalid_argument("batch: position " + std::to_string(batch.pos[t]) + " has no KV page reserved");
  }
  const auto kv_cfg = kv.config();
  if (kv_cfg.n_layer != h.n_layer || kv_cfg.n_kv_head != h.n_head_kv || kv_cfg.head_dim_k != h.head_dim_k)
    return invalid_argument("kv: cache shape does not match the model");

  const int64_t E = h.n_embd, HD = h.head_dim_k;
  const int64_t nq = h.n_head * HD, nkv = h.n_head_kv * HD, F = h.n_ff, nqkv = nq + 2 * nkv;
  const ArchConfig& arch = h.arch;
  Workspace& ws = ws_;
  ws.x.resize(n * E);      // [n][n_embd] residual stream
  ws.xn.resize(n * E);     // [n][n_embd] normed input of a block
  ws.q.resize(n * nq);     // [n][n_head*head_dim]
  ws.k.resize(n * nkv);    // [n][n_head_kv*head_dim]
  ws.v.resize(n * nkv);    // [n][n_head_kv*head_dim]
  ws.attn.resize(n * nq);  // [n][n_head*head_dim]
  ws.tmp.resize(n * E);    // [n][n_embd]
  ws.gate.resize(n * F);   // [n][n_ff]
  ws.up.resize(n * 2 * F);  // [n][n_ff], or [n][2*n_ff] for a fused gate/up

  PhaseClock clock(phases_);
  for (int64_t t = 0; t < n; ++t) {
    float* xt = ws.x.data() + t * E;
    kernels::get_row(w_.tok_embd, batch.token[t], xt);
    if (arch.embd_scale > 0)
      for (int64_t i = 0; i < E; ++i) xt[i] *= arch.embd_scale;
  }

  const auto vdt = [](const kernels::MatView& m) { return kernels::type_traits(m.type)->vec_dot_type; };
  AttentionShape as;
  as.n_head = h.n_head;
  as.n_head_kv = h.n_head_kv;
  as.head_dim = static_cast<int>(HD);
  as.decode = decode_numerics_;

  // The block output in ws.tmp joins the residual stream (after its post-norm, where the
  // layer has one), inside the pass that norms the next block's input: one pass over the
  // pool instead of a serial add while the other threads wait.
  const auto add_block_out = [&](int64_t t, const float* post_norm) {
    float* y = ws.tmp.data() + t * E;
    if (post_norm) kernels::rms_norm(y, post_norm, E, h.rms_eps, y);
    add_row(ws.x.data() + t * E, y, E);
  };

  for (int l = 0; l < h.n_layer; ++l) {
    const LayerWeights& L = w_.layers[l];
    const LayerConfig& C = arch.layers[l];
    const bool fused_qkv = L.wqkv.data != nullptr;
    const kernels::MatView& wq = fused_qkv ? L.wqkv : L.wq;
    // The previous layer's FFN output joins the residual stream next to this layer's norm.
    // The normed rows are quantized for q (and k, v when their types agree) in the same
    // pass: each pass over the pool is a barrier, and a batch-8 decode step ran ~17 of
    // them per layer, waiting ~4 ms of its ~26 in all.
    const float* prev_post = l > 0 ? w_.layers[l - 1].ffn_post_norm : nullptr;
    kernels::begin_acts(&ws.acts, n, E, vdt(wq), &wq);
    for_token_ranges(pool, n, [&](int64_t b, int64_t e) {
      if (l > 0)
        for (int64_t t = b; t < e; ++t) add_block_out(t, prev_post);
      kernels::rms_norm_rows(ws.x.data() + b * E, E, L.attn_norm, E, h.rms_eps, ws.xn.data() + b * E, E, e - b);
      for (int64_t t = b; t < e; ++t) kernels::act_row(&ws.acts, t, ws.xn.data() + t * E);
    });
    clock.mark(StepPhases::kNormQ);
    if (experts_ && experts_->prefetch_enabled() && C.n_expert > 0) prefetch_experts(l, n, pool);
    if (fused_qkv) {
      ws.qkv.resize(n * nqkv);
      kernels::matmul(L.wqkv, ws.acts, ws.qkv.data(), nqkv, pool);
    } else {
      const kernels::QuantActs* k_acts = &ws.acts;
      if (vdt(L.wk) != ws.acts.type) {
        kernels::quantize_acts(ws.xn.data(), n, E, vdt(L.wk), &ws.acts2, pool);
        k_acts = &ws.acts2;
      }
      const kernels::QuantActs* v_acts =
          vdt(L.wv) == ws.acts.type ? &ws.acts : vdt(L.wv) == k_acts->type ? k_acts : nullptr;
      if (!v_acts) {
        kernels::quantize_acts(ws.xn.data(), n, E, vdt(L.wv), &ws.acts3, pool);
        v_acts = &ws.acts3;
      }
      const kernels::MatmulJob qkv[3] = {{&L.wq, &ws.acts, ws.q.data(), nq},
                                         {&L.wk, k_acts, ws.k.data(), nkv},
                                         {&L.wv, v_acts, ws.v.data(), nkv}};
      kernels::matmul_many(qkv, 3, pool);
    }

    clock.mark(StepPhases::kQkv);
    as.layer = l;
    as.window = C.window;
    as.softcap = C.attn_softcap;
    // q pre-scaled (gemma, phi3) leaves attention unscaled, as llama.cpp's graphs do
    as.scale = C.q_scale > 0 ? 1.0f : 1.0f / std::sqrt(static_cast<float>(HD));
    // biases, q/k norms, rope, q scaling and the KV store, token by token in one pass
    for_tokens(pool, n, [&](int64_t t) {
      float* qt = ws.q.data() + t * nq;
      float* kt = ws.k.data() + t * nkv;
      float* vt = ws.v.data() + t * nkv;
      if (fused_qkv) {
        const float* r = ws.qkv.data() + t * nqkv;
        std::memcpy(qt, r, nq * sizeof(float));
        std::memcpy(kt, r + nq, nkv * sizeof(float));
        std::memcpy(vt, r + nq + nkv, nkv * sizeof(float));
      }
      add_bias(qt, L.bq, 1, nq);
      add_bias(kt, L.bk, 1, nkv);
      add_bias(vt, L.bv, 1, nkv);
      if (L.q_norm) {
        for (int hh = 0; hh < h.n_head; ++hh) kernels::rms_norm(qt + hh * HD, L.q_norm, HD, h.rms_eps, qt + hh * HD);
        for (int hh = 0; hh < h.n_head_kv; ++hh) kernels::rms_norm(kt + hh * HD, L.k_norm, HD, h.rms_eps, kt + hh * HD);
      }
      float cs[kMaxRopeDims];
      kernels::rope_cache(C.rope, batch.pos[t], cs);
      for (int hh = 0; hh < h.n_head; ++hh) kernels::rope_apply(C.rope, cs, qt + hh * HD);
      for (int hh = 0; hh < h.n_head_kv; ++hh) kernels::rope_apply(C.rope, cs, kt + hh * HD);
      if (C.q_scale > 0)
        for (int64_t i = 0; i < nq; ++i) qt[i] *= C.q_scale;
      store_kv_token(as, batch, t, kv, kt, vt);
    });

    clock.mark(StepPhases::kRope);
    attention(as, batch, kv, ws.q.data(), ws.attn.data(), pool);

    clock.mark(StepPhases::kAttention);
    kernels::begin_acts(&ws.acts, n, nq, vdt(L.wo), &L.wo);
    for_tokens(pool, n, [&](int64_t t) { kernels::act_row(&ws.acts, t, ws.attn.data() + t * nq); });
    clock.mark(StepPhases::kQuantO);
    kernels::matmul(L.wo, ws.acts, ws.tmp.data(), E, pool);

    clock.mark(StepPhases::kWo);
    const kernels::MatView& w_in = C.n_expert > 0 ? L.gate_inp : C.gate_up_fused ? L.up : L.gate;
    kernels::begin_acts(&ws.acts, n, E, vdt(w_in), &w_in);
    for_token_ranges(pool, n, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) add_block_out(t, L.attn_post_norm);  // the attention output
      kernels::rms_norm_rows(ws.x.data() + b * E, E, L.ffn_norm, E, h.rms_eps, ws.xn.data() + b * E, E, e - b);
      for (int64_t t = b; t < e; ++t) kernels::act_row(&ws.acts, t, ws.xn.data() + t * E);
    });
    clock.mark(StepPhases::kNormFfn);
    if (C.n_expert > 0) {
      TACHYON_RETURN_IF_ERROR(moe_ffn(l, n, pool));  // the output in ws.tmp, added next layer
      clock.mark(StepPhases::kDown);
      continue;
    }
    // gate of token t at gate_of(t), up at up_of(t) (halves of one row when fused)
    const float* gate_base = C.gate_up_fused ? ws.up.data() : ws.gate.data();
    const float* up_base = C.gate_up_fused ? ws.up.data() + F : ws.up.data();
    const int64_t ld_gu = C.gate_up_fused ? 2 * F : F;
    if (C.gate_up_fused) {
      kernels::matmul(L.up, ws.acts, ws.up.data(), 2 * F, pool);
    } else {
      const kernels::QuantActs* up_acts = &ws.acts;
      if (vdt(L.up) != ws.acts.type) {
        kernels::quantize_acts(ws.xn.data(), n, E, vdt(L.up), &ws.acts2, pool);
        up_acts = &ws.acts2;
      }
      const kernels::MatmulJob gate_up[2] = {{&L.gate, &ws.acts, ws.gate.data(), F}, {&L.up, up_acts, ws.up.data(), F}};
      kernels::matmul_many(gate_up, 2, pool);
    }
    clock.mark(StepPhases::kGateUp);
    kernels::begin_acts(&ws.acts, n, F, vdt(L.down), &L.down);
    for_tokens(pool, n, [&](int64_t t) {
      float* y = ws.gate.data() + t * F;  // in place when not fused
      if (C.act == FfnAct::kGeluTanh)
        kernels::geglu(gate_base + t * ld_gu, up_base + t * ld_gu, F, y);
      else
        kernels::swiglu(gate_base + t * ld_gu, up_base + t * ld_gu, F, y);
      kernels::act_row(&ws.acts, t, y);
    });
    clock.mark(StepPhases::kSwiglu);
    kernels::matmul(L.down, ws.acts, ws.tmp.data(), E, pool);  // added next layer
    clock.mark(StepPhases::kDown);
  }

  // Final norm and output projection only for the tokens that want logits.
  const int64_t n_out = batch.n_logits();
  ws.out_x.resize(n_out * E);
  ws.out_tok.clear();
  for (int64_t t = 0; t < n; ++t)
    if (batch.want_logits[t]) ws.out_tok.push_back(t);
  logits->resize(static_cast<size_t>(n_out) * h.n_vocab);
  if (phases_) ++phases_->steps;
  if (n_out == 0) return Status::ok();
  const float* last_post = h.n_layer > 0 ? w_.layers[h.n_layer - 1].ffn_post_norm : nullptr;
  kernels::begin_acts(&ws.acts, n_out, E, vdt(w_.output), &w_.output);
  for_tokens(pool, n_out, [&](int64_t o) {
    const int64_t t = ws.out_tok[o];
    if (h.n_layer > 0) add_block_out(t, last_post);  // the last FFN output
    kernels::rms_norm(ws.x.data() + t * E, w_.output_norm, E, h.rms_eps, ws.out_x.data() + o * E);
    kernels::act_row(&ws.acts, o, ws.out_x.data() + o * E);
  });
  clock.mark(StepPhases::kFinalNorm);
  kernels::matmul(w_.output, ws.acts, logits->data(), h.n_vocab, pool);
  if (arch.final_softcap > 0) {
    // ggml's order: scale by 1/cap, tanh, scale by cap
    const float inv = 1.0f / arch.final_softcap, cap = arch.final_softcap;
    for (float& z : *logits) z = std::tanh(z * inv) * cap;
  }
  clock.mark(StepPhases::kOutput);
  return Status::ok();
}

// Under --mem-budget: layer l's router applied to the residual stream as it enters the
// layer (through the layer's FFN norm; the attention output it will also see is not known
// yet) names the experts to read while attention runs. The prediction is exact when
// attention changes no token's top-k, and only ever costs reads, never results. At most
// 32 tokens (spread over the batch) vote; experts go in order of summed probability.
void Model::prefetch_experts(int l, int64_t n, ThreadPool& pool) {
  const Hparams& h = hp_;
  const LayerWeights& L = w_.layers[l];
  const LayerConfig& C = h.arch.layers[l];
  Workspace& ws = ws_;
  const int64_t E = h.n_embd, X = C.n_expert, K = C.n_expert_used;
  const int64_t m = std::min<int64_t>(n, 32);
  ws.pred_xn.resize(m * E);
  for (int64_t i = 0; i < m; ++i)
    kernels::rms_norm(ws.x.data() + (i * n / m) * E, L.ffn_norm, E, h.rms_eps, ws.pred_xn.data() + i * E);
  kernels::quantize_acts(ws.pred_xn.data(), m, E, kernels::type_traits(L.gate_inp.type)->vec_dot_type, &ws.pred_acts,
                         pool);
  ws.pred_router.resize(m * X);
  kernels::matmul(L.gate_inp, ws.pred_acts, ws.pred_router.data(), X, pool);
  std::vector<double> score(X, 0.0);
  std::vector<int32_t> idx(X);
  for (int64_t i = 0; i < m; ++i) {
    float* p = ws.pred_router.data() + i * X;
    route_top_k(p, X, K, &idx);
    for (int64_t s = 0; s < K; ++s) score[idx[s]] += p[idx[s]];
  }
  std::vector<int32_t> want;
  for (int32_t e = 0; e < X; ++e)
    if (score[e] > 0) want.push_back(e);
  std::stable_sort(want.begin(), want.end(), [&](int32_t a, int32_t b) { return score[a] > score[b]; });
  experts_->prefetch(l, want);
}

// The routed FFN (LayerConfig::n_expert > 0), as llama.cpp's build_moe_ffn computes it:
// router logits, softmax, the n_expert_used most probable experts (ties: lower index),
// their probabilities renormalized when expert_weights_norm (sum clamped below at 2^-14),
// each expert's swiglu FFN, and the weighted outputs summed slot by slot. Tokens are
// grouped by expert, so a step streams each selected expert's matrices once for all of its
// tokens (one GEMM per expert and matrix). ws_.acts holds the normed rows quantized for
// the router; ws_.xn the normed rows.
Status Model::moe_ffn(int l, int64_t n, ThreadPool& pool) {
  const Hparams& h = hp_;
  const LayerWeights& L = w_.layers[l];
  const LayerConfig& C = h.arch.layers[l];
  Workspace& ws = ws_;
  const int64_t E = h.n_embd, X = C.n_expert, K = C.n_expert_used, FE = C.n_ff_exp;
  const auto vdt = [](const kernels::MatView& m) { return kernels::type_traits(m.type)->vec_dot_type; };

  ws.router.resize(n * X);
  kernels::matmul(L.gate_inp, ws.acts, ws.router.data(), X, pool);
  ws.moe_sel.resize(n * K);
  ws.moe_w.resize(n * K);
  std::vector<int32_t> idx(X);
  std::vector<int32_t> count(X, 0);
  for (int64_t t = 0; t < n; ++t) {
    float* p = ws.router.data() + t * X;
    route_top_k(p, X, K, &idx);
    float wsum = 0;
    for (int64_t s = 0; s < K; ++s) {
      ws.moe_sel[t * K + s] = idx[s];
      ws.moe_w[t * K + s] = p[idx[s]];
      wsum += p[idx[s]];
      ++count[idx[s]];
    }
    if (C.expert_weights_norm) {
      wsum = std::max(wsum, 6.103515625e-5f);
      for (int64_t s = 0; s < K; ++s) ws.moe_w[t * K + s] /= wsum;
    }
  }
  std::vector<int32_t> active;
  for (int32_t e = 0; e < X; ++e)
    if (count[e] > 0) active.push_back(e);
  // The order experts run in, in waves (one wave, index order, when all are resident;
  // under --mem-budget resident ones first, waves that fit the cache).
  std::vector<int32_t> order;
  std::vector<size_t> wave_end;
  if (experts_) {
    experts_->plan(l, active, &order, &wave_end);
  } else {
    order = active;
    wave_end.assign(1, active.size());
  }
  // Rows (token * K + slot) of each expert, experts in run order, tokens in batch order:
  // a wave's rows are contiguous.
  std::vector<int64_t> start(X + 1, 0);
  {
    int64_t at = 0;
    for (int32_t e : order) {
      start[e] = at;
      at += count[e];
    }
  }
  ws.moe_rows.resize(n * K);
  {
    std::vector<int64_t> at(start.begin(), start.end() - 1);
    for (int64_t r = 0; r < n * K; ++r) ws.moe_rows[at[ws.moe_sel[r]]++] = static_cast<int32_t>(r);
  }
  ws.moe_out.resize(n * K * E);
  // Expert e's rows of a stacked matrix (and its packed groups, when packed whole).
  const auto slice = [](const kernels::MatView& m, int64_t e, int64_t rows) {
    kernels::MatView v = m;
    v.data = static_cast<const uint8_t*>(m.data) + static_cast<size_t>(e * rows) * m.row_bytes;
    v.n_rows = rows;
    v.packed = nullptr;
    v.packed_rows = 0;
    if (m.packed && m.packed_rows == m.n_rows) {
      const kernels::PackedKernels* pk = kernels::packed_kernels(m.type);
      v.packed = m.packed + static_cast<size_t>(e * rows / pk->rows) * pk->group_bytes(m.n_cols);
      v.packed_rows = rows;
    }
    return v;
  };
  // Each active expert's tokens as activation rows: the normed rows quantized once, then
  // copied per expert, so that every expert's gate and up products of a wave run in one
  // pass over the pool, and every expert's down product in another (matmul_many).
  const auto gather = [](const kernels::QuantActs& all, const int32_t* rows, int64_t m, int64_t div, int64_t base,
                         kernels::QuantActs* out) {
    out->type = all.type;
    out->n_tok = m;
    out->n_cols = all.n_cols;
    out->row_bytes = all.row_bytes;
    out->buf.resize(static_cast<size_t>(m) * all.row_bytes);
    out->aux.clear();
    out->aux_of = nullptr;
    out->aux_make = nullptr;
    out->aux_per = 0;
    for (int64_t i = 0; i < m; ++i)
      std::memcpy(out->buf.data() + i * all.row_bytes, all.row(rows[i] / div - base), all.row_bytes);
  };
  const size_t na = active.size();
  if (ws.moe_acts.size() < 2 * na) ws.moe_acts.resize(2 * na);
  std::vector<kernels::MatView> views(3 * na);
  std::vector<kernels::MatmulJob> jobs;
  jobs.reserve(2 * na);
  kernels::quantize_acts(ws.xn.data(), n, E, vdt(L.gate_exps), &ws.acts2, pool);
  const kernels::QuantActs* up_all = &ws.acts2;
  kernels::QuantActs* up_own = nullptr;
  if (vdt(L.up_exps) != ws.acts2.type) {
    kernels::quantize_acts(ws.xn.data(), n, E, vdt(L.up_exps), &ws.acts3, pool);
    up_all = up_own = &ws.acts3;
  }
  ws.moe_gate.resize(n * K * FE);
  ws.moe_up.resize(n * K * FE);
  ws.moe_down.resize(n * K * E);
  std::vector<int32_t> ident(n * K);
  for (int64_t i = 0; i < n * K; ++i) ident[i] = static_cast<int32_t>(i);
  kernels::QuantActs& down_all = ws.moe_dacts;  // a wave's swiglu rows, quantized for the downs
  size_t wb = 0;
  for (size_t we : wave_end) {
    const int32_t* wave = order.data() + wb;
    const size_t nw = we - wb;
    if (experts_) {
      std::vector<int32_t> n_tok(nw);
      for (size_t a = 0; a < nw; ++a) n_tok[a] = count[wave[a]];
      if (Status st = experts_->acquire(l, wave, n_tok.data(), nw, views.data() + 3 * wb, pool); !st) return st;
    } else {
      for (size_t a = wb; a < we; ++a) {
        views[3 * a] = slice(L.gate_exps, order[a], FE);
        views[3 * a + 1] = slice(L.up_exps, order[a], FE);
        views[3 * a + 2] = slice(L.down_exps, order[a], E);
      }
    }
    jobs.clear();
    for (size_t a = wb; a < we; ++a) {
      const int32_t e = order[a];
      const int32_t* rows = ws.moe_rows.data() + start[e];
      gather(ws.acts2, rows, count[e], K, 0, &ws.moe_acts[2 * a]);
      const kernels::QuantActs* ua = &ws.moe_acts[2 * a];
      if (up_own) {
        gather(*up_all, rows, count[e], K, 0, &ws.moe_acts[2 * a + 1]);
        ua = &ws.moe_acts[2 * a + 1];
      }
      jobs.push_back({&views[3 * a], &ws.moe_acts[2 * a], ws.moe_gate.data() + start[e] * FE, FE});
      jobs.push_back({&views[3 * a + 1], ua, ws.moe_up.data() + start[e] * FE, FE});
    }
    kernels::matmul_many(jobs.data(), static_cast<int>(jobs.size()), pool);
    // swiglu of the wave's (expert, token) rows, then their quantization for the downs
    const int64_t r0 = start[order[wb]], r1 = start[order[we - 1]] + count[order[we - 1]];
    for_tokens(pool, r1 - r0, [&](int64_t i) {
      float* g = ws.moe_gate.data() + (r0 + i) * FE;
      kernels::swiglu(g, ws.moe_up.data() + (r0 + i) * FE, FE, g);
    });
    kernels::quantize_acts(ws.moe_gate.data() + r0 * FE, r1 - r0, FE, vdt(L.down_exps), &down_all, pool);
    jobs.clear();
    for (size_t a = wb; a < we; ++a) {
      const int32_t e = order[a];
      gather(down_all, ident.data() + start[e], count[e], 1, r0, &ws.moe_acts[2 * a]);
      jobs.push_back({&views[3 * a + 2], &ws.moe_acts[2 * a], ws.moe_down.data() + start[e] * E, E});
    }
    kernels::matmul_many(jobs.data(), static_cast<int>(jobs.size()), pool);
    if (experts_) experts_->release(l, wave, nw);
    wb = we;
  }
  const int64_t n_rows = n * K;
  for (int64_t i = 0; i < n_rows; ++i)
    std::memcpy(ws.moe_out.data() + static_cast<int64_t>(ws.moe_rows[i]) * E, ws.moe_down.data() + i * E,
                E * sizeof(float));
  // Weighted sum in slot order (ggml: each expert's output times its weight, then added).
  for (int64_t t = 0; t < n; ++t) {
    float* y = ws.tmp.data() + t * E;
    for (int64_t s = 0; s < K; ++s) {
      const float w = ws.moe_w[t * K + s];
      const float* o = ws.moe_out.data() + (t * K + s) * E;
      if (s == 0)
        for (int64_t i = 0; i < E; ++i) y[i] = o[i] * w;
      else
        for (int64_t i = 0; i < E; ++i) y[i] += o[i] * w;
    }
  }
  return Status::ok();
}

}  // namespace tachyon::model
