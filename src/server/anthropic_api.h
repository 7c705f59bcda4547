// The Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) as a
// conversion: an Anthropic request becomes ONE OpenAI chat-completions request body, which
// then goes through parse_completion_request like any chat request; the model's output
// (TurnOutput, or deltas as they arrive) becomes an Anthropic message or its SSE stream.
// Pure functions and a small state machine: no I/O, no engine, no locks.
//
// Request mapping (anything not listed is ignored, as the chat parser ignores unknown fields):
//   system              string or [{type:"text", text}] -> one leading "system" message; the
//                       blocks are joined with "\n\n". Canonicalization for the prefix cache: a
//                       block whose text starts with "x-anthropic-billing-header:" (Claude Code
//                       puts a per-call hash there) is removed, and so is such a first line of a
//                       string system prompt; otherwise two calls of one conversation would
//                       differ in their first tokens and share no cached prefix.
//   messages[i]         role "user" | "assistant" | "system" (the SDK's SystemMessageParam: a
//                       system message where it stands); content a string or blocks:
//     text              -> text (consecutive text blocks of one message are joined with "\n\n")
//     image, document   -> 400 "image input is not supported" / "... type 'document' ..."
//     tool_use          (assistant) -> tool_calls[{id, type:"function", function:{name,
//                       arguments: compact JSON of input}}]
//     tool_result       (user) -> a role "tool" message {tool_call_id, content}; content a
//                       string or text blocks (joined "\n\n"); is_error prefixes "Error: ". Its
//                       tool_use_id must name an earlier tool_use, else 400 naming it. Blocks
//                       keep their order: text before/after results becomes user messages there.
//     thinking          (assistant) -> reasoning_content (joined "\n\n"); the template decides
//                       whether to render it. redacted_thinking is dropped (opaque to us).
//     anything else     -> 400 naming the block type
//   An assistant message with tool calls and no text gets content "" (not null: some chat
//   templates cannot trim a null).
//   tools               [{name, description?, input_schema, type?:"custom"}] -> OpenAI function
//                       tools. No name -> 400; another type (bash_20250124, web_search_...)
//                       -> 400 naming the type: those are Anthropic's server-side tools.
//   tool_choice         {type:auto|any|tool(name)|none} -> "auto" | "required" |
//                       {type:"function",function:{name}} | "none";
//                       disable_parallel_tool_use:true -> parallel_tool_calls:false
//   max_tokens          required (Anthropic requires it) for create, integer >= 1; not
//                       required by count_tokens (kCountTokens) and not forwarded there
//   temperature, top_p, top_k -> the same fields (ranges are checked by the chat parser)
//   stop_sequences      -> stop
//   stream              -> stream, with stream_options.include_usage (the usage is needed for
//                       message_delta)
//   output_config.format {type:"json_schema", schema} -> response_format json_schema
//   model               forwarded when a string
//   metadata, thinking, cache_control, service_tier, container: accepted and IGNORED. In
//                       particular `thinking` does not switch reasoning on or off: whether the
//                       model thinks is the model's and the template's business here.
//
// Errors: 400 with ApiError.param naming the place in the chat parser's style
// ("messages[2].content[0].tool_use_id") and the message starting with that place (Anthropic's
// error object has no param field, so the message must carry it).
//
// Usage in the output: Anthropic's input_tokens EXCLUDES tokens read from the cache (total
// input = input_tokens + cache_creation_input_tokens + cache_read_input_tokens), so
// input_tokens = prompt_tokens - cached_tokens and cache_read_input_tokens = cached_tokens;
// cache_creation_input_tokens is always 0 (the prefix cache is not billed).
//
// Finish reasons: "stop" -> end_turn, "length" -> max_tokens, "tool_calls" -> tool_use,
// "stop_sequence" (or "stop" with a non-empty stop_sequence) -> stop_sequence with the matched
// string; anything else -> end_turn.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "server/openai.h"

