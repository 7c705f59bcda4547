#include "server/metrics.h"

#include <cstdio>

namespace tachyon::server {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

void header(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  *out += "# HELP ";
  *out += name;
  *out += ' ';
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += ' ';
  *out += type;
  *out += '\n';
}

void metric(std::string* out, std::string_view name, std::string_view type, std::string_view help, double v) {
  header(out, name, type, help);
  *out += name;
  *out += ' ';
  *out += num(v);
  *out += '\n';
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string* out, std::string_view name, std::string_view help) const {
  header(out, name, "histogram", help);
  uint64_t cum = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cum += counts_[i];
    *out += name;
    *out += "_bucket{le=\"";
    *out += i < bounds_.size() ? num(bounds_[i]) : "+Inf";
    *out += "\"} ";
    *out += std::to_string(cum);
    *out += '\n';
  }
  *out += std::string(name) + "_sum " + num(sum_) + "\n";
  *out += std::string(name) + "_count " + std::to_string(count_) + "\n";
}

ServerMetrics::ServerMetrics()
    : ttft_s_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_s_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}) {}

void ServerMetrics::record_status(int status) {
  std::lock_guard<std::mutex> lk(mu_);
  ++by_status_[status];
}

uint64_t ServerMetrics::requests_with_status(int status) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = by_status_.find(status);
  return it == by_status_.end() ? 0 : it->second;
}

void ServerMetrics::absorb_latencies(const engine::EngineStats& s) {
  std::lock_guard<std::mutex> lk(mu_);
  for (double ms : s.ttft_ms) ttft_s_.observe(ms / 1e3);
  for (double ms : s.itl_ms) itl_s_.observe(ms / 1e3);
}

