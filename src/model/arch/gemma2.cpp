// gemma2: Gemma 3's block without the q/k norms, with attention logit soft-capping
// (attn_logit_softcapping, default 50) and final logit soft-capping (default 30); sliding
// window 4096 on every other layer by default (period 2: even layers local), local layers
// with rope.freq_base_swa when set (else the model's base).
#include <cmath>

#include "model/arch.h"
#include "model/hparams.h"

namespace tachyon::model {

namespace {

Status configure_gemma2(const gguf::File& f, Hparams* h) {
  const std::string a = h->arch_name + ".";
  ArchConfig& ac = h->arch;
  ac.embd_scale = std::sqrt(static_cast<float>(h->n_embd));
  float attn_cap = 50.f;
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "attn_logit_softcapping", false, 50.f, &attn_cap));
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "final_logit_softcapping", false, 30.f, &ac.final_softcap));
  if (attn_cap < 0 || ac.final_softcap < 0) return corrupt(f.path() + ": gemma2 soft-capping values must not be negative");
  // Gemma 2 27B (46 layers) scales q by 1/sqrt(n_embd / n_head), the others by 1/sqrt(head_dim).
  const float q_scale = h->n_layer == 46 ? 1.0f / std::sqrt(static_cast<float>(h->n_embd / h->n_head))
                                         : 1.0f / std::sqrt(static_cast<float>(h->head_dim_k));
  int window = 4096, period = 2;
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.sliding_window", false, 4096, &window));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.sliding_window_pattern", false, 2, &period));
  float base_swa = h->rope.freq_base;
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "rope.freq_base_swa", false, h->rope.freq_base, &base_swa));
  if (!(base_swa > 1)) return corrupt(f.path() + ": key '" + a + "rope.freq_base_swa': out of range");
  for (int l = 0; l < h->n_layer; ++l) {
    LayerConfig& L = ac.layers[l];
    L.attn_post_norm = true;
    L.ffn_post_norm = true;
    L.act = FfnAct::kGeluTanh;
    L.q_scale = q_scale;
    L.attn_softcap = attn_cap;
    if (window > 0 && (period == 0 || l % period < period - 1)) {
      L.window = window;
      L.rope.freq_base = base_swa;
    }
  }
  return Status::ok();
}

}  // namespace

extern const Family kGemma2Family{"gemma2", kernels::RopeMode::kNeox, configure_gemma2};

}  // namespace tachyon::model
