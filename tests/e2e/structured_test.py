#!/usr/bin/python3
"""Structured output and tool calls against a real `tachyon serve` (random-weight model).

usage: structured_test.py TACHYON_BIN MODEL SCHEMA_DIR

- The schema suite (SCHEMA_DIR/*.json): every schema as response_format json_schema, greedy
  and sampled; every response must parse as JSON and validate under the schema with a real
  validator (python3-jsonschema, Draft 2020-12 with its format checker). Also completions,
  json_object, regex and GBNF grammar requests.
- Tool calls: tool_choice required / a named function, stream and not; the calls' arguments
  validate under the tools' schemas; the streamed deltas assemble to the same calls.
- Bad input: clear 4xx errors that name the problem; the server keeps serving.
Exit 77 = skipped (no model / no validator).
"""
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

try:
    import jsonschema
    from jsonschema import Draft202012Validator
except ImportError:
    print("skipped: python3-jsonschema is not installed (scripts/setup.sh installs it)")
    sys.exit(77)

BIN, MODEL, SCHEMA_DIR = sys.argv[1:4]

# Draft 2020-12's format checker; Debian's jsonschema checks date-time and time only with
# rfc3339-validator, which Debian does not ship, so those two are checked here (RFC 3339:
# full-date "T" full-time, and full-time with its required offset).
FORMATS = Draft202012Validator.FORMAT_CHECKER
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"


@FORMATS.checks("time")
def _is_time(v):
    return not isinstance(v, str) or re.fullmatch(_TIME, v) is not None


@FORMATS.checks("date-time")
def _is_date_time(v):
    import datetime
    if not isinstance(v, str):
        return True
    m = re.fullmatch(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]" + _TIME, v)
    if m is None:
        return False
    try:
        datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True
if not os.path.exists(MODEL):
    print(f"skipped: model {MODEL} not found")
    sys.exit(77)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def post(url, body, stream=False, timeout=300):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read().decode()
            return r.status, data
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def sse_events(text):
    out = []
    for line in text.split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:]))
    return out


server = subprocess.Popen([BIN, "serve", "-m", MODEL, "--host", "127.0.0.1", "--port", "0", "-t", "2"],
                          stderr=subprocess.PIPE, text=True)
