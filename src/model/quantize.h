// Weight-type policy and file conversion: which type each tensor gets under a target
// mix (Q4_K_M etc., the rules users know from llama.cpp's quantizer), random-weight model
// generation at real shapes, and re-quantization of F32/F16/BF16 files.
#pragma once
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace tachyon::model {

// A target such as "Q4_K_M": the base type and whether attn_v/ffn_down get more bits.
struct QuantTarget {
  std::string name;
  DType base = DType::Q8_0;
  DType more_bits = DType::Q8_0;  // attn_v / ffn_down on the layers that use_more_bits()
  DType output = DType::Q8_0;     // output.weight
  uint32_t file_type = 7;         // general.file_type (llama.cpp's ftype numbering)
};

// F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q4_K_M, Q5_K_M (case-insensitive).
Result<QuantTarget> parse_quant_target(const std::string& name);

// Type for one tensor (name, ne[0] row length, layer count) under a target. Row lengths
// that are not a multiple of the type's block size fall back to Q8_0, then F16.
DType tensor_type_for(const QuantTarget& t, const std::string& name, int64_t row_len, int n_layer);

// tachyon quantize: converts every 2-D weight of an F32/F16/BF16 (or any supported) GGUF
// file to the target's types; vectors stay F32. Metadata is copied.
Status quantize_file(const std::string& in_path, const std::string& out_path, const QuantTarget& target, int n_threads);

struct Preset {
  std::string name, arch;
  int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
  float rope_base, rms_eps;
  bool tied_output;
  float llama3_rope_factor;  // > 0: write Llama-3 rope_freqs
};

const std::vector<Preset>& presets();

// tachyon gen-model: random weights at a preset's shape, tokenizer metadata copied from a
// vocab GGUF (its vocabulary size wins). Weights are scaled so activations stay finite
// and logits spread (~N(0, 1/fan_in) projections, unit-norm-ish embeddings).
Status generate_model(const std::string& preset, const std::string& vocab_path, const QuantTarget& target,
                      const std::string& out_path, uint64_t seed, int n_threads);

}  // namespace tachyon::model
