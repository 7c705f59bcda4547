// Architectures as data: the layer configs each family declares, load errors of the
// family-specific keys and tensors, GEGLU's ggml rounding, LongRoPE factors chosen by the
// context size, and the Session driver.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "base/fp16.h"
#include "gguf/writer.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "model/quantize.h"
#include "model/session.h"

using namespace tachyon;

namespace {

const std::string kData = TACHYON_SHARED_DATA;
const std::string kGemma = kData + "/models/mini-gemma3-Q8_0.gguf";
const std::string kPhi3 = kData + "/models/mini-phi3-Q8_0.gguf";
const std::string kLlama = kData + "/models/mini-llama-Q8_0.gguf";

std::string tmp_path(const std::string& name) { return ::testing::TempDir() + name; }

// Copies a model, dropping keys/tensors the predicates name and adding extra ones.
std::string rewrite(const std::string& src, const std::string& out, std::function<bool(std::string_view)> drop_key,
                    std::function<bool(std::string_view)> drop_tensor, std::function<void(gguf::Writer&)> extra) {
  auto f = gguf::File::open(src);
  EXPECT_TRUE(f.is_ok());
  gguf::Writer w;
  for (const auto& kv : f.value()->metadata())
    if (!drop_key(kv.key)) w.copy_kv(std::string(kv.key), kv.value);
  extra(w);
  for (const auto& t : f.value()->tensors()) {
    if (drop_tensor(t.name)) continue;
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    EXPECT_TRUE(w.add_tensor(std::string(t.name), t.type, ne, t.data, t.n_bytes).is_ok());
  }
  const std::string path = tmp_path(out);
  EXPECT_TRUE(w.write(path).is_ok());
  return path;
}
const auto kNone = [](std::string_view) { return false; };

std::vector<float> logits_of(model::Model& m, const std::vector<int32_t>& toks, int n_ctx) {
  ThreadPool pool(2);
  model::Session::Options o;
  o.n_ctx = n_ctx;
  auto s = model::Session::create(m, pool, o);
  EXPECT_TRUE(s.is_ok());
  std::vector<float> out;
  EXPECT_TRUE(s.value()->append_all(toks, &out).is_ok());
  return out;
}

}  // namespace

TEST(Arch, Gemma3DeclaresItsLayers) {
  auto m = model::Model::load(kGemma);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto& h = m.value()->hparams();
  EXPECT_FLOAT_EQ(h.arch.embd_scale, 16.f);  // sqrt(256)
  EXPECT_FLOAT_EQ(h.arch.final_softcap, 30.f);
  ASSERT_EQ(h.arch.layers.size(), 6u);
  for (int l = 0; l < 6; ++l) {
    const auto& L = h.arch.layers[l];
    const bool global = l % 3 == 2;  // pattern 3: two local layers, then a global one
    EXPECT_EQ(L.window, global ? 0 : 16) << l;
    EXPECT_FLOAT_EQ(L.rope.freq_base, global ? 1e6f : 1e4f) << l;
    EXPECT_EQ(L.rope.mode, kernels::RopeMode::kNeox);
    EXPECT_TRUE(L.qk_norm && L.attn_post_norm && L.ffn_post_norm);
    EXPECT_EQ(L.act, model::FfnAct::kGeluTanh);
    EXPECT_FLOAT_EQ(L.q_scale, 1.f / std::sqrt(128.f));
    EXPECT_NE(m.value()->weights().layers[l].attn_post_norm, nullptr);
    EXPECT_NE(m.value()->weights().layers[l].ffn_post_norm, nullptr);
  }
}

TEST(Arch, Phi3DeclaresFusedProjectionsAndPartialRotary) {
  auto m = model::Model::load(kPhi3);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto& h = m.value()->hparams();
  const auto& w = m.value()->weights();
  for (int l = 0; l < h.n_layer; ++l) {
    EXPECT_TRUE(h.arch.layers[l].qkv_fused && h.arch.layers[l].gate_up_fused);
    EXPECT_EQ(h.arch.layers[l].rope.n_rot, 24);
    EXPECT_EQ(w.layers[l].wqkv.n_rows, 256 + 2 * 64);
    EXPECT_EQ(w.layers[l].wq.data, nullptr);
    EXPECT_EQ(w.layers[l].up.n_rows, 2 * 512);
    EXPECT_EQ(w.layers[l].gate.data, nullptr);
  }
}

