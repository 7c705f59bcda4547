// bench verify: the endpoint's tokens -> local token ids, by id, bytes or text (verify.h).
#include <algorithm>

#include "bench/verify/verify.h"

namespace tachyon::bench::verify {

std::string TokenMap::sanitized(const std::string& s) {
  const std::string dumped = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(dumped).get<std::string>();
}

void TokenMap::add(std::unordered_map<std::string, std::vector<int32_t>>& m, const std::string& key, int32_t id) {
  auto& v = m[key];
  if (std::find(v.begin(), v.end(), id) == v.end()) v.push_back(id);
}

TokenMap::TokenMap(std::vector<std::string> raw, const std::vector<std::string>& special) : raw_(std::move(raw)) {
  special_.resize(raw_.size());
  for (size_t i = 0; i < raw_.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    special_[i] = i < special.size() ? special[i] : raw_[i];
    // Servers render control tokens as "" (not special): "" maps to every such id.
    if (raw_[i].empty()) {
      add(by_bytes_, "", id);
      add(by_text_, "", id);
    }
    if (!raw_[i].empty()) {
      add(by_raw_, raw_[i], id);
      max_raw_ = std::max(max_raw_, raw_[i].size());
    }
    for (const std::string* p : {&raw_[i], &special_[i]}) {
      if (p->empty()) continue;
      add(by_bytes_, *p, id);
      add(by_text_, *p, id);
      const std::string s = sanitized(*p);
      if (s != *p) add(by_text_, s, id);
    }
  }
}

std::vector<int32_t> TokenMap::prefixes(std::string_view rest) const {
  std::vector<int32_t> out;
  for (size_t len = 1; len <= std::min(rest.size(), max_raw_); ++len) {
    auto it = by_raw_.find(std::string(rest.substr(0, len)));
    if (it != by_raw_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

TokenMap::Mapped TokenMap::map(const std::string& piece, bool is_bytes, int64_t id) const {
  Mapped m;
  if (id >= 0 && id < static_cast<int64_t>(raw_.size())) {
    // The id counts only where the local token renders as the endpoint said: another
    // vocabulary numbers its tokens differently.
    const auto i = static_cast<size_t>(id);
    const bool fits = raw_[i] == piece || special_[i] == piece ||
                      (!is_bytes && (sanitized(raw_[i]) == piece || sanitized(special_[i]) == piece));
    if (fits) {
      m.via = Via::kId;
      m.ids = {static_cast<int32_t>(id)};
      return m;
    }
  }
  const auto& index = is_bytes ? by_bytes_ : by_text_;
  if (auto it = index.find(piece); it != index.end()) {
    m.via = is_bytes ? Via::kBytes : Via::kText;
    m.ids = it->second;
  }
  return m;
}

}  // namespace tachyon::bench::verify
