#!/usr/bin/env python3
"""Prefill/decode disaggregation benchmark (issue 24): does moving long prompts' prefill to
its own worker keep chat streams smooth, at the same throughput?

usage: python3 bench/pd_bench.py --model bench/models/M.gguf [--tachyon build/tachyon]
           [--ctx 4096] [--long-tokens 2000] [--long-interval 15] [--chat-clients 3]
           [--duration 60 | --chat-turns N] [--quick] [--json FILE] [--seed 1]

Two configurations on the SAME two cores (--cores, default 0,1), every worker `--threads 1`
and pinned with taskset, the router unpinned (it mostly waits on sockets):
  colocated  two `tachyon serve` workers (default role), one per core, behind
             `tachyon router --policy least_load --worker A --worker B`;
  pd         `serve --role prefill` on the first core, `serve --role decode` on the second,
             behind `tachyon router --prefill P --decode D` (the router's PD mode).
Load, identical in both (fixed seed): --chat-clients closed-loop clients, each sending
streamed chat turns back to back (a fresh user message of 50-150 tokens of random words,
max_tokens 64, temperature 0, ignore_eos so every reply has the same length), plus an
open-loop "long prompt" client that starts a --long-tokens prompt (distinct text each
time, so no cache hits; max_tokens 16) every --long-interval seconds. With --duration the
load runs that long (requests under way then finish and count); with --chat-turns each
chat client sends that many turns and the long client stops with the last of them.
Measured: per chat stream the gaps between SSE content chunks (inter-token latency, the
"TPOT" the goal is about) -> p50/p90/p99 over all gaps; chat TTFT p50/p99; long-prompt
TTFT p50; generated tokens (usage) / wall time; requests completed. Then PD vs colocated:
p99 TPOT ratio colocated/pd (goal >= 2) and throughput ratio pd/colocated (goal >= 0.8,
i.e. within 20%). After the pd run the router's /metrics must show transfers: a run where
every long prompt fell back to local prefill is not a PD run, and the report says so.
Defaults (the README's run): long prompts every 15 s (one prefill core does ~130 tokens/s
of TinyLlama-1.1B: a 2k prompt is ~16 s of it, so this keeps the prefill worker busy but
not overloaded); --pd-min-prompt 256 keeps the chat turns on the decode worker, which
computes them in 16-token chunks (--decode-args "--max-batch-tokens 16") so that no step
stalls its streams for long. --pd-min-prompt 32 sends everything through the prefill
worker instead (smoother decode, chat TTFT queued behind the long prompts);
--colocated-args "--max-batch-tokens 32" gives the colocated workers the same small chunks.
Prompt lengths come from a calibration request (tokens per word, through usage); the
long prompts' real token counts are reported. Every process started is stopped at exit.
"""
import argparse
import http.client
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from proc_util import wait_listening  # noqa: E402

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--tachyon", default="build/tachyon")
ap.add_argument("--model", required=True)
ap.add_argument("--ctx", type=int, default=4096)
ap.add_argument("--long-tokens", type=int, default=2000)
ap.add_argument("--long-max-tokens", type=int, default=16)
ap.add_argument("--long-interval", type=float, default=15.0, help="seconds between long prompts (open loop)")
ap.add_argument("--chat-clients", type=int, default=3)
ap.add_argument("--chat-max-tokens", type=int, default=64)
ap.add_argument("--chat-turns", type=int, default=0, help="turns per chat client (0: run for --duration)")
ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per configuration")
ap.add_argument("--pd-min-prompt", type=int, default=256,
                help="the pd router's threshold: chat turns (50-150 tokens) stay on the decode worker")
ap.add_argument("--decode-args", default="--max-batch-tokens 16", help="extra `serve` flags of the pd run's decode worker, e.g. "
                "\"--max-batch-tokens 32\" (smaller prefill chunks for the prompts it computes itself)")
ap.add_argument("--prefill-args", default="", help="extra `serve` flags of the pd run's prefill worker")
ap.add_argument("--colocated-args", default="", help="extra `serve` flags of both colocated workers")
ap.add_argument("--cores", default="0,1", help="the two cores: first = worker A / prefill, second = B / decode")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--quick", action="store_true", help="short run: 20 s, 2 chat clients, 600-token long prompts")
ap.add_argument("--only", choices=["colocated", "pd"], help="run one configuration")
ap.add_argument("--json", help="write the results here")
ap.add_argument("--start-timeout", type=float, default=300.0, help="seconds a process may take to listen")
args = ap.parse_args()
if args.quick:
    args.duration = min(args.duration, 20.0)
    args.chat_clients = min(args.chat_clients, 2)
    args.long_tokens = min(args.long_tokens, 600)
    args.long_interval = min(args.long_interval, 5.0)
    args.chat_max_tokens = min(args.chat_max_tokens, 32)
