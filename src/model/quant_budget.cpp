#include "model/quant_budget.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <thread>

#include "gguf/gguf.h"
#include "kernels/traits.h"
#include "model/quant_policy.h"

namespace tachyon::model {

namespace {

// The RMS-norm weight that feeds a product, "" when none does directly.
std::string feeding_norm(const std::string& name) {
  if (name == "output.weight") return "output_norm.weight";
  const size_t dot = name.find('.', 4);
  if (name.rfind("blk.", 0) != 0 || dot == std::string::npos) return "";
  const std::string blk = name.substr(0, dot + 1);
  const std::string rest = name.substr(dot + 1);
  for (const char* p : {"attn_q.", "attn_k.", "attn_v.", "attn_qkv."})
    if (rest.rfind(p, 0) == 0) return blk + "attn_norm.weight";
  for (const char* p : {"ffn_gate.", "ffn_up.", "ffn_gate_exps.", "ffn_up_exps."})
    if (rest.rfind(p, 0) == 0) return blk + "ffn_norm.weight";
  return "";
}

std::vector<DType> candidates(int64_t row_len) {
  std::vector<DType> c;
  if (row_len % 256 == 0)
    c = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_0};
  else if (row_len % 32 == 0)
    c = {DType::Q4_0, DType::Q5_0, DType::Q8_0};
  std::vector<DType> out;
  for (DType t : c) {
    const auto* tr = kernels::type_traits_ref(t);
    if (tr && tr->weight_quantizer() && tr->to_float) out.push_back(t);
  }
  return out;
}

struct Option {
  DType type;
  size_t bytes;
  double error;
};

}  // namespace

