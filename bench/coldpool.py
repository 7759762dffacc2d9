"""Cold start from the prewarm pool vs a fresh spawn (issue 18), part of the
coldstart scenario.

Two gateways serve the same generated folder: one with --prewarm-pool 1
(two classes: the small function's and hono's, which may start a node:http
server), one with --prewarm-pool 0. Each round measures, in shuffled
order, the first byte of a never-used small function and of a never-used
hono app (npm:hono@4, warm DENO_DIR) on each gateway; before every sample
the pool is full again (its /health says so: no refill runs) and the box
quiet. The folder
lies outside /tmp: the default profile's private /tmp hides /tmp from
pre-booted workers, so a folder under it is never pooled.

Also reported: the pool's mean refill time (spawn -> waiting, from /health)
and the memory (PSS) of idle pre-booted processes, of warm workers that
came from the pool and of warm workers spawned fresh.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import benchlib as bl
from benchlib import log

KEY = "bench-internal-key-0123456789abcdef"
SMALL = 'Deno.serve(() => new Response("Hello, World!\\n"));\n'
HONO = ('import { Hono } from "npm:hono@4";\n'
        'const app = new Hono();\n'
        'app.get("*", (c) => c.text("Hello, World!\\n"));\n'
        'Deno.serve(app.fetch);\n')


def _health(port: int) -> dict:
    code, _, body, _, _ = bl.http_request(port, "GET", "/health", timeout=10,
                                          headers={"Authorization": "Bearer " + KEY})
    if code != 200:
        raise RuntimeError(f"/health: status {code}")
    return json.loads(body)


def _wait_pool_full(port: int, want: int, timeout: float = 60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if (_health(port).get("prewarm") or {}).get("idle", 0) >= want:
            return
        time.sleep(0.01)
    raise RuntimeError(f"the prewarm pool did not refill to {want} within {timeout:.0f} s")


def _pss_mib(pids: list[int]) -> float | None:
    vals = [bl.pss_bytes(p) / 2**20 for p in pids]
    vals = [v for v in vals if v > 0]
    return round(statistics.median(vals), 1) if vals else None


DENSITY_FUNCTIONS = 500


def _density(b) -> dict:
    """Issue 18's density figures: a folder of DENSITY_FUNCTIONS functions
    (none called), the gateway with its default pool: seconds from its
    start to /health/ready (discovery, maps, routes loaded) and its own RSS
    once the pool is full."""
    base = Path(tempfile.mkdtemp(prefix=".density-", dir=bl.BENCH_DIR))
    try:
        for i in range(DENSITY_FUNCTIONS):
            d = base / "functions" / f"f{i:03d}"
            d.mkdir(parents=True)
            (d / "index.ts").write_text(SMALL)
        t0 = time.monotonic()
        gw = bl.start_edgeway(b.procs, b.edgeway, b.deno, base / "functions",
                              b.edgeway_flags + ["--internal-key", KEY], name="edgeway-density", ready_path=None)
        try:
            bl.wait_http_ok(gw.port, "/health/ready", 60, gw.main)
            ready_s = time.monotonic() - t0
            pw = _health(gw.port).get("prewarm") or {}
            _wait_pool_full(gw.port, pw.get("size", 0) * pw.get("classes", 0))
            rss = bl.rss_bytes(gw.main.pid) / 2**20
        finally:
            b.procs.stop(gw.main)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"density_functions": DENSITY_FUNCTIONS, "density_ready_s": round(ready_s, 3),
            "density_gateway_rss_mib": round(rss, 1)}


def run(b) -> tuple[dict, list[str], dict]:
    """Returns samples (ms) by case, failures and extra figures."""
    reps = int(os.environ.get("BENCH_COLD_POOL_REPS") or (5 if b.quick else 20))
    base = Path(tempfile.mkdtemp(prefix=".coldpool-", dir=bl.BENCH_DIR))
    fdir = base / "functions"
    res = {k: [] for k in ("pool_small_ttfb_ms", "spawn_small_ttfb_ms", "pool_hono_ttfb_ms", "spawn_hono_ttfb_ms")}
    fails: list[str] = []
    extra: dict = {}
    try:
        for i in range(reps + 1):
            for prefix, src in (("s", SMALL), ("h", HONO)):
                d = fdir / f"{prefix}{i:02d}"
                d.mkdir(parents=True)
                (d / "index.ts").write_text(src)
        # A warm DENO_DIR, as the issue asks: hono is fetched before timing.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWAY_")}
        subprocess.run([b.deno, "cache", "--no-config", "--no-lock", str(fdir / "h00" / "index.ts")],
                       env=env, check=True, capture_output=True, timeout=300)
        pool = bl.start_edgeway(b.procs, b.edgeway, b.deno, fdir,
                                b.edgeway_flags + ["--prewarm-pool", "1", "--prewarm-classes", "2",
                                                   "--internal-key", KEY, "--max-workers-total", "200"],
                                name="edgeway-pool", ready_path=None)
        spawn = bl.start_edgeway(b.procs, b.edgeway, b.deno, fdir,
                                 b.edgeway_flags + ["--prewarm-pool", "0", "--internal-key", KEY,
                                                    "--max-workers-total", "200"],
                                 name="edgeway-spawn", ready_path=None)
        try:
            log(f"== coldstart, prewarm pool vs fresh spawn: {reps} rounds (+1 discarded), interleaved")
            for i in range(reps + 1):
                keep = i > 0
                cases = [("pool", "small"), ("spawn", "small"), ("pool", "hono"), ("spawn", "hono")]
                random.shuffle(cases)
                for src, kind in cases:
                    gw = pool if src == "pool" else spawn
                    # Before every sample, spawn's too: no refill may run
                    # meanwhile.
                    _wait_pool_full(pool.port, 2)
                    bl.wait_quiet(b.quiet_busy, b.quiet_wait)
                    path = f"/{'s' if kind == 'small' else 'h'}{i:02d}"
                    code, _, body, ttfb, _ = bl.http_request(gw.port, "GET", path, timeout=30)
                    if code != 200 or body != b"Hello, World!\n":
                        fails.append(f"{src} {path}: status {code} body {body[:80]!r}")
                    elif keep:
                        res[f"{src}_{kind}_ttfb_ms"].append(ttfb * 1000)
            _wait_pool_full(pool.port, 2)
            h = _health(pool.port)
            pw = h.get("prewarm") or {}
            extra["refill_mean_ms"] = round(pw.get("refill_seconds", 0) * 1000, 1)
            extra["pool_hits"], extra["pool_misses"] = pw.get("hits"), pw.get("misses")
            if pw.get("hits") != 2 * (reps + 1):
                fails.append(f"pool gateway: {pw.get('hits')} hits, want {2 * (reps + 1)} (every pool sample from the pool)")
            assigned = {w["pid"] for f in h["functions"].values() for w in f.get("workers", [])}
            kids = bl.children(pool.main.pid)
            idle = [p for p in kids if p not in assigned]
            small = {w["pid"] for n, f in h["functions"].items() if n.startswith("s") for w in f.get("workers", [])}
            spawned = {w["pid"] for n, f in _health(spawn.port)["functions"].items() if n.startswith("s")
                       for w in f.get("workers", [])}
            extra["pss_idle_pooled_mib"] = _pss_mib(idle)
            extra["pss_warm_small_from_pool_mib"] = _pss_mib(sorted(small))
            extra["pss_warm_small_spawned_mib"] = _pss_mib(sorted(spawned))
            extra["idle_pooled"] = len(idle)
            extra["pss_total_idle_pooled_mib"] = round(sum(bl.pss_bytes(p) for p in idle) / 2**20, 1)
            extra["pss_total_warm_small_from_pool_mib"] = round(sum(bl.pss_bytes(p) for p in small) / 2**20, 1)
            extra["warm_small_from_pool"] = len(small)
        finally:
            b.procs.stop(pool.main)
            b.procs.stop(spawn.main)
    except Exception as e:  # noqa: BLE001 - reported with the cold-start results
        fails.append(f"prewarm comparison failed: {str(e)[:400]}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    try:
        extra.update(_density(b))
    except Exception as e:  # noqa: BLE001 - reported with the cold-start results
        fails.append(f"density measurement failed: {str(e)[:400]}")
    for k, v in res.items():
        if v:
            log(f"  {k}: median {statistics.median(v):.1f} ms (min {min(v):.1f}, max {max(v):.1f}, n={len(v)})")
    log(f"  prewarm: {extra}")
    return res, fails, extra
