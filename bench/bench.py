#!/usr/bin/env python3
"""edgeway benchmark: edgeway vs Deno direct vs nginx→Deno, interleaved runs.

Started by bench/run.sh (which installs the tools and sets the environment);
see bench/README.md for the variables and the meaning of every column.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
from benchlib import log, median  # noqa: E402

ALL_STACKS = ["direct", "nginx", "edgeway"]
# edgeway-off: a second edgeway with --upstream-pipelining off, for the
# scenarios that compare the two upstream modes (hello, mixed).
PIPE_OFF = "edgeway-off"
# hello-redis: two more edgeways with a rate limit on (an rpm no load reaches,
# so nothing is refused): one with the local limiter, one with the shared
# Redis store (a redis-server on this box), run in the same rounds.
RL_LOCAL = "edgeway-rl-local"
RL_REDIS = "edgeway-rl-redis"
RL_RPM = "100000000"
FN50 = [f"/f{i:02d}" for i in range(50)]
# fn50's nginx peer: nginx routing /f00../f49 to 50 Deno processes on 50
# sockets (edgeway's shape: one process per function). Its records are
# labelled "nginx", so the scenario reports edgeway/nginx like the others.
NGINX_FN50 = "nginx-fn50"
# mixed: 9 fast requests for 1 slow one (200 ms) to the same function
MIXED = ["/mixed/fast"] * 9 + ["/mixed/slow"]

# name: method, paths, request body size, vegeta rate (req/s), stacks, expected body check
SCENARIOS = {
    "hello": dict(method="GET", paths=["/hello"], body=0, rate=2000, stacks=ALL_STACKS + [PIPE_OFF],
                  what="GET, 14-byte body", one_conn=["edgeway", PIPE_OFF], min_runs=5),
    "echo1k": dict(method="POST", paths=["/echo"], body=1024, rate=2000, stacks=ALL_STACKS,
                   what="POST 1 KiB, echoed"),
    "echo64k": dict(method="POST", paths=["/echo"], body=65536, rate=1000, stacks=ALL_STACKS,
                    what="POST 64 KiB, echoed"),
    "cpu": dict(method="GET", paths=["/cpu"], body=0, rate=300, stacks=ALL_STACKS,
                what="~1 ms of JS CPU per request"),
    "stream": dict(method="GET", paths=["/stream"], body=0, rate=2000, stacks=ALL_STACKS,
                   what="chunked response, 5 × 512 B chunks"),
    "fn50": dict(method="GET", paths=FN50, body=0, rate=2000, stacks=["direct", NGINX_FN50, "edgeway"],
                 what="50 functions round-robin (direct: 50 paths, 1 process; nginx: 50 Deno processes)"),
    "mixed": dict(method="GET", paths=MIXED, body=0, rate=1000, stacks=["edgeway", PIPE_OFF],
                  what="one function, 9 × /fast (immediate) : 1 × /slow (200 ms), vegeta only", vegeta_only=True,
                  by_url=True, min_runs=5),
    # WebSocket echo, driven by bench/wsbench (wrk and vegeta speak no WebSocket): messages/s with
    # BENCH_CONNS connections, round-trip latency on one, and connections opened+closed per second.
    "ws": dict(method="GET", paths=["/ws"], body=0, stacks=ALL_STACKS, ws=True,
               what="WebSocket echo of binary messages (wsbench)"),
    "hello-redis": dict(method="GET", paths=["/hello"], body=0, rate=2000, stacks=[RL_LOCAL, RL_REDIS],
                        what="GET /hello rate-limited: local limiter vs the Redis store (local redis-server)",
                        one_conn=[RL_LOCAL, RL_REDIS]),
    "coldstart": dict(what="first request to a cold function"),
}
# mixed runs first, while both gateways are fresh: its auto/off comparison
# must not carry the other scenarios' history. Run after them, the default
# gateway had 60 functions' workers and a k6 ramp behind it, the off one two
# functions, and its fast requests were 30 µs slower at p50 in every round.
FIRST = ["mixed"]
FULL = FIRST + [s for s in SCENARIOS if s not in FIRST]
QUICK = ["hello", "echo1k", "fn50", "coldstart"]


def env_float(name, default):
    v = os.environ.get(name, "")
    return float(v) if v else default


def parse_duration(v: str) -> float:
    v = v.strip()
    if v.endswith("ms"):
        return float(v[:-2]) / 1000
    if v.endswith("s"):
        return float(v[:-1])
    if v.endswith("m"):
        return float(v[:-1]) * 60
    return float(v)


class Bench:
    def __init__(self):
        self.quick = os.environ.get("BENCH_QUICK", "0") == "1"
        self.dur = parse_duration(os.environ.get("BENCH_DURATION") or ("3s" if self.quick else "10s"))
        self.runs = int(os.environ.get("BENCH_RUNS") or (2 if self.quick else 3))
        self.warmup = parse_duration(os.environ.get("BENCH_WARMUP") or ("1s" if self.quick else "2s"))
        self.conns = int(os.environ.get("BENCH_CONNS") or 64)
        self.cold_reps = int(os.environ.get("BENCH_COLD_REPS") or (3 if self.quick else 10))
        self.rate_override = int(os.environ.get("BENCH_RATE") or 0)
        self.max_workers = int(os.environ.get("BENCH_VEGETA_MAX_WORKERS") or 128)
        self.quiet_busy = env_float("BENCH_QUIET_BUSY", 25.0)
        self.quiet_wait = env_float("BENCH_QUIET_MAX_WAIT", 5.0)
        self.k6 = os.environ.get("K6") or "k6"
        k6_on = os.environ.get("BENCH_K6", "0") == "1"
        self.k6_scenarios = [x for x in os.environ.get("BENCH_K6_SCENARIOS", "hello").split(",") if x] \
            if k6_on else []
        # k6 ramp (bench/k6/ramp.js): open-loop rate rising in stages, one run per stack and round
        self.k6_ramp_scenarios = [x for x in os.environ.get("BENCH_K6_RAMP_SCENARIOS", "hello").split(",") if x] \
            if k6_on else []
        self.k6_ramp_runs = int(os.environ.get("BENCH_K6_RAMP_RUNS") or 1)
        self.k6_ramp_stages = os.environ.get("BENCH_K6_RAMP_STAGES") or default_ramp_stages(self.dur)
        if self.k6_ramp_scenarios:
            check_ramp_stages(self.k6_ramp_stages)
        sc = os.environ.get("BENCH_SCENARIOS", "")
        self.scenarios = [s for s in (sc.split(",") if sc else (QUICK if self.quick else FULL)) if s]
        self.scenarios.sort(key=lambda s: s not in FIRST)  # stable: FIRST ones to the front
        for s in self.scenarios:
            if s not in SCENARIOS:
                raise SystemExit(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
        self.deno = os.environ["DENO"]
        self.edgeway = os.environ.get("EDGEWAY_BIN") or str(bl.ROOT / "bin" / "edgeway")
        self.wrk = os.environ.get("WRK") or "wrk"
        self.vegeta = os.environ.get("VEGETA") or "vegeta"
        self.nginx = os.environ.get("NGINX") or "nginx"
        self.wsbench = os.environ.get("WSBENCH") or "wsbench"
        self.ws_size = int(os.environ.get("BENCH_WS_SIZE") or 1024)
        self.ws_handshake_conns = int(os.environ.get("BENCH_WS_HANDSHAKE_CONNS") or 8)
        self.workdir = Path(os.environ["GUARD_TMP"])
        self.outdir = Path(os.environ.get("BENCH_OUT") or (bl.BENCH_DIR / "results"))
        self.procs = bl.Procs(self.workdir)
        self.spec = SCENARIOS
        self.edgeway_off_flags: list[str] = []
        self.stacks: dict[str, bl.Stack] = {}
        self.scenario_stacks: dict[str, bl.Stack] = {}
        self.records: list[dict] = []
        # (scenario, stack) -> path -> every latency (ms) of the recorded
        # by-URL runs: a p99 over all runs pooled is steadier than the
        # median of per-run p99s, which rest on ~90 requests each.
        self.url_samples: dict[tuple[str, str], dict[str, list[float]]] = {}
        self.validation: list[dict] = []
        self.cold: dict = {}
        self.cold_pool: dict = {}
        self.notes: list[str] = []
        self.failures: list[str] = []

    # ------------------------------------------------------------ setup
    def start_stacks(self):
        self.edgeway_src = self.edgeway
        self.edgeway = bl.snapshot_edgeway(self.edgeway, self.workdir)
        self.edgeway_flags = bl.edgeway_flags(self.edgeway, "BENCH_EDGEWAY_FLAGS")
        log(f"edgeway: {bl.sh([self.edgeway, 'version'])}, flags {' '.join(self.edgeway_flags) or '(none)'}")
        fdir = self.workdir / "functions"
        names = bl.SINGLE_FUNCTIONS + ["mixed"] + [p[1:] for p in FN50] + [f"cold{i:02d}" for i in range(self.cold_reps + 1)]
        bl.write_functions(fdir, names)
        self.functions_dir = fdir
        log("starting Deno direct (TCP)")
        self.stacks["direct"] = bl.start_direct(self.procs, self.deno)
        log("starting nginx → Deno (unix socket)")
        self.stacks["nginx"] = bl.start_nginx(self.procs, self.deno, self.workdir, self.nginx)
        if any(NGINX_FN50 in SCENARIOS[s].get("stacks", []) for s in self.scenarios):
            log(f"starting nginx → {len(FN50)} Deno processes (one Unix socket each)")
            self.stacks[NGINX_FN50] = bl.start_nginx_functions(self.procs, self.deno, self.workdir,
                                                               [p[1:] for p in FN50], self.nginx, NGINX_FN50)
        log(f"starting edgeway ({len(names)} functions)")
        self.stacks["edgeway"] = bl.start_edgeway(self.procs, self.edgeway, self.deno, fdir, self.edgeway_flags)
        if any(PIPE_OFF in SCENARIOS[s].get("stacks", []) for s in self.scenarios):
            if "--upstream-pipelining" in bl.sh([self.edgeway, "help"]):
                self.edgeway_off_flags = self.edgeway_flags + ["--upstream-pipelining", "off"]
                log(f"starting edgeway-off (--upstream-pipelining off, {len(names)} functions)")
                st = bl.start_edgeway(self.procs, self.edgeway, self.deno, fdir, self.edgeway_off_flags,
                                      name=PIPE_OFF)
                st.name = PIPE_OFF
                self.stacks[PIPE_OFF] = st
            else:
                self.notes.append("this build has no --upstream-pipelining: edgeway-off not run")
        if any(RL_REDIS in SCENARIOS[s].get("stacks", []) for s in self.scenarios):
            self.start_rate_limit_stacks(fdir)
        for s in self.stacks.values():
            log(f"  {s.name:8s} http://127.0.0.1:{s.port}  pid {s.main.pid}")

    def start_rate_limit_stacks(self, fdir):
        """hello-redis: redis-server on a free loopback port, then an edgeway
        with the local limiter and one with --rate-limit-store."""
        redis = shutil.which("redis-server")
        if not redis:
            self.notes.append("redis-server not installed: hello-redis not run (apt-get install redis-server)")
            return
        if "--rate-limit-store" not in bl.sh([self.edgeway, "help"]):
            self.notes.append("this build has no --rate-limit-store: hello-redis not run")
            return
        port = bl.free_port()
        log(f"starting redis-server on 127.0.0.1:{port}")
        self.procs.start("redis", [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", str(self.workdir)])
        bl.wait_tcp(port, 30)
        rl = self.edgeway_flags + ["--rate-limit", RL_RPM]
        for name, flags in ((RL_LOCAL, rl), (RL_REDIS, rl + ["--rate-limit-store", f"redis://127.0.0.1:{port}/0"])):
            log(f"starting {name}")
            st = bl.start_edgeway(self.procs, self.edgeway, self.deno, fdir, flags, name=name)
            st.name = name
            self.stacks[name] = st

    # ------------------------------------------------------------ checks
    def validate(self, scen: str, spec: dict, stack: bl.Stack, body: bytes):
        """One request per path before any load: status and body must be right."""
        bad = []
        for path in spec["paths"]:
            try:
                st, hdrs, got, _, _ = bl.http_request(stack.port, spec["method"], path, body, timeout=30)
            except OSError as e:
                bad.append(f"{path}: {e}")
                continue
            want = expected_body(path, body)
            if st != 200:
                bad.append(f"{path}: status {st} ({got[:120]!r})")
            elif want is not None and got != want:
                bad.append(f"{path}: body {len(got)} bytes {got[:60]!r}, want {len(want)} bytes")
            elif want is None and not got.startswith(b"cpu "):
                bad.append(f"{path}: body {got[:60]!r}")
        self.validation.append({"scenario": scen, "stack": stack.name, "ok": not bad, "problems": bad[:5]})
        if bad:
            log(f"  VALIDATION FAILED {scen}/{stack.name}: {bad[:3]}")

    # ------------------------------------------------------------ runs
    def meter(self, scen: str, stack: bl.Stack) -> bl.Meter:
        fns = {p.strip("/").split("/")[0] for p in SCENARIOS[scen]["paths"]}
        deno = lambda: stack.deno_pids(fns)  # noqa: E731
        return bl.Meter({"proxy": stack.proxy_pids, "deno": deno}, {"gateway": stack.proxy_pids, "deno": deno})

    def run_wrk(self, scen, stack, script, dur, record=True, rnd=0, conns=None, tool="wrk"):
        url = f"http://127.0.0.1:{stack.port}{SCENARIOS[scen]['paths'][0]}"
        argv = [self.wrk, "-t1", f"-c{conns or self.conns}", f"-d{dur:g}s", "--timeout", "10s", "--latency", "-s",
                str(script), url]
        waited = bl.wait_quiet(self.quiet_busy, self.quiet_wait) if record else 0
        out = self.workdir / f"{tool}-{scen}-{stack.name}-r{rnd}.txt"
        m = self.meter(scen, stack)
        m.start()
        rc, gen_cpu = self.procs.run_measured("wrk", argv, dur + 30, out)
        meas = m.stop(gen_cpu)
        if not record:
            return None
        text = out.read_text(errors="replace")
        if rc != 0:
            raise RuntimeError(f"wrk exited {rc}: {text[-1500:]}")
        res = bl.parse_wrk(text)
        self.add_record(scen, tool, stack.name, rnd, res, meas, waited)
        return res

    def run_vegeta(self, scen, stack, targets, dur, rnd, record=True, by_url=False):
        rate = self.rate_override or SCENARIOS[scen]["rate"]
        out = self.workdir / f"vegeta-{scen}-{stack.name}-r{rnd}.bin"
        argv = [self.vegeta, "attack", "-targets", str(targets), "-rate", f"{rate}/1s", "-duration", f"{dur:g}s",
                "-timeout", "10s", "-workers", "16", "-max-workers", str(self.max_workers), "-output", str(out)]
        waited = bl.wait_quiet(self.quiet_busy, self.quiet_wait) if record else 0
        m = self.meter(scen, stack)
        m.start()
        rc, gen_cpu = self.procs.run_measured("vegeta", argv, dur + 30, self.workdir / "vegeta-attack.log")
        meas = m.stop(gen_cpu)
        if rc != 0:
            raise RuntimeError(f"vegeta attack exited {rc}: {(self.workdir / 'vegeta-attack.log').read_text()[-1500:]}")
        rep = subprocess.run([self.vegeta, "report", "-type=json", str(out)], capture_output=True, text=True,
                             timeout=120)
        if rep.returncode != 0:
            raise RuntimeError(f"vegeta report failed: {rep.stderr[-1000:]}")
        if not record:
            out.unlink(missing_ok=True)
            return None
        per_url = self.vegeta_by_url(out, self.url_samples.setdefault((scen, stack.name), {})) if by_url else None
        out.unlink(missing_ok=True)
        res = bl.parse_vegeta_report(rep.stdout)
        res["rate_target"] = rate
        if per_url:
            res["by_url"] = per_url
        self.add_record(scen, "vegeta", stack.name, rnd, res, meas, waited)
        return res

    def vegeta_by_url(self, results: Path, pool: dict[str, list[float]]) -> dict:
        """Latency percentiles per path from vegeta's per-request results
        (`vegeta encode --to json`): e.g. the fast vs the slow requests of
        the mixed scenario. The latencies are also added to pool."""
        enc = self.workdir / "vegeta-encoded.json"
        with open(enc, "wb") as f:
            r = subprocess.run([self.vegeta, "encode", "--to", "json", str(results)], stdout=f,
                               stderr=subprocess.PIPE, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"vegeta encode failed: {r.stderr[-1000:]!r}")
        lat: dict[str, list[float]] = {}
        bad: dict[str, int] = {}
        with open(enc) as f:
            for ln in f:
                if not ln.strip():
                    continue
                row = json.loads(ln)
                path = "/" + row["url"].split("/", 3)[3]
                lat.setdefault(path, []).append(row["latency"] / 1e6)
                if not 200 <= row["code"] < 300:
                    bad[path] = bad.get(path, 0) + 1
        enc.unlink(missing_ok=True)
        out = {}
        for path, xs in lat.items():
            pool.setdefault(path, []).extend(xs)
            xs.sort()
            out[path] = {"requests": len(xs), "errors": bad.get(path, 0),
                         **{f"p{q}_ms": round(bl.percentile(xs, q / 100), 3) for q in (50, 90, 99)},
                         "max_ms": round(xs[-1], 3)}
        return out

    def k6_env(self, scen, stack, body_file) -> list[str]:
        """-e options shared by bench/k6/*.js: the stack's address and the
        scenario's request. --include-system-env-vars=false keeps the
        caller's environment (PATH, ...) out of the scripts' __ENV."""
        spec = SCENARIOS[scen]
        env = {"BASE": f"http://127.0.0.1:{stack.port}", "PATHS": ",".join(spec["paths"]),
               "METHOD": spec["method"], "TIMEOUT": "10s"}
        if body_file:
            env["BODY_FILE"] = str(body_file)
        return ["--include-system-env-vars=false"] + [x for k, v in env.items() for x in ("-e", f"{k}={v}")]

    def run_k6(self, scen, stack, dur, rnd, body_file):
        """Reference only: k6 closed loop (bench/k6/closed.js) with as many VUs
        as wrk connections (k6 costs ~8x wrk's CPU per request here, so it
        measures itself)."""
        summary = self.workdir / f"k6-{scen}-{stack.name}-r{rnd}.json"
        argv = [self.k6, "run", "--no-usage-report", "--quiet", "--no-color", "--vus", str(self.conns),
                "--duration", f"{dur:g}s", "--summary-trend-stats", "med,p(95),p(99),max",
                "--summary-export", str(summary), *self.k6_env(scen, stack, body_file),
                str(bl.BENCH_DIR / "k6" / "closed.js")]
        waited = bl.wait_quiet(self.quiet_busy, self.quiet_wait)
        m = self.meter(scen, stack)
        m.start()
        log_path = self.workdir / f"k6-{scen}-{stack.name}-r{rnd}.log"
        gen_cpu = 0.0
        try:
            rc, gen_cpu = self.procs.run_measured("k6", argv, dur + 60, log_path)
        finally:
            meas = m.stop(gen_cpu)
        if rc != 0 or not summary.exists():
            raise RuntimeError(f"k6 exited {rc}: {log_path.read_text(errors='replace')[-1500:]}")
        d = json.loads(summary.read_text())["metrics"]
        n, dur_ = d["http_reqs"]["count"], d["http_req_duration"]
        failed = d.get("http_req_failed", {}).get("passes", 0)
        res = {"requests": n, "req_s": round(d["http_reqs"]["rate"], 1), "p50_ms": dur_["med"],
               "p95_ms": dur_["p(95)"], "p99_ms": dur_["p(99)"], "max_ms": dur_["max"], "non2xx": failed,
               "socket_errors": 0}
        self.add_record(scen, "k6", stack.name, rnd, res, meas, waited)

    def run_k6_ramp(self, scen, stack, rnd, body_file):
        """bench/k6/ramp.js: ramping-arrival-rate through self.k6_ramp_stages;
        the script writes latency, errors and dropped iterations per stage."""
        summary = self.workdir / f"k6-ramp-{scen}-{stack.name}-r{rnd}.json"
        summary.unlink(missing_ok=True)
        total_s = ramp_seconds(self.k6_ramp_stages)
        argv = [self.k6, "run", "--no-usage-report", "--quiet", "--no-color", *self.k6_env(scen, stack, body_file),
                "-e", f"RAMP_STAGES={self.k6_ramp_stages}", "-e", f"RAMP_VUS={self.conns}",
                "-e", f"RAMP_MAX_VUS={4 * self.conns}", "-e", f"SUMMARY_JSON={summary}",
                str(bl.BENCH_DIR / "k6" / "ramp.js")]
        waited = bl.wait_quiet(self.quiet_busy, self.quiet_wait)
        m = self.meter(scen, stack)
        m.start()
        log_path = self.workdir / f"k6-ramp-{scen}-{stack.name}-r{rnd}.log"
        gen_cpu = 0.0
        try:
            # + 10 s gracefulStop (the request timeout) + k6's start-up and summary
            rc, gen_cpu = self.procs.run_measured("k6", argv, total_s + 70, log_path)
        finally:
            meas = m.stop(gen_cpu)
        if rc != 0 or not summary.exists():
            raise RuntimeError(f"k6 ramp exited {rc}: {log_path.read_text(errors='replace')[-1500:]}")
        d = json.loads(summary.read_text())
        o = d["overall"]
        res = {"requests": o["requests"], "req_s": round(o["req_s"], 1),
               "p50_ms": o["p50_ms"], "p95_ms": o["p95_ms"], "p99_ms": o["p99_ms"], "max_ms": o["max_ms"],
               "mean_ms": o["mean_ms"], "non2xx": o["failed"] - o["socket_errors"],
               "socket_errors": o["socket_errors"], "dropped_iterations": o["dropped_iterations"],
               "vus_max": o["vus_max"], "ramp_stages": self.k6_ramp_stages,
               "stages": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in st.items()}
                          for st in d["stages"]]}
        self.add_record(scen, "k6-ramp", stack.name, rnd, res, meas, waited)
        for st in res["stages"]:
            log(f"    stage {st['index']} {st['from']}->{st['to']}/s: sent {st['req_s']:,.0f}/s p50 "
                f"{fmt(st.get('p50_ms'))} p95 {fmt(st.get('p95_ms'))} p99 {fmt(st.get('p99_ms'))} ms "
                f"failed {st['failed']} dropped~{st['dropped_est']}")

    def add_record(self, scen, tool, stack, rnd, res, meas, waited):
        n = max(1, res["requests"])
        cpu = {k: round(v * 1e6 / n, 2) for k, v in meas["cpu_s"].items()}
        cpu["total"] = round(sum(cpu.values()), 2)
        wall = max(meas["wall_s"], 1e-9)
        rec = {
            "scenario": scen, "tool": tool, "stack": stack, "round": rnd, **res,
            "cpu_us_per_req": cpu,
            "cpu_pct": {k: round(100 * v / wall, 1) for k, v in meas["cpu_s"].items()},
            "gateway_rss_mib": meas["rss_peak_mib"]["gateway"] if stack != "direct" else None,
            "deno_rss_mib": meas["rss_peak_mib"]["deno"],
            "deno_pss_mib": meas["pss_end_mib"]["deno"],
            "deno_processes": meas["processes"]["deno"],
            "box_busy_pct": meas["box_busy_pct"], "steal_pct": meas["steal_pct"], "other_pct": meas["other_pct"],
            "waited_quiet_s": waited,
        }
        if res["non2xx"] or res["socket_errors"]:
            rec.update(self.diagnose(scen, self.scenario_stacks.get(stack) or self.stacks[stack]))
        self.records.append(rec)
        log(f"  {tool:6s} {scen:8s} {stack:8s} r{rnd}: {res['req_s']:>9,.0f} req/s  p50 {res['p50_ms']:.2f} "
            f"p99 {res['p99_ms']:.2f} ms  err {res['non2xx']}/{res['socket_errors']}  "
            f"cpu µs/req gen {cpu['gen']:.1f} proxy {cpu.get('proxy', 0):.1f} deno {cpu['deno']:.1f}"
            f"  other {meas['other_pct']}% steal {meas['steal_pct']}%")

    def diagnose(self, scen, stack: bl.Stack) -> dict:
        """After a run with errors: what one request gets now, and the last
        lines of the gateway's log."""
        out = {}
        spec = SCENARIOS[scen]
        body = (self.workdir / f"body-{scen}.bin").read_bytes() if spec["body"] else b""
        if spec.get("ws"):
            ok, detail = self.ws_check(stack)
            out["probe"] = {"ws_echo": "ok" if ok else detail}
        else:
            try:
                st, hdrs, got, _, _ = bl.http_request(stack.port, spec["method"], spec["paths"][0], body,
                                                      timeout=10)
                out["probe"] = {"status": st, "x-edgeway-error": hdrs.get("x-edgeway-error"),
                                "retry-after": hdrs.get("retry-after"),
                                "body": got[:200].decode("latin-1") if st != 200 else f"{len(got)} bytes"}
            except OSError as e:
                out["probe"] = {"error": str(e)}
        name = {"direct": "direct-deno"}.get(stack.name, stack.name)
        logf = self.workdir / f"{name}.log"
        if stack.name == "nginx":
            logf = stack.extra.get("prefix", self.workdir / "nginx") / "error.log"
        try:
            lines = logf.read_text(errors="replace").splitlines()
            out["log_tail"] = [ln[:300] for ln in lines[-5:]]
        except OSError:
            pass
        return out

    def scenario(self, scen):
        spec = SCENARIOS[scen]
        log(f"== {scen}: {spec['what']}")
        body = os.urandom(spec["body"]) if spec["body"] else b""
        body_file = None
        if body:
            body_file = self.workdir / f"body-{scen}.bin"
            body_file.write_bytes(body)
        stacks = [self.stacks[s] for s in spec["stacks"] if s in self.stacks]
        self.scenario_stacks = {st.name: st for st in stacks}
        # the scenarios that carry an issue's targets run at least min_runs
        # rounds: their medians must not rest on 3 runs of a ±15 % VM
        rounds = max(self.runs, spec.get("min_runs", 0))
        script = self.workdir / f"wrk-{scen}.lua"
        bl.write_wrk_script(script, spec["method"], spec["paths"], body_file)
        targets = {}
        for st in stacks:
            self.validate(scen, spec, st, body)
            targets[st.name] = self.workdir / f"targets-{scen}-{st.name}.txt"
            bl.write_vegeta_targets(targets[st.name], st.port, spec["method"], spec["paths"], body_file)
        if spec.get("vegeta_only"):
            # no closed loop here (a wrk connection would wait behind each slow
            # request); the warm-up is a discarded vegeta run at the same rate
            for st in stacks:
                self.run_vegeta(scen, st, targets[st.name], self.warmup, 0, record=False)
        else:
            for st in stacks:
                self.run_wrk(scen, st, script, self.warmup, record=False)
            for rnd in range(1, rounds + 1):
                for st in stacks:
                    self.run_wrk(scen, st, script, self.dur, rnd=rnd)
        # one connection: wrk -t1 -c1, p50 = the latency one request adds
        one = [st for st in stacks if st.name in spec.get("one_conn", [])]
        for rnd in range(1, rounds + 1) if one else ():
            for st in one:
                self.run_wrk(scen, st, script, self.dur, rnd=rnd, conns=1, tool="wrk-c1")
        for rnd in range(1, rounds + 1):
            for st in stacks:
                self.run_vegeta(scen, st, targets[st.name], self.dur, rnd, by_url=spec.get("by_url", False))
        self.k6_runs(scen, stacks, body_file)

    def k6_runs(self, scen, stacks, body_file):
        """BENCH_K6=1: closed-loop reference runs, then the ramp (direct, nginx,
        edgeway). A failed k6 run is recorded and the others go on."""
        todo = []
        if scen in self.k6_scenarios:
            todo += [("k6", rnd, st) for rnd in range(1, self.runs + 1) for st in stacks]
        if scen in self.k6_ramp_scenarios:
            ramp = [st for st in stacks if st.name in ALL_STACKS]
            todo += [("k6-ramp", rnd, st) for rnd in range(1, self.k6_ramp_runs + 1) for st in ramp]
        if todo and not shutil.which(self.k6):
            self.failures.append(f"k6 runs of {scen}: {self.k6} not found (bench/install-tools.sh builds it "
                                 "with BENCH_K6=1)")
            return
        said = False
        for tool, rnd, st in todo:
            try:
                if tool == "k6":
                    self.run_k6(scen, st, self.dur, rnd, body_file)
                else:
                    if not said:
                        said = True
                        log(f"  k6 ramp {scen}: stages {self.k6_ramp_stages} "
                            f"({ramp_seconds(self.k6_ramp_stages):g} s per stack)")
                    self.run_k6_ramp(scen, st, rnd, body_file)
            except Exception as e:  # noqa: BLE001 - recorded; the other runs and scenarios go on
                log(f"  {tool} {scen}/{st.name} r{rnd} FAILED: {str(e)[:300]}")
                self.failures.append(f"{tool} {scen}/{st.name} round {rnd}: {str(e)[:600]}")

    # ------------------------------------------------------------ WebSocket
    def ws_argv(self, stack: bl.Stack, mode: str, conns: int, dur: float) -> list[str]:
        return [self.wsbench, "-url", f"ws://127.0.0.1:{stack.port}{SCENARIOS['ws']['paths'][0]}", "-mode", mode,
                "-c", str(conns), "-d", f"{dur:g}s", "-size", str(self.ws_size), "-timeout", "10s"]

    def ws_check(self, stack: bl.Stack) -> tuple[bool, str]:
        """One text and one binary message of BENCH_WS_SIZE bytes, echoed
        byte for byte (wsbench -mode check)."""
        try:
            r = subprocess.run(self.ws_argv(stack, "check", 1, 0), capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return False, "wsbench -mode check timed out"
        return r.returncode == 0, (r.stdout + r.stderr).strip()[-600:]

    def run_ws(self, scen, stack, mode, conns, dur, rnd=0, record=True, tool="ws"):
        argv = self.ws_argv(stack, mode, conns, dur)
        waited = bl.wait_quiet(self.quiet_busy, self.quiet_wait) if record else 0
        out = self.workdir / f"{tool}-{scen}-{stack.name}-r{rnd}.txt"
        m = self.meter(scen, stack)
        m.start()
        rc, gen_cpu = self.procs.run_measured("wsbench", argv, dur + 60, out)
        meas = m.stop(gen_cpu)
        if not record:
            return None
        text = out.read_text(errors="replace")
        if rc != 0:
            raise RuntimeError(f"wsbench exited {rc}: {text[-1500:]}")
        res = bl.parse_wsbench(text)
        self.add_record(scen, tool, stack.name, rnd, res, meas, waited)
        return res

    def ws_scenario(self, scen):
        """Closed-loop echo with BENCH_CONNS connections (messages/s), then
        one connection (round-trip latency), then BENCH_WS_HANDSHAKE_CONNS
        loops that open, use and close connections; each interleaved."""
        spec = SCENARIOS[scen]
        log(f"== {scen}: {spec['what']}, {self.ws_size} bytes")
        stacks = [self.stacks[s] for s in spec["stacks"] if s in self.stacks]
        for st in stacks:
            ok, detail = self.ws_check(st)
            self.validation.append({"scenario": scen, "stack": st.name, "ok": ok, "problems": [] if ok else [detail]})
            if not ok:
                log(f"  VALIDATION FAILED {scen}/{st.name}: {detail}")
        for st in stacks:
            self.run_ws(scen, st, "echo", self.conns, self.warmup, record=False)
        for mode, conns, tool in (("echo", self.conns, "ws"), ("echo", 1, "ws-c1"),
                                  ("handshake", self.ws_handshake_conns, "ws-handshake")):
            for rnd in range(1, self.runs + 1):
                for st in stacks:
                    self.run_ws(scen, st, mode, conns, self.dur, rnd=rnd, tool=tool)

    # ------------------------------------------------------------ cold start
    def coldstart(self):
        log(f"== coldstart: {self.cold_reps} repetitions (+1 discarded), interleaved")
        res = {"edgeway_fresh_ttfb_ms": [], "edgeway_fresh_gateway_ready_ms": [], "edgeway_fresh_total_ms": [],
               "edgeway_running_new_function_ttfb_ms": [], "deno_spawn_to_first_200_ms": []}
        fails = []
        gw = self.stacks["edgeway"]
        for i in range(self.cold_reps + 1):
            keep = i > 0
            # (a) freshly started gateway: request → first byte of a cold function
            bl.wait_quiet(self.quiet_busy, self.quiet_wait)
            t0 = time.perf_counter()
            st = bl.start_edgeway(self.procs, self.edgeway, self.deno, self.functions_dir, self.edgeway_flags,
                                  name="edgeway-cold", ready_path=None)
            ready = time.perf_counter() - t0
            try:
                code, _, body, ttfb, total = bl.http_request(st.port, "GET", "/hello", timeout=30)
                if code != 200 or body != b"Hello, World!\n":
                    fails.append(f"fresh gateway rep {i}: status {code} body {body[:80]!r}")
                elif keep:
                    res["edgeway_fresh_ttfb_ms"].append(ttfb * 1000)
                    res["edgeway_fresh_total_ms"].append(total * 1000)
                    res["edgeway_fresh_gateway_ready_ms"].append(ready * 1000)
            finally:
                self.procs.stop(st.main)
            # (b) a never-used function on the running bench gateway
            bl.wait_quiet(self.quiet_busy, self.quiet_wait)
            code, _, body, ttfb, _ = bl.http_request(gw.port, "GET", f"/cold{i:02d}", timeout=30)
            if code != 200 or body != b"Hello, World!\n":
                fails.append(f"running gateway /cold{i:02d}: status {code} body {body[:80]!r}")
            elif keep:
                res["edgeway_running_new_function_ttfb_ms"].append(ttfb * 1000)
            # (c) reference: spawn `deno run server.ts` → first 200 (1 ms connect poll)
            bl.wait_quiet(self.quiet_busy, self.quiet_wait)
            port = bl.free_port()
            t0 = time.perf_counter()
            p = self.procs.start("deno-cold", bl.deno_cmd(self.deno, f"tcp:127.0.0.1:{port}"), env=bl.deno_env())
            try:
                bl.wait_http_ok(port, "/hello", 30, p)
                if keep:
                    res["deno_spawn_to_first_200_ms"].append((time.perf_counter() - t0) * 1000)
            finally:
                self.procs.stop(p)
        # (d) the prewarm pool vs a fresh spawn, both measured in this run (bench/coldpool.py)
        import coldpool
        pres, pfails, self.cold_pool = coldpool.run(self)
        res.update(pres)
        fails += pfails
        self.cold = {"samples": {k: [round(x, 2) for x in v] for k, v in res.items()}, "failures": fails,
                     "prewarm": self.cold_pool}
        for k, v in res.items():
            if v:
                log(f"  {k}: median {median(v):.1f} ms (min {min(v):.1f}, max {max(v):.1f}, n={len(v)})")
        for f in fails:
            log("  COLDSTART FAILURE:", f)

    # ------------------------------------------------------------ main
    def run(self):
        t0 = time.time()
        self.started = dt.datetime.now(dt.timezone.utc)
        # Name the report after the commit the binary was built from, read
        # now: others may commit while the benchmark runs.
        self.commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=bl.ROOT, capture_output=True,
                                     text=True).stdout.strip() or "nocommit"
        self.describe = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=bl.ROOT,
                                       capture_output=True, text=True).stdout.strip()
        self.start_stacks()
        for scen in self.scenarios:
            # One failing scenario must not cost the others' results.
            try:
                if scen == "coldstart":
                    self.coldstart()
                elif SCENARIOS[scen].get("ws"):
                    self.ws_scenario(scen)
                else:
                    self.scenario(scen)
            except Exception as e:  # noqa: BLE001 - reported, then the run goes on
                log(f"SCENARIO {scen} FAILED: {e}")
                self.failures.append(f"scenario {scen} failed: {str(e)[:600]}")
        self.elapsed = time.time() - t0
        self.final_rss = {name: round(sum(bl.rss_bytes(p) for p in s.proxy_pids()) / 2**20, 1)
                          for name, s in self.stacks.items() if name != "direct"}
        self.final_workers = len(self.stacks["edgeway"].deno_pids())


RAMP_LEVELS = (500, 2000, 4000, 6000)


def default_ramp_stages(hold_s: float) -> str:
    """k6 ramp default: 1 s up to each of RAMP_LEVELS req/s, hold it for
    BENCH_DURATION, then 2 s down to 0 (k6 itself tops out at ~6-8k req/s on
    2 cores)."""
    return ",".join(f"1s:{r},{hold_s:g}s:{r}" for r in RAMP_LEVELS) + ",2s:0"


RAMP_STAGE = re.compile(r"^(\d+(?:\.\d+)?(?:ms|s|m)):(\d+)$")  # what bench/k6/ramp.js accepts


def check_ramp_stages(stages: str):
    bad = [p for p in stages.split(",") if p.strip() and not RAMP_STAGE.match(p.strip())]
    if bad or not stages.strip():
        raise SystemExit(f"BENCH_K6_RAMP_STAGES={stages!r}: want DURATION:RATE,... with DURATION like 500ms, "
                         f"5s or 1m and RATE in req/s (bad: {', '.join(bad) or 'empty'})")


def ramp_seconds(stages: str) -> float:
    """Length of a DURATION:RATE,... stage list (checked by check_ramp_stages)."""
    return sum(parse_duration(RAMP_STAGE.match(p.strip()).group(1)) for p in stages.split(",") if p.strip())


def fmt(x):
    return "–" if x is None else f"{x:.2f}"


def expected_body(path: str, sent: bytes):
    if path.startswith("/mixed/"):
        return path[len("/mixed/"):].encode() + b"\n"
    if path == "/echo":
        return sent
    if path == "/cpu":
        return None
    if path == "/stream":
        return (b"x" * 511 + b"\n") * 5
    return b"Hello, World!\n"


def main():
    b = Bench()

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ok = False
    try:
        b.run()
        ok = True
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
    finally:
        log("stopping every process")
        b.procs.stop_all()
    if not ok:
        sys.exit(130)
    if ok:
        import report
        md_path, json_path = report.write(b)
        print()
        print(md_path.read_text())
        log(f"wrote {md_path} and {json_path}")
        bad = [v for v in b.validation if not v["ok"]] + b.cold.get("failures", []) + b.failures
        errs = [r for r in b.records if r["non2xx"] or r["socket_errors"]]
        if bad or errs:
            log(f"WARNING: {len(bad)} validation/cold-start failures, {len(errs)} runs with errors (see report)")


if __name__ == "__main__":
    main()
