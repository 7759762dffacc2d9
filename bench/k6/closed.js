// k6 closed-loop reference run of bench/bench.py (BENCH_K6=1): every VU sends
// one request, waits for the answer, sends the next. VUs and duration come
// from the command line (bench.py: --vus BENCH_CONNS --duration BENCH_DURATION),
// the summary from --summary-export.
//
//   k6 run --vus 64 --duration 10s -e BASE=http://127.0.0.1:8080 bench/k6/closed.js
//
// Environment (-e NAME=value):
//   BASE       scheme://host:port of the stack (default http://127.0.0.1:8080)
//   PATHS      comma-separated paths, round-robin per VU (default /hello).
//              Not "PATH": k6 passes the shell's variables through __ENV.
//   METHOD     default GET
//   BODY_FILE  file sent as the request body (application/octet-stream)
import http from "k6/http";

const BASE = __ENV.BASE || "http://127.0.0.1:8080";
const PATHS = (__ENV.PATHS || "/hello").split(",").filter((p) => p);
const METHOD = __ENV.METHOD || "GET";
const BODY = __ENV.BODY_FILE ? open(__ENV.BODY_FILE, "b") : null;
const params = { headers: { "Content-Type": "application/octet-stream" }, timeout: "10s" };

export default function () {
  http.request(METHOD, BASE + PATHS[__ITER % PATHS.length], BODY, params);
}
