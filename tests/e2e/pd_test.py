#!/usr/bin/python3
"""Prefill/decode disaggregation (issue 24, part 3) with real processes on loopback.

usage: pd_test.py TACHYON_BIN SHARED_DATA_DIR     (model: DIR/models/code-tiny-Q8_0.gguf)

Processes: a colocated `serve` (the reference), `serve --role prefill`, `serve --role
decode`, and `router --prefill P --decode D --tokenizer MODEL --pd-min-prompt 64`.
a) identity: long prompts (chat, completions; buffered and streamed) through the PD router
   give exactly the colocated worker's greedy text, and each was a real transfer: the
   router's tachyon_router_pd_transfers_total grows by one per request, the decode
   worker's usage reports the prompt's full pages as cached (from l2, where imports land),
   and the prefill worker exported them.
b) short prompts skip the transfer (pd_skipped grows, output still identical).
c) integrity at the decode worker: a transfer with one flipped payload byte, one from
   a prefill worker with another --ctx (another root key), and garbage are refused
   with 400 naming the reason; the role endpoints are closed on other roles (import: 404 on
   the colocated worker; export header: 409 on the decode worker).
d) fallback: the prefill worker killed, long prompts through the router still succeed
   with the same text (the decode worker prefills itself) and the fallbacks are counted.
Exit 0 = pass, 1 = failure (each printed as FAIL: ...), 77 = skipped (no model / no router).
"""
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse

import proc_util

if len(sys.argv) < 3:
    print("usage: pd_test.py TACHYON_BIN SHARED_DATA_DIR")
    sys.exit(2)
BIN = sys.argv[1]
MODEL = os.path.join(sys.argv[2], "models", "code-tiny-Q8_0.gguf")
if not os.path.exists(MODEL):
    print(f"skipped: model {MODEL} not found")
    sys.exit(77)
if subprocess.run([BIN, "router", "--help"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
    print(f"skipped: {BIN} has no router command")
    sys.exit(77)

failures = []
procs = []
T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:6.2f}s] {msg}", flush=True)


def check(cond, what):
    if not cond:
        failures.append(what)
        log("FAIL: " + what)
    return cond


class Proc(proc_util.Proc):
    def __init__(self, cmd, name):
        super().__init__(cmd, name, procs)


def serve(name, *extra, ctx=2048):
    return Proc([BIN, "serve", "-m", MODEL, "--port", "0", "-t", "1", "--ctx", str(ctx), "--no-webui", *extra], name)


def request(base, method, path, body=None, headers=None, raw=None, timeout=60):
    """(status, headers dict, body bytes)."""
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        h = {}
        if body is not None:
            h["Content-Type"] = "application/json"
        if raw is not None:
            h["Content-Type"] = "application/octet-stream"
        h.update(headers or {})
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def metric(base, name, label=""):
    st, _, text = request(base, "GET", "/metrics")
    for line in text.decode().splitlines():
        if line.startswith(name + (label if label else " ")) or (not label and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def generate(base, kind, text, stream, max_tokens=24):
    """(text, usage) of a greedy request."""
    if kind == "chat":
        path = "/v1/chat/completions"
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, "temperature": 0}
    else:
        path = "/v1/completions"
        body = {"prompt": text, "max_tokens": max_tokens, "temperature": 0}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    st, _, data = request(base, "POST", path, body)
    if st != 200:
        raise RuntimeError(f"{path} -> {st}: {data[:300]!r}")
    if not stream:
        j = json.loads(data)
        c = j["choices"][0]
        return (c["message"]["content"] if kind == "chat" else c["text"]), j.get("usage")
    out, usage = "", None
    for line in data.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if ev.get("usage"):
            usage = ev["usage"]
        for c in ev.get("choices", []):
            out += (c.get("delta", {}).get("content") or "") if kind == "chat" else (c.get("text") or "")
    return out, usage


def code_text(seed, lines):
    names = ["alpha", "beta", "gamma", "delta", "value", "count", "items", "total"]
    out = [f"# module {seed}"]
    for i in range(lines):
        a, b = names[(seed + i) % 8], names[(seed * 3 + i) % 8]
        out.append(f"def f_{seed}_{i}({a}, {b}):\n    return {a} * {i} + {b}  # {seed}")
    return "\n".join(out)


