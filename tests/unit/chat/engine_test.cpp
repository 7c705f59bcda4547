// Unit tests of the template engine. Expected outputs were produced by Jinja2 3.1.6 with
// the transformers chat-template settings (see golden_test.cpp), so each case pins a
// Jinja2 behaviour: whitespace control, Python value semantics, scoping, filters, errors.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "chat/chat_template.h"
#include "test_util.h"

namespace tachyon::chat {
namespace {

using test::render;

struct Case {
  const char* src;
  const char* ctx;
  const char* want;
};

void run_cases(const std::vector<Case>& cases) {
  for (const auto& c : cases) EXPECT_EQ(render(c.src, c.ctx), c.want) << "template: " << c.src;
}

// --- whitespace control ----------------------------------------------------------------

TEST(ChatEngine, WhitespaceTrimAndLstripBlocks) {
  run_cases({
      // trim_blocks eats the newline after a block tag; lstrip_blocks the indentation
      // before it; one trailing newline of the template is dropped.
      {"<ul>\n{% for x in items %}\n  <li>{{ x }}</li>\n{% endfor %}\n</ul>\n", R"({"items": ["a", "b"]})",
       "<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>"},
      {"a\n  {%- if true %}\n    b\n  {%- endif %}\nc", "{}", "a    bc"},
      {"{% if true -%}\n\n   x   \n\n{%- endif %}|", "{}", "x|"},
      // {{ }} is never lstripped; comments are, and trim their newline
      {"  {{ 'v' }}\n  {# note #}\n  w\n", "{}", "  v\n  w"},
      // + opts out of lstrip_blocks / trim_blocks
      {"    {%+ if true %}kept{% endif %}", "{}", "    kept"},
      {"{% if true +%}\nkept newline{% endif %}", "{}", "\nkept newline"},
      {"x {#- comment -#} y", "{}", "xy"},
      {"{{- ' a ' -}}\n\n{{ 'b' }}", "{}", " a b"},
      {"{% raw %}{{ not evaluated }}{% endraw %}", "{}", "{{ not evaluated }}"},
      {"one\r\ntwo\rthree\n", "{}", "one\ntwo\nthree"},
      {"\t{% if 1 %}\tx\n\t{% endif %}\n", "{}", "\tx\n"},
  });
}

// --- expressions and Python value semantics ----------------------------------------------

TEST(ChatEngine, PythonArithmeticAndPrinting) {
  run_cases({
      {"{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1.0 }} {{ 1e-5 "
       "}}",
       "{}", "3.5 3 -4 2 1024 0.30000000000000004 1e+16 1.0 1e-05"},
      {"{{ [1, 'a', none, true, 2.5] }} {{ {'k': 'v', 'n': [1]} }} {{ (1,) }} {{ \"it's\" }}", "{}",
       "[1, 'a', None, True, 2.5] {'k': 'v', 'n': [1]} (1,) it's"},
      {"{{ [\"it's\", 'q\"x', 'a\\nb'] }}", "{}", R"(["it's", 'q"x', 'a\nb'])"},
      {"{{ 'héllo wörld'[1:4] }}|{{ 'abc'[::-1] }}|{{ 'héllo'|length }}|{{ [1,2,3][-1] }}", "{}", "éll|cba|5|3"},
      {"{{ 1 < 2 < 3 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }} {{ 'x' if false else 'y' }} {{ 0 or 'z' }} {{ 1 and "
       "'w' }}",
       "{}", "True True True y z w"},
      {"{{ 'a' ~ 1 ~ none ~ undefined_name }}|{{ 'ab' * 2 }}|{{ [1] + [2] }}|{{ true + 1 }}", "{}",
       "a1None|abab|[1, 2]|2"},
      {"{{ x.missing }}|{{ x['missing'] }}|{{ l[10] }}|{{ x.missing is defined }}", R"({"x": {}, "l": []})",
       "|||False"},
      {"{{ 0x1F }} {{ 1_000 }} {{ 'a' 'b' }} {{ -(2) }} {{ 2 ** 3 ** 2 }}", "{}", "31 1000 ab -2 64"},
  });
}

TEST(ChatEngine, MessagesAndContextVariables) {
  const char* tmpl =
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m['content'] }}]{% endfor %}"
      "{% if add_generation_prompt %}<gen>{% endif %}{{ eos_token }}{{ tools is defined }}{{ extra }}";
  RenderOptions opts;
  opts.bos_token = "<B>";
  opts.eos_token = "<E>";
  opts.extra_context = {{"extra", 7}};
  auto t = ChatTemplate::parse(tmpl);
  ASSERT_TRUE(t.is_ok());
  auto msgs = nlohmann::json::parse(R"([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])");
  auto out = t->render(msgs, nullptr, opts);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(*out, "<B>[user:hi][assistant:yo]<gen><E>False7");
  // tools: null -> undefined (as transformers passes tools=None), [] -> defined
  opts.add_generation_prompt = false;
  out = t->render(msgs, nlohmann::json::array(), opts);
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(*out, "<B>[user:hi][assistant:yo]<E>True7");
}

