// The smallest function: Deno.serve with a handler.
Deno.serve((_req: Request) => new Response("Hello from edgeway!\n"));
