// The quantization mixes choose, tensor by tensor, the types llama.cpp's quantizer chose
// for the same mix: checked on the files in ../shared/data/models that llama.cpp made
// (mixes made without an importance matrix; IQ1/IQ2/IQ3_XXS files used one).
#include <gtest/gtest.h>

#include <string>

#include "gguf/gguf.h"
#include "model/quant_policy.h"

using namespace tachyon;
using namespace tachyon::model;

namespace {

const std::string kModels = std::string(TACHYON_SHARED_DATA) + "/models/";

// Checks every quantizable tensor of `file` against the policy for `mix`; returns the count.
int check_file(const std::string& file, const std::string& mix) {
  auto f = gguf::File::open(kModels + file);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  if (!f.is_ok()) return 0;
  const gguf::File& in = *f.value();
  auto target = parse_quant_target(mix);
  EXPECT_TRUE(target.is_ok());
  ModelShape shape;
  const std::string arch(*in.get_string("general.architecture"));
  shape.n_layer = static_cast<int>(*in.get_uint(arch + ".block_count"));
  shape.n_gqa = static_cast<int>(*in.get_uint(arch + ".attention.head_count") / *in.get_uint(arch + ".attention.head_count_kv"));
  shape.tied_output = in.tensor("output.weight") == nullptr;
  EXPECT_EQ(*in.get_uint("general.file_type"), target->file_type) << file;
  int n = 0;
  for (const auto& t : in.tensors()) {
    const std::string name(t.name);
    if (!tensor_is_quantizable(name, t.n_dims)) continue;
    const DType want = tensor_type_for(target.value(), name, t.ne[0], shape);
    EXPECT_EQ(dtype_info(want).name, dtype_info(t.type).name) << file << " " << name;
    ++n;
  }
  return n;
}

}  // namespace

TEST(QuantPolicy, MixesChooseLlamaCppsTypes) {
  for (const char* mix : {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "IQ4_NL",
                          "IQ4_XS", "IQ3_S", "TQ1_0", "TQ2_0", "Q1_0"}) {
    SCOPED_TRACE(mix);
    EXPECT_GT(check_file(std::string("mini-llama-") + mix + ".gguf", mix), 20);
  }
  // widths that are not multiples of 256 fall back per tensor (Q5_0 / Q8_0 here)
  EXPECT_GT(check_file("mini-qwen2-e320-Q4_K_M.gguf", "Q4_K_M"), 10);
  EXPECT_GT(check_file("mini-qwen3-Q4_0.gguf", "Q4_0"), 10);
  EXPECT_GT(check_file("mini-gemma3-Q4_K_M.gguf", "Q4_K_M"), 10);
}

TEST(QuantPolicy, NamesAliasesAndOverrides) {
  EXPECT_EQ(parse_quant_target("q4_k")->name, "Q4_K_M");
  EXPECT_EQ(parse_quant_target("Q3_K")->name, "Q3_K_M");
  EXPECT_EQ(parse_quant_target("iq2_m")->base, DType::IQ2_S);
  EXPECT_TRUE(parse_quant_target("IQ2_XXS")->needs_imatrix);
  auto bad = parse_quant_target("Q7_K");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("Q4_K_M"), std::string::npos) << "the error lists the names";

  auto o = parse_tensor_type_override("attn_v=q8_0");
  ASSERT_TRUE(o.is_ok());
  ModelShape s;
  s.n_layer = 8;
  const QuantTarget t = parse_quant_target("Q4_K_M").value();
  EXPECT_EQ(tensor_type_for(t, "blk.3.attn_v.weight", 256, s, {o.value()}), DType::Q8_0);
  EXPECT_EQ(tensor_type_for(t, "blk.3.attn_q.weight", 256, s, {o.value()}), DType::Q4_K);
  // an override to a 256-block type on a 320-wide row falls back like the mix does
  auto o2 = parse_tensor_type_override("ffn_up=Q6_K");
  EXPECT_EQ(tensor_type_for(t, "blk.0.ffn_up.weight", 320, s, {o2.value()}), DType::Q8_0);
  EXPECT_FALSE(parse_tensor_type_override("attn_v").is_ok());
  EXPECT_FALSE(parse_tensor_type_override("attn_v=Q9_9").is_ok());
  EXPECT_FALSE(parse_tensor_type_override("(=Q8_0").is_ok());
  EXPECT_FALSE(tensor_is_quantizable("blk.0.attn_norm.weight", 1));
  EXPECT_FALSE(tensor_is_quantizable("blk.0.ffn_gate_inp.weight", 2));
  EXPECT_TRUE(tensor_is_quantizable("blk.0.ffn_down_exps.weight", 3));
}
