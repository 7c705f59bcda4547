// Workloads: what each benchmark request asks for. A Workload is an endless, seeded
// generator of sessions (one session = one or more turns; a single-turn request is a
// one-turn session), so the same seed gives the same prompts in the same order.
//
// Prompt lengths: with a tokenizer (--tokenizer FILE.gguf) prompts are cut to exactly the
// target token count of that vocabulary (re-encoding the cut text can differ by a token
// or two at the boundary; the count actually reached is recorded). Without one, prompts
// are random common English words (a fixed list of ~300), and the target is met by the
// approximation of kTokensPerWord tokens per word: measured 1.00 on the 32k llama SPM
// vocabulary (llama-spm32k in ../shared/data/models), where each listed word with its
// leading space is one token, as in the common 32k-150k vocabularies; the 4k-token test
// vocabularies of the mini-* models need 1.21. Use --tokenizer for exact lengths. Chat
// templates add their own tokens on top.
#pragma once
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "bench/openai_stream.h"

namespace tachyon::bench {

inline constexpr double kTokensPerWord = 1.0;

enum class LenDist { kFixed, kUniform, kNormal };
Result<LenDist> parse_len_dist(const std::string& s);
const char* len_dist_name(LenDist d);

struct WorkloadConfig {
  int input_len = 256;   // prompt tokens (the unique part when prefix groups are on)
  int output_len = 128;  // max_tokens
  LenDist len_dist = LenDist::kFixed;
  double len_range = 0.25;  // uniform: mean * [1 - r, 1 + r]; normal: stddev = r * mean
  int prefix_groups = 0;    // N groups ...
  int prefix_group_size = 1;  // ... of M requests ...
  int prefix_len = 0;         // ... sharing a P-token prefix
  int turns = 1;              // turns per session; each turn re-sends the history
  std::string dataset_path;   // JSONL (see Workload::create)
  bool output_len_given = false;  // --output-len overrides dataset lengths
  uint64_t seed = 0;
  nlohmann::json to_json() const;
};

struct TurnSpec {
  std::string user;  // this turn's user message
  int max_tokens = 0;
  int prompt_tokens = -1;  // client count of this turn's new text (-1 unknown)
};

struct SessionSpec {
  int64_t id = 0;
  int group = -1;       // prefix group, -1 when none
  std::vector<Message> preset;  // messages sent before the first turn (dataset chats)
  int preset_tokens = 0;        // client count of the preset messages
  std::vector<TurnSpec> turns;
};

// Builds text of a target token length from random common words.
class PromptBuilder {
 public:
  explicit PromptBuilder(const tok::Tokenizer* tokenizer) : tok_(tokenizer) {}
  // Returns the text and sets *n_tokens to its token count (tokenizer) or the target.
  std::string make(int n_tokens, std::mt19937_64& rng, int* n_tokens_out) const;
  int count(const std::string& text) const;  // tokenizer count, or the word approximation

 private:
  const tok::Tokenizer* tok_;
};

class Workload {
 public:
  // Validates the config (lengths >= 1, groups and turns sensible) and loads the dataset.
  // Dataset lines (JSONL; blank lines and lines starting with '#' skipped), one of:
  //   {"prompt": "...", "max_tokens"|"output_len": n}
  //   {"messages": [{"role": ..., "content": ...}, ...], "max_tokens": n}
  //   {"conversations": [{"from": "human"|"gpt", "value": ...}, ...]}   (ShareGPT; the
  //     first human turn is the prompt, the first gpt reply's length the output length)
  // Entries are used in a seeded random order, cycling when exhausted. Errors name the
  // file, line and problem.
  static Result<std::unique_ptr<Workload>> create(const WorkloadConfig& cfg, const tok::Tokenizer* tokenizer);

  SessionSpec next();
  const WorkloadConfig& config() const { return cfg_; }
  size_t n_dataset_entries() const { return dataset_.size(); }
  // The number of requests one "pass" takes: groups x size for prefix groups, the
  // dataset size, else 0 (no natural size).
  int natural_size() const;
  std::string describe() const;

 private:
  Workload(const WorkloadConfig& cfg, const tok::Tokenizer* t) : cfg_(cfg), builder_(t), rng_(cfg.seed) {}
  int sample_len(int mean);
  WorkloadConfig cfg_;
  PromptBuilder builder_;
  std::mt19937_64 rng_;
  int64_t n_sessions_ = 0;
  std::vector<std::string> prefixes_;  // one per group
  std::vector<int> group_order_;       // shuffled group assignment for one pass
  struct Entry {
    std::vector<Message> messages;
    int max_tokens = -1;
  };
  std::vector<Entry> dataset_;
  std::vector<size_t> dataset_order_;
};

}  // namespace tachyon::bench
