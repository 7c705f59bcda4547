// One OpenAI completion request in flight: its engine requests (one per choice), and the
// response it builds from their events, streamed (SSE) or whole.
//
// Lives on its connection's strand: created by the route handler, advanced by pump()
// whenever the engine posts a notification, kept alive by the Exchange until the
// response is complete or the client goes away (then every engine request is cancelled).
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "chat/tool_calls.h"
#include "server/anthropic_api.h"
#include "server/http.h"
#include "server/openai.h"
#include "server/responses_api.h"

namespace tachyon::tok {
class Tokenizer;
}

namespace tachyon::server {

class Server;

// The API a job answers in. Every API is one internal chat request; only the response's
// shape differs (Anthropic and Responses: one choice).
enum class Api { kOpenAI, kAnthropic, kResponses };

struct JobOptions {
  Api api = Api::kOpenAI;
  std::vector<std::string> warnings;  // structured output: keywords loosened etc.
  // chat: split the output into content, reasoning and tool calls (when the request has
  // tools or the template reasons); off: all text is content
  bool parse_output = false;
  chat::ToolFamily family = chat::ToolFamily::kNone;
  chat::ReasoningFormat reasoning;
  bool tools_enabled = false;
  bool stream_call_args = false;  // calls are grammar-constrained: stream their arguments early
  int keep_alive_ms = 10'000;     // streams: a keep-alive after this much silence (0: never)
  ojson request_echo;  // Responses: the request fields echoed in the response object
};

class CompletionJob : public ExchangeOwner, public std::enable_shared_from_this<CompletionJob> {
 public:
  struct Choice {
    std::shared_ptr<engine::RequestHandle> handle;
    int index = 0;         // in the response
    int prompt_index = 0;  // which prompt (completions with several prompts)
    int prompt_tokens = 0; // as submitted
    std::string text;      // non-stream: the whole text; stream: length only matters
    size_t text_bytes = 0; // bytes generated so far (text_offset of completions logprobs)
    ojson chat_logprobs = ojson::array();
    CompletionLogprobs completion_logprobs;
    bool done = false;
    engine::Event final;   // the kFinish event
    std::unique_ptr<chat::OutputParser> parser;  // JobOptions::parse_output
    int tool_calls = 0;    // tool calls streamed so far
  };

  CompletionJob(Server& server, std::shared_ptr<Exchange> ex, CompletionParams params, std::vector<Choice> choices,
                JobOptions opts = {});
  ~CompletionJob() override;

  // Installs the notify callbacks, sends stream headers, and drains what is pending.
  void start();
  void on_client_gone() override;

 private:
  struct Notifier;
  void pump();
  void on_tokens(Choice& c, const std::vector<engine::Event>& evs, size_t begin, size_t end);
  void on_finish(Choice& c, const engine::Event& ev);
  void finish();
  Usage usage() const;
  std::string finish_reason(const Choice& c) const;
  // Streams one choice's output pieces in the job's API (logprobs ride on the first chunk).
  void emit(Choice& c, const std::vector<chat::OutputDelta>& deltas, ojson logprobs);
  TurnOutput turn_output(const Choice& c) const;
  void respond_error(int status, const std::string& message);
  // Streams: while a long prompt prefills, a keep-alive after each JobOptions::keep_alive_ms
  // of silence (Anthropic: a ping event; others: an SSE comment) so that proxies and
  // clients with idle timeouts do not drop the connection.
  void schedule_keep_alive();

  Server& server_;
  const tok::Tokenizer& tok_;
  std::shared_ptr<Exchange> ex_;
  CompletionParams params_;
  std::vector<Choice> choices_;
  JobOptions opts_;
  ResponseMeta meta_;
  std::unique_ptr<AnthropicStream> anthropic_;
  std::unique_ptr<ResponsesStream> responses_;
  std::shared_ptr<Notifier> notifier_;
  std::vector<engine::Event> events_;  // scratch for drain()
  bool finished_ = false;
  std::unique_ptr<net::steady_timer> keep_alive_;
  bool wrote_since_tick_ = false;
};

}  // namespace tachyon::server
