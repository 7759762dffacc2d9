#!/usr/bin/env python3
"""edgeway load tests: soak, chaos, hostile, reload and flood. Bounded, loopback-only, self-stopping.

Started by loadtest/run.sh; see bench/README.md ("make loadtest") for the
variables. Prints one PASS/FAIL line per test with its figures and exits 1 if
any test failed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import random
import resource
import select
import signal
import socket
import threading
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import benchlib as bl  # noqa: E402

N_FUNCTIONS = 20
HELLO = b"Hello, World!\n"
TESTS = ("soak", "chaos", "hostile", "reload", "flood")

# Hostile functions for the hostile test, served next to the healthy ones.
HOSTILE_FUNCTIONS = {
    # spins its worker's event loop forever on ?spin, answers otherwise
    "spin/index.ts": """Deno.serve((req) => {
  if (new URL(req.url).searchParams.has("spin")) for (;;) {}
  return new Response("ok\\n");
});
""",
    "spin/function.json": '{"timeoutMs": 3000}\n',
    # holds 256 MiB more of ArrayBuffers (outside the V8 heap) per request,
    # and keeps working for 2 s with it, so the watchdog (every
    # --resource-check-interval) stops it while the request is in flight
    # (546); a hog that answered at once would be killed after its answer
    "hog/index.ts": """const held: Uint8Array[] = [];
Deno.serve(async () => {
  for (let i = 0; i < 8; i++) held.push(new Uint8Array(32 << 20).fill(1));
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return new Response(`held ${held.length * 32} MiB\\n`);
});
""",
    "hog/function.json": '{"memoryLimitMb": 128}\n',
    # a 64 MiB streamed response, for clients that never read it
    "big/index.ts": """const chunk = new Uint8Array(64 * 1024).fill(120);
Deno.serve(() => {
  let n = 0;
  return new Response(new ReadableStream({
    pull(c) { if (n++ >= 1024) c.close(); else c.enqueue(chunk); },
  }));
});
""",
    "big/function.json": '{"maxConcurrency": 2, "maxWorkers": 1}\n',
}
BIG_BYTES = 1024 * 64 * 1024


def log(*a):
    print("[loadtest]", *a, flush=True)


def duration(v: str) -> float:
    v = v.strip()
    for suf, mult in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)):
        if v.endswith(suf):
            return float(v[: -len(suf)]) * mult
    return float(v)


def parse_ts(s: str) -> float:
    """vegeta's RFC 3339 timestamp with nanoseconds → Unix seconds."""
    main, _, frac = s.rstrip("Z").partition(".")
    tz = ""
    for sign in ("+", "-"):
        if sign in frac:
            frac, tz = frac.split(sign, 1)[0], sign + frac.split(sign, 1)[1]
    base = dt.datetime.fromisoformat(main + (tz or "+00:00"))
    return base.timestamp() + (float("0." + frac) if frac else 0.0)


