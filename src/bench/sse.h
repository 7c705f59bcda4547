// Incremental parser for Server-Sent Events (the WHATWG event-stream format) as OpenAI-
// compatible servers stream them: lines end in LF, CRLF or CR (also split across reads),
// "data:" lines accumulate (joined with '\n'), a blank line dispatches the event, lines
// starting with ':' are comments, "event:" names the event, other fields are ignored.
//
// Single-threaded state; feed() may be called with any split of the byte stream.
// Cost: O(bytes) per feed; memory O(longest pending event).
#pragma once
#include <functional>
#include <string>
#include <string_view>

namespace tachyon::bench {

struct SseEvent {
  std::string_view event;  // "" when the event had no "event:" field
  std::string_view data;   // the data lines joined with '\n'
};

class SseParser {
 public:
  // Calls on_event for every complete event in `bytes` (views valid during the call only).
  // Returns false as soon as on_event returns false (the rest of `bytes` is dropped).
  bool feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event);
  // End of stream: dispatches a final event that lacked its blank line (servers do this;
  // the spec would drop it). Returns on_event's answer, true if there was none.
  bool finish(const std::function<bool(const SseEvent&)>& on_event);
  // Bytes seen that were not part of any recognised SSE line ("<html>..." etc.): a
  // non-SSE body shows up here. Capped at 4 KiB.
  const std::string& unrecognised() const { return junk_; }
  size_t n_events() const { return n_events_; }

 private:
  bool line(std::string_view l, const std::function<bool(const SseEvent&)>& on_event);
  bool dispatch(const std::function<bool(const SseEvent&)>& on_event);
  std::string partial_;  // an incomplete line carried over between feeds
  std::string data_;
  std::string event_;
  bool has_data_ = false;
  bool skip_lf_ = false;  // the previous feed ended in CR: a leading LF belongs to it
  size_t n_events_ = 0;
  std::string junk_;
};

}  // namespace tachyon::bench
