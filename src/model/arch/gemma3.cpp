// gemma3: embeddings scaled by sqrt(n_embd); RMS norms before and after attention and
// the FFN; per-head q/k RMS norm; q scaled before attention; GELU (tanh) gated FFN;
// sliding-window layers interleaved with global ones (a period of P layers: P - 1 local,
// then one global), the local ones with their own rope base and no rope scaling; final
// logit soft-capping when the file sets it.
#include <cmath>

#include "model/arch.h"
#include "model/hparams.h"

namespace tachyon::model {

namespace {

Status configure_gemma3(const gguf::File& f, Hparams* h) {
  const std::string a = h->arch_name + ".";
  ArchConfig& ac = h->arch;
  ac.embd_scale = std::sqrt(static_cast<float>(h->n_embd));
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "final_logit_softcapping", false, 0.f, &ac.final_softcap));
  if (ac.final_softcap < 0) return corrupt(f.path() + ": key '" + a + "final_logit_softcapping': negative");
  // Gemma 3 27B (62 layers) scales q by 1/sqrt(n_embd / n_head), the others by
  // 1/sqrt(head_dim), as the reference implementation does.
  const float q_scale = h->n_layer == 62 ? 1.0f / std::sqrt(static_cast<float>(h->n_embd / h->n_head))
                                         : 1.0f / std::sqrt(static_cast<float>(h->head_dim_k));
  int window = 0;
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.sliding_window", false, 0, &window));
  std::vector<bool> local(h->n_layer, false);
  float base_swa = 10000.f;
  if (window > 0) {
    const gguf::Value* pat = f.find(a + "attention.sliding_window_pattern");
    if (pat && pat->type == gguf::ValueType::ARRAY) {
      // one flag per layer (true: sliding window)
      if (pat->arr_count != static_cast<uint64_t>(h->n_layer) || !pat->arr_data)
        return corrupt(f.path() + ": key '" + a + "attention.sliding_window_pattern': expected " +
                       std::to_string(h->n_layer) + " per-layer flags");
      for (int l = 0; l < h->n_layer; ++l) local[l] = pat->arr_at<int64_t>(l) != 0;
    } else {
      int period = 6;
      TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.sliding_window_pattern", false, 6, &period));
      for (int l = 0; l < h->n_layer; ++l) local[l] = period == 0 || l % period < period - 1;
    }
    TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "rope.freq_base_swa", false, 10000.f, &base_swa));
    if (!(base_swa > 1)) return corrupt(f.path() + ": key '" + a + "rope.freq_base_swa': out of range");
  }
  for (int l = 0; l < h->n_layer; ++l) {
    LayerConfig& L = ac.layers[l];
    L.qk_norm = true;
    L.attn_post_norm = true;
    L.ffn_post_norm = true;
    L.act = FfnAct::kGeluTanh;
    L.q_scale = q_scale;
    if (local[l]) {
      L.window = window;
      L.rope.freq_base = base_swa;
      L.rope.freq_scale = 1.f;
    }
  }
  return Status::ok();
}

}  // namespace

extern const Family kGemma3Family{"gemma3", kernels::RopeMode::kNeox, configure_gemma3};

}  // namespace tachyon::model
