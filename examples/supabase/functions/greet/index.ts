// Uses shared code, answers its own CORS preflight (as on Supabase) and reads
// a query parameter.
import { corsHeaders } from "../_shared/cors.ts";

Deno.serve((req: Request) => {
  if (req.method === "OPTIONS") {
    return new Response("ok", { headers: corsHeaders });
  }
  const name = new URL(req.url).searchParams.get("name") ?? "world";
  return Response.json({ greeting: `Hello, ${name}!` }, { headers: corsHeaders });
});
