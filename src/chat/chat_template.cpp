// ChatTemplate: parse once, render per request.
#include "chat/chat_template.h"

#include <new>

#include "chat/ast.h"
#include "chat/interp.h"

namespace tachyon::chat {

namespace {

constexpr std::string_view kDefaultTemplate =
    "{%- for message in messages -%}\n"
    "{%- set content = message['content'] -%}\n"
    "{%- if content is none or content is undefined -%}\n"
    "{%- set content = '' -%}\n"
    "{%- elif content is not string -%}\n"
    "{%- set content = content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "{{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}\n";

template <class J>
Result<std::string> render_impl(const detail::Program& program, const J& messages, const J& tools,
                                const RenderOptions& opts) {
  using detail::Value;
  try {
    auto globals = std::make_shared<detail::Scope>();
    detail::install_globals(*globals);
    auto& vars = globals->vars;
    vars["messages"] = detail::from_json(messages);
    if (!tools.is_null()) vars["tools"] = detail::from_json(tools);
    vars["add_generation_prompt"] = Value::boolean(opts.add_generation_prompt);
    vars["bos_token"] = Value::str(opts.bos_token);
    vars["eos_token"] = Value::str(opts.eos_token);
    if (opts.extra_context.is_object()) {
      for (auto it = opts.extra_context.begin(); it != opts.extra_context.end(); ++it)
        vars[it.key()] = detail::from_json(it.value());
    } else if (!opts.extra_context.is_null()) {
      return invalid_argument("chat template: extra_context must be a JSON object");
    }
    detail::Interp interp(opts);
    return interp.render(program, globals);
  } catch (const detail::RenderError& e) {
    return invalid_argument(e.message);
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kInternal, "chat template: out of memory while rendering");
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInternal, std::string("chat template: ") + e.what());
  }
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source) {
  auto program = detail::parse_program(source);
  if (!program) return program.status();
  ChatTemplate t;
  t.program_ = std::move(program.value());
  t.source_ = std::string(source);
  return t;
}

Result<std::string> ChatTemplate::render(const nlohmann::json& messages, const nlohmann::json& tools,
                                         const RenderOptions& opts) const {
  return render_impl(*program_, messages, tools, opts);
}

Result<std::string> ChatTemplate::render_ordered(const nlohmann::ordered_json& messages,
                                                 const nlohmann::ordered_json& tools, const RenderOptions& opts) const {
  return render_impl(*program_, messages, tools, opts);
}

std::string_view default_template() { return kDefaultTemplate; }

}  // namespace tachyon::chat
