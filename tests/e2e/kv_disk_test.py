#!/usr/bin/python3
"""KV cache disk tier (issue 22) against a real `tachyon serve` on loopback.

usage: kv_disk_test.py TACHYON_BIN SHARED_DATA_DIR      (model: DIR/models/mini-llama-F16.gguf)

- reference: greedy outputs (temperature 0, max_tokens 12) of 6 prompts of 60-200 tokens
  that share prefixes, from a server with no tiers (--kv-host-mem 0, no --kv-disk), sent
  one by one and then all at once (they must agree: batching must not change greedy
  output, or nothing below could be compared).
- kill loop (8 rounds): serve --kv-disk D --kv-write-through 1 with a pool barely over
  one context (--ctx 512 --kv-pages 40), so pages are evicted, demoted and written.
  Each round: restart on D; no "*.tmp.*" file may be left in D once the server answered;
  one wave of the prompts (all at once) must complete and equal the reference; a second
  wave is cut by SIGKILL at a random moment (random.Random(SEED), scaled by wave 1's time); whatever completed
  before the kill must equal the reference too. Over the loop, some prompt tokens must
  have come from l3 (the files written before a kill are used after it).
- cap: one round with --kv-disk-size of about 12 page files: the page files under D never
  exceed it (checked after each wave and after a graceful stop) and files were evicted.
- corrupt: after a graceful stop, one byte in the middle of a first-page file (one every
  prompt of its group reads) is flipped and another file is truncated; after a restart
  outputs equal the reference and tachyon_kv_disk_rejected_files_total >= 2 (the truncated
  file at start, the flipped one at read).
- degrade: --kv-disk under a regular file: the server starts, answers every prompt equal
  to the reference, and /metrics shows tachyon_kv_disk_writable 0.
Exit 0 = pass, 1 = failure (each printed as FAIL: ...), 77 = skipped (no model).
"""
import concurrent.futures
import json
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
from proc_util import wait_listening
import urllib.error
import urllib.request

SEED = 22
ROUNDS = 8
MAX_TOKENS = 12

if len(sys.argv) < 3:
    print("usage: kv_disk_test.py TACHYON_BIN SHARED_DATA_DIR")
    sys.exit(2)
BIN = sys.argv[1]
MODEL = os.path.join(sys.argv[2], "models", "mini-llama-F16.gguf")
if not os.path.exists(MODEL):
    print(f"skipped: model {MODEL} not found")
    sys.exit(77)

failures = []
servers = []
T0 = time.time()


def log(msg):
    print(f"[{time.time() - T0:6.2f}s] {msg}", flush=True)


def check(cond, what):
    if not cond:
        failures.append(what)
        log("FAIL: " + what)
    return cond


class Server:
    def __init__(self, extra, name):
        self.name = name
        cmd = [BIN, "serve", "-m", MODEL, "--host", "127.0.0.1", "--port", "0", "-t", "2", "--no-webui",
               "--ctx", "512"] + extra
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        servers.append(self)
        self.log = []
        self.base = wait_listening(self.proc, self.log, 60)
        if self.base is None:
            self.kill()
            raise RuntimeError(f"server {name} did not start: {' '.join(cmd)}\n" + "\n".join(self.log))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                check(False, f"{self.name}: no exit within 30 s of SIGTERM")
        return self.proc.returncode


