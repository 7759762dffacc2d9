#!/usr/bin/env python3
"""Deno worker CPU per request, bootstrap variants against Deno direct (issue #22).

Starts each variant as its own Deno process, the way the gateway starts a
worker (same permission flags, `--preload <bootstrap> <entry>`, a control
socket this script listens on and accepts, DENO_SERVE_ADDRESS=unix:<path>,
DENO_AUTO_SERVE=1), or, for the direct variants, `deno run` of the same
handler on a Unix socket or TCP port without the bootstrap. One client per
variant sends keep-alive GETs one at a time (optionally paced) carrying the
headers the gateway forwards (x-edgeway-seq, x-forwarded-*, x-request-id).
Rounds are interleaved (order reversed every other round) and each variant's
CPU over a round is the sum over its threads of /proc/<pid>/task/*/schedstat
(ns). Prints per-variant medians and the paired difference to the first
variant per round (median and quartiles): on a shared machine read the
paired column.

  python3 bench/workercpu.py                         # every suspect, ~2 min
  python3 bench/workercpu.py --only bs,direct-unix --pace-us 150
  python3 bench/workercpu.py --compare old=/tmp/old-bootstrap.js --only bs,old
  python3 bench/workercpu.py --handler req           # (req) => ... (no fast path)
"""
import argparse, glob, json, os, shutil, socket, statistics, subprocess, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELLO = "Hello, World!\n"

# Variants that remove one suspect from the bootstrap (text replacements; a
# replacement that no longer matches the bootstrap fails loudly).
WRAP = "const tracked = trackAborts((req, info) => handler(req, new ConnInfo(req, info)));"
CONSOLE = 'const consoleSpec = envGet("EDGEWAY_CONSOLE") ?? "";'


def rep(s, a, b):
    if a not in s:
        raise SystemExit(f"workercpu: bootstrap no longer contains {a!r}: update the variant")
    return s.replace(a, b)


SUSPECTS = {
    "nourl": lambda s: rep(s, 'Object.defineProperty(Request.prototype, "url", ', "void (0, "),
    "nosignal": lambda s: rep(s, 'Object.defineProperty(Request.prototype, "signal", ', "void (0, "),
    "noconninfo": lambda s: rep(s, WRAP, "const tracked = trackAborts(handler);"),
    "notrack": lambda s: rep(s, WRAP, "const tracked = (req, info) => handler(req, new ConnInfo(req, info));"),
    # the worker as the gateway starts it: console tags, with and without
    # the request context (--worker-request-context, AsyncLocalStorage)
    "tags": lambda s: rep(s, CONSOLE, 'const consoleSpec = "0123456789abcdef";'),
    "rid": lambda s: rep(s, CONSOLE, 'const consoleSpec = "0123456789abcdef+rid";'),
    "nowrap": lambda s: rep(s, "function wrapHandler(handler) {", "function wrapHandler(handler) {\n  return handler;"),
    "noonerror": lambda s: rep(s, 'onError: typeof options.onError === "function" ? options.onError : defaultOnError,',
                               "onError: options.onError,"),
}


