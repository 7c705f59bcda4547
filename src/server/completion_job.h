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

#include "server/http.h"
#include "server/openai.h"

namespace tachyon::tok {
class Tokenizer;
}

namespace tachyon::server {

class Server;

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
  };

  CompletionJob(Server& server, std::shared_ptr<Exchange> ex, CompletionParams params, std::vector<Choice> choices);
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
  std::string finish_reason(const engine::Event& ev) const;

  Server& server_;
  const tok::Tokenizer& tok_;
  std::shared_ptr<Exchange> ex_;
  CompletionParams params_;
  std::vector<Choice> choices_;
  ResponseMeta meta_;
  std::shared_ptr<Notifier> notifier_;
  std::vector<engine::Event> events_;  // scratch for drain()
  bool finished_ = false;
};

}  // namespace tachyon::server