TEST(Arch, FamilyLoadErrorsAreClear) {
  {  // the supported families are listed
    auto p = rewrite(
        kLlama, "mamba.gguf", [](std::string_view k) { return k == "general.architecture"; }, kNone,
        [](gguf::Writer& w) { w.set_str("general.architecture", "mamba"); });
    auto m = model::Model::load(p);
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("(llama, qwen2, qwen3, qwen3moe, gemma2, gemma3, phi3)"), std::string::npos) << m.status().message();
  }
  {  // per-layer window flags of the wrong length
    auto p = rewrite(
        kGemma, "swa.gguf", [](std::string_view k) { return k == "gemma3.attention.sliding_window_pattern"; }, kNone,
        [](gguf::Writer& w) { w.set_arr_i32("gemma3.attention.sliding_window_pattern", {1, 1, 0}); });
    auto m = model::Model::load(p);
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("expected 6 per-layer flags"), std::string::npos) << m.status().message();
  }
  {  // per-layer flags equal to the period give the same layers
    auto p = rewrite(
        kGemma, "swa_arr.gguf", [](std::string_view k) { return k == "gemma3.attention.sliding_window_pattern"; }, kNone,
        [](gguf::Writer& w) { w.set_arr_i32("gemma3.attention.sliding_window_pattern", {1, 1, 0, 1, 1, 0}); });
    auto m = model::Model::load(p);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    for (int l = 0; l < 6; ++l) EXPECT_EQ(m.value()->hparams().arch.layers[l].window, l % 3 == 2 ? 0 : 16);
  }
  {  // a post-norm missing
    auto p = rewrite(kGemma, "nopost.gguf", kNone, [](std::string_view n) { return n == "blk.3.post_ffw_norm.weight"; },
                     [](gguf::Writer&) {});
    auto m = model::Model::load(p);
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("tensor 'blk.3.post_ffw_norm.weight': missing"), std::string::npos);
  }
  {  // rotary dims larger than the head
    auto p = rewrite(
        kPhi3, "rot.gguf", [](std::string_view k) { return k == "phi3.rope.dimension_count"; }, kNone,
        [](gguf::Writer& w) { w.set_u32("phi3.rope.dimension_count", 48); });
    auto m = model::Model::load(p);
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("rope.dimension_count"), std::string::npos) << m.status().message();
  }
  {  // a fused q/k/v of the wrong height
    auto src = gguf::File::open(kPhi3);
    const auto* t = src.value()->tensor("blk.0.attn_qkv.weight");
    auto p = rewrite(kPhi3, "qkv.gguf", kNone, [](std::string_view n) { return n == "blk.0.attn_qkv.weight"; },
                     [&](gguf::Writer& w) {
                       ASSERT_TRUE(w.add_tensor("blk.0.attn_qkv.weight", t->type, {t->ne[0], t->ne[1] - 32}, t->data,
                                                row_bytes(t->type, t->ne[0]) * (t->ne[1] - 32))
                                       .is_ok());
                     });
    auto m = model::Model::load(p);
    ASSERT_FALSE(m.is_ok());
    EXPECT_NE(m.status().message().find("'blk.0.attn_qkv.weight': shape [256, 352], expected [256, 384]"), std::string::npos)
        << m.status().message();
  }
}

// LongRoPE: factors of 1 change nothing; the long factors apply only above the original
// context, the short ones below it.
TEST(Arch, LongRopeFactorsFollowTheContextSize) {
  const std::vector<int32_t> toks = {1, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310};
  auto base = model::Model::load(kPhi3);
  ASSERT_TRUE(base.is_ok());
  const auto ref = logits_of(*base.value(), toks, 64);
  auto with = [&](const std::string& name, float s, float l) {
    return rewrite(
        kPhi3, name, [](std::string_view k) { return k == "phi3.rope.scaling.original_context_length"; }, kNone,
        [&](gguf::Writer& w) {
          w.set_u32("phi3.rope.scaling.original_context_length", 1024);
          std::vector<float> fs(12, s), fl(12, l);
          ASSERT_TRUE(w.add_tensor("rope_factors_short.weight", DType::F32, {12}, fs.data(), 48).is_ok());
          ASSERT_TRUE(w.add_tensor("rope_factors_long.weight", DType::F32, {12}, fl.data(), 48).is_ok());
        });
  };
  auto ones = model::Model::load(with("ones.gguf", 1.f, 1.f));
  ASSERT_TRUE(ones.is_ok()) << ones.status().message();
  EXPECT_EQ(logits_of(*ones.value(), toks, 64), ref);
  auto longf = model::Model::load(with("long.gguf", 1.f, 4.f));
  ASSERT_TRUE(longf.is_ok());
  EXPECT_EQ(logits_of(*longf.value(), toks, 64), ref);      // short factors (all 1) within 1024
  EXPECT_NE(logits_of(*longf.value(), toks, 2048), ref);    // long factors beyond it
  auto one_only = rewrite(kPhi3, "oneonly.gguf", kNone, kNone, [](gguf::Writer& w) {
    std::vector<float> fs(12, 1.f);
    ASSERT_TRUE(w.add_tensor("rope_factors_short.weight", DType::F32, {12}, fs.data(), 48).is_ok());
  });
  auto bad = model::Model::load(one_only);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("one without the other"), std::string::npos) << bad.status().message();
}

