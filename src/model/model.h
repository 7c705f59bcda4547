// A loaded model: hyper-parameters, zero-copy weight views into the mapped GGUF file,
// and the forward pass. The KV cache is owned outside (kv::KvPool); forward() reads and
// writes it through a kv::KvView (rows by page, no allocator) and the batch's page tables.
#pragma once
#include <cstdlib>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "kv/kv_pool.h"
#include "model/attention.h"
#include "model/batch.h"
#include "model/expert_cache.h"
#include "model/hparams.h"

namespace tachyon::model {

// The tensors of one layer; which ones are bound follows its LayerConfig (model/arch.h).
struct LayerWeights {
  const float* attn_norm = nullptr;  // [n_embd]
  kernels::MatView wqkv;             // [q; k; v] rows x [n_embd] when qkv_fused (wq/wk/wv empty)
  kernels::MatView wq;               // [n_head*head_dim] x [n_embd]
  kernels::MatView wk;               // [n_head_kv*head_dim] x [n_embd]
  kernels::MatView wv;               // [n_head_kv*head_dim] x [n_embd]
  kernels::MatView wo;               // [n_embd] x [n_head*head_dim]
  const float* bq = nullptr;         // [n_head*head_dim] (qwen2)
  const float* bk = nullptr;         // [n_head_kv*head_dim]
  const float* bv = nullptr;         // [n_head_kv*head_dim]
  const float* q_norm = nullptr;     // [head_dim] (qwen3)
  const float* k_norm = nullptr;     // [head_dim]
  const float* attn_post_norm = nullptr;  // [n_embd] (gemma)
  const float* ffn_norm = nullptr;   // [n_embd]
  kernels::MatView gate;             // [n_ff] x [n_embd] (empty when gate_up_fused)
  kernels::MatView up;               // [n_ff] x [n_embd], or [gate; up] 2*n_ff rows when fused
  kernels::MatView down;             // [n_embd] x [n_ff]
  const float* ffn_post_norm = nullptr;  // [n_embd] (gemma)
  // Mixture of experts (LayerConfig::n_expert > 0; gate/up/down then empty): the router
  // and the experts' matrices, each 3-D tensor viewed as n_expert stacked matrices
  // (expert e's rows start at row e * rows-per-expert; never repacked).
  kernels::MatView gate_inp;         // [n_expert] x [n_embd]
  kernels::MatView gate_exps;        // [n_expert * n_ff_exp] x [n_embd]
  kernels::MatView up_exps;          // [n_expert * n_ff_exp] x [n_embd]
  kernels::MatView down_exps;        // [n_expert * n_embd] x [n_ff_exp]

  // Every weight matrix of the layer (empty views included), for passes over all of them.
  std::array<kernels::MatView*, 8> mats() { return {&wqkv, &wq, &wk, &wv, &wo, &gate, &up, &down}; }
  std::array<const kernels::MatView*, 8> mats() const { return {&wqkv, &wq, &wk, &wv, &wo, &gate, &up, &down}; }
};

struct ModelWeights {
  kernels::MatView tok_embd;         // [n_vocab] x [n_embd]
  const float* output_norm = nullptr;  // [n_embd]
  kernels::MatView output;           // [n_vocab] x [n_embd] (tok_embd when tied)
  bool tied_output = false;
  const float* rope_freqs = nullptr;   // [n_rot/2] or null (Llama-3 scaling)
  const float* rope_short = nullptr;   // [n_rot/2] or null (LongRoPE, contexts up to n_ctx_orig)
  const float* rope_long = nullptr;    // [n_rot/2] or null (LongRoPE, longer contexts)
  std::vector<LayerWeights> layers;
};

// Where forward() spends a step: wall time per phase, summed over steps and layers, when
// a sink is set (Model::set_phase_sink; `tachyon perf --phases`). The phases follow the
// layer: the norm and quantization before q/k/v (layer 0: with the embedding look-up), the
// q/k/v products, rope and the KV store, attention, the quantization of its output, wo,
// the FFN norm and quantization, gate/up, swiglu and quantization, down, then the final
// norm and the output product. Each phase is one or more passes over the pool, so a
// phase's time includes its barrier waits.
struct StepPhases {
  enum Phase { kNormQ, kQkv, kRope, kAttention, kQuantO, kWo, kNormFfn, kGateUp, kSwiglu, kDown, kFinalNorm, kOutput, kN };
  static const char* name(int p);
  double ms[kN] = {};
  int64_t steps = 0;
  double total_ms() const;
};

// How a model is loaded (defaults: everything resident).
struct LoadOptions {
  // Routed experts of a MoE model live in a cache of this many bytes, read from the file
  // on demand (model/expert_cache.h); 0: packed into RAM with the rest. Refused for a
  // model without routed experts, and below one expert's bytes.
  size_t mem_budget = 0;
  bool expert_prefetch = true;  // predict and prefetch each layer's experts
};

class Model {
 public:
  // Maps and validates the file: architecture, hyper-parameters, every tensor's
  // presence, shape and type. Errors name the file and the tensor or key.
  static Result<std::unique_ptr<Model>> load(const std::string& path, const LoadOptions& opt = {});