TEST(ChatEngine, DictsKeepInsertionOrder) {
  // render_ordered keeps the request's key order (tojson of tool schemas depends on it)
  EXPECT_EQ(render("{% set d = messages[0] %}{{ d|tojson }} {% for k in d %}{{ k }}{% endfor %}",
                   R"({"messages": [{"z": 1, "a": 2}]})"),
            R"({"z": 1, "a": 2} za)");
  EXPECT_EQ(render("{{ {'z': 1, 'a': 2} }}"), "{'z': 1, 'a': 2}");
}

// --- statements, loops, scoping -------------------------------------------------------------

TEST(ChatEngine, LoopVariables) {
  run_cases({
      {"{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}"
       "{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}",
       "{}", "103TrueFalse3b;212FalseFalse3ac;321FalseTrue3b;"},
      // nested loops: each has its own loop (and loop.cycle)
      {"{% for row in [[1, 2], [3]] %}{% for x in row %}{{ loop.cycle('odd', 'even') }}:{{ x }} {% endfor %}"
       "{{ loop.cycle('A', 'B') }}|{% endfor %}",
       "{}", "odd:1 even:2 A|odd:3 B|"},
      {"{% for x in [1, 1, 2, 3, 3] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}", "{}", "123"},
      {"{% for x in [] %}x{% else %}empty{% endfor %} {% for x in range(10) if x is odd %}{{ x }}{% endfor %}", "{}",
       "empty 13579"},
      {"{% for i in range(10) %}{% if i == 5 %}{% break %}{% endif %}{% if i is even %}{% continue %}{% endif %}"
       "{{ i }}{% endfor %}",
       "{}", "13"},
      {"{% for k, v in {'b': 1, 'a': 2}.items() %}{{ k }}={{ v }} {% endfor %}"
       "{% for k, v in {'b': 1, 'a': 2}|dictsort %}{{ k }}={{ v }} {% endfor %}",
       "{}", "b=1 a=2 a=2 b=1 "},
      {"{% for c in 'hé' %}[{{ c }}]{% endfor %}", "{}", "[h][é]"},
  });
}

TEST(ChatEngine, Scoping) {
  run_cases({
      // set inside a loop does not leak out; namespace attributes do
      {"{% set total = 0 %}{% for i in [1, 2] %}{% set total = total + i %}{% endfor %}{{ total }} "
       "{% set ns = namespace(total=0) %}{% for i in [1, 2] %}{% set ns.total = ns.total + i %}{% endfor %}{{ ns.total "
       "}}",
       "{}", "0 3"},
      // each iteration starts from the outer value
      {"{% set x = 0 %}{% for i in range(3) %}{% if i == 1 %}{% set x = 5 %}{% endif %}{{ x }}{% endfor %}{{ x }}",
       "{}", "0500"},
      // macros see their definition scope, live
      {"{% macro m() %}{{ g }}{% endmacro %}{% set g = 'G' %}{{ m() }}", "{}", "G"},
      {"{% macro m() %}{{ x }}{% endmacro %}{% for x in [5] %}{{ m() }}{% endfor %}", "{}", ""},
      // a name assigned in a frame starts undefined there for nested loops (Jinja2 idtracking)
      {"{% for i in [1] %}{{ n }}{% endfor %}{% set n = 1 %}{{ n }}", R"({"n": 3})", "1"},
      {"{{ n }}{% set n = n + 1 %}{{ n }}", R"({"n": 3})", "34"},
      {"{% with a = 1 %}{{ a }}{% endwith %}{{ a }}", "{}", "1"},
  });
}

