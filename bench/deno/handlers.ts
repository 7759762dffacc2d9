// Benchmark handlers: the one piece of Deno code every stack runs.
// Deno direct and nginx→Deno load it through server.ts (one process, routed
// by the first path segment); edgeway loads it once per function folder
// (functions/<name>/index.ts → Deno.serve(handlerFor("<name>"))).

const HELLO = "Hello, World!\n";

// ~1 ms of pure JS work on this 2-core VM (calibrated once; fixed so that
// every stack does exactly the same work per request).
const CPU_ITERATIONS = 700_000;

function burn(): number {
  let x = 2166136261;
  for (let i = 0; i < CPU_ITERATIONS; i++) {
    x ^= i & 0xff;
    x = Math.imul(x, 16777619);
  }
  return x >>> 0;
}

// mixed: one function with a fast path (answers at once) and a slow one
// (awaits MIXED_SLOW_MS before answering), e.g. a cache hit and a call to a
// slow API: does a slow request delay the fast ones queued behind it?
const MIXED_SLOW_MS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const STREAM_CHUNKS = 5;
const STREAM_CHUNK = new TextEncoder().encode("x".repeat(511) + "\n");

export type Handler = (req: Request) => Response | Promise<Response>;

export const handlers: Record<string, Handler> = {
  hello: () => new Response(HELLO),
  echo: async (req) => {
    const body = await req.arrayBuffer();
    return new Response(body, { headers: { "content-type": "application/octet-stream" } });
  },
  cpu: () => new Response(`cpu ${burn()}\n`),
  mixed: async (req) => {
    if (req.url.endsWith("/slow")) {
      await sleep(MIXED_SLOW_MS);
      return new Response("slow\n");
    }
    return new Response("fast\n");
  },
  stream: () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // One chunk per pull: a chunked response of STREAM_CHUNKS pieces
        // (no timers, so the scenario measures streaming, not sleeping).
        controller.enqueue(STREAM_CHUNK);
        if (++sent === STREAM_CHUNKS) controller.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  },
  // WebSocket echo: every message goes back as it came, text or binary.
  ws: (req) => {
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("websocket only\n", { status: 426 });
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer"; // no Blob per message
    socket.onmessage = (e) => socket.send(e.data);
    return response;
  },
};

/** The handler a function folder or a path segment named `name` runs. */
export function handlerFor(name: string): Handler {
  // f00..f99 (round-robin / soak functions) and cold* are plain hello.
  return handlers[name] ?? handlers.hello;
}

export { burn };
