#include "bench/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "tokenizer/tokenizer.h"

namespace tachyon::bench {

using json = nlohmann::json;

namespace {

// Common short English words; each is a single token (with its leading space) in the
// llama SPM and GPT-2-style BPE vocabularies, so a prompt of n words is close to n tokens.
const char* const kWords[] = {
    "the", "of", "and", "to", "in", "is", "was", "for", "on", "are", "as", "with", "his", "they", "at",
    "be", "this", "from", "have", "or", "by", "one", "had", "not", "but", "what", "all", "were", "when",
    "we", "there", "can", "an", "your", "which", "their", "said", "if", "do", "will", "each", "about",
    "how", "up", "out", "them", "then", "she", "many", "some", "so", "these", "would", "other", "into",
    "has", "more", "her", "two", "like", "him", "see", "time", "could", "no", "make", "than", "first",
    "been", "its", "who", "now", "people", "my", "made", "over", "did", "down", "only", "way", "find",
    "use", "may", "water", "long", "little", "very", "after", "words", "called", "just", "where", "most",
    "know", "get", "through", "back", "much", "before", "go", "good", "new", "write", "our", "used", "me",
    "man", "too", "any", "day", "same", "right", "look", "think", "also", "around", "another", "came",
    "come", "work", "three", "word", "must", "because", "does", "part", "even", "place", "well", "such",
    "here", "take", "why", "help", "put", "different", "away", "again", "off", "went", "old", "number",
    "great", "tell", "men", "say", "small", "every", "found", "still", "between", "name", "should",
    "home", "big", "give", "air", "line", "set", "own", "under", "read", "last", "never", "us", "left",
    "end", "along", "while", "might", "next", "sound", "below", "saw", "something", "thought", "both",
    "few", "those", "always", "show", "large", "often", "together", "asked", "house", "world", "going",
    "want", "school", "important", "until", "form", "food", "keep", "children", "feet", "land", "side",
    "without", "boy", "once", "animal", "life", "enough", "took", "four", "head", "above", "kind",
    "began", "almost", "live", "page", "got", "earth", "need", "far", "hand", "high", "year", "mother",
    "light", "country", "father", "let", "night", "picture", "being", "study", "second", "soon", "story",
    "since", "white", "ever", "paper", "hard", "near", "sentence", "better", "best", "across", "during",
    "today", "however", "sure", "knew", "try", "told", "young", "sun", "thing", "whole", "hear",
    "example", "heard", "several", "change", "answer", "room", "sea", "against", "top", "turned",
    "learn", "point", "city", "play", "toward", "five", "himself", "usually", "money", "seen", "car",
    "morning", "body", "upon", "family", "later", "move", "face", "door", "cut", "done", "group",
    "true", "half", "red", "fish", "plants", "living", "black", "eat", "short", "run", "book", "gave",
    "order", "open", "ground", "cold", "really", "table", "remember", "tree", "course", "front", "voice",
};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

void append_words(std::string& out, size_t n, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, kNumWords - 1);
  for (size_t i = 0; i < n; ++i) {
    if (!out.empty()) out.push_back(' ');
    out += kWords[pick(rng)];
  }
}

}  // namespace

Result<LenDist> parse_len_dist(const std::string& s) {
  if (s == "fixed") return LenDist::kFixed;
  if (s == "uniform") return LenDist::kUniform;
  if (s == "normal") return LenDist::kNormal;
  return invalid_argument("--len-dist '" + s + "': expected fixed, uniform or normal");
}

const char* len_dist_name(LenDist d) {
  switch (d) {
    case LenDist::kFixed: return "fixed";
    case LenDist::kUniform: return "uniform";
    case LenDist::kNormal: return "normal";
  }
  return "?";
}

json WorkloadConfig::to_json() const {
  json j = {{"input_len", input_len},   {"output_len", output_len}, {"len_dist", len_dist_name(len_dist)},
            {"len_range", len_range},   {"turns", turns},           {"seed", seed}};
  if (prefix_groups > 0)
    j["prefix_groups"] = {{"groups", prefix_groups}, {"group_size", prefix_group_size}, {"prefix_len", prefix_len}};
  if (!dataset_path.empty()) j["dataset"] = dataset_path;
  return j;
}

int PromptBuilder::count(const std::string& text) const {
  if (tok_) return static_cast<int>(tok_->encode(text, false, false).size());
  const size_t words = std::count(text.begin(), text.end(), ' ') + (text.empty() ? 0 : 1);
  return static_cast<int>(std::lround(words * kTokensPerWord));
}

