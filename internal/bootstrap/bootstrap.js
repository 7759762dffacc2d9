// edgeway worker bootstrap: runs inside every Deno worker process, preloaded
// before the function's entry, which stays the main module:
//
//   deno run --preload <this file> <entrypoint>
//
// so import.meta.main is true in the entry, Deno.mainModule is the entry and
// Deno.args is empty. Deno evaluates this module, top-level await included,
// before the entry (see ctl.unref below).
//
// A pre-booted worker (the gateway's prewarm pool, EDGEWAY_POOL=1) runs this
// file as its main module instead, `deno run <this file>`, before it knows
// its function: it connects, says "pooled" and waits for one assignment,
// "assign <n>" and n bytes of JSON {entry, dir, env, node}, then sets the
// function's environment, changes to its folder, and imports the entry
// (so import.meta.main is false there: the gateway boots such functions
// fresh), serving an `export default { fetch }` itself as DENO_AUTO_SERVE
// does. The gateway passes, in the environment:
//   EDGEWAY_CONTROL     the control socket's path (deleted here at once)
//   DENO_SERVE_ADDRESS  unix:<the worker's HTTP socket>: Deno itself moves the
//                       first node:http server (express, fastify, ...) there
//                       (deleted here once the socket is bound)
//   DENO_AUTO_SERVE=1   Deno serves an `export default { fetch }` entry
//                       through Deno.serve (deleted here at once)
//   EDGEWAY_POOL=1      pre-booted: wait for an assignment (deleted at once)
//
// 1. Connects to the gateway's control socket *before* any user code runs.
//    The gateway accepts exactly one connection and removes the socket file,
//    so user code can neither reach nor forge this channel.
// 2. Installs EdgeRuntime.waitUntil and replaces Deno.serve: the first call
//    serves at once on the worker's socket and returns the real server
//    (finished, shutdown, addr), calling the function's onListen. Deno.serve
//    (handler), Deno.serve(options, handler), Deno.serve({handler}) and
//    `export default { fetch }` all work unchanged.
// 3. Reports "ready" when the socket is bound: from onListen, or, for a
//    node:http server, when the gateway has seen the socket bound and says
//    "serving".
//
// Control protocol (one line each, ASCII, at most 64 bytes with the newline;
// the gateway kills a worker that sends anything else):
//   worker -> gateway: "ready", "bg <pending tasks>", "pong <id> <pending tasks>",
//                      "pooled" (pre-booted, first line, then nothing until "ready")
//   gateway -> worker: "serving", "ping <id>", "beforeunload <reason>", "drain",
//                      "terminate", "abort <seq>" (see "request aborts" below)
//
// User code runs in this same isolate and may patch any prototype. Every
// primitive the control channel uses is therefore bound here, before the
// user's module is evaluated: the connection's read and write, the encoder,
// typed-array and array methods, promise methods, Deno.exit and the
// event dispatch. A later patch of Conn.prototype.write (reachable from any
// connection the function opens) never sees the control connection, and
// the lines sent are built from integers only.

const uncurry = Function.prototype.bind.bind(Function.prototype.call);
const FunctionPrototypeBind = uncurry(Function.prototype.bind);
const ArrayPrototypePush = uncurry(Array.prototype.push);
const ArrayPrototypeShift = uncurry(Array.prototype.shift);
const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype);
const TypedArrayPrototypeSubarray = uncurry(TypedArrayPrototype.subarray);
const TypedArrayPrototypeGetLength = uncurry(
  Object.getOwnPropertyDescriptor(TypedArrayPrototype, "length").get,
);
const PromisePrototypeThen = uncurry(Promise.prototype.then);
const PromiseResolve = FunctionPrototypeBind(Promise.resolve, Promise);
const PromiseAllSettled = FunctionPrototypeBind(Promise.allSettled, Promise);
const StringFromCharCode = String.fromCharCode;
const Uint8ArrayCtor = Uint8Array;
const EventCtor = Event;
const CustomEventCtor = CustomEvent;
const dispatchEvent = FunctionPrototypeBind(globalThis.dispatchEvent, globalThis);
const consoleError = FunctionPrototypeBind(console.error, console);
const exit = Deno.exit;
const addSignalListener = Deno.addSignalListener;
const envGet = FunctionPrototypeBind(Deno.env.get, Deno.env);
const envDelete = FunctionPrototypeBind(Deno.env.delete, Deno.env);
const encode = FunctionPrototypeBind(TextEncoder.prototype.encode, new TextEncoder());