CORES = args.cores.split(",")
if len(CORES) != 2:
    sys.exit("--cores: give two cores, e.g. 0,1")

WORDS = ("the of and to in is was that for on are with as be at by this had not but from or have an they which "
         "one you were her all she there would their we him been has when who will more no if out so said what up "
         "its about into than them can only other new some could time these two may then do first any my now such "
         "like our over man me even most made after also did many before must through back years where much your "
         "way well down should because each just those people how too little state good very make world still own "
         "see men work long get here between both life being under never day same another know while last might us "
         "great old year off come since against go came right used take three river garden window engine planet "
         "copper silver market harbor signal forest valley winter summer letter number system figure station paper "
         "bridge castle doctor island village kitchen morning evening picture question answer problem reason").split()

procs = []  # every process started, stopped in the finally at the bottom


def start(cmd, log):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    url = wait_listening(p, log, args.start_timeout)
    if not url:
        raise RuntimeError("did not start: " + " ".join(cmd) + "\n" + "\n".join(log[-20:]))
    return url


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    procs.clear()


def text(rng, n_words, nonce=""):
    return (nonce + " " if nonce else "") + " ".join(rng.choice(WORDS) for _ in range(n_words))


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100.0 * len(xs)))]


class Result:
    def __init__(self):
        self.ok = False
        self.error = ""
        self.ttft_s = None
        self.gaps_s = []
        self.completion_tokens = 0
        self.prompt_tokens = 0
        self.t_end = 0.0


def chat_stream(url, content, max_tokens, timeout_s=600):
    """One streamed chat completion; times of the SSE chunks that carry content."""
    r = Result()
    host = url.split("//", 1)[1]
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens,
                       "temperature": 0, "ignore_eos": True, "stream": True,
                       "stream_options": {"include_usage": True}})
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(host, timeout=timeout_s)
        c.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        if resp.status != 200:
            r.error = f"HTTP {resp.status}: {resp.read()[:300]!r}"
            return r
        last = None
        n_chunks = 0
        for raw in resp:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            ev = json.loads(data)
            if ev.get("error"):
                r.error = str(ev["error"])[:300]
                return r
            if ev.get("usage"):
                r.completion_tokens = ev["usage"].get("completion_tokens", 0)
                r.prompt_tokens = ev["usage"].get("prompt_tokens", 0)
            for ch in ev.get("choices") or []:
                if (ch.get("delta") or {}).get("content"):
                    t = time.monotonic()
                    n_chunks += 1
                    if last is None:
                        r.ttft_s = t - t0
                    else:
                        r.gaps_s.append(t - last)
                    last = t
        c.close()
        if not r.completion_tokens:
            r.completion_tokens = n_chunks
        r.ok = r.ttft_s is not None
        if not r.ok and not r.error:
            r.error = "no content chunk"
    except Exception as e:  # noqa: BLE001 - any failure is a failed request in the report
        r.error = f"{type(e).__name__}: {e}"
    r.t_end = time.monotonic()
    return r


def calibrate(url):
    """Prompt tokens per word of WORDS text (usage of two prompts; the template cancels)."""
    rng = random.Random(12345)
    a = chat_stream(url, text(rng, 50), 1)
    b = chat_stream(url, text(rng, 250), 1)
    if not (a.ok and b.ok and b.prompt_tokens > a.prompt_tokens):
        print(f"warning: calibration failed ({a.error or b.error or 'no usage'}); assuming 1.3 tokens per word",
              file=sys.stderr)
        return 1.3
    return (b.prompt_tokens - a.prompt_tokens) / 200.0