std::string PromptBuilder::make(int n_tokens, std::mt19937_64& rng, int* n_out) const {
  std::string text;
  if (n_tokens <= 0) {
    if (n_out) *n_out = 0;
    return text;
  }
  if (!tok_) {
    append_words(text, std::max<size_t>(1, std::lround(n_tokens / kTokensPerWord)), rng);
    if (n_out) *n_out = n_tokens;
    return text;
  }
  // Enough words, then cut the token list to the target and decode; re-encoding the cut
  // text can merge differently at the end, so trim again until it fits.
  append_words(text, static_cast<size_t>(n_tokens) + 8, rng);
  std::vector<int32_t> ids = tok_->encode(text, false, false);
  while (static_cast<int>(ids.size()) < n_tokens) {
    append_words(text, static_cast<size_t>(n_tokens), rng);
    ids = tok_->encode(text, false, false);
  }
  int cut = n_tokens;
  int got = 0;
  for (int attempt = 0; attempt < 6; ++attempt) {
    ids.resize(std::min<size_t>(ids.size(), static_cast<size_t>(cut)));
    text = tok_->decode(ids, false, tok::LeadingSpace::kSkipBos);
    got = static_cast<int>(tok_->encode(text, false, false).size());
    if (got <= n_tokens) break;
    cut -= got - n_tokens;
  }
  while (!text.empty() && text.front() == ' ') text.erase(0, 1);
  if (n_out) *n_out = count(text);
  return text;
}

Result<std::unique_ptr<Workload>> Workload::create(const WorkloadConfig& cfg, const tok::Tokenizer* t) {
  if (cfg.dataset_path.empty() && cfg.input_len < 1) return invalid_argument("--input-len must be >= 1");
  if (cfg.output_len < 1) return invalid_argument("--output-len must be >= 1");
  if (cfg.len_range < 0 || cfg.len_range > 1) return invalid_argument("--len-range must be in [0, 1]");
  if (cfg.turns < 1) return invalid_argument("--turns must be >= 1");
  if (cfg.prefix_groups < 0) return invalid_argument("--prefix-groups must be >= 0");
  if (cfg.prefix_groups > 0 && (cfg.prefix_group_size < 1 || cfg.prefix_len < 1))
    return invalid_argument("--prefix-groups needs --prefix-group-size >= 1 and --prefix-len >= 1");
  if (cfg.prefix_groups > 0 && !cfg.dataset_path.empty())
    return invalid_argument("--prefix-groups and --dataset cannot be combined");
  std::unique_ptr<Workload> w(new Workload(cfg, t));
  if (!cfg.dataset_path.empty()) {
    std::ifstream f(cfg.dataset_path);
    if (!f) return not_found("--dataset " + cfg.dataset_path + ": cannot open");
    std::string line;
    int lineno = 0;
    while (std::getline(f, line)) {
      ++lineno;
      if (line.empty() || line[0] == '#' || line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = cfg.dataset_path + ":" + std::to_string(lineno) + ": ";
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return invalid_argument(where + "not a JSON object");
      Entry e;
      for (const char* k : {"max_tokens", "output_len", "output_tokens"})
        if (j.contains(k) && j[k].is_number_integer()) e.max_tokens = j[k].get<int>();
      if (j.contains("prompt") && j["prompt"].is_string()) {
        e.messages.push_back({"user", j["prompt"].get<std::string>()});
      } else if (j.contains("messages") && j["messages"].is_array()) {
        for (const auto& m : j["messages"]) {
          if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
              !m["content"].is_string())
            return invalid_argument(where + "each message needs string 'role' and 'content'");
          e.messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
        }
      } else if (j.contains("conversations") && j["conversations"].is_array()) {
        const auto& c = j["conversations"];
        for (size_t i = 0; i < c.size(); ++i) {
          if (!c[i].is_object() || !c[i].contains("value") || !c[i]["value"].is_string()) continue;
          const std::string from = c[i].value("from", "");
          if (e.messages.empty() && (from == "human" || from == "user")) {
            e.messages.push_back({"user", c[i]["value"].get<std::string>()});
          } else if (!e.messages.empty() && (from == "gpt" || from == "assistant")) {
            if (e.max_tokens < 0) e.max_tokens = std::max(1, w->builder_.count(c[i]["value"].get<std::string>()));
            break;
          }
        }
        if (e.messages.empty()) continue;  // no human turn: skip, as other tools do
      } else {
        return invalid_argument(where + "expected a 'prompt', 'messages' or 'conversations' field");
      }
      if (e.messages.empty()) return invalid_argument(where + "empty prompt");
      w->dataset_.push_back(std::move(e));
    }
    if (w->dataset_.empty()) return invalid_argument("--dataset " + cfg.dataset_path + ": no usable entries");
    w->dataset_order_.resize(w->dataset_.size());
    for (size_t i = 0; i < w->dataset_order_.size(); ++i) w->dataset_order_[i] = i;
    std::shuffle(w->dataset_order_.begin(), w->dataset_order_.end(), w->rng_);
  }
  if (cfg.prefix_groups > 0) {
    for (int g = 0; g < cfg.prefix_groups; ++g) w->prefixes_.push_back(w->builder_.make(cfg.prefix_len, w->rng_, nullptr));
    for (int g = 0; g < cfg.prefix_groups; ++g)
      for (int i = 0; i < cfg.prefix_group_size; ++i) w->group_order_.push_back(g);
    std::shuffle(w->group_order_.begin(), w->group_order_.end(), w->rng_);
  }
  return w;
}

