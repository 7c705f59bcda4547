// Model loading: binds zero-copy views of every weight and checks shapes and types.
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>
#include <vector>

#include "kernels/packed.h"
#include "kernels/traits.h"
#include "model/model.h"

namespace tachyon::model {

namespace {

std::string shape_str(std::initializer_list<int64_t> s) {
  std::string r = "[";
  bool first = true;
  for (auto v : s) {
    if (!first) r += ", ";
    r += std::to_string(v);
    first = false;
  }
  return r + "]";
}

}  // namespace

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const LoadOptions& opt) {
  auto f = gguf::File::open(path);
  if (!f) return f.status();
  std::unique_ptr<Model> m(new Model());
  m->file_ = std::move(f.value());
  m->opt_ = opt;
  auto hp = read_hparams(*m->file_);
  if (!hp) return hp.status();
  m->hp_ = hp.value();
  TACHYON_RETURN_IF_ERROR(m->bind_weights());
  if (opt.mem_budget > 0) {
    // Routed experts go to the cache: described by file offsets, never touched through
    // the mapping (so never resident through it).
    const gguf::File& gf = *m->file_;
    std::vector<ExpertCache::Layer> layers(m->hp_.n_layer);
    for (int l = 0; l < m->hp_.n_layer; ++l) {
      const LayerConfig& c = m->hp_.arch.layers[l];
      if (c.n_expert == 0) continue;
      layers[l].n_expert = c.n_expert;
      const std::string b = "blk." + std::to_string(l) + ".";
      const char* names[3] = {"ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight"};
      const kernels::MatView* mv[3] = {&m->w_.layers[l].gate_exps, &m->w_.layers[l].up_exps, &m->w_.layers[l].down_exps};
      for (int k = 0; k < 3; ++k) {
        const gguf::TensorInfo* t = gf.tensor(b + names[k]);
        ExpertCache::Tensor& et = layers[l].t[k];
        et.name = b + names[k];
        et.type = mv[k]->type;
        et.n_cols = mv[k]->n_cols;
        et.rows_per_expert = mv[k]->n_rows / c.n_expert;
        et.row_bytes = mv[k]->row_bytes;
        et.part = static_cast<int>(t->part);
        et.file_offset = gf.tensor_file_offset(*t);
      }
    }
    std::vector<std::string> parts;
    for (int i = 0; i < gf.n_parts(); ++i) parts.push_back(gf.part_path(i));
    ExpertCache::Options eo;
    eo.budget = opt.mem_budget;
    eo.prefetch = opt.expert_prefetch;
    auto ec = ExpertCache::create(layers, parts, eo);
    if (!ec) return Status(ec.status().code(), path + ": " + ec.status().message());
    m->experts_ = std::move(ec.value());
  }
  m->pack_weights();
  return m;
}

namespace {

// MemAvailable of /proc/meminfo (0 when unknown).
size_t mem_available_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  size_t kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
  std::fclose(f);
  return kb * 1024;
}

}  // namespace

