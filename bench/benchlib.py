"""Shared pieces of bench/bench.py and loadtest/loadtest.py.

Everything here is loopback-only and bounded: every process is started in its
own session, recorded in a pid file (so run.sh's trap can kill it even if
Python dies), and stopped by Procs.stop_all().
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Functions every stack serves (same code: bench/deno/handlers.ts).
SINGLE_FUNCTIONS = ["hello", "echo", "cpu", "stream", "ws"]


def log(*args):
    print("[bench]", *args, flush=True)


# ---------------------------------------------------------------- processes


class Procs:
    """Starts processes in their own session and guarantees they get killed."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.pidfile = workdir / "pids"
        self.procs: list[subprocess.Popen] = []
        self.live: set[int] = set()
        self.lock = threading.Lock()

    def start(self, name: str, argv: list[str], cwd=None, env=None, stdin=subprocess.DEVNULL) -> subprocess.Popen:
        logf = open(self.workdir / f"{name}.log", "ab")
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        logf.close()
        with self.lock:
            self.procs.append(p)
            self._remember(p.pid)
        return p

    # The pid file lists only processes not yet reaped, so the shell trap never
    # signals a pid that the kernel may have reused for someone else.
    def _remember(self, pid: int):
        self.live.add(pid)
        self._write_pidfile()

    def _forget(self, pid: int):
        self.live.discard(pid)
        self._write_pidfile()

    def _write_pidfile(self):
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text("".join(f"{x}\n" for x in sorted(self.live)))
        os.replace(tmp, self.pidfile)

    def stop(self, p: subprocess.Popen, grace: float = 3.0):
        """SIGTERM the process group, SIGKILL it after `grace`, and SIGKILL
        any direct children that survived (edgeway's workers have their own
        process groups; they also die by PDEATHSIG)."""
        kids = [(k, start_time(k)) for k in children(p.pid)]
        if p.poll() is None:
            _killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                _killpg(p.pid, signal.SIGKILL)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        _killpg(p.pid, signal.SIGKILL)  # leftovers in the group
        for k, started in kids:
            if started is not None and start_time(k) == started:  # same process, not a reused pid
                try:
                    os.kill(k, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        with self.lock:
            if p in self.procs:
                self.procs.remove(p)
            self._forget(p.pid)

    def run_measured(self, name: str, argv: list[str], timeout: float, out_path: Path) -> tuple[int, float]:
        """Run a load generator to completion (killed after `timeout`).
        Returns its exit code and the CPU seconds (utime+stime) it used,
        from wait4's rusage, so nothing is lost when it exits."""
        with open(out_path, "wb") as f:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        with self.lock:
            self._remember(p.pid)
        timer = threading.Timer(timeout, lambda: _killpg(p.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        _killpg(p.pid, signal.SIGKILL)  # e.g. the second half of `attack | report` if the first died
        with self.lock:
            self._forget(p.pid)
        return p.returncode, ru.ru_utime + ru.ru_stime

    def stop_all(self):
        for p in list(self.procs):
            try:
                self.stop(p, grace=2.0)
            except Exception as e:  # keep going: everything must die
                log("stop failed:", e)


def _killpg(pgid: int, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def children(pid: int) -> list[int]:
    """Direct children of pid (what `pgrep -P pid` prints)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        if int(rest[1]) == pid:
            out.append(int(d))
    return out


def start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (identifies it
    across pid reuse), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return int(s[s.rfind(")") + 2:].split()[19])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- /proc


def cpu_ticks(pid: int) -> int:
    """utime+stime of a whole process (all threads), 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0
    rest = s[s.rfind(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def pss_bytes(pid: int) -> int:
    """Proportional set size: shared pages (the deno binary, ~25 MiB) are
    split between the processes that map them, so sums are meaningful."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for ln in f:
                if ln.startswith("Pss:"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def sys_ticks() -> dict:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return {"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "steal": steal,
            "total": sum(v[:8])}


def wait_quiet(max_busy_pct: float, max_wait: float) -> float:
    """Wait (bounded) until the whole box is below max_busy_pct busy (of all
    CPUs) over a 0.3 s window; returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        a = sys_ticks()
        time.sleep(0.3)
        b = sys_ticks()
        tot = max(1, b["total"] - a["total"])
        busy = 100.0 * (b["busy"] - a["busy"]) / tot
        if busy <= max_busy_pct or time.monotonic() - t0 >= max_wait:
            return round(time.monotonic() - t0, 2)


class Meter:
    """CPU and RSS of groups of processes over one load run.

    groups: name -> callable returning the pids of that group now (resolved
    at start; processes that appear later are not counted)."""

    def __init__(self, groups: dict, rss_groups: dict):
        self.groups = groups
        self.rss_groups = rss_groups
        self.peak = {k: 0 for k in rss_groups}
        self._stop = threading.Event()
        self._thr = None

    def start(self):
        self.pids = {k: list(f()) for k, f in self.groups.items()}
        self.rss_pids = {k: list(f()) for k, f in self.rss_groups.items()}
        self.t0 = time.monotonic()
        self.sys0 = sys_ticks()
        self.ticks0 = {k: sum(cpu_ticks(p) for p in v) for k, v in self.pids.items()}
        self._thr = threading.Thread(target=self._sample, daemon=True)
        self._thr.start()

    def _sample(self):
        while not self._stop.wait(0.5):
            for k, v in self.rss_pids.items():
                self.peak[k] = max(self.peak[k], sum(rss_bytes(p) for p in v))

    def stop(self, generator_cpu_s: float = 0.0) -> dict:
        """generator_cpu_s: CPU seconds of the load generator (from wait4)."""
        self._stop.set()
        self._thr.join()
        for k, v in self.rss_pids.items():
            self.peak[k] = max(self.peak[k], sum(rss_bytes(p) for p in v))
        wall = time.monotonic() - self.t0
        sys1 = sys_ticks()
        out = {"wall_s": round(wall, 3), "rss_peak_mib": {}}
        out["cpu_s"] = {"gen": round(generator_cpu_s, 3)}
        for k, v in self.pids.items():
            t1 = sum(cpu_ticks(p) for p in v)
            out["cpu_s"][k] = round(max(0, t1 - self.ticks0.get(k, 0)) / CLK_TCK, 3)
        for k, v in self.peak.items():
            out["rss_peak_mib"][k] = round(v / 2**20, 1)
        out["processes"] = {k: len(v) for k, v in self.rss_pids.items()}
        out["pss_end_mib"] = {k: round(sum(pss_bytes(p) for p in v) / 2**20, 1) for k, v in self.rss_pids.items()}
        tot = max(1, sys1["total"] - self.sys0["total"])
        ncpu = os.cpu_count() or 1
        out["box_busy_pct"] = round(100.0 * ncpu * (sys1["busy"] - self.sys0["busy"]) / tot, 1)
        out["steal_pct"] = round(100.0 * ncpu * (sys1["steal"] - self.sys0["steal"]) / tot, 1)
        ours = sum(out["cpu_s"].values())
        out["other_pct"] = round(max(0.0, out["box_busy_pct"] - 100.0 * ours / max(wall, 1e-9)), 1)
        return out


# ---------------------------------------------------------------- functions


def write_functions(dest: Path, names: list[str]):
    """A Supabase-style functions folder: _shared/handlers.ts (copied from
    bench/deno) and one folder per name whose index.ts serves handlerFor(name)."""
    shared = dest / "_shared"
    shared.mkdir(parents=True, exist_ok=True)
    shutil.copy(BENCH_DIR / "deno" / "handlers.ts", shared / "handlers.ts")
    for n in names:
        d = dest / n
        d.mkdir(exist_ok=True)
        (d / "index.ts").write_text(
            'import { handlerFor } from "../_shared/handlers.ts";\n'
            f'Deno.serve(handlerFor("{n}"));\n')


# ---------------------------------------------------------------- HTTP client


def http_request(port: int, method: str, path: str, body: bytes = b"", timeout: float = 20.0,
                 headers: dict | None = None) -> tuple[int, dict, bytes, float, float]:
    """Minimal HTTP/1.1 client (Connection: close). Returns status, headers,
    body (chunked decoded), seconds to first byte, seconds to the end."""
    h = {"Host": f"127.0.0.1:{port}", "Connection": "close", "User-Agent": "edgeway-bench"}
    if body or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body))
        h["Content-Type"] = "application/octet-stream"
    h.update(headers or {})
    req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        t0 = time.perf_counter()
        s.sendall(req.encode() + body)
        first = s.recv(65536)
        ttfb = time.perf_counter() - t0
        data = bytearray(first)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        total = time.perf_counter() - t0
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return status, hdrs, rest, ttfb, total


def _dechunk(b: bytes) -> bytes:
    out = bytearray()
    i = 0
    while True:
        j = b.find(b"\r\n", i)
        if j < 0:
            break
        size = int(b[i:j].split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += b[j + 2:j + 2 + size]
        i = j + 2 + size + 2
    return bytes(out)


def wait_tcp(port: int, timeout: float) -> None:
    """Poll until 127.0.0.1:port accepts a connection (redis-server)."""
    t0 = time.monotonic()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")
            time.sleep(0.01)


def wait_http_ok(port: int, path: str, timeout: float, proc: subprocess.Popen | None = None) -> float:
    """Poll GET path until 200 (1 ms between tries). Returns seconds waited."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for :{port}{path}")
        try:
            st, _, _, _, _ = http_request(port, "GET", path, timeout=max(0.5, timeout - (time.monotonic() - t0)))
            if st == 200:
                return time.monotonic() - t0
            last = f"status {st}"
        except OSError as e:
            last = str(e)
        time.sleep(0.001)
    raise RuntimeError(f"127.0.0.1:{port}{path} not ready after {timeout}s ({last})")


# ---------------------------------------------------------------- stacks


@dataclass
class Stack:
    name: str          # direct | nginx | edgeway
    port: int
    main: subprocess.Popen            # deno (direct) / nginx master / edgeway
    deno: subprocess.Popen | None = None  # the Deno behind nginx
    extra: dict = field(default_factory=dict)

    def proxy_pids(self) -> list[int]:
        if self.name == "direct":
            return []
        if self.name == "nginx":
            return [self.main.pid] + children(self.main.pid)
        return [self.main.pid]

    def deno_pids(self, functions: set[str] | None = None) -> list[int]:
        """The Deno process(es) behind this stack; for edgeway only the
        workers of `functions` when given (idle workers of other functions
        are left out of CPU and memory figures)."""
        if self.name == "direct":
            return [self.main.pid]
        if self.name == "nginx":
            return [d.pid for d in self.extra.get("denos", [self.deno])]
        kids = children(self.main.pid)
        if functions is None:
            return kids
        return [k for k in kids if worker_function(k) in functions]


def worker_function(pid: int) -> str:
    """Function name of an edgeway worker: its entrypoint is the last argument
    (file:///…/functions/<name>/index.ts)."""
    try:
        args = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return "?"
    parts = args[-1].rstrip("/").split("/") if args else []
    return parts[-2] if len(parts) >= 2 else "?"


def deno_cmd(deno: str, where: str) -> list[str]:
    return [deno, "run", "-A", "--no-config", "--no-lock", str(BENCH_DIR / "deno" / "server.ts"), where]


def start_direct(procs: Procs, deno: str, name="direct") -> Stack:
    port = free_port()
    p = procs.start(name + "-deno", deno_cmd(deno, f"tcp:127.0.0.1:{port}"), env=deno_env())
    wait_http_ok(port, "/hello", 30, p)
    return Stack("direct", port, p)


def deno_env() -> dict:
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"})
    return env


def start_nginx(procs: Procs, deno: str, workdir: Path, nginx: str = "nginx") -> Stack:
    prefix = workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    sock = workdir / "deno-nginx.sock"
    d = procs.start("nginx-deno", deno_cmd(deno, f"unix:{sock}"), env=deno_env())
    t0 = time.monotonic()
    while not sock.exists():
        if d.poll() is not None or time.monotonic() - t0 > 30:
            raise RuntimeError("Deno for nginx did not create its socket")
        time.sleep(0.005)
    port = free_port()
    conf = (BENCH_DIR / "nginx.conf.tmpl").read_text()
    conf = (conf.replace("@PREFIX@", str(prefix)).replace("@PORT@", str(port)).replace("@SOCK@", str(sock))
            .replace("@USER@", "user root;" if os.geteuid() == 0 else ""))
    (prefix / "nginx.conf").write_text(conf)
    n = procs.start("nginx", [nginx, "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-e",
                              str(prefix / "error.log")])
    wait_http_ok(port, "/hello", 30, n)
    return Stack("nginx", port, n, deno=d)


def start_nginx_functions(procs: Procs, deno: str, workdir: Path, names: list[str], nginx: str = "nginx",
                          prefix_name: str = "nginx-fn50") -> Stack:
    """nginx in front of one Deno process per function name, each on its own
    Unix socket (bench/nginx-fn50.conf.tmpl): /NAME goes to NAME's process.
    The Stack is named "nginx" (its records are the scenario's nginx peer);
    extra["denos"] holds every Deno process."""
    prefix = workdir / prefix_name
    prefix.mkdir(exist_ok=True)
    socks = {n: prefix / f"{n}.sock" for n in names}
    # start every Deno at once: 50 sequential boots would take minutes on 2 cores
    denos = [procs.start(f"{prefix_name}-deno-{n}", deno_cmd(deno, f"unix:{socks[n]}"), env=deno_env())
             for n in names]
    t0 = time.monotonic()
    for n, d in zip(names, denos):
        while not socks[n].exists():
            if d.poll() is not None or time.monotonic() - t0 > 120:
                raise RuntimeError(f"Deno {n} for nginx did not create its socket")
            time.sleep(0.01)
    ups = "".join(f"    upstream {n} {{\n        server unix:{socks[n]};\n        keepalive 64;\n"
                  f"        keepalive_requests 1000000;\n    }}\n" for n in names)
    locs = "".join(f"        location = /{n} {{\n            proxy_pass http://{n};\n        }}\n" for n in names)
    port = free_port()
    conf = (BENCH_DIR / "nginx-fn50.conf.tmpl").read_text()
    conf = (conf.replace("@PREFIX@", str(prefix)).replace("@PORT@", str(port))
            .replace("@USER@", "user root;" if os.geteuid() == 0 else "")
            .replace("@UPSTREAMS@", ups).replace("@LOCATIONS@", locs))
    (prefix / "nginx.conf").write_text(conf)
    n = procs.start(prefix_name, [nginx, "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-e",
                                  str(prefix / "error.log")])
    wait_http_ok(port, f"/{names[0]}", 30, n)
    return Stack("nginx", port, n, deno=denos[0], extra={"denos": denos, "prefix": prefix})


def snapshot_edgeway(src: str, workdir: Path) -> str:
    """Copy the binary under test: bin/edgeway may be rebuilt by someone
    else while a long run goes on, and every process of a run must be the
    same build."""
    dst = workdir / "edgeway"
    shutil.copy2(src, dst)
    return str(dst)


def edgeway_flags(edgeway: str, extra_env: str) -> list[str]:
    """Flags every benchmark/load-test gateway gets: no JWT verification and
    no per-client rate limit (a load generator is one client), when this
    build has those flags; then whatever `extra_env` (a variable's name)
    holds, split like a shell would."""
    import shlex
    text = sh([edgeway, "help"])
    flags = []
    if re.search(r"^\s+--auth\s", text, re.M):
        flags += ["--auth", "none"]
    if re.search(r"^\s+--rate-limit\s", text, re.M):
        flags += ["--rate-limit", "0"]
    return flags + shlex.split(os.environ.get(extra_env, ""))


def start_edgeway(procs: Procs, edgeway: str, deno: str, functions: Path, extra_flags=(), name="edgeway",
                  ready_path="/hello") -> Stack:
    port = free_port()
    argv = [edgeway, "serve", "--functions", str(functions), "--host", "127.0.0.1", "--port", str(port),
            "--deno", deno, "--log-level", "warn", "--log-format", "json", *extra_flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEWAY_")}
    p = procs.start(name, argv, env=env)
    wait_http_ok(port, "/", 30, p)
    if ready_path:
        wait_http_ok(port, ready_path, 30, p)
    return Stack("edgeway", port, p)


# ---------------------------------------------------------------- load tools

WRK_LUA = r"""
-- generated by bench/benchlib.py
local paths = {@PATHS@}
local body_file = @BODY@
wrk.method = "@METHOD@"
if body_file then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/octet-stream"
end
if #paths > 1 then
  local reqs, i = {}, 0
  init = function(args)
    for k, p in ipairs(paths) do reqs[k] = wrk.format(nil, p) end
  end
  request = function()
    i = i % #reqs + 1
    return reqs[i]
  end
else
  wrk.path = paths[1]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def write_wrk_script(path: Path, method: str, paths: list[str], body_file: Path | None):
    lua = (WRK_LUA.replace("@PATHS@", ", ".join(json.dumps(p) for p in paths))
           .replace("@BODY@", json.dumps(str(body_file)) if body_file else "nil")
           .replace("@METHOD@", method))
    path.write_text(lua)


def write_vegeta_targets(path: Path, port: int, method: str, paths: list[str], body_file: Path | None):
    lines = []
    for p in paths:
        lines.append(f"{method} http://127.0.0.1:{port}{p}")
        if body_file:
            lines.append("Content-Type: application/octet-stream")
            lines.append(f"@{body_file}")
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def parse_wrk(out: str) -> dict:
    m = re.search(r"^BENCHJSON (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError("wrk printed no result:\n" + out[-2000:])
    r = json.loads(m.group(1))
    dur = r["duration_us"] / 1e6
    return {
        "requests": r["requests"],
        "req_s": round(r["requests"] / dur, 1) if dur else 0.0,
        "p50_ms": r["p50_us"] / 1000, "p95_ms": r["p95_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000, "mean_ms": round(r["mean_us"] / 1000, 3),
        "non2xx": r["status"],
        "socket_errors": r["connect"] + r["read"] + r["write"] + r["timeout"],
        "socket_detail": {k: r[k] for k in ("connect", "read", "write", "timeout")},
    }


def parse_vegeta_report(text: str) -> dict:
    r = json.loads(text)
    lat = r["latencies"]
    codes = {str(k): v for k, v in (r.get("status_codes") or {}).items()}
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    sock = codes.get("0", 0)
    return {
        "requests": r["requests"],
        "rate_target": None,
        "rate": round(r["rate"], 1),
        "req_s": round(r["throughput"], 1),
        "p50_ms": lat["50th"] / 1e6, "p90_ms": lat["90th"] / 1e6, "p95_ms": lat["95th"] / 1e6,
        "p99_ms": lat["99th"] / 1e6, "max_ms": lat["max"] / 1e6, "mean_ms": lat["mean"] / 1e6,
        "non2xx": r["requests"] - ok - sock,
        "socket_errors": sock,
        "status_codes": codes,
        "errors": (r.get("errors") or [])[:10],
    }


def parse_wsbench(out: str) -> dict:
    """bench/wsbench's JSON line → a record like wrk's: requests = messages
    echoed (handshake mode: connections opened, used and closed), non2xx =
    upgrades answered with another status, socket_errors = failed or
    timed-out messages, wrong echoes and connections that did not open."""
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError("wsbench printed no result:\n" + out[-2000:])
    r = json.loads(lines[-1])
    refused = sum((r.get("failed_status") or {}).values())
    return {
        "requests": r["count"], "req_s": r["rate"],
        "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000, "p95_ms": r["p95_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000, "max_ms": r["max_us"] / 1000, "mean_ms": round(r["mean_us"] / 1000, 4),
        "non2xx": refused,
        "socket_errors": r["errors"] + r["mismatches"] + r["connect_failures"] - refused,
        "socket_detail": {k: r.get(k) for k in ("errors", "mismatches", "connect_failures", "failed_status",
                                                 "last_errors") if r.get(k)},
        "ws_conns": r["conns"], "ws_size": r["size"], "connect_p50_ms": (r.get("connect_p50_us") or 0) / 1000,
    }


def percentile(sorted_xs, q):
    """Linear-interpolated quantile q (0..1) of an already sorted list."""
    if not sorted_xs:
        return None
    k = (len(sorted_xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (k - lo)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- machine


def sh(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (r.stdout + r.stderr).strip()
    except Exception as e:  # a missing tool is recorded, not fatal
        return f"unavailable ({e})"


def machine_info(deno: str, edgeway: str | None, tools: dict) -> dict:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for ln in f:
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for ln in f:
            if ln.startswith("MemTotal"):
                mem = f"{int(ln.split()[1]) / 2**20:.1f} GiB"
    os_name = "?"
    if Path("/etc/os-release").exists():
        for ln in Path("/etc/os-release").read_text().splitlines():
            if ln.startswith("PRETTY_NAME="):
                os_name = ln.split("=", 1)[1].strip('"')
    virt = sh(["systemd-detect-virt"]) if shutil.which("systemd-detect-virt") else ""
    info = {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory": mem,
        "kernel": os.uname().release,
        "os": os_name,
        "virtualization": virt,
        "deno": sh([deno, "--version"]).splitlines()[0] if deno else None,
        "go": sh(["go", "version"]),
        "python": sh(["python3", "--version"]),
    }
    if edgeway:
        info["edgeway"] = sh([edgeway, "version"])
    for k, v in tools.items():
        info[k] = v
    return info