TEST(ChatEngine, MacrosAndCallBlocks) {
  run_cases({
      {"{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}"
       "{{ greet('A') }} {{ greet('B', 'Hi') }} {{ greet('C', punct='?') }}",
       "{}", "Hello, A! Hi, B! Hello, C?"},
      {"{% macro list(items) %}<{% for i in items %}{{ caller(i) }}{% endfor %}>{% endmacro %}"
       "{% call(item) list([1, 2]) %}[{{ item * 10 }}]{% endcall %}",
       "{}", "<[10][20]>"},
      {"{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * (fact(n - 1)|int) }}{% endif %}{% endmacro %}{{ fact(10) "
       "}}",
       "{}", "3628800"},
      {"{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, k='v') }}", "{}", "(1, 2){'k': 'v'}"},
      {"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}", "{}",
       "ERROR: TypeError: macro 'm' takes not more than 1 argument(s)"},
      {"{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}", "{}",
       "ERROR: TypeError: macro 'm' takes no keyword argument 'b'"},
      {"{% set x %}Hello {{ 'block' }}{% endset %}[{{ x }}] {% filter upper %}shout {{ 'this' }}{% endfilter %}", "{}",
       "[Hello block] SHOUT THIS"},
  });
}

// --- filters, tests, methods ------------------------------------------------------------------

TEST(ChatEngine, Filters) {
  run_cases({
      {"{{ '  hi  '|trim }}|{{ 'a b'|upper }}|{{ 'Hello'|lower }}|{{ 'hello world'|title }}|{{ 'hELLO'|capitalize }}|"
       "{{ 'a-b'|replace('-', '+') }}|{{ [1, 2]|join(', ') }}|{{ [3, 1, 2]|sort }}|{{ ['b', 'A', 'c']|sort }}|"
       "{{ [1, 2, 2, 3]|unique|list }}|{{ [1, 2, 3]|reverse|list }}|{{ [1, 2, 3]|first }}|{{ [1, 2, 3]|last }}|"
       "{{ [1, 2, 3]|length }}|{{ undefined_var|default('dflt') }}|{{ ''|default('e', true) }}|{{ '42'|int + 1 }}|"
       "{{ '2.5'|float }}|{{ -3|abs }}|{{ 2.567|round(2) }}|{{ 42|string }}|{{ 'x\\ny'|indent(2, true) }}|"
       "{{ [{'n': 'a'}, {'n': 'b'}]|map(attribute='n')|join }}|{{ ['a', 'b']|map('upper')|list }}|"
       "{{ [1, 2, 3, 4]|select('even')|list }}|{{ [1, 2, 3, 4]|reject('even')|list }}|"
       "{{ [{'t': 'x'}, {'t': 'y'}]|selectattr('t', 'equalto', 'y')|list }}|{{ [{'t': 'x'}, {}]|rejectattr('t')|list "
       "}}|"
       "{{ 'one two three'|wordcount }}|{{ '<a>'|e }}|{{ [1, 2, 3, 4, 5]|batch(2)|list }}|{{ {'b': 1, 'a': "
       "2}|items|list }}|"
       "{{ [{'v': 2}, {'v': 1}]|sort(attribute='v') }}|{{ [1, 2]|sum }}|{{ [3, 1]|max }}",
       "{}",
       "hi|A B|hello|Hello World|Hello|a+b|1, 2|[1, 2, 3]|['A', 'b', 'c']|[1, 2, 3]|[3, 2, 1]|1|3|3|dflt|e|43|2.5|3|"
       "2.57|42|  x\n  y|ab|['A', 'B']|[2, 4]|[1, 3]|[{'t': 'y'}]|[{}]|3|&lt;a&gt;|[[1, 2], [3, 4], [5]]|"
       "[('b', 1), ('a', 2)]|[{'v': 1}, {'v': 2}]|3|3"},
      // map/select results are generators: printable, not JSON-serialisable
      {"{{ [1]|map('string')|tojson }}", "{}", "ERROR: TypeError: Object of type generator is not JSON serializable"},
      // markupsafe: Markup + str escapes the str
      {"{{ '<b>'|safe + '<i>' }}|{{ '<b>' ~ '<i>'|safe }}", "{}", "<b>&lt;i&gt;|<b><i>"},
  });
}

