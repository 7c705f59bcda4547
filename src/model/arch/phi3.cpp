// phi3 (Phi-3, Phi-3.5, Phi-4-mini): one fused attn_qkv matrix, one fused ffn_up holding
// gate and up (SwiGLU on its halves), rotary on the first rope.dimension_count dims of
// each head (NeoX halves), q scaled before attention, and LongRoPE frequency factors
// (rope_factors_short / _long, chosen by the context size) when present. Its sliding
// window is ignored, as llama.cpp does (the converters do not record it correctly).
#include <cmath>

#include "model/arch.h"
#include "model/hparams.h"

namespace tachyon::model {

namespace {

Status configure_phi3(const gguf::File&, Hparams* h) {
  const float q_scale = 1.0f / std::sqrt(static_cast<float>(h->head_dim_k));
  for (LayerConfig& L : h->arch.layers) {
    L.qkv_fused = true;
    L.gate_up_fused = true;
    L.q_scale = q_scale;
  }
  return Status::ok();
}

}  // namespace

extern const Family kPhi3Family{"phi3", kernels::RopeMode::kNeox, configure_phi3};

}  // namespace tachyon::model
