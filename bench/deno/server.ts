// Deno direct / nginx upstream server: the benchmark handlers in one process,
// routed by the first path segment (/hello, /echo, /cpu, /stream, /f00 ...).
// Usage: deno run -A server.ts tcp:127.0.0.1:PORT | unix:/path/to.sock
import { handlerFor, handlers } from "./handlers.ts";

const where = Deno.args[0] ?? "tcp:127.0.0.1:8000";
const cache = new Map<string, (req: Request) => Response | Promise<Response>>();

function route(req: Request): Response | Promise<Response> {
  const url = req.url;
  // Path starts after "scheme://host"; avoid new URL() per request.
  const start = url.indexOf("/", url.indexOf("//") + 2);
  let end = start + 1;
  while (end < url.length && url[end] !== "/" && url[end] !== "?") end++;
  const name = url.slice(start + 1, end);
  let h = cache.get(name);
  if (!h) {
    h = name in handlers || /^f\d+$/.test(name) || name.startsWith("cold") ? handlerFor(name) : notFound;
    cache.set(name, h);
  }
  return h(req);
}

function notFound(): Response {
  return new Response("not found\n", { status: 404 });
}

const onListen = () => console.log("listening", where);
if (where.startsWith("unix:")) {
  const path = where.slice(5);
  try {
    Deno.removeSync(path);
  } catch { /* not there */ }
  Deno.serve({ path, onListen }, route);
} else {
  const hp = where.replace(/^tcp:/, "");
  const i = hp.lastIndexOf(":");
  Deno.serve({ hostname: hp.slice(0, i), port: Number(hp.slice(i + 1)), onListen }, route);
}
