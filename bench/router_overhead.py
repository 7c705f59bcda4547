#!/usr/bin/env python3
"""Router overhead benchmark (issue 24): the latency `tachyon router` adds to a request and
the requests/s it passes, against a stub backend that answers at once.

usage: python3 bench/router_overhead.py [--bin build/tachyon] [--stub build/router_stub]
           [--n 20000] [--c 16] [--lat-n 3000] [--repeat 3] [--policy cache_aware]
           [--router-io-threads 2] [--out bench/results]

The stub (bench/router_stub.cpp, target router_stub) answers POST /v1/chat/completions
with a fixed ~300-byte chat completion; the load generator (router_stub --load, one I/O
thread, keep-alive connections, closed loop) sends a 90-byte chat request. Steps, each
--repeat times alternating direct and routed (the median run is reported):
  latency     concurrency 1, --lat-n requests: p50/p99 direct to the stub and through
              the router; added = routed - direct (goal: p50 added < 1 ms).
  throughput  concurrency --c, --n requests: requests/s direct and through the router
              (goal: >= 2,000 requests/s through the router).
  streaming   the same two with "stream": true (the stub sends two SSE chunks and [DONE];
              latency to the stream's end): the router's chunk-by-chunk pass-through.
Everything runs on this machine's cores together (stub, router, load generator), so the
throughput is a lower bound of what the router alone sustains. Writes
OUT/router_overhead.json. Every process it starts is stopped when it ends.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--bin", default="build/tachyon")
ap.add_argument("--stub", default="build/router_stub")
ap.add_argument("--n", type=int, default=20000)
ap.add_argument("--c", type=int, default=16)
ap.add_argument("--lat-n", type=int, default=3000)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--policy", default="cache_aware")
ap.add_argument("--router-io-threads", type=int, default=2)
ap.add_argument("--stub-io-threads", type=int, default=1)
ap.add_argument("--out", default="bench/results")
args = ap.parse_args()

procs = []


def start(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs.append(p)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        m = re.search(r"listening on (http://\S+)", line)
        if m:
            return m.group(1)
    raise RuntimeError("did not start: " + " ".join(cmd))


def load(url, n, c, stream=False):
    r = subprocess.run([args.stub, "--load", url, "--n", str(n), "--c", str(c), "--warmup", str(min(500, n // 10))]
                       + (["--stream"] if stream else []),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"load {url}: exit {r.returncode}: {r.stderr}{r.stdout}")
    d = json.loads(r.stdout)
    if d["errors"]:
        print(f"warning: {d['errors']} errors against {url}: {d['first_error']}", file=sys.stderr)
    return d


def median_run(runs, key):
    return sorted(runs, key=lambda d: d[key])[len(runs) // 2]


def main():
    stub = start([args.stub, "--port", "0", "--io-threads", str(args.stub_io_threads)])
    router = start([args.bin, "router", "--worker", stub, "--port", "0", "--policy", args.policy,
                    "--io-threads", str(args.router_io_threads)])
    # the router considers workers healthy from the start; one request checks the path
    load(router, 10, 1)
    res = {k: {"direct": [], "router": []} for k in ("latency", "throughput", "stream_latency", "stream_throughput")}
    for i in range(args.repeat):
        for name, url in (("direct", stub), ("router", router)):
            res["latency"][name].append(load(url, args.lat_n, 1))
        for name, url in (("direct", stub), ("router", router)):
            res["throughput"][name].append(load(url, args.n, args.c))
        for name, url in (("direct", stub), ("router", router)):
            res["stream_latency"][name].append(load(url, args.lat_n, 1, stream=True))
        for name, url in (("direct", stub), ("router", router)):
            res["stream_throughput"][name].append(load(url, args.n, args.c, stream=True))
        print(f"round {i + 1}/{args.repeat}: c=1 p50 direct {res['latency']['direct'][-1]['p50_us']:.0f} us, "
              f"router {res['latency']['router'][-1]['p50_us']:.0f} us; c={args.c} direct "
              f"{res['throughput']['direct'][-1]['rps']:.0f} req/s, router {res['throughput']['router'][-1]['rps']:.0f} req/s",
              flush=True)
    ld, lr = median_run(res["latency"]["direct"], "p50_us"), median_run(res["latency"]["router"], "p50_us")
    td, tr = median_run(res["throughput"]["direct"], "rps"), median_run(res["throughput"]["router"], "rps")
    sld, slr = median_run(res["stream_latency"]["direct"], "p50_us"), median_run(res["stream_latency"]["router"], "p50_us")
    std_, str_ = median_run(res["stream_throughput"]["direct"], "rps"), median_run(res["stream_throughput"]["router"], "rps")
    added_p50_ms = (lr["p50_us"] - ld["p50_us"]) / 1000
    added_p99_ms = (lr["p99_us"] - ld["p99_us"]) / 1000
    added_p50_loaded_ms = (tr["p50_us"] - td["p50_us"]) / 1000
    summary = {
        "added_latency_p50_ms": round(added_p50_ms, 4),
        "added_latency_p99_ms": round(added_p99_ms, 4),
        "added_latency_p50_ms_at_c": round(added_p50_loaded_ms, 4),
        "router_rps": round(tr["rps"], 1),
        "direct_rps": round(td["rps"], 1),
        "stream_added_latency_p50_ms": round((slr["p50_us"] - sld["p50_us"]) / 1000, 4),
        "stream_added_latency_p99_ms": round((slr["p99_us"] - sld["p99_us"]) / 1000, 4),
        "stream_router_rps": round(str_["rps"], 1),
        "stream_direct_rps": round(std_["rps"], 1),
        "goal_added_p50_lt_1ms": added_p50_ms < 1.0,
        "goal_router_rps_ge_2000": tr["rps"] >= 2000,
    }
    print(f"latency (c=1, {args.lat_n} requests): p50 direct {ld['p50_us'] / 1000:.3f} ms, router "
          f"{lr['p50_us'] / 1000:.3f} ms -> added p50 {added_p50_ms:.3f} ms (goal < 1 ms: "
          f"{'met' if summary['goal_added_p50_lt_1ms'] else 'NOT met'}); p99 direct {ld['p99_us'] / 1000:.3f} ms, "
          f"router {lr['p99_us'] / 1000:.3f} ms -> added p99 {added_p99_ms:.3f} ms")
    print(f"throughput (c={args.c}, {args.n} requests): direct {td['rps']:.0f} req/s, router {tr['rps']:.0f} req/s "
          f"(goal >= 2000: {'met' if summary['goal_router_rps_ge_2000'] else 'NOT met'}); p50 at c={args.c}: direct "
          f"{td['p50_us'] / 1000:.3f} ms, router {tr['p50_us'] / 1000:.3f} ms")
    print(f"streaming: added p50 {summary['stream_added_latency_p50_ms']:.3f} ms, p99 "
          f"{summary['stream_added_latency_p99_ms']:.3f} ms (c=1); c={args.c}: direct {std_['rps']:.0f} req/s, "
          f"router {str_['rps']:.0f} req/s")
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, "router_overhead.json")
    with open(out, "w") as f:
        json.dump({"summary": summary, "config": vars(args),
                   "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "platform": platform.platform()},
                   "median": {"latency_direct": ld, "latency_router": lr, "throughput_direct": td,
                              "throughput_router": tr, "stream_latency_direct": sld, "stream_latency_router": slr,
                              "stream_throughput_direct": std_, "stream_throughput_router": str_},
                   "runs": res}, f, indent=1)
    print("wrote", out)


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
