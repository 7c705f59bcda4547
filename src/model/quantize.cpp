#include "model/quantize.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <regex>
#include <thread>

#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "kernels/traits.h"

namespace tachyon::model {

namespace {

// Quantizes rows [n_rows][row_len] f32 into `type`, in parallel. With `imatrix` (the
// importance [n_rows / rows_per_mat][row_len]) the weighted quantizer runs, each row with
// the importance of its matrix (expert).
std::vector<uint8_t> convert_rows(const float* x, int64_t row_len, int64_t n_rows, DType type, int n_threads,
                                  const float* imatrix = nullptr, int64_t rows_per_mat = 1) {
  const auto* traits = kernels::type_traits_ref(type);
  const auto quantize = traits->weight_quantizer();
  const auto weighted = imatrix ? traits->quantize_weighted : nullptr;
  const size_t rb = row_bytes(type, row_len);
  std::vector<uint8_t> out(rb * n_rows);
  std::vector<std::thread> ts;
  const int nth = std::max(1, n_threads);
  for (int i = 0; i < nth; ++i) {
    ts.emplace_back([&, i] {
      for (int64_t r = i; r < n_rows; r += nth) {
        if (weighted)
          weighted(x + r * row_len, out.data() + r * rb, row_len, imatrix + (r / rows_per_mat) * row_len, row_len);
        else
          quantize(x + r * row_len, out.data() + r * rb, row_len);
      }
    });
  }
  for (auto& t : ts) t.join();
  return out;
}

// The layer of "blk.N.*", -1 for other names.
int layer_index(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int v = 0;
  size_t i = 4;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) v = v * 10 + (name[i] - '0');
  return i > 4 && i < name.size() && name[i] == '.' ? v : -1;
}

// llama.cpp's mix rules that depend on whether an importance matrix is given (its
// has_imatrix): with one, the ffn_down of the first n_layer / 8 layers get Q4_1 / Q5_1 under
// the Q4_0 / Q5_0 mixes (instead of the base) and keep the base under IQ4_NL / IQ4_XS
// (instead of Q5_K); under IQ3_XXS every ffn_down keeps the base (instead of Q4_K / Q3_K)
// and attn_v takes the base where it would take IQ3_S. `chosen` is the type
// tensor_type_for picked without the matrix.
DType imatrix_mix_type(const QuantTarget& target, const std::string& name, int64_t row_len, const ModelShape& shape,
                       const std::vector<TensorTypeOverride>& overrides, DType chosen) {
  const bool ffn_down = name.find("ffn_down") != std::string::npos;
  const bool attn_v = name.find("attn_v.weight") != std::string::npos;
  if (!ffn_down && !attn_v) return chosen;
  for (const auto& o : overrides)
    if (std::regex_search(name, o.re)) return chosen;
  if (target.name == "IQ3_XXS") {
    if (attn_v && shape.n_gqa >= 4) return chosen;  // Q4_K either way
    QuantTarget t = target;
    t.name = "base";
    return tensor_type_for(t, name, row_len, shape);
  }
  if (!ffn_down) return chosen;
  const int layer = layer_index(name);
  if (layer < 0 || layer >= std::max(1, shape.n_layer) / 8) return chosen;
  QuantTarget t = target;
  if (target.name == "Q4_0" || target.name == "Q5_0") {
    t.base = target.name == "Q4_0" ? DType::Q4_1 : DType::Q5_1;
    t.name = dtype_info(t.base).name;
  } else if (target.name == "IQ4_NL" || target.name == "IQ4_XS") {
    t.name = "base";  // no mix rule for ffn_down: the base type, then the row-length fallback
  } else {
    return chosen;
  }
  return tensor_type_for(t, name, row_len, shape);
}

// The tensors llama-quantize refuses to quantize without an importance matrix ("a very
// low-bit quantization"): IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M (but token_embd and
// output), and Q2_K under the Q2_K_S mix (but token_embd).
bool needs_imatrix(const QuantTarget& target, DType t, const std::string& name) {
  const bool embd = name == "token_embd.weight", out = name == "output.weight";
  switch (t) {
    case DType::IQ2_XXS:
    case DType::IQ2_XS:
    case DType::IQ2_S:
    case DType::IQ1_S: return true;
    case DType::IQ1_M: return !embd && !out;
    case DType::Q2_K: return target.name == "Q2_K_S" && !embd;
    default: return false;
  }
}

// Types whose llama.cpp quantizer ignores an importance matrix.
bool ignores_imatrix(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
    case DType::Q1_0:
    case DType::MXFP4:
    case DType::TQ1_0:
    case DType::TQ2_0: return true;
    default: return false;
  }
}

}  // namespace

