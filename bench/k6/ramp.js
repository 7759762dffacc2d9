// k6 ramp of bench/bench.py (BENCH_K6=1): an open-loop request rate that
// climbs in stages (executor ramping-arrival-rate), with latency, errors and
// dropped iterations per stage, to show how latency grows with load.
//
//   k6 run -e BASE=http://127.0.0.1:8080 -e SUMMARY_JSON=/tmp/ramp.json bench/k6/ramp.js
//
// Environment (-e NAME=value):
//   BASE          scheme://host:port of the stack (default http://127.0.0.1:8080)
//   PATHS         comma-separated paths, round-robin (default /hello). Not "PATH":
//                 k6 passes the shell's variables through __ENV.
//   METHOD        default GET
//   BODY_FILE     file sent as the request body (application/octet-stream)
//   RAMP_STAGES   comma-separated DURATION:RATE stages, as k6's --stage: the rate
//                 (requests/s) goes linearly from the previous stage's RATE (the
//                 first from RAMP_START_RATE) to RATE over DURATION (ms, s or m).
//                 A stage whose RATE equals the previous one holds that rate.
//                 Default: steps of 500, 2000, 4000, 6000 req/s (1 s ramp, 5 s
//                 hold each), then down to 0 in 2 s: 31 s. k6 costs ~90-130 µs
//                 of CPU per request on the 2-core bench box, so ~6-8k req/s is
//                 the most it can send there.
//   RAMP_START_RATE  rate at the start of the first stage (default 0)
//   RAMP_VUS, RAMP_MAX_VUS  VUs allocated before the start / at most (default
//                 64 / 256). A request that is due while every VU waits for an
//                 answer is started by a new VU, up to RAMP_MAX_VUS, and is
//                 dropped after that (dropped_iterations): the stack is not
//                 keeping up.
//   TIMEOUT       per-request timeout (default 10s)
//   SUMMARY_JSON  where to write the per-stage summary (JSON, see handleSummary)
//
// Every request carries the tag stage=<index> of the stage it started in;
// thresholds that always pass (max>=0, count>=0) make k6 keep one submetric
// per stage, which handleSummary reads.
import http from "k6/http";
import exec from "k6/execution";

const BASE = __ENV.BASE || "http://127.0.0.1:8080";
const PATHS = (__ENV.PATHS || "/hello").split(",").filter((p) => p);
const METHOD = __ENV.METHOD || "GET";
const BODY = __ENV.BODY_FILE ? open(__ENV.BODY_FILE, "b") : null;
const DEFAULT_STAGES = "1s:500,5s:500,1s:2000,5s:2000,1s:4000,5s:4000,1s:6000,5s:6000,2s:0";
const START_RATE = parseInt(__ENV.RAMP_START_RATE || "0", 10);
const VUS = parseInt(__ENV.RAMP_VUS || "64", 10);
const MAX_VUS = Math.max(VUS, parseInt(__ENV.RAMP_MAX_VUS || "256", 10));
const TIMEOUT = __ENV.TIMEOUT || "10s";

function durationMs(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s.trim());
  if (!m) throw new Error(`RAMP_STAGES: bad duration ${JSON.stringify(s)} (want e.g. 500ms, 5s, 1m)`);
  return Math.round(parseFloat(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]]);
}

// [{index, from, to, startMs, endMs, durationMs}]
function parseStages(text) {
  const out = [];
  let at = 0;
  let from = START_RATE;
  for (const part of text.split(",").map((x) => x.trim()).filter((x) => x)) {
    const i = part.lastIndexOf(":");
    const to = i > 0 ? parseInt(part.slice(i + 1), 10) : NaN;
    if (!(to >= 0)) throw new Error(`RAMP_STAGES: bad stage ${JSON.stringify(part)} (want DURATION:RATE)`);
    const ms = durationMs(part.slice(0, i));
    out.push({ index: out.length, from, to, startMs: at, endMs: at + ms, durationMs: ms });
    at += ms;
    from = to;
  }
  if (!out.length) throw new Error("RAMP_STAGES is empty");
  return out;
}

const STAGES = parseStages(__ENV.RAMP_STAGES || DEFAULT_STAGES);
// One params object per stage (tags are per request).
const PARAMS = STAGES.map((s) => ({
  headers: { "Content-Type": "application/octet-stream" },
  timeout: TIMEOUT,
  tags: { stage: String(s.index) },
}));

