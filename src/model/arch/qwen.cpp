// qwen2 (q/k/v biases) and qwen3 (per-head RMS norm of q and k before rope); both rotate
// split halves (NeoX rope).
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

}  // namespace

extern const Family kQwen2Family{"qwen2", kernels::RopeMode::kNeox, configure_qwen2};
extern const Family kQwen3Family{"qwen3", kernels::RopeMode::kNeox, configure_qwen3};

}  // namespace tachyon::model
