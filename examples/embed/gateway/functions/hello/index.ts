// The caller's claims arrive as base64url JSON in X-Auth-Claims, put there
// by the host's authenticator (or a verified JWT with the binary).
Deno.serve((req) => {
  const raw = req.headers.get("x-auth-claims");
  const claims = raw ? JSON.parse(atob(raw.replaceAll("-", "+").replaceAll("_", "/"))) : {};
  return Response.json({ message: `Hello, ${claims.sub ?? "stranger"}!`, role: claims.role ?? null });
});