def cpu_ns(pid):
    total = 0
    for f in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            total += int(open(f).read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just exited
    return total


class Worker:
    def __init__(self, tmp, idx, name, bootstrap, transport, headers, handler, deno):
        self.name, self.transport, self.headers, self.seq = name, transport, headers, 0
        self.sock, ctl = f"{tmp}/w{idx}.sock", f"{tmp}/c{idx}.sock"
        self.port = 18300 + idx
        args = "(req)" if handler == "req" else "()"
        entry = f"{tmp}/entry{idx}.ts"
        env = dict(os.environ)
        flags = ["--no-prompt", f"--allow-read={tmp}", f"--allow-write={tmp}", "--allow-net", "--allow-env",
                 "--deny-net=0.0.0.0,[::]"]
        self.ready = threading.Event()
        if bootstrap is None:
            where = f'path: "{self.sock}"' if transport == "unix" else f'hostname: "127.0.0.1", port: {self.port}'
            open(entry, "w").write(f"Deno.serve({{ {where}, onListen() {{}} }}, {args} => new Response({HELLO!r}));\n")
            cmd = [deno, "run", *flags, entry]
        else:
            open(entry, "w").write(f"Deno.serve({args} => new Response({HELLO!r}));\n")
            bsp = f"{tmp}/bootstrap-{name}.js"
            open(bsp, "w").write(bootstrap)
            env.update(EDGEWAY_CONTROL=ctl, DENO_SERVE_ADDRESS="unix:" + self.sock, DENO_AUTO_SERVE="1")
            ln = socket.socket(socket.AF_UNIX)
            ln.bind(ctl)
            ln.listen(1)
            threading.Thread(target=self._control, args=(ln, ctl), daemon=True).start()
            cmd = [deno, "run", *flags, "--preload", bsp, entry]
        self.proc = subprocess.Popen(cmd, env=env, cwd=tmp)
        deadline = time.time() + 60
        while time.time() < deadline:
            if bootstrap is not None:
                if self.ready.wait(0.1):
                    self._connect()
                    return
                continue
            try:
                self._connect()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"workercpu: {name} did not start")

    def _control(self, ln, path):
        conn, _ = ln.accept()
        ln.close()
        os.unlink(path)
        self.ctl, buf = conn, b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            if b"ready\n" in buf:
                self.ready.set()

    def _connect(self):
        if self.transport == "unix":
            self.conn = socket.socket(socket.AF_UNIX)
            self.conn.connect(self.sock)
        else:
            self.conn = socket.create_connection(("127.0.0.1", self.port))
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self):
        self.seq += 1
        if self.headers == "bare":
            return b"GET /hello HTTP/1.1\r\nHost: localhost:3100\r\n\r\n"
        return (b"GET /hello HTTP/1.1\r\nHost: localhost:3100\r\nx-edgeway-seq: %d\r\nx-forwarded-for: 127.0.0.1\r\n"
                b"x-forwarded-host: localhost:3100\r\nx-forwarded-proto: http\r\nx-request-id: 2dcdbe8f0db6f10e-%d\r\n\r\n"
                % (self.seq, self.seq))

    def run(self, n, pace):
        tail = HELLO.encode()
        nxt = time.perf_counter()
        for _ in range(n):
            if pace:
                now = time.perf_counter()
                if now < nxt:
                    time.sleep(nxt - now)
                nxt = max(nxt + pace, now)
            self.conn.sendall(self.request())
            buf = b""
            while not buf.endswith(tail):
                data = self.conn.recv(4096)
                if not data:
                    raise SystemExit(f"workercpu: {self.name}: connection closed")
                buf += data


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", default=os.path.join(ROOT, "internal", "bootstrap", "bootstrap.js"))
    ap.add_argument("--compare", default="", help="name=path,...: further bootstrap files, run as they are")
    ap.add_argument("--only", default="", help="variants to run, comma-separated, the first is the baseline")
    ap.add_argument("--handler", choices=["zero", "req"], default="zero",
                    help="zero: () => new Response(...) (Deno's zero-parameter fast path); req: (req) => ...")
    ap.add_argument("-n", type=int, default=4000, help="requests per variant per round")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--pace-us", type=float, default=0, help="start a request every this many µs (0: back to back)")
    ap.add_argument("--json", default="", help="write the per-round figures here")
    a = ap.parse_args()
    deno = shutil.which(os.environ.get("DENO", "deno")) or "deno"
    src = open(a.bootstrap).read()
    variants = {"bs": (src, "unix", "full"), "bs-barehdr": (src, "unix", "bare")}
    for name, tr in SUSPECTS.items():
        variants[name] = (tr(src), "unix", "full")
    variants["direct-unix"] = (None, "unix", "full")
    variants["direct-unix-bare"] = (None, "unix", "bare")
    variants["direct-tcp-bare"] = (None, "tcp", "bare")
    for item in filter(None, a.compare.split(",")):
        name, path = item.split("=", 1)
        variants[name] = (open(path).read(), "unix", "full")
    if a.only:
        variants = {k: variants[k] for k in a.only.split(",")}
    tmp = tempfile.mkdtemp(prefix="workercpu-")
    workers = []
    try:
        for i, (name, (bs, transport, headers)) in enumerate(variants.items()):
            workers.append(Worker(tmp, i, name, bs, transport, headers, a.handler, deno))
        for w in workers:
            w.run(3000, 0)  # warm-up: JIT
        cpu = {w.name: [] for w in workers}
        rate = {w.name: [] for w in workers}
        for r in range(a.rounds):
            for w in (workers if r % 2 == 0 else workers[::-1]):
                before, t0 = cpu_ns(w.proc.pid), time.perf_counter()
                w.run(a.n, a.pace_us / 1e6)
                el, after = time.perf_counter() - t0, cpu_ns(w.proc.pid)
                cpu[w.name].append((after - before) / a.n / 1000)
                rate[w.name].append(a.n / el)
            print(f"round {r}: " + " ".join(f"{w.name}={cpu[w.name][-1]:.2f}" for w in workers), flush=True)
        base = workers[0].name
        print(f"\nDeno CPU µs/request, handler {a.handler}, {a.rounds} rounds x {a.n} requests, pace {a.pace_us} µs")
        print(f"{'variant':18} {'req/s':>8} {'median':>7} {'min':>6} {'max':>6}   paired vs {base}: median [q1, q3]")
        for w in workers:
            v = cpu[w.name]
            d = [x - y for x, y in zip(v, cpu[base])]
            q = statistics.quantiles(d, n=4) if len(d) > 2 else [0, 0, 0]
            print(f"{w.name:18} {statistics.median(rate[w.name]):8.0f} {statistics.median(v):7.2f} {min(v):6.2f} "
                  f"{max(v):6.2f}   {statistics.median(d):+.2f} [{q[0]:+.2f}, {q[2]:+.2f}]")
        if a.json:
            json.dump({"cpu_us": cpu, "req_s": rate, "args": vars(a)}, open(a.json, "w"), indent=1)
    finally:
        for w in workers:
            w.proc.kill()
            w.proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