Status quantize_file(const std::string& in_path, const std::string& out_path, const QuantTarget& target,
                     const QuantizeOptions& opt) {
  auto f = gguf::File::open(in_path);
  if (!f) return f.status();
  const auto& in = *f.value();
  ModelShape shape;
  if (auto arch = in.get_string("general.architecture")) {
    const std::string a(*arch);
    if (auto v = in.get_uint(a + ".block_count")) shape.n_layer = static_cast<int>(*v);
    if (auto v = in.get_uint(a + ".expert_count")) shape.n_expert = static_cast<int>(*v);
    const auto nh = in.get_uint(a + ".attention.head_count"), nkv = in.get_uint(a + ".attention.head_count_kv");
    if (nh && nkv && *nkv > 0) shape.n_gqa = static_cast<int>(*nh / *nkv);
  }
  shape.tied_output = in.tensor("output.weight") == nullptr;
  gguf::Writer w;
  for (const auto& kv : in.metadata()) {
    if (kv.key == "general.file_type" || kv.key == "general.quantization_version") continue;
    w.copy_kv(std::string(kv.key), kv.value);
  }
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", target.file_type);
  if (opt.imatrix) {
    // the keys llama-quantize writes (strings cut at 127 bytes as it does)
    w.set_str("quantize.imatrix.file", opt.imatrix->path.substr(0, 127));
    if (!opt.imatrix->datasets.empty()) w.set_str("quantize.imatrix.dataset", opt.imatrix->datasets[0].substr(0, 127));
    w.set_i32("quantize.imatrix.entries_count", static_cast<int32_t>(opt.imatrix->entries.size()));
    if (opt.imatrix->chunk_count > 0) w.set_i32("quantize.imatrix.chunks_count", static_cast<int32_t>(opt.imatrix->chunk_count));
  }
  for (const auto& t : in.tensors()) {
    std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
    const std::string name(t.name);
    const auto* src = kernels::type_traits_ref(t.type);
    if (!tensor_is_quantizable(name, t.n_dims) || !src || !src->to_float) {
      TACHYON_RETURN_IF_ERROR(w.add_tensor(name, t.type, ne, t.data, t.n_bytes));
      continue;
    }
    DType dst = tensor_type_for(target, name, ne[0], shape, opt.overrides);
    if (opt.imatrix) dst = imatrix_mix_type(target, name, ne[0], shape, opt.overrides, dst);
    if (target.name == "MXFP4_MOE" && t.n_dims == 3 && ne[0] % 32 == 0) dst = DType::MXFP4;
    if (dst == t.type) {
      if (opt.log) opt.log(name + ": " + std::string(dtype_info(t.type).name) + " -> " + std::string(dtype_info(dst).name));
      TACHYON_RETURN_IF_ERROR(w.add_tensor(name, t.type, ne, t.data, t.n_bytes));
      continue;
    }
    const auto* to = kernels::type_traits_ref(dst);
    if (!to || (!to->weight_quantizer() && !to->quantize_weighted))
      return unsupported("tensor '" + name + "': no quantizer for type " + std::string(dtype_info(dst).name) +
                         " in this build" +
                         (target.needs_imatrix && !opt.imatrix ? " (this mix needs an importance matrix)" : ""));
    const int64_t n_mat = t.n_dims == 3 ? ne[2] : 1;
    const float* importance = nullptr;
    if (opt.imatrix) {
      auto imp = opt.imatrix->for_tensor(name, ne[0], n_mat);
      if (!imp) return imp.status();
      importance = *imp;
      if (importance && !to->quantize_weighted && !ignores_imatrix(dst))
        return unsupported("tensor '" + name + "': no importance-weighted quantizer for type " +
                           std::string(dtype_info(dst).name) + " in this build");
      if (!to->quantize_weighted) importance = nullptr;
    }
    if ((!to->weight_quantizer() || needs_imatrix(target, dst, name)) && !importance)
      return invalid_argument("tensor '" + name + "': type " + std::string(dtype_info(dst).name) +
                              " needs an importance matrix" +
                              (opt.imatrix ? std::string(" and the matrix has no entry for it") : " (--imatrix FILE)"));
    if (opt.log)
      opt.log(name + ": " + std::string(dtype_info(t.type).name) + " -> " + std::string(dtype_info(dst).name) +
              (importance ? " (imatrix)" : ""));
    const int64_t n_rows = t.n_dims == 3 ? ne[1] * ne[2] : ne[1];
    std::vector<float> x(static_cast<size_t>(ne[0]) * n_rows);
    const size_t srb = row_bytes(t.type, ne[0]);
    for (int64_t r = 0; r < n_rows; ++r) src->to_float(t.data + r * srb, x.data() + r * ne[0], ne[0]);
    const auto q = convert_rows(x.data(), ne[0], n_rows, dst, opt.n_threads, importance, ne[1]);
    TACHYON_RETURN_IF_ERROR(w.add_tensor(name, dst, ne, q.data(), q.size()));
  }
  return w.write(out_path);
}

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      {"tinyllama-1.1b", "llama", 32000, 2048, 22, 32, 4, 64, 5632, 2048, 10000.f, 1e-5f, false, 0},
      {"llama-3.2-1b", "llama", 128256, 2048, 16, 32, 8, 64, 8192, 131072, 500000.f, 1e-5f, true, 32.f},
      {"qwen2.5-0.5b", "qwen2", 151936, 896, 24, 14, 2, 64, 4864, 32768, 1000000.f, 1e-6f, true, 0},
      {"qwen3-0.6b", "qwen3", 151936, 1024, 28, 16, 8, 128, 3072, 40960, 1000000.f, 1e-6f, true, 0},
      {"smollm2-135m", "llama", 49152, 576, 30, 9, 3, 64, 1536, 8192, 100000.f, 1e-5f, true, 0},
      {"gemma2-2b", "gemma2", 256000, 2304, 26, 8, 4, 256, 9216, 8192, 10000.f, 1e-6f, true, 0, 0, 4096, 2, 10000.f},
      {"gemma2-test-tiny", "gemma2", 4096, 256, 4, 4, 2, 64, 512, 4096, 10000.f, 1e-6f, true, 0, 0, 16, 2, 10000.f},
      {"gemma3-270m", "gemma3", 262144, 640, 18, 4, 1, 256, 2048, 32768, 1000000.f, 1e-6f, true, 0, 0, 512, 6, 10000.f},
      {"gemma3-1b", "gemma3", 262144, 1152, 26, 4, 1, 256, 6912, 32768, 1000000.f, 1e-6f, true, 0, 0, 512, 6, 10000.f},
      {"phi-4-mini", "phi3", 200064, 3072, 32, 24, 8, 128, 8192, 131072, 10000.f, 1e-5f, true, 0, 96, 0, 0, 0, 4096},
      {"phi-3.5-mini", "phi3", 32064, 3072, 32, 32, 32, 96, 8192, 131072, 10000.f, 1e-5f, false, 0, 0, 0, 0, 0, 4096},
  };
  return p;
}

