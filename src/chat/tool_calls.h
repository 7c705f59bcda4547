// Tool-call and reasoning extraction from generated text, per chat-template family.
//
// A model announces tool calls in the syntax its chat template renders for an assistant
// message with tool_calls (see shared/data/chat-templates/chat_template_goldens.json, case
// "tools"). detect_tool_family() picks the family from marker strings in the template;
// OutputParser turns one choice's streamed text into content, reasoning and tool calls
// (OpenAI's delta.content / delta.reasoning_content / delta.tool_calls).
//
// Families and the text the model emits (NAME = function name, {..} = a JSON object):
//   kHermes         <tool_call>{"name": NAME, "arguments": {..}}</tool_call>   (one per block;
//                   the block may also hold the kQwen3Coder <function=..> form)
//   kQwen3Coder     <tool_call><function=NAME><parameter=P>V</parameter>...</function></tool_call>
//   kSeedOss        as kQwen3Coder inside <seed:tool_call>...</seed:tool_call>
//   kLlama3         {"name": NAME, "parameters": {..}} as the first thing in the output, or
//                   after <|python_tag|>; one after another for several calls
//   kMistral        [TOOL_CALLS][{"name":..,"arguments":..},...] or
//                   [TOOL_CALLS]NAME[CALL_ID]id[ARGS]{..} (the [CALL_ID] part optional)
//   kDeepSeekR1     <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{..}\n```
//                   <｜tool▁call▁end｜>...<｜tool▁calls▁end｜>       (R1, V3)
//   kDeepSeekV3     <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{..}<｜tool▁call▁end｜>
//                   ...<｜tool▁calls▁end｜>   (V3.1; either layout is accepted by both families)
//   kDeepSeekV32    <｜DSML｜function_calls><｜DSML｜invoke name="NAME"><｜DSML｜parameter name="P"
//                   string="true|false">V</｜DSML｜parameter></｜DSML｜invoke></｜DSML｜function_calls>
//   kGptOss         harmony messages: [<|start|>assistant][ to=functions.NAME]<|channel|>CH[ to=
//                   functions.NAME][ <|constrain|>json]<|message|>BODY(<|end|>|<|call|>|<|return|>)
//                   CH analysis = reasoning, final / commentary = content, to=functions.* = a call
//   kGranite        <|tool_call|>[{"name":..,"arguments":..},...]          (Granite 3.x)
//   kFunctionaryV31 <function=NAME>{..}</function>
//   kFunctionaryV32 >>>NAME\n{..}   or >>>all\ntext (the prompt ends with ">>>", so the output
//                   starts right after one)
//   kCommandR7B     <|START_ACTION|>[{"tool_call_id":..,"tool_name":..,"parameters":..}]<|END_ACTION|>
//   kCommandRPlus   Action: ```json [{"tool_name":..,"parameters":..}] ```
//   kKimiK2         <|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX
//                   <|tool_call_argument_begin|>{..}<|tool_call_end|>...<|tool_calls_section_end|>
//   kGlm            <tool_call>NAME\n<arg_key>K</arg_key>\n<arg_value>V</arg_value>...</tool_call>
//   kMiniMaxM2      <minimax:tool_call><invoke name="NAME"><parameter name="P">V</parameter>
//                   </invoke>...</minimax:tool_call>
//   kApriel         <tool_calls>[{"name":..,"arguments":..},...]</tool_calls>
//   kNemotronV2     <TOOLCALL>[{"name":..,"arguments":..},...]</TOOLCALL>
//   kFireFunctionV2 functools[{"name":..,"arguments":..},...]
//   kApertus        <|tools_prefix|>[{NAME: {..}},...]<|tools_suffix|>
//   kGemma4         <|tool_call>call:NAME{key:<|"|>string<|"|>,n:1,...}<tool_call|>
//   kSolarOpen      <|tool_calls|><|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>
//                   {..}<|tool_call:end|>...<|calls|>
//   kGigaChat       <|function_call|>{"name":..,"arguments":..}  or  function call<|role_sep|>\n{..}
// XML-parameter families (kQwen3Coder, kSeedOss, kGlm, kMiniMaxM2, kDeepSeekV32, kGemma4) are
// normalized to a JSON object: a value that parses as JSON is kept as that JSON value, else
// it becomes a JSON string (Qwen3-Coder's one newline on each side of a value is dropped;
// DSML's string="true" always gives a string). All arguments come out as compact JSON
// (nlohmann's dump: key order kept, numbers re-printed, invalid UTF-8 -> U+FFFD); ids the
// model wrote (Mistral's [CALL_ID], Kimi's :IDX, Solar's ID) are not kept.
//
// Not parsed (their text stays content): Llama 3's builtin pythonic calls after
// <|python_tag|>, functionary's >>>python code, Command R+'s directly-answer convention.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tachyon::chat {

