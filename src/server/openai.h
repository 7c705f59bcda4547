// OpenAI API shapes: request parsing/validation for /v1/chat/completions and
// /v1/completions, and the JSON of responses, stream chunks and errors. Pure functions
// (no I/O, no engine), so they are unit-tested directly.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "sampling/sampler.h"

namespace tachyon::server {

using ojson = nlohmann::ordered_json;

enum class Endpoint { kChat, kCompletions };
enum class ResponseFormat { kText, kJsonObject, kJsonSchema };

// An error as OpenAI returns it: {"error":{"message","type","param","code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};
std::string error_json(const ApiError& e);
// The OpenAI error type for a status (400 invalid_request_error, 401 authentication_error,
// 404 not_found_error, 429 rate_limit_error, 5xx server_error, ...).
std::string error_type_for_status(int status);

struct PromptInput {
  bool is_ids = false;
  std::string text;          // !is_ids
  std::vector<int32_t> ids;  // is_ids (range-checked later, against the vocabulary)
};

// A validated request. Fields the client left out keep OpenAI's defaults.
struct CompletionParams {
  Endpoint endpoint = Endpoint::kChat;
  std::string model;
  ojson messages = ojson::array();  // chat: validated array of objects with string roles
  ojson tools;                      // chat: array, or null for none
  ojson tool_choice;                // chat: as sent (null if absent)
  std::vector<PromptInput> prompts; // completions: one or more
  int n = 1;                        // choices per prompt
  int max_tokens = -1;              // -1: until the context is full
  sampling::SamplingParams sampling;
  bool seed_set = false;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  int logprobs = -1;                // -1: none; else top alternatives per token (0..20)
  bool stream = false;
  bool include_usage = false;
  // "speculative": {"mode": "off|ngram|auto", "max_draft": N} (tachyon extension)
  std::optional<spec::Mode> spec_mode;
  int spec_max = -1;
  // structured output: response_format (chat and completions)
  ResponseFormat format = ResponseFormat::kText;
  ojson json_schema;                // kJsonSchema: the schema as sent
  bool json_schema_strict = false;  // json_schema.strict: unsupported keywords are errors
  bool parallel_tool_calls = true;
  std::string grammar;              // "grammar": GBNF (llama-server's field)
  std::string regex;                // "regex": the output must match it (whole)
};

struct ParseLimits {
  int max_n = 16;                 // n
  int max_prompts = 16;           // completions: prompts per request (times n: choices)
  int max_stop = 16;              // stop strings
  size_t max_stop_bytes = 1024;   // per stop string
  int max_depth = 64;             // JSON nesting
};

// Parses and validates a request body; on failure fills *err (param names the field,
// e.g. "temperature", "messages[1].content") and returns false. Unknown fields are ignored.
bool parse_completion_request(Endpoint ep, std::string_view body, const ParseLimits& limits, CompletionParams* out,
                              ApiError* err);

// Deepest nesting of [ and { outside strings (a cheap guard before parsing).
int json_nesting_depth(std::string_view text);

// ---- responses ----

// Server-Sent Events framing: "data: <json>\n\n" and the final "data: [DONE]\n\n".
std::string sse_data(const ojson& j);
std::string sse_done();
// Compact JSON; invalid UTF-8 (possible in generated text) becomes U+FFFD.
std::string dump_json(const ojson& j);

// Per-request totals over its choices.
struct Usage {
  int prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  int cached_tier[3] = {0, 0, 0};  // cached_tokens by the KV cache tier they came from (l1, l2, l3)
  double queue_ms = 0, prompt_ms = 0, decode_ms = 0;
  int draft_tokens = 0, accepted_tokens = 0, verify_steps = 0;  // speculative decoding
  double constraint_ms = 0;  // structured output: time in the constraint stage
};
ojson usage_json(const Usage& u);
// llama-server's timings object (plus queue_ms and cached_n).
ojson timings_json(const Usage& u);

// Logprob entries. A token's text may be a fragment of a UTF-8 character: "bytes"
// carries the exact bytes, and "id" the token id (llama-server's extension, which lets a
// client such as bench verify map tokens exactly).
ojson chat_logprob_entry(int32_t id, const std::string& piece, float logprob, const std::vector<engine::TopLogprob>& top);

// Completions' logprobs object, built token by token.
struct CompletionLogprobs {
  ojson tokens = ojson::array(), token_logprobs = ojson::array(), top_logprobs = ojson::array(),
        text_offset = ojson::array();
  void add(const std::string& piece, float logprob, const std::vector<engine::TopLogprob>& top, size_t offset,
           bool with_top);
  ojson to_json() const;
  bool empty() const { return tokens.empty(); }
};

// Common response header fields.
struct ResponseMeta {
  std::string id;       // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
};
ojson chat_chunk(const ResponseMeta& m, int index, ojson delta, const ojson& logprobs, const ojson& finish_reason);
ojson completion_chunk(const ResponseMeta& m, int index, const std::string& text, const ojson& logprobs,
                       const ojson& finish_reason);
// The last stream chunk with usage (choices empty), as stream_options.include_usage asks.
ojson usage_chunk(const ResponseMeta& m, Endpoint ep, const Usage& u);

// Clamps -inf (JSON has no infinities) the way vLLM does.
float json_logprob(float lp);

}  // namespace tachyon::server
