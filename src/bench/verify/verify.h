// tachyon bench verify: which reference GGUF file (if any) does an endpoint serve?
//
// A fixed, seeded probe set (natural-language snippets and random-word strings) is sent
// greedily (temperature 0) to the endpoint, asking for logprobs with the top-5
// alternatives. Each reference file then runs the same prompts locally (the tachyon
// model, tokenizer and chat template), teacher-forced on the endpoint's returned tokens,
// and the local log-softmax is compared with the endpoint's reported logprobs.
//
// Distance of one candidate (lower is closer):
//   mean |local - endpoint| logprob over every compared (position, token) pair (the
//   chosen token and each top alternative whose text maps to a local token)
//   + the fraction of compared positions where the local argmax is not the endpoint's
//     greedy token
//   + the fraction of the endpoint's tokens that could not be compared (a piece that does
//     not map to a local token stops that probe)
//   = infinity when fewer than half the endpoint's tokens could be compared (another
//     tokenizer: "mismatch").
// Without logprobs (the endpoint rejects or ignores them) the returned text is compared
// instead: distance = 1 - the fraction of greedy steps where the local argmax's piece
// continues the text, plus the uncompared fraction as above (mode "text").
//
// Verdict: the closest candidate "match"es when its distance is <= kMatchMaxDistance and
// less than kMatchRatio x the second closest (or it is the only finite one); every other
// candidate is "no match" ("mismatch" when its tokenizer does not fit). When the closest
// two are too close to call, both are "ambiguous" and nothing matches.
//
// This module is the only part of bench that runs the engine: it links the model,
// tokenizer and chat modules; the load generator (tachyon_bench) does not.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "bench/runner.h"

namespace tachyon::bench::verify {

inline constexpr double kMatchMaxDistance = 0.5;
inline constexpr double kMatchRatio = 0.5;
inline constexpr double kMinCoverage = 0.5;

struct VerifyConfig {
  EndpointSpec endpoint;  // url, model, api, api_key
  std::vector<std::string> references;
  int n_probes = 8;
  int max_tokens = 16;
  int top_logprobs = 5;
  uint64_t seed = 0;
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

// One token the endpoint generated.
struct RemoteToken {
  std::string piece;  // bytes when the endpoint gave them, else the token text
  bool has_logprob = false;
  double logprob = 0;
  std::vector<std::pair<std::string, double>> top;  // alternatives (text, logprob)
};

struct RemoteProbe {
  std::string text;                 // the generated text
  std::vector<RemoteToken> tokens;  // empty without logprobs
  bool has_logprobs = false;
  int usage_prompt_tokens = -1;
  std::string finish_reason;
};

struct RemoteResult {
  std::vector<RemoteProbe> probes;
  bool logprobs = false;  // every probe came with per-token logprobs
  std::string note;       // e.g. why logprobs are missing
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
  int n_prompt_token_mismatch = 0;  // probes whose usage.prompt_tokens != local count
  std::string verdict;              // match | no match | ambiguous | mismatch | error
};

// Scores one reference file against the endpoint's answers (loads the model).
CandidateResult score_reference(const VerifyConfig& cfg, const std::vector<Probe>& probes, const RemoteResult& remote,
                                const std::string& path);

// Sets every candidate's verdict; returns the index of the match or -1.
int decide(std::vector<CandidateResult>& cands);

struct VerifyReport {
  std::string mode;  // "logprobs" | "text"
  std::string note;
  std::vector<CandidateResult> candidates;
  int match = -1;
};

Result<VerifyReport> run_verify(const VerifyConfig& cfg);

std::string report_text(const VerifyConfig& cfg, const VerifyReport& r);
nlohmann::json report_json(const VerifyConfig& cfg, const VerifyReport& r);

}  // namespace tachyon::bench::verify