def run_load(url, tokens_per_word):
    """The identical load for either configuration; returns its measurements."""
    chat, long_ = [], []
    lock = threading.Lock()
    t_start = time.monotonic()
    deadline = t_start + args.duration
    chat_done = threading.Event()

    def chat_client(i):
        rng = random.Random(args.seed * 1000 + i)
        turn = 0
        while (turn < args.chat_turns) if args.chat_turns else (time.monotonic() < deadline):
            n_tok = rng.randint(50, 150)
            res = chat_stream(url, text(rng, max(1, int(n_tok / tokens_per_word)), f"chat {i} turn {turn}:"),
                              args.chat_max_tokens)
            with lock:
                chat.append(res)
            turn += 1

    def long_one(k, content):
        res = chat_stream(url, content, args.long_max_tokens)
        with lock:
            long_.append(res)

    def long_client():
        rng = random.Random(args.seed * 1000 + 999)
        threads, k = [], 0
        n_words = max(1, int(args.long_tokens / tokens_per_word))
        while not chat_done.is_set() and (args.chat_turns or time.monotonic() < deadline):
            content = text(rng, n_words, f"document {k} of seed {args.seed}:")  # distinct from the first token
            t = threading.Thread(target=long_one, args=(k, content))
            t.start()
            threads.append(t)
            k += 1
            chat_done.wait(max(0.0, t_start + k * args.long_interval - time.monotonic()))
        for t in threads:
            t.join()

    lt = threading.Thread(target=long_client)
    lt.start()
    cts = [threading.Thread(target=chat_client, args=(i,)) for i in range(args.chat_clients)]
    for t in cts:
        t.start()
    for t in cts:
        t.join()
    chat_done.set()
    lt.join()
    t_end = max([r.t_end for r in chat + long_] + [t_start + 1e-9])
    ok_chat = [r for r in chat if r.ok]
    ok_long = [r for r in long_ if r.ok]
    gaps = [g for r in ok_chat for g in r.gaps_s]
    ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    gen = sum(r.completion_tokens for r in ok_chat + ok_long)
    errors = [r.error for r in chat + long_ if not r.ok]
    return {
        "wall_s": round(t_end - t_start, 3),
        "chat_requests": len(ok_chat),
        "long_requests": len(ok_long),
        "failed_requests": len(errors),
        "first_errors": errors[:5],
        "chat_tpot_ms": {"p50": ms(pct(gaps, 50)), "p90": ms(pct(gaps, 90)), "p99": ms(pct(gaps, 99)),
                         "max": ms(max(gaps) if gaps else None), "n_gaps": len(gaps)},
        "chat_ttft_ms": {"p50": ms(pct([r.ttft_s for r in ok_chat], 50)),
                         "p99": ms(pct([r.ttft_s for r in ok_chat], 99))},
        "long_ttft_ms": {"p50": ms(pct([r.ttft_s for r in ok_long], 50)),
                         "max": ms(max([r.ttft_s for r in ok_long], default=None))},
        "long_prompt_tokens_mean": round(statistics.mean([r.prompt_tokens for r in ok_long]), 1) if ok_long else None,
        "generated_tokens": gen,
        "tokens_per_s": round(gen / (t_end - t_start), 3) if t_end > t_start else None,
    }


def metrics(url):
    with urllib.request.urlopen(url + "/metrics", timeout=10) as f:
        m = f.read().decode()
    out = {}
    for name, val in re.findall(r"^(tachyon_router_pd_[a-z_]+(?:\{[^}]*\})?) (\S+)$", m, re.M):
        out[name] = float(val)
    return out


def serve_cmd(core, role=None):
    cmd = ["taskset", "-c", core, args.tachyon, "serve", "-m", args.model, "--port", "0", "--threads", "1",
           "--ctx", str(args.ctx)]
    extra = {"prefill": args.prefill_args, "decode": args.decode_args, None: args.colocated_args}[role]
    return cmd + (["--role", role] if role else []) + extra.split()