// Repacks every matrix whose type has a packed SIMD kernel into 8-row groups (see
// kernels/packed.h), in freshly allocated memory, on every core; the file pages of the packed rows are
// then dropped from this process (MADV_DONTNEED), so resident memory stays about the
// file size. TACHYON_NO_REPACK=1 keeps the GGUF layout (for comparisons).
void Model::pack_weights() {
  if (const char* e = std::getenv("TACHYON_NO_REPACK"); e && *e && std::string(e) != "0") return;
  std::vector<kernels::MatView*> mats;
  for (size_t l = 0; l < w_.layers.size(); ++l) {
    auto& L = w_.layers[l];
    for (kernels::MatView* m : L.mats())
      if (m->data) mats.push_back(m);
    // Expert tensors pack as one stacked matrix when each expert's rows fill whole groups
    // (then expert e's groups are contiguous: moe_ffn slices them).
    const int n_expert = hp_.arch.layers[l].n_expert;
    if (experts_) continue;  // the expert cache packs them as it reads them
    for (kernels::MatView* m : {&L.gate_exps, &L.up_exps, &L.down_exps}) {
      const kernels::PackedKernels* pk = m->data ? kernels::packed_kernels(m->type) : nullptr;
      if (pk && n_expert > 0 && (m->n_rows / n_expert) % pk->rows == 0) mats.push_back(m);
    }
  }
  if (!w_.tied_output) mats.push_back(&w_.output);
  // One arena for every packed matrix, 2 MiB-aligned and advised as huge pages: decode
  // streams every byte once per token, and 4 KiB pages cost a TLB miss every 4 KiB.
  struct Item {
    kernels::MatView* w;
    const kernels::PackedKernels* pk;
    int64_t n_groups;
    size_t offset;
  };
  std::vector<Item> items;
  size_t total = 0;
  // Layouts larger than the file's (IQ3x8: decode several times faster for 1.4x the bytes)
  // only when the whole arena still leaves 1 GiB of the memory available now, and not
  // under TACHYON_REPACK_GROW=0: a model chosen to fit RAM keeps fitting.
  bool allow_grow = true;
  if (const char* e = std::getenv("TACHYON_REPACK_GROW"); e && std::string(e) == "0") allow_grow = false;
  if (allow_grow) {
    size_t all = 0;
    for (kernels::MatView* w : mats) {
      const kernels::PackedKernels* pk = kernels::packed_kernels(w->type);
      if (pk && w->n_rows >= pk->rows && !w->packed) all += (w->n_rows / pk->rows) * pk->group_bytes(w->n_cols);
    }
    allow_grow = all + (size_t{1} << 30) <= mem_available_bytes();
  }
  for (kernels::MatView* w : mats) {
    const kernels::PackedKernels* pk = kernels::packed_kernels(w->type);
    if (!pk || w->n_rows < pk->rows || w->packed || (pk->grows && !allow_grow)) continue;
    const int64_t n_groups = w->n_rows / pk->rows;
    items.push_back({w, pk, n_groups, total});
    total += (n_groups * pk->group_bytes(w->n_cols) + 63) / 64 * 64;
  }
  if (items.empty()) return;
  constexpr size_t kHuge = size_t{2} << 20;
  total = (total + kHuge - 1) / kHuge * kHuge;
  uint8_t* arena = static_cast<uint8_t*>(std::aligned_alloc(kHuge, total));
  if (!arena) return;  // keep the GGUF layout
  madvise(arena, total, MADV_HUGEPAGE);
  packed_.emplace_back(arena);
  // Every core packs: runs of groups (~1 MiB of packed bytes) taken from a shared counter,
  // so the arena's first touch and the decoding spread too.
  struct Run {
    const Item* it;
    int64_t g0, g1;
  };
  std::vector<Run> runs;
  for (const Item& it : items) {
    const int64_t step = std::max<int64_t>(1, static_cast<int64_t>((size_t{1} << 20) / it.pk->group_bytes(it.w->n_cols)));
    for (int64_t g = 0; g < it.n_groups; g += step) runs.push_back({&it, g, std::min(it.n_groups, g + step)});
  }
  // A matrix's mapped pages are released by whoever packs its last run, so that no more
  // than the matrices in flight are resident twice (peak RSS stays about the file size).
  std::vector<std::atomic<int64_t>> runs_left(items.size());
  for (size_t i = 0; i < items.size(); ++i) runs_left[i] = 0;
  for (const Run& r : runs) ++runs_left[r.it - items.data()];
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < runs.size();) {
      const Run& r = runs[k];
      const kernels::MatView* w = r.it->w;
      const size_t gb = r.it->pk->group_bytes(w->n_cols);
      const auto* src = static_cast<const uint8_t*>(w->data);
      for (int64_t g = r.g0; g < r.g1; ++g)
        r.it->pk->pack(src + g * r.it->pk->rows * w->row_bytes, w->row_bytes, w->n_cols, arena + r.it->offset + g * gb);
      if (runs_left[r.it - items.data()].fetch_sub(1) != 1) continue;
      const uintptr_t page = 4096;
      const uintptr_t b = (reinterpret_cast<uintptr_t>(src) + page - 1) / page * page;
      const uintptr_t e = (reinterpret_cast<uintptr_t>(src) + r.it->n_groups * r.it->pk->rows * w->row_bytes) / page * page;
      if (e > b) madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
    }
  };
  const int n_threads = static_cast<int>(std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), runs.size()));
  std::vector<std::thread> threads;
  for (int t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  for (const Item& it : items) {
    it.w->packed = arena + it.offset;
    it.w->packed_rows = it.n_groups * it.pk->rows;
  }
}

