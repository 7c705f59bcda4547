// Response JSON in OpenAI's shapes (field order as OpenAI sends it).
#include <cmath>

#include "server/openai.h"

namespace tachyon::server {

std::string error_type_for_status(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 405: return "invalid_request_error";
    case 408: return "timeout_error";
    case 413: return "invalid_request_error";
    case 429: return "rate_limit_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string error_json(const ApiError& e) {
  ojson j = {{"error",
              {{"message", e.message},
               {"type", e.type.empty() ? error_type_for_status(e.status) : e.type},
               {"param", e.param.empty() ? ojson(nullptr) : ojson(e.param)},
               {"code", e.code.empty() ? ojson(nullptr) : ojson(e.code)}}}};
  return dump_json(j);
}

std::string dump_json(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string sse_data(const ojson& j) { return "data: " + dump_json(j) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

float json_logprob(float lp) { return std::isfinite(lp) ? lp : -9999.0f; }

ojson usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details",
           {{"cached_tokens", u.cached_tokens},
            {"cached_tokens_by_tier", {{"l1", u.cached_tier[0]}, {"l2", u.cached_tier[1]}, {"l3", u.cached_tier[2]}}}}}};
}

ojson timings_json(const Usage& u) {
  const int prompt_n = std::max(0, u.prompt_tokens - u.cached_tokens);  // tokens actually prefilled
  auto r3 = [](double v) { return std::round(v * 1e3) / 1e3; };  // microsecond resolution is plenty
  auto per_token = [&](double ms, int n) { return n > 0 ? r3(ms / n) : 0.0; };
  auto per_second = [&](double ms, int n) { return ms > 0 ? r3(1e3 * n / ms) : 0.0; };
  return {{"cached_n", u.cached_tokens},
          {"prompt_n", prompt_n},
          {"prompt_ms", r3(u.prompt_ms)},
          {"prompt_per_token_ms", per_token(u.prompt_ms, prompt_n)},
          {"prompt_per_second", per_second(u.prompt_ms, prompt_n)},
          {"predicted_n", u.completion_tokens},
          {"predicted_ms", r3(u.decode_ms)},
          {"predicted_per_token_ms", per_token(u.decode_ms, u.completion_tokens)},
          {"predicted_per_second", per_second(u.decode_ms, u.completion_tokens)},
          {"queue_ms", r3(u.queue_ms)},
          {"draft_tokens", u.draft_tokens},
          {"accepted_tokens", u.accepted_tokens},
          {"verify_steps", u.verify_steps},
          {"constraint_ms", r3(u.constraint_ms)}};
}

namespace {
ojson bytes_of(const std::string& s) {
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}
}  // namespace

ojson chat_logprob_entry(int32_t id, const std::string& piece, float logprob, const std::vector<engine::TopLogprob>& top) {
  ojson alts = ojson::array();
  for (const auto& t : top)
    alts.push_back({{"id", t.token}, {"token", t.text}, {"logprob", json_logprob(t.logprob)}, {"bytes", bytes_of(t.text)}});
  return {{"id", id}, {"token", piece}, {"logprob", json_logprob(logprob)}, {"bytes", bytes_of(piece)}, {"top_logprobs", alts}};
}

void CompletionLogprobs::add(const std::string& piece, float logprob, const std::vector<engine::TopLogprob>& top,
                             size_t offset, bool with_top) {
  tokens.push_back(piece);
  token_logprobs.push_back(json_logprob(logprob));
  text_offset.push_back(offset);
  if (with_top) {
    ojson alts = ojson::object();
    for (const auto& t : top)
      if (!alts.contains(t.text)) alts[t.text] = json_logprob(t.logprob);
    top_logprobs.push_back(std::move(alts));
  } else {
    top_logprobs.push_back(nullptr);
  }
}

ojson CompletionLogprobs::to_json() const {
  return {{"tokens", tokens}, {"token_logprobs", token_logprobs}, {"top_logprobs", top_logprobs},
          {"text_offset", text_offset}};
}

ojson chat_chunk(const ResponseMeta& m, int index, ojson delta, const ojson& logprobs, const ojson& finish_reason) {
  ojson choice = {{"index", index}, {"delta", std::move(delta)}, {"logprobs", logprobs}, {"finish_reason", finish_reason}};
  return {{"id", m.id},          {"object", "chat.completion.chunk"}, {"created", m.created},
          {"model", m.model},    {"system_fingerprint", nullptr},     {"choices", ojson::array({std::move(choice)})}};
}

ojson completion_chunk(const ResponseMeta& m, int index, const std::string& text, const ojson& logprobs,
                       const ojson& finish_reason) {
  ojson choice = {{"index", index}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", finish_reason}};
  return {{"id", m.id},       {"object", "text_completion"},   {"created", m.created},
          {"model", m.model}, {"system_fingerprint", nullptr}, {"choices", ojson::array({std::move(choice)})}};
}

ojson usage_chunk(const ResponseMeta& m, Endpoint ep, const Usage& u) {
  return {{"id", m.id},
          {"object", ep == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", m.created},
          {"model", m.model},
          {"system_fingerprint", nullptr},
          {"choices", ojson::array()},
          {"usage", usage_json(u)},
          {"timings", timings_json(u)}};
}

}  // namespace tachyon::server
