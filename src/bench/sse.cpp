#include "bench/sse.h"

#include <cstring>

namespace tachyon::bench {

bool SseParser::feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event) {
  size_t i = 0;
  if (skip_lf_ && !bytes.empty()) {
    if (bytes[0] == '\n') i = 1;
    skip_lf_ = false;
  }
  while (i < bytes.size()) {
    // Find the next line terminator (CR or LF).
    size_t j = i;
    const char* p = bytes.data();
    while (j < bytes.size() && p[j] != '\n' && p[j] != '\r') ++j;
    if (j == bytes.size()) {
      partial_.append(bytes.substr(i));
      return true;
    }
    bool ok;
    if (partial_.empty()) {
      ok = line(bytes.substr(i, j - i), on_event);
    } else {
      partial_.append(bytes.substr(i, j - i));
      std::string l = std::move(partial_);
      partial_.clear();
      ok = line(l, on_event);
    }
    if (p[j] == '\r') {
      if (j + 1 < bytes.size()) {
        if (p[j + 1] == '\n') ++j;
      } else {
        skip_lf_ = true;
      }
    }
    i = j + 1;
    if (!ok) return false;
  }
  return true;
}

bool SseParser::line(std::string_view l, const std::function<bool(const SseEvent&)>& on_event) {
  if (l.empty()) return dispatch(on_event);
  if (l[0] == ':') return true;  // comment / keep-alive
  const size_t colon = l.find(':');
  std::string_view field = l.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view{} : l.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id" || field == "retry") {
    // not used by OpenAI streams
  } else if (junk_.size() < 4096) {
    junk_.append(l.substr(0, 4096 - junk_.size()));
    junk_.push_back('\n');
  }
  return true;
}

bool SseParser::dispatch(const std::function<bool(const SseEvent&)>& on_event) {
  if (!has_data_) {
    event_.clear();
    return true;
  }
  ++n_events_;
  const bool ok = on_event(SseEvent{event_, data_});
  data_.clear();
  event_.clear();
  has_data_ = false;
  return ok;
}

bool SseParser::finish(const std::function<bool(const SseEvent&)>& on_event) {
  if (!partial_.empty()) {
    std::string l = std::move(partial_);
    partial_.clear();
    if (!line(l, on_event)) return false;
  }
  return dispatch(on_event);
}

}  // namespace tachyon::bench
