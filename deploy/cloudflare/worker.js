// Cloudflare Worker in front of the gateway's Hugging Face Space (or any host).
// Every path is forwarded with an /hf prefix: /v1/chat/completions -> /hf/v1/chat/completions,
// /v1beta/models/x:generateContent -> /hf/v1beta/models/x:generateContent. Method, headers, body and
// query go through untouched; the response (streams included) is returned as it arrives.
// Set GATEWAY_ORIGIN (e.g. https://user-space.hf.space) as a Worker variable.

export default {
  async fetch(request, env) {
    const origin = (env.GATEWAY_ORIGIN || "").replace(/\/+$/, "");
    if (!origin) {
      return new Response(JSON.stringify({ error: { message: "GATEWAY_ORIGIN is not set", type: "config_error" } }),
        { status: 500, headers: { "content-type": "application/json" } });
    }
    const url = new URL(request.url);
    const path = url.pathname.startsWith("/hf/") || url.pathname === "/hf" ? url.pathname : "/hf" + url.pathname;
    const target = origin + path + url.search;
    const init = {
      method: request.method,
      headers: request.headers,
      body: ["GET", "HEAD"].includes(request.method) ? undefined : request.body,
      redirect: "manual",
    };
    return fetch(new Request(target, init));
  },
};
