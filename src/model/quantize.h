// Weight-type policy and file conversion: which type each tensor gets under a target
// mix (Q4_K_M etc., the rules users know from llama.cpp's quantizer), random-weight model
// generation at real shapes, and re-quantization of F32/F16/BF16 files.
#pragma once
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"
#include "model/imatrix.h"
#include "model/quant_policy.h"

namespace tachyon::model {

// tachyon quantize: converts every quantizable weight (quant_policy.h) of a GGUF file in
// any supported type to the types the target mix and the overrides choose; other tensors
// are copied. Metadata is copied. Fails naming the tensor when a chosen type has no
// quantizer in this build. `log` (optional) receives one line per tensor.
// With an importance matrix (imatrix.h; not owned, must outlive the call) every tensor that
// has an entry is quantized with llama.cpp's importance-weighted fit for its type (same
// bytes as llama-quantize --imatrix), the mix follows llama.cpp's with-imatrix rules, and
// a type whose llama.cpp quantizer would use the matrix but that has no weighted quantizer
// here fails naming the tensor.
struct QuantizeOptions {
  std::vector<TensorTypeOverride> overrides;
  const Imatrix* imatrix = nullptr;
  int n_threads = 1;
  void (*log)(const std::string& line) = nullptr;
};
Status quantize_file(const std::string& in_path, const std::string& out_path, const QuantTarget& target,
                     const QuantizeOptions& opt);

struct Preset {
  std::string name, arch;
  int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
  float rope_base, rms_eps;
  bool tied_output;
  float llama3_rope_factor;  // > 0: write Llama-3 rope_freqs
  // Family extras (0: none)
  int n_rot = 0;             // rotary dims when partial (phi3)
  int window = 0;            // sliding window of local layers (gemma3)
  int swa_pattern = 0;       // period of local/global layers (gemma3)
  float rope_base_swa = 0;   // rope base of local layers (gemma3)
  int n_ctx_orig = 0;        // > 0: LongRoPE factors for this original context (phi3)
};

const std::vector<Preset>& presets();

// tachyon gen-model: random weights at a preset's shape, tokenizer metadata copied from a
// vocab GGUF (its vocabulary size wins). Weights are scaled so activations stay finite
// and logits spread (~N(0, 1/fan_in) projections, unit-norm-ish embeddings).
Status generate_model(const std::string& preset, const std::string& vocab_path, const QuantTarget& target,
                      const std::string& out_path, uint64_t seed, int n_threads);

}  // namespace tachyon::model