TEST(ChatEngine, Tests) {
  EXPECT_EQ(render("{{ x is defined }} {{ none is none }} {{ 1 is number }} {{ 'a' is string }} {{ {} is mapping }} "
                   "{{ [] is iterable }} {{ 'a' is sequence }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} "
                   "{{ true is boolean }} {{ false is false }} {{ 2 is eq 2 }} {{ 1.5 is float }} {{ 1 is integer }} "
                   "{{ true is integer }} {{ x is not defined }}"),
            "False True True True True True True True True True True True True True False True");
}

TEST(ChatEngine, StringAndDictMethods) {
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.rsplit(' ', 1) }} "
                   "{{ 'xxhixx'.strip('x') }} {{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('lo', 'x')) }} "
                   "{{ 'hello'.find('l') }} {{ 'hello'.count('l') }} {{ '{} and {name}'.format(1, name='N') }} "
                   "{{ '-'.join(['a', 'b']) }} {{ {'k': 1}.get('k') }} {{ {'k': 1}.get('z', 'd') }} "
                   "{{ {'k': 1}.keys()|list }} {{ 'ab'.upper() }} {{ 'a%sc' % 'b' }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a b', 'c'] hi True True 2 2 1 and N a-b 1 d ['k'] AB abc");
}

TEST(ChatEngine, ToJsonEscaping) {
  // ensure_ascii=False, Python separators; quotes, backslashes, newlines, control chars
  EXPECT_EQ(render("{{ {'a': 'é\"\\\\\\n\\t\\x01<>&', 'b': [1, 2.5, none, true]}|tojson }}"),
            "{\"a\": \"é\\\"\\\\\\n\\t\\u0001<>&\", \"b\": [1, 2.5, null, true]}");
  EXPECT_EQ(render("{{ 'é😀'|tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': [1, {}]}|tojson(indent=2, sort_keys=true) }} "
                   "{{ [1, 2]|tojson(separators=(',', ':')) }}"),
            "\"\\u00e9\\ud83d\\ude00\" {\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": 1\n} [1,2]");
  // message content straight from JSON input
  EXPECT_EQ(render("{{ s|tojson }}", R"({"s": "line1\nline2 \"q\" \u2028 \u0007"})"),
            "\"line1\\nline2 \\\"q\\\" \u2028 \\u0007\"");
}

TEST(ChatEngine, StrftimeNow) {
  EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d %H:%M:%S %A %d %B %Y %-d %b') }}"),
            "2026-11-27 12:00:00 Friday 27 November 2026 27 Nov");
  RenderOptions real;  // empty strftime_now_iso: the real clock
  std::string year = render("{{ strftime_now('%Y') }}", "{}", &real);
  ASSERT_EQ(year.size(), 4u) << year;
  EXPECT_GE(std::stoi(year), 2024);
}

// --- errors -------------------------------------------------------------------------------------

