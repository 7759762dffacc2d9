#!/usr/bin/env python3
"""Interleaved A/B of edgeway binaries (and optionally nginx) on one scenario.

    flock /work/wt/bench.lock python3 bench/ab.py --bin old=/tmp/old --bin new=bin/edgeway \
        --scenario echo64k --rounds 6 --dur 5 [--nginx] [--rate 2000]

Every binary serves the same functions folder (bench/deno/handlers.ts), each
with its own workers. Each round runs the load once per stack, in an order
that alternates between rounds. Per run it reports the gateway's CPU per
request (utime+stime from /proc/<pid>/stat), its workers' CPU per request,
and its read- and write-type system calls per request (syscr/syscw from
/proc/<pid>/io), then the median of the per-round differences against the
first binary. Load: wrk -t1 -c64 (default) or vegeta at --rate req/s.
Everything started is killed at the end (benchlib.Procs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

SCEN = {
    "hello": ("GET", "/hello", 0),
    "echo1k": ("POST", "/echo", 1024),
    "echo64k": ("POST", "/echo", 65536),
    "stream": ("GET", "/stream", 0),
    "cpu": ("GET", "/cpu", 0),
}


def io_counts(pids: list[int]) -> tuple[int, int]:
    r = w = 0
    for p in pids:
        try:
            for ln in Path(f"/proc/{p}/io").read_text().splitlines():
                k, _, v = ln.partition(":")
                if k == "syscr":
                    r += int(v)
                elif k == "syscw":
                    w += int(v)
        except OSError:
            pass
    return r, w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", default=[], help="label=path of an edgeway binary")
    ap.add_argument("--nginx", action="store_true", help="add nginx → Deno as a stack")
    ap.add_argument("--scenario", default="echo64k", choices=sorted(SCEN))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--dur", type=float, default=5.0)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--rate", type=int, default=0, help="vegeta at this rate instead of wrk")
    ap.add_argument("--flags", default="", help="extra edgeway flags for every binary")
    args = ap.parse_args()
    deno = shutil.which("deno")
    vegeta = str(bl.ROOT / ".tools" / "bin" / "vegeta")
    method, path, size = SCEN[args.scenario]
    work = Path(tempfile.mkdtemp(prefix="edgeway-ab-"))
    procs = bl.Procs(work)
    try:
        fdir = work / "functions"
        bl.write_functions(fdir, ["hello", "echo", "stream", "cpu"])
        body = None
        if size:
            body = work / "body.bin"
            body.write_bytes(os.urandom(size))
        stacks = []
        for spec in args.bin:
            label, _, p = spec.partition("=")
            b = work / f"edgeway-{label}"
            shutil.copy(p, b)
            flags = ["--auth", "none", "--rate-limit", "0", *args.flags.split()]
            st = bl.start_edgeway(procs, str(b), deno, fdir, flags, name=label, ready_path=path if method == "GET" else "/hello")
            st.name = label
            stacks.append(st)
        if args.nginx:
            stacks.append(bl.start_nginx(procs, deno, work))
        script = work / "s.lua"
        bl.write_wrk_script(script, method, [path], body)
        targets = work / "targets.txt"

        def proxy_pids(st):
            if st.name == "nginx":
                return [st.main.pid] + bl.children(st.main.pid)
            return [st.main.pid]

        def deno_pids(st):
            if st.name == "nginx":
                return [st.deno.pid]
            return bl.children(st.main.pid)

        def run(st, dur):
            if args.rate:
                bl.write_vegeta_targets(targets, st.port, method, [path], body)
                argv = ["sh", "-c", f"{vegeta} attack -rate {args.rate}/1s -duration {dur:g}s -timeout 10s "
                        f"-workers 16 -max-workers 128 -targets {targets} | {vegeta} report -type json"]
            else:
                argv = ["wrk", "-t1", f"-c{args.conns}", f"-d{dur:g}s", "--timeout", "10s", "--latency", "-s",
                        str(script), f"http://127.0.0.1:{st.port}{path}"]
            pp, dp = proxy_pids(st), deno_pids(st)
            c0, d0, io0 = sum(map(bl.cpu_ticks, pp)), sum(map(bl.cpu_ticks, dp)), io_counts(pp)
            out = work / "out.txt"
            rc, _ = procs.run_measured("load", argv, dur + 30, out)
            c1, d1, io1 = sum(map(bl.cpu_ticks, pp)), sum(map(bl.cpu_ticks, dp)), io_counts(pp)
            text = out.read_text(errors="replace")
            if rc != 0:
                raise RuntimeError(text[-1500:])
            if args.rate:
                res = bl.parse_vegeta_report(text[text.index("{"):])
            else:
                res = bl.parse_wrk(text)
            n = max(1, res["requests"])
            return {
                "req_s": res["req_s"], "p50": res["p50_ms"], "p99": res["p99_ms"],
                "bad": res["non2xx"] + res["socket_errors"],
                "gw_us": (c1 - c0) / bl.CLK_TCK / n * 1e6, "deno_us": (d1 - d0) / bl.CLK_TCK / n * 1e6,
                "rd": (io1[0] - io0[0]) / n, "wr": (io1[1] - io0[1]) / n,
            }

        for st in stacks:  # warm-up (workers boot, JIT, pools)
            run(st, 2)
        rows = {st.name: [] for st in stacks}
        for r in range(args.rounds):
            order = stacks if r % 2 == 0 else list(reversed(stacks))
            for st in order:
                bl.wait_quiet(25, 5)
                m = run(st, args.dur)
                rows[st.name].append(m)
                print(f"r{r} {st.name:8} {m['req_s']:9.0f} req/s  gw {m['gw_us']:6.1f} µs/req  deno {m['deno_us']:6.1f}"
                      f"  rd {m['rd']:.2f} wr {m['wr']:.2f}/req  p50 {m['p50']:.3f} p99 {m['p99']:.2f} ms"
                      f"  bad {m['bad']}", flush=True)
        base = stacks[0].name
        print(f"\nmedians over {args.rounds} rounds, {args.scenario}, "
              + (f"vegeta {args.rate}/s" if args.rate else f"wrk -c{args.conns}") + f" {args.dur:g}s")
        for st in stacks:
            xs = rows[st.name]
            med = {k: statistics.median(x[k] for x in xs) for k in xs[0]}
            line = (f"{st.name:8} {med['req_s']:9.0f} req/s  gw {med['gw_us']:6.1f} µs/req  deno {med['deno_us']:6.1f}"
                    f"  rd {med['rd']:.2f} wr {med['wr']:.2f}/req  p50 {med['p50']:.3f} ms")
            if st.name != base:
                d = [a["gw_us"] - b["gw_us"] for a, b in zip(xs, rows[base])]
                q = [a["req_s"] / b["req_s"] for a, b in zip(xs, rows[base])]
                line += (f"  | paired gw Δ vs {base}: median {statistics.median(d):+.1f} µs "
                         f"[{min(d):+.1f}..{max(d):+.1f}], req/s ×{statistics.median(q):.3f}")
            print(line)
    finally:
        procs.stop_all()
        time.sleep(0.2)
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