class LoadTest:
    def __init__(self):
        self.dur = duration(os.environ.get("LOADTEST_DURATION") or "20s")
        self.soak_dur = duration(os.environ.get("LOADTEST_SOAK_DURATION") or str(self.dur) + "s")
        self.chaos_dur = duration(os.environ.get("LOADTEST_CHAOS_DURATION") or str(self.dur) + "s")
        self.rate = int(os.environ.get("LOADTEST_RATE") or 0)
        self.rate_frac = float(os.environ.get("LOADTEST_RATE_FRACTION") or 0.7)
        self.chaos_rate = int(os.environ.get("LOADTEST_CHAOS_RATE") or 1000)
        self.kill_every = duration(os.environ.get("LOADTEST_KILL_EVERY") or "2s")
        self.timeout = duration(os.environ.get("LOADTEST_TIMEOUT") or "10s")
        self.max_workers = int(os.environ.get("LOADTEST_MAX_WORKERS") or 256)
        # passed to the soak gateway as --upstream-max-idle-conns (edgeway's
        # default); the fd bound uses it
        self.upstream_idle = 64
        self.only = [x for x in (os.environ.get("LOADTEST_ONLY") or "soak,chaos,hostile,reload,flood").split(",")
                     if x]
        for t in self.only:
            if t not in TESTS:
                raise SystemExit(f"unknown test {t!r}; known: {', '.join(TESTS)}")
        self.reloads = int(os.environ.get("LOADTEST_RELOADS") or 20)
        self.reload_rate = int(os.environ.get("LOADTEST_RELOAD_RATE") or 500)
        self.flood_dur = duration(os.environ.get("LOADTEST_FLOOD_DURATION") or str(self.dur) + "s")
        self.flood_rate = int(os.environ.get("LOADTEST_FLOOD_RATE") or 2000)
        self.flood_ips = int(os.environ.get("LOADTEST_FLOOD_IPS") or 100_000)
        self.slowloris = int(os.environ.get("LOADTEST_SLOWLORIS") or 8)
        self.flood_rss_growth = float(os.environ.get("LOADTEST_FLOOD_RSS_GROWTH_MIB") or 200)
        self.seed = int(os.environ.get("LOADTEST_SEED") or int(time.time()))
        self.hostile_dur = duration(os.environ.get("LOADTEST_HOSTILE_DURATION") or str(self.dur) + "s")
        self.hostile_rate = int(os.environ.get("LOADTEST_HOSTILE_RATE") or 500)
        self.slow_readers = int(os.environ.get("LOADTEST_SLOW_READERS") or 8)
        self.fd_pressure = int(os.environ.get("LOADTEST_FD_PRESSURE") or 1500)
        self.hostile_conns = int(os.environ.get("LOADTEST_HOSTILE_MAX_CLIENT_CONNS") or 4096)
        self.hostile_rss_growth = float(os.environ.get("LOADTEST_HOSTILE_RSS_GROWTH_MIB") or 200)
        self.hog_guard_mib = float(os.environ.get("LOADTEST_HOG_GUARD_MIB") or 1536)
        self.deno = os.environ["DENO"]
        self.edgeway = os.environ.get("EDGEWAY_BIN") or str(bl.ROOT / "bin" / "edgeway")
        self.vegeta = os.environ.get("VEGETA") or "vegeta"
        self.workdir = Path(os.environ["GUARD_TMP"])
        self.procs = bl.Procs(self.workdir)
        self.edgeway = bl.snapshot_edgeway(self.edgeway, self.workdir)
        self.base_flags = bl.edgeway_flags(self.edgeway, "LOADTEST_EDGEWAY_FLAGS")
        log(f"edgeway: {bl.sh([self.edgeway, 'version'])}, flags {' '.join(self.base_flags) or '(none)'}")
        self.fdir = self.workdir / "functions"
        self.names = [f"f{i:02d}" for i in range(N_FUNCTIONS)]
        bl.write_functions(self.fdir, self.names)
        self.results: list[dict] = []

    # ------------------------------------------------------------ helpers
    def start_gateway(self, name, flags=()) -> bl.Stack:
        st = bl.start_edgeway(self.procs, self.edgeway, self.deno, self.fdir, extra_flags=[*self.base_flags, *flags],
                              name=name, ready_path=None)
        bad = []
        for n in self.names:  # boot every function once, and check it answers right
            code, _, body, _, _ = bl.http_request(st.port, "GET", f"/{n}", timeout=30)
            if code != 200 or body != HELLO:
                bad.append(f"/{n}: {code} {body[:80]!r}")
        if bad:
            raise RuntimeError(f"{name}: functions answer wrongly before any load: {bad[:3]}")
        return st

    def targets(self, port: int) -> Path:
        t = self.workdir / f"targets-{port}.txt"
        bl.write_vegeta_targets(t, port, "GET", [f"/{n}" for n in self.names], None)
        return t

    def attack_report(self, targets: Path, rate: int, dur: float, label: str) -> dict:
        """vegeta attack piped into vegeta report (JSON), bounded by timeout."""
        rate_arg = f"{rate}/1s" if rate else "0"
        cmd = (f"set -o pipefail; '{self.vegeta}' attack -targets '{targets}' -rate {rate_arg} -duration {dur:g}s "
               f"-timeout {self.timeout:g}s -workers 16 -max-workers {self.max_workers if rate else 64} "
               f"| '{self.vegeta}' report -type=json")
        out = self.workdir / f"report-{label}.json"
        rc, _ = self.procs.run_measured(f"vegeta-{label}", ["bash", "-c", cmd], dur + self.timeout + 30, out)
        text = out.read_text()
        if rc != 0:
            raise RuntimeError(f"vegeta ({label}) exited {rc}: {text[-800:]}")
        return bl.parse_vegeta_report(text[text.index("{"):])

    def snapshot(self, st: bl.Stack) -> dict:
        kids = bl.children(st.main.pid)
        return {"rss_mib": round(bl.rss_bytes(st.main.pid) / 2**20, 1), "fds": bl.fd_count(st.main.pid),
                "workers": len(kids), "workers_rss_mib": round(sum(bl.rss_bytes(k) for k in kids) / 2**20, 1)}

    def alive(self, st: bl.Stack) -> int:
        """The status of GET / on the gateway, 0 if it does not answer."""
        try:
            return bl.http_request(st.port, "GET", "/", timeout=5)[0]
        except OSError:
            return 0

    def vegeta_results(self, out: Path) -> list[dict]:
        """Every result of a vegeta attack's -output file, decoded."""
        enc = subprocess.run([self.vegeta, "encode", "--to", "json", str(out)], capture_output=True, text=True,
                             timeout=120)
        return [json.loads(ln) for ln in enc.stdout.splitlines() if ln.strip()]

    def verdict(self, name: str, ok: bool, summary: str, details: dict):
        self.results.append({"test": name, "pass": ok, "summary": summary, **details})
        log(("PASS " if ok else "FAIL ") + f"{name}: {summary}")

    # ------------------------------------------------------------ soak
    def soak(self):
        log(f"== soak: {N_FUNCTIONS} functions, {self.soak_dur:g}s")
        st = self.start_gateway("edgeway-soak", ["--upstream-max-idle-conns", str(self.upstream_idle)])
        time.sleep(1)
        idle = self.snapshot(st)  # every worker booted and called once, no load yet
        t = self.targets(st.port)
        if self.rate:
            rate, cap = self.rate, None
        else:
            capr = self.attack_report(t, 0, 3, "capacity")
            cap = capr["req_s"]
            rate = max(50, int(cap * self.rate_frac))
            log(f"  capacity (vegeta -rate=0 -max-workers=64, 3s): {cap:,.0f} req/s → soak at "
                f"{self.rate_frac:.0%} = {rate:,} req/s")
        time.sleep(1)
        start = self.snapshot(st)
        log(f"  start: gateway RSS {start['rss_mib']} MiB, fds {start['fds']}, workers {start['workers']} "
            f"({start['workers_rss_mib']} MiB)")
        seg = min(10.0, max(5.0, self.soak_dur / 4))
        nseg = max(1, round(self.soak_dur / seg))
        seg = self.soak_dur / nseg
        segs = []
        for i in range(nseg):
            r = self.attack_report(t, rate, seg, f"soak-{i}")
            snap = self.snapshot(st)
            segs.append({**r, **{"gw_" + k: v for k, v in snap.items()}})
            log(f"  segment {i + 1}/{nseg}: {r['req_s']:,.0f} req/s p50 {r['p50_ms']:.2f} p99 {r['p99_ms']:.2f} "
                f"max {r['max_ms']:.1f} ms, errors {r['non2xx']}/{r['socket_errors']}, RSS {snap['rss_mib']} MiB, "
                f"fds {snap['fds']}")
            if st.main.poll() is not None:
                break
        time.sleep(2)  # let vegeta's connections close
        end = self.snapshot(st)
        alive = st.main.poll() is None
        self.procs.stop(st.main)
        total = sum(s["requests"] for s in segs)
        errors = sum(s["non2xx"] + s["socket_errors"] for s in segs)
        codes: dict = {}
        for s in segs:
            for k, v in s["status_codes"].items():
                codes[k] = codes.get(k, 0) + v
        held = all(s["rate"] >= 0.95 * rate and s["req_s"] >= 0.95 * rate for s in segs)
        fd_growth = end["fds"] - start["fds"]
        rss_growth = end["rss_mib"] - start["rss_mib"]
        problems = []
        if errors:
            problems.append(f"{errors} errors (codes {codes}, e.g. {segs[-1]['errors'][:2]})")
        if not alive:
            problems.append("edgeway exited")
        if len(segs) < nseg:
            problems.append("stopped early")
        # Once the clients are gone, edgeway may keep at most
        # --upstream-max-idle-conns idle connections per worker (the pools grow
        # with concurrency, so fds rise during a soak without any leak). More
        # open fds than that after the load is a leak.
        fd_bound = idle["fds"] + end["workers"] * self.upstream_idle + 32
        if end["fds"] > fd_bound:
            problems.append(f"{end['fds']} fds open after the load, more than the {fd_bound} that idle "
                            f"pools allow ({idle['fds']} before load + {end['workers']} workers × "
                            f"{self.upstream_idle} idle conns + 32)")
        half = segs[: max(1, len(segs) // 2)]
        fd_plateau = max([start["fds"]] + [s["gw_fds"] for s in half])
        fd_late_growth = end["fds"] - fd_plateau
        if not held:
            problems.append("rate not held (< 95 % of target in some segment)")
        warn = []
        if len(segs) >= 2 and fd_late_growth > 50:
            warn.append(f"fds still growing in the second half (+{fd_late_growth} over {fd_plateau})")
        rss_plateau = max([start["rss_mib"]] + [s["gw_rss_mib"] for s in half])
        if end["rss_mib"] > 1.5 * rss_plateau + 32:
            warn.append(f"RSS kept growing in the second half ({rss_plateau} → {end['rss_mib']} MiB)")
        if segs and segs[-1]["p99_ms"] > 3 * max(segs[0]["p99_ms"], 1.0):
            warn.append("p99 at the end > 3× p99 at the start")
        summary = (f"{total:,} requests at {rate:,} req/s for {self.soak_dur:g}s, errors {errors}; "
                   f"RSS {idle['rss_mib']} idle → {start['rss_mib']} start → {end['rss_mib']} MiB end, "
                   f"fds {idle['fds']} idle → {start['fds']} start → {end['fds']} end (bound {fd_bound}), "
                   f"workers {start['workers']} → {end['workers']}; "
                   f"p99 first/last segment {segs[0]['p99_ms']:.2f} / {segs[-1]['p99_ms']:.2f} ms"
                   + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "")
                   + (f"; warnings: {'; '.join(warn)}" if warn else ""))
        self.verdict("soak", not problems, summary,
                     {"rate": rate, "capacity": cap, "idle": idle, "start": start, "end": end, "segments": segs,
                      "fd_bound": fd_bound,
                      "requests": total, "errors": errors, "status_codes": codes, "fd_growth": fd_growth,
                      "fd_late_growth": fd_late_growth,
                      "rss_growth_mib": rss_growth, "problems": problems, "warnings": warn})

    # ------------------------------------------------------------ chaos
    def chaos(self):
        log(f"== chaos: kill -9 a random worker every {self.kill_every:g}s for {self.chaos_dur:g}s "
            f"under {self.chaos_rate} req/s")
        # Crash-loop protection would rightly answer 503 once one function has
        # been killed often; this test is about single kills, so raise it.
        flags = ["--crash-loop-threshold", os.environ.get("LOADTEST_CRASH_LOOP_THRESHOLD", "1000")]
        st = self.start_gateway("edgeway-chaos", flags)
        t = self.targets(st.port)
        out = self.workdir / "chaos.bin"
        argv = [self.vegeta, "attack", "-targets", str(t), "-rate", f"{self.chaos_rate}/1s", "-duration",
                f"{self.chaos_dur:g}s", "-timeout", f"{self.timeout:g}s", "-workers", "16", "-max-workers",
                str(self.max_workers), "-output", str(out)]
        atk = self.procs.start("vegeta-chaos", argv)
        rng = random.Random(self.seed)
        kills = []
        t_end = time.time() + self.chaos_dur
        time.sleep(min(1.0, self.kill_every))
        while time.time() < t_end - 0.5 and atk.poll() is None:
            kids = bl.children(st.main.pid)
            if kids:
                pid = rng.choice(kids)
                fn = bl.worker_function(pid)
                kt = time.time()
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append({"t": kt, "pid": pid, "function": fn})
                except ProcessLookupError:
                    pass
            time.sleep(self.kill_every)
        try:
            atk.wait(self.chaos_dur + self.timeout + 30)
        except subprocess.TimeoutExpired:
            self.procs.stop(atk)
        alive_code = self.alive(st)
        after = self.snapshot(st)
        self.procs.stop(st.main)
        rows = self.vegeta_results(out)
        ok = worker_err = 0
        bad: list[dict] = []
        hangs = 0
        by_fn: dict[str, list] = {}
        for r in rows:
            ts = parse_ts(r["timestamp"])
            lat = r["latency"] / 1e9
            fn = r["url"].rsplit("/", 1)[-1]
            hdr = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
            code = r["code"]
            by_fn.setdefault(fn, []).append((ts, lat, code))
            if lat >= self.timeout - 0.05 or "timeout" in r.get("error", "").lower() \
                    or "deadline" in r.get("error", "").lower():
                hangs += 1
            if code == 200 and base64.b64decode(r.get("body") or "") == HELLO:
                ok += 1
            elif code == 502 and (hdr.get("x-edgeway-error") or [""])[0] == "WORKER_ERROR":
                worker_err += 1
            else:
                bad.append({"code": code, "error": r.get("error"), "url": r["url"], "latency_ms": lat * 1000,
                            "x-edgeway-error": hdr.get("x-edgeway-error"),
                            "body": base64.b64decode(r.get("body") or "")[:120].decode("latin-1")})
        recov = []
        for k in kills:
            samples = sorted(by_fn.get(k["function"], []))
            after_kill = [s for s in samples if s[0] >= k["t"]]
            first_ok = next((s for s in after_kill if s[2] == 200), None)
            n502 = 0
            for s in after_kill:
                if s is first_ok:
                    break
                n502 += s[2] == 502
            # a request that started before the kill may also have failed on it
            n502 += sum(1 for s in samples if s[0] < k["t"] <= s[0] + s[1] and s[2] == 502)
            k["recovery_ms"] = round((first_ok[0] + first_ok[1] - k["t"]) * 1000, 1) if first_ok else None
            k["failed_requests"] = n502
            recov.append(k["recovery_ms"])
        done = [x for x in recov if x is not None]
        problems = []
        if not rows:
            problems.append("vegeta produced no results")
        if bad:
            kinds: dict = {}
            for b in bad:
                key = f"{b['code']} {b['x-edgeway-error'] or ''} {b['error'] or ''}".strip()
                kinds[key] = kinds.get(key, 0) + 1
            problems.append(f"{len(bad)} requests neither 200 nor 502 WORKER_ERROR: {kinds}")
        if hangs:
            problems.append(f"{hangs} requests hit the {self.timeout:g}s timeout")
        if len(done) < len(kills):
            problems.append(f"{len(kills) - len(done)} kills never recovered")
        if not kills:
            problems.append("no worker was killed")
        if alive_code != 200:
            problems.append(f"edgeway not answering GET / after the test ({alive_code})")
        lat_max = max((r["latency"] for r in rows), default=0) / 1e6
        summary = (f"{len(rows):,} requests, {len(kills)} kills: {ok:,} × 200, {worker_err} × 502 WORKER_ERROR, "
                   f"{len(bad)} other, {hangs} hung; max latency {lat_max:.0f} ms; recovery after a kill "
                   + (f"median {bl.median(done):.0f} ms, max {max(done):.0f} ms" if done else "n/a")
                   + f" (per kill: {', '.join(str(int(x)) if x is not None else 'never' for x in recov)} ms); "
                   f"workers after {after['workers']}, gateway alive {alive_code == 200}"
                   + (f"; PROBLEMS: {'; '.join(problems)}" if problems else ""))
        self.verdict("chaos", not problems, summary,
                     {"rate": self.chaos_rate, "kills": kills, "requests": len(rows), "ok": ok,
                      "worker_error_502": worker_err, "bad": bad[:20], "bad_count": len(bad), "hangs": hangs,
                      "max_latency_ms": lat_max, "after": after, "problems": problems, "seed": self.seed})

    # ------------------------------------------------------------ hostile
    def hostile(self):
        """Healthy functions under a fixed rate while, in the same gateway, a
        function spins its event loop, one hoards memory outside the V8 heap,
        clients never read a large response, and idle connections press on
        the fd count. Passes when every healthy request succeeded, the gateway
        lived, its RSS and fds stayed bounded, the spinning worker was
        replaced, the hog was stopped with 546 and the large response stayed
        reachable."""
        log(f"== hostile: {self.hostile_rate} req/s to {N_FUNCTIONS} healthy functions for {self.hostile_dur:g}s "
            f"next to a spinning function, a memory hog, {self.slow_readers} slow readers and "
            f"{self.fd_pressure} idle connections")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = self.fd_pressure + self.slow_readers + 512
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(want, soft)), hard))
        fdir = self.workdir / "hostile" / "functions"
        bl.write_functions(fdir, self.names)
        for rel, text in HOSTILE_FUNCTIONS.items():
            (fdir / rel).parent.mkdir(parents=True, exist_ok=True)
            (fdir / rel).write_text(text)
        help_text = bl.sh([self.edgeway, "help"])
        flags = ["--max-client-conns", str(self.hostile_conns)]
        if "--client-write-timeout" in help_text:
            flags += ["--client-write-timeout", "2s"]
        st = bl.start_edgeway(self.procs, self.edgeway, self.deno, fdir, extra_flags=[*self.base_flags, *flags],
                              name="edgeway-hostile", ready_path=None)
        for n in self.names:
            code, _, body, _, _ = bl.http_request(st.port, "GET", f"/{n}", timeout=30)
            if code != 200 or body != HELLO:
                raise RuntimeError(f"hostile: /{n} answers {code} {body[:80]!r} before any load")
        time.sleep(1)
        start = self.snapshot(st)
        t = self.targets(st.port)
        out = self.workdir / "hostile.bin"
        argv = [self.vegeta, "attack", "-targets", str(t), "-rate", f"{self.hostile_rate}/1s", "-duration",
                f"{self.hostile_dur:g}s", "-timeout", f"{self.timeout:g}s", "-workers", "16", "-max-workers",
                str(self.max_workers), "-output", str(out)]
        atk = self.procs.start("vegeta-hostile", argv)
        stop = threading.Event()
        seen = {"spin": [], "spin_after": [], "hog": [], "big": [], "guard_kills": [], "pressure_opened": 0,
                "pressure_closed": 0, "slow_opened": 0, "errors": []}
        peak = {"rss_mib": start["rss_mib"], "fds": start["fds"], "workers": start["workers"],
                "worker_rss_mib": 0.0}

        def call(path, timeout=30.0):
            try:
                code, hdrs, body, _, total = bl.http_request(st.port, "GET", path, timeout=timeout)
                return code, hdrs.get("x-edgeway-error", ""), len(body), round(total * 1000)
            except OSError as e:
                return 0, str(e), 0, 0

        def spinner():
            # Wedge the worker, then ask until the function answers again (its
            # replacement), at most 20 times; requests that met the wedged
            # worker get 502.
            while not stop.wait(3.0):
                seen["spin"].append(call("/spin?spin=1"))
                for _ in range(20):
                    r = call("/spin")
                    seen["spin_after"].append(r)
                    if r[0] == 200 or stop.wait(0.25):
                        break

        def hogger():
            while not stop.wait(3.0):
                seen["hog"].append(call("/hog"))

        def big_checker():
            while not stop.wait(3.0):
                seen["big"].append(call("/big", timeout=60.0))

        def slow_readers():
            # Each asks for the 64 MiB response and never reads; replaced by a
            # fresh one every 15 s, so the gateway meets new ones all along.
            conns = []
            while not stop.is_set():
                for s in conns:
                    s.close()
                conns = []
                for _ in range(self.slow_readers):
                    try:
                        s = socket.socket()
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                        s.connect(("127.0.0.1", st.port))
                        s.sendall(f"GET /big HTTP/1.1\r\nHost: 127.0.0.1:{st.port}\r\n\r\n".encode())
                        conns.append(s)
                        seen["slow_opened"] += 1
                    except OSError as e:
                        seen["errors"].append(f"slow reader: {e}")
                stop.wait(15.0)
            for s in conns:
                s.close()

        def pressure():
            # Idle connections that never send a byte; the gateway closes them
            # after --read-header-timeout and they are opened again.
            conns = set()

            def open_one():
                try:
                    s = socket.create_connection(("127.0.0.1", st.port), timeout=5)
                    s.setblocking(False)
                    conns.add(s)
                    seen["pressure_opened"] += 1
                except OSError as e:
                    if len(seen["errors"]) < 20:
                        seen["errors"].append(f"pressure: {e}")

            for _ in range(self.fd_pressure):
                if stop.is_set():
                    break
                open_one()
            while not stop.wait(1.0):
                for s in list(conns):
                    try:
                        while s.recv(65536, socket.MSG_DONTWAIT):
                            pass  # an answer (e.g. 408) before the close
                    except BlockingIOError:
                        continue  # still open
                    except OSError:
                        pass
                    conns.discard(s)  # closed by the gateway
                    s.close()
                    seen["pressure_closed"] += 1
                    open_one()
            for s in conns:
                s.close()

        def sampler():
            while not stop.wait(0.5):
                try:
                    peak["rss_mib"] = max(peak["rss_mib"], round(bl.rss_bytes(st.main.pid) / 2**20, 1))
                    peak["fds"] = max(peak["fds"], bl.fd_count(st.main.pid))
                    kids = bl.children(st.main.pid)
                    peak["workers"] = max(peak["workers"], len(kids))
                    for k in kids:
                        mib = bl.rss_bytes(k) / 2**20
                        peak["worker_rss_mib"] = max(peak["worker_rss_mib"], round(mib, 1))
                        if mib > self.hog_guard_mib:  # the gateway did not enforce the limit: protect the box
                            os.kill(k, signal.SIGKILL)
                            seen["guard_kills"].append({"pid": k, "rss_mib": round(mib)})
                except (OSError, ValueError):
                    pass

        threads = [threading.Thread(target=f, daemon=True)
                   for f in (spinner, hogger, big_checker, slow_readers, pressure, sampler)]
        time.sleep(1.0)  # vegeta's connections first
        for th in threads:
            th.start()
        try:
            atk.wait(self.hostile_dur + self.timeout + 30)
        except subprocess.TimeoutExpired:
            self.procs.stop(atk)
        stop.set()
        for th in threads:
            th.join(70)
        time.sleep(2)
        alive_code = self.alive(st)
        end = self.snapshot(st)
        self.procs.stop(st.main)
        total = ok = 0
        bad: dict = {}
        for r in self.vegeta_results(out):
            total += 1
            if r["code"] == 200 and base64.b64decode(r.get("body") or "") == HELLO:
                ok += 1
            else:
                hdr = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
                key = f"{r['code']} {(hdr.get('x-edgeway-error') or [''])[0]} {r.get('error') or ''}".strip()
                bad[key] = bad.get(key, 0) + 1

        def codes(rows):
            out: dict = {}
            for code, err, _, _ in rows:
                k = f"{code} {err}".strip() if code else f"error {err[:40]}"
                out[k] = out.get(k, 0) + 1
            return out

        spin_504 = any(c == 504 for c, _, _, _ in seen["spin"])
        spin_back = any(c == 200 for c, _, _, _ in seen["spin_after"])
        hog_546 = any(c == 546 for c, _, _, _ in seen["hog"])
        big_ok = any(c == 200 and n == BIG_BYTES for c, _, n, _ in seen["big"])
        fd_bound = self.hostile_conns + peak["workers"] * (self.upstream_idle + 4) + 64
        growth = max(peak["rss_mib"], end["rss_mib"]) - start["rss_mib"]
        problems = []
        if not total:
            problems.append("vegeta produced no results")
        if total - ok:
            problems.append(f"{total - ok} healthy requests failed: {bad}")
        if alive_code != 200:
            problems.append(f"edgeway not answering GET / afterwards ({alive_code})")
        if growth > self.hostile_rss_growth:
            problems.append(f"gateway RSS grew {growth:.0f} MiB (> {self.hostile_rss_growth:g})")
        if peak["fds"] > fd_bound:
            problems.append(f"gateway fds peaked at {peak['fds']} (> {fd_bound})")
        if not spin_504:
            problems.append("the spinning request never got 504")
        if not spin_back:
            problems.append("the spinning function never answered again (wedged worker not replaced)")
        if seen["guard_kills"]:
            problems.append(f"memory limit not enforced: the harness killed {seen['guard_kills']}")
        if not hog_546:
            problems.append(f"the hog never got 546 ({codes(seen['hog'])})")
        if not big_ok:
            problems.append(f"the large response was never served whole next to slow readers "
                            f"({codes(seen['big'])})")
        summary = (f"healthy {ok:,}/{total:,} ok at {self.hostile_rate} req/s; spin {codes(seen['spin'])}, "
                   f"then {codes(seen['spin_after'])}; hog {codes(seen['hog'])}; big {codes(seen['big'])} next to "
                   f"{seen['slow_opened']} slow readers; {seen['pressure_opened']} idle connections opened, "
                   f"{seen['pressure_closed']} closed by the gateway; gateway RSS {start['rss_mib']} → peak "
                   f"{peak['rss_mib']} → {end['rss_mib']} MiB (bound +{self.hostile_rss_growth:g}), fds "
                   f"{start['fds']} → peak {peak['fds']} → {end['fds']} (bound {fd_bound}), workers peak "
                   f"{peak['workers']}, largest worker RSS {peak['worker_rss_mib']} MiB"
                   + (f"; PROBLEMS: {'; '.join(problems)}" if problems else ""))
        self.verdict("hostile", not problems, summary,
                     {"rate": self.hostile_rate, "requests": total, "ok": ok, "failures": bad,
                      "spin": seen["spin"], "spin_after": seen["spin_after"], "hog": seen["hog"],
                      "big": seen["big"], "start": start, "end": end, "peak": peak, "fd_bound": fd_bound,
                      "pressure_opened": seen["pressure_opened"], "pressure_closed": seen["pressure_closed"],
                      "guard_kills": seen["guard_kills"], "errors": seen["errors"][:20], "problems": problems})

    # ------------------------------------------------------------ reload
    def reload(self):
        """Continuous load on one function while its index.ts is rewritten
        LOADTEST_RELOADS times; each write waits for the gateway's
        "function reloaded" before the next. Passes when no request failed."""
        log(f"== reload: {self.reloads} rewrites of live/index.ts under {self.reload_rate} req/s")
        # edgeway also watches the folder holding the functions folder (for
        # config.toml): keep it free of busy files (logs, vegeta's results),
        # whose every write would restart the debounce
        fdir = self.workdir / "reload" / "functions"
        index = fdir / "live" / "index.ts"
        index.parent.mkdir(parents=True, exist_ok=True)

        def version(i):
            return f'Deno.serve(() => new Response("v{i}\\n"));\n'

        index.write_text(version(0))
        name = "edgeway-reload"
        # info level for the "function reloaded" line; no access log (it would
        # be most of the log at this rate)
        quiet = ["--access-log-sample", "0"] if "--access-log-sample" in bl.sh([self.edgeway, "help"]) else []
        st = bl.start_edgeway(self.procs, self.edgeway, self.deno, fdir,
                              extra_flags=[*self.base_flags, "--watch", "--watch-debounce", "100ms",
                                           "--log-level", "info", *quiet],
                              name=name, ready_path="/live")
        logf = self.workdir / f"{name}.log"
        seen = {"offset": 0, "n": 0, "partial": b""}

        def reloaded_count():
            """Count the gateway's "function reloaded" lines for live (read
            incrementally: the log only grows)."""
            with open(logf, "rb") as f:
                f.seek(seen["offset"])
                data = f.read()
            seen["offset"] += len(data)
            data = seen["partial"] + data
            lines = data.split(b"\n")
            seen["partial"] = lines.pop()
            for ln in lines:
                if b"function reloaded" not in ln:
                    continue
                try:
                    d = json.loads(ln)
                except ValueError:
                    continue
                if d.get("message") == "function reloaded" and d.get("function") == "live":
                    seen["n"] += 1
            return seen["n"]

        t = self.workdir / "targets-reload.txt"
        bl.write_vegeta_targets(t, st.port, "GET", ["/live"], None)
        out = self.workdir / "reload.bin"
        budget = 30 + self.reloads * 10  # vegeta is stopped (SIGINT) once the rewrites are done
        argv = [self.vegeta, "attack", "-targets", str(t), "-rate", f"{self.reload_rate}/1s", "-duration",
                f"{budget}s", "-timeout", f"{self.timeout:g}s", "-workers", "16", "-max-workers",
                str(self.max_workers), "-output", str(out)]
        atk = self.procs.start("vegeta-reload", argv)
        problems = []
        waits = []
        time.sleep(1.0)
        done = 0
        for i in range(1, self.reloads + 1):
            before = reloaded_count()
            t0 = time.monotonic()
            index.write_text(version(i))
            while reloaded_count() <= before:
                if time.monotonic() - t0 > 30:
                    problems.append(f"rewrite {i}: no \"function reloaded\" within 30 s")
                    break
                if st.main.poll() is not None or atk.poll() is not None:
                    problems.append(f"rewrite {i}: {'edgeway' if st.main.poll() is not None else 'vegeta'} exited")
                    break
                time.sleep(0.02)
            else:
                waits.append(time.monotonic() - t0)
                done += 1
                time.sleep(0.2)  # some load on the new version before the next write
                continue
            break
        time.sleep(0.5)
        if atk.poll() is None:
            os.kill(atk.pid, signal.SIGINT)  # vegeta stops and flushes its results
            try:
                atk.wait(self.timeout + 15)
            except subprocess.TimeoutExpired:
                problems.append("vegeta did not stop on SIGINT")
        self.procs.stop(atk)
        final = b""
        try:
            code, _, final, _, _ = bl.http_request(st.port, "GET", "/live", timeout=10)
        except OSError as e:
            code = f"error {e}"
        self.procs.stop(st.main)
        want_last = f"v{done}\n".encode()
        if final != want_last:
            problems.append(f"after the rewrites GET /live = {code} {final[:40]!r}, want {want_last!r}")
        total = ok = 0
        bad: dict = {}
        examples = []
        for r in self.vegeta_results(out):
            total += 1
            body = base64.b64decode(r.get("body") or "")
            if r["code"] == 200 and body.startswith(b"v") and body.endswith(b"\n"):
                ok += 1
            else:
                hdr = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
                key = f"{r['code']} {(hdr.get('x-edgeway-error') or [''])[0]} {r.get('error') or ''}".strip()
                bad[key] = bad.get(key, 0) + 1
                if len(examples) < 5:
                    examples.append({"code": r["code"], "error": r.get("error"), "body": body[:120].decode("latin-1")})
        failed_n = total - ok
        if not total:
            problems.append("vegeta produced no results")
        if failed_n:
            problems.append(f"{failed_n} failed requests: {bad}")
        summary = (f"{done}/{self.reloads} reloads under {self.reload_rate} req/s: {total:,} requests, "
                   f"{failed_n} failed; wait for \"function reloaded\" median "
                   + (f"{bl.median(waits) * 1000:.0f} ms, max {max(waits) * 1000:.0f} ms" if waits else "n/a")
                   + (f"; PROBLEMS: {'; '.join(problems)}" if problems else ""))
        self.verdict("reload", not problems, summary,
                     {"reloads": done, "requests": total, "failed": failed_n, "failures": bad,
                      "examples": examples, "reload_wait_ms": [round(w * 1000, 1) for w in waits],
                      "problems": problems})

    # ------------------------------------------------------------ flood
    def flood(self):
        """Many distinct client IPs (X-Forwarded-For from a trusted proxy, so
        one rate-limit bucket each) plus slowloris connections, while a normal
        client keeps requesting. Passes when every normal request succeeds and
        the gateway's RSS growth stays under LOADTEST_FLOOD_RSS_GROWTH_MIB."""
        log(f"== flood: {self.flood_rate} req/s from up to {self.flood_ips:,} client IPs + {self.slowloris} "
            f"slowloris connections for {self.flood_dur:g}s, one normal client")
        st = self.start_gateway("edgeway-flood", ["--trusted-proxies", "127.0.0.1/32", "--rate-limit", "60"])
        time.sleep(1)
        start = self.snapshot(st)
        rng = random.Random(self.seed)
        ips: set[str] = set()
        while len(ips) < self.flood_ips:  # public-looking unicast addresses, all distinct
            ips.add(f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
        t = self.workdir / "targets-flood.txt"
        with open(t, "w") as f:
            for i, ip in enumerate(ips):
                f.write(f"GET http://127.0.0.1:{st.port}/{self.names[i % len(self.names)]}\n"
                        f"X-Forwarded-For: {ip}\n\n")
        del ips
        stop = threading.Event()
        normal = {"ok": 0, "bad": [], "lat": []}
        slow = {"opened": 0, "closed_by_gateway": 0, "open_s": [], "errors": 0}
        peak = {"rss_mib": start["rss_mib"]}

        def normal_client():
            # 5 req/s over the 20 functions: 15/min per function, far under
            # the 60/min limit of this client's own bucket
            i = 0
            while not stop.is_set():
                fn = self.names[i % len(self.names)]
                i += 1
                t0 = time.monotonic()
                try:
                    code, hdrs, body, _, _ = bl.http_request(st.port, "GET", f"/{fn}", timeout=5)
                    if code == 200 and body == HELLO:
                        normal["ok"] += 1
                    else:
                        normal["bad"].append(f"/{fn}: {code} {hdrs.get('x-edgeway-error')} {body[:60]!r}")
                except OSError as e:
                    normal["bad"].append(f"/{fn}: {e}")
                normal["lat"].append(time.monotonic() - t0)
                stop.wait(max(0.0, 0.2 - (time.monotonic() - t0)))

        def slowloris():
            # each connection sends a request line, then one header line per
            # second, never the blank line; reopened when the gateway closes it
            conns: dict = {}

            def open_one():
                try:
                    s = socket.create_connection(("127.0.0.1", st.port), timeout=5)
                    s.sendall(f"GET /f00 HTTP/1.1\r\nHost: 127.0.0.1:{st.port}\r\n".encode())
                    s.setblocking(False)
                    conns[s] = time.monotonic()
                    slow["opened"] += 1
                except OSError:
                    slow["errors"] += 1

            for _ in range(self.slowloris):
                open_one()
            n = 0
            while not stop.wait(1.0):
                n += 1
                for s in list(conns):
                    closed = False
                    try:
                        r, _, _ = select.select([s], [], [], 0)
                        if r:
                            closed = True  # EOF or an error answer (408/400): the gateway gave up on it
                        else:
                            s.send(f"X-Slow-{n}: {'a' * 8}\r\n".encode())
                    except OSError:
                        closed = True
                    if closed:
                        slow["closed_by_gateway"] += 1
                        slow["open_s"].append(time.monotonic() - conns.pop(s))
                        s.close()
                        open_one()
            for s in conns:
                s.close()

        def sampler():
            while not stop.wait(0.5):
                peak["rss_mib"] = max(peak["rss_mib"], round(bl.rss_bytes(st.main.pid) / 2**20, 1))

        threads = [threading.Thread(target=f, daemon=True) for f in (normal_client, slowloris, sampler)]
        for th in threads:
            th.start()
        try:
            r = self.attack_report(t, self.flood_rate, self.flood_dur, "flood")
        finally:
            stop.set()
            for th in threads:
                th.join(10)
        during = self.snapshot(st)
        time.sleep(2)
        end = self.snapshot(st)
        alive = st.main.poll() is None
        self.procs.stop(st.main)
        distinct = min(self.flood_ips, r["requests"])
        codes = r["status_codes"]
        growth = max(peak["rss_mib"], end["rss_mib"]) - start["rss_mib"]
        problems = []
        if normal["bad"]:
            problems.append(f"{len(normal['bad'])} normal requests failed, e.g. {normal['bad'][:3]}")
        if not normal["ok"]:
            problems.append("the normal client got no answer at all")
        if growth > self.flood_rss_growth:
            problems.append(f"gateway RSS grew {growth:.0f} MiB (> {self.flood_rss_growth:g})")
        if not alive:
            problems.append("edgeway exited")
        warn = []
        odd = {k: v for k, v in codes.items() if k not in ("200", "429")}
        if odd:
            warn.append(f"flood answers other than 200/429: {odd}")
        if r["req_s"] < 0.95 * self.flood_rate:
            warn.append(f"flood rate not held ({r['req_s']:,.0f} of {self.flood_rate} req/s)")
        nl = sorted(normal["lat"])
        summary = (f"flood {r['requests']:,} requests from {distinct:,} distinct IPs at {r['req_s']:,.0f} req/s "
                   f"(codes {codes}, p99 {r['p99_ms']:.1f} ms); normal client {normal['ok']}/{len(nl)} ok"
                   + (f", p99 {bl.percentile(nl, 0.99) * 1000:.1f} ms max {nl[-1] * 1000:.1f} ms" if nl else "")
                   + f"; slowloris {self.slowloris} conns: {slow['opened']} opened, {slow['closed_by_gateway']} "
                   f"closed by the gateway"
                   + (f" after {bl.median(slow['open_s']):.1f} s (median)" if slow["open_s"] else "")
                   + f"; gateway RSS {start['rss_mib']} start → {peak['rss_mib']} peak → {end['rss_mib']} MiB end "
                   f"(bound +{self.flood_rss_growth:g}), fds {start['fds']} → {end['fds']}"
                   + (f"; PROBLEMS: {'; '.join(problems)}" if problems else "")
                   + (f"; warnings: {'; '.join(warn)}" if warn else ""))
        self.verdict("flood", not problems, summary,
                     {"rate": self.flood_rate, "distinct_ips": distinct, "flood": r, "normal_ok": normal["ok"],
                      "normal_failed": normal["bad"][:20], "slowloris": {k: v for k, v in slow.items() if k != "open_s"},
                      "slowloris_open_s": [round(x, 2) for x in slow["open_s"]], "start": start, "during": during,
                      "end": end, "rss_peak_mib": peak["rss_mib"], "problems": problems, "warnings": warn})

    def run(self):
        for t in self.only:
            getattr(self, t)()


def main():
    lt = LoadTest()

    def on_signal(sig, _f):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t0 = time.time()
    interrupted = False
    try:
        lt.run()
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
        interrupted = True
    except Exception as e:
        log(f"ERROR: {e}")
        lt.results.append({"test": "harness", "pass": False, "summary": str(e)})
    finally:
        lt.procs.stop_all()
    out = Path(os.environ.get("LOADTEST_JSON") or "/tmp/edgeway-loadtest-last.json")
    out.write_text(json.dumps({"elapsed_s": round(time.time() - t0, 1), "results": lt.results}, indent=1) + "\n")
    print()
    print(f"== loadtest summary ({time.time() - t0:.0f}s, details in {out})")
    for r in lt.results:
        print(f"{'PASS' if r['pass'] else 'FAIL'}  {r['test']}: {r['summary']}")
    passed = sum(1 for r in lt.results if r["pass"])
    failed = len(lt.results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(130 if interrupted else (1 if failed or not lt.results else 0))


if __name__ == "__main__":
    main()