TEST(ChatEngine, RuntimeErrorsAreStatuses) {
  run_cases({
      {"{{ raise_exception('Only user and assistant roles are supported!') }}", "{}",
       "ERROR: TemplateError: Only user and assistant roles are supported!"},
      {"{{ x.y.z }}", R"({"x": {}})", "ERROR: UndefinedError: 'dict object' has no attribute 'y'"},
      {"{{ missing + 1 }}", "{}", "ERROR: UndefinedError: 'missing' is undefined"},
      {"{{ 'a' + 1 }}", "{}", "ERROR: TypeError: can only concatenate str (not \"int\") to str"},
      {"{{ 1 / 0 }}", "{}", "ERROR: ZeroDivisionError: division by zero"},
      {"{{ 1 < 'a' }}", "{}", "ERROR: TypeError: '<' not supported between instances of 'int' and 'str'"},
      // the sandbox forbids mutating lists and dicts
      {"{% set l = [] %}{% set _ = l.append(1) %}", "{}",
       "ERROR: SecurityError: access to attribute 'append' of 'list' object is unsafe."},
      {"{{ {'a': 1}.update({'b': 2}) }}", "{}",
       "ERROR: SecurityError: access to attribute 'update' of 'dict' object is unsafe."},
      {"{% set d = {} %}{% set d.x = 1 %}", "{}",
       "ERROR: TemplateRuntimeError: cannot assign attribute on non-namespace object"},
      {"{{ range(1000000)|length }}", "{}",
       "ERROR: OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000)."},
  });
}

TEST(ChatEngine, SyntaxErrorsNameTheLine) {
  EXPECT_EQ(render("line 1\nline 2\n{% if %}\n"),
            "ERROR: chat template syntax error at line 3: Expected an expression, got 'end of statement block'");
  EXPECT_EQ(render("{% for x in y %}\n{% endif %}"),
            "ERROR: chat template syntax error at line 2: Encountered unknown tag 'endif'. Jinja was looking for the "
            "following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'.");
  EXPECT_EQ(render("{% if x %}\n\nno end"),
            "ERROR: chat template syntax error at line 3: Unexpected end of template. Jinja was looking for the end of "
            "the 'if' block.");
  EXPECT_EQ(render("a\n{% generation %}"),
            "ERROR: chat template syntax error at line 2: Encountered unknown tag 'generation'.");
  EXPECT_EQ(render("{{ x|no_such_filter }}"),
            "ERROR: chat template syntax error at line 1: No filter named 'no_such_filter'.");
  // ... except in if statements, where Jinja2 defers the error to evaluation
  EXPECT_EQ(render("{% if false %}{{ x|no_such_filter }}{% endif %}ok"), "ok");
  EXPECT_EQ(render("{{ 'abc }}"), "ERROR: chat template syntax error at line 1: unexpected char \"'\" at 3");
  EXPECT_EQ(render("{{ x ^ 1 }}"), "ERROR: chat template syntax error at line 1: unexpected char '^' at 5");
  EXPECT_EQ(render("ok\n\xff"), "ERROR: chat template syntax error at line 2: template is not valid UTF-8 (byte 3)");
  // "\ud83d\ude00" escapes join into one code point; a lone surrogate becomes U+FFFD
  EXPECT_EQ(render("{{ '\\ud83d\\ude00' }}{{ '\\ud800'|length }}"), "😀1");
  EXPECT_EQ(render("{# unclosed"), "ERROR: chat template syntax error at line 1: Missing end of comment tag");
  EXPECT_EQ(render("{% break %}"), "ERROR: chat template syntax error at line 1: 'break' outside loop");
}

// --- hostile templates: errors, never crashes or hangs -------------------------------------------