def complete(srv, prompt, timeout=60):
    """(text, usage) of a greedy completion; raises on a transport error or non-200."""
    body = {"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0}
    req = urllib.request.Request(srv.base + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        d = json.loads(r.read().decode())
    return d["choices"][0]["text"], d["usage"]


def metrics(srv):
    with urllib.request.urlopen(srv.base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def wave(srv, prompts):
    """All prompts at once; returns [(text, usage) or Exception] in prompt order."""
    with concurrent.futures.ThreadPoolExecutor(len(prompts)) as ex:
        futs = [ex.submit(complete, srv, p) for p in prompts]
        out = []
        for f in futs:
            try:
                out.append(f.result())
            except Exception as e:  # noqa: BLE001 - a killed server cuts requests
                out.append(e)
        return out


def l3_tokens(usage):
    return ((usage.get("prompt_tokens_details") or {}).get("cached_tokens_by_tier") or {}).get("l3", 0) or 0


def files_under(d, pred):
    out = []
    for root, _, names in os.walk(d):
        out += [os.path.join(root, n) for n in names if pred(n)]
    return out


def kvp_bytes(d):
    return sum(os.path.getsize(p) for p in files_under(d, lambda n: n.endswith(".kvp")) if os.path.exists(p))


def compare(results, reference, prompts, what, allow_errors=False):
    """Every completed result equals the reference; returns (completed, l3 tokens)."""
    done, l3 = 0, 0
    for i, r in enumerate(results):
        if isinstance(r, Exception):
            check(allow_errors, f"{what}: prompt {i} failed: {r!r}")
            continue
        done += 1
        l3 += l3_tokens(r[1])
        check(r[0] == reference[i], f"{what}: prompt {i} ({len(prompts[i])} chars) answered {r[0]!r}, "
                                    f"the reference is {reference[i]!r} (usage {r[1]})")
    return done, l3


def make_prompts():
    rng = random.Random(SEED)
    words = ("river stone garden window signal memory kernel thread buffer vector matrix engine market "
             "village bridge forest island ocean desert valley cloud storm winter summer autumn spring "
             "yellow purple violet copper silver golden ancient modern bright quiet").split()

    def text(n):
        return " ".join(rng.choice(words) for _ in range(n))

    a, b, c, d, e, f = text(30), text(25), text(40), text(35), text(35), text(50)
    # Shared prefixes: A, A+B, A+B+C, A+D; E, E+F.
    return [a + " " + text(5), a + " " + b, a + " " + b + " " + c, a + " " + d + " " + text(10), e + " " + text(8),
            e + " " + f]


def main():
    global BIN
    tmp = tempfile.mkdtemp(prefix="kv_disk_test.")
    try:
        # A private copy: a rebuild of the binary during the test does not change it.
        shutil.copy2(BIN, os.path.join(tmp, "tachyon"))
        BIN = os.path.join(tmp, "tachyon")
        prompts = make_prompts()

        # ---- reference ----
        ref_srv = Server(["--kv-host-mem", "0"], "reference")
        reference, sizes = [], []
        for p in prompts:
            t, u = complete(ref_srv, p)
            reference.append(t)
            sizes.append(u["prompt_tokens"])
        log(f"reference: prompt tokens {sizes}")
        check(min(sizes) >= 40 and max(sizes) <= 260, f"prompt sizes {sizes} are near 60-200 tokens")
        compare(wave(ref_srv, prompts), reference, prompts, "reference, all at once")
        ref_srv.stop()
        if failures:
            log("the reference is not stable under batching: nothing else can be compared")
            return 1

        # ---- kill loop ----
        # Wave 2 of round r sends variants of the prompts (a round-specific first word: all
        # their pages are new), each twice, so page files are being written when the kill
        # comes; wave 1 of round r+1 sends the base prompts and round r's variants.
        variants = [[f"{w} {p}" for p in prompts] for w in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
                                                             "golf", "hotel")[:ROUNDS]]
        ref_srv = Server(["--kv-host-mem", "0"], "reference (variants)")
        var_ref = [[complete(ref_srv, p)[0] for p in vs] for vs in variants]
        ref_srv.stop()
        disk = os.path.join(tmp, "kv")
        flags = ["--kv-disk", disk, "--kv-write-through", "1", "--kv-pages", "40"]
        rng = random.Random(SEED)
        total_l3, killed_done, killed_writes, m = 0, 0, 0, {}
        for rnd in range(ROUNDS):
            srv = Server(flags, f"round {rnd}")
            p1 = prompts + (variants[rnd - 1] if rnd else [])
            r1 = reference + (var_ref[rnd - 1] if rnd else [])
            t1 = time.time()
            first = wave(srv, p1)
            d1 = time.time() - t1
            temps = files_under(disk, lambda n: ".tmp." in n)
            # A temp file of this server's own writes may exist for a moment; the killed
            # server's (another pid) must be gone.
            stale = [t for t in temps if f".tmp.{srv.proc.pid}." not in os.path.basename(t)]
            check(not stale, f"round {rnd}: temp files of a killed server survived the restart: {stale[:3]}")
            _, l3 = compare(first, r1, p1, f"round {rnd} wave 1")
            total_l3 += l3
            # A random moment within about the time wave 2 takes (it is as long as wave 1).
            delay = rng.uniform(0.0, 1.2) * d1
            p2 = variants[rnd] + variants[rnd][::-1]
            r2 = var_ref[rnd] + var_ref[rnd][::-1]
            box = {}
            th = threading.Thread(target=lambda: box.setdefault("r", wave(srv, p2)))
            th.start()
            time.sleep(delay)
            try:
                m = metrics(srv)
            except Exception:  # noqa: BLE001
                m = {}
            srv.kill()
            th.join(60)
            done, _ = compare(box.get("r", []), r2, p2, f"round {rnd} wave 2 (SIGKILL after {delay:.3f} s)",
                              allow_errors=True)
            killed_done += done
            killed_writes += int(m.get("tachyon_kv_disk_writes_total", 0))
            log(f"round {rnd}: wave 1 ({len(p1)} prompts) l3 tokens {l3}; SIGKILL after {delay:.3f} s with "
                f"{len(p2) - done} of {len(p2)} requests unfinished, {m.get('tachyon_kv_disk_writes_total')} files "
                f"written by then; {len(files_under(disk, lambda n: n.endswith('.kvp')))} page files")
        check(total_l3 > 0, "over the kill loop some prompt tokens came from l3")
        log(f"kill loop: {total_l3} prompt tokens from l3 in all; {killed_done} requests completed before kills; "
            f"{killed_writes} page files written by servers that were then killed")

        # ---- cap ----
        page_files = files_under(disk, lambda n: n.endswith(".kvp"))
        check(len(page_files) > 0, "page files exist after the kill loop")
        page_file = max(os.path.getsize(p) for p in page_files) if page_files else 17000
        cap = 12 * page_file
        capdisk = os.path.join(tmp, "kvcap")
        srv = Server(["--kv-disk", capdisk, "--kv-write-through", "1", "--kv-pages", "40", "--kv-disk-size",
                      f"{(cap + 1023) // 1024}K"], "cap")
        cap = (cap + 1023) // 1024 * 1024
        for w in range(3):
            compare(wave(srv, prompts), reference, prompts, f"cap wave {w}")
            check(kvp_bytes(capdisk) <= cap, f"cap: {kvp_bytes(capdisk)} bytes of page files > cap {cap} (wave {w})")
        mc = metrics(srv)
        srv.stop()
        check(kvp_bytes(capdisk) <= cap, f"cap: {kvp_bytes(capdisk)} bytes of page files > cap {cap} after the stop")
        check(mc.get("tachyon_kv_disk_evicted_files_total", 0) > 0, "cap: files were evicted to stay under the cap")
        log(f"cap {cap} bytes (12 page files of {page_file}): {kvp_bytes(capdisk)} bytes on disk after the stop, "
            f"{mc.get('tachyon_kv_disk_evicted_files_total')} files evicted")

        # ---- corrupt ----
        srv = Server(flags, "before corrupt")
        compare(wave(srv, prompts), reference, prompts, "before corrupt")
        check(srv.stop() == 0, "graceful stop exits 0")
        files = sorted(files_under(disk, lambda n: n.endswith(".kvp")))
        # The first page of a base prompt (every later request of its group reads it): its
        # header (parent key == root key) holds that prompt's first 16 token ids at byte 88.
        heads = set()
        for p in prompts:
            ids = json.loads(subprocess.run([BIN, "tokenize", "-m", MODEL, "--text", p, "--json"], check=True,
                                            capture_output=True, text=True).stdout)["tokens"]
            heads.add(b"".join(int(t).to_bytes(4, "little") for t in ids[:16]))
        firsts = []
        for p in files:
            with open(p, "rb") as fh:
                h = fh.read(88 + 64)
            if len(h) == 152 and h[16:32] == h[32:48] and h[88:152] in heads:
                firsts.append(p)
        flipped = firsts[0] if firsts else files[0]
        truncated = next(p for p in files if p != flipped)
        size = os.path.getsize(flipped)
        with open(flipped, "r+b") as fh:
            fh.seek(size // 2)
            b = fh.read(1)
            fh.seek(size // 2)
            fh.write(bytes([b[0] ^ 0x40]))
        with open(truncated, "r+b") as fh:
            fh.truncate(os.path.getsize(truncated) // 2)
        srv = Server(flags, "after corrupt")
        compare(wave(srv, prompts), reference, prompts, "after corrupt")
        for i, p in enumerate(prompts):  # and one by one
            t, _ = complete(srv, p)
            check(t == reference[i], f"after corrupt, one by one: prompt {i} answered {t!r}, reference {reference[i]!r}")
        mc = metrics(srv)
        srv.stop()
        rej = mc.get("tachyon_kv_disk_rejected_files_total", 0)
        check(rej >= 1, f"rejected files {rej} >= 1 after a truncation and a flipped byte")
        check(rej >= 2 or not firsts, f"rejected files {rej} >= 2: the flipped first page was read and rejected")
        log(f"corrupt: flipped {os.path.basename(flipped)} (first page: {bool(firsts)}), truncated "
            f"{os.path.basename(truncated)}: rejected {rej}, promote failures "
            f"{mc.get('tachyon_kv_promote_failures_total')}")

        # ---- degrade ----
        blocker = os.path.join(tmp, "not-a-dir")
        with open(blocker, "w") as fh:
            fh.write("x")
        srv = Server(["--kv-disk", os.path.join(blocker, "kv"), "--kv-pages", "40"], "degrade")
        compare(wave(srv, prompts), reference, prompts, "degrade")
        for i, p in enumerate(prompts):
            t, _ = complete(srv, p)
            check(t == reference[i], f"degrade, one by one: prompt {i} answered {t!r}, reference {reference[i]!r}")
        md = metrics(srv)
        check(md.get("tachyon_kv_disk_writable") == 0, f"degrade: tachyon_kv_disk_writable is "
                                                        f"{md.get('tachyon_kv_disk_writable')}, expected 0")
        srv.stop()
        warned = [line for line in srv.log if "kv" in line.lower() and "disk" in line.lower()]
        log(f"degrade: writable {md.get('tachyon_kv_disk_writable')}; server said: {warned[:2]}")
    finally:
        for s in servers:
            s.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        check(False, f"unexpected error: {e!r}")
        rc = 1
    log(("PASS" if rc == 0 and not failures else f"FAILED: {len(failures)} check(s)"))
    sys.exit(0 if rc == 0 and not failures else 1)