enum class ToolFamily {
  kNone,
  kHermes,
  kQwen3Coder,
  kSeedOss,
  kLlama3,
  kMistral,
  kDeepSeekR1,
  kDeepSeekV3,
  kDeepSeekV32,
  kGptOss,
  kGranite,
  kFunctionaryV31,
  kFunctionaryV32,
  kCommandR7B,
  kCommandRPlus,
  kKimiK2,
  kGlm,
  kMiniMaxM2,
  kApriel,
  kNemotronV2,
  kFireFunctionV2,
  kApertus,
  kGemma4,
  kSolarOpen,
  kGigaChat,
};

// From a chat template's source text. The first rule that matches wins:
//   "<|channel|>" -> kGptOss; "｜DSML｜" -> kDeepSeekV32; "<｜tool▁calls▁begin｜>" -> kDeepSeekR1
//   if the template also has "```json", else kDeepSeekV3; "<|tool_calls_section_begin|>" ->
//   kKimiK2; "<minimax:tool_call>" -> kMiniMaxM2; "<seed:tool_call>" -> kSeedOss;
//   "<arg_key>" -> kGlm; "<function=" with "<parameter=" -> kQwen3Coder; "<function=" ->
//   kFunctionaryV31; ">>>" with "recipient" -> kFunctionaryV32; "<tool_calls>" -> kApriel;
//   "<tool_call>" -> kHermes; "<|START_ACTION|>" -> kCommandR7B; "Action:" with "```json" ->
//   kCommandRPlus; "[TOOL_CALLS]" -> kMistral; "<|tool_call|>" -> kGranite; "<TOOLCALL>" ->
//   kNemotronV2; "functools[" -> kFireFunctionV2; "<|tools_prefix|>" -> kApertus;
//   "<|tool_call>" -> kGemma4; "<|tool_call:begin|>" -> kSolarOpen; "<|function_call|>", or
//   "function call" with "<|role_sep|>" -> kGigaChat; "<|python_tag|>", or "\"parameters\""
//   with "<|start_header_id|>" -> kLlama3; otherwise kNone.
// Cost: a few substring searches over the template.
ToolFamily detect_tool_family(std::string_view template_source);
std::string_view tool_family_name(ToolFamily f);  // "hermes", "qwen3_coder", ... ("none")

// Reasoning markers. Empty `open` = the family has no reasoning block. starts_open: the
// generation prompt already opened the block (it ends with `open`, trailing whitespace
// ignored), so the output starts inside reasoning.
struct ReasoningFormat {
  std::string open, close;
  bool starts_open = false;
};
// Rules (first match): "<seed:think>"; "[THINK]"; "<|START_THINKING|>"; "<|channel>thought"
// (Gemma 4, close "<channel|>"); "<|channel|>analysis" (gpt-oss, informative only: the
// harmony parser reads channels itself); "<think>" (Qwen3, QwQ, DeepSeek R1/V3.1, GLM,
// Kimi, MiniMax, Nemotron, ...); "Here are my reasoning steps:" (Apriel, close
// "[BEGIN FINAL RESPONSE]"). rendered_prompt_tail: the end of the rendered prompt (any
// length; only its end is looked at).
ReasoningFormat detect_reasoning(std::string_view template_source, std::string_view rendered_prompt_tail);