TEST(ChatEngine, HostileTemplatesHitLimits) {
  auto starts_with = [](const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; };
  // unbounded recursion
  EXPECT_TRUE(starts_with(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"), "ERROR: RecursionError"));
  // exponential output: doubling a string
  EXPECT_TRUE(starts_with(render("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
                                 "{% endfor %}{{ ns.s|length }}"),
                          "ERROR: ResourceLimitError"));
  // huge repetition in one step
  EXPECT_TRUE(starts_with(render("{{ 'x' * 100000000000 }}"), "ERROR: ResourceLimitError"));
  EXPECT_TRUE(starts_with(render("{{ [1] * 100000000000 }}"), "ERROR: ResourceLimitError"));
  // 10^10 loop iterations
  EXPECT_TRUE(starts_with(render("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
                          "ERROR: ResourceLimitError"));
  // exponentially large printed structure built from shared parts
  EXPECT_TRUE(starts_with(render("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
                                 "{% endfor %}{{ ns.l }}"),
                          "ERROR: ResourceLimitError"));
  // a value nested 100000 levels deep: printing, comparing and freeing it stay iterative
  // or bounded (RecursionError) instead of overflowing the stack
  const char* deep =
      "{% set ns = namespace(a=[], b=[]) %}{% for i in range(100000) %}{% set ns.a = [ns.a] %}"
      "{% set ns.b = [ns.b] %}{% endfor %}";
  EXPECT_EQ(render(std::string(deep) + "{{ ns.a|length }}"), "1");
  EXPECT_TRUE(starts_with(render(std::string(deep) + "{{ ns.a }}"), "ERROR: RecursionError"));
  EXPECT_TRUE(starts_with(render(std::string(deep) + "{{ ns.a == ns.b }}"), "ERROR: RecursionError"));
  EXPECT_TRUE(starts_with(render(std::string(deep) + "{{ ns.a|tojson }}"), "ERROR: RecursionError"));
  EXPECT_EQ(
      render("{% set ns = namespace(cur=none) %}{% for i in range(100000) %}{% set ns.cur = namespace(prev=ns.cur) %}"
             "{% endfor %}{{ ns.cur.prev.prev is defined }}"),
      "True");
  // deep nesting in the source
  EXPECT_TRUE(starts_with(render("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
                          "ERROR: chat template syntax error"));
  std::string deep_ifs;
  for (int i = 0; i < 5000; ++i) deep_ifs += "{% if true %}";
  EXPECT_TRUE(starts_with(render(deep_ifs), "ERROR: chat template syntax error"));
  // deep nesting times recursion stays within the C++ stack
  std::string nested = "{% macro f(n) %}";
  for (int i = 0; i < 150; ++i) nested += "{% if true %}";
  nested += "{{ f(n + 1) }}";
  for (int i = 0; i < 150; ++i) nested += "{% endif %}";
  nested += "{% endmacro %}{{ f(0) }}";
  EXPECT_TRUE(starts_with(render(nested), "ERROR: RecursionError"));
}

TEST(ChatEngine, LimitsAreConfigurable) {
  RenderOptions opts;
  opts.limits.max_output_bytes = 100;
  EXPECT_EQ(render("{{ 'x' * 50 }}", "{}", &opts), std::string(50, 'x'));
  EXPECT_EQ(render("{{ 'x' * 101 }}", "{}", &opts).rfind("ERROR: ResourceLimitError", 0), 0u);
  opts.limits.max_call_depth = 3;
  EXPECT_EQ(render("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}.{% endmacro %}{{ f(2) }}", "{}", &opts), "...");
  EXPECT_EQ(render("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}.{% endmacro %}{{ f(3) }}", "{}", &opts)
                .rfind("ERROR: RecursionError", 0),
            0u);
}

// --- API ------------------------------------------------------------------------------------------

TEST(ChatEngine, DefaultTemplateIsChatML) {
  auto t = ChatTemplate::parse(default_template());
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  auto msgs = nlohmann::json::parse(R"([{"role": "system", "content": "S"},
      {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image"}, {"type": "text", "text": "!"}]},
      {"role": "assistant", "content": null, "tool_calls": []}])");
  RenderOptions opts;
  auto out = t->render(msgs, nullptr, opts);
  ASSERT_TRUE(out.is_ok()) << out.status().message();
  EXPECT_EQ(*out,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nlook!<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatEngine, ConcurrentRendersShareOneTemplate) {
  auto t = ChatTemplate::parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content|length %}{% endfor %}{{ ns.n "
      "}}");
  ASSERT_TRUE(t.is_ok());
  std::vector<std::thread> threads;
  std::vector<std::string> results(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      nlohmann::json msgs = nlohmann::json::array();
      for (int k = 0; k <= i; ++k) msgs.push_back({{"role", "user"}, {"content", "abc"}});
      for (int rep = 0; rep < 200; ++rep) {
        auto out = t->render(msgs, nullptr, RenderOptions{});
        results[i] = out.is_ok() ? *out : out.status().message();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 8; ++i) EXPECT_EQ(results[i], std::to_string(3 * (i + 1)));
}

}  // namespace
}  // namespace tachyon::chat
