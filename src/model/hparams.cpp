#include "model/hparams.h"

#include <cmath>
#include <cstdio>

namespace tachyon::model {

Status read_int_key(const gguf::File& f, const std::string& key, bool required, int def, int* out) {
  const gguf::Value* v = f.find(key);
  if (!v) {
    if (required) return corrupt(f.path() + ": key '" + key + "': missing");
    *out = def;
    return Status::ok();
  }
  if (v->type == gguf::ValueType::ARRAY) {
    // Per-layer arrays are accepted when every entry is equal (uniform layers).
    if (v->arr_count == 0 || !v->arr_data) return unsupported(f.path() + ": key '" + key + "': empty or non-numeric array");
    const int64_t first = v->arr_at<int64_t>(0);
    for (uint64_t i = 1; i < v->arr_count; ++i)
      if (v->arr_at<int64_t>(i) != first)
        return unsupported(f.path() + ": key '" + key + "': per-layer values differ (not supported)");
    *out = static_cast<int>(first);
  } else if (v->is_int()) {
    if (v->i < 0 || v->i > (1LL << 30)) return corrupt(f.path() + ": key '" + key + "': value " + std::to_string(v->i) + " out of range");
    *out = static_cast<int>(v->i);
  } else {
    return corrupt(f.path() + ": key '" + key + "': expected an integer");
  }
  return Status::ok();
}

Status read_float_key(const gguf::File& f, const std::string& key, bool required, float def, float* out) {
  auto v = f.get_float(key);
  if (!v) {
    if (f.find(key)) return corrupt(f.path() + ": key '" + key + "': expected a number");
    if (required) return corrupt(f.path() + ": key '" + key + "': missing");
    *out = def;
    return Status::ok();
  }
  if (!std::isfinite(*v)) return corrupt(f.path() + ": key '" + key + "': not a finite number");
  *out = static_cast<float>(*v);
  return Status::ok();
}

std::string Hparams::summary() const {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "arch=%s n_vocab=%d n_embd=%d n_layer=%d n_ff=%d n_head=%d n_head_kv=%d head_dim=%d/%d n_rot=%d "
                "rope_base=%g rope_scale=%g eps=%g ctx_train=%d",
                arch_name.c_str(), n_vocab, n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim_k, head_dim_v,
                rope.n_rot, rope.freq_base, 1.0 / rope.freq_scale, rms_eps, n_ctx_train);
  std::string s = buf;
  if (!arch.layers.empty() && arch.layers[0].n_expert > 0)
    s += " n_expert=" + std::to_string(arch.layers[0].n_expert) + " n_expert_used=" +
         std::to_string(arch.layers[0].n_expert_used) + " n_ff_exp=" + std::to_string(arch.layers[0].n_ff_exp);
  return s;
}

