#include "model/quant_policy.h"

#include <cctype>
#include <cstdlib>

namespace tachyon::model {

namespace {

struct MixInfo {
  const char* name;
  DType base;
  uint32_t file_type;
  bool needs_imatrix;
};

// llama.cpp's ftype numbers (general.file_type) and default types.
constexpr MixInfo kMixes[] = {
    {"F32", DType::F32, 0, false},           {"F16", DType::F16, 1, false},
    {"BF16", DType::BF16, 32, false},        {"Q8_0", DType::Q8_0, 7, false},
    {"Q4_0", DType::Q4_0, 2, false},         {"Q4_1", DType::Q4_1, 3, false},
    {"Q5_0", DType::Q5_0, 8, false},         {"Q5_1", DType::Q5_1, 9, false},
    {"Q1_0", DType::Q1_0, 40, false},        {"Q2_K", DType::Q2_K, 10, false},
    {"Q2_K_S", DType::Q2_K, 21, false},      {"Q3_K_S", DType::Q3_K, 11, false},
    {"Q3_K_M", DType::Q3_K, 12, false},      {"Q3_K_L", DType::Q3_K, 13, false},
    {"Q4_K_S", DType::Q4_K, 14, false},      {"Q4_K_M", DType::Q4_K, 15, false},
    {"Q5_K_S", DType::Q5_K, 16, false},      {"Q5_K_M", DType::Q5_K, 17, false},
    {"Q6_K", DType::Q6_K, 18, false},        {"IQ2_XXS", DType::IQ2_XXS, 19, true},
    {"IQ2_XS", DType::IQ2_XS, 20, true},     {"IQ3_XS", DType::IQ3_S, 22, false},
    {"IQ3_XXS", DType::IQ3_XXS, 23, false},  {"IQ1_S", DType::IQ1_S, 24, true},
    {"IQ4_NL", DType::IQ4_NL, 25, false},    {"IQ3_S", DType::IQ3_S, 26, false},
    {"IQ3_M", DType::IQ3_S, 27, false},      {"IQ2_S", DType::IQ2_XS, 28, true},
    {"IQ2_M", DType::IQ2_S, 29, true},       {"IQ4_XS", DType::IQ4_XS, 30, false},
    {"IQ1_M", DType::IQ1_M, 31, true},       {"TQ1_0", DType::TQ1_0, 36, false},
    {"TQ2_0", DType::TQ2_0, 37, false},      {"MXFP4_MOE", DType::MXFP4, 38, false},
};

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool use_more_bits(int layer, int n_layer) {
  return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::atoi(name.c_str() + 4);
}

enum class Role { kOther, kTokenEmbd, kOutput, kAttnQ, kAttnK, kAttnV, kAttnQkv, kAttnOut, kFfnDown, kFfnGate, kFfnUp };

Role role_of(const std::string& n) {
  if (n == "token_embd.weight") return Role::kTokenEmbd;
  if (n == "output.weight") return Role::kOutput;
  if (contains(n, "attn_qkv.weight")) return Role::kAttnQkv;
  if (contains(n, "attn_q.weight")) return Role::kAttnQ;
  if (contains(n, "attn_k.weight")) return Role::kAttnK;
  if (contains(n, "attn_v.weight")) return Role::kAttnV;
  if (contains(n, "attn_output.weight")) return Role::kAttnOut;
  if (contains(n, "ffn_down")) return Role::kFfnDown;
  if (contains(n, "ffn_gate")) return Role::kFfnGate;
  if (contains(n, "ffn_up")) return Role::kFfnUp;
  return Role::kOther;
}

bool is_iq12_mix(const std::string& m) {
  return m == "IQ2_XXS" || m == "IQ2_XS" || m == "IQ2_S" || m == "IQ2_M" || m == "IQ1_S" || m == "IQ1_M";
}

// The mix's choice before the row-length fallback (llama.cpp's rules, transcribed as
// decisions; FALCON-only branches are left out since tachyon does not run Falcon).
DType mix_choice(const QuantTarget& t, Role role, int layer, int64_t row_len, const ModelShape& s) {
  const std::string& m = t.name;
  const DType base = t.base;
  const int n_layer = std::max(1, s.n_layer);
  const bool iq2_s_or_m = m == "IQ2_S" || m == "IQ2_M";
  if (role == Role::kOutput || (s.tied_output && role == Role::kTokenEmbd)) {
    if (m == "MXFP4_MOE") return DType::Q8_0;
    if (row_len % dtype_info(base).block_elems != 0) return DType::Q8_0;
    if (is_iq12_mix(m) || m == "IQ3_XXS") return DType::Q5_K;
    return base == DType::Q8_0 ? DType::Q8_0 : DType::Q6_K;
  }
  if (m == "MXFP4_MOE") return DType::Q8_0;  // 2-D tensors; 3-D experts are handled by the caller
  if (role == Role::kTokenEmbd) {
    if (m == "IQ2_XXS" || m == "IQ2_XS" || m == "IQ1_S" || m == "IQ1_M") return DType::Q2_K;
    if (iq2_s_or_m || m == "IQ3_XXS") return DType::IQ3_S;
    if (m == "TQ1_0" || m == "TQ2_0") return DType::Q4_K;
    return base;
  }
  if (is_iq12_mix(m)) {
    if (role == Role::kAttnV) {
      if (s.n_gqa >= 4 || s.n_expert >= 4) return DType::Q4_K;
      return iq2_s_or_m ? DType::IQ3_S : DType::Q2_K;
    }
    if (s.n_expert == 8 && role == Role::kAttnK) return DType::Q4_K;
    if (role == Role::kFfnDown) return layer < n_layer / 8 ? (iq2_s_or_m ? DType::IQ3_S : DType::Q2_K) : base;
    if (role == Role::kAttnOut) {
      if (s.n_expert == 8) return DType::Q5_K;
      if (m == "IQ1_S" || m == "IQ1_M") return DType::IQ2_XXS;
      if (iq2_s_or_m) return DType::IQ3_S;
    }
    return base;
  }
  switch (role) {
    case Role::kAttnV: {
      DType v = base;
      if (m == "Q2_K") v = s.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
      else if (m == "Q2_K_S" && s.n_gqa >= 4) v = DType::Q4_K;
      else if (m == "IQ3_XXS") v = s.n_gqa >= 4 ? DType::Q4_K : DType::IQ3_S;  // IQ3_XXS needs an imatrix
      else if ((m == "IQ3_XS" || m == "IQ3_S") && s.n_gqa >= 4) v = DType::Q4_K;
      else if (m == "IQ3_M") v = DType::Q4_K;
      else if (m == "Q3_K_M") v = layer < 2 ? DType::Q5_K : DType::Q4_K;
      else if (m == "Q3_K_L") v = DType::Q5_K;
      else if ((m == "IQ4_NL" || m == "IQ4_XS") && s.n_gqa >= 4) v = DType::Q5_K;
      else if ((m == "Q4_K_M" || m == "Q5_K_M") && use_more_bits(layer, n_layer)) v = DType::Q6_K;
      else if (m == "Q4_K_S" && layer < 4) v = DType::Q5_K;
      if (s.n_expert == 8) v = DType::Q8_0;
      return v;
    }
    case Role::kAttnK:
      if (s.n_expert == 8) return DType::Q8_0;
      if (m == "IQ3_XS") return DType::IQ3_XXS;
      if (m == "IQ3_XXS") return DType::IQ2_S;
      return base;
    case Role::kAttnQ:
      if (m == "IQ3_XS") return DType::IQ3_XXS;
      if (m == "IQ3_XXS") return DType::IQ2_S;
      return base;
    case Role::kFfnDown:
      if (m == "Q2_K") return DType::Q3_K;
      if (m == "Q2_K_S") return layer < n_layer / 8 ? DType::Q4_K : base;
      if (m == "IQ3_XXS") return layer < n_layer / 8 ? DType::Q4_K : DType::Q3_K;
      if (m == "Q3_K_M") return layer < n_layer / 16 ? DType::Q5_K : DType::Q4_K;
      if (m == "IQ3_M" && (layer < n_layer / 8 || (s.n_expert == 8 && use_more_bits(layer, n_layer)))) return DType::Q4_K;
      if (m == "Q3_K_L") return DType::Q5_K;
      if (m == "Q4_K_M") return use_more_bits(layer, n_layer) ? DType::Q6_K : base;
      if (layer < n_layer / 8 && (m == "IQ4_NL" || m == "IQ4_XS")) return DType::Q5_K;
      if (m == "Q5_K_M" && use_more_bits(layer, n_layer)) return DType::Q6_K;
      if (m == "Q4_K_S" && layer < n_layer / 8) return DType::Q5_K;
      return base;
    case Role::kAttnOut:
      if (s.n_expert == 8) {
        for (const char* k : {"Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S",
                              "IQ3_M", "IQ4_XS"})
          if (m == k) return DType::Q5_K;
        return base;
      }
      if (m == "Q2_K") return DType::Q3_K;
      if (m == "IQ3_XXS") return DType::IQ3_S;
      if (m == "Q3_K_M" || m == "IQ3_M") return DType::Q4_K;
      if (m == "Q3_K_L") return DType::Q5_K;
      return base;
    case Role::kAttnQkv:
      if (m == "Q3_K_M" || m == "Q3_K_L" || m == "IQ3_M") return DType::Q4_K;
      if (m == "Q4_K_M") return DType::Q5_K;
      if (m == "Q5_K_M") return DType::Q6_K;
      return base;
    case Role::kFfnGate:
    case Role::kFfnUp:
      if (m == "IQ3_XS" && layer >= n_layer / 8 && layer < 7 * n_layer / 8) return DType::IQ3_XXS;
      return base;
    default: return base;
  }
}

DType fallback_for(DType t) {
  switch (t) {
    case DType::IQ1_S:
    case DType::IQ1_M:
    case DType::IQ2_XXS:
    case DType::IQ2_XS:
    case DType::IQ2_S:
    case DType::IQ3_XXS:
    case DType::IQ3_S:
    case DType::IQ4_XS: return DType::IQ4_NL;
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::TQ1_0:
    case DType::TQ2_0: return DType::Q4_0;
    case DType::Q4_K: return DType::Q5_0;
    case DType::Q5_K: return DType::Q5_1;
    case DType::Q6_K: return DType::Q8_0;
    default: return DType::F16;
  }
}

}  // namespace

Result<QuantTarget> parse_quant_target(const std::string& raw) {
  std::string n = upper(raw);
  if (n == "Q3_K" || n == "Q4_K" || n == "Q5_K") n += "_M";
  for (const MixInfo& m : kMixes)
    if (n == m.name) return QuantTarget{m.name, m.base, m.file_type, m.needs_imatrix};
  return invalid_argument("type '" + raw + "' is not supported (" + quant_target_names() + ")");
}

std::string quant_target_names() {
  std::string s;
  for (const MixInfo& m : kMixes) s += (s.empty() ? "" : ", ") + std::string(m.name);
  return s;
}

Result<TensorTypeOverride> parse_tensor_type_override(const std::string& spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    return invalid_argument("--tensor-type '" + spec + "': expected PATTERN=TYPE");
  const std::string pattern = spec.substr(0, eq), type = upper(spec.substr(eq + 1));
  for (uint32_t id = 0; id < static_cast<uint32_t>(kDTypeIdEnd); ++id) {
    const DTypeInfo info = dtype_info(id);
    if (info.block_elems == 0 || info.name != type) continue;
    try {
      return TensorTypeOverride{pattern, std::regex(pattern), static_cast<DType>(id)};
    } catch (const std::regex_error& e) {
      return invalid_argument("--tensor-type '" + spec + "': bad pattern: " + e.what());
    }
  }
  return invalid_argument("--tensor-type '" + spec + "': unknown type '" + type + "'");
}

bool tensor_is_quantizable(const std::string& name, int n_dims) {
  if (n_dims < 2 || n_dims > 3) return false;
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "weight") != 0) return false;
  return !contains(name, "_norm.weight") && !contains(name, "ffn_gate_inp.weight") && !contains(name, "position_embd") &&
         !contains(name, "token_types");
}

DType tensor_type_for(const QuantTarget& t, const std::string& name, int64_t row_len, const ModelShape& shape,
                      const std::vector<TensorTypeOverride>& overrides) {
  DType want = t.base;
  const bool quantized_mix = dtype_info(t.base).block_elems > 1;
  bool manual = false;
  for (const auto& o : overrides) {
    if (std::regex_search(name, o.re)) {
      want = o.type;
      manual = true;
      break;
    }
  }
  if (!manual && quantized_mix) want = mix_choice(t, role_of(name), layer_of(name), row_len, shape);
  if (!quantized_mix && !manual) return want;
  if (row_len % dtype_info(want).block_elems == 0) return want;
  const DType fb = fallback_for(want);
  return row_len % dtype_info(fb).block_elems == 0 ? fb : DType::F16;
}

}  // namespace tachyon::model
