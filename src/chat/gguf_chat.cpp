// Chat-formatting metadata of a GGUF file. Kept apart from the engine so that users of
// the template engine alone do not link the GGUF reader.
#include "chat/chat_template.h"
#include "gguf/gguf.h"

namespace tachyon::chat {

namespace {

Result<std::string> token_text(const gguf::File& file, std::string_view id_key) {
  const gguf::Value* id_value = file.find(id_key);
  if (!id_value) return std::string();
  auto id = file.get_uint(id_key);
  if (!id) return corrupt(file.path() + ": " + std::string(id_key) + ": not a non-negative integer");
  const gguf::Value* tokens = file.get_array("tokenizer.ggml.tokens");
  if (!tokens || tokens->arr_type != gguf::ValueType::STRING)
    return corrupt(file.path() + ": tokenizer.ggml.tokens: missing or not an array of strings, but " +
                   std::string(id_key) + " is set");
  if (*id >= tokens->arr_strings.size())
    return corrupt(file.path() + ": " + std::string(id_key) + ": token id " + std::to_string(*id) +
                   " out of range (vocabulary of " + std::to_string(tokens->arr_strings.size()) + ")");
  return std::string(tokens->arr_strings[*id]);
}

}  // namespace

Result<GgufChatInfo> read_gguf_chat_info(const gguf::File& file) {
  GgufChatInfo info;
  if (file.find("tokenizer.chat_template")) {
    auto tmpl = file.get_string("tokenizer.chat_template");
    if (!tmpl) return corrupt(file.path() + ": tokenizer.chat_template: not a string");
    info.chat_template = std::string(*tmpl);
    info.has_template = true;
  } else {
    info.chat_template = std::string(default_template());
  }
  auto bos = token_text(file, "tokenizer.ggml.bos_token_id");
  if (!bos) return bos.status();
  info.bos_token = std::move(bos.value());
  auto eos = token_text(file, "tokenizer.ggml.eos_token_id");
  if (!eos) return eos.status();
  info.eos_token = std::move(eos.value());
  return info;
}

}  // namespace tachyon::chat
