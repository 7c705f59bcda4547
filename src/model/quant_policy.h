// Which weight type each tensor gets under a quantization mix ("Q4_K_M", "Q3_K_S",
// "IQ4_XS", ...): the per-tensor choices llama.cpp's quantizer makes, so that a file made
// by `tachyon quantize` has the mix users know by that name (same types on the same
// tensors), plus explicit per-tensor overrides (--tensor-type).
#pragma once
#include <cstdint>
#include <regex>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace tachyon::model {

struct QuantTarget {
  std::string name;             // canonical mix name, e.g. "Q4_K_M"
  DType base = DType::Q8_0;     // the type of every tensor the mix does not single out
  uint32_t file_type = 7;       // general.file_type (llama.cpp's ftype numbering)
  bool needs_imatrix = false;   // IQ1/IQ2 mixes: llama.cpp refuses them without one
};

// A mix name, case-insensitive: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q1_0, Q2_K,
// Q2_K_S, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K, IQ4_NL, IQ4_XS,
// IQ3_XXS, IQ3_XS, IQ3_S, IQ3_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ2_M, IQ1_S, IQ1_M, TQ1_0,
// TQ2_0, MXFP4_MOE; Q3_K, Q4_K and Q5_K stand for their _M mix as in llama-quantize.
Result<QuantTarget> parse_quant_target(const std::string& name);
// The accepted names, comma-separated.
std::string quant_target_names();

// What the policy needs to know about the model besides a tensor's name and shape.
struct ModelShape {
  int n_layer = 0;
  int n_gqa = 1;        // query heads per KV head
  int n_expert = 0;
  bool tied_output = false;  // no output.weight: token_embd serves as the output matrix
};

// --tensor-type overrides: the first pattern that matches a tensor name (std::regex_search)
// sets its type, before the row-length fallback.
struct TensorTypeOverride {
  std::string pattern;
  std::regex re;
  DType type;
};
// Parses "PATTERN=TYPE" (TYPE a weight type name such as q8_0 or Q6_K).
Result<TensorTypeOverride> parse_tensor_type_override(const std::string& spec);

// Whether a tensor is quantized at all: 2-D or 3-D weights, not norms, not MoE routers.
bool tensor_is_quantizable(const std::string& name, int n_dims);

// The type for one quantizable tensor (ne[0] = row_len). Rows whose length is not a
// multiple of the chosen type's block fall back as llama.cpp does (Q4_K -> Q5_0,
// Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K/TQ -> Q4_0, IQ -> IQ4_NL, then F16).
DType tensor_type_for(const QuantTarget& t, const std::string& name, int64_t row_len, const ModelShape& shape,
                      const std::vector<TensorTypeOverride>& overrides = {});

}  // namespace tachyon::model
