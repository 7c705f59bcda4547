#!/usr/bin/env python3
"""MoE under a memory budget (issue 23): the same file with `--mem-budget` at 100%, 50%
and 25% (by default) of its routed experts' bytes.

For each budget, and for the unconstrained (all resident) run:
  - decode tok/s (`tachyon perf -p 0 -n N`), the expert cache's hit rate, MiB read per
    token, prefetch accuracy, and the I/O roofline: the expert read bandwidth `perf`
    measures (scattered units, same O_DIRECT/buffered mode, same threads) divided by the
    bytes missed per token; "of roofline" = tok/s / that;
  - `tachyon run` greedy on a fixed prompt: the tokens must equal the unconstrained run's,
    and the process's peak RSS must stay within budget + resident part + 10% (resident
    part: the file's bytes outside the routed experts).

The model: a Qwen3-30B-A3B-shaped file with fewer layers (random weights from
../shared/tools/gguf_synth.py, quantized by `tachyon quantize`), kept in bench/models
(git-ignored) and reused.

  python3 bench/moe_budget.py [--type Q4_K_M] [--layers 6] [--fracs 100,50,25] [-n 32] [-r 2] [-t 2]
                              [--model FILE] [--no-prefetch-too]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TACHYON = os.path.join(ROOT, "build", "tachyon")
PROMPT = ("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    a, b = 0, 1\n"
          "    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def make_model(layers, qtype):
    os.makedirs(os.path.join(ROOT, "bench", "models"), exist_ok=True)
    base = os.path.join(ROOT, "bench", "models", f"qwen3moe-a3b-{layers}l")
    f16 = base + "-F16.gguf"
    if not os.path.exists(f16):
        print(f"generating {f16} (random weights)", file=sys.stderr)
        sh([sys.executable, os.path.join(ROOT, "..", "shared", "tools", "gguf_synth.py"),
            "--vocab", os.path.join(ROOT, "..", "shared", "data", "tokenizer", "ggml-vocab-llama-spm.gguf"),
            "--arch", "qwen3moe", "--n-embd", "2048", "--n-layer", str(layers), "--n-head", "32",
            "--n-head-kv", "4", "--head-dim", "128", "--n-ff", "6144", "--n-expert", "64",
            "--n-expert-used", "8", "--n-ff-exp", "768", "--eps", "1e-6", "--ctx", "4096", "--seed", "3",
            "--name", "synthetic", "-o", f16])
    out = f"{base}-{qtype}.gguf"
    if qtype != "F16" and not os.path.exists(out):
        print(f"quantizing {out} (tachyon quantize)", file=sys.stderr)
        sh([TACHYON, "quantize", f16, out, qtype])
    return f16 if qtype == "F16" else out


def run_child(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--type", default="Q4_K_M")
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--model", help="a MoE GGUF file instead of the generated one")
    ap.add_argument("--fracs", default="100,50,25", help="budgets, %% of the routed experts' bytes")
    ap.add_argument("-n", type=int, default=32, help="decode tokens per perf repetition and per run")
    ap.add_argument("-r", type=int, default=2, help="perf repetitions")
    ap.add_argument("-t", type=int, default=2, help="threads")
    ap.add_argument("--no-prefetch-too", action="store_true", help="also run each budget with --no-expert-prefetch")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    if not os.path.exists(TACHYON):
        raise SystemExit("build tachyon first (scripts/build.sh)")
    model = a.model or make_model(a.layers, a.type)
    size = os.path.getsize(model)

    # the routed experts' bytes (as cached: packed units) and their bytes in the file
    probe = json.loads(sh([TACHYON, "perf", "-m", model, "-p", "0", "-n", "1", "-r", "1", "-t", str(a.t),
                           "--mem-budget", "1T", "--json"]))
    ex = probe["expert_cache"]
    expert_bytes = ex["expert_bytes"]
    resident_part = size - ex["expert_file_bytes"]
    print(f"model {os.path.relpath(model, ROOT)}: {size / 2**20:.0f} MiB, routed experts {ex['expert_file_bytes'] / 2**20:.0f}"
          f" MiB in the file ({ex['units']} units), resident part {resident_part / 2**20:.0f} MiB; {a.t} threads, "
          f"{'O_DIRECT' if ex['direct_io'] else 'buffered'} expert reads")

    def perf(extra):
        out = json.loads(sh([TACHYON, "perf", "-m", model, "-p", "0", "-n", str(a.n), "-r", str(a.r), "-t", str(a.t),
                             "--json"] + extra))
        return out["results"][0]

    def run(extra):
        out = run_child([TACHYON, "run", "-m", model, "-p", PROMPT, "-n", str(a.n), "--temp", "0", "-t", str(a.t),
                            "--ignore-eos", "--json"] + extra)
        j = json.loads(out)
        return j

    rows = []
    cases = [("resident", [])]
    for f in [int(x) for x in a.fracs.split(",")]:
        b = expert_bytes * f // 100
        cases.append((f"{f}%", ["--mem-budget", str(b)], b))
        if a.no_prefetch_too:
            cases.append((f"{f}% no prefetch", ["--mem-budget", str(b), "--no-expert-prefetch"], b))
    ref_tokens = None
    for case in cases:
        name, extra = case[0], case[1]
        budget = case[2] if len(case) > 2 else None
        p = perf(extra)
        r = run(extra)
        rss = r.get("rss_peak_bytes", 0)
        if ref_tokens is None:
            ref_tokens = r["tokens"]
        same = r["tokens"] == ref_tokens
        row = {"case": name, "budget_bytes": budget, "tokens_per_s": p["tokens_per_s"], "rss_peak_bytes": rss,
               "identical_tokens": same}
        if budget is not None:
            e = p["expert_cache"]
            row.update({"hit_rate": e["hit_rate"], "mib_per_token": e["bytes_read_per_token"] / 2**20,
                        "read_mib_s": e["read_bandwidth_bytes_per_s"] / 2**20,
                        "io_roofline_tokens_per_s": e["io_roofline_tokens_per_s"], "of_roofline": e["of_io_roofline"],
                        "prefetch_accuracy": e["prefetch_accuracy"],
                        "rss_limit_bytes": int((budget + resident_part) * 1.10)})
            row["rss_ok"] = rss <= row["rss_limit_bytes"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    print("\n| case | budget | tg tok/s | hit rate | MiB read/token | read MiB/s | I/O roofline tok/s | of roofline "
          "| prefetch used | peak RSS (limit) | tokens identical |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if row["budget_bytes"] is None:
            print(f"| {row['case']} | - | {row['tokens_per_s']:.2f} | - | - | - | - | - | - | "
                  f"{row['rss_peak_bytes'] / 2**20:.0f} MiB | (reference) |")
        else:
            print(f"| {row['case']} | {row['budget_bytes'] / 2**20:.0f} MiB | {row['tokens_per_s']:.2f} | "
                  f"{100 * row['hit_rate']:.1f}% | {row['mib_per_token']:.1f} | {row['read_mib_s']:.0f} | "
                  f"{row['io_roofline_tokens_per_s']:.2f} | {100 * row['of_roofline']:.0f}% | "
                  f"{100 * row['prefetch_accuracy']:.0f}% | {row['rss_peak_bytes'] / 2**20:.0f} "
                  f"({row['rss_limit_bytes'] / 2**20:.0f}) MiB {'ok' if row['rss_ok'] else 'OVER'} | "
                  f"{'yes' if row['identical_tokens'] else 'NO'} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": model, "threads": a.t, "rows": rows}, f, indent=1)
    bad = [r for r in rows if not r["identical_tokens"] or not r.get("rss_ok", True)]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