// GEGLU rounds through ggml's f16 table: gelu of the f16-rounded input, rounded to f16.
TEST(Arch, GegluFollowsGgmlsTable) {
  std::vector<float> x, up, out;
  for (float v = -12.f; v <= 12.f; v += 0.0137f) x.push_back(v);
  for (float v : {-10.f, 10.f, -9.999f, 9.999f, 0.f, -0.f, 1e-8f, -1e-8f, 65504.f, -65504.f}) x.push_back(v);
  up.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) up[i] = 0.5f + 0.001f * static_cast<float>(i % 97);
  out.resize(x.size());
  kernels::geglu(x.data(), up.data(), static_cast<int64_t>(x.size()), out.data());
  for (size_t i = 0; i < x.size(); ++i) {
    float want;
    if (x[i] <= -10.f) want = 0.f;
    else if (x[i] >= 10.f) want = x[i] * up[i];
    else want = f16_to_f32(f32_to_f16(kernels::gelu_tanh_f32(f16_to_f32(f32_to_f16(x[i]))))) * up[i];
    ASSERT_EQ(out[i], want) << "x=" << x[i];
  }
  // and it is GELU: close to the exact erf form away from the f16 rounding
  EXPECT_NEAR(kernels::gelu_tanh_f32(1.f), 0.5 * (1 + std::erf(1 / std::sqrt(2.0))), 1e-3);
}

TEST(Session, AppendsRewindsAndRefusesPastTheContext) {
  auto m = model::Model::load(kLlama);
  ASSERT_TRUE(m.is_ok());
  ThreadPool pool(2);
  model::Session::Options o;
  o.n_ctx = 20;
  o.ubatch = 3;  // several steps per append
  auto s = model::Session::create(*m.value(), pool, o);
  ASSERT_TRUE(s.is_ok());
  model::Session& sess = *s.value();
  const std::vector<int32_t> toks = {1, 10, 11, 12, 13, 14, 15, 16};
  std::vector<float> all, last, again;
  ASSERT_TRUE(sess.append_all(toks, &all).is_ok());
  const int nv = m.value()->hparams().n_vocab;
  ASSERT_EQ(all.size(), toks.size() * nv);
  EXPECT_EQ(sess.n_tokens(), 8);
  // the same prefix again after a rewind: the last row is bit-identical
  sess.rewind(0);
  ASSERT_TRUE(sess.append_last(toks, &last).is_ok());
  ASSERT_EQ(last.size(), static_cast<size_t>(nv));
  EXPECT_TRUE(std::equal(last.begin(), last.end(), all.end() - nv));
  // rewind to 5 and redo the tail token by token
  sess.rewind(5);
  for (int i = 5; i < 8; ++i) ASSERT_TRUE(sess.append(&toks[i], 1, 0, 1, &again).is_ok());
  EXPECT_TRUE(std::equal(again.begin(), again.end(), all.end() - nv));
  // past the context: refused, nothing appended
  std::vector<int32_t> many(13, 5);
  Status st = sess.append_all(many, &again);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("exceed the context of 20"), std::string::npos) << st.message();
  EXPECT_EQ(sess.n_tokens(), 8);
  // a bad id fails cleanly
  const int32_t bad = nv + 3;
  EXPECT_FALSE(sess.append(&bad, 1, 0, 1, &again).is_ok());
}

// gemma2 at a test shape (window 16 on even layers, attention and final soft-caps at
// llama.cpp's defaults): the layers it declares, and prefill in one step giving the bits
// of token-by-token decode (both on the llama.cpp decode numerics).
TEST(Arch, Gemma2TestShapeRunsItsLayers) {
  const std::string path = tmp_path("gemma2-tiny.gguf");
  auto t = model::parse_quant_target("F16");
  ASSERT_TRUE(t.is_ok());
  ASSERT_TRUE(model::generate_model("gemma2-test-tiny", "", t.value(), path, 3, 2).is_ok());
  auto m = model::Model::load(path);
  ASSERT_TRUE(m.is_ok()) << m.status().message();
  const auto& h = m.value()->hparams();
  EXPECT_FLOAT_EQ(h.arch.final_softcap, 30.f);
  for (int l = 0; l < h.n_layer; ++l) {
    EXPECT_EQ(h.arch.layers[l].window, l % 2 == 0 ? 16 : 0) << l;
    EXPECT_FLOAT_EQ(h.arch.layers[l].attn_softcap, 50.f);
    EXPECT_FALSE(h.arch.layers[l].qk_norm);
    EXPECT_TRUE(h.arch.layers[l].attn_post_norm && h.arch.layers[l].ffn_post_norm);
  }
  std::vector<int32_t> toks;
  for (int i = 0; i < 40; ++i) toks.push_back(1 + (i * 37) % 4000);
  const auto all = logits_of(*m.value(), toks, 64);
  ThreadPool pool(2);
  model::Session::Options o;
  o.n_ctx = 64;
  auto s = model::Session::create(*m.value(), pool, o);
  ASSERT_TRUE(s.is_ok());
  std::vector<float> one;
  const int nv = h.n_vocab;
  for (size_t i = 0; i < toks.size(); ++i) {
    ASSERT_TRUE(s.value()->append(&toks[i], 1, 0, 1, &one).is_ok());
    ASSERT_TRUE(std::equal(one.begin(), one.end(), all.begin() + i * nv)) << "position " << i;
    for (float z : one) ASSERT_LE(std::fabs(z), 30.f);  // the final soft-cap bounds every logit
  }
}
