// edgeway worker bootstrap: runs inside every Deno worker process.
//
// Usage (argv): <http socket> <control socket> <entrypoint file URL>
//
// 1. Connects to the gateway's control socket *before* any user code runs.
//    The gateway accepts exactly one connection and removes the socket file,
//    so user code can neither reach nor forge this channel.
// 2. Installs EdgeRuntime.waitUntil and replaces Deno.serve with a capturing
//    stub, so Deno.serve(handler), Deno.serve(options, handler),
//    Deno.serve({handler}) and `export default { fetch }` all work unchanged.
// 3. Serves the captured handler on the Unix socket and reports "ready".
//
// Control protocol (one line each, ASCII):
//   worker -> gateway: "ready", "bg <pending tasks>", "pong <id> <pending tasks>"
//   gateway -> worker: "ping <id>"
const [sockPath, ctlPath, entryURL] = Deno.args;

const enc = new TextEncoder();
const dec = new TextDecoder();
const ctl = await Deno.connect({ transport: "unix", path: ctlPath });

let ctlChain = Promise.resolve();
function send(line) {
  const bytes = enc.encode(line + "\n");
  ctlChain = ctlChain.then(async () => {
    let off = 0;
    while (off < bytes.length) off += await ctl.write(bytes.subarray(off));
  }).catch(() => Deno.exit(1));
}

// Background tasks: the count travels over the control channel; pongs carry
// it too, so the gateway can confirm "no pending tasks" in order with pings.
const tasks = new Set();
globalThis.EdgeRuntime = Object.freeze({
  waitUntil(promise) {
    if (!promise || typeof promise.then !== "function") return promise;
    tasks.add(promise);
    send("bg " + tasks.size);
    Promise.resolve(promise)
      .catch((err) => console.error("background task failed:", err))
      .finally(() => {
        tasks.delete(promise);
        send("bg " + tasks.size);
      });
    return promise;
  },
});

// Over a Unix socket Deno reports req.url as http+unix://<host>/...; user code
// expects http://<host>/... with the client's Host, so rewrite the scheme once
// on the prototype instead of rebuilding every Request.
const urlGetter = Object.getOwnPropertyDescriptor(Request.prototype, "url").get;
Object.defineProperty(Request.prototype, "url", {
  configurable: true,
  enumerable: true,
  get() {
    const u = urlGetter.call(this);
    return u.startsWith("http+unix:") ? "http:" + u.slice(10) : u;
  },
});

const realServe = Deno.serve;
let captured = null;
let announce;
const handlerCaptured = new Promise((resolve) => (announce = resolve));

function stubServer() {
  const never = new Promise(() => {});
  return {
    finished: never,
    addr: { transport: "unix", path: sockPath },
    shutdown: () => Promise.resolve(),
    ref() {},
    unref() {},
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

Deno.serve = function serve(a, b) {
  let handler;
  let options = {};
  if (typeof a === "function") {
    handler = a;
    if (b && typeof b === "object") options = b;
  } else if (a && typeof a === "object") {
    options = a;
    handler = typeof b === "function" ? b : a.handler;
  }
  if (typeof handler !== "function") {
    throw new TypeError("Deno.serve: a handler function is required");
  }
  if (!captured) {
    captured = { handler, options };
    announce();
  }
  return stubServer();
};

// info.remoteAddr of a Unix socket says nothing about the client; report the
// address the gateway put in X-Forwarded-For instead.
class ConnInfo {
  #req;
  #info;
  constructor(req, info) {
    this.#req = req;
    this.#info = info;
  }
  get remoteAddr() {
    const xff = this.#req.headers.get("x-forwarded-for") ?? "";
    const comma = xff.indexOf(",");
    const hostname = (comma < 0 ? xff : xff.slice(0, comma)).trim();
    return { transport: "tcp", hostname, port: 0 };
  }
  get completed() {
    return this.#info.completed;
  }
}

const mod = await import(entryURL);
if (!captured && mod.default && typeof mod.default.fetch === "function") {
  const app = mod.default;
  captured = {
    handler: (req, info) => app.fetch(req, info),
    options: { onError: typeof app.onError === "function" ? app.onError.bind(app) : undefined },
  };
}
if (!captured) await handlerCaptured;

const userHandler = captured.handler;
const userOnError = captured.options.onError;

// Deno's and Supabase's answer to an uncaught handler error.
function defaultOnError(err) {
  console.error("uncaught error in function handler:", err);
  return new Response("Internal Server Error", { status: 500 });
}

const server = realServe(
  {
    path: sockPath,
    onListen() {
      send("ready");
    },
    onError: typeof userOnError === "function" ? userOnError : defaultOnError,
  },
  (req, info) => userHandler(req, new ConnInfo(req, info)),
);

// SIGTERM: finish in-flight requests and background tasks, then exit. The
// gateway only sends it to a drained worker and kills after its grace period.
Deno.addSignalListener("SIGTERM", async () => {
  await server.shutdown();
  await Promise.allSettled([...tasks]);
  Deno.exit(0);
});

// Control reader: answer pings; exit when the gateway goes away.
(async () => {
  const buf = new Uint8Array(4096);
  let pending = "";
  for (;;) {
    let n;
    try {
      n = await ctl.read(buf);
    } catch {
      n = null;
    }
    if (n === null) Deno.exit(1);
    pending += dec.decode(buf.subarray(0, n), { stream: true });
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith("ping ")) send("pong " + line.slice(5) + " " + tasks.size);
    }
  }
})();
