// The endpoint side of bench verify: the probe set and the greedy, logprobs-carrying
// requests (non-streaming, one at a time: the probe set is small and order-independent).
#include <boost/asio/io_context.hpp>
#include <cmath>

#include "bench/verify/verify.h"

namespace tachyon::bench::verify {

namespace {

using json = nlohmann::json;

// splitmix64: a tiny portable PRNG, so that the probe set is the same on every platform.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<uint64_t>(n)); }
};

const char* const kSentences[] = {
    "The river had been rising for three days, and the people of the valley moved their animals to higher ground.",
    "In the morning the market opened early, and the smell of fresh bread drifted through the narrow streets.",
    "She opened the old notebook and found a list of names, dates and places she had never heard of.",
    "A good scientific experiment changes one thing at a time and measures everything else carefully.",
    "The train was late again, so he sat on the bench and watched the pigeons fight over a crust.",
    "Computers store numbers in binary, using only the digits zero and one to represent every value.",
    "When the storm finally passed, the sky turned a pale shade of green and the birds began to sing.",
    "The committee met on Tuesday to discuss the budget, but no decision was reached before midnight.",
    "Mountains form over millions of years as plates of the earth's crust push against each other.",
    "He always kept a small knife, a length of rope and a box of matches in the pocket of his coat.",
    "Learning a new language is easier when you read simple stories and listen to people speak it.",
    "The recipe calls for two cups of flour, one egg, a pinch of salt and a spoonful of honey.",
};

const char* const kWords[] = {
    "apple",  "stone",   "window", "quickly", "blue",    "seven",  "garden", "under",   "silver", "engine",
    "paper",  "river",   "cold",   "happy",   "between", "orange", "music",  "forest",  "lamp",   "thirty",
    "north",  "bridge",  "slowly", "yellow",  "teacher", "salt",   "mirror", "whisper", "cloud",  "iron",
    "letter", "morning", "green",  "ladder",  "honest",  "door",   "seven",  "storm",   "number", "candle",
};

template <size_t N>
int count_of(const char* const (&)[N]) {
  return static_cast<int>(N);
}

int word_count(const std::string& s) {
  int n = 0;
  bool in = false;
  for (char c : s) {
    const bool sp = c == ' ';
    if (!sp && !in) ++n;
    in = !sp;
  }
  return n;
}

// The token's bytes when the entry has a valid "bytes" array, else its text.
std::string piece_from(const json& entry, const char* text_key, bool* is_bytes) {
  *is_bytes = false;
  if (const auto b = entry.find("bytes"); b != entry.end() && b->is_array() && !b->empty()) {
    std::string s;
    bool ok = true;
    for (const auto& v : *b) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 255) {
        ok = false;
        break;
      }
      s.push_back(static_cast<char>(v.get<int>()));
    }
    if (ok) {
      *is_bytes = true;
      return s;
    }
  }
  const auto t = entry.find(text_key);
  return t != entry.end() && t->is_string() ? t->get<std::string>() : std::string();
}

int64_t id_from(const json& entry) {
  const auto i = entry.find("id");
  return i != entry.end() && i->is_number_integer() && i->get<int64_t>() >= 0 ? i->get<int64_t>() : -1;
}

double logprob_of(const json& v, bool* ok) {
  *ok = v.is_number();
  return *ok ? v.get<double>() : 0.0;
}

// logprobs.content: [{token, logprob, bytes, id?, top_logprobs: [{token, logprob, bytes, id?}]}]
// (chat; llama-server's completions too).
bool parse_content_logprobs(const json& content, RemoteProbe* p) {
  if (!content.is_array()) return false;
  for (const auto& e : content) {
    if (!e.is_object()) return false;
    RemoteToken t;
    t.piece = piece_from(e, "token", &t.is_bytes);
    t.id = id_from(e);
    t.logprob = logprob_of(e.value("logprob", json()), &t.has_logprob);
    if (const auto tl = e.find("top_logprobs"); tl != e.end() && tl->is_array()) {
      for (const auto& a : *tl) {
        if (!a.is_object()) continue;
        bool ok = false;
        RemoteAlt alt;
        alt.logprob = logprob_of(a.value("logprob", json()), &ok);
        if (!ok) continue;
        alt.piece = piece_from(a, "token", &alt.is_bytes);
        alt.id = id_from(a);
        t.top.push_back(std::move(alt));
      }
    }
    p->tokens.push_back(std::move(t));
  }
  return true;
}