int Workload::sample_len(int mean) {
  double v = mean;
  if (cfg_.len_dist == LenDist::kUniform) {
    std::uniform_real_distribution<double> d(mean * (1 - cfg_.len_range), mean * (1 + cfg_.len_range));
    v = d(rng_);
  } else if (cfg_.len_dist == LenDist::kNormal) {
    std::normal_distribution<double> d(mean, cfg_.len_range * mean);
    v = d(rng_);
  }
  return std::max(1, static_cast<int>(std::lround(v)));
}

int Workload::natural_size() const {
  if (!group_order_.empty()) return static_cast<int>(group_order_.size()) * cfg_.turns;
  if (!dataset_.empty()) return static_cast<int>(dataset_.size());
  return 0;
}

SessionSpec Workload::next() {
  SessionSpec s;
  s.id = n_sessions_++;
  if (!dataset_.empty()) {
    for (int t = 0; t < cfg_.turns; ++t) {
      const Entry& e = dataset_[dataset_order_[static_cast<size_t>(s.id * cfg_.turns + t) % dataset_.size()]];
      TurnSpec ts;
      ts.max_tokens = cfg_.output_len_given || e.max_tokens < 1 ? sample_len(cfg_.output_len) : e.max_tokens;
      if (cfg_.turns == 1 && e.messages.size() > 1) {
        s.preset.assign(e.messages.begin(), e.messages.end() - 1);
        for (const auto& m : s.preset) s.preset_tokens += builder_.count(m.content);
        ts.user = e.messages.back().content;
      } else {
        ts.user = e.messages.size() == 1 ? e.messages[0].content : flatten_messages(e.messages);
      }
      ts.prompt_tokens = builder_.count(ts.user);
      s.turns.push_back(std::move(ts));
    }
    return s;
  }
  std::string prefix;
  if (!group_order_.empty()) {
    s.group = group_order_[static_cast<size_t>(s.id) % group_order_.size()];
    prefix = prefixes_[static_cast<size_t>(s.group)];
  }
  for (int t = 0; t < cfg_.turns; ++t) {
    TurnSpec ts;
    int n = 0;
    const std::string body = builder_.make(sample_len(cfg_.input_len), rng_, &n);
    if (t == 0 && !prefix.empty()) {
      ts.user = prefix + "\n" + body;
      n = builder_.count(ts.user);
    } else {
      ts.user = body;
    }
    ts.prompt_tokens = n;
    ts.max_tokens = sample_len(cfg_.output_len);
    s.turns.push_back(std::move(ts));
  }
  return s;
}

std::string Workload::describe() const {
  std::string d;
  if (!dataset_.empty()) {
    d = "dataset " + cfg_.dataset_path + " (" + std::to_string(dataset_.size()) + " entries)";
  } else {
    d = "random words, input " + std::to_string(cfg_.input_len) + " tokens";
    if (!prefixes_.empty())
      d += " + shared prefix " + std::to_string(cfg_.prefix_len) + " tokens (" + std::to_string(cfg_.prefix_groups) +
           " groups x " + std::to_string(cfg_.prefix_group_size) + ")";
  }
  d += ", output " + std::to_string(cfg_.output_len) + " tokens";
  if (cfg_.len_dist != LenDist::kFixed)
    d += std::string(", lengths ") + len_dist_name(cfg_.len_dist) + " +-" + std::to_string(static_cast<int>(cfg_.len_range * 100)) + "%";
  if (cfg_.turns > 1) d += ", " + std::to_string(cfg_.turns) + " turns per session";
  return d;
}

}  // namespace tachyon::bench