namespace tachyon::server {

// ---- the internal output of one choice (shared with responses_api.h) ----

struct ToolCallOut {
  std::string id, name;
  std::string arguments;  // JSON text as the model wrote it (may be invalid JSON)
};

struct TurnOutput {
  std::string content, reasoning;
  std::vector<ToolCallOut> tool_calls;
  std::string finish_reason;  // "stop" | "length" | "tool_calls" | "stop_sequence"
  std::string stop_sequence;  // the matched stop string, when finish_reason says so
  int prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
  int reasoning_tokens = 0;   // of completion_tokens; 0 when not counted
};

// ---- requests ----

enum class AnthropicEndpoint { kCreate, kCountTokens };

// Anthropic request body -> OpenAI chat request body (see the mapping above). On failure
// fills *err (status 400) and returns false; *chat_req is then unspecified.
// Cost: one pass over the body, copying the text once.
bool anthropic_to_chat_request(const ojson& body, ojson* chat_req, ApiError* err,
                               AnthropicEndpoint ep = AnthropicEndpoint::kCreate);

// ---- responses ----

// {"type":"error","error":{"type":...,"message":...}}. The type follows the status:
// 400 invalid_request_error, 401 authentication_error, 403 permission_error, 404
// not_found_error, 413 request_too_large, 429 rate_limit_error, 503/529 overloaded_error,
// 504 timeout_error, other 5xx api_error. ApiError.type is not used (it holds OpenAI's names).
std::string anthropic_error_json(const ApiError& e);
std::string anthropic_error_type(int status);

// count_tokens' answer: {"input_tokens": n}.
ojson anthropic_count_tokens_json(int input_tokens);

// Anthropic's stop_reason for an internal finish reason (see the table above).
std::string anthropic_stop_reason(const std::string& finish_reason, const std::string& stop_sequence);

// The non-streamed message: content blocks in the order thinking, text, tool_use (each only
// when non-empty). A tool call's arguments are parsed into `input`; arguments that are not a
// JSON object (the model wrote invalid JSON) become {} -- Anthropic's input must be an object.
ojson anthropic_message_json(const std::string& id, const std::string& model, const TurnOutput& out);

// The SSE stream of one message, built as deltas arrive. Each method returns the bytes to
// send (zero or more events "event: <type>\ndata: <json>\n\n"), possibly "".
//
// Sequence: start() once first; then any mix of ping/text/thinking/tool_start/tool_args; then
// finish() once. Content blocks are numbered 0, 1, ... in the order they open, and at most one
// is open: a delta of another kind (or another tool) closes the open block (content_block_stop)
// before opening its own. Consecutive text() calls extend one text block.
// A tool_args fragment for a tool whose block was already closed is still sent with that
// block's index (the SDK accumulates by index); one for a tool never started is dropped.
// A thinking block starts with signature "" (we have no signature) and gets no signature_delta.
// Not thread-safe; one instance per streamed message. Costs: O(bytes of the delta) per call.
class AnthropicStream {
 public:
  AnthropicStream(std::string id, std::string model);

  // message_start with an empty message; usage as described above (output_tokens 0).
  std::string start(int prompt_tokens, int cached_tokens);
  std::string ping();
  std::string text(std::string_view s);      // "" -> nothing
  std::string thinking(std::string_view s);  // "" -> nothing
  // Opens a tool_use block {id, name, input:{}} for the tool call `index` (the internal
  // tool-call index, not the block index).
  std::string tool_start(int index, const std::string& id, const std::string& name);
  std::string tool_args(int index, std::string_view fragment);  // input_json_delta
  // Closes the open block, then message_delta (stop_reason, stop_sequence, usage.output_tokens)
  // and message_stop. Calls after finish() return "".
  std::string finish(const std::string& finish_reason, const std::string& stop_sequence, int output_tokens);
  // An error mid-stream ("event: error"); the stream is over after it.
  std::string error(const ApiError& e);

  int n_blocks() const { return n_blocks_; }

 private:
  enum class Block { kNone, kText, kThinking, kTool };
  std::string close_block();
  std::string open_block(Block kind, ojson content_block);
  std::string event(const ojson& data);

  std::string id_, model_;
  Block open_ = Block::kNone;
  int open_tool_ = -1;                 // internal tool index of the open tool block
  int n_blocks_ = 0;                   // blocks opened so far; the open one is n_blocks_ - 1
  std::map<int, int> tool_block_;      // internal tool index -> block index
  bool done_ = false;
};

}  // namespace tachyon::server
