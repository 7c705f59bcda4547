// qwen2 (q/k/v biases), qwen3 (per-head RMS norm of q and k before rope) and qwen3moe
// (qwen3 attention, routed experts: LayerConfig::n_expert); all rotate split halves (NeoX rope).
#include "model/arch.h"
#include "model/hparams.h"

namespace tachyon::model {

namespace {

Status configure_qwen2(const gguf::File&, Hparams* h) {
  for (LayerConfig& L : h->arch.layers) L.qkv_bias = true;
  return Status::ok();
}

Status configure_qwen3(const gguf::File&, Hparams* h) {
  for (LayerConfig& L : h->arch.layers) L.qk_norm = true;
  return Status::ok();
}

Status configure_qwen3moe(const gguf::File& f, Hparams* h) {
  int n_expert = 0, n_used = 0, n_ff_exp = 0;
  TACHYON_RETURN_IF_ERROR(read_int_key(f, "qwen3moe.expert_count", true, 0, &n_expert));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, "qwen3moe.expert_used_count", true, 0, &n_used));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, "qwen3moe.expert_feed_forward_length", true, 0, &n_ff_exp));
  if (n_expert <= 0 || n_expert > 4096 || n_used <= 0 || n_used > n_expert || n_ff_exp <= 0)
    return corrupt(f.path() + ": keys 'qwen3moe.expert_count' / 'expert_used_count' / 'expert_feed_forward_length': " +
                   std::to_string(n_expert) + " experts, " + std::to_string(n_used) + " used, " +
                   std::to_string(n_ff_exp) + " wide: out of range");
  for (LayerConfig& L : h->arch.layers) {
    L.qk_norm = true;
    L.n_expert = n_expert;
    L.n_expert_used = n_used;
    L.n_ff_exp = n_ff_exp;
    L.expert_weights_norm = true;  // Qwen3-MoE's norm_topk_prob
  }
  return Status::ok();
}

}  // namespace

extern const Family kQwen3MoeFamily{"qwen3moe", kernels::RopeMode::kNeox, configure_qwen3moe};
extern const Family kQwen2Family{"qwen2", kernels::RopeMode::kNeox, configure_qwen2};
extern const Family kQwen3Family{"qwen3", kernels::RopeMode::kNeox, configure_qwen3};

}  // namespace tachyon::model
