#!/usr/bin/env python3
"""Speculative decoding on tachyon serve: acceptance and decode speedup per mode.

Starts `tachyon serve -m MODEL --spec MODE` for each mode (off first), sends greedy
completions of held-out code (prompts: the first lines of N chunks of the file), single
stream and CONC streams at once, and reports per mode: decode tokens/s (sum of generated
tokens over the wall time of the decode phase, from the servers' `timings`), acceptance
(accepted / drafted draft tokens), mean accepted tokens per verify step, and the speedup
over off. Every mode's outputs must equal off's token for token (greedy): a mismatch is
reported and the exit code is 1.

usage: bench/spec_bench.py --bin build/tachyon --model ../shared/data/models/code-tiny-F16.gguf
       [--text ../shared/data/text/code-heldout.py.txt] [--modes off,ngram,draft,auto] [--prompts 8]
       [--tokens 128] [--conc 8] [--threads 2] [--draft ../shared/data/models/code-tiny-draft-F16.gguf]

With --draft, modes draft and auto run with that draft model (auto: the draft model at
the length the engine's measured costs and acceptance favour); without it, auto uses
n-gram lookup. The per-step columns: accepted tokens per verify step (mean accepted
length) and tokens per step (1 + that, over the sequence-steps that verified a draft).
"""
import argparse, json, re, socket, subprocess, sys, threading, time, urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(binary, model, mode, threads, extra):
    port = free_port()
    proc = subprocess.Popen([binary, "serve", "-m", model, "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
                             "--spec", mode] + extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = "http://127.0.0.1:%d" % port
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url
        except Exception:
            time.sleep(0.1)
            if proc.poll() is not None:
                sys.exit("server did not start: " + proc.stderr.read())
    sys.exit("server did not start")


def complete(url, prompt, tokens):
    body = {"prompt": prompt, "max_tokens": tokens, "temperature": 0, "ignore_eos": True}
    req = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def run(url, prompts, tokens, conc):
    results = [None] * len(prompts)
    idx = [0]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = idx[0]
                idx[0] += 1
            if i >= len(prompts):
                return
            results[i] = complete(url, prompts[i], tokens)

    t0 = time.time()
    ths = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    wall = time.time() - t0
    gen = sum(r["usage"]["completion_tokens"] for r in results)
    drafted = sum(r["timings"].get("draft_tokens", 0) for r in results)
    steps = sum(r["timings"].get("verify_steps", 0) for r in results)
    accepted = sum(r["timings"].get("accepted_tokens", 0) for r in results)
    decode_ms = sum(r["timings"]["predicted_ms"] for r in results)
    texts = [r["choices"][0]["text"] for r in results]
    return {"wall_s": wall, "tokens": gen, "tok_per_s": gen / wall, "decode_tok_per_s_per_stream": 1e3 * gen / decode_ms if decode_ms else 0,
            "drafted": drafted, "accepted": accepted, "verify_steps": steps, "texts": texts}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/tachyon")
    ap.add_argument("--model", default="../shared/data/models/code-tiny-F16.gguf")
    ap.add_argument("--text", default="../shared/data/text/code-heldout.py.txt")
    ap.add_argument("--modes", default="off,ngram,auto")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--lines", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extra", default="", help="more serve flags, e.g. '--spec-max 6'")
    ap.add_argument("--json", default="")
    ap.add_argument("--draft", default="", help="draft model for modes draft and auto")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="measure the first pass (default: a full unmeasured pass first)")
    ap.add_argument("--spec-max", type=int, default=0, help="--spec-max for the server (0: its default)")
    a = ap.parse_args()
    lines = open(a.text, encoding="utf-8", errors="replace").read().split("\n")
    step = max(1, len(lines) // (a.prompts + 1))
    prompts = ["\n".join(lines[i * step:i * step + a.lines]) + "\n" for i in range(1, a.prompts + 1)]
    # the warm-up pass: other chunks of the file (between the measured ones), so that the
    # shared n-gram index cannot hand the measured pass its own earlier outputs
    warm = ["\n".join(lines[i * step + step // 2:i * step + step // 2 + a.lines]) + "\n" for i in range(1, a.prompts + 1)]
    modes = a.modes.split(",")
    if modes[0] != "off":
        modes = ["off"] + [m for m in modes if m != "off"]
    out = {}
    bad = 0
    for streams in (1, a.conc):
        for mode in modes:
            extra = a.extra.split() if a.extra else []
            if a.draft and mode in ("draft", "auto"):
                extra += ["--draft", a.draft]
            if a.spec_max:
                extra += ["--spec-max", str(a.spec_max)]
            proc, url = start(a.bin, a.model, mode, a.threads, extra)
            try:
                # Warm-up: the whole workload once, unmeasured. A server measures its own step
                # costs (and auto which drafter pays) on its first requests; what a long-running
                # server gives is the second pass.
                run(url, warm, a.tokens if a.warmup else 4, streams)
                r = run(url, prompts, a.tokens, streams)
            finally:
                proc.terminate()
                proc.wait()
            out[(streams, mode)] = r
            base = out[(streams, "off")]
            same = sum(x == y for x, y in zip(r["texts"], base["texts"]))
            if same != len(prompts):
                bad += 1
            acc = r["accepted"] / r["drafted"] if r["drafted"] else 0.0
            per_step = r["accepted"] / r["verify_steps"] if r["verify_steps"] else 0.0
            print("streams %d  %-6s  %7.1f tok/s  %5.2fx  drafted %6d  accepted %6d (%4.1f%%)  accepted/step %4.2f  "
                  "tokens/step %4.2f  identical to off %d/%d" %
                  (streams, mode, r["tok_per_s"], r["tok_per_s"] / base["tok_per_s"], r["drafted"], r["accepted"], 100 * acc,
                   per_step, 1 + per_step if r["verify_steps"] else 1.0, same, len(prompts)), flush=True)
    if a.json:
        json.dump({"%d/%s" % k: {kk: vv for kk, vv in v.items() if kk != "texts"} for k, v in out.items()},
                  open(a.json, "w"), indent=1)
    sys.exit(1 if bad else 0)


main()