const ctlPath = envGet("EDGEWAY_CONTROL") ?? "";
const serveAddress = envGet("DENO_SERVE_ADDRESS") ?? "";
envDelete("EDGEWAY_CONTROL");
envDelete("DENO_AUTO_SERVE");
if (ctlPath === "" || serveAddress.slice(0, 5) !== "unix:") {
  consoleError("edgeway bootstrap: EDGEWAY_CONTROL and DENO_SERVE_ADDRESS=unix:<path> are required");
  exit(1);
}
const sockPath = serveAddress.slice(5);
let nodeServer = envGet("EDGEWAY_NODE_SERVER") === "1";
envDelete("EDGEWAY_NODE_SERVER");
const pooled = envGet("EDGEWAY_POOL") === "1";
envDelete("EDGEWAY_POOL");

// ---- console: levels and request ids ----
// What a function prints through console.log/info/debug/warn/error starts
// with a tag the gateway's log writer (lifecycle/logwriter.go) parses and
// strips: "\x1e" <token> <level> <request id> <"\x1f", or "\x1d" before
// console's separator space>; it ends with " \x1c" (see printTagged). The
// level is the method's (debug, info, warn, error: console.error is an
// error, as on Supabase); the request id is that of the request whose
// handler (or whatever it started: promises, timers) printed the line,
// read from the x-request-id header the gateway sets, when EDGEWAY_CONSOLE
// ends in "+rid" (--worker-request-context). The token is random per worker and leaves
// the environment here, before the function's code runs: a line the
// function writes to Deno.stdout itself is logged untagged (the stream's
// level, no request id). What a function prints is its own to label: it
// can print under any of its own requests' ids (it sees them), never under
// another function's or worker's (those fields are the gateway's).
const consoleSpec = envGet("EDGEWAY_CONSOLE") ?? "";
envDelete("EDGEWAY_CONSOLE");
const consoleTag = consoleSpec.length >= 16 ? "\x1e" + consoleSpec.slice(0, 16) : "";
const ReflectApply = Reflect.apply;
// The request context: Deno's own async context variable (what its
// node:async_hooks AsyncLocalStorage is built on) when this Deno has it,
// since importing node:async_hooks loads Deno's Node layer, about 7 ms of
// CPU at every worker's boot; AsyncLocalStorage otherwise.
// storeRun(store, value, fn, ...args) runs fn in value's context;
// storeGet(store) reads the context's value.
let requestStore = null;
let storeRun = null;
let storeGet = null;
if (consoleTag !== "" && consoleSpec.slice(16) === "+rid") {
  let core;
  try {
    core = Deno[Deno.internal]?.core;
  } catch {
    core = undefined;
  }
  const AsyncVariable = core?.AsyncVariable;
  const setAsyncContext = core?.setAsyncContext;
  if (
    typeof AsyncVariable === "function" && typeof setAsyncContext === "function" &&
    typeof AsyncVariable.prototype.enter === "function" && typeof AsyncVariable.prototype.get === "function"
  ) {
    const enter = uncurry(AsyncVariable.prototype.enter);
    requestStore = new AsyncVariable();
    storeGet = uncurry(AsyncVariable.prototype.get);
    storeRun = (store, value, fn, ...args) => {
      const previous = enter(store, value);
      try {
        return ReflectApply(fn, undefined, args);
      } finally {
        setAsyncContext(previous);
      }
    };
  } else {
    const { AsyncLocalStorage } = await import("node:async_hooks");
    requestStore = new AsyncLocalStorage();
    storeRun = uncurry(AsyncLocalStorage.prototype.run);
    storeGet = uncurry(AsyncLocalStorage.prototype.getStore);
  }
}
const ArrayPrototypeUnshift = uncurry(Array.prototype.unshift);
const StringPrototypeCharCodeAt = uncurry(String.prototype.charCodeAt);
const StringPrototypeIncludes = uncurry(String.prototype.includes);
const RequestPrototypeHeaders = uncurry(Object.getOwnPropertyDescriptor(Request.prototype, "headers").get);
const HeadersGet = uncurry(Headers.prototype.get);
const WeakMapGet = uncurry(WeakMap.prototype.get);
const WeakMapSet = uncurry(WeakMap.prototype.set);

