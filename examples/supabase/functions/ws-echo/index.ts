// A WebSocket echo: the gateway checks the upgrade like any request, then
// splices the connection to this worker. Shared code by bare specifier
// (edgeway maps every `_` folder module in a generated import map).
import { corsHeaders } from "_shared/cors.ts";

Deno.serve((req: Request) => {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("connect with a WebSocket client\n", { status: 426, headers: corsHeaders });
  }
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = (e) => socket.send(`echo: ${e.data}`);
  return response;
});
