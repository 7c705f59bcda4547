// Chat templates: the Jinja2 subset that model chat templates use, applied to
// OpenAI-style messages.
//
// The engine reproduces what Hugging Face transformers renders (Jinja2 3.1,
// ImmutableSandboxedEnvironment, trim_blocks + lstrip_blocks, loop controls, a `tojson`
// without HTML or ASCII escaping and Python's `, `/`: ` separators, globals
// raise_exception and strftime_now), byte for byte on the reference templates in
// shared/data/chat-templates. Values follow Python: printing a list gives ['a', 'b'],
// `/` is float division, dicts keep insertion order, undefined names print empty.
// Unsupported: template inheritance/includes, recursive for loops.
//
// Errors: parse() returns kInvalidArgument naming the line of a syntax error. render()
// returns kInvalidArgument for template runtime errors (raise_exception, type errors,
// undefined values used in operations, sandbox violations such as list.append) with a
// Jinja2-like message ("TemplateError: ...", "TypeError: ..."), and for exceeding the
// RenderLimits. Neither ever crashes or hangs on hostile input.
//
// Thread safety: a parsed ChatTemplate is immutable; render() may run concurrently.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace tachyon::gguf {
class File;
}

namespace tachyon::chat {

namespace detail {
struct Program;
}

// Bounds that keep a hostile template from exhausting memory, stack or time. Each is
// checked during rendering; exceeding one is a render error.
struct RenderLimits {
  size_t max_output_bytes = size_t{16} << 20;  // the rendered text, and any string or list built
  uint64_t max_steps = 10'000'000;             // expression evaluations + loop iterations + bytes built / 16
                                               // (~1 s of CPU; the reference templates need < 20k)
  int max_call_depth = 150;                    // nested macro calls (recursion); Python allows ~150-200
};

struct RenderOptions {
  std::string bos_token = "<s>", eos_token = "</s>";
  bool add_generation_prompt = true;
  // If non-empty, "now" for strftime_now (e.g. "2026-11-27T12:00:00"); else the real local time.
  std::string strftime_now_iso;
  nlohmann::json extra_context = nlohmann::json::object();  // extra template variables
  RenderLimits limits;
};

class ChatTemplate {
 public:
  // Syntax errors -> kInvalidArgument "chat template syntax error at line N: ...".
  static Result<ChatTemplate> parse(std::string_view source);

  // messages: OpenAI-style array of {role, content, ...}; tools: an array, or null for
  // none (then `tools` is undefined in the template, as transformers does; an empty
  // array stays defined and empty).
  // The template sees messages, tools, add_generation_prompt, bos_token, eos_token and
  // the extra_context entries.
  //
  // Key order matters: templates print dicts with tojson in their iteration order.
  // nlohmann::json sorts object keys, so prefer render_ordered() with request bodies
  // parsed as nlohmann::ordered_json (what the HTTP server should do); render() gives
  // the same text whenever no rendered dict has keys out of alphabetical order.
  Result<std::string> render(const nlohmann::json& messages, const nlohmann::json& tools,
                             const RenderOptions& opts) const;
  Result<std::string> render_ordered(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                     const RenderOptions& opts) const;

  const std::string& source() const { return source_; }

 private:
  std::shared_ptr<const detail::Program> program_;
  std::string source_;
};

// Used when a GGUF file has no tokenizer.chat_template: ChatML
// ("<|im_start|>{role}\n{content}<|im_end|>\n" per message, then "<|im_start|>assistant\n"
// when add_generation_prompt). List-of-parts content contributes its text parts; null
// content renders empty.
std::string_view default_template();

// What a GGUF file says about chat formatting.
struct GgufChatInfo {
  std::string chat_template;  // tokenizer.chat_template, or default_template() if absent
  bool has_template = false;  // false when default_template() was substituted
  std::string bos_token;      // tokenizer.ggml.tokens[tokenizer.ggml.bos_token_id]; "" if none
  std::string eos_token;      // tokenizer.ggml.tokens[tokenizer.ggml.eos_token_id]; "" if none
};
// Errors (kCorrupt) only for present-but-malformed keys (a token id out of range, a
// template that is not a string); absent keys give the defaults above.
Result<GgufChatInfo> read_gguf_chat_info(const gguf::File& file);

}  // namespace tachyon::chat