// requestIDOf is the request's x-request-id when the tag may carry it
// (1-128 printable ASCII bytes, no '%', which console would read as a
// format), else "".
function requestIDOf(req) {
  let id;
  try {
    id = HeadersGet(RequestPrototypeHeaders(req), "x-request-id");
  } catch {
    return "";
  }
  if (typeof id !== "string" || id.length === 0 || id.length > 128) return "";
  for (let i = 0; i < id.length; i++) {
    const c = StringPrototypeCharCodeAt(id, i);
    if (c < 0x21 || c > 0x7e || c === 0x25) return "";
  }
  return id;
}

// failedRequests maps an error a handler threw (or rejected with) to its
// request, for the "uncaught error" line Deno's onError prints outside the
// request's context.
const failedRequests = new WeakMap();
function noteFailure(err, req) {
  if (requestStore !== null && err !== null && (typeof err === "object" || typeof err === "function")) {
    WeakMapSet(failedRequests, err, req);
  }
}

function tagFor(level, req) {
  return consoleTag + level + (req === undefined ? "" : requestIDOf(req));
}

// printTagged prints args through console method print with the tag and,
// as a last argument, the end mark "\x1c" (which console prints after a
// space), announced by the level's upper-case letter: the log writer takes
// the lines up to it as one event, however the pipe splits them. A format
// string as first argument could take that argument for one of its
// directives: then there is no end mark (the event is the lines of the
// write).
const withEndMark = Object.freeze({ __proto__: null, d: "D", i: "I", w: "W", e: "E" });
function printTagged(print, level, req, args) {
  if (args.length > 0 && typeof args[0] === "string") {
    if (StringPrototypeIncludes(args[0], "%")) {
      args[0] = tagFor(level, req) + "\x1f" + args[0];
    } else {
      args[0] = tagFor(withEndMark[level], req) + "\x1f" + args[0];
      ArrayPrototypePush(args, "\x1c");
    }
  } else {
    ArrayPrototypeUnshift(args, tagFor(withEndMark[level], req) + "\x1d");
    ArrayPrototypePush(args, "\x1c");
  }
  return ReflectApply(print, undefined, args);
}

// logError is the bootstrap's own error line, with the id of req or else
// of the request whose context it runs in (a background task's failure).
function logError(req, ...args) {
  if (consoleTag === "") return ReflectApply(consoleError, undefined, args);
  if (req === undefined && requestStore !== null) req = storeGet(requestStore);
  return printTagged(consoleError, "e", req, args);
}

if (consoleTag !== "") {
  for (const [name, level] of [["log", "i"], ["info", "i"], ["debug", "d"], ["warn", "w"], ["error", "e"]]) {
    const print = FunctionPrototypeBind(console[name], console);
    console[name] = function (...args) {
      return printTagged(print, level, requestStore === null ? undefined : storeGet(requestStore), args);
    };
  }
}
// ---- end console ----

