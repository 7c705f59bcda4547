#!/usr/bin/env python3
"""Speculative decoding's verify-cost curve and the speedup it projects.

Runs `tachyon perf --verify 1..8` (every sequence of a step carries K tokens with logits:
its next token and K-1 drafts) at batch 1 and batch 8 on each model, on this CPU's best
kernels and on the plain AVX2 ones (TACHYON_NO_AVX512=1 TACHYON_NO_AVXVNNI=1), and prints
t(K)/t(1). Then projects the decode speedup for a target of that shape from a per-token
acceptance rate (the geometric model: a draft of d tokens yields E(d) = 1 + a + ... + a^d
tokens per step):
  n-gram drafts:  E(d) / c(d+1)
  draft model:    E(d) / (c(d+1) + d * r)   (r: a draft-model step / a target step)
with c(K) = t(K)/t(1), at the best d. --accept defaults to code-tiny's measured rate
(README: bench/spec_bench.py on held-out code), --draft-ratio to code-tiny-draft's
measured step cost relative to code-tiny's.

usage: bench/spec_cost.py [--bin build/tachyon] [--models "bench/models/tinyllama-1.1b-Q4_0.gguf ..."]
                          [--threads 2] [--steps 16] [--reps 2] [--depth 128] [--paths native,avx2]
                          [--accept 0.78] [--draft-ratio 0.3] [--json FILE]
Models: `bench/perf.sh --types "Q4_0 Q8_0" -p 0 -n 0` generates the TinyLlama-shape files.
"""
import argparse, json, os, subprocess, sys


def curve(binary, model, threads, steps, reps, depth, batch, env):
    cmd = [binary, "perf", "-m", model, "-t", str(threads), "--verify", "1,2,3,4,5,6,7,8,9", "-n", str(steps),
           "-r", str(reps), "-d", str(depth), "--batch", str(batch), "--json"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    res = json.loads(out)["results"]
    t = {r["tokens_per_seq"]: r["ms_per_step"] for r in res if r["test"] == "verify"}
    return t


def project(c, a, r):
    best = (1.0, 0)
    for d in range(1, 9):
        e = sum(a ** i for i in range(d + 1))
        s = e / (c[d + 1] + d * r)
        if s > best[0]:
            best = (s, d)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/tachyon")
    ap.add_argument("--models", default="bench/models/tinyllama-1.1b-Q4_0.gguf bench/models/tinyllama-1.1b-Q8_0.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--depth", type=int, default=128)
    ap.add_argument("--paths", default="native,avx2")
    ap.add_argument("--accept", type=float, default=0.78)
    ap.add_argument("--draft-ratio", type=float, default=0.3)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    out = {}
    for model in a.models.split():
        if not os.path.exists(model):
            sys.exit(model + ": missing (bench/perf.sh --types \"Q4_0 Q8_0\" -p 0 -n 0 generates it)")
        for path in a.paths.split(","):
            env = dict(os.environ)
            if path == "avx2":
                env.update(TACHYON_NO_AVX512="1", TACHYON_NO_AVXVNNI="1")
            for batch in (1, 8):
                t = curve(a.bin, model, a.threads, a.steps, a.reps, a.depth, batch, env)
                c = {k: t[k] / t[1] for k in t}
                ng, ng_d = project(c, a.accept, 0.0)
                dm, dm_d = project(c, a.accept, a.draft_ratio)
                key = "%s %s batch %d" % (os.path.basename(model), path, batch)
                out[key] = {"ms": t, "ratio": c, "projected_ngram": [ng, ng_d], "projected_draft": [dm, dm_d]}
                print("%-44s t(1) %7.2f ms | t(K)/t(1) K=2..8: %s | projected at a=%.2f: n-gram %.2fx (d=%d), "
                      "draft model %.2fx (d=%d, r=%.2f)" %
                      (key, t[1], " ".join("%.2f" % c[k] for k in range(2, 9)), a.accept, ng, ng_d, dm, dm_d,
                       a.draft_ratio), flush=True)
    if a.json:
        json.dump(out, open(a.json, "w"), indent=1)


main()