// Strings whose appearance starts a tool call, for a lazy grammar that activates there.
// kLlama3 gives "<|python_tag|>" and "{\"name\"" (its bare JSON form only counts as the
// first thing in the output); kFunctionaryV32 gives ">>>" (its output starts after one).
// kGptOss gives " to=functions." (its calls are a message header, see above); kNone gives {}.
std::vector<std::string> tool_call_triggers(ToolFamily f);

struct ToolCall {
  std::string id, name, arguments;  // arguments: JSON text of an object
};

struct OutputDelta {
  enum class Kind { kContent, kReasoning, kToolCallStart, kToolCallArgs };
  Kind kind;
  std::string text;  // kContent/kReasoning: text; kToolCallArgs: a fragment of the arguments JSON
  int index = -1;    // tool calls: 0, 1, ... in order
  std::string id, name;  // kToolCallStart only
};

// Incremental parser of one choice's generated text.
//
// push() takes any slice of the text (a stream cut anywhere, even inside a marker or a UTF-8
// character) and returns the deltas that are certain: text that may be the start of a
// marker is held back until it is decided, and so is an incomplete UTF-8 sequence at the
// end of a slice, so content and reasoning deltas are always whole characters.
//
// A tool call is emitted (kToolCallStart, then its whole arguments as one kToolCallArgs)
// when it has closed and validated; calls in one section (e.g. DeepSeek's
// <｜tool▁calls▁begin｜>...) are emitted when the section closes. The price of certainty:
// the client sees a call only once it is complete, never a call that later turns to text.
//
// finish() flushes: a tool call that never closed or does not parse becomes content text,
// marker included (the turn never fails); an unclosed outer section (<｜tool▁calls▁end｜>,
// <|tool_calls_section_end|>, ...) is forgiven when every call in it closed (a section whose
// last call is cut off becomes content whole), and gpt-oss's final <|call|> may be missing
// (it is a stop token the engine may strip).
//
// Whitespace: reasoning is trimmed at both ends; content whitespace next to a tool call or
// right after a reasoning block is dropped (so whitespace-only content between calls
// disappears); all other content is kept byte for byte. Reasoning opens only at the start
// of the output (after whitespace), as the templates put it there.
//
// With tools_enabled false, tool-call markers are ordinary content (reasoning is still
// parsed; kFunctionaryV32 still drops its ">>>all\n" prefix; a gpt-oss functions.* message
// gives its body as content). Invariants: concatenated kContent deltas == result().content, likewise
// reasoning; the kToolCallArgs of call i concatenate to result().tool_calls[i].arguments.
// Ids: "call_" + 24 alphanumerics derived from id_seed and the call index.
//
// Cost: O(bytes * markers) scanning of content; a pending tool call is re-scanned when text
// arrives, O(call bytes) each time (an 18 KB JSON call fed 4 bytes at a time: ~50 ms in
// all at -O2, ~10 us per push; 28 KB of plain content: <1 ms). Not thread-safe; one
// request's thread drives it.
class OutputParser {
 public:
  OutputParser(ToolFamily family, ReasoningFormat reasoning, bool tools_enabled, uint64_t id_seed);
  ~OutputParser();
  OutputParser(OutputParser&&) noexcept;
  OutputParser& operator=(OutputParser&&) noexcept;

  // Calls constrained by a grammar always parse, so they can be announced early: with this
  // on (Hermes format only), a call's start goes out as soon as its name is known and its
  // arguments stream as raw text as they arrive; the call's arguments are then exactly
  // that text (not re-printed), and a call cut off stays a call. Off by default.
  void set_stream_arguments(bool on);
  std::vector<OutputDelta> push(std::string_view text);
  // Call once, after the last push(); later push()/finish() calls return nothing.
  std::vector<OutputDelta> finish();

  struct Result {
    std::string content, reasoning;
    std::vector<ToolCall> tool_calls;
  };
  const Result& result() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tachyon::chat