// Deno runs a preload's event loop until nothing keeps it alive before it
// evaluates the entry, so the control connection is unref'd: it never
// holds up the entry. The function's server is what keeps the worker
// alive; one that never serves exits and fails its boot. (No timer is
// touched here either: Deno loads its timers lazily, a few milliseconds
// on every boot.)
// A pre-booted worker keeps it referenced until its entry is imported: the
// wait for the assignment is what keeps it alive.
const ctl = await Deno.connect({ transport: "unix", path: ctlPath });
if (!pooled) ctl.unref();
const ctlWrite = FunctionPrototypeBind(ctl.write, ctl);
const ctlRead = FunctionPrototypeBind(ctl.read, ctl);

// Lines are queued and written in order by one flush loop at a time.
const queue = [];
let flushing = false;
function send(line) {
  ArrayPrototypePush(queue, encode(line + "\n"));
  if (!flushing) flush();
}
async function flush() {
  flushing = true;
  try {
    while (queue.length > 0) {
      const bytes = ArrayPrototypeShift(queue);
      const len = TypedArrayPrototypeGetLength(bytes);
      let off = 0;
      while (off < len) off += await ctlWrite(TypedArrayPrototypeSubarray(bytes, off));
    }
  } catch {
    exit(1);
  }
  flushing = false;
}