namespace {

// Fast deterministic normal samples (xorshift64* + Box-Muller).
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 2685821657736338717ull;
  }
  float uniform() { return ((next() >> 40) + 0.5f) * (1.0f / 16777216.0f); }
  void normals(float* out, int64_t n, float scale) {
    for (int64_t i = 0; i + 1 < n; i += 2) {
      const float u1 = uniform(), u2 = uniform();
      const float r = std::sqrt(-2.f * std::log(u1)) * scale;
      out[i] = r * std::cos(6.2831853f * u2);
      out[i + 1] = r * std::sin(6.2831853f * u2);
    }
    if (n % 2) out[n - 1] = scale * (uniform() - 0.5f) * 3.4f;
  }
};

}  // namespace

Status generate_model(const std::string& preset_name, const std::string& vocab_path, const QuantTarget& target,
                      const std::string& out_path, uint64_t seed, int n_threads) {
  const Preset* pp = nullptr;
  for (const auto& p : presets())
    if (p.name == preset_name) pp = &p;
  if (!pp) {
    std::string names;
    for (const auto& p : presets()) names += (names.empty() ? "" : ", ") + p.name;
    return invalid_argument("preset '" + preset_name + "' is unknown (" + names + ")");
  }
  Preset P = *pp;
  gguf::Writer w;
  const std::string a = P.arch + ".";
  w.set_str("general.architecture", P.arch);
  w.set_str("general.name", P.name + " (random weights)");
  w.set_str("general.description", "tachyon gen-model: RANDOM WEIGHTS at the " + P.name + " shape, for benchmarking only");
  int n_vocab = P.n_vocab;
  if (!vocab_path.empty()) {
    auto v = gguf::File::open(vocab_path);
    if (!v) return v.status();
    const auto* toks = v.value()->get_array("tokenizer.ggml.tokens");
    if (!toks || toks->arr_count == 0) return corrupt(vocab_path + ": key 'tokenizer.ggml.tokens': missing");
    n_vocab = static_cast<int>(toks->arr_count);
    for (const auto& kv : v.value()->metadata())
      if (kv.key.rfind("tokenizer.", 0) == 0) w.copy_kv(std::string(kv.key), kv.value);
  } else {
    // No vocabulary given: a placeholder SentencePiece-style one of the preset's size, so
    // that the file keeps the real output width, loads in any GGUF engine and chats
    // without any other file: <unk>, <s>, </s>, the 256 byte tokens, ChatML's <|im_start|>
    // and <|im_end|> (control; <|im_end|> ends a turn), the printable ASCII characters,
    // then made-up words of two-letter syllables ("▁bako", "rimu"), half with a leading
    // space, each an SPM merge of two shorter pieces.
    static const char* kSyl[] = {"ba", "be", "bi", "bo", "bu", "da", "de", "di", "do", "du", "ka", "ke", "ki",
                                 "ko", "ku", "la", "le", "li", "lo", "lu", "ma", "me", "mi", "mo", "mu", "na",
                                 "ne", "ni", "no", "nu", "ra", "re", "ri", "ro", "ru", "sa", "se", "si", "so",
                                 "su", "ta", "te", "ti", "to", "tu", "va", "ve", "vi", "vo", "vu"};
    constexpr int kNSyl = sizeof(kSyl) / sizeof(kSyl[0]);
    std::vector<std::string> toks(n_vocab);
    std::vector<float> scores(n_vocab, 0.f);
    std::vector<int32_t> types(n_vocab, 1);  // normal
    const int first_char = 3 + 256 + 2, first_word = first_char + 95;
    for (int i = 0; i < n_vocab; ++i) {
      char b[32];
      scores[i] = -static_cast<float>(i);
      if (i < 3) {
        toks[i] = i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>";
        types[i] = i == 0 ? 2 : 3;  // unknown, control
      } else if (i < 3 + 256) {
        std::snprintf(b, sizeof b, "<0x%02X>", i - 3);
        toks[i] = b;
        types[i] = 6;  // byte
      } else if (i < first_char) {
        toks[i] = i == 3 + 256 ? "<|im_start|>" : "<|im_end|>";
        types[i] = 3;
      } else if (i < first_word) {
        const int c = 0x20 + (i - first_char);  // ' ' .. '~'
        toks[i] = c == ' ' ? std::string("\xe2\x96\x81") : std::string(1, static_cast<char>(c));
      } else {
        const int k = i - first_word;
        std::string w = k % 2 ? "\xe2\x96\x81" : "";
        std::string syl;
        for (int n = k / 2;; n = n / kNSyl - 1) {  // bijective base kNSyl: every id a distinct word
          syl.insert(0, kSyl[n % kNSyl]);
          if (n < kNSyl) break;
        }
        toks[i] = w + syl;
      }
    }
    w.set_str("tokenizer.ggml.model", "llama");
    w.set_arr_str("tokenizer.ggml.tokens", toks);
    w.set_arr_f32("tokenizer.ggml.scores", scores);
    w.set_arr_i32("tokenizer.ggml.token_type", types);
    w.set_u32("tokenizer.ggml.bos_token_id", 1);
    w.set_u32("tokenizer.ggml.eos_token_id", 2);
    w.set_u32("tokenizer.ggml.unknown_token_id", 0);
    w.set_bool("tokenizer.ggml.add_bos_token", true);
  }
  w.set_u32(a + "context_length", P.n_ctx);
  w.set_u32(a + "embedding_length", P.n_embd);
  w.set_u32(a + "block_count", P.n_layer);
  w.set_u32(a + "feed_forward_length", P.n_ff);
  w.set_u32(a + "attention.head_count", P.n_head);
  w.set_u32(a + "attention.head_count_kv", P.n_head_kv);
  w.set_u32(a + "attention.key_length", P.head_dim);
  w.set_u32(a + "attention.value_length", P.head_dim);
  w.set_u32(a + "rope.dimension_count", P.n_rot > 0 ? P.n_rot : P.head_dim);
  w.set_f32(a + "rope.freq_base", P.rope_base);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", P.rms_eps);
  w.set_u32(a + "vocab_size", n_vocab);
  if (P.window > 0) {
    w.set_u32(a + "attention.sliding_window", P.window);
    w.set_u32(a + "attention.sliding_window_pattern", P.swa_pattern);
    w.set_f32(a + "rope.freq_base_swa", P.rope_base_swa);
  }
  if (P.n_ctx_orig > 0) {
    w.set_u32(a + "rope.scaling.original_context_length", P.n_ctx_orig);
    w.set_f32(a + "rope.scaling.attn_factor",
              static_cast<float>(std::sqrt(1.0 + std::log(double(P.n_ctx) / P.n_ctx_orig) / std::log(double(P.n_ctx_orig)))));
  }
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", target.file_type);

  ModelShape shape;
  shape.n_layer = P.n_layer;
  shape.n_gqa = P.n_head / P.n_head_kv;
  shape.tied_output = P.tied_output;
  Rng rng(seed);
  std::vector<float> buf;
  auto matrix = [&](const std::string& name, int64_t cols, int64_t rows, float scale) -> Status {
    buf.resize(static_cast<size_t>(cols) * rows);
    rng.normals(buf.data(), static_cast<int64_t>(buf.size()), scale);
    const DType t = tensor_type_for(target, name, cols, shape);
    const auto q = convert_rows(buf.data(), cols, rows, t, n_threads);
    return w.add_tensor(name, t, {cols, rows}, q.data(), q.size());
  };
  auto vector = [&](const std::string& name, int64_t n, float value, float jitter) -> Status {
    buf.resize(n);
    rng.normals(buf.data(), n, jitter);
    for (auto& x : buf) x += value;
    return w.add_tensor(name, DType::F32, {n}, buf.data(), n * sizeof(float));
  };
  const int64_t E = P.n_embd, Q = static_cast<int64_t>(P.n_head) * P.head_dim, KV = static_cast<int64_t>(P.n_head_kv) * P.head_dim;
  // Small embeddings: with tied output a large one makes every token predict itself.
  TACHYON_RETURN_IF_ERROR(matrix("token_embd.weight", E, n_vocab, P.tied_output ? 0.1f : 0.5f));
  TACHYON_RETURN_IF_ERROR(vector("output_norm.weight", E, 1.0f, 0.02f));
  if (!P.tied_output) TACHYON_RETURN_IF_ERROR(matrix("output.weight", E, n_vocab, 3.0f / std::sqrt(float(E))));
  if (P.llama3_rope_factor > 0) {
    // Llama-3 rope scaling as a frequency-factor tensor (low 1, high 4, original 8192).
    std::vector<float> ff(P.head_dim / 2);
    for (int i = 0; i < P.head_dim / 2; ++i) {
      const double freq = std::pow(P.rope_base, -2.0 * i / P.head_dim);
      const double wavelen = 2 * M_PI / freq;
      const double lo = 8192.0 / 1.0, hi = 8192.0 / 4.0;
      if (wavelen < hi) ff[i] = 1.f;
      else if (wavelen > lo) ff[i] = P.llama3_rope_factor;
      else {
        const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
        ff[i] = static_cast<float>(1.0 / ((1 - smooth) / P.llama3_rope_factor + smooth));
      }
    }
    TACHYON_RETURN_IF_ERROR(w.add_tensor("rope_freqs.weight", DType::F32, {P.head_dim / 2}, ff.data(), ff.size() * 4));
  }
  const bool gemma = P.arch == "gemma3" || P.arch == "gemma2", phi3 = P.arch == "phi3";
  if (P.n_ctx_orig > 0) {
    // LongRoPE-like factors: 1 for the fast dims rising to the context ratio for the slow ones
    const int half = (P.n_rot > 0 ? P.n_rot : P.head_dim) / 2;
    std::vector<float> fs(half), fl(half);
    for (int i = 0; i < half; ++i) {
      fs[i] = 1.0f + 0.05f * i / half;
      fl[i] = 1.0f + (static_cast<float>(P.n_ctx) / P.n_ctx_orig - 1.0f) * i / half;
    }
    TACHYON_RETURN_IF_ERROR(w.add_tensor("rope_factors_short.weight", DType::F32, {half}, fs.data(), fs.size() * 4));
    TACHYON_RETURN_IF_ERROR(w.add_tensor("rope_factors_long.weight", DType::F32, {half}, fl.data(), fl.size() * 4));
  }
  for (int l = 0; l < P.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    TACHYON_RETURN_IF_ERROR(vector(b + "attn_norm.weight", E, 1.0f, 0.02f));
    TACHYON_RETURN_IF_ERROR(vector(b + "ffn_norm.weight", E, 1.0f, 0.02f));
    if (phi3) {
      TACHYON_RETURN_IF_ERROR(matrix(b + "attn_qkv.weight", E, Q + 2 * KV, 1.f / std::sqrt(float(E))));
    } else {
      TACHYON_RETURN_IF_ERROR(matrix(b + "attn_q.weight", E, Q, 1.f / std::sqrt(float(E))));
      TACHYON_RETURN_IF_ERROR(matrix(b + "attn_k.weight", E, KV, 1.f / std::sqrt(float(E))));
      TACHYON_RETURN_IF_ERROR(matrix(b + "attn_v.weight", E, KV, 1.f / std::sqrt(float(E))));
    }
    TACHYON_RETURN_IF_ERROR(matrix(b + "attn_output.weight", Q, E, 1.f / std::sqrt(float(Q))));
    if (phi3) {
      TACHYON_RETURN_IF_ERROR(matrix(b + "ffn_up.weight", E, 2 * P.n_ff, 1.f / std::sqrt(float(E))));
    } else {
      TACHYON_RETURN_IF_ERROR(matrix(b + "ffn_gate.weight", E, P.n_ff, 1.f / std::sqrt(float(E))));
      TACHYON_RETURN_IF_ERROR(matrix(b + "ffn_up.weight", E, P.n_ff, 1.f / std::sqrt(float(E))));
    }
    TACHYON_RETURN_IF_ERROR(matrix(b + "ffn_down.weight", P.n_ff, E, 1.f / std::sqrt(float(P.n_ff))));
    if (P.arch == "qwen2") {
      TACHYON_RETURN_IF_ERROR(vector(b + "attn_q.bias", Q, 0.f, 0.02f));
      TACHYON_RETURN_IF_ERROR(vector(b + "attn_k.bias", KV, 0.f, 0.02f));
      TACHYON_RETURN_IF_ERROR(vector(b + "attn_v.bias", KV, 0.f, 0.02f));
    }
    if (P.arch == "qwen3" || P.arch == "gemma3") {
      TACHYON_RETURN_IF_ERROR(vector(b + "attn_q_norm.weight", P.head_dim, 1.0f, 0.02f));
      TACHYON_RETURN_IF_ERROR(vector(b + "attn_k_norm.weight", P.head_dim, 1.0f, 0.02f));
    }
    if (gemma) {
      TACHYON_RETURN_IF_ERROR(vector(b + "post_attention_norm.weight", E, 1.0f, 0.02f));
      TACHYON_RETURN_IF_ERROR(vector(b + "post_ffw_norm.weight", E, 1.0f, 0.02f));
    }
  }
  return w.write(out_path);
}

}  // namespace tachyon::model