// Legacy completions: {tokens: [...], token_logprobs: [...], top_logprobs: [{text: lp}]}.
bool parse_legacy_logprobs(const json& lp, RemoteProbe* p) {
  const auto toks = lp.find("tokens");
  const auto lps = lp.find("token_logprobs");
  if (toks == lp.end() || lps == lp.end() || !toks->is_array() || !lps->is_array() || toks->size() != lps->size())
    return false;
  const auto tops = lp.find("top_logprobs");
  for (size_t i = 0; i < toks->size(); ++i) {
    RemoteToken t;
    if (!(*toks)[i].is_string()) return false;
    t.piece = (*toks)[i].get<std::string>();
    t.logprob = logprob_of((*lps)[i], &t.has_logprob);
    if (tops != lp.end() && tops->is_array() && i < tops->size() && (*tops)[i].is_object()) {
      for (const auto& [k, v] : (*tops)[i].items()) {
        RemoteAlt alt;
        bool ok = false;
        alt.logprob = logprob_of(v, &ok);
        alt.piece = k;
        if (ok) t.top.push_back(std::move(alt));
      }
    }
    p->tokens.push_back(std::move(t));
  }
  return true;
}

struct HttpAnswer {
  HttpError err;
  std::string body;
};

HttpAnswer http(const VerifyConfig& cfg, const char* method, const std::string& path, const std::string& body) {
  boost::asio::io_context io;
  ClientConfig cc;
  cc.tls = cfg.endpoint.tls;
  HttpClient client(io, cc);
  HttpRequest req;
  req.method = method;
  req.target = cfg.endpoint.url.target(path);
  req.timeout_ms = cfg.timeout_ms;
  req.body = body;
  if (!body.empty()) req.headers.push_back({"Content-Type", "application/json"});
  if (!cfg.endpoint.api_key.empty()) req.headers.push_back({"Authorization", "Bearer " + cfg.endpoint.api_key});
  HttpAnswer a;
  StreamHandlers h;
  h.on_data = [&](std::string_view d, int64_t) {
    if (a.body.size() < (16u << 20)) a.body.append(d);
    return true;
  };
  h.on_done = [&](const HttpError& e, int64_t) { a.err = e; };
  client.request(cfg.endpoint.url, std::move(req), std::move(h));
  io.run();
  return a;
}

// The server behind the endpoint, by GET /v1/models' owned_by: "tachyon", "llama.cpp" or "".
std::string identify_server(const VerifyConfig& cfg) {
  HttpAnswer a = http(cfg, "GET", "/v1/models", "");
  if (!a.err.ok()) return "";
  const json j = json::parse(a.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("data") || !j["data"].is_array()) return "";
  for (const auto& m : j["data"]) {
    if (!m.is_object()) continue;
    const std::string owner = m.value("owned_by", std::string());
    if (owner == "tachyon") return "tachyon";
    if (owner == "llamacpp") return "llama.cpp";
  }
  return "";
}

json request_body(const VerifyConfig& cfg, const std::string& server, const Probe& p, bool with_logprobs) {
  json b = {{"max_tokens", cfg.max_tokens}, {"temperature", 0}, {"seed", cfg.seed}, {"stream", false}};
  if (!cfg.endpoint.model.empty()) b["model"] = cfg.endpoint.model;
  if (cfg.endpoint.api == Api::kChat) {
    b["messages"] = json::array({{{"role", "user"}, {"content", p.prompt}}});
    if (with_logprobs) {
      b["logprobs"] = true;
      b["top_logprobs"] = cfg.top_logprobs;
    }
  } else {
    b["prompt"] = p.prompt;
    if (with_logprobs) b["logprobs"] = cfg.top_logprobs;
  }
  // llama-server: evaluate every prompt afresh (a prompt-cache hit changes the rounding).
  if (server == "llama.cpp") b["cache_prompt"] = false;
  if (cfg.extra_body.is_object())
    for (const auto& [k, v] : cfg.extra_body.items()) b[k] = v;
  return b;
}

}  // namespace

