"""Aggregates a Bench's raw runs into bench/results/<date>-<commit>.{md,json}."""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

import benchlib as bl
from benchlib import median

STACK_LABEL = {"direct": "Deno direct", "nginx": "nginx → Deno", "edgeway": "edgeway → Deno",
               "edgeway-off": "edgeway --upstream-pipelining off → Deno",
               "edgeway-rl-local": "edgeway, rate limit on, local limiter → Deno",
               "edgeway-rl-redis": "edgeway, rate limit on, Redis store → Deno"}
STACK_ORDER = ("direct", "nginx", "edgeway", "edgeway-off", "edgeway-rl-local", "edgeway-rl-redis")
MIXED_FAST, MIXED_SLOW = "/mixed/fast", "/mixed/slow"


def git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=bl.ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


ERROR_SHARE = 0.01  # a run with more errors than this measured error answers, not the stack


def failed(r) -> bool:
    return (r["non2xx"] + r["socket_errors"]) > ERROR_SHARE * max(1, r["requests"])


def aggregate(b) -> dict:
    summary: dict = {}
    for r in b.records:
        summary.setdefault(r["scenario"], {}).setdefault(r["tool"], {}).setdefault(r["stack"], []).append(r)
    out: dict = {}
    for scen, tools in summary.items():
        out[scen] = {}
        for tool, stacks in tools.items():
            out[scen][tool] = {}
            for stack, all_runs in stacks.items():
                # Medians over the runs without errors: fast error answers would
                # otherwise pass for throughput. Errors are summed over all runs.
                runs = [r for r in all_runs if not failed(r)] or all_runs
                rs = [r["req_s"] for r in runs]
                agg = {
                    "runs": len(all_runs),
                    "runs_with_errors": sum(1 for r in all_runs if failed(r)),
                    "all_runs_failed": all(failed(r) for r in all_runs),
                    "req_s": round(median(rs), 1), "req_s_min": min(rs), "req_s_max": max(rs),
                    "p50_ms": median([r["p50_ms"] for r in runs]),
                    "p95_ms": median([r["p95_ms"] for r in runs]),
                    "p99_ms": median([r["p99_ms"] for r in runs]),
                    "max_ms": max(r["max_ms"] for r in runs),
                    "non2xx": sum(r["non2xx"] for r in all_runs),
                    "socket_errors": sum(r["socket_errors"] for r in all_runs),
                    "cpu_us_per_req": {k: round(median([r["cpu_us_per_req"].get(k, 0) for r in runs]), 1)
                                       for k in ("gen", "proxy", "deno", "total")},
                    "cpu_pct": {k: round(median([r["cpu_pct"].get(k, 0) for r in runs]), 0)
                                for k in ("gen", "proxy", "deno")},
                    "gateway_rss_mib": max((r["gateway_rss_mib"] or 0) for r in runs) if stack != "direct" else None,
                    "deno_rss_mib": max(r["deno_rss_mib"] for r in runs),
                    "deno_pss_mib": max(r["deno_pss_mib"] for r in runs),
                    "deno_processes": max(r["deno_processes"] for r in runs),
                    "noisy_runs": sum(1 for r in runs if r["other_pct"] > 15 or r["steal_pct"] > 10),
                }
                if tool == "vegeta":
                    agg["rate_target"] = runs[0]["rate_target"]
                if tool == "k6-ramp":
                    agg.update(ramp_aggregate(runs, all_runs))
                paths = sorted({p for r in runs for p in (r.get("by_url") or {})})
                if paths:  # per-path latency (mixed: fast vs slow), median over runs
                    agg["by_url"] = {p: {k: median([r["by_url"][p][k] for r in runs if p in r.get("by_url", {})])
                                         for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
                                     | {"errors": sum(r["by_url"].get(p, {}).get("errors", 0) for r in all_runs)}
                                     for p in paths}
                pooled = b.url_samples.get((scen, stack), {}) if tool == "vegeta" else {}
                if pooled:  # every request of every recorded run
                    agg["by_url_pooled"] = {p: {"requests": len(xs),
                                                **{f"p{q}_ms": round(bl.percentile(sorted(xs), q / 100), 3)
                                                   for q in (50, 90, 99)}}
                                            for p, xs in pooled.items()}
                out[scen][tool][stack] = agg
            # ratios edgeway (and edgeway-off) / others, plain and paired (same round)
            for ename, others in (("edgeway", ("direct", "nginx", "edgeway-off")),
                                  ("edgeway-off", ("direct", "nginx")),
                                  ("edgeway-rl-redis", ("edgeway-rl-local",))):
                e = stacks.get(ename)
                for other in others:
                    o = stacks.get(other)
                    if not e or not o:
                        continue
                    by_round = {r["round"]: r for r in o if not failed(r)}
                    paired = [r["req_s"] / by_round[r["round"]]["req_s"] for r in e
                              if r["round"] in by_round and by_round[r["round"]]["req_s"] and not failed(r)]
                    p50_diff = [r["p50_ms"] - by_round[r["round"]]["p50_ms"] for r in e
                                if r["round"] in by_round and not failed(r)]
                    out[scen][tool].setdefault("ratios", {})[f"{ename}/{other}"] = {
                        "req_s": round(out[scen][tool][ename]["req_s"] / out[scen][tool][other]["req_s"], 3)
                        if out[scen][tool][other]["req_s"] else None,
                        "paired": round(median(paired), 3) if paired else None,
                        "p50_added_ms": round(out[scen][tool][ename]["p50_ms"] - out[scen][tool][other]["p50_ms"], 3),
                        "p50_added_ms_paired": round(median(p50_diff), 4) if p50_diff else None,
                    }
    return out


def ramp_aggregate(runs, all_runs) -> dict:
    """k6 ramp: per stage (same index in every run), the median over runs of
    the sent rate and the latency percentiles; failures and the estimated
    dropped requests summed, like the errors of the other tools."""
    out = {"dropped_iterations": sum(r.get("dropped_iterations", 0) for r in all_runs),
           "vus_max": max((r.get("vus_max") or 0) for r in all_runs),
           "ramp_stages": runs[0].get("ramp_stages"), "stages": []}
    n = min(len(r.get("stages") or []) for r in runs)
    for i in range(n):
        sts = [r["stages"][i] for r in runs]
        every = [r["stages"][i] for r in all_runs if len(r.get("stages") or []) > i]
        st = {k: sts[0][k] for k in ("index", "from", "to", "start_s", "duration_s", "scheduled")}
        for k in ("req_s", "p50_ms", "p95_ms", "p99_ms"):
            st[k] = median([x.get(k) for x in sts])
        st["max_ms"] = max((x.get("max_ms") or 0) for x in sts)
        st["scheduled_total"] = sum(x["scheduled"] for x in every)
        for k in ("requests", "failed", "socket_errors", "dropped_est"):
            st[k] = sum(x.get(k, 0) for x in every)
        out["stages"].append(st)
    return out


def cold_summary(cold: dict) -> dict:
    out = {}
    for k, v in (cold.get("samples") or {}).items():
        if v:
            out[k] = {"n": len(v), "median": round(statistics.median(v), 2), "p95": round(pct(v, 0.95), 2),
                      "min": round(min(v), 2), "max": round(max(v), 2)}
    return out


def fmt_num(x, nd=0):
    if x is None:
        return "–"
    return f"{x:,.{nd}f}"


def fmt_ms(x):
    if x is None:
        return "–"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def markdown(b, agg, cold, meta) -> str:
    m = meta["machine"]
    L = []
    quick = " (quick smoke run)" if b.quick else ""
    L.append(f"# edgeway benchmark {meta['date']} @ {meta['commit']}{quick}\n")
    L.append(f"Machine: {m['nproc']} vCPU {m['cpu_model']}{' (' + m['virtualization'] + ')' if m.get('virtualization') else ''}, "
             f"{m['memory']} RAM, Linux {m['kernel']}, {m['os']}.  ")
    L.append(f"Versions: {m['edgeway']}; {m['deno']}; {m['nginx']}; {m['wrk']}; vegeta {m['vegeta']}; "
             + (f"{m['k6']}; " if m.get("k6") else "") + f"{m['go']}.  ")
    longer = {s: b.spec[s]["min_runs"] for s in b.scenarios if b.spec[s].get("min_runs", 0) > b.runs}
    more_runs = f" ({', '.join(f'{s} {n}' for s, n in longer.items())})" if longer else ""
    L.append(f"Config: wrk `-t1 -c{b.conns} -d{b.dur:g}s`, vegeta fixed rate for {b.dur:g}s "
             f"(`-max-workers {b.max_workers}`, 10 s timeout), {b.runs} runs per stack{more_runs} interleaved "
             f"(A B C A B C …), {b.warmup:g}s discarded wrk warm-up per stack and scenario, median reported. "
             f"All stacks run at once on loopback; total time {meta['elapsed_s'] / 60:.1f} min."
             + (f" WebSocket: `bench/wsbench` (`-c{b.conns}`, `-c1`, handshake `-c{b.ws_handshake_conns}`), "
                f"{b.ws_size}-byte binary messages." if "ws" in b.scenarios else "") + "\n")
    L.append("Stacks: **direct** = wrk → `deno run server.ts` on TCP; **nginx** = wrk → nginx (1 worker, "
             "keepalive upstream) → Deno on a Unix socket"
             + ("; in fn50 nginx routes each /fNN to its own Deno process on its own Unix socket (50 processes, "
                "like edgeway's 50 workers)" if "fn50" in b.scenarios else "")
             + "; **edgeway** = wrk → `bin/edgeway serve --log-level warn "
             f"{' '.join(b.edgeway_flags)}` (defaults otherwise) → one Deno worker per function"
             + (f"; **edgeway-off** = the same with `--upstream-pipelining off` (hello and mixed only)"
                if getattr(b, "edgeway_off_flags", None) else "")
             + ". Same handler code (`bench/deno/handlers.ts`) everywhere.\n")

    SCENARIOS = b.spec
    has = {r["tool"] for r in b.records}
    if "wrk" in has:  # not e.g. for BENCH_SCENARIOS=ws or mixed alone
        L.append("## Summary: edgeway relative to Deno direct and nginx (wrk req/s)\n")
        L.append("| scenario | what | direct req/s | nginx req/s | edgeway req/s | edgeway/direct | edgeway/nginx "
                 "| paired e/d | paired e/n | edgeway proxy µs/req | nginx proxy µs/req |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scen in b.scenarios:
        w = agg.get(scen, {}).get("wrk")
        if not w:
            continue
        ra = w.get("ratios", {})
        ed, en = ra.get("edgeway/direct", {}), ra.get("edgeway/nginx", {})
        if w.get("edgeway", {}).get("runs_with_errors"):
            n = w["edgeway"]["runs_with_errors"]
            what = SCENARIOS[scen]["what"] + (f" (edgeway: {n} run(s) with errors left out)"
                                              if not w["edgeway"]["all_runs_failed"] else " (edgeway: ALL RUNS HAD ERRORS)")
        else:
            what = SCENARIOS[scen]["what"]
        L.append(f"| {scen} | {what} | {fmt_num(w.get('direct', {}).get('req_s'))} "
                 f"| {fmt_num(w.get('nginx', {}).get('req_s'))} | {fmt_num(w.get('edgeway', {}).get('req_s'))} "
                 f"| {fmt_num(ed.get('req_s'), 2)} | {fmt_num(en.get('req_s'), 2)} "
                 f"| {fmt_num(ed.get('paired'), 2)} | {fmt_num(en.get('paired'), 2)} "
                 f"| {fmt_num(w.get('edgeway', {}).get('cpu_us_per_req', {}).get('proxy'), 1)} "
                 f"| {fmt_num(w.get('nginx', {}).get('cpu_us_per_req', {}).get('proxy'), 1)} |")
    if "wrk" in has:
        L.append("")
    L += ws_section(b, agg)
    L += pipelining_section(b, agg)
    L += rate_store_section(b, agg)
    L += ramp_section(b, agg)

    tools = [("wrk", f"Throughput: wrk -t1 -c{b.conns} (closed loop, max req/s)"),
             ("wrk-c1", "One connection: wrk -t1 -c1 (closed loop, one request at a time)"),
             ("vegeta", "Latency at a fixed rate: vegeta (open loop)")]
    ws_note = ("req/s = messages/s; non-2xx = upgrades answered with another status; socket errors = failed, "
               "timed-out or wrong echoes and connections that did not open")
    for tool, title in (("ws", f"WebSocket echo: wsbench -c{b.conns} (closed loop; {ws_note})"),
                        ("ws-c1", f"WebSocket echo: wsbench -c1 (one message at a time; {ws_note})"),
                        ("ws-handshake", f"WebSocket handshakes: wsbench -mode handshake -c{b.ws_handshake_conns} "
                                         "(req/s = connections opened, used once and closed per second)")):
        tools.append((tool, title))
    tools.append(("k6", f"Reference only: k6 --vus {b.conns} (closed loop, `bench/k6/closed.js`; k6 uses most of "
                        "the CPU itself)"))
    for tool, title in tools:
        if tool not in has:
            continue
        L.append(f"## {title}\n")
        rate_col = "| target rate " if tool == "vegeta" else ""
        vs = "| p50 Δ ms vs direct | p50 Δ ms vs nginx |" if tool == "vegeta" else "| req/s vs direct | req/s vs nginx |"
        L.append(f"| scenario | stack {rate_col}| req/s (median) | min–max | p50 ms | p95 ms | p99 ms | max ms "
                 "| non-2xx / socket errors | CPU µs/req gen / proxy / deno / total | CPU % gen / proxy / deno "
                 "| gateway RSS MiB | Deno RSS / PSS MiB (procs) " + vs)
        L.append("|---|---" + ("|---:" if tool == "vegeta" else "") + "|---:" * 13 + "|")
        for scen in b.scenarios:
            t = agg.get(scen, {}).get(tool)
            if not t:
                continue
            for stack in STACK_ORDER:
                a = t.get(stack)
                if not a:
                    continue
                c, cp = a["cpu_us_per_req"], a["cpu_pct"]
                vs_d = vs_n = "–"
                if tool == "vegeta":
                    if stack != "direct" and t.get("direct"):
                        vs_d = f"{a['p50_ms'] - t['direct']['p50_ms']:+.2f}"
                    if stack.startswith("edgeway") and t.get("nginx"):
                        vs_n = f"{a['p50_ms'] - t['nginx']['p50_ms']:+.2f}"
                elif stack.startswith("edgeway"):
                    vs_d = fmt_num(t.get("ratios", {}).get(f"{stack}/direct", {}).get("req_s"), 2)
                    vs_n = fmt_num(t.get("ratios", {}).get(f"{stack}/nginx", {}).get("req_s"), 2)
                elif stack == "nginx" and t.get("direct"):
                    vs_d = fmt_num(a["req_s"] / t["direct"]["req_s"], 2) if t["direct"]["req_s"] else "–"
                rate = f"| {a['rate_target']:,} " if tool == "vegeta" else ""
                noisy = f" ({a['noisy_runs']} noisy)" if a["noisy_runs"] else ""
                if a.get("all_runs_failed"):
                    noisy += " **ALL RUNS HAD ERRORS**"
                elif a.get("runs_with_errors"):
                    noisy += f" ({a['runs_with_errors']} run(s) with errors left out)"
                proxy = "–" if stack == "direct" else f"{c['proxy']:.1f}"
                proxy_pct = "–" if stack == "direct" else f"{cp['proxy']:.0f}"
                L.append(
                    f"| {scen} | {stack} {rate}| {fmt_num(a['req_s'])}{noisy} | {fmt_num(a['req_s_min'])}–{fmt_num(a['req_s_max'])} "
                    f"| {fmt_ms(a['p50_ms'])} | {fmt_ms(a['p95_ms'])} | {fmt_ms(a['p99_ms'])} | {fmt_ms(a['max_ms'])} "
                    f"| {a['non2xx']} / {a['socket_errors']} "
                    f"| {c['gen']:.1f} / {proxy} / {c['deno']:.1f} / {c['total']:.1f} "
                    f"| {cp['gen']:.0f} / {proxy_pct} / {cp['deno']:.0f} "
                    f"| {fmt_num(a['gateway_rss_mib'], 1)} | {fmt_num(a['deno_rss_mib'], 0)} / {fmt_num(a['deno_pss_mib'], 0)} "
                    f"({a['deno_processes']}) | {vs_d} | {vs_n} |")
        L.append("")

    if cold:
        L.append("## Cold start (ms)\n")
        L.append("| case | n | median | p95 | min | max |")
        L.append("|---|---:|---:|---:|---:|---:|")
        names = {
            "edgeway_fresh_ttfb_ms": "edgeway just started, first request → first byte (cold function)",
            "edgeway_fresh_total_ms": "… same request → last byte",
            "edgeway_fresh_gateway_ready_ms": "edgeway spawn → `GET /` answers (gateway start, no worker)",
            "edgeway_running_new_function_ttfb_ms": "running edgeway, never-used function → first byte",
            "deno_spawn_to_first_200_ms": "reference: spawn `deno run server.ts` → first 200 (1 ms poll)",
            "pool_small_ttfb_ms": "prewarm pool: never-used small function → first byte",
            "spawn_small_ttfb_ms": "fresh spawn (--prewarm-pool 0): never-used small function → first byte",
            "pool_hono_ttfb_ms": "prewarm pool: never-used hono app (npm:hono@4) → first byte",
            "spawn_hono_ttfb_ms": "fresh spawn (--prewarm-pool 0): never-used hono app → first byte",
        }
        for k, label in names.items():
            c = cold.get(k)
            if c:
                L.append(f"| {label} | {c['n']} | {c['median']:.1f} | {c['p95']:.1f} | {c['min']:.1f} | {c['max']:.1f} |")
        L.append("")
        pw = (b.cold or {}).get("prewarm") or {}
        if pw:
            L.append(f"Prewarm pool: mean refill (spawn → waiting) {pw.get('refill_mean_ms')} ms; "
                     f"PSS each: idle pre-booted {pw.get('pss_idle_pooled_mib')} MiB ({pw.get('idle_pooled')} idle), "
                     f"warm small worker from the pool {pw.get('pss_warm_small_from_pool_mib')} MiB, "
                     f"spawned fresh {pw.get('pss_warm_small_spawned_mib')} MiB; hits {pw.get('pool_hits')}, "
                     f"misses {pw.get('pool_misses')}. In all: {pw.get('idle_pooled')} idle pre-booted "
                     f"{pw.get('pss_total_idle_pooled_mib')} MiB, {pw.get('warm_small_from_pool')} warm small workers "
                     f"{pw.get('pss_total_warm_small_from_pool_mib')} MiB (PSS).\n")
            if pw.get("density_functions"):
                L.append(f"Density: {pw['density_functions']} functions in the folder, default pool: the gateway "
                         f"is ready (`/health/ready` 200) {pw.get('density_ready_s')} s after its start; its own "
                         f"RSS once the pool is full {pw.get('density_gateway_rss_mib')} MiB.\n")

    L.append("## Checks and notes\n")
    bad = [v for v in b.validation if not v["ok"]]
    ws_check = "; ws: a text and a binary message echoed byte for byte" if "ws" in b.scenarios else ""
    L.append(f"- Response validation before load (status 200 + exact body for every path and stack{ws_check}): "
             f"{len(b.validation) - len(bad)}/{len(b.validation)} passed.")
    for v in bad:
        L.append(f"  - FAILED {v['scenario']}/{v['stack']}: {'; '.join(v['problems'])}")
    for f in b.failures:
        L.append(f"- FAILED: {f}")
    for f in b.cold.get("failures", []):
        L.append(f"- Cold-start failure: {f}")
    errs = [r for r in b.records if r["non2xx"] or r["socket_errors"]]
    L.append(f"- Runs with errors: {len(errs)} of {len(b.records)}. Runs with more than {ERROR_SHARE:.0%} errors "
             "are left out of the medians and ratios (their req/s would count error answers).")
    for r in errs:
        extra = f" codes {r.get('status_codes')}" if r.get("status_codes") else f" {r.get('socket_detail')}"
        L.append(f"  - {r['tool']} {r['scenario']}/{r['stack']} round {r['round']}: {r['requests']:,} requests, "
                 f"non-2xx {r['non2xx']:,}, socket {r['socket_errors']}{extra}")
        if r.get("probe"):
            L.append(f"    - request right after the run: {r['probe']}")
        if r.get("log_tail"):
            L.append(f"    - gateway log: `{' | '.join(r['log_tail'])[:600]}`")
    noisy = [r for r in b.records if r["other_pct"] > 15 or r["steal_pct"] > 10]
    L.append(f"- Noisy runs (other processes > 15 % of a core or steal > 10 %): {len(noisy)} of {len(b.records)}"
             + (": " + ", ".join(f"{r['tool']} {r['scenario']}/{r['stack']} r{r['round']} "
                                 f"(other {r['other_pct']}%, steal {r['steal_pct']}%)" for r in noisy[:12]) if noisy else "")
             + ". They are kept in the medians; see the JSON.")
    L.append(f"- At the end: edgeway RSS {b.final_rss.get('edgeway')} MiB with {b.final_workers} Deno workers; "
             f"nginx (master+worker) RSS {b.final_rss.get('nginx')} MiB.")
    L.append("- wrk latencies are closed-loop (coordinated omission): compare stacks with them, do not read them as "
             "service latencies. wrk counts only status ≥ 400 as non-2xx. CPU µs/req = (utime+stime delta over the "
             "run) / requests; `gen` = the load generator, `proxy` = nginx master+worker or the edgeway process, "
             "`deno` = the Deno process(es) behind it. Run-to-run spread on this shared VM is ±10–25 %.")
    return "\n".join(L) + "\n"


def ws_section(b, agg) -> list[str]:
    """WebSocket echo per stack: messages/s with many connections and with
    one, round-trip p50/p99, handshakes/s, and what edgeway adds."""
    t = {tool: agg.get("ws", {}).get(tool, {}) for tool in ("ws", "ws-c1", "ws-handshake")}
    if not any(t.values()):
        return []

    def us(x):
        return "–" if x is None else f"{x * 1000:.0f}"

    L = ["## WebSocket echo (wsbench)\n",
         f"{b.ws_size}-byte binary messages to `/ws` (`Deno.upgradeWebSocket`, every message sent back), closed "
         f"loop: each connection sends one message and waits for its echo. Latency = one round trip. "
         f"Handshakes: {b.ws_handshake_conns} loops that open a connection, echo one message and close it.\n",
         f"| stack | msg/s -c{b.conns} | p50 / p99 ms -c{b.conns} | msg/s -c1 | p50 / p99 µs -c1 "
         "| handshakes/s | handshake p50 ms | proxy CPU µs/msg -c" + str(b.conns) + " |",
         "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for stack in ("direct", "nginx", "edgeway"):
        m, one, hs = t["ws"].get(stack), t["ws-c1"].get(stack), t["ws-handshake"].get(stack)
        if not (m or one or hs):
            continue
        err = " **errors**" if any(a and a.get("runs_with_errors") for a in (m, one, hs)) else ""
        L.append(f"| {stack}{err} | {fmt_num(m and m['req_s'])} | {fmt_ms(m and m['p50_ms'])} / {fmt_ms(m and m['p99_ms'])} "
                 f"| {fmt_num(one and one['req_s'])} | {us(one and one['p50_ms'])} / {us(one and one['p99_ms'])} "
                 f"| {fmt_num(hs and hs['req_s'])} | {fmt_ms(hs and hs['p50_ms'])} "
                 f"| {'–' if stack == 'direct' or not m else fmt_num(m['cpu_us_per_req']['proxy'], 1)} |")
    L.append("")
    rows = []
    for tool, label in (("ws", f"messages/s -c{b.conns}"), ("ws-c1", "messages/s -c1"),
                        ("ws-handshake", "handshakes/s")):
        ra = t[tool].get("ratios", {})
        ed, en = ra.get("edgeway/direct", {}), ra.get("edgeway/nginx", {})
        if ed or en:
            rows.append(f"| {label} | {fmt_num(ed.get('req_s'), 2)} (paired {fmt_num(ed.get('paired'), 2)}) "
                        f"| {fmt_num(en.get('req_s'), 2)} (paired {fmt_num(en.get('paired'), 2)}) |")
    one = t["ws-c1"]
    ra = one.get("ratios", {})
    added = []
    for other in ("direct", "nginx"):
        r = ra.get(f"edgeway/{other}")
        if r:
            paired = r.get("p50_added_ms_paired")
            added.append(f"edgeway − {other} **{r['p50_added_ms'] * 1000:+.0f} µs**"
                         + (f" (paired per round {paired * 1000:+.0f} µs)" if paired is not None else ""))
    if one.get("nginx") and one.get("direct"):
        added.append(f"nginx − direct {(one['nginx']['p50_ms'] - one['direct']['p50_ms']) * 1000:+.0f} µs")
    if rows:
        L += ["| ratio | edgeway/direct | edgeway/nginx |", "|---|---:|---:|", *rows, ""]
    if added:
        L.append("Added latency (p50 round trip at one connection): " + "; ".join(added) + ".\n")
    return L


RAMP_BAD_SHARE = 0.01  # a stage that dropped or failed more than this did not get its rate


def ramp_section(b, agg) -> list[str]:
    """k6 ramp (bench/k6/ramp.js): one row per stage of the rising open-loop
    rate, per stack the rate k6 sent, p50/p95/p99 and the requests it could
    not send (dropped), and edgeway's p50 and p99 relative to nginx."""
    L = []
    for scen in b.scenarios:
        t = agg.get(scen, {}).get("k6-ramp")
        if not t:
            continue
        stacks = [s for s in ("direct", "nginx", "edgeway") if t.get(s)]
        first = t[stacks[0]]
        runs = max(t[s]["runs"] for s in stacks)
        L.append(f"## k6 ramp: latency as the rate grows ({scen})\n")
        L.append(f"`bench/k6/ramp.js`: k6 `ramping-arrival-rate` (open loop) through the stages `{first['ramp_stages']}` "
                 f"(DURATION:RATE, linear from the previous rate), {scen} = {b.spec[scen]['what']}; VUs "
                 f"{b.conns} pre-allocated, at most {4 * b.conns}; one run per stack"
                 + (f" and round ({runs} rounds, median per stage)" if runs > 1 else "")
                 + ", stacks one after the other. Per stage: **sent/s** = requests k6 started in the stage ÷ its "
                 "length; p50/p95/p99 of those requests; **dropped** ≈ requests the schedule asked for minus those "
                 "sent (k6 had no free VU: the stack, or k6 itself, did not keep up; dropped requests are not in "
                 "the percentiles, so those understate the delay). † = more than "
                 f"{RAMP_BAD_SHARE:.0%} dropped or failed. k6 itself needs ~90–130 µs of CPU per request here, so "
                 "from ~5000/s on it competes with the stack for the 2 cores (gen CPU below).\n")
        head = "| stage | rate req/s |"
        sep = "|---:|---|"
        for s in stacks:
            head += f" {s} sent/s | {s} p50 / p95 / p99 ms | {s} dropped |"
            sep += "---:|---:|---:|"
        both = "edgeway" in stacks and "nginx" in stacks
        if both:
            head += " edgeway/nginx p50 | edgeway/nginx p99 |"
            sep += "---:|---:|"
        L += [head, sep]
        n = min(len(t[s]["stages"]) for s in stacks)
        for i in range(n):
            st0 = t[stacks[0]]["stages"][i]
            rate = f"{st0['from']:,}" if st0["from"] == st0["to"] else f"{st0['from']:,} → {st0['to']:,}"
            row = f"| {i} | {rate} ({st0['duration_s']:g} s) |"
            for s in stacks:
                st = t[s]["stages"][i]
                bad = (st["dropped_est"] + st["failed"]) > RAMP_BAD_SHARE * max(1, st["scheduled_total"])
                err = f", {st['failed']} failed" if st["failed"] else ""
                row += (f" {fmt_num(st['req_s'])}{' †' if bad else ''} | {fmt_ms(st['p50_ms'])} / "
                        f"{fmt_ms(st['p95_ms'])} / {fmt_ms(st['p99_ms'])}{err} | {fmt_num(st['dropped_est'])} |")
            if both:
                e, g = t["edgeway"]["stages"][i], t["nginx"]["stages"][i]
                ratio = lambda k: fmt_num(e[k] / g[k], 2) if e.get(k) and g.get(k) else "–"  # noqa: E731
                row += f" {ratio('p50_ms')} | {ratio('p99_ms')} |"
            L.append(row)
        L.append("")
        L.append("| stack | requests | p50 / p95 / p99 / max ms (whole run) | failed / no answer | dropped iterations "
                 "| VUs used | CPU µs/req gen / proxy / deno | CPU % gen / proxy / deno |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for s in stacks:
            a = t[s]
            c, cp = a["cpu_us_per_req"], a["cpu_pct"]
            proxy, proxy_pct = ("–", "–") if s == "direct" else (f"{c['proxy']:.1f}", f"{cp['proxy']:.0f}")
            noisy = f" ({a['noisy_runs']} noisy)" if a["noisy_runs"] else ""
            reqs = sum(st["requests"] for st in a["stages"])
            L.append(f"| {s}{noisy} | {fmt_num(reqs)} | {fmt_ms(a['p50_ms'])} / {fmt_ms(a['p95_ms'])} / "
                     f"{fmt_ms(a['p99_ms'])} / {fmt_ms(a['max_ms'])} | {a['non2xx'] + a['socket_errors']} / "
                     f"{a['socket_errors']} | {fmt_num(a['dropped_iterations'])} | {a['vus_max']} "
                     f"| {c['gen']:.1f} / {proxy} / {c['deno']:.1f} | {cp['gen']:.0f} / {proxy_pct} / {cp['deno']:.0f} |")
        L.append("")
    return L


def mixed_fast_p99_paired(b):
    """Median over rounds of auto/off fast p99 within the same round."""
    by = {}
    for r in b.records:
        if r["scenario"] == "mixed" and r["tool"] == "vegeta" and MIXED_FAST in (r.get("by_url") or {}):
            by.setdefault(r["round"], {})[r["stack"]] = r["by_url"][MIXED_FAST]["p99_ms"]
    ratios = [v["edgeway"] / v["edgeway-off"] for v in by.values()
              if v.get("edgeway") and v.get("edgeway-off")]
    return median(ratios) if ratios else None


def rate_store_section(b, agg) -> list[str]:
    """hello-redis: the shared Redis rate limit store against the local
    limiter, same rounds, same box (redis-server shares the CPUs)."""
    rows = []
    for tool, label in (("wrk", f"wrk -c{b.conns}"), ("wrk-c1", "wrk -t1 -c1"), ("vegeta", "vegeta")):
        t = agg.get("hello-redis", {}).get(tool, {})
        lo, rd = t.get("edgeway-rl-local"), t.get("edgeway-rl-redis")
        if not lo or not rd:
            continue
        ra = t.get("ratios", {}).get("edgeway-rl-redis/edgeway-rl-local", {})
        rows.append(f"| {label} | {fmt_num(lo['req_s'])} / {fmt_num(rd['req_s'])} "
                    f"(redis/local {fmt_num(ra.get('req_s'), 2)}) | {lo['p50_ms'] * 1000:.0f} / {rd['p50_ms'] * 1000:.0f} "
                    f"(+{(rd['p50_ms'] - lo['p50_ms']) * 1000:.0f}) | {lo['p99_ms'] * 1000:.0f} / {rd['p99_ms'] * 1000:.0f} "
                    f"| {fmt_num(lo['cpu_us_per_req']['proxy'], 1)} / {fmt_num(rd['cpu_us_per_req']['proxy'], 1)} |")
    if not rows:
        return []
    return ["## Shared rate limits: Redis store vs local limiter (hello-redis)\n",
            "Both gateways limit every request (rpm far above the load, so none is refused); "
            "the Redis one makes one EVALSHA per request to a redis-server on the same machine, "
            "whose CPU is not in the proxy column.\n",
            "| tool | req/s local / redis | p50 µs local / redis (Δ) | p99 µs local / redis | proxy CPU µs/req local / redis |",
            "|---|---:|---:|---:|---:|", *rows, ""]


def pipelining_section(b, agg) -> list[str]:
    """edgeway (--upstream-pipelining auto, the default) vs edgeway-off, from
    the same interleaved rounds: throughput vs nginx, one-connection p50,
    and the fast requests' p99 when slow ones share the function (mixed)."""
    rows = []

    def get(scen, tool, stack):
        return agg.get(scen, {}).get(tool, {}).get(stack)

    w = agg.get("hello", {}).get("wrk", {})
    if w.get("edgeway-off"):
        ra = w.get("ratios", {})
        rows.append(f"| hello wrk -c{b.conns} req/s | {fmt_num(w['edgeway']['req_s'])} | "
                    f"{fmt_num(w['edgeway-off']['req_s'])} | auto/off {fmt_num(ra.get('edgeway/edgeway-off', {}).get('req_s'), 2)} "
                    f"(paired {fmt_num(ra.get('edgeway/edgeway-off', {}).get('paired'), 2)}) |")
        rows.append(f"| hello wrk -c{b.conns}: edgeway/nginx | {fmt_num(ra.get('edgeway/nginx', {}).get('req_s'), 2)} "
                    f"(paired {fmt_num(ra.get('edgeway/nginx', {}).get('paired'), 2)}) "
                    f"| {fmt_num(ra.get('edgeway-off/nginx', {}).get('req_s'), 2)} "
                    f"(paired {fmt_num(ra.get('edgeway-off/nginx', {}).get('paired'), 2)}) | |")
        rows.append(f"| hello wrk -c{b.conns}: edgeway proxy CPU µs/req | "
                    f"{fmt_num(w['edgeway']['cpu_us_per_req']['proxy'], 1)} | "
                    f"{fmt_num(w['edgeway-off']['cpu_us_per_req']['proxy'], 1)} | |")
        rows.append(f"| hello wrk -c{b.conns}: Deno CPU µs/req | "
                    f"{fmt_num(w['edgeway']['cpu_us_per_req']['deno'], 1)} | "
                    f"{fmt_num(w['edgeway-off']['cpu_us_per_req']['deno'], 1)} | |")
    c1 = agg.get("hello", {}).get("wrk-c1", {})
    if c1.get("edgeway") and c1.get("edgeway-off"):
        r = c1.get("ratios", {}).get("edgeway/edgeway-off", {})
        d = c1["edgeway"]["p50_ms"] - c1["edgeway-off"]["p50_ms"]
        paired = r.get("p50_added_ms_paired")
        rows.append(f"| hello wrk -t1 -c1 p50 µs | {c1['edgeway']['p50_ms'] * 1000:.0f} | "
                    f"{c1['edgeway-off']['p50_ms'] * 1000:.0f} | auto − off **{d * 1000:+.0f} µs**"
                    + (f" (paired per round {paired * 1000:+.0f} µs)" if paired is not None else "") + " |")
        rows.append(f"| hello wrk -t1 -c1 req/s | {fmt_num(c1['edgeway']['req_s'])} | "
                    f"{fmt_num(c1['edgeway-off']['req_s'])} | |")
    v = agg.get("hello", {}).get("vegeta", {})
    if v.get("edgeway") and v.get("edgeway-off"):
        rows.append(f"| hello vegeta {v['edgeway']['rate_target']:,}/s p50 / p99 ms | "
                    f"{fmt_ms(v['edgeway']['p50_ms'])} / {fmt_ms(v['edgeway']['p99_ms'])} | "
                    f"{fmt_ms(v['edgeway-off']['p50_ms'])} / {fmt_ms(v['edgeway-off']['p99_ms'])} | |")
    m = agg.get("mixed", {}).get("vegeta", {})
    if m.get("edgeway") and m.get("edgeway-off"):
        fa = m["edgeway"].get("by_url", {}).get(MIXED_FAST, {})
        fo = m["edgeway-off"].get("by_url", {}).get(MIXED_FAST, {})
        sa = m["edgeway"].get("by_url", {}).get(MIXED_SLOW, {})
        so = m["edgeway-off"].get("by_url", {}).get(MIXED_SLOW, {})
        ratio = (fa["p99_ms"] / fo["p99_ms"]) if fa.get("p99_ms") and fo.get("p99_ms") else None
        rate = m["edgeway"]["rate_target"]
        paired = mixed_fast_p99_paired(b)
        rows.append(f"| mixed {rate:,}/s: **fast p99 ms**, median of {m['edgeway']['runs']} runs | "
                    f"{fmt_ms(fa.get('p99_ms'))} | {fmt_ms(fo.get('p99_ms'))} "
                    f"| auto/off **{fmt_num(ratio, 2)}** (paired per round {fmt_num(paired, 2)}) |")
        pa = m["edgeway"].get("by_url_pooled", {}).get(MIXED_FAST, {})
        po = m["edgeway-off"].get("by_url_pooled", {}).get(MIXED_FAST, {})
        if pa.get("p99_ms") and po.get("p99_ms"):
            rows.append(f"| mixed: **fast p99 ms, all runs pooled** ({pa['requests']:,} / {po['requests']:,} requests) | "
                        f"{fmt_ms(pa['p99_ms'])} | {fmt_ms(po['p99_ms'])} "
                        f"| auto/off **{fmt_num(pa['p99_ms'] / po['p99_ms'], 2)}** |")
        rows.append(f"| mixed: fast p50 / p90 / max ms | {fmt_ms(fa.get('p50_ms'))} / {fmt_ms(fa.get('p90_ms'))} / "
                    f"{fmt_ms(fa.get('max_ms'))} | {fmt_ms(fo.get('p50_ms'))} / {fmt_ms(fo.get('p90_ms'))} / "
                    f"{fmt_ms(fo.get('max_ms'))} | |")
        rows.append(f"| mixed: slow (200 ms) p50 / p99 ms | {fmt_ms(sa.get('p50_ms'))} / {fmt_ms(sa.get('p99_ms'))} "
                    f"| {fmt_ms(so.get('p50_ms'))} / {fmt_ms(so.get('p99_ms'))} | |")
        rows.append(f"| mixed: achieved req/s, errors (fast/slow) | {fmt_num(m['edgeway']['req_s'])}, "
                    f"{fa.get('errors', 0)}/{sa.get('errors', 0)} | {fmt_num(m['edgeway-off']['req_s'])}, "
                    f"{fo.get('errors', 0)}/{so.get('errors', 0)} | |")
    if not rows:
        return []
    return ["## Upstream pipelining: auto (edgeway, default) vs off (edgeway-off)\n",
            "Both gateways run side by side on the same functions folder, interleaved in every round. "
            "`mixed`: one function serves `/mixed/fast` (answers at once) and `/mixed/slow` (awaits 200 ms), "
            "9 : 1, at a fixed vegeta rate; fast and slow latencies are split from vegeta's per-request results "
            "(`vegeta encode`): the median of the per-run p99s, the median of the per-round auto/off ratios, and the p99 of all runs' requests pooled (each run's p99 "
            "rests on about 90 requests, so the pooled figure moves less between runs). A fast p99 ratio auto/off well above 1 means fast requests "
            "waited behind slow ones on a pipelined connection.\n",
            "| measure | auto (edgeway) | off (edgeway-off) | comparison |", "|---|---:|---:|---|", *rows, ""]


def write(b) -> tuple[Path, Path]:
    commit = b.commit
    date = b.started.strftime("%Y-%m-%d")
    tools = {
        "k6": bl.sh([b.k6, "version"]) if b.k6_scenarios or b.k6_ramp_scenarios else None,
        "nginx": bl.sh([b.nginx, "-v"]).replace("nginx version: ", ""),
        "wrk": bl.sh([b.wrk, "-v"]).splitlines()[0].split(" [")[0] if bl.sh([b.wrk, "-v"]) else "?",
        "vegeta": "v12.12.0 (built by bench/install-tools.sh)",
        "wsbench": "bench/wsbench (go build of the tree)",
    }
    meta = {
        "date": date, "started_utc": b.started.isoformat(timespec="seconds"),
        "commit": commit, "git_describe": b.describe,
        "elapsed_s": round(b.elapsed, 1),
        "machine": bl.machine_info(b.deno, b.edgeway, tools),
        "config": {"quick": b.quick, "duration_s": b.dur, "runs": b.runs, "warmup_s": b.warmup, "conns": b.conns,
                   "scenarios": b.scenarios, "cold_reps": b.cold_reps,
                   "vegeta_rates": {s: (b.rate_override or b.spec[s].get("rate")) for s in b.scenarios
                                    if s != "coldstart" and not b.spec[s].get("ws")},
                   "ws_size": b.ws_size, "ws_handshake_conns": b.ws_handshake_conns,
                   "k6_scenarios": b.k6_scenarios, "k6_ramp_scenarios": b.k6_ramp_scenarios,
                   "k6_ramp_stages": b.k6_ramp_stages if b.k6_ramp_scenarios else None,
                   "k6_ramp_runs": b.k6_ramp_runs if b.k6_ramp_scenarios else None,
                   "vegeta_max_workers": b.max_workers, "quiet_busy_pct": b.quiet_busy,
                   "quiet_max_wait_s": b.quiet_wait},
    }
    agg = aggregate(b)
    cold = cold_summary(b.cold)
    doc = {**meta, "summary": agg, "coldstart": cold, "coldstart_raw": b.cold, "validation": b.validation,
           "final": {"rss_mib": b.final_rss, "edgeway_workers": b.final_workers}, "failures": b.failures,
           "edgeway_flags": b.edgeway_flags, "edgeway_off_flags": getattr(b, "edgeway_off_flags", []),
           "runs": b.records}
    b.outdir.mkdir(parents=True, exist_ok=True)
    stem = f"{date}-{commit}" + ("-quick" if b.quick else "")
    jp = b.outdir / f"{stem}.json"
    mp = b.outdir / f"{stem}.md"
    jp.write_text(json.dumps(doc, indent=1) + "\n")
    mp.write_text(markdown(b, agg, cold, meta))
    return mp, jp


def rerender(json_path: str):
    """Rewrite <x>.md (and the aggregates in <x>.json) from the raw runs in
    <x>.json, e.g. after a change of aggregation: python3 bench/report.py X.json"""
    import sys
    from types import SimpleNamespace
    sys.path.insert(0, str(bl.BENCH_DIR))
    from bench import SCENARIOS
    jp = Path(json_path)
    doc = json.loads(jp.read_text())
    c = doc["config"]
    b = SimpleNamespace(
        quick=c["quick"], dur=c["duration_s"], runs=c["runs"], warmup=c["warmup_s"], conns=c["conns"],
        scenarios=c["scenarios"], max_workers=c["vegeta_max_workers"], spec=SCENARIOS, records=doc["runs"],
        validation=doc["validation"], cold=doc.get("coldstart_raw") or {}, failures=doc.get("failures", []),
        final_rss=doc["final"]["rss_mib"], final_workers=doc["final"]["edgeway_workers"],
        edgeway_flags=doc.get("edgeway_flags", []), edgeway_off_flags=doc.get("edgeway_off_flags", []),
        ws_size=c.get("ws_size", 1024), ws_handshake_conns=c.get("ws_handshake_conns", 8),
        # the pooled per-URL latencies are not kept in the JSON: a rerender
        # falls back to the per-run figures
        url_samples={})
    meta = {k: doc[k] for k in ("date", "commit", "elapsed_s", "machine")}
    agg = aggregate(b)
    doc["summary"] = agg
    jp.write_text(json.dumps(doc, indent=1) + "\n")
    jp.with_suffix(".md").write_text(markdown(b, agg, cold_summary(b.cold), meta))
    print(jp.with_suffix(".md").read_text())


if __name__ == "__main__":
    import sys
    rerender(sys.argv[1])