// Background tasks: the count travels over the control channel; pongs carry
// it too, so the gateway can confirm "no pending tasks" in order with pings.
// The count is a plain integer each registration decrements exactly once.
let pendingTasks = 0;
const tasks = new Set();
const SetPrototypeAdd = uncurry(Set.prototype.add);
const SetPrototypeDelete = uncurry(Set.prototype.delete);
globalThis.EdgeRuntime = Object.freeze({
  waitUntil(promise) {
    if (!promise || typeof promise.then !== "function") return promise;
    SetPrototypeAdd(tasks, promise);
    pendingTasks++;
    send("bg " + pendingTasks);
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      SetPrototypeDelete(tasks, promise);
      pendingTasks--;
      send("bg " + pendingTasks);
    };
    PromisePrototypeThen(PromiseResolve(promise), done, (err) => {
      logError(undefined, "background task failed:", err);
      done();
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

// ---- integrity: request aborts ("abort <seq>" from the gateway) ----
// A client that hangs up before its response starts aborts the request's
// signal, as with plain Deno. On its own worker connection the gateway just
// closes it; on a pipelined one (requests of other clients queued behind)
// it sends "abort <seq>" instead, seq being the request's x-edgeway-seq
// header. req.signal, as the function reads it, is then
// AbortSignal.any([Deno's signal, ours]), made the first time the function
// reads it (or when the abort comes): a request that never looks at its
// signal costs a Set add and delete (measured 0.1 µs; 0.2 µs for an async
// handler), and headers are read only when an abort comes. Everything is
// bound before user code runs.
const abortsInFlight = new Set();
const abortStates = new WeakMap();
const SetPrototypeHas = uncurry(Set.prototype.has);
const SetPrototypeForEach = uncurry(Set.prototype.forEach);
const WeakMapPrototypeGet = uncurry(WeakMap.prototype.get);
const WeakMapPrototypeSet = uncurry(WeakMap.prototype.set);
const AbortControllerCtor = AbortController;
const AbortControllerPrototypeAbort = uncurry(AbortController.prototype.abort);
const AbortControllerPrototypeGetSignal = uncurry(
  Object.getOwnPropertyDescriptor(AbortController.prototype, "signal").get,
);
const AbortSignalAny = FunctionPrototypeBind(AbortSignal.any, AbortSignal);
const RequestPrototypeGetSignal = uncurry(Object.getOwnPropertyDescriptor(Request.prototype, "signal").get);
const RequestPrototypeGetHeaders = uncurry(Object.getOwnPropertyDescriptor(Request.prototype, "headers").get);
const HeadersPrototypeGet = uncurry(Headers.prototype.get);
const PromiseCtor = Promise;

function abortState(req) {
  let st = WeakMapPrototypeGet(abortStates, req);
  if (st === undefined) {
    const controller = new AbortControllerCtor();
    st = { controller, signal: AbortSignalAny([RequestPrototypeGetSignal(req), AbortControllerPrototypeGetSignal(controller)]) };
    WeakMapPrototypeSet(abortStates, req, st);
  }
  return st;
}

Object.defineProperty(Request.prototype, "signal", {
  configurable: true,
  enumerable: true,
  get() {
    if (!SetPrototypeHas(abortsInFlight, this) && WeakMapPrototypeGet(abortStates, this) === undefined) {
      return RequestPrototypeGetSignal(this);
    }
    return abortState(this).signal;
  },
});

// trackAborts wraps the served handler: a request is abortable while the
// handler has not settled (after that the response is on its way and the
// gateway never asks).
function trackAborts(handler) {
  return (req, info) => {
    SetPrototypeAdd(abortsInFlight, req);
    let out;
    try {
      out = handler(req, info);
    } catch (err) {
      SetPrototypeDelete(abortsInFlight, req);
      noteFailure(err, req);
      throw err;
    }
    if (out instanceof PromiseCtor) {
      const done = () => {
        SetPrototypeDelete(abortsInFlight, req);
      };
      const failed = requestStore === null ? done : (err) => {
        done();
        noteFailure(err, req);
      };
      PromisePrototypeThen(out, done, failed);
    } else {
      SetPrototypeDelete(abortsInFlight, req);
    }
    return out;
  };
}

// abortRequest aborts the signal of the request in flight whose
// x-edgeway-seq is seq (digits only; anything else is ignored). Control
// lines "abort <seq>" come here.
function abortRequest(seq) {
  if (seq.length === 0) return;
  for (let i = 0; i < seq.length; i++) {
    if (seq[i] < "0" || seq[i] > "9") return;
  }
  let found;
  SetPrototypeForEach(abortsInFlight, (req) => {
    if (found === undefined && HeadersPrototypeGet(RequestPrototypeGetHeaders(req), "x-edgeway-seq") === seq) found = req;
  });
  if (found === undefined) return;
  try {
    AbortControllerPrototypeAbort(abortState(found).controller);
  } catch (err) {
    logError(undefined, "abort listener failed:", err);
  }
}

// ---- end integrity: request aborts ----

// wrapHandler is the one place the function's handler is wrapped before it
// serves (Deno.serve and `export default { fetch }` both come through here;
// a node:http server is served by Deno's node layer and does not).
//
// A handler that declares no parameters keeps Deno's fast path: Deno 2.9
// picks it by the handler's length and then, for a plain request, calls the
// handler without building a Request, its info or our ConnInfo (nor tracking
// aborts: without the request there is no signal to abort). The wrapper is
// therefore zero-length too and forwards whatever Deno passes, as Deno
// itself does for such a handler. Measured on `() => new Response(...)`
// (bench/workercpu.py, paired interleaved rounds, Deno CPU per request):
// 9.80 -> 9.65 µs at ~50,000 req/s (paired median -0.43 µs; Deno direct
// 9.36), 26.4 -> 24.6 µs at 6,500 req/s (-1.5 µs; direct 23.7).
//
// With --worker-request-context the handler runs in its request's
// AsyncLocalStorage context (console lines carry the request id); the
// zero-parameter fast path has no request, so its lines carry none.
function wrapHandler(handler) {
  const tracked = trackAborts((req, info) => handler(req, new ConnInfo(req, info)));
  const wrapped = requestStore === null ? tracked : (req, info) => storeRun(requestStore, req, tracked, req, info);
  if (handler.length !== 0) return wrapped;
  return function () {
    return arguments.length === 0 ? handler() : wrapped(arguments[0], arguments[1]);
  };
}

// Deno's and Supabase's answer to an uncaught handler error.
function defaultOnError(err) {
  let req;
  if (err !== null && (typeof err === "object" || typeof err === "function")) req = WeakMapGet(failedRequests, err);
  logError(req, "uncaught error in function handler:", err);
  return new Response("Internal Server Error", { status: 500 });
}

// Readiness: reported once, when the worker's socket is bound (onListen,
// or "serving" from the gateway for a node:http server, which Deno moves
// onto the socket and which reports nothing here). The serve address is
// then taken, so it leaves the environment: a later server (and a child
// process) does not inherit it.
let ready = false;
function announceReady() {
  if (ready) return;
  ready = true;
  envDelete("DENO_SERVE_ADDRESS");
  send("ready");
}

// Deno.serve: the first call serves on the worker's socket right away and
// returns the real server, whatever address its options name (TLS options
// are left out: the gateway speaks plain HTTP to its workers). A worker
// serves one handler: a later call logs and returns the same server.
const realServe = Deno.serve;
let server = null;
let serverShutdown = null;
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
  if (server !== null) {
    consoleError("edgeway: Deno.serve called again; a worker serves its first handler only");
    return server;
  }
  const onListen = options.onListen;
  server = realServe(
    {
      path: sockPath,
      signal: options.signal,
      onError: typeof options.onError === "function" ? options.onError : defaultOnError,
      onListen(addr) {
        announceReady();
        if (typeof onListen === "function") onListen(addr);
      },
    },
    wrapHandler(handler),
  );
  serverShutdown = FunctionPrototypeBind(server.shutdown, server);
  return server;
};

// node:http servers: Deno moves the first one onto the worker's socket, and
// its server.address() is then null (a Unix address), where fastify and
// @hono/node-server read the port as soon as they listen and throw. For a
// server moved there, address() answers with the loopback address and the
// port the function asked for, as on a TCP listen. Loading node:http costs
// ~20 ms of boot, so the gateway asks for this (EDGEWAY_NODE_SERVER) only
// for functions whose code can reach Node's modules.
async function patchNodeServer() {
  const http = await import("node:http");
  const ServerPrototype = http.Server.prototype;
  const listen = uncurry(ServerPrototype.listen);
  const address = uncurry(ServerPrototype.address);
  const requestedPorts = new WeakMap();
  const WeakMapPrototypeSetPort = uncurry(WeakMap.prototype.set);
  const WeakMapPrototypeGetPort = uncurry(WeakMap.prototype.get);
  const requestedPort = (a) => {
    if (typeof a === "number") return a;
    if (typeof a === "string" && a !== "" && !Number.isNaN(Number(a))) return Number(a);
    if (a !== null && typeof a === "object" && a.port !== undefined) return Number(a.port) || 0;
    return 0;
  };
  ServerPrototype.listen = function (...args) {
    WeakMapPrototypeSetPort(requestedPorts, this, requestedPort(args[0]));
    return listen(this, ...args);
  };
  ServerPrototype.address = function () {
    const addr = address(this);
    if (addr !== null || !this.listening) return addr;
    return { address: "127.0.0.1", family: "IPv4", port: WeakMapPrototypeGetPort(requestedPorts, this) ?? 0 };
  };
}
if (nodeServer) await patchNodeServer();

// "terminate" on the control channel (or SIGTERM): finish in-flight
// requests and background tasks, then exit. The gateway only asks a drained
// worker and kills it after its grace period. The control message comes in
// order after "drain", so drain listeners have run before the shutdown.
let terminating = false;
async function terminate() {
  if (terminating) return;
  terminating = true;
  if (serverShutdown !== null) await serverShutdown();
  await PromiseAllSettled([...tasks]);
  exit(0);
}
addSignalListener("SIGTERM", terminate);

// Lifecycle events, as Supabase's edge runtime dispatches them: beforeunload
// (cancelable, detail.reason) before a planned stop, drain when a retired
// worker has answered everything. A listener that throws is the function's
// own problem, never the control loop's.
const unloadReasons = ["cpu", "memory", "wall_clock", "idle", "termination"];
function dispatchLifecycle(event) {
  try {
    dispatchEvent(event);
  } catch (err) {
    logError(undefined, "lifecycle event listener failed:", err);
  }
}

// Control reader: exit when the gateway goes away. Lines are parsed byte by
// byte (no string or regexp methods a function could patch). first holds
// bytes already read (after a pre-booted worker's assignment).
async function controlLoop(first) {
  const buf = new Uint8ArrayCtor(4096);
  let line = "";
  let overlong = false;
  let pending = first;
  for (;;) {
    let n;
    let bytes = buf;
    if (pending !== null && TypedArrayPrototypeGetLength(pending) > 0) {
      bytes = pending;
      n = TypedArrayPrototypeGetLength(pending);
      pending = null;
    } else {
      try {
        n = await ctlRead(buf);
      } catch {
        n = null;
      }
    }
    if (n === null) exit(1);
    for (let i = 0; i < n; i++) {
      const b = bytes[i];
      if (b !== 10) {
        if (line.length < 64) line += StringFromCharCode(b);
        else overlong = true;
        continue;
      }
      if (!overlong) handleLine(line);
      line = "";
      overlong = false;
    }
  }
}
if (!pooled) controlLoop(null);

// handleLine is the one place control lines from the gateway are
// dispatched: "<command>" or "<command> <argument>".
function handleLine(line) {
  let sp = 0;
  while (sp < line.length && line[sp] !== " ") sp++;
  let command = "";
  for (let i = 0; i < sp; i++) command += line[i];
  let arg = "";
  for (let i = sp + 1; i < line.length; i++) arg += line[i];
  switch (command) {
    case "serving":
      if (sp === line.length) announceReady();
      return;
    case "ping": {
      // The id is echoed only as digits.
      if (arg.length === 0) return;
      for (let i = 0; i < arg.length; i++) {
        if (arg[i] < "0" || arg[i] > "9") return;
      }
      send("pong " + arg + " " + pendingTasks);
      return;
    }
    case "beforeunload":
      for (let i = 0; i < unloadReasons.length; i++) {
        if (arg === unloadReasons[i]) {
          dispatchLifecycle(new CustomEventCtor("beforeunload", { cancelable: true, detail: { reason: arg } }));
          return;
        }
      }
      return;
    case "drain":
      if (sp === line.length) dispatchLifecycle(new EventCtor("drain"));
      return;
    case "terminate":
      if (sp === line.length) terminate();
      return;
    case "abort": // integrity: request aborts
      abortRequest(arg);
      return;
  }
}

// ---- pre-booted worker: the assignment ----
// maxAssignment bounds the assignment's JSON (the function's environment).
const maxAssignment = 4 << 20;

// readAssignment reads "assign <n>\n" and n bytes; anything after them is
// returned for the control loop. A broken assignment ends the process (the
// gateway fails the boot and spawns fresh).
async function readAssignment() {
  let have = new Uint8ArrayCtor(4096);
  let len = 0;
  let headerEnd = -1;
  let size = -1;
  for (;;) {
    if (headerEnd < 0) {
      for (let i = 0; i < len; i++) {
        if (have[i] === 10) {
          headerEnd = i;
          break;
        }
      }
      if (headerEnd < 0 && len > 64) exit(1);
      if (headerEnd >= 0) {
        let header = "";
        for (let i = 0; i < headerEnd; i++) header += StringFromCharCode(have[i]);
        if (header.slice(0, 7) !== "assign ") exit(1);
        size = Number(header.slice(7));
        if (!Number.isInteger(size) || size < 2 || size > maxAssignment) exit(1);
      }
    }
    if (headerEnd >= 0 && len >= headerEnd + 1 + size) break;
    if (len === TypedArrayPrototypeGetLength(have)) {
      const bigger = new Uint8ArrayCtor(len * 2);
      bigger.set(have);
      have = bigger;
    }
    let n;
    try {
      n = await ctlRead(TypedArrayPrototypeSubarray(have, len));
    } catch {
      n = null;
    }
    if (n === null) exit(1);
    len += n;
  }
  const body = TypedArrayPrototypeSubarray(have, headerEnd + 1, headerEnd + 1 + size);
  const rest = TypedArrayPrototypeSubarray(have, headerEnd + 1 + size, len);
  return { assignment: JSON.parse(new TextDecoder().decode(body)), rest };
}

// applyEnvironment leaves exactly the function's variables (as far as the
// worker's env permission lets it see any): the boot environment's other
// variables are deleted, the function's set. The serve address stays until
// the socket is bound (announceReady).
// What Deno itself adds at boot stays, as in a fresh worker: its Node
// shim marker, and its node_compat_bin folder first on PATH.
function applyEnvironment(env) {
  let current = {};
  try {
    current = Deno.env.toObject();
  } catch {
    // a scoped --allow-env: nothing else is visible anyway
  }
  const path = current.PATH ?? "";
  const first = path.split(":")[0];
  if (first.endsWith("/node_compat_bin")) {
    env = { ...env, PATH: Object.hasOwn(env, "PATH") ? first + ":" + env.PATH : path };
  }
  for (const k of Object.keys(current)) {
    if (k !== "DENO_SERVE_ADDRESS" && k !== "DENO_NODE_SHIM_ACTIVE" && !Object.hasOwn(env, k)) {
      try {
        envDelete(k);
      } catch {
        // not ours to touch
      }
    }
  }
  for (const k of Object.keys(env)) {
    try {
      Deno.env.set(k, env[k]);
    } catch {
      // outside the worker's env grant: it could not read it anyway
    }
  }
}

// warmUp runs one request through Deno.serve on the worker's own socket,
// before a pre-booted worker says "pooled": Deno compiles its HTTP
// server's and the fetch classes' code (and ours) on first use, which a
// cold start would otherwise pay on its first request (about 1.5 ms on a
// 2-core box; the warm-up costs the pool's boot 8-10 ms). No user code is
// loaded yet. The socket file must be gone after: the gateway takes a
// bound socket for a node:http server that has started.
async function warmUp() {
  const warm = realServe(
    { path: sockPath, onListen() {}, onError: defaultOnError },
    wrapHandler(async (req) => {
      await req.text();
      return new Response("warm", { headers: { "content-type": "text/plain" } });
    }),
  );
  try {
    const conn = await Deno.connect({ transport: "unix", path: sockPath });
    try {
      await conn.write(encode(
        "POST /warm?x=1 HTTP/1.1\r\nhost: localhost\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n" +
          "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-request-id: warm\r\n\r\nwarm",
      ));
      const buf = new Uint8ArrayCtor(1024);
      let got = "";
      while (!StringPrototypeIncludes(got, "\r\n\r\nwarm")) {
        const n = await conn.read(buf);
        if (n === null) break;
        for (let i = 0; i < n; i++) got += StringFromCharCode(buf[i]);
      }
    } finally {
      conn.close();
    }
  } finally {
    await warm.shutdown();
    try {
      Deno.removeSync(sockPath); // Deno 2.9 removes it at shutdown already
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

if (pooled) {
  try {
    await warmUp();
  } catch (err) {
    consoleError("edgeway bootstrap: warm-up failed:", err);
    exit(1);
  }
  send("pooled");
  const { assignment, rest } = await readAssignment();
  applyEnvironment(assignment.env ?? {});
  try {
    Deno.chdir(assignment.dir);
  } catch {
    // the folder stays readable through its slot all the same
  }
  if (assignment.node === true && !nodeServer) {
    nodeServer = true;
    await patchNodeServer();
  }
  ctl.unref();
  controlLoop(rest);
  const mod = await import(assignment.entry);
  // As DENO_AUTO_SERVE does for a main module: `export default { fetch }`.
  const def = mod.default;
  if (def !== null && typeof def === "object" && typeof def.fetch === "function") {
    const onListen = typeof def.onListen === "function" ? def.onListen : undefined;
    Deno.serve({ onListen, handler: (req, info) => def.fetch(req, info) });
  }
}
