// The real Backend: engine::Engine. Header-only so that users of the server library
// that bring their own Backend (tests) do not link the engine's Engine class.
#pragma once
#include <ctime>
#include <filesystem>
#include <memory>

#include "engine/engine.h"
#include "model/model.h"
#include "server/backend.h"

namespace tachyon::server {

class EngineBackend final : public Backend {
 public:
  explicit EngineBackend(engine::Engine& e) : e_(e) {}
  Result<std::shared_ptr<engine::RequestHandle>> submit(engine::GenerateRequest req) override {
    return e_.submit(std::move(req));
  }
  engine::EngineStats stats(bool take_latencies) override { return e_.stats(take_latencies); }
  void shutdown() override { e_.shutdown(); }
  void set_notify_dispatcher(std::function<void(engine::NotifyBatch&&)> dispatch) override {
    e_.set_notify_dispatcher(std::move(dispatch));
  }
  void import_kv(std::string_view bytes, std::function<void(Result<engine::KvImportResult>)> done) override {
    e_.import_kv(bytes, std::move(done));
  }

 private:
  engine::Engine& e_;
};

// llama.cpp's name for general.file_type (llama_ftype), e.g. 15 -> "Q4_K_M".
inline std::string gguf_file_type_name(int64_t ft) {
  switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 19: return "IQ2_XXS";
    case 20: return "IQ2_XS";
    case 21: return "Q2_K_S";
    case 22: return "IQ3_XS";
    case 23: return "IQ3_XXS";
    case 24: return "IQ1_S";
    case 25: return "IQ4_NL";
    case 26: return "IQ3_S";
    case 27: return "IQ3_M";
    case 28: return "IQ2_S";
    case 29: return "IQ2_M";
    case 30: return "IQ4_XS";
    case 31: return "IQ1_M";
    case 32: return "BF16";
    case 36: return "TQ1_0";
    case 37: return "TQ2_0";
    default: return "unknown";
  }
}

// What /v1/models reports about the engine's model.
inline ModelInfo model_info_from_engine(engine::Engine& e, const std::string& path, const std::string& name) {
  const model::Model& m = e.model();
  ModelInfo info;
  info.path = path;
  info.id = name.empty() ? std::filesystem::path(path).stem().string() : name;  // "mini-qwen2-Q8_0"
  info.arch = m.hparams().arch_name;
  info.weight_type = m.weight_type();
  auto ft = m.file().get_int("general.file_type");
  info.quantization = ft ? gguf_file_type_name(*ft) : info.weight_type;
  info.n_ctx = e.n_ctx();
  info.n_ctx_train = m.hparams().n_ctx_train;
  info.n_vocab = m.hparams().n_vocab;
  info.size_bytes = m.file().file_size();
  info.created = static_cast<int64_t>(std::time(nullptr));
  return info;
}

}  // namespace tachyon::server
