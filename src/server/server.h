// The OpenAI-compatible server: routes, API keys, request validation, chat templates,
// tokenization, submission to the engine, streaming of its events, metrics.
//
// Routes (also without the /v1 prefix):
//   POST /v1/chat/completions, POST /v1/completions   stream (SSE) or not
//   GET  /v1/models                                   the served model, with weight type,
//                                                     quantization and context length
//   GET  /health                                      200 {"status":"ok"} (no key needed)
//   GET  /metrics                                     Prometheus text (no key needed)
//   GET  /, /index.html                               the chat page (webui.h; no key needed;
//                                                     404 when ServerConfig::webui is false)
// Status codes: 200; 400 invalid JSON / parameter (param names it) or
// context_length_exceeded (code); 401 missing or wrong API key (code invalid_api_key);
// 404 unknown route; 405 wrong method (Allow header); 408 request not received in
// time; 413 body over the limit; 429 engine queue full (Retry-After); 500 engine error;
// 503 shutting down.
//
// Threading: every handler runs on its connection's strand (I/O threads). The engine
// reaches a request only through RequestHandle's notify callback, which posts onto that
// strand and never blocks. A client that goes away cancels its requests at once.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "server/backend.h"
#include "server/completion_job.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "server/structured.h"
#include "tokenizer/tokenizer.h"

namespace tachyon::server {

// Prefill/decode disaggregation (server/pd.cpp). kPrefill: a generation request with the
// header "X-Tachyon-KV-Export: 1" is prefilled only and answered with the prompt's KV
// pages (application/octet-stream, kv/transfer.h; headers X-Tachyon-KV-Pages and
// X-Tachyon-Prompt-Tokens). kDecode: POST /internal/kv/import adds such bytes to the prefix
// cache (200 {"imported_pages","present_pages","pages"}; 400 when they fail verification).
// Both roles serve ordinary requests as well (a decode worker prefills what was not sent).
enum class ServerRole { kColocated, kPrefill, kDecode };
inline constexpr const char* kKvExportHeader = "X-Tachyon-KV-Export";

struct ServerConfig {
  HttpConfig http;
  std::vector<std::string> api_keys;  // empty: no authentication
  ParseLimits limits;
  int retry_after_s = 1;              // 429's Retry-After
  bool handle_signals = false;        // SIGINT/SIGTERM -> stop()
  int stats_interval_ms = 5'000;      // how often engine latency samples are collected
  bool webui = true;                  // GET / and /index.html serve the chat page (webui.h)
  int sse_keep_alive_ms = 10'000;     // streams: keep-alive after this much silence (0: off)
  ServerRole role = ServerRole::kColocated;
};

// How chat messages become a prompt.
struct ChatFormat {
  chat::ChatTemplate tmpl;
  std::string bos_token, eos_token;  // as the template sees them
};

class CompletionJob;

class Server {
 public:
  // backend and tokenizer must outlive the Server.
  Server(ServerConfig cfg, Backend& backend, const tok::Tokenizer& tokenizer, ChatFormat chat, ModelInfo info);
  ~Server();

  // Binds (port() is valid afterwards). Errors: kInvalidArgument, kIo.
  Status listen();
  int port() const { return http_.port(); }
  // Serves until stop() (or a signal when handle_signals): then closes every connection,
  // cancelling in-flight requests, and calls backend.shutdown(). Blocks.
  void run();
  // Thread-safe, idempotent, never blocks.
  void stop();

  const ModelInfo& model_info() const { return info_; }

 private:
  friend class CompletionJob;
  void handle(const std::shared_ptr<Exchange>& ex);
  void handle_completion(const std::shared_ptr<Exchange>& ex, Endpoint ep);
  // POST /v1/messages (and count_tokens), POST /v1/responses: converted to one chat request
  void handle_anthropic(const std::shared_ptr<Exchange>& ex, bool count_tokens);
  void handle_responses(const std::shared_ptr<Exchange>& ex);
  // Validated request -> prompt(s), structured-output plan, engine requests, the job.
  void run_completion(const std::shared_ptr<Exchange>& ex, CompletionParams p, JobOptions opts);
  // KV transfer (server/pd.cpp): the import route, and the answer to an export request
  void handle_kv_import(const std::shared_ptr<Exchange>& ex);
  void start_kv_export(const std::shared_ptr<Exchange>& ex, std::shared_ptr<engine::RequestHandle> h);
  void handle_models(const std::shared_ptr<Exchange>& ex);
  void handle_metrics(const std::shared_ptr<Exchange>& ex);
  bool check_api_key(const std::shared_ptr<Exchange>& ex);
  void send_error(const std::shared_ptr<Exchange>& ex, const ApiError& e, const HeaderList& extra = {});
  // Prompt tokens for one chat request or one completions prompt; false + *err on bad input.
  bool chat_prompt(const CompletionParams& p, std::vector<int32_t>* ids, ApiError* err,
                   std::string* rendered = nullptr) const;
  bool completion_prompt(const PromptInput& in, std::vector<int32_t>* ids, ApiError* err) const;
  void schedule_stats();

  ServerConfig cfg_;
  Backend& backend_;
  const tok::Tokenizer& tok_;
  ChatFormat chat_;
  chat::ToolFamily tool_family_;  // the template's tool-call format
  GrammarCache grammars_;         // compiled structured-output grammars, by text
  ModelInfo info_;
  ServerMetrics metrics_;
  std::atomic<int> active_requests_{0};
  HttpServer http_;
  std::unique_ptr<net::signal_set> signals_;
  std::unique_ptr<net::steady_timer> stats_timer_;
};

// A fresh request id ("chatcmpl-" / "cmpl-" + 24 hex digits) and a random seed.
std::string make_request_id(const char* prefix);
uint64_t random_seed();

}  // namespace tachyon::server