std::string ServerMetrics::render(const engine::EngineStats& s, const ServerGauges& g) const {
  std::string out;
  out.reserve(4096);
  {
    std::lock_guard<std::mutex> lk(mu_);
    header(&out, "tachyon_http_requests_total", "counter", "HTTP responses sent, by status code");
    for (const auto& [code, n] : by_status_)
      out += "tachyon_http_requests_total{code=\"" + std::to_string(code) + "\"} " + std::to_string(n) + "\n";
    ttft_s_.render(&out, "tachyon_time_to_first_token_seconds", "Time from submission to the first token (seconds)");
    itl_s_.render(&out, "tachyon_inter_token_latency_seconds", "Time between consecutive tokens of a request (seconds)");
  }
  metric(&out, "tachyon_http_connections", "gauge", "Open HTTP connections", g.open_connections);
  metric(&out, "tachyon_http_active_requests", "gauge", "Completion requests being served", g.active_requests);
  metric(&out, "tachyon_requests_submitted_total", "counter", "Requests accepted by the engine", s.requests_submitted);
  metric(&out, "tachyon_requests_finished_total", "counter", "Requests the engine finished", s.requests_finished);
  metric(&out, "tachyon_requests_cancelled_total", "counter", "Requests cancelled (client gone, shutdown)",
         s.requests_cancelled);
  metric(&out, "tachyon_requests_rejected_total", "counter", "Requests refused by the engine (queue full, bad input)",
         s.requests_rejected);
  metric(&out, "tachyon_queue_depth", "gauge", "Requests waiting for admission", s.queue_depth);
  metric(&out, "tachyon_running_requests", "gauge", "Sequences in the running batch", s.running);
  metric(&out, "tachyon_batch_tokens", "gauge", "Tokens in the last engine step", s.last_batch_tokens);
  metric(&out, "tachyon_engine_steps_total", "counter", "Engine steps run", s.steps);
  metric(&out, "tachyon_preemptions_total", "counter", "Sequences preempted for lack of KV pages", s.preemptions);
  metric(&out, "tachyon_prompt_tokens_total", "counter", "Prompt tokens of finished requests", s.prompt_tokens);
  metric(&out, "tachyon_generated_tokens_total", "counter", "Generated tokens", s.generated_tokens);
  metric(&out, "tachyon_prefix_cache_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache",
         s.cached_prompt_tokens);
  metric(&out, "tachyon_kv_pages_total", "gauge", "KV cache pages", s.kv_pages_total);
  metric(&out, "tachyon_kv_pages_free", "gauge", "KV pages free", s.kv_pages_free);
  metric(&out, "tachyon_kv_pages_cached", "gauge", "KV pages held only by the prefix cache (evictable)",
         s.kv_pages_cached);
  metric(&out, "tachyon_kv_pages_used", "gauge", "KV pages in use by running requests",
         std::max(0, s.kv_pages_total - s.kv_pages_free - s.kv_pages_cached));
  metric(&out, "tachyon_kv_local_slots_total", "gauge", "Sliding-window KV slots (0: no sliding-window layers)",
         s.kv_local_slots_total);
  metric(&out, "tachyon_kv_local_slots_free", "gauge", "Sliding-window KV slots free", s.kv_local_slots_free);
  metric(&out, "tachyon_kv_bytes", "gauge", "Memory of the KV cache (bytes)", static_cast<double>(s.kv_bytes));
  {
    // KV cache tiers: l1 = the pool, l2 = host RAM, l3 = disk (kv/radix_cache.h).
    const kv::TierStats& t = s.kv_tiers;
    static const char* kTier[3] = {"l1", "l2", "l3"};
    auto per_tier = [&](std::string_view name, std::string_view type, std::string_view help, const uint64_t* v,
                        int first) {
      header(&out, name, type, help);
      for (int i = first; i < 3; ++i)
        out += std::string(name) + "{tier=\"" + kTier[i] + "\"} " + num(static_cast<double>(v[i])) + "\n";
    };
    per_tier("tachyon_kv_tier_pages", "gauge", "KV cache pages per tier (l3: page files of this model on disk)",
             t.pages, 0);
    per_tier("tachyon_kv_tier_bytes", "gauge", "KV cache bytes per tier", t.bytes, 0);
    per_tier("tachyon_kv_tier_hit_pages_total", "counter", "Prompt pages served from each tier", t.hit_pages, 0);
    per_tier("tachyon_kv_tier_promotions_total", "counter", "Pages brought back into the pool from each tier",
             t.promotions, 1);
    per_tier("tachyon_kv_tier_demotions_total", "counter", "Pages moved down to each tier", t.demotions, 1);
    metric(&out, "tachyon_kv_miss_pages_total", "counter", "Prompt pages no tier held (computed)",
           static_cast<double>(t.miss_pages));
    metric(&out, "tachyon_kv_dropped_pages_total", "counter", "Pages evicted with no lower tier to take them",
           static_cast<double>(t.dropped));
    metric(&out, "tachyon_kv_promote_failures_total", "counter",
           "Promotions that failed (file rejected at read, no free page): the prompt is computed from there",
           static_cast<double>(t.promote_failures));
    metric(&out, "tachyon_kv_host_capacity_bytes", "gauge", "Capacity of the l2 tier (host RAM)",
           static_cast<double>(s.kv_host_capacity));
    const kv::DiskTierStats& d = s.kv_disk;
    metric(&out, "tachyon_kv_disk_enabled", "gauge", "1 when a disk tier is configured (--kv-disk)",
           s.kv_disk_enabled ? 1 : 0);
    metric(&out, "tachyon_kv_disk_writable", "gauge", "1 while the disk tier accepts writes (0: degraded to RAM)",
           d.writable ? 1 : 0);
    metric(&out, "tachyon_kv_disk_reads_total", "counter", "Page files read", static_cast<double>(d.reads));
    metric(&out, "tachyon_kv_disk_read_bytes_total", "counter", "Bytes read from page files",
           static_cast<double>(d.read_bytes));
    metric(&out, "tachyon_kv_disk_read_seconds_total", "counter", "Time spent reading page files", d.read_seconds);
    metric(&out, "tachyon_kv_disk_writes_total", "counter", "Page files written", static_cast<double>(d.writes));
    metric(&out, "tachyon_kv_disk_write_bytes_total", "counter", "Bytes written to page files",
           static_cast<double>(d.write_bytes));
    metric(&out, "tachyon_kv_disk_write_seconds_total", "counter", "Time spent writing page files (with fsync)",
           d.write_seconds);
    metric(&out, "tachyon_kv_disk_read_bandwidth_bytes_per_second", "gauge", "Read bytes / read time since start",
           d.read_seconds > 0 ? static_cast<double>(d.read_bytes) / d.read_seconds : 0.0);
    metric(&out, "tachyon_kv_disk_write_bandwidth_bytes_per_second", "gauge", "Written bytes / write time since start",
           d.write_seconds > 0 ? static_cast<double>(d.write_bytes) / d.write_seconds : 0.0);
    metric(&out, "tachyon_kv_disk_rejected_files_total", "counter",
           "Page files found corrupt, truncated, foreign or stale (ignored and deleted)", static_cast<double>(d.rejected));
    metric(&out, "tachyon_kv_disk_write_errors_total", "counter", "Failed page file writes",
           static_cast<double>(d.write_errors));
    metric(&out, "tachyon_kv_disk_dropped_writes_total", "counter", "Writes dropped (queue full)",
           static_cast<double>(d.dropped_writes));
    metric(&out, "tachyon_kv_disk_evicted_files_total", "counter", "Page files deleted to stay under --kv-disk-size",
           static_cast<double>(d.evicted_files));
  }
  metric(&out, "tachyon_kv_transfer_exported_pages_total", "counter",
         "KV transfer (--role prefill): prompt pages exported", static_cast<double>(s.kv_exported_pages));
  metric(&out, "tachyon_kv_transfer_export_bytes_total", "counter", "KV transfer: bytes exported",
         static_cast<double>(s.kv_export_bytes));
  metric(&out, "tachyon_kv_transfer_imports_total", "counter", "KV transfer (--role decode): transfers imported",
         static_cast<double>(s.kv_imports));
  metric(&out, "tachyon_kv_transfer_imported_pages_total", "counter",
         "KV transfer: pages added to the prefix cache by imports", static_cast<double>(s.kv_imported_pages));
  metric(&out, "tachyon_kv_transfer_rejected_total", "counter",
         "KV transfer: imports refused (verification failed, or transfer off)", static_cast<double>(s.kv_import_rejected));
  metric(&out, "tachyon_kv_imported_pages_in_cache_total", "counter", "Pages the prefix cache took from KV transfers",
         static_cast<double>(s.kv_tiers.imported));
  if (s.has_expert_cache) {
    const model::ExpertCacheStats& x = s.experts;
    metric(&out, "tachyon_expert_cache_budget_bytes", "gauge", "MoE expert cache: --mem-budget",
           static_cast<double>(x.budget_bytes));
    metric(&out, "tachyon_expert_cache_allocated_bytes", "gauge", "MoE expert cache: expert buffers held",
           static_cast<double>(x.allocated_bytes));
    metric(&out, "tachyon_expert_cache_expert_bytes", "gauge", "MoE expert cache: all routed experts' bytes",
           static_cast<double>(x.expert_bytes));
    metric(&out, "tachyon_expert_cache_resident_experts", "gauge", "MoE expert cache: (layer, expert) units cached",
           static_cast<double>(x.resident_units));
    metric(&out, "tachyon_expert_cache_lookups_total", "counter", "MoE expert cache: experts a layer needed",
           static_cast<double>(x.lookups));
    metric(&out, "tachyon_expert_cache_hits_total", "counter", "MoE expert cache: ... found cached",
           static_cast<double>(x.hits));
    metric(&out, "tachyon_expert_cache_prefetch_hits_total", "counter",
           "MoE expert cache: ... found read (or being read) by a prefetch", static_cast<double>(x.prefetch_hits));
    metric(&out, "tachyon_expert_cache_misses_total", "counter", "MoE expert cache: ... read while the step waited",
           static_cast<double>(x.misses));
    metric(&out, "tachyon_expert_cache_hit_ratio", "gauge", "MoE expert cache: (hits + prefetch hits) / lookups",
           x.hit_rate());
    metric(&out, "tachyon_expert_cache_read_bytes_total", "counter", "MoE expert cache: bytes read from the model file",
           static_cast<double>(x.bytes_read));
    metric(&out, "tachyon_expert_cache_prefetch_issued_total", "counter", "MoE expert cache: experts queued for prefetch",
           static_cast<double>(x.prefetch_issued));
    metric(&out, "tachyon_expert_cache_prefetch_used_total", "counter",
           "MoE expert cache: prefetched experts their layer needed (accuracy = used / issued)",
           static_cast<double>(x.prefetch_used));
    metric(&out, "tachyon_expert_cache_evictions_total", "counter", "MoE expert cache: experts evicted",
           static_cast<double>(x.evictions));
    metric(&out, "tachyon_expert_cache_wait_seconds_total", "counter",
           "MoE expert cache: time forward steps waited for expert reads", x.wait_s);
  }
  metric(&out, "tachyon_spec_draft_tokens_total", "counter", "Speculative decoding: draft tokens verified",
         static_cast<double>(s.spec_drafted));
  metric(&out, "tachyon_spec_accepted_tokens_total", "counter", "Speculative decoding: draft tokens accepted",
         static_cast<double>(s.spec_accepted));
  metric(&out, "tachyon_spec_verify_steps_total", "counter", "Speculative decoding: sequence-steps that verified drafts",
         static_cast<double>(s.spec_verify_steps));
  if (!s.spec_accept_hist.empty()) {
    // Accepted tokens per verified draft, as a Prometheus histogram (le = accepted tokens).
    header(&out, "tachyon_spec_accepted_length", "histogram",
           "Speculative decoding: draft tokens accepted per sequence-step that verified a draft");
    uint64_t cum = 0, sum = 0;
    for (size_t i = 0; i < s.spec_accept_hist.size(); ++i) {
      cum += s.spec_accept_hist[i];
      sum += s.spec_accept_hist[i] * i;
      out += "tachyon_spec_accepted_length_bucket{le=\"" + std::to_string(i) + "\"} " + std::to_string(cum) + "\n";
    }
    out += "tachyon_spec_accepted_length_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
    out += "tachyon_spec_accepted_length_sum " + std::to_string(sum) + "\n";
    out += "tachyon_spec_accepted_length_count " + std::to_string(cum) + "\n";
  }
  header(&out, "tachyon_spec_auto_steps_total", "counter",
         "Speculative decoding: decode steps of auto requests by the drafter auto measured fastest (or explored)");
  {
    static const char* const kArm[3] = {"none", "ngram", "draft"};
    for (int a = 0; a < 3; ++a)
      out += std::string("tachyon_spec_auto_steps_total{drafter=\"") + kArm[a] + "\"} " +
             std::to_string(s.spec_auto_steps[a]) + "\n";
  }
  metric(&out, "tachyon_spec_draft_model_seconds_total", "counter", "Speculative decoding: time in draft-model steps",
         s.spec_draft_ms / 1000.0);
  metric(&out, "tachyon_spec_time_saved_seconds_total", "counter",
         "Speculative decoding: estimated decode time saved (accepted tokens x the one-token step, minus the drafts' "
         "extra verify cost; draft-model time not subtracted)",
         s.spec_saved_ms / 1000.0);
  metric(&out, "tachyon_constrained_requests_total", "counter", "Structured output: finished constrained requests",
         static_cast<double>(s.constrained_requests));
  metric(&out, "tachyon_constrained_tokens_total", "counter", "Structured output: tokens drawn under an active grammar",
         static_cast<double>(s.constrained_tokens));
  metric(&out, "tachyon_constraint_masks_total", "counter",
         "Structured output: full token masks needed (the unconstrained draw was refused)",
         static_cast<double>(s.constraint_masks));
  metric(&out, "tachyon_constraint_mask_cache_hits_total", "counter",
         "Structured output: masks served from a cache (by recognizer state)", static_cast<double>(s.constraint_mask_cache_hits));
  metric(&out, "tachyon_constraint_budget_restricts_total", "counter",
         "Structured output: draws the token budget restricted (so that a cut output still completes)",
         static_cast<double>(s.constraint_budget_restricts));
  metric(&out, "tachyon_constraint_seconds_total", "counter",
         "Structured output: time in the constraint stage (checks, masks, redraws)", s.constraint_ms / 1000.0);
  if (!s.spec_step_cost.empty()) {
    header(&out, "tachyon_spec_step_cost", "gauge",
           "Measured time of a step of N tokens of one sequence / a one-token step (the verify-cost curve)");
    for (size_t i = 0; i < s.spec_step_cost.size(); ++i)
      out += "tachyon_spec_step_cost{tokens=\"" + std::to_string(i + 1) + "\"} " + num(s.spec_step_cost[i]) + "\n";
  }
  return out;
}

}  // namespace tachyon::server