try:
    base = None
    deadline = time.time() + 60
    while time.time() < deadline and base is None:
        line = server.stderr.readline()
        m = re.search(r"listening on (http://\S+)", line or "")
        if m:
            base = m.group(1)
        if not line and server.poll() is not None:
            break
    if base is None:
        print("FAIL: the server did not start")
        sys.exit(1)
    # keep draining stderr so the server never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
    chat_url = base + "/v1/chat/completions"

    schemas = []
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                schemas.append((name, json.load(f)))
    check(len(schemas) >= 30, f"at least 30 schemas in the suite (found {len(schemas)})")

    def run_schema(item):
        name, schema, mode = item
        body = {"messages": [{"role": "user", "content": f"Give me an example for {name}."}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": False}},
                "max_tokens": 400}
        if mode == "greedy":
            body["temperature"] = 0
        else:
            body.update({"temperature": 1.0, "seed": 7})
        status, data = post(chat_url, body)
        if status != 200:
            return name, mode, f"HTTP {status}: {data[:300]}", None, None
        resp = json.loads(data)
        ch = resp["choices"][0]
        content = ch["message"]["content"]
        try:
            value = json.loads(content)
        except Exception as e:  # noqa: BLE001
            return name, mode, f"does not parse ({ch['finish_reason']}): {e}: {content[:200]!r}", None, ch["finish_reason"]
        errors = list(Draft202012Validator(schema, format_checker=FORMATS).iter_errors(value))
        if errors:
            return name, mode, f"invalid: {errors[0].message[:200]} in {content[:200]!r}", value, ch["finish_reason"]
        return name, mode, None, value, ch["finish_reason"]

    items = [(n, s, m) for n, s in schemas for m in ("greedy", "sampled")]
    t0 = time.time()
    ok = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        for name, mode, err, value, reason in ex.map(run_schema, items):
            if check(err is None, f"schema {name} ({mode}): {err}"):
                ok += 1
    print(f"schema suite: {ok}/{len(items)} responses parse and validate ({time.time() - t0:.1f} s)", flush=True)

    # response_format json_object, completions endpoint, regex and grammar
    status, data = post(chat_url, {"messages": [{"role": "user", "content": "json"}], "max_tokens": 800, "temperature": 0,
                                   "response_format": {"type": "json_object"}})
    if check(status == 200, f"json_object: HTTP {status} {data[:200]}"):
        c = json.loads(data)["choices"][0]["message"]["content"]
        try:
            check(isinstance(json.loads(c), dict), "json_object gives an object")
        except Exception:  # noqa: BLE001
            check(False, f"json_object parses: {c[:200]!r}")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["n"],
              "additionalProperties": False}
    status, data = post(base + "/v1/completions", {"prompt": "Once", "max_tokens": 200, "temperature": 0.7, "seed": 1,
                                                   "response_format": {"type": "json_schema",
                                                                       "json_schema": {"name": "n", "schema": schema}}})
    if check(status == 200, f"completions json_schema: HTTP {status} {data[:200]}"):
        t = json.loads(data)["choices"][0]["text"]
        try:
            jsonschema.validate(json.loads(t), schema)
        except Exception as e:  # noqa: BLE001
            check(False, f"completions json_schema output {t!r}: {e}")
    for body, pattern in [({"regex": "[A-Z][a-z]{2,5} [0-9]{3}-[0-9]{4}"}, r"[A-Z][a-z]{2,5} [0-9]{3}-[0-9]{4}"),
                          ({"grammar": 'root ::= ("yes" | "no") "!"'}, r"(yes|no)!")]:
        for temp in (0, 1.0):
            status, data = post(chat_url, {"messages": [{"role": "user", "content": "answer"}], "max_tokens": 100,
                                           "temperature": temp, "seed": 3, **body})
            if check(status == 200, f"{list(body)[0]}: HTTP {status} {data[:200]}"):
                c = json.loads(data)["choices"][0]["message"]["content"]
                check(re.fullmatch(pattern, c) is not None, f"{list(body)[0]} output {c!r} matches {pattern}")

    # Streamed structured output: the deltas concatenate to a valid instance, warnings ride on the first chunk
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["a", "b", "c"]},
                                                        "minItems": 1, "maxItems": 3},
                                               "n": {"type": "integer", "multipleOf": 3}},
              "required": ["tags", "n"], "additionalProperties": False}
    status, data = post(chat_url, {"messages": [{"role": "user", "content": "x"}], "stream": True, "max_tokens": 600,
                                   "temperature": 0,
                                   "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}})
    if check(status == 200, f"stream json_schema: HTTP {status}"):
        evs = sse_events(data)
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in evs if e.get("choices"))
        check(any("multipleOf" in w for w in evs[0].get("warnings", [])), f"warning for multipleOf on the first chunk: {evs[0]}")
        try:
            v = json.loads(text)
            check(set(v) == {"tags", "n"} and 1 <= len(v["tags"]) <= 3, f"streamed instance {v}")
        except Exception:  # noqa: BLE001
            check(False, f"streamed structured output parses: {text[:200]!r}")

    # Tool calls: forced by tool_choice, stream and not; arguments valid under the tool's schema
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string", "maxLength": 12},
                                                                             "unit": {"enum": ["C", "F"]}},
                                                              "required": ["city", "unit"], "additionalProperties": False}}},
             {"type": "function", "function": {"name": "add", "parameters": {
                 "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                 "required": ["a", "b"], "additionalProperties": False}}}]
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    for choice in ("required", {"type": "function", "function": {"name": "add"}}):
        for stream in (False, True):
            for temp in (0, 1.0):
                body = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}], "tools": tools,
                        "tool_choice": choice, "max_tokens": 400, "temperature": temp, "seed": 11, "stream": stream}
                status, data = post(chat_url, body)
                what = f"tools choice={choice if isinstance(choice, str) else 'named'} stream={stream} t={temp}"
                if not check(status == 200, f"{what}: HTTP {status} {data[:200]}"):
                    continue
                if stream:
                    evs = [e for e in sse_events(data) if e.get("choices")]
                    calls = {}
                    reason = None
                    for e in evs:
                        d = e["choices"][0]["delta"]
                        reason = e["choices"][0]["finish_reason"] or reason
                        for tc in d.get("tool_calls", []):
                            c = calls.setdefault(tc["index"], {"name": None, "arguments": "", "id": None})
                            if "id" in tc:
                                check(c["id"] is None, f"{what}: id sent once")
                                c["id"] = tc["id"]
                                c["name"] = tc["function"]["name"]
                            c["arguments"] += tc["function"].get("arguments", "")
                    calls = [calls[i] for i in sorted(calls)]
                else:
                    msg = json.loads(data)["choices"][0]
                    reason = msg["finish_reason"]
                    calls = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"], "id": c["id"]}
                             for c in msg["message"].get("tool_calls") or []]
                check(reason == "tool_calls", f"{what}: finish_reason {reason}")
                if check(len(calls) >= 1, f"{what}: at least one call ({data[:300]})"):
                    for c in calls:
                        check(c["name"] in by_name, f"{what}: known name {c['name']}")
                        if not isinstance(choice, str):
                            check(c["name"] == "add", f"{what}: the named function is called")
                        try:
                            jsonschema.validate(json.loads(c["arguments"]), by_name.get(c["name"], {}))
                        except Exception as e:  # noqa: BLE001
                            check(False, f"{what}: arguments {c['arguments']!r}: {e}")

    # Bad input: 4xx naming the problem, never a 500
    bad = [
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}}, "type"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": True,
                                                                      "schema": {"type": "object", "if": {}}}}}, "if"),
        ({"response_format": {"type": "xml"}}, "xml"),
        ({"regex": "(a)\\1"}, "backreference"),
        ({"grammar": "root ::= undefined-rule"}, "undefined"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "name"),
        ({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
    ]
    for extra, word in bad:
        status, data = post(chat_url, {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5, **extra})
        ok = check(400 <= status < 500, f"bad input {extra}: 4xx, got {status}")
        if ok:
            msg = json.loads(data)["error"]["message"]
            check(word in msg, f"bad input {extra}: the message names '{word}': {msg}")
    status, _ = post(chat_url, {"messages": [{"role": "user", "content": "still there?"}], "max_tokens": 3})
    check(status == 200, "the server keeps serving after bad input")
    # --chat-template: another model's template replaces the default; its tool format is
    # detected (Qwen2.5: Hermes) and a forced call parses; a missing file is a clean error.
    tmpl = os.path.join(os.path.dirname(MODEL), "..", "chat-templates", "Qwen-Qwen2.5-7B-Instruct.jinja")
    if os.path.exists(tmpl):
        s2 = subprocess.Popen([BIN, "serve", "-m", MODEL, "--host", "127.0.0.1", "--port", "0", "-t", "1",
                               "--chat-template", tmpl], stderr=subprocess.PIPE, text=True)
        try:
            url2 = None
            while url2 is None:
                line = s2.stderr.readline()
                if not line:
                    break
                m = re.search(r"listening on (http://\S+)", line)
                url2 = m.group(1) if m else None
            if check(url2 is not None, "serve --chat-template starts"):
                threading.Thread(target=lambda: [None for _ in s2.stderr], daemon=True).start()
                status, data = post(url2 + "/v1/chat/completions",
                                    {"messages": [{"role": "user", "content": "Weather?"}], "tools": tools[:1],
                                     "tool_choice": "required", "max_tokens": 200, "temperature": 0})
                if check(status == 200, f"--chat-template tool call: HTTP {status} {data[:200]}"):
                    msg = json.loads(data)["choices"][0]["message"]
                    check(len(msg.get("tool_calls") or []) == 1, f"--chat-template: one parsed call: {msg}")
        finally:
            s2.terminate()
            s2.wait(timeout=10)
    # Keep-alives while a long prompt prefills: Anthropic ping events, SSE comments elsewhere
    # (--sse-keep-alive 100 ms; a ~3000-token prompt prefills for well over that).
    s3 = subprocess.Popen([BIN, "serve", "-m", MODEL, "--host", "127.0.0.1", "--port", "0", "-t", "1",
                           "--sse-keep-alive", "100"], stderr=subprocess.PIPE, text=True)
    try:
        url3 = None
        while url3 is None:
            line = s3.stderr.readline()
            if not line:
                break
            m = re.search(r"listening on (http://\S+)", line)
            url3 = m.group(1) if m else None
        if check(url3 is not None, "serve --sse-keep-alive starts"):
            threading.Thread(target=lambda: [None for _ in s3.stderr], daemon=True).start()
            long_text = " ".join(f"word{i} and more text" for i in range(400))
            t0 = time.time()
            status, data = post(url3 + "/v1/messages", {"model": "m", "max_tokens": 4, "stream": True,
                                                        "messages": [{"role": "user", "content": long_text}]})
            took = time.time() - t0
            pings = data.count("event: ping")
            check(status == 200 and (pings >= 2 or took < 0.3),
                  f"Anthropic stream pings during prefill: {pings} in {took:.2f} s")
            # another text (a cached prefix would skip the prefill)
            other = " ".join(f"other{i} words here" for i in range(400))
            t0 = time.time()
            status, data = post(url3 + "/v1/chat/completions", {"max_tokens": 4, "stream": True,
                                                                 "messages": [{"role": "user", "content": other}]})
            took = time.time() - t0
            evs = sse_events(data)
            check(status == 200 and evs and evs[-1]["choices"][0]["finish_reason"] is not None,
                  "an OpenAI stream with keep-alive comments still parses")
            check(": keep-alive" in data or took < 0.3, f"SSE keep-alive comments during prefill ({took:.2f} s)")
    finally:
        s3.terminate()
        s3.wait(timeout=10)
    bad_tmpl = subprocess.run([BIN, "serve", "-m", MODEL, "--port", "0", "--chat-template", "/nonexistent.jinja"],
                              capture_output=True, text=True, timeout=60)
    check(bad_tmpl.returncode == 2 and "nonexistent" in bad_tmpl.stderr,
          f"--chat-template with a missing file: exit 2 naming it ({bad_tmpl.returncode}: {bad_tmpl.stderr[-200:]})")
finally:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("structured output: all checks passed")
