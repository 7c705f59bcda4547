// Architectures as data: a family (llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3) is described by
// per-layer configs that the shared blocks of the forward pass compose (pre/post norms,
// q/k norm, biases, fused projections, activation, attention window, rope per layer,
// q scaling, soft-capping). Each family lives in model/arch/<family>.cpp: it reads its
// own metadata keys and declares its layers; the loader binds the tensors the configs
// name, and model_forward.cpp runs them. A new family is one new file plus one line in
// the table of model/arch/families.cpp.
#pragma once
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "kernels/ops.h"

namespace tachyon::model {

struct Hparams;

enum class FfnAct {
  kSilu,      // silu(gate) * up (swiglu)
  kGeluTanh,  // gelu(gate) * up with ggml's tanh approximation through its f16 table (geglu)
};

struct LayerConfig {
  // attention block
  bool qkv_fused = false;       // one attn_qkv matrix: rows [q; k; v]
  bool qkv_bias = false;        // attn_{q,k,v}.bias required
  bool qk_norm = false;         // attn_{q,k}_norm.weight: RMS norm per head before rope
  bool attn_post_norm = false;  // post_attention_norm.weight on the attention output
  int window = 0;               // sliding window in tokens (0: global attention)
  float attn_softcap = 0.f;     // > 0: attention scores soft-capped (gemma2)
  kernels::RopeParams rope;     // this layer's rotary (base, scale, dims, factors)
  float q_scale = 0.f;          // > 0: q multiplied by it and attention unscaled (gemma, phi3);
                                // 0: scores scaled by 1/sqrt(head_dim) inside attention
  // feed-forward block
  FfnAct act = FfnAct::kSilu;
  bool gate_up_fused = false;  // ffn_up holds [gate; up] (2 * n_ff rows), no ffn_gate
  bool ffn_post_norm = false;  // post_ffw_norm.weight on the FFN output
  // Mixture of experts (n_expert > 0: the FFN is routed; qwen3moe): a router
  // (ffn_gate_inp, [n_expert] x [n_embd]) scores the experts, softmax, the n_expert_used
  // best (ties: lower index) run as swiglu FFNs of n_ff_exp (ffn_{gate,up,down}_exps,
  // one 3-D tensor each) and their outputs are summed weighted by their probabilities,
  // renormalized to sum 1 when expert_weights_norm. llama.cpp's build_moe_ffn.
  int n_expert = 0;
  int n_expert_used = 0;
  int n_ff_exp = 0;
  bool expert_weights_norm = false;
};

// Model-wide parts of an architecture.
struct ArchConfig {
  float embd_scale = 0.f;     // > 0: token embeddings multiplied by it (gemma: sqrt(n_embd))
  float final_softcap = 0.f;  // > 0: logits = cap * tanh(logits / cap)
  std::vector<LayerConfig> layers;
};

// One architecture family. configure() runs after the shared keys (sizes, heads, eps,
// rope base/scaling) are read into *h with h->rope as every layer's default; it sets
// h->arch (the layers and model-wide parts) from the family's own keys and returns a
// clear error for values it cannot run.
struct Family {
  const char* name;  // general.architecture
  kernels::RopeMode rope_mode;
  Status (*configure)(const gguf::File& f, Hparams* h);
};

// The family of an architecture name, or nullptr.
const Family* find_family(const std::string& arch);
// "llama, qwen2, ..." for error messages.
std::string family_names();

// Helpers for the family files: optional keys "<arch>.<key>" with range checks; errors
// name the file and key.
Status read_int_key(const gguf::File& f, const std::string& key, bool required, int def, int* out);
Status read_float_key(const gguf::File& f, const std::string& key, bool required, float def, float* out);

}  // namespace tachyon::model