Result<BudgetPlan> plan_budget_mix(const std::string& in_path, size_t budget, const Imatrix* imatrix, int n_threads) {
  auto f = gguf::File::open(in_path);
  if (!f) return f.status();
  const gguf::File& in = *f.value();
  BudgetPlan plan;
  // what is copied as it is: metadata (the input's header, a little slack for the keys
  // quantize rewrites) and the tensors that are not quantized; 32-byte alignment each
  plan.fixed_bytes = in.data_offset() + 4096;
  struct Work {
    const gguf::TensorInfo* t;
    std::vector<Option> opts;
  };
  std::vector<Work> work;
  for (const auto& t : in.tensors()) {
    const std::string name(t.name);
    const auto* src = kernels::type_traits_ref(t.type);
    const std::vector<DType> cand = candidates(t.ne[0]);
    if (!tensor_is_quantizable(name, t.n_dims) || !src || !src->to_float || cand.empty()) {
      plan.fixed_bytes += (t.n_bytes + 31) / 32 * 32;
      continue;
    }
    work.push_back({&t, {}});
  }
  // the proxy of every candidate of every tensor, tensors split over threads
  std::vector<Status> errs(std::max(1, n_threads));
  std::vector<std::thread> ts;
  const int nth = std::max(1, n_threads);
  for (int ith = 0; ith < nth; ++ith)
    ts.emplace_back([&, ith] {
      for (size_t w = ith; w < work.size(); w += nth) {
        const gguf::TensorInfo& t = *work[w].t;
        const std::string name(t.name);
        const int64_t n_cols = t.ne[0], rows_per_mat = t.n_dims == 3 ? t.ne[1] : t.ne[1];
        const int64_t n_mat = t.n_dims == 3 ? t.ne[2] : 1;
        const int64_t n_rows = rows_per_mat * n_mat;
        const float* imp_all = nullptr;
        if (imatrix) {
          auto r = imatrix->for_tensor(name, n_cols, n_mat);
          if (!r) {
            errs[ith] = r.status();
            return;
          }
          imp_all = *r;
        }
        std::vector<float> norm_sq;
        if (!imp_all) {
          const std::string nn = feeding_norm(name);
          const gguf::TensorInfo* nt = nn.empty() ? nullptr : in.tensor(nn);
          if (nt && nt->ne[0] == n_cols && nt->type == DType::F32) {
            norm_sq.resize(n_cols);
            const float* g = reinterpret_cast<const float*>(nt->data);
            for (int64_t j = 0; j < n_cols; ++j) norm_sq[j] = g[j] * g[j];
          }
        }
        const int64_t step = std::max<int64_t>(1, n_rows / 512);
        std::vector<int64_t> rows;
        for (int64_t r = 0; r < n_rows; r += step) rows.push_back(r);
        const auto* src = kernels::type_traits_ref(t.type);
        const size_t srb = row_bytes(t.type, n_cols);
        std::vector<float> x(rows.size() * n_cols), back(n_cols);
        for (size_t i = 0; i < rows.size(); ++i) src->to_float(t.data + rows[i] * srb, x.data() + i * n_cols, n_cols);
        for (DType type : candidates(n_cols)) {
          const auto* tr = kernels::type_traits_ref(type);
          const size_t rb = row_bytes(type, n_cols);
          std::vector<uint8_t> q(rb);
          double err = 0;
          for (size_t i = 0; i < rows.size(); ++i) {
            const float* imp = imp_all ? imp_all + (rows[i] / rows_per_mat) * n_cols : nullptr;
            const float* xr = x.data() + i * n_cols;
            if (imp && tr->quantize_weighted)
              tr->quantize_weighted(xr, q.data(), n_cols, imp, n_cols);
            else
              tr->weight_quantizer()(xr, q.data(), n_cols);
            tr->to_float(q.data(), back.data(), n_cols);
            double e = 0;
            for (int64_t j = 0; j < n_cols; ++j) {
              const double d = static_cast<double>(xr[j]) - back[j];
              const double wj = imp ? imp[j] : norm_sq.empty() ? 1.0 : norm_sq[j];
              e += wj * d * d;
            }
            err += e;
          }
          err *= static_cast<double>(n_rows) / static_cast<double>(rows.size());
          work[w].opts.push_back({type, (rb * n_rows + 31) / 32 * 32, err});
        }
      }
    });
  for (auto& th : ts) th.join();
  for (const Status& s : errs)
    if (!s) return s;
  // each tensor's lower convex hull of (bytes, error), cheapest first
  for (Work& w : work) {
    std::sort(w.opts.begin(), w.opts.end(), [](const Option& a, const Option& b) { return a.bytes < b.bytes; });
    std::vector<Option> hull;
    for (const Option& o : w.opts) {
      if (!hull.empty() && o.error >= hull.back().error) continue;  // dominated
      while (hull.size() >= 2) {
        const Option& a = hull[hull.size() - 2];
        const Option& b = hull.back();
        // b is above the segment a-o: drop it
        const double lhs = (b.error - a.error) * static_cast<double>(o.bytes - a.bytes);
        const double rhs = (o.error - a.error) * static_cast<double>(b.bytes - a.bytes);
        if (lhs >= rhs)
          hull.pop_back();
        else
          break;
      }
      hull.push_back(o);
    }
    w.opts = std::move(hull);
  }
  size_t total = plan.fixed_bytes;
  std::vector<size_t> at(work.size(), 0);
  for (const Work& w : work) total += w.opts[0].bytes;
  if (total > budget)
    return invalid_argument("--budget " + std::to_string(budget) + " bytes is below the smallest mix of " + in_path +
                            " (" + std::to_string(total) + " bytes, every tensor at its cheapest type)");
  // greedy over hull segments: most error removed per byte first
  using Step = std::pair<double, size_t>;  // (gain per byte, tensor)
  std::priority_queue<Step> pq;
  const auto push = [&](size_t i) {
    const Work& w = work[i];
    if (at[i] + 1 >= w.opts.size()) return;
    const Option& a = w.opts[at[i]];
    const Option& b = w.opts[at[i] + 1];
    pq.push({(a.error - b.error) / static_cast<double>(b.bytes - a.bytes), i});
  };
  for (size_t i = 0; i < work.size(); ++i) push(i);
  while (!pq.empty()) {
    const size_t i = pq.top().second;
    pq.pop();
    const Option& a = work[i].opts[at[i]];
    const Option& b = work[i].opts[at[i] + 1];
    if (total - a.bytes + b.bytes > budget) continue;  // does not fit; smaller steps still may
    total = total - a.bytes + b.bytes;
    ++at[i];
    push(i);
  }
  plan.total_bytes = total;
  for (size_t i = 0; i < work.size(); ++i) {
    const Option& o = work[i].opts[at[i]];
    plan.tensors.push_back({std::string(work[i].t->name), o.type, o.bytes, o.error});
    plan.error += o.error;
  }
  return plan;
}

}  // namespace tachyon::model
