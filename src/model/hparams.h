// Hyper-parameters of a model, read from GGUF metadata and checked for consistency: the
// sizes every family shares, and the family's layer configs (model/arch.h).
#pragma once
#include <string>

#include "base/status.h"
#include "gguf/gguf.h"
#include "kernels/ops.h"
#include "model/arch.h"

namespace tachyon::model {

// The most rotary dims a layer may have (the forward pass's cos/sin buffer).
constexpr int kMaxRopeDims = 1024;

struct Hparams {
  std::string arch_name;  // general.architecture
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
  int n_ctx_orig = 0;        // rope.scaling.original_context_length (else n_ctx_train)
  kernels::RopeParams rope;  // the model's rotary; layers may differ (arch.layers[l].rope)
  ArchConfig arch;           // per-layer configs of the family

  std::string summary() const;
};

// Reads and validates hyper-parameters; errors name the file and the key.
Result<Hparams> read_hparams(const gguf::File& f);

}  // namespace tachyon::model