bool parse_answer(Api api, const std::string& body, RemoteProbe* p, std::string* why) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *why = "the response is not JSON: '" + body.substr(0, 120) + "'";
    return false;
  }
  const auto ch = j.find("choices");
  if (ch == j.end() || !ch->is_array() || ch->empty() || !(*ch)[0].is_object()) {
    *why = "the response has no 'choices' (not an OpenAI completion): '" + body.substr(0, 120) + "'";
    return false;
  }
  const json& c = (*ch)[0];
  if (api == Api::kChat) {
    const auto m = c.find("message");
    if (m != c.end() && m->is_object() && m->contains("content") && (*m)["content"].is_string())
      p->text = (*m)["content"].get<std::string>();
  } else if (c.contains("text") && c["text"].is_string()) {
    p->text = c["text"].get<std::string>();
  }
  if (c.contains("finish_reason") && c["finish_reason"].is_string()) p->finish_reason = c["finish_reason"];
  if (const auto u = j.find("usage"); u != j.end() && u->is_object() && u->contains("prompt_tokens") &&
                                      (*u)["prompt_tokens"].is_number_integer())
    p->usage_prompt_tokens = (*u)["prompt_tokens"].get<int>();
  if (const auto lp = c.find("logprobs"); lp != c.end() && lp->is_object()) {
    if (const auto ct = lp->find("content"); ct != lp->end())
      p->has_logprobs = parse_content_logprobs(*ct, p);
    else
      p->has_logprobs = parse_legacy_logprobs(*lp, p);
    if (!p->has_logprobs) p->tokens.clear();
  }
  // Logprobs that cover no token of a non-empty answer are no logprobs.
  if (p->has_logprobs && p->tokens.empty() && !p->text.empty()) p->has_logprobs = false;
  return true;
}

std::vector<Probe> make_probes(int n, uint64_t seed) {
  Rng rng{seed * 0x2545f4914f6cdd1dULL + 0x1234567ULL};
  std::vector<Probe> out;
  for (int i = 0; i < n; ++i) {
    Probe p;
    const int target = 20 + rng.below(61);  // words
    if (i % 2 == 0) {
      p.kind = "text";
      int s = rng.below(count_of(kSentences));
      while (word_count(p.prompt) < target) {
        if (!p.prompt.empty()) p.prompt += ' ';
        p.prompt += kSentences[s];
        s = (s + 1 + rng.below(3)) % count_of(kSentences);
      }
    } else {
      p.kind = "random";
      for (int w = 0; w < target; ++w) {
        if (w) p.prompt += ' ';
        p.prompt += kWords[rng.below(count_of(kWords))];
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

Result<RemoteResult> query_endpoint(const VerifyConfig& cfg, const std::vector<Probe>& probes) {
  RemoteResult r;
  r.server = identify_server(cfg);
  if (cfg.log) cfg.log("server: " + (r.server.empty() ? std::string("not recognized") : r.server));
  bool with_logprobs = true;
  const std::string path = api_path(cfg.endpoint.api);
  const std::string where = cfg.endpoint.url.str() + path;
  for (size_t i = 0; i < probes.size(); ++i) {
    HttpAnswer a = http(cfg, "POST", path, request_body(cfg, r.server, probes[i], with_logprobs).dump());
    if (!a.err.ok() && a.err.kind == ErrorKind::kHttpStatus && a.err.http_status == 400 && with_logprobs) {
      // Some endpoints reject logprobs: fall back to comparing the text.
      r.note = "the endpoint rejected logprobs (" + a.err.message.substr(0, 200) + "); comparing greedy text instead";
      if (cfg.log) cfg.log(r.note);
      with_logprobs = false;
      r.probes.clear();
      i = static_cast<size_t>(-1);
      continue;
    }
    if (!a.err.ok())
      return Status(ErrorCode::kInternal, "endpoint " + where + ": " + std::string(error_kind_name(a.err.kind)) + ": " +
                                              a.err.message);
    RemoteProbe p;
    std::string why;
    if (!parse_answer(cfg.endpoint.api, a.body, &p, &why)) return Status(ErrorCode::kInternal, "endpoint " + where + ": " + why);
    r.probes.push_back(std::move(p));
    if (cfg.log)
      cfg.log("probe " + std::to_string(i + 1) + "/" + std::to_string(probes.size()) + ": " +
              std::to_string(r.probes.back().tokens.size()) + " tokens with logprobs, " +
              std::to_string(r.probes.back().text.size()) + " bytes of text");
  }
  r.logprobs = with_logprobs && !r.probes.empty();
  for (const auto& p : r.probes) r.logprobs = r.logprobs && p.has_logprobs;
  if (with_logprobs && !r.logprobs) r.note = "the endpoint returned no logprobs; comparing greedy text instead";
  return r;
}

}  // namespace tachyon::bench::verify
