// Uses shared code and reads a query parameter.
import { corsHeaders } from "../_shared/cors.ts";

Deno.serve((req: Request) => {
  const name = new URL(req.url).searchParams.get("name") ?? "world";
  return Response.json({ greeting: `Hello, ${name}!` }, { headers: corsHeaders });
});
