#include <chrono>

#include "engine/engine.h"

namespace tachyon::engine {

bool RequestHandle::drain(std::vector<Event>* out) {
  std::lock_guard<std::mutex> lk(mu_);
  if (events_.empty()) return false;
  for (auto& e : events_) out->push_back(std::move(e));
  events_.clear();
  return true;
}

bool RequestHandle::wait_drain(std::vector<Event>* out, int timeout_ms) {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return !events_.empty(); });
  if (events_.empty()) return false;
  for (auto& e : events_) out->push_back(std::move(e));
  events_.clear();
  return true;
}

void RequestHandle::set_notify(std::function<void()> fn) {
  bool pending;
  {
    std::lock_guard<std::mutex> lk(mu_);
    notify_ = std::move(fn);
    pending = !events_.empty();
  }
  if (pending && notify_) notify_();
}

void RequestHandle::push(Event e, NotifyBatch* deferred) {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (e.kind == Event::Kind::kFinish) finished_.store(true, std::memory_order_release);
    events_.push_back(std::move(e));
    fn = notify_;
  }
  cv_.notify_all();
  if (!fn) return;
  if (deferred) deferred->push_back(std::move(fn));
  else fn();
}

}  // namespace tachyon::engine