Status Model::bind_weights() {
  const gguf::File& f = *file_;
  const std::string p = f.path() + ": ";

  auto find = [&](const std::string& name, bool required, const gguf::TensorInfo** out) -> Status {
    *out = f.tensor(name);
    if (!*out && required) return corrupt(p + "tensor '" + name + "': missing");
    return Status::ok();
  };
  auto check_shape = [&](const gguf::TensorInfo* t, std::initializer_list<int64_t> shape) -> Status {
    int d = 0;
    bool ok = true;
    for (auto v : shape) ok &= t->ne[d++] == v;
    for (; d < 4; ++d) ok &= t->ne[d] == 1;
    if (!ok)
      return corrupt(p + "tensor '" + std::string(t->name) + "': shape " + t->shape_string() + ", expected " +
                     shape_str(shape));
    return Status::ok();
  };
  // Matrix with ne = [n_cols, n_rows] whose type has compute kernels.
  auto mat = [&](const std::string& name, int64_t n_cols, int64_t n_rows, kernels::MatView* out) -> Status {
    const gguf::TensorInfo* t;
    TACHYON_RETURN_IF_ERROR(find(name, true, &t));
    TACHYON_RETURN_IF_ERROR(check_shape(t, {n_cols, n_rows}));
    const kernels::TypeTraits* tt = kernels::type_traits(t->type);
    if (!tt || !tt->vec_dot || !tt->to_float)
      return unsupported(p + "tensor '" + name + "': weight type " + std::string(dtype_info(t->type).name) +
                         " is not supported (" + kernels::weight_type_names() + ")");
    // A NaN or infinite block scale would poison every logit downstream without a trace.
    if (tt->validate && !tt->validate(t->data, n_cols * n_rows))
      return corrupt(p + "tensor '" + name + "': type " + std::string(dtype_info(t->type).name) +
                     " data holds an invalid block (NaN/Inf scale or out-of-range index)");
    out->data = t->data;
    out->type = t->type;
    out->n_cols = n_cols;
    out->n_rows = n_rows;
    out->row_bytes = row_bytes(t->type, n_cols);
    return Status::ok();
  };
  // Vector of n floats; non-F32 vectors are converted once into owned memory.
  auto vec = [&](const std::string& name, int64_t n, bool required, const float** out) -> Status {
    const gguf::TensorInfo* t;
    TACHYON_RETURN_IF_ERROR(find(name, required, &t));
    if (!t) {
      *out = nullptr;
      return Status::ok();
    }
    TACHYON_RETURN_IF_ERROR(check_shape(t, {n}));
    if (t->type == DType::F32) {
      if (reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0) {
        *out = reinterpret_cast<const float*>(t->data);
        return Status::ok();
      }
    }
    const kernels::TypeTraits* tt = kernels::type_traits(t->type);
    if (!tt || !tt->to_float)
      return unsupported(p + "tensor '" + name + "': type " + std::string(dtype_info(t->type).name) + " not supported for vectors");
    owned_.emplace_back(n);
    tt->to_float(t->data, owned_.back().data(), n);
    *out = owned_.back().data();
    return Status::ok();
  };

  const Hparams& h = hp_;
  // Vocabulary size comes from the embedding matrix.
  const gguf::TensorInfo* te;
  TACHYON_RETURN_IF_ERROR(find("token_embd.weight", true, &te));
  if (te->n_dims != 2 || te->ne[0] != h.n_embd || te->ne[1] <= 0)
    return corrupt(p + "tensor 'token_embd.weight': shape " + te->shape_string() + ", expected [" + std::to_string(h.n_embd) +
                   ", n_vocab]");
  hp_.n_vocab = static_cast<int>(te->ne[1]);
  const int64_t V = hp_.n_vocab, E = h.n_embd, F = h.n_ff, HD = h.head_dim_k;
  TACHYON_RETURN_IF_ERROR(mat("token_embd.weight", E, V, &w_.tok_embd));
  TACHYON_RETURN_IF_ERROR(vec("output_norm.weight", E, true, &w_.output_norm));
  if (f.tensor("output.weight")) {
    TACHYON_RETURN_IF_ERROR(mat("output.weight", E, V, &w_.output));
  } else {
    w_.output = w_.tok_embd;
    w_.tied_output = true;
  }
  TACHYON_RETURN_IF_ERROR(vec("rope_freqs.weight", h.rope.n_rot / 2, false, &w_.rope_freqs));
  // LongRoPE factors: llama.cpp names them per layer and keeps layer 0's (the converters
  // write one pair for the model).
  for (const char* base : {"rope_factors_short.weight", "rope_factors_long.weight"}) {
    const float** dst = base[13] == 's' ? &w_.rope_short : &w_.rope_long;
    const std::string n = f.tensor(base) ? std::string(base) : "blk.0." + std::string(base);
    TACHYON_RETURN_IF_ERROR(vec(n, h.rope.n_rot / 2, false, dst));
  }
  if ((w_.rope_short != nullptr) != (w_.rope_long != nullptr))
    return corrupt(p + "tensors 'rope_factors_short' / 'rope_factors_long': one without the other");
  if (w_.rope_freqs && w_.rope_short)
    return corrupt(p + "tensor 'rope_freqs.weight': present together with LongRoPE factors");
  for (auto& L : hp_.arch.layers) {
    if (L.rope.n_rot != h.rope.n_rot && (w_.rope_freqs || w_.rope_short))
      return unsupported(p + "rope frequency factors with per-layer rotary dims");
    L.rope.freq_factors = w_.rope_freqs ? w_.rope_freqs : w_.rope_short;
  }
  hp_.rope.freq_factors = w_.rope_freqs ? w_.rope_freqs : w_.rope_short;

  w_.layers.resize(h.n_layer);
  for (int l = 0; l < h.n_layer; ++l) {
    auto& L = w_.layers[l];
    const LayerConfig& c = h.arch.layers[l];
    const std::string b = "blk." + std::to_string(l) + ".";
    const int64_t nq = int64_t{h.n_head} * HD, nk = int64_t{h.n_head_kv} * HD, nv = int64_t{h.n_head_kv} * h.head_dim_v;
    TACHYON_RETURN_IF_ERROR(vec(b + "attn_norm.weight", E, true, &L.attn_norm));
    // A fused family may still ship separate q/k/v (llama.cpp accepts either).
    if (c.qkv_fused && f.tensor(b + "attn_qkv.weight")) {
      TACHYON_RETURN_IF_ERROR(mat(b + "attn_qkv.weight", E, nq + nk + nv, &L.wqkv));
    } else {
      TACHYON_RETURN_IF_ERROR(mat(b + "attn_q.weight", E, nq, &L.wq));
      TACHYON_RETURN_IF_ERROR(mat(b + "attn_k.weight", E, nk, &L.wk));
      TACHYON_RETURN_IF_ERROR(mat(b + "attn_v.weight", E, nv, &L.wv));
    }
    TACHYON_RETURN_IF_ERROR(mat(b + "attn_output.weight", h.n_head * h.head_dim_v, E, &L.wo));
    // Biases: required where the family has them, accepted wherever present (separate q/k/v).
    if (!L.wqkv.data) {
      TACHYON_RETURN_IF_ERROR(vec(b + "attn_q.bias", nq, c.qkv_bias, &L.bq));
      TACHYON_RETURN_IF_ERROR(vec(b + "attn_k.bias", nk, c.qkv_bias, &L.bk));
      TACHYON_RETURN_IF_ERROR(vec(b + "attn_v.bias", nv, c.qkv_bias, &L.bv));
    } else if (f.tensor(b + "attn_qkv.bias")) {
      return unsupported(p + "tensor '" + b + "attn_qkv.bias': fused q/k/v biases are not supported");
    }
    TACHYON_RETURN_IF_ERROR(vec(b + "attn_q_norm.weight", HD, c.qk_norm, &L.q_norm));
    TACHYON_RETURN_IF_ERROR(vec(b + "attn_k_norm.weight", HD, c.qk_norm, &L.k_norm));
    if (c.qk_norm != (L.q_norm != nullptr) || (L.q_norm != nullptr) != (L.k_norm != nullptr))
      return corrupt(p + "tensors '" + b + "attn_q_norm' / 'attn_k_norm': one without the other");
    if (c.attn_post_norm) TACHYON_RETURN_IF_ERROR(vec(b + "post_attention_norm.weight", E, true, &L.attn_post_norm));
    TACHYON_RETURN_IF_ERROR(vec(b + "ffn_norm.weight", E, true, &L.ffn_norm));
    if (c.n_expert > 0) {
      // Routed experts: the router, then three 3-D tensors of n_expert matrices each.
      const int64_t X = c.n_expert, FE = c.n_ff_exp;
      TACHYON_RETURN_IF_ERROR(mat(b + "ffn_gate_inp.weight", E, X, &L.gate_inp));
      auto exps = [&](const std::string& name, int64_t n_cols, int64_t rows, kernels::MatView* out) -> Status {
        const gguf::TensorInfo* t;
        TACHYON_RETURN_IF_ERROR(find(name, true, &t));
        TACHYON_RETURN_IF_ERROR(check_shape(t, {n_cols, rows, X}));
        const kernels::TypeTraits* tt = kernels::type_traits(t->type);
        if (!tt || !tt->vec_dot || !tt->to_float)
          return unsupported(p + "tensor '" + name + "': weight type " + std::string(dtype_info(t->type).name) +
                             " is not supported (" + kernels::weight_type_names() + ")");
        // (under --mem-budget each expert is checked as the cache reads it)
        if (opt_.mem_budget == 0 && tt->validate && !tt->validate(t->data, n_cols * rows * X))
          return corrupt(p + "tensor '" + name + "': type " + std::string(dtype_info(t->type).name) +
                         " data holds an invalid block (NaN/Inf scale or out-of-range index)");
        out->data = t->data;
        out->type = t->type;
        out->n_cols = n_cols;
        out->n_rows = rows * X;
        out->row_bytes = row_bytes(t->type, n_cols);
        return Status::ok();
      };
      TACHYON_RETURN_IF_ERROR(exps(b + "ffn_gate_exps.weight", E, FE, &L.gate_exps));
      TACHYON_RETURN_IF_ERROR(exps(b + "ffn_up_exps.weight", E, FE, &L.up_exps));
      TACHYON_RETURN_IF_ERROR(exps(b + "ffn_down_exps.weight", FE, E, &L.down_exps));
      if (f.tensor(b + "ffn_gate_inp_shexp.weight") || f.tensor(b + "ffn_up_shexp.weight"))
        return unsupported(p + "tensor '" + b + "ffn_up_shexp.weight': shared experts are not supported");
      continue;
    }
    if (c.gate_up_fused) {
      TACHYON_RETURN_IF_ERROR(mat(b + "ffn_up.weight", E, 2 * F, &L.up));
    } else {
      TACHYON_RETURN_IF_ERROR(mat(b + "ffn_gate.weight", E, F, &L.gate));
      TACHYON_RETURN_IF_ERROR(mat(b + "ffn_up.weight", E, F, &L.up));
    }
    TACHYON_RETURN_IF_ERROR(mat(b + "ffn_down.weight", F, E, &L.down));
    if (c.ffn_post_norm) TACHYON_RETURN_IF_ERROR(vec(b + "post_ffw_norm.weight", E, true, &L.ffn_post_norm));
  }

  size_t bytes = w_.output.row_bytes * w_.output.n_rows;
  for (int l = 0; l < h.n_layer; ++l) {
    const auto& L = w_.layers[l];
    for (const auto* m : L.mats()) bytes += m->row_bytes * m->n_rows;
    // a token reads its n_expert_used experts (and the router)
    const LayerConfig& c = h.arch.layers[l];
    if (c.n_expert > 0)
      bytes += L.gate_inp.row_bytes * L.gate_inp.n_rows +
               (L.gate_exps.row_bytes * L.gate_exps.n_rows + L.up_exps.row_bytes * L.up_exps.n_rows +
                L.down_exps.row_bytes * L.down_exps.n_rows) / c.n_expert * c.n_expert_used;
  }
  weight_bytes_ = bytes;
  return Status::ok();
}

