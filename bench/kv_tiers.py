#!/usr/bin/env python3
"""KV cache tiers benchmark (issue 22): TTFT of a long prompt cold, from L1, from L2 (host
RAM) and from L3 (disk, after a restart), and the multi-agent workload under a KV RAM
budget of about 1/4 of its working set.

usage: python3 bench/kv_tiers.py [--model bench/models/tinyllama-1.1b-Q4_0.gguf]
           [--threads 2] [--prompt-tokens 4096] [--out bench/results] [--bin build/tachyon]
           [--quick] [--skip-agents] [--agents-groups 4]

Steps (one line each; everything also goes to OUT/kv_tiers.json):
  a) cold    one server (--kv-disk TMP --kv-write-through 1, a pool of one context plus a
             few pages), one prompt of exactly --prompt-tokens tokens (random words,
             tokenized with `tachyon tokenize`, sent as token ids to /v1/completions).
  b) l1      the same prompt again.
  c) l2      a second, different prompt of the same length pushes the first out of the
             pool into host RAM; the first prompt again (its split by tier is reported).
  d) l3      SIGTERM (the server writes every cached page back to disk), a new server on
             the same directory, the first prompt again: split, disk read bandwidth (from
             /metrics), and TTFT(l3) / TTFT(cold) (goal <= 10%).
  e) agents  the workload of bench/agents.sh (`tachyon bench run`: agents sharing a
             465-token system prompt, 3 turns, 32 output tokens, concurrency 4, streaming,
             temperature 0), with --agents-groups prefix groups of 4 agents each (agents.sh
             itself is 1 group; its working set is smaller than one context, so a 1/4
             budget would not hold a single request), three times:
               unconstrained  a pool of 400 pages per group (far above the working set);
               tiered         a pool of max(1/4 of the working set, one context) with
                              L2 (default size) and L3 (a temp dir);
               single-tier    the same pool, --kv-host-mem 0 and no --kv-disk (recompute).
             The working set is measured on the unconstrained run: the pages the pool
             holds afterwards (nothing was evicted: checked), times bytes per page
             (tachyon_kv_bytes / tachyon_kv_pages_total). Prints TTFT p50 of each and
             tiered/unconstrained (goal <= 1.5).

TTFT is measured on a streaming request (stream_options.include_usage): the time from
sending the request to the first SSE chunk that carries generated text; usage (with
prompt_tokens_details.cached_tokens_by_tier) comes from the final chunk.
--quick: 1024-token prompts and 1 prefix group, to test the script quickly.
Every server this script starts is stopped when it ends, also on errors.
"""
import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORDS = ("time year people way day man thing woman life child world school state family student group "
         "country problem hand part place case week company system program question work government number "
         "night point home water room mother area money story fact month lot right study book eye job word "
         "business issue side kind head house service friend father power hour game line end member law car "
         "city community name president team minute idea kid body information back parent face others level "
         "office door health person art war history party result change morning reason research girl guy moment "
         "air teacher force education river mountain green quick slow bright dark silver golden ancient modern "
         "open closed simple complex early late heavy light warm cold north south east west garden window "
         "market village bridge forest island ocean desert valley engine signal pattern memory storage cache "
         "network packet kernel thread buffer vector matrix tensor layer token model weight gradient driver "
         "compile render parse format stream socket server client request answer coffee bread apple orange "
         "music paper stone glass metal cloud storm winter summer autumn spring yellow purple violet crimson").split()


