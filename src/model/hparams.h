// Hyper-parameters of the llama-family architectures (llama, qwen2, qwen3), read from
// GGUF metadata and checked for consistency.
#pragma once
#include <string>

#include "base/status.h"
#include "gguf/gguf.h"
#include "kernels/ops.h"

namespace tachyon::model {

enum class Arch { kLlama, kQwen2, kQwen3 };

struct Hparams {
  Arch arch = Arch::kLlama;
  std::string arch_name;
  int n_vocab = 0;
  int n_ctx_train = 0;
  int n_embd = 0;
  int n_layer = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim_k = 0;  // attention.key_length, else n_embd / n_head
  int head_dim_v = 0;
  float rms_eps = 1e-5f;
  kernels::RopeParams rope;  // freq_factors filled in by the model when rope_freqs exists
  bool qkv_bias = false;     // qwen2
  bool qk_norm = false;      // qwen3

  std::string summary() const;
};

// Reads and validates hyper-parameters; errors name the file and the key.
Result<Hparams> read_hparams(const gguf::File& f);

}  // namespace tachyon::model