std::string Model::weight_type() const {
  std::map<std::string, size_t> by;
  for (const auto& t : file_->tensors()) by[std::string(dtype_info(t.type).name)] += t.n_bytes;
  std::string best;
  size_t n = 0;
  for (const auto& [k, v] : by)
    if (v > n) {
      n = v;
      best = k;
    }
  return best;
}

void Model::set_context_size(int n_ctx) {
  if (!w_.rope_long) return;
  const float* ff = n_ctx > hp_.n_ctx_orig ? w_.rope_long : w_.rope_short;
  hp_.rope.freq_factors = ff;
  for (auto& L : hp_.arch.layers) L.rope.freq_factors = ff;
}

kv::KvConfig Model::kv_config(int n_pages, int page_size, kv::KvType type) const {
  kv::KvConfig c;
  c.type = type;
  c.n_layer = hp_.n_layer;
  c.n_kv_head = hp_.n_head_kv;
  c.head_dim_k = hp_.head_dim_k;
  c.head_dim_v = hp_.head_dim_v;
  c.page_size = page_size;
  c.n_pages = n_pages;
  // Sliding-window layers keep their KV in the pool's local arena (one slot per page
  // unless the caller sets n_local_slots).
  bool any_local = false;
  for (const auto& L : hp_.arch.layers) any_local |= L.window > 0;
  if (any_local) {
    c.local_layers.assign(hp_.n_layer, 0);
    for (int l = 0; l < hp_.n_layer && l < static_cast<int>(hp_.arch.layers.size()); ++l) {
      const int w = hp_.arch.layers[l].window;
      c.local_layers[l] = w > 0;
      c.window = std::max(c.window, w);
    }
  }
  return c;
}

}  // namespace tachyon::model
