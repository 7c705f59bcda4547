#include "engine/text_stream.h"

#include <algorithm>

namespace tachyon::engine {

namespace {
tok::StreamDecoder::Options decoder_options(bool exact_bytes) {
  tok::StreamDecoder::Options o;
  o.clean_up_spaces = !exact_bytes;
  o.leading = tok::LeadingSpace::kKeep;  // generated text continues the prompt
  o.replace_invalid_utf8 = true;         // JSON/SSE output must be valid UTF-8
  return o;
}
}  // namespace

TextStream::TextStream(const tok::Tokenizer& tokenizer, std::vector<std::string> stop, bool exact_bytes)
    : decoder_(tokenizer, decoder_options(exact_bytes)), stop_(std::move(stop)) {
  stop_.erase(std::remove_if(stop_.begin(), stop_.end(), [](const std::string& s) { return s.empty(); }), stop_.end());
}

size_t TextStream::holdback(const std::string& text, const std::vector<std::string>& stop) {
  // Longest suffix of text that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const auto& s : stop) {
    const size_t max_len = std::min(text.size(), s.size() - 1);
    for (size_t len = max_len; len > keep; --len) {
      if (text.compare(text.size() - len, len, s, 0, len) == 0) {
        keep = len;
        break;
      }
    }
  }
  return keep;
}

std::string TextStream::push(int32_t token, bool* hit_stop) {
  *hit_stop = false;
  if (stopped_) return "";
  pending_ += decoder_.push(token);
  if (stop_.empty()) {
    std::string out;
    out.swap(pending_);
    return out;
  }
  size_t first = std::string::npos;
  for (const auto& s : stop_) {
    const size_t at = pending_.find(s);
    if (at < first) {
      first = at;
      matched_stop_ = s;
    }
  }
  if (first != std::string::npos) {
    std::string out = pending_.substr(0, first);
    pending_.clear();
    stopped_ = true;
    *hit_stop = true;
    return out;
  }
  const size_t keep = holdback(pending_, stop_);
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string TextStream::finish(bool flush_held) {
  if (stopped_ || !flush_held) return "";
  pending_ += decoder_.flush();
  std::string out;
  out.swap(pending_);
  // a stop string may still complete in the flushed bytes
  for (const auto& s : stop_) {
    const size_t p = out.find(s);
    if (p != std::string::npos) {
      out.resize(p);
      matched_stop_ = s;
    }
  }
  return out;
}

}  // namespace tachyon::engine
