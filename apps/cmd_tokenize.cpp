// tachyon tokenize / detokenize: a model's tokenizer from the command line.
//   tachyon tokenize -m FILE (--text T | --file F) [--special] [--no-bos] [--json]
//   tachyon detokenize -m FILE --tokens ID,ID,... [--special]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app_util.h"
#include "commands.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace tachyon::apps {

namespace {

struct LoadedTokenizer {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<tok::Tokenizer> tok;
};

Result<LoadedTokenizer> load_tokenizer(const std::string& path) {
  auto f = gguf::File::open(path);
  if (!f.is_ok()) return f.status();
  auto t = tok::Tokenizer::from_gguf(*f.value());
  if (!t.is_ok()) return t.status();
  return LoadedTokenizer{std::move(f.value()), std::move(t.value())};
}

// One piece on one line: backslash escapes for control characters, quotes and bytes that
// are not (yet) valid UTF-8, so that byte-fallback tokens stay visible.
std::string escape_piece(const std::string& p) {
  std::string out;
  for (size_t i = 0; i < p.size();) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if (c >= 0x80) {
      size_t n = tok::utf8_len(c);
      if (i + n <= p.size() && tok::is_valid_utf8(std::string_view(p).substr(i, n))) {
        out.append(p, i, n);
        i += n;
        continue;
      }
    }
    char buf[8];
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      default:
        if (c < 0x20 || c >= 0x7F) {
          std::snprintf(buf, sizeof(buf), "\\x%02X", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  return out;
}

}  // namespace

int cmd_tokenize(int argc, char** argv) {
  CLI::App app{"print the token ids of a text (one 'id<TAB>'piece'' line per token, or JSON)", "tachyon tokenize"};
  std::string model, text, file;
  bool special = false, no_bos = false, json = false;
  app.add_option("-m,--model", model, "GGUF file whose tokenizer to use")->required();
  auto* text_opt = app.add_option("--text", text, "text to tokenize");
  auto* file_opt = app.add_option("--file", file, "read the text from this file (bytes as they are)");
  text_opt->excludes(file_opt);
  file_opt->excludes(text_opt);
  app.add_flag("--special", special, "turn control-token text such as <s> or <|im_start|> into its id");
  app.add_flag("--no-bos", no_bos, "do not add the BOS/EOS tokens the model asks for");
  app.add_flag("--json", json, "print {\"tokens\":[...],\"pieces\":[...]} (bad UTF-8 in pieces becomes U+FFFD)");
  try {
    app.parse(argc, argv);
    if (text_opt->count() == 0 && file_opt->count() == 0) throw CLI::RequiredError("--text or --file");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (file_opt->count() > 0) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return fail(not_found("cannot read text file '" + file + "'"));
    std::ostringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto loaded = load_tokenizer(model);
  if (!loaded.is_ok()) return fail(loaded.status());
  const tok::Tokenizer& tk = *loaded->tok;

  const std::vector<int32_t> ids = tk.encode(text, /*add_special=*/!no_bos, /*parse_special=*/special);
  if (json) {
    nlohmann::json j;
    j["tokens"] = ids;
    j["pieces"] = nlohmann::json::array();
    for (int32_t id : ids) j["pieces"].push_back(tk.token_to_piece(id, /*render_special=*/true));
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (int32_t id : ids) std::printf("%d\t'%s'\n", id, escape_piece(tk.token_to_piece(id, true)).c_str());
  }
  return 0;
}

int cmd_detokenize(int argc, char** argv) {
  CLI::App app{"print the text of a token id sequence", "tachyon detokenize"};
  std::string model, tokens;
  bool special = false;
  app.add_option("-m,--model", model, "GGUF file whose tokenizer to use")->required();
  app.add_option("--tokens", tokens, "comma-separated token ids")->required();
  app.add_flag("--special", special, "render control tokens such as <s> as their text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto ids = parse_token_list(tokens);
  if (!ids.is_ok()) return fail(ids.status());
  auto loaded = load_tokenizer(model);
  if (!loaded.is_ok()) return fail(loaded.status());
  const tok::Tokenizer& tk = *loaded->tok;
  for (int32_t id : ids.value()) {
    if (!tk.valid_id(id)) {
      return fail(invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                   std::to_string(tk.n_vocab()) + ")"));
    }
  }
  const std::string text = tk.decode(ids.value(), special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace tachyon::apps
