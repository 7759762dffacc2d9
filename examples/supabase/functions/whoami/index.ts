// Needs a valid JWT (verify_jwt is on by default). The gateway verified the
// token and passes its claims as base64url JSON in x-auth-claims.
Deno.serve((req: Request) => {
  const raw = req.headers.get("x-auth-claims") ?? "";
  const json = atob(raw.replace(/-/g, "+").replace(/_/g, "/"));
  return Response.json({ claims: JSON.parse(json || "{}") });
});