def main():
    try:
        ref = serve("colocated")
        pre = serve("prefill", "--role", "prefill")
        dec = serve("decode", "--role", "decode")
        router = Proc([BIN, "router", "--port", "0", "--health-interval", "200", "--prefill", pre.base, "--decode",
                       dec.base, "--tokenizer", MODEL, "--pd-min-prompt", "64"], "router")
        # a) identity and real transfers
        n = 0
        for i, (kind, stream) in enumerate([("completions", False), ("chat", False), ("completions", True),
                                            ("chat", True)]):
            text = code_text(10 + i, 30)
            want, _ = generate(ref.base, kind, text, stream)
            before = metric(router.base, "tachyon_router_pd_transfers_total")
            got, usage = generate(router.base, kind, text, stream)
            after = metric(router.base, "tachyon_router_pd_transfers_total")
            check(got == want, f"a) {kind} stream={stream}: PD text differs from colocated:\n{got!r}\n{want!r}")
            check(after == before + 1, f"a) {kind} stream={stream}: transfers {before} -> {after}")
            if check(usage is not None, f"a) {kind} stream={stream}: no usage"):
                pt = usage["prompt_tokens"]
                cached = usage.get("prompt_tokens_details", {}).get("cached_tokens", 0)
                tiers = usage.get("prompt_tokens_details", {}).get("cached_tokens_by_tier", {})
                # every full page cached: imported ones from l2 (a page an earlier request left
                # in the pool, such as the chat template's start, from l1)
                check(pt > 300 and cached == (pt // 16) * 16 and tiers.get("l2", 0) >= cached - 32 and
                      tiers.get("l1", 0) + tiers.get("l2", 0) == cached,
                      f"a) {kind} stream={stream}: prompt {pt}, cached {cached} ({tiers}); want every full page, from l2")
            n += 1
        exported = metric(pre.base, "tachyon_kv_transfer_exported_pages_total")
        imported = metric(dec.base, "tachyon_kv_transfer_imported_pages_total")
        # pages the decode worker held already (a shared start) are not imported twice
        check(exported > 0 and exported - 8 <= imported <= exported, f"a) exported {exported} pages, imported {imported}")
        log(f"a) {n} requests identical through PD; {exported:.0f} pages moved")

        # b) short prompts go straight to decode
        skipped = metric(router.base, "tachyon_router_pd_skipped_total")
        want, _ = generate(ref.base, "chat", "hi", False)
        got, _ = generate(router.base, "chat", "hi", False)
        check(got == want, "b) short prompt: text differs")
        check(metric(router.base, "tachyon_router_pd_skipped_total") == skipped + 1, "b) short prompt not skipped")
        log("b) short prompt skipped the transfer")

        # c) integrity
        text = code_text(77, 25)
        st, h, kv = request(pre.base, "POST", "/v1/completions", {"prompt": text, "max_tokens": 4},
                            {"X-Tachyon-KV-Export": "1"})
        check(st == 200 and h.get("content-type", "").startswith("application/octet-stream") and
              int(h.get("x-tachyon-kv-pages", "0")) > 5, f"c) export: {st} {h}")
        bad = bytearray(kv)
        bad[len(bad) - 100] ^= 1
        st, _, body = request(dec.base, "POST", "/internal/kv/import", raw=bytes(bad))
        check(st == 400 and b"checksum" in body, f"c) flipped byte: {st} {body[:200]!r}")
        st, _, body = request(dec.base, "POST", "/internal/kv/import", raw=b"garbage" * 10)
        check(st == 400, f"c) garbage: {st}")
        other = serve("prefill-ctx", "--role", "prefill", ctx=1024)
        st, _, kv2 = request(other.base, "POST", "/v1/completions", {"prompt": text, "max_tokens": 4},
                             {"X-Tachyon-KV-Export": "1"})
        st, _, body = request(dec.base, "POST", "/internal/kv/import", raw=kv2)
        check(st == 400 and b"root key" in body, f"c) other --ctx: {st} {body[:200]!r}")
        other.kill()
        st, _, body = request(dec.base, "POST", "/internal/kv/import", raw=kv)
        check(st == 200 and json.loads(body)["imported_pages"] > 0, f"c) the intact transfer: {st} {body[:200]!r}")
        st, _, _ = request(ref.base, "POST", "/internal/kv/import", raw=kv)
        check(st == 404, f"c) import on a colocated worker: {st}")
        st, _, _ = request(dec.base, "POST", "/v1/completions", {"prompt": text, "max_tokens": 4},
                           {"X-Tachyon-KV-Export": "1"})
        check(st == 409, f"c) export header on a decode worker: {st}")
        log("c) integrity checks refused every bad transfer")

        # d) the prefill worker dies: the decode worker prefills itself
        pre.kill()
        fb = metric(router.base, "tachyon_router_pd_fallbacks_total", '{reason="prefill"}')
        for i in range(2):
            text = code_text(200 + i, 30)
            want, _ = generate(ref.base, "completions", text, False)
            got, usage = generate(router.base, "completions", text, False)
            check(got == want, f"d) fallback request {i}: text differs")
        fb2 = metric(router.base, "tachyon_router_pd_fallbacks_total", '{reason="prefill"}')
        check(fb2 >= fb + 1, f"d) prefill fallbacks {fb} -> {fb2}")
        log(f"d) prefill worker killed: requests served by the decode worker alone ({fb2 - fb:.0f} fallbacks)")
    except Exception as e:  # noqa: BLE001 - report, then clean up
        import traceback
        traceback.print_exc()
        check(False, f"unexpected {type(e).__name__}: {e}")
    finally:
        for p in procs:
            p.kill()
    log(f"{'PASS' if not failures else 'FAIL'} ({len(failures)} failures) in {time.time() - T0:.1f} s")
    for f in failures:
        print("FAIL:", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
