// Tokenizers built from GGUF metadata (tokenizer.ggml.*), matching llama.cpp token for
// token: SentencePiece-style BPE ("llama"), byte-level BPE ("gpt2") with the pre-tokenizer
// regexes named by tokenizer.ggml.pre, and WordPiece ("bert").
//
// Thread safety: a Tokenizer is immutable after from_gguf(); every const method may be
// called from any number of threads at once. A StreamDecoder is single-threaded state.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"

namespace tachyon::tok {

enum class VocabType { kSpm, kBpe, kWpm };

// tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// What decode() does with the space a SentencePiece vocab (add_space_prefix) prefixed.
enum class LeadingSpace {
  // llama.cpp's detokenize: drop one leading space of the first token's piece; a BOS in
  // first place consumes that rule, so "<s>▁Hello" gives " Hello".
  kLlamaCpp,
  // SentencePiece / Hugging Face: as above, but a leading BOS does not count, so
  // "<s>▁Hello" gives "Hello".
  kSkipBos,
  // Never strip: the tokens continue earlier text (e.g. generation after a prompt).
  kKeep,
};

namespace detail {
struct Vocab;
}

class Tokenizer {
 public:
  // Builds the tokenizer from a GGUF file's tokenizer.ggml.* keys. Errors (kNotFound,
  // kCorrupt, kUnsupported) name the key and the problem: no token list, score/type arrays
  // shorter than the token list, missing merges for gpt2, duplicate token texts, an unknown
  // tokenizer.ggml.model or tokenizer.ggml.pre, add_bos_token set without a usable BOS id.
  // Out-of-range special ids keep the model type's default, as llama.cpp does, and are
  // reported in warnings(). Cost: O(n_vocab + n_merges) time and memory; the File may be
  // closed afterwards (everything is copied).
  static Result<std::unique_ptr<Tokenizer>> from_gguf(const gguf::File& f);
  ~Tokenizer();

  // Text -> token ids, exactly as llama.cpp's llama_tokenize.
  //  add_special: prepend BOS / append EOS as the metadata asks (add_bos()/add_eos();
  //               WordPiece adds CLS ... SEP).
  //  parse_special: control/unknown token texts in `text` (e.g. "<s>", "<|im_start|>")
  //               become their single id. User-defined tokens are always matched whole.
  // Invalid UTF-8 never fails: SPM falls back to byte tokens; BPE and WordPiece see each
  // bad byte as U+FFFD, like llama.cpp. Cost: O(n log n) in the text length.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // The text of one token as llama.cpp's llama_token_to_piece(lstrip=0): SPM "▁" -> " " and
  // <0xNN> -> that raw byte; byte-level BPE mapped back to bytes. Control and unknown
  // tokens render as "" unless render_special. Ids outside [0, n_vocab) render as "".
  // The result may be a fragment of a UTF-8 character.
  std::string token_to_piece(int32_t id, bool render_special = false) const;

  // Concatenated pieces as llama.cpp's common_detokenize: with a vocab that adds a space
  // prefix, one leading space is removed as `leading` says (default: exactly llama.cpp),
  // and vocabs with clean_up_tokenization_spaces (most byte-level BPE, WordPiece) apply it.
  // Out-of-range ids render as "". Cost: O(output length).
  std::string decode(std::span<const int32_t> ids, bool render_special = false,
                     LeadingSpace leading = LeadingSpace::kLlamaCpp) const;

  int32_t n_vocab() const;
  VocabType type() const;
  const std::string& model_name() const;  // tokenizer.ggml.model
  const std::string& pre_name() const;    // tokenizer.ggml.pre after defaults ("default" if absent)

  // Special ids, -1 when the vocab has none.
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t eot_id() const;
  int32_t eom_id() const;
  int32_t unk_id() const;
  int32_t sep_id() const;
  int32_t pad_id() const;
  int32_t mask_id() const;

  // End of generation: eos, eot, eom and tokens such as <|im_end|>, <|endoftext|>,
  // <end_of_turn>, </s> found by text (llama.cpp's list).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const;  // ascending

  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;
  bool clean_up_spaces() const;  // decode() applies clean_up_tokenization_spaces

  bool valid_id(int32_t id) const { return id >= 0 && id < n_vocab(); }
  // Raw token text from the vocabulary (e.g. "▁Hello", "Ġworld", "<0x0A>"). Precondition:
  // valid_id(id).
  const std::string& token_text(int32_t id) const;
  float token_score(int32_t id) const;
  TokenType token_type(int32_t id) const;
  bool is_control(int32_t id) const;  // control or unknown: hidden unless rendered as special
  // Id of the token whose text is exactly `text`, -1 if none.
  int32_t find_token(std::string_view text) const;

  // Non-fatal load-time findings (bad special ids, overridden token types).
  const std::vector<std::string>& warnings() const;

 private:
  explicit Tokenizer(std::unique_ptr<detail::Vocab> v);
  std::unique_ptr<detail::Vocab> v_;
};

// Incremental detokenizer for streaming. The concatenation of every push() and the final
// flush() equals Tokenizer::decode() of the same ids (given the same Options), and every
// chunk ends on a UTF-8 character boundary: bytes of an incomplete character are held
// back until the character completes (or until flush()). Byte sequences that can never
// form a character pass through unchanged, unless replace_invalid_utf8 is set (then each
// becomes U+FFFD and chunks are always valid UTF-8, but the concatenation no longer equals
// decode() for such input). Where clean_up_tokenization_spaces applies, a trailing space
// or apostrophe is also held until the next character decides its fate.
// Cost: O(piece length) per push; memory O(held-back bytes). The Tokenizer must outlive
// the decoder.
class StreamDecoder {
 public:
  struct Options {
    bool render_special = false;
    // As in decode(). Use kKeep when the tokens continue earlier text (generation after a
    // prompt): the first generated token's space is real.
    LeadingSpace leading = LeadingSpace::kLlamaCpp;
    bool replace_invalid_utf8 = false;
    // false: never apply the vocab's clean_up_tokenization_spaces, so the text is exactly the
    // tokens' bytes (constrained output: the grammar judged those bytes).
    bool clean_up_spaces = true;
  };
  explicit StreamDecoder(const Tokenizer& tok) : StreamDecoder(tok, Options{}) {}
  StreamDecoder(const Tokenizer& tok, Options opts);

  // Adds one token; returns the text that is now final (possibly empty).
  std::string push(int32_t id);
  // Ends the stream: returns everything held back. The decoder can then be reused.
  std::string flush();
  void reset();

 private:
  std::string emit(std::string text, bool final);
  const Tokenizer& tok_;
  Options opts_;
  bool at_start_ = true;       // nothing pushed yet
  bool strip_pending_ = true;  // the leading-space rule has not been applied yet
  std::string pending_raw_;  // pieces not yet through clean-up (clean_spaces vocabs only)
  std::string pending_out_;  // cleaned bytes waiting for their character to complete
};

}  // namespace tachyon::tok
