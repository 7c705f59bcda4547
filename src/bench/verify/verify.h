// tachyon bench verify: which reference GGUF file (if any) does an endpoint serve?
//
// A fixed, seeded probe set (natural-language snippets and random-word strings) is sent
// greedily (temperature 0) to the endpoint, asking for logprobs with the top-5
// alternatives. Each reference file then runs the same prompts locally (the tachyon
// model, tokenizer and chat template), teacher-forced on the endpoint's returned tokens,
// and the local log-softmax is compared with the endpoint's reported logprobs.
//
// Mapping the endpoint's tokens to the local vocabulary (TokenMap), best evidence first:
//   id     the endpoint's token id (llama-server sends "id"), accepted when the local
//          token with that id renders as the endpoint's bytes/text (else the vocabularies
//          differ and the id means nothing here);
//   bytes  OpenAI's "bytes" (the token's raw bytes): the local tokens with exactly those
//          bytes;
//   text   the token text (the legacy completions shape has nothing else): the local
//          tokens that render as it, raw or as a JSON encoder sends invalid UTF-8
//          (U+FFFD). A text that fits several tokens (every partial-UTF-8 byte token is
//          "\ufffd") is ambiguous: such a token is followed (the best local one) but its
//          logprob is not compared, and an ambiguous alternative is skipped.
// An entry that maps to no single token but whose bytes several tokens spell (llama-server
// reports one entry per complete UTF-8 character, merging byte tokens) is followed token
// by token (each the best local token that the remaining bytes start with, the last the
// endpoint's id when it fits); its logprobs are not compared ("merged"). A token that maps
// to nothing stops its probe (the rest is "uncovered").
//
// Numerics of the local replay: a tachyon endpoint computes with tachyon's numerics (the
// prompt in one step, llama.cpp's attention bits below 128 keys and f32 beyond), llama.cpp
// with its own (flash attention in f16 at every length, per-ubatch kernels). The endpoint
// is identified by GET /v1/models ("owned_by": "tachyon" / "llamacpp"); an unknown server
// is replayed both ways and each candidate keeps its closer result. For llama-server the
// requests carry "cache_prompt": false: a prompt-cache hit re-evaluates the prompt's last
// token in a one-token batch, whose rounding differs from the batch the first run used.
//
// Evidence per candidate: mean |local - endpoint| logprob over the compared (position,
// token) pairs (the chosen token and each unambiguous alternative), the fraction of
// positions where the local argmax is the endpoint's greedy token, and coverage (the
// fraction of the endpoint's tokens mapped). Distance = the mean |dlogprob| (logprobs
// mode), what actually differs between quantizations of one model: argmax agreement and
// coverage are ~equal for files that share a vocabulary and only compress the gap. With
// no comparable logprob, distance = 1 - argmax agreement. A candidate whose tokenizer maps
// fewer than kMinCoverage of the endpoint's tokens is a "mismatch" (infinite distance).
// Without logprobs (the endpoint rejects or ignores them) the returned text is compared
// instead: distance = 1 - the fraction of greedy steps where the local argmax's piece
// continues the text (mode "text").
//
// Verdict: the closest candidate "match"es when its distance is <= kMatchMaxDistance and
// less than kMatchRatio x the second closest (or it is the only finite one); every other
// candidate is "no match" ("mismatch" when its tokenizer does not fit). When the closest
// two are too close to call, both are "ambiguous" and nothing matches. The report says
// which evidence decided (VerifyReport::decided_by).
//
// This module is the only part of bench that runs the engine: it links the model,
// tokenizer and chat modules; the load generator (tachyon_bench) does not.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "bench/runner.h"

