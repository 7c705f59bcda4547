// ChatTemplate: parse once, render per request.
#include "chat/chat_template.h"

#include <new>

#include "chat/ast.h"
#include "chat/interp.h"

namespace tachyon::chat {

namespace {

// ChatML; with tools, the Hermes / Qwen2.5 convention: the tools as JSON in the system
// turn, calls as <tool_call>{"name": ..., "arguments": ...}</tool_call>, results as
// <tool_response> in a user turn. Without tools it renders plain ChatML.
constexpr std::string_view kDefaultTemplate =
    "{%- set ns = namespace(tools_text='') -%}\n"
    "{%- if tools -%}\n"
    "{%- set ns.tools_text = '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -%}\n"
    "{%- for tool in tools -%}{%- set ns.tools_text = ns.tools_text + '\\n' + (tool | tojson) -%}{%- endfor -%}\n"
    "{%- set ns.tools_text = ns.tools_text + '\\n</tools>\\n\\nFor each function call, return a json object with "
    "function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\"name\": "
    "<function-name>, \"arguments\": <args-json-object>}\\n</tool_call>' -%}\n"
    "{%- if messages[0]['role'] != 'system' -%}\n"
    "{{- '<|im_start|>system\\n' + ns.tools_text + '<|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
    "{%- endif -%}\n"
    "{%- for message in messages -%}\n"
    "{%- set content = message['content'] -%}\n"
    "{%- if content is none or content is undefined -%}\n"
    "{%- set content = '' -%}\n"
    "{%- elif content is not string -%}\n"
    "{%- set content = content | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') -%}\n"
    "{%- endif -%}\n"
    "{%- if tools and loop.first and message['role'] == 'system' -%}\n"
    "{%- set content = content + '\\n\\n' + ns.tools_text -%}\n"
    "{%- endif -%}\n"
    "{%- if message['role'] == 'tool' -%}\n"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + content + '\\n</tool_response><|im_end|>\\n' -}}\n"
    "{%- else -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content -}}\n"
    "{%- if message['tool_calls'] -%}\n"
    "{%- for tc in message['tool_calls'] -%}\n"
    "{%- if content or not loop.first -%}{{- '\\n' -}}{%- endif -%}\n"
    "{{- '<tool_call>\\n{\"name\": \"' + tc['function']['name'] + '\", \"arguments\": ' -}}\n"
    "{%- if tc['function']['arguments'] is string -%}{{- tc['function']['arguments'] -}}\n"
    "{%- else -%}{{- tc['function']['arguments'] | tojson -}}{%- endif -%}\n"
    "{{- '}\\n</tool_call>' -}}\n"
    "{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endif -%}\n"
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