class Server:
    """A `tachyon serve` process on 127.0.0.1 (port 0); its stderr is kept in self.log."""

    def __init__(self, binary, model, threads, extra, name):
        self.name = name
        self.cmd = [binary, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0", "-t", str(threads),
                    "--no-webui"] + extra
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.base = None
        deadline = time.time() + 180
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.log.append(line.rstrip("\n"))
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.base = m.group(1)
                break
        if self.base is None:
            self.kill()
            raise RuntimeError("server %s did not start: %s\n%s" % (name, " ".join(self.cmd), "\n".join(self.log)))
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()
        u = urllib.parse.urlparse(self.base)
        self.host, self.port = u.hostname, u.port

    def _read_rest(self):
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))

    def stop(self, timeout=300):
        """SIGTERM and wait (a graceful stop writes cached pages back to disk)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError("server %s did not stop within %d s of SIGTERM" % (self.name, timeout))
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def snapshot_binary(src, tmp):
    """Copies the binary into tmp (the build may replace it during a long run); waits up to
    2 minutes for it to reappear when it is being rebuilt."""
    dst = os.path.join(tmp, "tachyon")
    deadline = time.time() + 120
    while True:
        try:
            shutil.copy2(src, dst)
            os.chmod(dst, 0o755)
            subprocess.run([dst, "--help"], check=True, capture_output=True)
            return dst
        except (OSError, subprocess.CalledProcessError):
            if time.time() > deadline:
                raise
            time.sleep(5)


def metrics(base):
    """/metrics as {name or name{labels}: value}."""
    with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        try:
            out[key] = float(val)
        except ValueError:
            pass
    return out


def tier(m, name, t):
    return m.get('%s{tier="%s"}' % (name, t), 0.0)


def stream_completion(srv, ids, max_tokens=2, timeout=900):
    """Streams a completion of token ids; returns (ttft_s, total_s, usage, text)."""
    body = {"prompt": ids, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError("HTTP %d: %s" % (resp.status, resp.read().decode(errors="replace")[:500]))
    ttft, usage, text = None, None, ""
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: "):
            continue  # blank lines, keep-alive comments
        data = line[6:]
        if data == "[DONE]":
            break
        ev = json.loads(data)
        if "error" in ev:
            raise RuntimeError("stream error: %s" % data[:500])
        for ch in ev.get("choices") or []:
            if ch.get("text"):
                if ttft is None:
                    ttft = time.perf_counter() - t0
                text += ch["text"]
        if ev.get("usage"):
            usage = ev["usage"]
    total = time.perf_counter() - t0
    conn.close()
    if usage is None:
        raise RuntimeError("no usage in the stream (stream_options.include_usage)")
    return (ttft if ttft is not None else total), total, usage, text


def make_prompt(binary, model, n_tokens, seed):
    """Exactly n_tokens token ids (BOS first) from random words."""
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(int(n_tokens * 1.3) + 64)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(" ".join(words))
        path = f.name
    try:
        out = subprocess.run([binary, "tokenize", "-m", model, "--file", path, "--json"], check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    ids = json.loads(out)["tokens"]
    if len(ids) < n_tokens:
        raise RuntimeError("tokenized %d tokens, wanted %d" % (len(ids), n_tokens))
    return ids[:n_tokens]


def split(usage):
    d = usage.get("prompt_tokens_details") or {}
    t = d.get("cached_tokens_by_tier") or {}
    return {"prompt_tokens": usage.get("prompt_tokens"), "cached_tokens": d.get("cached_tokens"),
            "l1": t.get("l1"), "l2": t.get("l2"), "l3": t.get("l3")}


def split_str(s):
    return "prompt %s, cached %s (l1 %s, l2 %s, l3 %s)" % (s["prompt_tokens"], s["cached_tokens"], s["l1"], s["l2"],
                                                          s["l3"])


class Bench:
    def __init__(self, args):
        self.a = args
        self.servers = []
        self.results = {"model": args.model, "threads": args.threads, "prompt_tokens": args.prompt_tokens,
                        "ttft_method": "streaming /v1/completions (token ids), time to the first chunk with text"}
        self.problems = []

    def serve(self, extra, name):
        s = Server(self.a.bin, self.a.model, self.a.threads, extra, name)
        self.servers.append(s)
        return s

    def say(self, line):
        print(line, flush=True)

    def problem(self, what):
        self.problems.append(what)
        self.say("PROBLEM: " + what)

    # ---- a-d: one long prompt through the tiers ----
    def tiers(self, tmp):
        a = self.a
        n = a.prompt_tokens
        ctx = n + 64
        pages = (ctx + 15) // 16 + 1 + 2  # one context and 2 pages: a second prompt evicts (nearly all of) the first
        disk = os.path.join(tmp, "kvdisk")
        flags = ["--ctx", str(ctx), "--kv-pages", str(pages), "--kv-disk", disk, "--kv-write-through", "1"]
        p = make_prompt(a.bin, a.model, n, 1)
        q = make_prompt(a.bin, a.model, n, 2)
        srv = self.serve(flags, "tiers-1")
        m0 = metrics(srv.base)
        bytes_per_page = m0["tachyon_kv_bytes"] / m0["tachyon_kv_pages_total"]
        self.results["kv_bytes_per_token"] = bytes_per_page / 16
        self.results["tiers_server"] = {"flags": flags, "start_log": srv.log[:4]}

        ttft, total, usage, _ = stream_completion(srv, p)
        cold = ttft
        self.results["cold"] = {"ttft_s": ttft, "total_s": total, "usage": split(usage)}
        self.say("a) TTFT cold     %8.3f s   %s  (%.0f prompt tokens/s)" % (ttft, split_str(split(usage)), n / ttft))

        ttft, total, usage, _ = stream_completion(srv, p)
        s = split(usage)
        self.results["l1"] = {"ttft_s": ttft, "total_s": total, "usage": s, "ratio_to_cold": ttft / cold}
        self.say("b) TTFT from L1  %8.3f s   %s  (%.1f%% of cold)" % (ttft, split_str(s), 100 * ttft / cold))
        if not s["l1"] or s["l1"] < n - 32:
            self.problem("b) the repeat was not served from l1: %s" % split_str(s))

        ttft_q, _, usage_q, _ = stream_completion(srv, q)
        m1 = metrics(srv.base)
        ttft, total, usage, _ = stream_completion(srv, p)
        m2 = metrics(srv.base)
        s = split(usage)
        self.results["l2"] = {"ttft_s": ttft, "total_s": total, "usage": s, "ratio_to_cold": ttft / cold,
                              "evictor_ttft_s": ttft_q, "evictor_usage": split(usage_q),
                              "demotions_l2": tier(m1, "tachyon_kv_tier_demotions_total", "l2"),
                              "promotions_l2": tier(m2, "tachyon_kv_tier_promotions_total", "l2") -
                              tier(m1, "tachyon_kv_tier_promotions_total", "l2")}
        self.say("c) TTFT from L2  %8.3f s   %s  (%.1f%% of cold; evictor prompt %.1f s, %d pages demoted to l2, "
                 "%d promoted)" % (ttft, split_str(s), 100 * ttft / cold, ttft_q, self.results["l2"]["demotions_l2"],
                                   self.results["l2"]["promotions_l2"]))
        if not s["l2"] or s["l2"] < (n - 32) // 2:
            self.problem("c) the prompt was not served mostly from l2: %s" % split_str(s))

        t0 = time.perf_counter()
        rc = srv.stop()
        stop_s = time.perf_counter() - t0
        m_files = sum(1 for _, _, fs in os.walk(disk) for f in fs if f.endswith(".kvp"))
        self.results["shutdown"] = {"seconds": stop_s, "exit_code": rc, "kvp_files": m_files}
        t0 = time.perf_counter()
        srv = self.serve(flags, "tiers-2")
        start_s = time.perf_counter() - t0
        m3 = metrics(srv.base)
        ttft, total, usage, _ = stream_completion(srv, p)
        m4 = metrics(srv.base)
        s = split(usage)
        reads = m4.get("tachyon_kv_disk_read_bytes_total", 0) - m3.get("tachyon_kv_disk_read_bytes_total", 0)
        rsec = m4.get("tachyon_kv_disk_read_seconds_total", 0) - m3.get("tachyon_kv_disk_read_seconds_total", 0)
        bw = m4.get("tachyon_kv_disk_read_bandwidth_bytes_per_second", 0)
        ratio = ttft / cold
        self.results["l3"] = {"ttft_s": ttft, "total_s": total, "usage": s, "ratio_to_cold": ratio,
                              "restart_s": start_s, "l3_pages_at_start": tier(m3, "tachyon_kv_tier_pages", "l3"),
                              "l3_pages_after_request": tier(m4, "tachyon_kv_tier_pages", "l3"),
                              "disk_read_bytes": reads, "disk_read_seconds": rsec,
                              "disk_read_bandwidth_metric_Bps": bw,
                              "rejected_files": m4.get("tachyon_kv_disk_rejected_files_total", 0),
                              "goal_ratio": 0.10, "goal_met": ratio <= 0.10}
        self.say("   stop (SIGTERM, write-back) %.2f s, exit %s, %d page files; restart %.2f s; /metrics l3 pages: %d "
                 "before the first request, %d after" % (stop_s, rc, m_files, start_s,
                                                         self.results["l3"]["l3_pages_at_start"],
                                                         self.results["l3"]["l3_pages_after_request"]))
        self.say("d) TTFT from L3  %8.3f s   %s  (disk read %.1f MiB in %.3f s, bandwidth metric %.0f MiB/s)"
                 % (ttft, split_str(s), reads / 1048576, rsec, bw / 1048576))
        self.say("   after restart / cold = %.3f  (goal <= 0.10: %s)" % (ratio, "met" if ratio <= 0.10 else "NOT met"))
        if not s["l3"] or s["l3"] < n - 32:
            self.problem("d) the prompt was not served from l3 after the restart: %s" % split_str(s))
        srv.stop()

    # ---- e: the multi-agent workload ----
    def agents_run(self, name, flags, tmp):
        a = self.a
        srv = self.serve(flags, "agents-" + name)
        out_json = os.path.join(a.out, "kv_tiers-agents-%s.json" % name)
        cmd = [a.bin, "bench", "run", "--url", srv.base, "--name", name, "--api", "chat",
               "--prefix-groups", str(a.agents_groups), "--prefix-group-size", "4", "--prefix-len", "465",
               "--input-len", "24", "--turns", "3", "--output-len", "32", "--temperature", "0",
               "--concurrency", "4", "--tokenizer", a.model, "--seed", "7", "--no-progress",
               "--output-json", out_json]
        with open(os.path.join(a.out, "kv_tiers-agents-%s.txt" % name), "w") as f:
            subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, timeout=3600)
        m = metrics(srv.base)
        srv.stop()
        d = json.load(open(out_json))
        run = d["runs"][0] if "runs" in d else d
        s = run.get("summary", run)
        r = {"flags": flags, "ttft_p50_ms": s["ttft_ms"]["p50"], "ttft_p90_ms": s["ttft_ms"]["p90"],
             "wall_s": s.get("window_s"), "completed": s.get("completed"), "failed": s.get("failed"),
             "input_tokens": s.get("total_input_tokens"), "cached_tokens": s.get("total_cached_tokens"),
             "output_tokens": s.get("total_output_tokens"),
             "l1_pages_after": tier(m, "tachyon_kv_tier_pages", "l1"),
             "pages_total": m["tachyon_kv_pages_total"], "bytes_per_page": m["tachyon_kv_bytes"] / m["tachyon_kv_pages_total"],
             "hit_pages": {t: tier(m, "tachyon_kv_tier_hit_pages_total", t) for t in ("l1", "l2", "l3")},
             "miss_pages": m.get("tachyon_kv_miss_pages_total"),
             "demotions": {t: tier(m, "tachyon_kv_tier_demotions_total", t) for t in ("l2", "l3")},
             "promotions": {t: tier(m, "tachyon_kv_tier_promotions_total", t) for t in ("l2", "l3")},
             "dropped_pages": m.get("tachyon_kv_dropped_pages_total"),
             "preemptions": m.get("tachyon_preemptions_total")}
        self.say("   %-13s TTFT p50 %7.0f ms  p90 %7.0f ms  wall %6.1f s  cached %s/%s prompt tokens  hits l1/l2/l3 "
                 "%d/%d/%d pages, miss %d, preemptions %s, ok %s" % (
                     name, r["ttft_p50_ms"], r["ttft_p90_ms"], r["wall_s"] or 0, r["cached_tokens"], r["input_tokens"],
                     r["hit_pages"]["l1"], r["hit_pages"]["l2"], r["hit_pages"]["l3"], r["miss_pages"] or 0,
                     r["preemptions"], r["completed"]))
        if r["failed"]:
            self.problem("e) %s: %s requests failed" % (name, r["failed"]))
        return r

    def agents(self, tmp):
        ctx = 1024  # the longest request of the workload is ~700 tokens
        res = {"ctx": ctx, "groups": self.a.agents_groups, "agents": 4 * self.a.agents_groups}
        self.say("e) multi-agent workload: %d prefix group(s) x 4 agents, 465-token shared prefix, 3 turns, "
                 "32 output tokens, concurrency 4, ctx %d" % (self.a.agents_groups, ctx))
        # Unconstrained: a pool far above the working set (the default, 4 contexts, is not).
        un = self.agents_run("unconstrained", ["--ctx", str(ctx), "--kv-pages", str(self.a.agents_groups * 400)], tmp)
        res["unconstrained"] = un
        if un["demotions"]["l2"] or un["dropped_pages"]:
            self.problem("e) the unconstrained run evicted pages: the working set below is a lower bound")
        ws_pages = int(un["l1_pages_after"])
        ws_bytes = ws_pages * un["bytes_per_page"]
        quarter = math.ceil(ws_pages / 4)
        min_pages = (ctx + 15) // 16 + 1
        budget = max(quarter, min_pages)
        res.update({"working_set_pages": ws_pages, "working_set_bytes": ws_bytes, "quarter_pages": quarter,
                    "min_pages_one_context": min_pages, "budget_pages": budget,
                    "budget_fraction_of_working_set": budget / ws_pages if ws_pages else None})
        self.say("   working set %d pages (%.1f MiB, %d tokens at %.0f B/token); 1/4 = %d pages; one context needs %d; "
                 "budget %d pages = %.1f MiB = %.2f of the working set" % (
                     ws_pages, ws_bytes / 1048576, ws_pages * 16, un["bytes_per_page"] / 16, quarter, min_pages, budget,
                     budget * un["bytes_per_page"] / 1048576, budget / max(ws_pages, 1)))
        if budget > 1.1 * quarter:
            self.problem("e) 1/4 of the working set (%d pages) cannot hold one context (%d pages): budget raised to %d"
                         % (quarter, min_pages, budget))
        tiered = self.agents_run("tiered", ["--ctx", str(ctx), "--kv-pages", str(budget), "--kv-disk",
                                            os.path.join(tmp, "agents-disk")], tmp)
        single = self.agents_run("single-tier", ["--ctx", str(ctx), "--kv-pages", str(budget), "--kv-host-mem", "0"],
                                 tmp)
        res["tiered"], res["single_tier"] = tiered, single
        r1 = tiered["ttft_p50_ms"] / un["ttft_p50_ms"]
        r2 = single["ttft_p50_ms"] / un["ttft_p50_ms"]
        res.update({"ratio_tiered": r1, "ratio_single_tier": r2, "goal_ratio": 1.5, "goal_met": r1 <= 1.5})
        self.say("   TTFT p50: unconstrained %.0f ms, tiered %.0f ms (x%.2f, goal <= 1.5: %s), single-tier %.0f ms (x%.2f)"
                 % (un["ttft_p50_ms"], tiered["ttft_p50_ms"], r1, "met" if r1 <= 1.5 else "NOT met",
                    single["ttft_p50_ms"], r2))
        self.results["agents"] = res

    def run(self):
        os.makedirs(self.a.out, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="kv_tiers.")
        t0 = time.time()
        try:
            self.a.bin = snapshot_binary(self.a.bin, tmp)
            self.say("kv_tiers: model %s, %d threads, prompt %d tokens" % (self.a.model, self.a.threads,
                                                                           self.a.prompt_tokens))
            if not self.a.agents_only:
                self.tiers(tmp)
            if not self.a.skip_agents:
                self.agents(tmp)
        finally:
            for s in self.servers:
                s.kill()
            shutil.rmtree(tmp, ignore_errors=True)
            self.results["problems"] = self.problems
            self.results["wall_s"] = time.time() - t0
            path = os.path.join(self.a.out, "kv_tiers.json")
            with open(path, "w") as f:
                json.dump(self.results, f, indent=2)
            print("wrote %s (%.0f s)" % (path, time.time() - t0), flush=True)
        return 1 if self.problems else 0


def _interrupted(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)  # runs the finally blocks: servers stopped


def main():
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "build", "tachyon"))
    ap.add_argument("--model", default=os.path.join(REPO, "bench", "models", "tinyllama-1.1b-Q4_0.gguf"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=None, help="default 4096 (--quick: 1024)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--agents-groups", type=int, default=None, help="prefix groups of 4 agents (default 4; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="1024-token prompts, 1 prefix group: tests the script")
    ap.add_argument("--skip-agents", action="store_true", help="steps a-d only")
    ap.add_argument("--agents-only", action="store_true", help="step e only (the multi-agent workload)")
    a = ap.parse_args()
    if a.prompt_tokens is None:
        a.prompt_tokens = 1024 if a.quick else 4096
    if a.agents_groups is None:
        a.agents_groups = 1 if a.quick else 4
    for p in (a.bin, a.model):
        if not os.path.exists(p):
            sys.exit("not found: " + p)
    return Bench(a).run()


if __name__ == "__main__":
    sys.exit(main())
