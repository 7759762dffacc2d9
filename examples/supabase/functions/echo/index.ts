// Echoes method, path, query, headers and body back as JSON (or the raw body
// for binary uploads). Uses the `export default { fetch }` style.
export default {
  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const type = req.headers.get("content-type") ?? "";
    if (req.method === "POST" && !type.includes("json") && !type.startsWith("text/")) {
      return new Response(req.body, { headers: { "content-type": type || "application/octet-stream" } });
    }
    return Response.json({
      method: req.method,
      url: req.url,
      path: url.pathname,
      query: url.search,
      headers: Object.fromEntries(req.headers),
      body: req.method === "GET" || req.method === "HEAD" ? null : await req.text(),
    });
  },
};