  const Hparams& hparams() const { return hp_; }
  const gguf::File& file() const { return *file_; }
  const ModelWeights& weights() const { return w_; }
  // Bytes of weights one forward step streams (all matrices + embeddings rows used).
  size_t weight_bytes() const { return weight_bytes_; }
  // Short label of the dominant weight type, e.g. "Q4_K" (by bytes).
  std::string weight_type() const;

  // Numerics of decode attention (see model/attention.h); default kAuto.
  void set_decode_numerics(DecodeNumerics d) { decode_numerics_ = d; }
  // Adds every later forward()'s phase times to *sink (nullptr: off, the default).
  void set_phase_sink(StepPhases* sink) { phases_ = sink; }
  DecodeNumerics decode_numerics() const { return decode_numerics_; }
  // The expert cache under --mem-budget, nullptr without one.
  const ExpertCache* expert_cache() const { return experts_.get(); }

  // The KV pool shape for this model: n_pages pages, its sliding-window layers (if any)
  // flagged local with the largest window, n_local_slots 0 (one slot per page).
  kv::KvConfig kv_config(int n_pages, int page_size = 16, kv::KvType type = kv::KvType::kF16) const;

  // The context size the model will run with: selects LongRoPE's long frequency factors
  // above the original training context (as llama.cpp does per context); no-op for
  // models without them. Call before the first forward().
  void set_context_size(int n_ctx);

  // Runs one step. Writes logits for the tokens with want_logits (in batch order) to
  // *logits as [n_out][n_vocab]. Writes K/V of every batch token into its sequence's
  // pages. Fails (without side effects on other sequences) on invalid token ids,
  // positions, or page tables too short.
  Status forward(const Batch& batch, kv::KvView kv, ThreadPool& pool, std::vector<float>* logits);

 private:
  Model() = default;
  Status bind_weights();
  // The routed FFN of layer l (LayerConfig::n_expert > 0): ws_.xn -> ws_.tmp. Fails only
  // on an expert read under --mem-budget (I/O error, corrupt block).
  Status moe_ffn(int l, int64_t n, ThreadPool& pool);
  // Under --mem-budget: predicts layer l's experts from the residual stream entering it
  // (its FFN norm and router on ws_.x) and queues their reads, to overlap attention.
  void prefetch_experts(int l, int64_t n, ThreadPool& pool);
  void pack_weights();

  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };

  std::unique_ptr<gguf::File> file_;
  LoadOptions opt_;
  std::unique_ptr<ExpertCache> experts_;
  Hparams hp_;
  ModelWeights w_;
  std::vector<std::vector<float>> owned_;
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> packed_;  // repacked weight matrices  // f32 copies of small non-f32 vectors
  size_t weight_bytes_ = 0;
  DecodeNumerics decode_numerics_ = DecodeNumerics::kAuto;
  StepPhases* phases_ = nullptr;

  // Workspace reused across steps (the model is driven by one thread).
  struct Workspace {
    std::vector<float> x, xn, q, k, v, qkv, attn, tmp, gate, up, out_x;
    // mixture of experts: router probabilities, each token's experts and weights, the
    // rows of one expert's tokens, and every (token, slot) expert output
    std::vector<float> router, moe_x, moe_gate, moe_up, moe_down, moe_out, moe_w;
    std::vector<int32_t> moe_sel, moe_rows;
    std::vector<kernels::QuantActs> moe_acts;  // per active expert: its tokens' rows
    std::vector<float> pred_xn, pred_router;  // expert prediction (prefetch_experts)
    std::vector<int64_t> out_tok;  // the tokens that want logits, in order
    kernels::QuantActs acts, acts2, acts3, pred_acts, moe_dacts;
  } ws_;
};

}  // namespace tachyon::model