Result<Hparams> read_hparams(const gguf::File& f) {
  Hparams h;
  auto arch = f.get_string("general.architecture");
  if (!arch) return corrupt(f.path() + ": key 'general.architecture': missing");
  h.arch_name = std::string(*arch);
  const Family* fam = find_family(h.arch_name);
  if (!fam)
    return unsupported(f.path() + ": architecture '" + h.arch_name + "' is not supported (" + family_names() + ")");
  h.rope.mode = fam->rope_mode;
  const std::string a = h.arch_name + ".";
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "embedding_length", true, 0, &h.n_embd));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "block_count", true, 0, &h.n_layer));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "feed_forward_length", true, 0, &h.n_ff));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.head_count", true, 0, &h.n_head));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.head_count_kv", false, h.n_head, &h.n_head_kv));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "context_length", false, 4096, &h.n_ctx_train));
  if (h.n_embd <= 0 || h.n_layer <= 0 || h.n_ff <= 0 || h.n_head <= 0 || h.n_head_kv <= 0)
    return corrupt(f.path() + ": hyper-parameters: embedding_length, block_count, feed_forward_length and head counts must be positive");
  if (h.n_head % h.n_head_kv != 0)
    return corrupt(f.path() + ": key '" + a + "attention.head_count_kv': " + std::to_string(h.n_head_kv) +
                   " does not divide head_count " + std::to_string(h.n_head));
  const int def_hd = h.n_embd % h.n_head == 0 ? h.n_embd / h.n_head : 0;
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.key_length", false, def_hd, &h.head_dim_k));
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "attention.value_length", false, h.head_dim_k, &h.head_dim_v));
  if (h.head_dim_k <= 0 || h.head_dim_v <= 0)
    return corrupt(f.path() + ": key '" + a + "attention.key_length': head size unknown (embedding_length not divisible by head_count)");
  if (h.head_dim_k != h.head_dim_v) return unsupported(f.path() + ": key '" + a + "attention.value_length': differs from key_length");
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "rope.dimension_count", false, h.head_dim_k, &h.rope.n_rot));
  if (h.rope.n_rot <= 0 || h.rope.n_rot > h.head_dim_k || h.rope.n_rot % 2 != 0)
    return corrupt(f.path() + ": key '" + a + "rope.dimension_count': " + std::to_string(h.rope.n_rot) +
                   " must be even and at most the head size " + std::to_string(h.head_dim_k));
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "attention.layer_norm_rms_epsilon", true, 0, &h.rms_eps));
  if (!(h.rms_eps > 0 && h.rms_eps < 1)) return corrupt(f.path() + ": key '" + a + "attention.layer_norm_rms_epsilon': out of range");
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "rope.freq_base", false, 10000.f, &h.rope.freq_base));
  if (!(h.rope.freq_base > 1) || !std::isfinite(h.rope.freq_base))
    return corrupt(f.path() + ": key '" + a + "rope.freq_base': out of range");

  // Rope scaling: linear is supported; Llama-3 style scaling arrives as the rope_freqs
  // tensor (handled by the model); YaRN and others are refused rather than run wrong.
  std::string scaling = "none";
  if (auto s = f.get_string(a + "rope.scaling.type")) scaling = std::string(*s);
  float factor = 1.f;
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "rope.scaling.factor", false, 1.f, &factor));
  if (auto s = f.get_float(a + "rope.scale_linear")) {
    scaling = "linear";
    factor = static_cast<float>(*s);
  }
  if (scaling == "linear") {
    if (!(factor > 0)) return corrupt(f.path() + ": key '" + a + "rope.scaling.factor': must be positive");
    h.rope.freq_scale = 1.f / factor;
  } else if (scaling != "none" && !(scaling == "yarn" && factor == 1.f) && scaling != "longrope") {
    return unsupported(f.path() + ": key '" + a + "rope.scaling.type': '" + scaling + "' is not supported");
  }
  TACHYON_RETURN_IF_ERROR(read_int_key(f, a + "rope.scaling.original_context_length", false, h.n_ctx_train, &h.n_ctx_orig));
  TACHYON_RETURN_IF_ERROR(read_float_key(f, a + "rope.scaling.attn_factor", false, 1.f, &h.rope.attn_factor));
  if (!(h.rope.attn_factor > 0 && h.rope.attn_factor < 100))
    return corrupt(f.path() + ": key '" + a + "rope.scaling.attn_factor': out of range");
  // Every layer starts from the model's defaults; the family adjusts them.
  LayerConfig base;
  base.rope = h.rope;
  h.arch = ArchConfig{};
  h.arch.layers.assign(h.n_layer, base);
  TACHYON_RETURN_IF_ERROR(fam->configure(f, &h));
  for (int l = 0; l < h.n_layer; ++l) {
    const LayerConfig& L = h.arch.layers[l];
    // rope_cache writes n_rot floats into a fixed buffer of the forward pass
    if (L.rope.n_rot <= 0 || L.rope.n_rot > h.head_dim_k || L.rope.n_rot % 2 != 0 || L.rope.n_rot > kMaxRopeDims)
      return corrupt(f.path() + ": layer " + std::to_string(l) + ": rotary dims " + std::to_string(L.rope.n_rot) +
                     " must be even, at most the head size and at most " + std::to_string(kMaxRopeDims));
    if (L.window < 0) return corrupt(f.path() + ": layer " + std::to_string(l) + ": negative attention window");
  }
  return h;
}

}  // namespace tachyon::model