namespace tachyon::bench::verify {

// Mean |dlogprob| of the served file: ~0 against tachyon serve, ~0.01 against llama.cpp's
// numerics; another quantization of the same model 0.02-0.6, another model ~1 and more.
inline constexpr double kMatchMaxDistance = 0.25;
inline constexpr double kMatchRatio = 0.5;
inline constexpr double kMinCoverage = 0.5;

struct VerifyConfig {
  EndpointSpec endpoint;  // url, model, api, api_key
  std::vector<std::string> references;
  int n_probes = 8;
  int max_tokens = 16;
  int top_logprobs = 5;
  uint64_t seed = 0;
  std::string numerics = "auto";  // auto | tachyon | llama (see above)
  nlohmann::json extra_body;      // merged into every request (an object, or null)
  double timeout_ms = 60'000;  // per request
  int threads = 2;             // local compute threads
  std::function<void(const std::string&)> log;  // progress lines (may be empty)
};

// One prompt of the probe set.
struct Probe {
  std::string kind;  // "text" | "random"
  std::string prompt;
};
// Deterministic for (n, seed); 20-80 words per prompt.
std::vector<Probe> make_probes(int n, uint64_t seed);

// One alternative of a generated token.
struct RemoteAlt {
  std::string piece;  // bytes when the endpoint gave them, else the token text
  bool is_bytes = false;
  int64_t id = -1;  // the endpoint's token id, when it gave one
  double logprob = 0;
};

// One token the endpoint generated.
struct RemoteToken {
  std::string piece;  // bytes when the endpoint gave them, else the token text
  bool is_bytes = false;
  int64_t id = -1;  // the endpoint's token id, when it gave one
  bool has_logprob = false;
  double logprob = 0;
  std::vector<RemoteAlt> top;  // alternatives
};

struct RemoteProbe {
  std::string text;                 // the generated text
  std::vector<RemoteToken> tokens;  // empty without logprobs
  bool has_logprobs = false;
  int usage_prompt_tokens = -1;
  std::string finish_reason;
};

struct RemoteResult {
  std::string server;  // "tachyon" | "llama.cpp" | "" (not recognized), from GET /v1/models
  std::vector<RemoteProbe> probes;
  bool logprobs = false;  // every probe came with per-token logprobs
  std::string note;       // e.g. why logprobs are missing
};

// Parses one non-streamed answer (chat or completions): text, usage, and logprobs in
// either shape: `content` [{token, logprob, bytes, id?, top_logprobs: [...]}] (chat,
// llama-server, vLLM chat) or legacy {tokens, token_logprobs, top_logprobs: [{text: lp}]}
// (OpenAI/vLLM completions). False + *why when it is not an OpenAI completion.
bool parse_answer(Api api, const std::string& body, RemoteProbe* p, std::string* why);

// The endpoint's tokens -> local token ids (see the header comment for the rules).
class TokenMap {
 public:
  enum class Via { kNone, kId, kBytes, kText };
  struct Mapped {
    Via via = Via::kNone;
    std::vector<int32_t> ids;  // one: unambiguous; several: any of them renders so
    bool unique() const { return ids.size() == 1; }
  };
  // Local tokens whose bytes `rest` starts with (shortest first).
  std::vector<int32_t> prefixes(std::string_view rest) const;
  // raw[id]: the token's bytes (token_to_piece, not special); special[id]: as rendered
  // with special tokens shown (may equal raw).
  TokenMap(std::vector<std::string> raw, const std::vector<std::string>& special);
  Mapped map(const std::string& piece, bool is_bytes, int64_t id) const;
  const std::string& piece(int32_t id) const { return raw_[id]; }
  int32_t size() const { return static_cast<int32_t>(raw_.size()); }

 private:
  static std::string sanitized(const std::string& s);
  static void add(std::unordered_map<std::string, std::vector<int32_t>>& m, const std::string& key, int32_t id);
  std::vector<std::string> raw_, special_;
  std::unordered_map<std::string, std::vector<int32_t>> by_bytes_;  // raw and special renderings
  std::unordered_map<std::string, std::vector<int32_t>> by_text_;   // those and their sanitized forms
  std::unordered_map<std::string, std::vector<int32_t>> by_raw_;    // raw bytes only
  size_t max_raw_ = 0;
};

// Sends the probes. Errors (unreachable, HTTP status, not OpenAI JSON) name the endpoint.
Result<RemoteResult> query_endpoint(const VerifyConfig& cfg, const std::vector<Probe>& probes);

struct CandidateResult {
  std::string path;
  std::string error;  // the file could not be loaded
  double distance = std::numeric_limits<double>::infinity();
  double mean_abs_logprob_diff = 0;
  double argmax_agreement = 0;  // fraction of compared positions
  double coverage = 0;          // compared / returned endpoint tokens
  int64_t n_positions = 0;      // compared positions
  int64_t n_pairs = 0;          // compared (position, token) pairs
  int64_t n_remote_tokens = 0;
  int64_t n_by_id = 0, n_by_bytes = 0, n_by_text = 0;  // how the generated tokens were mapped
  int64_t n_ambiguous = 0;      // tokens and alternatives whose text fits several local tokens
  int64_t n_merged = 0;         // entries that spell several local tokens (followed, not compared)
  std::string numerics;         // of the replay that scored: "tachyon" | "llama"
  std::string measure;          // what `distance` is: "logprob" | "argmax" | "text"
  int n_prompt_token_mismatch = 0;  // probes whose usage.prompt_tokens != local count
  std::string verdict;              // match | no match | ambiguous | mismatch | error
};

// Scores one reference file against the endpoint's answers (loads the model).
CandidateResult score_reference(const VerifyConfig& cfg, const std::vector<Probe>& probes, const RemoteResult& remote,
                                const std::string& path);

// The distance of a scored candidate from its totals (sets measure and distance).
void finish_distance(CandidateResult& c, bool logprobs_mode);

// Sets every candidate's verdict; returns the index of the match or -1. *decided_by (may
// be null) says which evidence decided, e.g. "mean |dlogprob| over 640 pairs: a.gguf
// 0.0001 < 0.50 x b.gguf 0.0190".
int decide(std::vector<CandidateResult>& cands, std::string* decided_by = nullptr);

struct VerifyReport {
  std::string mode;  // "logprobs" | "text"
  std::string server;  // RemoteResult::server
  std::string note;
  std::vector<CandidateResult> candidates;
  int match = -1;
  std::string decided_by;
};

Result<VerifyReport> run_verify(const VerifyConfig& cfg);

std::string report_text(const VerifyConfig& cfg, const VerifyReport& r);
nlohmann::json report_json(const VerifyConfig& cfg, const VerifyReport& r);

}  // namespace tachyon::bench::verify
