// What the HTTP/OpenAI layer needs from an inference engine: submit a request, read
// stats. engine::Engine is the real one (engine_backend.h); tests use fakes that produce
// events on their own thread through real engine::RequestHandle objects.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "engine/engine.h"

namespace tachyon::server {

// Facts about the served model, for /v1/models and validation.
struct ModelInfo {
  std::string id;            // the served name (responses' "model")
  std::string path;          // the GGUF file
  std::string arch;          // general.architecture
  std::string weight_type;   // dominant weight type by bytes, e.g. "Q8_0"
  std::string quantization;  // general.file_type as llama.cpp names it, e.g. "Q4_K_M"
  int n_ctx = 0;             // tokens per sequence the server accepts (prompt + generated)
  int n_ctx_train = 0;
  int n_vocab = 0;
  uint64_t size_bytes = 0;
  int64_t created = 0;       // unix seconds the server started
};

class Backend {
 public:
  virtual ~Backend() = default;
  // As engine::Engine::submit: kInvalidArgument "context_length_exceeded..." or other
  // bad input, kInternal "queue_full" when the queue is full. Thread-safe.
  virtual Result<std::shared_ptr<engine::RequestHandle>> submit(engine::GenerateRequest req) = 0;
  // Thread-safe snapshot; take_latencies moves the TTFT/ITL samples out.
  virtual engine::EngineStats stats(bool take_latencies) = 0;
  // Stops generating; pending requests finish "cancelled". After it, no handle's notify
  // callback runs again. Idempotent.
  virtual void shutdown() = 0;
  // As engine::Engine::set_notify_dispatcher; nullptr restores one-by-one callbacks.
  // Backends that call notify callbacks themselves may ignore it.
  virtual void set_notify_dispatcher(std::function<void(engine::NotifyBatch&&)> dispatch) {}
  // As engine::Engine::import_kv (KV transfer). The default refuses.
  virtual void import_kv(std::string_view bytes, std::function<void(Result<engine::KvImportResult>)> done) {
    done(Status(ErrorCode::kUnsupported, "KV transfer is not supported by this backend"));
  }
};

}  // namespace tachyon::server
