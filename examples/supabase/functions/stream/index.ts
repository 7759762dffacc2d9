// Server-sent events: five events, 200 ms apart, each flushed on its own.
Deno.serve({ onListen() {} }, (_req: Request) => {
  const enc = new TextEncoder();
  let n = 0;
  const body = new ReadableStream({
    async pull(controller) {
      if (n === 5) return controller.close();
      if (n > 0) await new Promise((r) => setTimeout(r, 200));
      n++;
      controller.enqueue(enc.encode(`id: ${n}\ndata: {"tick":${n}}\n\n`));
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
});
