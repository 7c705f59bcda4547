// Per-request output text: incremental detokenization (never splits a UTF-8 character)
// and stop strings (the text never contains them; a suffix that could begin one is held
// back until it is decided).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tachyon::engine {

class TextStream {
 public:
  // exact_bytes: the text is the tokens' bytes with no clean-up of spaces (constrained output).
  TextStream(const tok::Tokenizer& tokenizer, std::vector<std::string> stop, bool exact_bytes = false);

  // Adds one generated token; returns the text that is now safe to emit. Sets *hit_stop
  // when a stop string completed (the returned text then ends right before it, and the
  // request must finish).
  std::string push(int32_t token, bool* hit_stop);
  // Text still held back, released at the end (empty after a stop string).
  std::string finish(bool flush_held);

  // The stop string that ended the text ("" if none did).
  const std::string& matched_stop() const { return matched_stop_; }

  // Emits everything before a stop string / the holdback suffix of `pending_`.
  static size_t holdback(const std::string& text, const std::vector<std::string>& stop);

 private:
  tok::StreamDecoder decoder_;
  std::vector<std::string> stop_;
  std::string pending_;
  bool stopped_ = false;
  std::string matched_stop_;
};

}  // namespace tachyon::engine
