// What the load generator records about one request: the raw timestamps and counts from
// which every metric in ../shared/docs/BENCH-METRICS.md is derived (metrics.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bench/http_client.h"

namespace tachyon::bench {

// One SSE chunk that carried at least one token (role-only, empty, finish-only and usage
// chunks are not recorded).
struct ChunkRecord {
  int64_t t_us = 0;      // arrival, steady clock
  int32_t n_tokens = 0;  // tokens in the chunk: exact from logprobs, else 0 until
                         // finalize_tokens() estimates it (see token_source)
  int32_t n_bytes = 0;   // bytes of text the chunk added to output_text
};

// The server's own timings (llama-server's `timings` object; tachyon serve adds queue_ms).
// -1 = not reported.
struct ServerTimings {
  bool present = false;
  double prompt_n = -1, prompt_ms = -1, predicted_n = -1, predicted_ms = -1, queue_ms = -1, cached_n = -1;
};

// How the per-chunk token counts were obtained.
enum class TokenSource {
  kLogprobs,      // one logprobs entry per token: exact
  kTokenizer,     // chunk text re-tokenized with --tokenizer
  kChunks,        // one token per chunk (no tokenizer)
};
const char* token_source_name(TokenSource s);

struct RequestRecord {
  int64_t index = 0;  // dispatch order within its phase
  bool warmup = false;
  int session = -1, turn = 0, group = -1;
  int max_tokens = 0;
  int n_prompt_tokens_client = -1;  // the client's count of the prompt (target or tokenized)

  int64_t t_send_us = 0;  // t0: just before the request is handed to the socket layer
  int64_t t_head_us = 0;  // response headers arrived (0 = never)
  int64_t t_end_us = 0;   // the exchange ended (success or failure)
  std::vector<ChunkRecord> chunks;
  int n_events = 0;  // every SSE event, token-bearing or not

  // Server-reported counts (-1 = absent).
  int usage_prompt_tokens = -1, usage_completion_tokens = -1, usage_cached_tokens = -1;
  ServerTimings timings;
  std::string finish_reason;
  std::string served_model;  // the "model" field of the response chunks
  bool saw_done = false;

  ErrorKind error = ErrorKind::kNone;
  int http_status = 0;
  std::string error_message;

  std::string output_text;  // concatenated streamed text (content, reasoning, completions text)

  // Filled by finalize_tokens():
  TokenSource token_source = TokenSource::kChunks;
  int n_output_tokens_client = -1;  // client-side count (logprobs, tokenizer or chunks)
  int n_output_tokens = 0;          // N used by the metrics: usage if present, else client

  bool ok() const { return error == ErrorKind::kNone; }
};

}  // namespace tachyon::bench
