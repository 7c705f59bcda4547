// The OpenAI side of a benchmark request: the request body for /v1/chat/completions or
// /v1/completions, and a reader that turns the streamed response into a RequestRecord.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/record.h"
#include "bench/sse.h"

namespace tachyon::tok {
class Tokenizer;
}

namespace tachyon::bench {

enum class Api { kChat, kCompletions };

struct Message {
  std::string role;  // system | user | assistant
  std::string content;
};

// What to ask the endpoint for. The prompt is messages (chat) or, for completions, the
// messages flattened by flatten_messages().
struct Prompt {
  std::vector<Message> messages;
  int max_tokens = 128;
};

struct RequestOptions {
  Api api = Api::kChat;
  std::string model;
  bool ignore_eos = false;
  double temperature = -1;     // < 0: not sent (server default)
  bool include_usage = true;   // stream_options.include_usage
  nlohmann::json extra_body;   // merged into the body last (object or null)
};

std::string flatten_messages(const std::vector<Message>& messages);
std::string api_path(Api api);  // "/v1/chat/completions" | "/v1/completions" (base path prepended by caller)
std::string build_request_body(const RequestOptions& o, const Prompt& p);

// Consumes one streamed response. Call on_head, then feed() with body bytes as they
// arrive, then finish() with the transport's verdict; the record holds the result.
class ResponseReader {
 public:
  ResponseReader(Api api, RequestRecord* rec) : api_(api), rec_(rec) {}
  void on_head(std::string_view content_type);
  // Returns false when the response proved not to be an OpenAI stream or reported an
  // error: the caller should abort the transfer.
  bool feed(std::string_view bytes, int64_t t_us);
  void finish(const HttpError& transport, int64_t t_us);

 private:
  bool on_event(std::string_view data, int64_t t_us);
  void fail(ErrorKind kind, std::string msg);
  Api api_;
  RequestRecord* rec_;
  SseParser sse_;
  bool json_body_ = false;  // Content-Type said JSON: the server did not stream
  std::string body_;        // the JSON body in that case (capped)
  bool failed_ = false;
};

// Fills n_output_tokens_client, n_output_tokens, token_source and every chunk's n_tokens:
// exact logprobs counts when every chunk had them; else estimates (the tokenizer's count
// of each chunk's text, or one per chunk without a tokenizer) that are then scaled so that
// they sum to the server's usage.completion_tokens when it is known (largest remainder,
// weights: tokenizer counts, or chunk text bytes without a tokenizer; each chunk keeps at
// least one token when there are enough). tokenizer may be null.
void finalize_tokens(RequestRecord& rec, const tok::Tokenizer* tokenizer);

}  // namespace tachyon::bench
