// The OpenAI Responses API (POST /v1/responses), stateless, as a conversion: a Responses
// request becomes ONE OpenAI chat-completions request body (then parse_completion_request),
// and the model's output (TurnOutput, or deltas as they arrive) becomes a Response object or
// its SSE event stream. Pure functions and a small state machine: no I/O, no engine, no locks.
//
// Request mapping (fields not listed are ignored, as the chat parser ignores unknown fields):
//   instructions        string -> the first "system" message
//   input               string -> one user message; or an array of items:
//     {type:"message"} or {role, content} without type: role user | assistant | system |
//                       developer; content a string or parts input_text | output_text (their
//                       "text", joined "\n\n") | refusal (its "refusal"); input_image -> 400
//                       "image input is not supported"; input_file / input_audio -> 400 naming
//                       the type. system and developer messages before the first other item
//                       are joined ("\n\n") with instructions into ONE leading system message
//                       (many chat templates accept a system message only in first place);
//                       later ones stay role "system" messages where they are.
//     {type:"function_call", call_id, name, arguments} -> a tool call of the preceding assistant
//                       message if the previous chat message is one (Responses splits a turn's
//                       text and calls into items; chat keeps them in one message), else of a
//                       new assistant message with content ""
//     {type:"function_call_output", call_id, output} -> role "tool" {tool_call_id, content};
//                       output a string or input_text parts. A call_id that names no earlier
//                       function_call -> 400 naming it.
//     {type:"reasoning"}  dropped (its text is a summary or encrypted; the template would drop
//                       earlier turns' reasoning anyway)
//     {type:"item_reference"}, anything else -> 400 naming the type
//   tools               [{type:"function", name, description?, parameters?, strict?}] -> chat
//                       function tools (missing/null parameters -> an empty object schema);
//                       other types (web_search, file_search, custom, local_shell, mcp, ...)
//                       -> 400 naming the type; no name -> 400
//   tool_choice         "none" | "auto" | "required" as is; {type:"function", name} ->
//                       {type:"function", function:{name}}; other objects -> 400
//   max_output_tokens   -> max_tokens (integer >= 1)
//   temperature, top_p  -> the same (ranges checked by the chat parser)
//   parallel_tool_calls -> the same
//   stream              -> stream, with stream_options.include_usage
//   text.format         {type:"text"} -> nothing; {type:"json_object"} -> response_format
//                       json_object; {type:"json_schema", name, schema, strict?, description?}
//                       -> response_format {type:"json_schema", json_schema:{name, schema,
//                       strict, description}}
//   previous_response_id, conversation (non-null) -> 400 "... is not supported: this server is
//                       stateless; send the full input"; background:true, prompt -> 400
//   store, reasoning, include, metadata, truncation, user, service_tier: accepted and ignored.
//
// Errors: 400 with ApiError.param naming the place ("input[3].call_id") and the message
// starting with it. The server sends them with error_json (OpenAI's error shape).
//
// Output: items are a reasoning item {type:"reasoning", summary:[], content:[{type:
// "reasoning_text", text}]}, a message item {type:"message", role:"assistant", content:
// [{type:"output_text", text, annotations:[]}]}, and function_call items {call_id, name,
// arguments}. Item ids are derived from the response id ("resp_X" -> "rs_X_<n>", "msg_X_<n>",
// "fc_X_<n>", n = output_index), so the stream and the final object agree.
// Finish "length" -> status "incomplete", incomplete_details {reason:"max_output_tokens"}, the
// last output item's status "incomplete" (and the stream ends with response.incomplete instead
// of response.completed, as OpenAI's does); anything else -> "completed".
// Usage: {input_tokens, input_tokens_details:{cached_tokens}, output_tokens,
// output_tokens_details:{reasoning_tokens}, total_tokens}.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "server/anthropic_api.h"  // TurnOutput, ToolCallOut
#include "server/openai.h"

namespace tachyon::server {

// Responses request body -> OpenAI chat request body (see the mapping above). On failure
// fills *err (status 400) and returns false; *chat_req is then unspecified.
bool responses_to_chat_request(const ojson& body, ojson* chat_req, ApiError* err);

// The non-streamed Response object. `request_echo` is the request body as received: the
// response echoes its instructions, tools, tool_choice, temperature, top_p, text,
// max_output_tokens, parallel_tool_calls, reasoning and metadata (defaults where absent).
ojson responses_object_json(const std::string& id, const std::string& model, int64_t created, const TurnOutput& out,
                            const ojson& request_echo);

// The SSE stream of one response, built as deltas arrive. Each method returns the bytes to
// send (zero or more events "event: <type>\ndata: <json>\n\n"; every event carries
// sequence_number 0, 1, 2, ...), possibly "".
//
// Sequence: start() once (response.created, response.in_progress); then any mix of text /
// thinking / tool_start / tool_args; then finish() once. At most one output item is open; a
// delta of another kind (or another tool) closes it first:
//   message    output_item.added, content_part.added, output_text.delta*, then on close
//              output_text.done, content_part.done, output_item.done
//   reasoning  output_item.added, content_part.added (reasoning_text), reasoning_text.delta*,
//              then reasoning_text.done, content_part.done, output_item.done
//   function   output_item.added (arguments ""), function_call_arguments.delta*, then
//              function_call_arguments.done, output_item.done
// finish() closes the open item and sends response.completed (or response.incomplete for
// "length") carrying the whole Response object, output in streamed order. A tool_args fragment
// for a tool whose item was already closed is still sent with that item's output_index and
// lands in the final object; one for a tool never started is dropped.
// Not thread-safe; one instance per streamed response. Costs: O(bytes of the delta) per call,
// plus the copy of the accumulated output in finish().
class ResponsesStream {
 public:
  ResponsesStream(std::string id, std::string model, int64_t created, ojson request_echo);

  std::string start();
  std::string text(std::string_view s);      // "" -> nothing
  std::string thinking(std::string_view s);  // "" -> nothing
  // Opens a function_call item for the internal tool-call `index`; `call_id` is the tool
  // call's id (what function_call_output items will name).
  std::string tool_start(int index, const std::string& call_id, const std::string& name);
  std::string tool_args(int index, std::string_view fragment);
  // Calls after finish() (or error()) return "".
  std::string finish(const std::string& finish_reason, int prompt_tokens, int cached_tokens, int completion_tokens,
                     int reasoning_tokens = 0);
  // A failure mid-stream: closes nothing, sends response.failed with error {code, message}.
  std::string error(const ApiError& e);

 private:
  enum class Item { kNone, kMessage, kReasoning, kFunction };
  std::string close_item(const char* status = "completed");
  std::string open_item(Item kind, ojson item);
  std::string event(ojson data);  // sets sequence_number
  ojson envelope(const std::string& status) const;

  std::string id_, model_, suffix_;
  int64_t created_;
  ojson request_echo_;
  ojson output_ = ojson::array();  // items in output order, completed as they close
  Item open_ = Item::kNone;
  std::map<int, int> tool_item_;   // internal tool index -> output_index
  int64_t seq_ = 0;
  bool done_ = false;
};

}  // namespace tachyon::server