def run_config(name):
    logs = {}
    try:
        if name == "colocated":
            a = start(serve_cmd(CORES[0]), logs.setdefault("worker_a", []))
            b = start(serve_cmd(CORES[1]), logs.setdefault("worker_b", []))
            router = start([args.tachyon, "router", "--port", "0", "--policy", "least_load", "--tokenizer", args.model,
                            "--worker", a, "--worker", b], logs.setdefault("router", []))
            direct = a
        else:
            p = start(serve_cmd(CORES[0], "prefill"), logs.setdefault("prefill", []))
            d = start(serve_cmd(CORES[1], "decode"), logs.setdefault("decode", []))
            router = start([args.tachyon, "router", "--port", "0", "--policy", "least_load", "--tokenizer", args.model,
                            "--prefill", p, "--decode", d, "--pd-min-prompt", str(args.pd_min_prompt)],
                           logs.setdefault("router", []))
            direct = d
        tpw = calibrate(direct)
        # warm-up through the router: a chat turn and (pd) one transfer
        chat_stream(router, text(random.Random(7), 40), 4)
        chat_stream(router, text(random.Random(8), int(min(args.long_tokens, 400) / tpw) + 1, "warm-up:"), 2)
        before = metrics(router) if name == "pd" else {}
        print(f"[{name}] {tpw:.2f} tokens per word; load for "
              f"{str(args.chat_turns) + ' turns per chat client' if args.chat_turns else str(args.duration) + ' s'}",
              flush=True)
        res = run_load(router, tpw)
        res["tokens_per_word"] = round(tpw, 3)
        if name == "pd":
            after = metrics(router)
            res["router_pd_metrics"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        return res
    finally:
        stop_all()


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.1f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def main():
    results = {}
    for name in ("colocated", "pd"):
        if args.only and args.only != name:
            continue
        results[name] = run_config(name)
    rows = [("requests completed (chat/long)", lambda r: f"{r['chat_requests']}/{r['long_requests']}"),
            ("failed requests", lambda r: str(r["failed_requests"])),
            ("chat TPOT p50 ms", lambda r: fmt(r["chat_tpot_ms"]["p50"])),
            ("chat TPOT p90 ms", lambda r: fmt(r["chat_tpot_ms"]["p90"])),
            ("chat TPOT p99 ms", lambda r: fmt(r["chat_tpot_ms"]["p99"])),
            ("chat TTFT p50 ms", lambda r: fmt(r["chat_ttft_ms"]["p50"])),
            ("chat TTFT p99 ms", lambda r: fmt(r["chat_ttft_ms"]["p99"])),
            ("long TTFT p50 ms", lambda r: fmt(r["long_ttft_ms"]["p50"])),
            ("long prompt tokens (mean)", lambda r: fmt(r["long_prompt_tokens_mean"])),
            ("generated tokens", lambda r: str(r["generated_tokens"])),
            ("tokens/s", lambda r: fmt(r["tokens_per_s"])),
            ("wall s", lambda r: fmt(r["wall_s"]))]
    names = list(results)
    print("\n" + f"{'':32}" + "".join(f"{n:>14}" for n in names))
    for label, f in rows:
        print(f"{label:32}" + "".join(f"{f(results[n]):>14}" for n in names))
    summary = {}
    if "pd" in results:
        m = results["pd"]["router_pd_metrics"]
        transfers = m.get("tachyon_router_pd_transfers_total", 0)
        fb_p = m.get('tachyon_router_pd_fallbacks_total{reason="prefill"}', 0)
        fb_i = m.get('tachyon_router_pd_fallbacks_total{reason="import"}', 0)
        print(f"\nrouter (pd run): {transfers:.0f} transfers, fallbacks prefill {fb_p:.0f} / import {fb_i:.0f}, "
              f"{m.get('tachyon_router_pd_skipped_total', 0):.0f} skipped, "
              f"{m.get('tachyon_router_pd_bytes_total', 0) / 1e6:.1f} MB, prefill "
              f"{m.get('tachyon_router_pd_prefill_seconds_total', 0):.1f} s, import "
              f"{m.get('tachyon_router_pd_import_seconds_total', 0):.2f} s")
        summary["pd_transfers"] = transfers
        summary["pd_fallbacks"] = {"prefill": fb_p, "import": fb_i}
        summary["pd_run_valid"] = transfers > 0
        if transfers == 0:
            print("\n" + "!" * 78 + "\n!!! NOT A PD RUN: no KV transfer succeeded (every long prompt fell back to "
                  "local prefill).\n!!! The pd numbers below measure a decode worker prefilling everything itself.\n"
                  + "!" * 78)
        elif fb_p + fb_i > 0:
            print(f"warning: {fb_p + fb_i:.0f} transfers fell back to local prefill")
    if "pd" in results and "colocated" in results:
        c, p = results["colocated"], results["pd"]
        tpot_ratio = (c["chat_tpot_ms"]["p99"] / p["chat_tpot_ms"]["p99"]
                      if c["chat_tpot_ms"]["p99"] and p["chat_tpot_ms"]["p99"] else None)
        tput_ratio = p["tokens_per_s"] / c["tokens_per_s"] if c["tokens_per_s"] and p["tokens_per_s"] else None
        summary.update({"p99_tpot_ratio_colocated_over_pd": tpot_ratio, "throughput_ratio_pd_over_colocated": tput_ratio,
                        "goal_tpot_ratio_ge_2": tpot_ratio is not None and tpot_ratio >= 2,
                        "goal_throughput_within_20pct": tput_ratio is not None and tput_ratio >= 0.8})
        print(f"\np99 TPOT colocated/pd: {fmt(tpot_ratio)}x (goal >= 2: "
              f"{'met' if summary['goal_tpot_ratio_ge_2'] else 'NOT met'}); throughput pd/colocated: "
              f"{fmt(tput_ratio)} (goal >= 0.8: {'met' if summary['goal_throughput_within_20pct'] else 'NOT met'})")
        if not summary.get("pd_run_valid", False):
            print("(the goals above do not count: the pd run transferred nothing)")
    for n in names:
        if results[n]["first_errors"]:
            print(f"{n}: first errors: {results[n]['first_errors']}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "results": results, "config": vars(args),
                       "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg()}}, f, indent=1)
        print("wrote", args.json)


try:
    main()
finally:
    stop_all()