const thresholds = { dropped_iterations: ["count>=0"], "http_reqs{status:0}": ["count>=0"] };
for (const s of STAGES) {
  thresholds[`http_req_duration{stage:${s.index}}`] = ["max>=0"];
  thresholds[`http_reqs{stage:${s.index}}`] = ["count>=0"];
  thresholds[`http_req_failed{stage:${s.index}}`] = ["rate>=0"];
  thresholds[`http_reqs{stage:${s.index},status:0}`] = ["count>=0"];
}

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ["med", "p(95)", "p(99)", "max", "avg"],
  thresholds,
  scenarios: {
    ramp: {
      executor: "ramping-arrival-rate",
      startRate: START_RATE,
      timeUnit: "1s",
      preAllocatedVUs: VUS,
      maxVUs: MAX_VUS,
      stages: STAGES.map((s) => ({ duration: `${s.durationMs}ms`, target: s.to })),
      gracefulStop: TIMEOUT,
    },
  },
};

export default function () {
  // The stage is the one the iteration was started in: the executor starts
  // an iteration when it is due (or drops it), so this is its schedule.
  const elapsed = Date.now() - exec.scenario.startTime;
  let i = 0;
  while (i < STAGES.length - 1 && elapsed >= STAGES[i].endMs) i++;
  const n = exec.scenario.iterationInTest;
  http.request(METHOD, BASE + PATHS[n % PATHS.length], BODY, PARAMS[i]);
}

function values(metrics, name) {
  const m = metrics[name];
  return m && m.values ? m.values : null;
}

function trend(v) {
  if (!v) return null;
  return { p50_ms: v.med, p95_ms: v["p(95)"], p99_ms: v["p(99)"], max_ms: v.max, mean_ms: v.avg };
}

function count(metrics, name) {
  const v = values(metrics, name);
  return v ? v.count || 0 : 0;
}

// Per stage: requests started in it, their latency percentiles and failures
// (http_req_failed: no answer, or status >= 400), and the iterations the
// schedule asked for (integral of the rate: (from+to)/2 × duration). k6
// counts dropped iterations only for the whole run (they never start, so
// they carry no stage tag): `dropped_est` = scheduled - started per stage.
export function handleSummary(data) {
  const M = data.metrics;
  const stages = STAGES.map((s) => {
    const reqs = count(M, `http_reqs{stage:${s.index}}`);
    const failedV = values(M, `http_req_failed{stage:${s.index}}`);
    const scheduled = Math.round(((s.from + s.to) / 2) * (s.durationMs / 1000));
    return {
      index: s.index, from: s.from, to: s.to, start_s: s.startMs / 1000, duration_s: s.durationMs / 1000,
      scheduled, requests: reqs, req_s: s.durationMs ? reqs / (s.durationMs / 1000) : 0,
      failed: failedV ? failedV.passes || 0 : 0,
      socket_errors: count(M, `http_reqs{stage:${s.index},status:0}`),
      dropped_est: Math.max(0, scheduled - reqs),
      ...trend(values(M, `http_req_duration{stage:${s.index}}`)),
    };
  });
  const reqs = values(M, "http_reqs");
  const failed = values(M, "http_req_failed");
  const vusMax = values(M, "vus_max");
  const out = {
    base: BASE, paths: PATHS, method: METHOD, start_rate: START_RATE, vus: VUS, max_vus: MAX_VUS,
    stages,
    overall: {
      requests: reqs ? reqs.count : 0, req_s: reqs ? reqs.rate : 0,
      failed: failed ? failed.passes || 0 : 0, socket_errors: count(M, "http_reqs{status:0}"),
      dropped_iterations: count(M, "dropped_iterations"),
      vus_max: vusMax ? vusMax.max || vusMax.value : null,
      ...trend(values(M, "http_req_duration")),
    },
    test_run_duration_ms: data.state ? data.state.testRunDurationMs : null,
  };
  const f = (x) => (x == null ? "-" : x.toFixed(2));
  const lines = ["stage  rate (req/s)   sent/s  p50 ms  p95 ms  p99 ms  failed  dropped~"];
  for (const s of stages) {
    lines.push(`${String(s.index).padStart(5)}  ${`${s.from}->${s.to}`.padEnd(13)} ${s.req_s.toFixed(0).padStart(7)} `
      + `${f(s.p50_ms).padStart(7)} ${f(s.p95_ms).padStart(7)} ${f(s.p99_ms).padStart(7)} `
      + `${String(s.failed).padStart(7)} ${String(s.dropped_est).padStart(9)}`);
  }
  const o = out.overall;
  lines.push(`overall: ${o.requests} requests, p50 ${f(o.p50_ms)} p95 ${f(o.p95_ms)} p99 ${f(o.p99_ms)} ms, `
    + `${o.failed} failed, ${o.dropped_iterations} dropped iterations, ${o.vus_max} VUs\n`);
  const files = { stdout: lines.join("\n") + "\n" };
  if (__ENV.SUMMARY_JSON) files[__ENV.SUMMARY_JSON] = JSON.stringify(out, null, 1) + "\n";
  return files;
}
