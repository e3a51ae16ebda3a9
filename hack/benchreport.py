#!/usr/bin/env python3
"""benchreport: the summary of make bench (hack/bench.sh) and docs/benchmarks.md.

Reads what bench.sh left in --out (go.txt, ghz-*.json, hey-*.txt, hey-*.proc,
commands.txt), prints one summary with every figure beside its baseline and
its target, and writes the Markdown file with the machine and the commands.
"""
import argparse
import csv
import datetime
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys


def go_benchmarks(path):
    """{(pkg, name): {unit: value}} from go test -bench output; with -count
    above 1, the median of the runs."""
    runs, pkg = {}, ""
    for line in open(path, errors="replace"):
        if line.startswith("pkg: "):
            pkg = line.split()[1].split("/mcp-authz/mcp-authz/")[-1]
            continue
        if not line.startswith("Benchmark"):
            continue
        f = line.split()
        if len(f) < 4 or not f[1].isdigit():
            continue
        name = re.sub(r"-\d+$", "", f[0])
        m = {"iterations": float(f[1])}
        for v, unit in zip(f[2::2], f[3::2]):
            try:
                m[unit] = float(v)
            except ValueError:
                pass
        runs.setdefault((pkg, name), []).append(m)
    res = {}
    for key, ms in runs.items():
        res[key] = {u: statistics.median(m[u] for m in ms if u in m) for u in ms[0]}
    return res


def ghz(out, name):
    try:
        r = json.load(open(f"{out}/ghz-{name}.json"))
    except (OSError, ValueError):
        return None
    lat = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
    return {"rps": r["rps"], "p50": lat.get(50), "p99": lat.get(99),
            "codes": r.get("statusCodeDistribution", {})}


def hey(out, name, clk):
    """Merges the CSV of every hey worker of one run (bench.sh runs one per session)."""
    files = sorted(glob.glob(f"{out}/hey-{name}-*.csv"))
    if not files:
        return None
    lats, codes = [], {}
    for path in files:
        for row in csv.DictReader(open(path)):
            lats.append(float(row["response-time"]))
            codes[row["status-code"]] = codes.get(row["status-code"], 0) + 1
    t0, t1, want = open(f"{out}/hey-{name}.wall").read().split()
    lats.sort()
    at = lambda p: lats[(len(lats) - 1) * p // 100] if lats else None
    procs = []
    for line in open(f"{out}/hey-{name}.proc"):
        pid, ticks, kb = line.split()
        procs.append({"cpu": int(ticks) / clk, "rss": int(kb) / 1024})
    return {"rps": len(lats) / (float(t1) - float(t0)), "p50": ms(at(50)), "p99": ms(at(99)),
            "codes": codes, "errors": int(want) - len(lats), "total": int(want), "procs": procs}


def router_runs(out, clk):
    """The router scenario (hack/bench-router.sh), per label (new, base):
    calls through the front and direct, and the many-sessions runs, of
    2025-11-25 (sessions) and of 2026-07-28 (stateless, s26-*)."""
    def load(name):
        try:
            r = json.load(open(f"{out}/router-{name}.json"))
        except (OSError, ValueError):
            return None
        r["procs"] = []
        if os.path.exists(f"{out}/router-{name}.proc"):
            for line in open(f"{out}/router-{name}.proc"):
                pid, ticks, kb = line.split()
                r["procs"].append({"cpu": int(ticks) / clk, "rss": int(kb) / 1024})
        if os.path.exists(f"{out}/router-{name}.sessions"):
            r["sessions"] = int(open(f"{out}/router-{name}.sessions").read())
        if os.path.exists(f"{out}/router-{name}.calls26"):
            r["calls26"], r["posts"] = map(int, open(f"{out}/router-{name}.calls26").read().split())
        return r
    res = {}
    for label in ("new", "base"):
        runs = {k: load(f"{label}-{k}") for k in ("direct", "front", "direct1", "front1", "sess-direct", "sess-front",
                                                   "s26-direct", "s26-front", "s26-conc-direct", "s26-conc-front")}
        if any(runs.values()):
            res[label] = runs
    return res


def router_rows(R, clients):
    """Summary rows of the router scenario: each figure beside direct in the
    same run, and beside the baseline build (label base) when it ran."""
    rows = []
    for label, r in R.items():
        d, f, sd, sf = r["direct"], r["front"], r["sess-direct"], r["sess-front"]
        tag = "" if label == "new" else " [BENCH_BASE build]"
        new = label == "new"
        if d and f:
            ratio = f["rps"] / d["rps"]
            added = f["p50_ms"] - d["p50_ms"]
            cpu = f["procs"][0]["cpu"] / f["requests"] * 1e6 if f["procs"] else None
            rows.append(("router", f"2025-11-25 sessions, 10 upstreams x 20 tools, tools/call via front+authz+router (req/s){tag}", fmt(f["rps"], "", 0),
                         f"direct {fmt(d['rps'], '', 0)}", ">= 75% of direct" if new else "measured",
                         f"{fmt(ratio * 100, '%', 0)}" + (f" {'yes' if ratio >= 0.75 else 'NO'}" if new else "")))
            # Saturated, with c clients always waiting, p50 is queueing:
            # about c / throughput, so what it adds restates the throughput
            # ratio. The added latency's target is the one-client row's.
            rows.append(("router", f"  p50 added / p99, saturated{tag}", f"{fmt(added, ' ms', 2)} / {fmt(f['p99_ms'], ' ms', 1)}",
                         f"direct p50 {fmt(d['p50_ms'], ' ms', 2)}, p99 {fmt(d['p99_ms'], ' ms', 1)}",
                         "measured", "queueing"))
            rows.append(("router", f"  CPU-µs per call in mcp-authz{tag}", fmt(cpu, " µs", 0),
                         f"upstream {fmt(f['procs'][1]['cpu'] / f['requests'] * 1e6 if len(f['procs']) > 1 else None, ' µs', 0)}, "
                         f"direct upstream {fmt(d['procs'][0]['cpu'] / d['requests'] * 1e6 if d['procs'] else None, ' µs', 0)}",
                         "< 250 µs" if new else "measured", ("yes" if cpu is not None and cpu < 250 else "NO") if new else "-"))
            d1, f1 = r.get("direct1"), r.get("front1")
            if d1 and f1:
                added1 = f1["p50_ms"] - d1["p50_ms"]
                rows.append(("router", f"  p50 added, one client (not saturated){tag}", fmt(added1, " ms", 2),
                             f"direct p50 {fmt(d1['p50_ms'], ' ms', 2)}",
                             "< 0.4 ms added" if new else "measured", ("yes" if added1 < 0.4 else "NO") if new else "-"))
            errs = f["errors"] + d["errors"] + sum(x["errors"] for x in (d1, f1) if x)
            if errs:
                rows.append(("router", f"  call errors{tag}", str(errs), "-", "0", "NO"))
        if sd and sf:
            up, upd = (sf["procs"][1]["rss"] if len(sf["procs"]) > 1 else None), (sd["procs"][0]["rss"] if sd["procs"] else None)
            rows.append(("router", f"{clients:,} 2025-11-25 clients list + call one tool: errors{tag}",
                         f"{sf['errors']}" + (f" ({sf.get('first_error', '')[:60]})" if sf["errors"] else ""),
                         f"direct {sd['errors']}", "0" if new else "measured", ("yes" if sf["errors"] == 0 else "NO") if new else "-"))
            rows.append(("router", f"  mcp-authz peak RSS{tag}", fmt(sf["procs"][0]["rss"] if sf["procs"] else None, " MiB", 0), "-", "measured", "-"))
            rows.append(("router", f"  upstream peak RSS{tag}", fmt(up, " MiB", 0), f"direct {fmt(upd, ' MiB', 0)}",
                         "<= 2x direct" if new else "measured",
                         (f"{fmt(up / upd, 'x', 2)} " + ("yes" if up <= 2 * upd else "NO")) if up and upd else "n/a"))
            n, nd = sf.get("sessions"), sd.get("sessions")
            rows.append(("router", f"  upstream sessions opened{tag}", fmt(n, "", 0), f"direct {fmt(nd, '', 0)}",
                         "one per client (+ one lister per server)" if new else "measured",
                         ("yes" if n is not None and nd is not None and n <= nd + 10 else "NO") if new else "-"))
        rows += router26_rows(r, clients, tag, new)
    return rows


def router26_rows(r, clients, tag, new):
    """Summary rows of the 2026-07-28 (stateless) part of one label's router
    runs: calls through the front beside direct, then the many callers."""
    rows = []
    d, f, cd, cf = r["s26-direct"], r["s26-front"], r["s26-conc-direct"], r["s26-conc-front"]
    cpu = lambda run, i: run["procs"][i]["cpu"] / run["requests"] * 1e6 if len(run["procs"]) > i and run["requests"] else None
    rss = lambda run, i: run["procs"][i]["rss"] if run and len(run["procs"]) > i else None
    if d and f:
        ratio = f["rps"] / d["rps"] if d["rps"] else None
        rows.append(("12", f"2026-07-28 stateless, 10 upstreams x 20 tools, tools/call via front+authz+router (req/s){tag}",
                     fmt(f["rps"], "", 0), f"direct {fmt(d['rps'], '', 0)}", "measured", f"{fmt(ratio and ratio * 100, '%', 0)} of direct"))
        rows.append(("12", f"  p50 / p99{tag}", f"{fmt(f['p50_ms'], '', 2)} / {fmt(f['p99_ms'], ' ms', 1)}",
                     f"direct {fmt(d['p50_ms'], '', 2)} / {fmt(d['p99_ms'], ' ms', 1)}", "measured",
                     f"p50 +{fmt(f['p50_ms'] - d['p50_ms'], ' ms', 2)}"))
        rows.append(("12", f"  CPU-µs per call in mcp-authz{tag}", fmt(cpu(f, 0), " µs", 0),
                     f"upstream {fmt(cpu(f, 1), ' µs', 0)}, direct upstream {fmt(cpu(d, 0), ' µs', 0)}", "measured", "-"))
        n = f.get("calls26")
        rows.append(("12", f"  calls that reached the upstream as 2026-07-28 tools/call{tag}", fmt(n, "", 0),
                     f"calls made {fmt(f['requests'], '', 0)}", "all" if new else "measured",
                     ("yes" if n == f["requests"] else "NO") if new else "-"))
        per = lambda run: run["posts"] / run["requests"] if "posts" in run and run["requests"] else None
        rows.append(("12", f"  upstream POSTs per call{tag}", fmt(per(f), "", 2), f"direct {fmt(per(d), '', 2)}", "measured", "-"))
        if f["errors"] + d["errors"]:
            rows.append(("12", f"  call errors{tag}", f"{f['errors']} ({cause(f)})",
                         f"direct {d['errors']}", "0" if new else "measured", "NO" if new else "-"))
    if cd and cf:
        rows.append(("12", f"{clients:,} 2026-07-28 callers: discover, list, call; then all call at once: errors{tag}",
                     f"{cf['errors']}" + (f" ({cause(cf)})" if cf["errors"] else ""),
                     f"direct {cd['errors']}", "0" if new else "measured", ("yes" if cf["errors"] == 0 else "NO") if new else "-"))
        rows.append(("12", f"  {clients:,} callers discover, list and call (200 at a time) in{tag}", fmt(cf.get("seconds"), " s", 1),
                     f"direct {fmt(cd.get('seconds'), ' s', 1)}", "measured", "-"))
        rows.append(("12", f"  {clients:,} calls at once, all answered in{tag}", fmt(cf.get("burst_seconds"), " s", 2),
                     f"direct {fmt(cd.get('burst_seconds'), ' s', 2)}", "measured", "-"))
        rows.append(("12", f"  mcp-authz peak RSS{tag}", fmt(rss(cf, 0), " MiB", 0), "-", "measured", "-"))
        rows.append(("12", f"  upstream peak RSS{tag}", fmt(rss(cf, 1), " MiB", 0), f"direct {fmt(rss(cd, 0), ' MiB', 0)}", "measured", "-"))
    return rows


def cause(run):
    """The end of a run's first error, where its cause is ("... Service
    Unavailable"), short enough for a table cell."""
    e = run.get("first_error", "")
    return e if len(e) <= 60 else "..." + e[-57:]


def router_problems(R):
    """What fails the run in the router scenario: an error of the build under
    test, or a 2026-07-28 call that did not reach the upstream as one."""
    problems = []
    for name, r in R.get("new", {}).items():
        if r and r["errors"]:
            problems.append(f"router {name}: {r['errors']} errors ({r.get('first_error', '')[:120]})")
        if r and "calls26" in r and r["mode"] == "call" and r["calls26"] != r["requests"]:
            problems.append(f"router {name}: {r['calls26']} of {r['requests']} calls reached the upstream as 2026-07-28 tools/call")
    return problems


def bad(*runs):
    """A warning when a hey run had answers other than 200 or errors."""
    if any(set(r["codes"]) != {"200"} or r["errors"] for r in runs):
        return " (NOT all 200: see below)"
    return ""


def ms(secs):
    return None if secs is None else secs * 1e3


def fmt(v, unit="", digits=1):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def machine():
    model, mem = "unknown", "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"
    commit = run("git", "rev-parse", "--short", "HEAD")
    # The report itself, written by an earlier run, is not a change to what
    # was measured.
    if run("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/benchmarks.md"):
        commit += " (with uncommitted changes)"
    return [("CPUs (nproc)", str(os.cpu_count())), ("CPU model", model), ("memory", mem),
            ("kernel", platform.release()), ("Go", run("go", "version")), ("commit", commit),
            ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]


def table(head, rows, left=1):
    """A plain-text table; the first left columns are text, the rest right-aligned."""
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w[i]) if i < left else str(x).rjust(w[i]) for i, x in enumerate(r))
    return "\n".join([line(head), "  ".join("-" * n for n in w)] + [line(r) for r in rows])


def md(head, rows, left=1):
    """A Markdown table; the first left columns are text, the rest right-aligned."""
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(head))) + "|"]
    out += ["| " + " | ".join(str(x) for x in r) + " |" for r in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--router-only", action="store_true", help="print the router scenario's summary only")
    ap.add_argument("--clients", default="4000")
    ap.add_argument("--clk-tck", required=True)
    ap.add_argument("--out", required=True)
    for flag in ("--doc", "--elapsed", "--n", "--http-n", "--c", "--benchtime"):
        ap.add_argument(flag)
    a = ap.parse_args()
    out, clk = a.out, int(a.clk_tck)
    if a.router_only:
        R = router_runs(out, clk)
        print(table(("issue", "figure", "measured", "baseline", "target", "met"), router_rows(R, int(a.clients)), left=2))
        for p in router_problems(R):
            print("bench: " + p, file=sys.stderr)
        if router_problems(R):
            sys.exit(1)
        return
    gb = go_benchmarks(f"{out}/go.txt")
    g = lambda pkg, name, unit="ns/op": gb.get((pkg, name), {}).get(unit)
    us = lambda v: None if v is None else v / 1e3

    def verdict(v, limit, below=True):
        if v is None:
            return "n/a"
        return "yes" if (v < limit if below else v >= limit) else "NO"

    # The summary: figure, measured, baseline, target, met.
    S = []
    v = us(g("authz/envoy", "BenchmarkCheck"))
    allocs = g("authz/envoy", "BenchmarkCheck", "allocs/op")
    S.append(("2", "authz BenchmarkCheck, 1 KiB tools/call", f"{fmt(v, ' µs')}, {fmt(allocs, ' allocs', 0)}", "-",
              "< 15 µs, < 60 allocs", "n/a" if v is None or allocs is None else ("yes" if v < 15 and allocs < 60 else "NO")))
    noop = ghz(out, "noop")
    # Issue 2 sets the 70% target for the plain Check; issue 7 asks the JWT
    # scenario to be measured against the same baseline.
    for issue, name, label, target in (("2, 7", "check", "ghz Check, CEL", True),
                                       ("7", "check-jwt", "ghz Check, JWT + warm exchange + CEL", False)):
        r = ghz(out, name)
        ratio = r["rps"] / noop["rps"] if r and noop else None
        S.append((issue, label + " (req/s)", fmt(r and r["rps"], "", 0),
                  f"no-op {fmt(noop and noop['rps'], '', 0)}", ">= 70% of no-op" if target else "measured",
                  f"{fmt(ratio and ratio * 100, '%', 0)}" + (f" {verdict(ratio, 0.7, below=False)}" if target else " of no-op")))
    v = us(g("authz/envoy", "BenchmarkCheckIdentity"))
    S.append(("3", "authz BenchmarkCheckIdentity (warm key + exchange caches)", fmt(v, " µs"),
              f"identity off {fmt(us(g('authz/envoy', 'BenchmarkCheck')), ' µs')}", "< 25 µs", verdict(v, 25)))
    S.append(("3", "exchange BenchmarkExchangeMiss (loopback token service)", fmt(us(g("exchange", "BenchmarkExchangeMiss")), " µs"),
              f"warm {fmt(us(g('exchange', 'BenchmarkExchange')), ' µs')}", "measured", "-"))
    v = g("exchange", "BenchmarkCacheMemory", "MiB/100k")
    S.append(("3", "exchange 100,000 cached tokens (heap)", fmt(v, " MiB"),
              f"{fmt(g('exchange', 'BenchmarkCacheMemory', 'bytes/entry'), ' B/entry', 0)}", "< 100 MiB", verdict(v, 100)))
    v = us(g("policy", "BenchmarkDecideCEL"))
    S.append(("4", "policy BenchmarkDecideCEL (Keycloak roles)", fmt(v, " µs", 2), "-", "< 5 µs", verdict(v, 5)))
    v = us(g("policy", "BenchmarkDecideRego"))
    S.append(("4", "policy BenchmarkDecideRego (Keycloak roles)", fmt(v, " µs", 2), f"CEL {fmt(us(g('policy', 'BenchmarkDecideCEL')), ' µs', 2)}", "< 50 µs", verdict(v, 50)))
    v = g("policy", "BenchmarkFilter1000CEL")
    v = v and v / 1e6
    S.append(("4", "policy BenchmarkFilter1000CEL (1,000 tools)", fmt(v, " ms", 2),
              f"Rego {fmt((g('policy', 'BenchmarkFilter1000Rego') or 0) / 1e6 or None, ' ms', 2)}", "< 5 ms", verdict(v, 5)))
    for sub, label, target in (("filter=authz", "router tools/list 50 x 20, warm caches, filtered via authz: p99", True),
                               ("filter=each-call", "router tools/list 50 x 20, 1,000 CEL decisions per call: p99", False)):
        name = "BenchmarkToolsListLatency/" + sub
        v = g("router", name, "p99-µs")
        v = v and v / 1e3
        S.append(("5", label, fmt(v, " ms", 2),
                  f"p50 {fmt((g('router', name, 'p50-µs') or 0) / 1e3 or None, ' ms', 2)}",
                  "< 2 ms" if target else "measured", verdict(v, 2) if target else "-"))
    d = g("router", "BenchmarkToolsCallLatency/direct", "p50-µs")
    r = g("router", "BenchmarkToolsCallLatency/router", "p50-µs")
    added = None if d is None or r is None else (r - d) / 1e3
    S.append(("5", "router tools/call p50 added (go-sdk client)", fmt(added, " ms", 3),
              f"direct p50 {fmt(d and d / 1e3, ' ms', 3)}", "< 1 ms", verdict(added, 1)))
    d, r = g("router", "BenchmarkToolsCallLatency/direct"), g("router", "BenchmarkToolsCallLatency/router")
    S.append(("5", "router tools/call mean (BenchmarkToolsCallLatency)", fmt(r and r / 1e6, " ms", 3),
              f"direct {fmt(d and d / 1e6, ' ms', 3)}", "-", "-"))
    # Issue 11: the allocations the router adds to a tools/call (2025-11-25
    # end to end), at most half of the 290 it added when the issue was filed
    # (563 vs 273 direct). "signed" is the direct call through the
    # benchmark's own signing transport, which stands in for authz: router
    # minus signed is the router's own share.
    ad, asg, ar = (g("router", "BenchmarkToolsCallLatency/" + n, "allocs/op") for n in ("direct", "signed", "router"))
    added = None if ad is None or ar is None else ar - ad
    own = None if asg is None or ar is None else ar - asg
    S.append(("11", "router-added allocations per tools/call (router - direct)", fmt(added, "", 0),
              f"router {fmt(ar, '', 0)}, direct {fmt(ad, '', 0)}; at filing 290 (563 - 273)", "<= 145", verdict(added, 145.5)))
    S.append(("11", "  ... the router's own (router - signed: without the benchmark's signer)", fmt(own, "", 0),
              f"signed {fmt(asg, '', 0)}", "measured", "-"))
    v = g("router", "BenchmarkConcurrentSessions")
    failed = "--- FAIL: BenchmarkConcurrentSessions" in open(f"{out}/go.txt", errors="replace").read()
    S.append(("5", "router 1,000 concurrent sessions, no errors",
              "FAILED" if failed else ("ok, " + fmt(v / 1e9, " s", 2) if v else "n/a"), "-",
              "no errors", "NO" if failed else ("yes" if v else "n/a")))
    hd, hf = hey(out, "direct", clk), hey(out, "front", clk)
    if hd and hf:
        ratio = hf["rps"] / hd["rps"] if hd["rps"] else None
        S.append(("7", "HTTP tools/call via front+authz+router (req/s)", fmt(hf["rps"], "", 0),
                  f"upstream alone {fmt(hd['rps'], '', 0)}", "measured", f"{fmt(ratio and ratio * 100, '%', 0)} of upstream" + bad(hd, hf)))
        S.append(("7", "HTTP tools/call p50 / p99", f"{fmt(hf['p50'], '', 1)} / {fmt(hf['p99'], ' ms', 1)}",
                  f"{fmt(hd['p50'], '', 1)} / {fmt(hd['p99'], ' ms', 1)}", "measured", "-"))

    R = router_runs(out, clk)
    S += router_rows(R, int(a.clients))

    head = ("issue", "figure", "measured", "baseline", "target", "met")
    print("== Summary (every figure, its baseline and its target)")
    print(table(head, S, left=2))

    # ghz and hey tables.
    G = []
    for label, name in (("no-op ext_authz (baseline)", "noop"), ("mcp-authz Check, CEL", "check"),
                        ("mcp-authz Check, JWT + warm exchange + CEL", "check-jwt")):
        r = ghz(out, name)
        if r:
            G.append((label, fmt(r["rps"], "", 0), fmt(r["p50"], "", 3), fmt(r["p99"], "", 3),
                      fmt(noop and r["rps"] / noop["rps"] * 100, "%", 0), json.dumps(r["codes"])))
    ghead = ("server", "req/s", "p50 ms", "p99 ms", "vs no-op", "status codes")
    H = []
    hhead = ("path", "req/s", "p50 ms", "p99 ms", "vs upstream", "process", "RSS peak MiB", "CPU s", "CPU ms / 1k req", "codes")
    for label, r, names in (("upstream alone (baseline)", hd, ["benchmcp"]),
                            ("front -> authz -> router -> upstream", hf, ["mcp-authz", "benchmcp"])):
        if not r:
            continue
        for i, p in enumerate(r["procs"]):
            first = i == 0
            H.append((label if first else "", fmt(r["rps"], "", 0) if first else "", fmt(r["p50"], "", 1) if first else "",
                      fmt(r["p99"], "", 1) if first else "",
                      fmt(hd and r["rps"] / hd["rps"] * 100, "%", 0) if first else "", names[i],
                      fmt(p["rss"], "", 1), fmt(p["cpu"], "", 2), fmt(p["cpu"] / r["total"] * 1e6, "", 1),
                      (json.dumps(r["codes"]) + (f" errors {r['errors']}" if r["errors"] else "")) if first else ""))
    print()
    print(table(ghead, G))
    print()
    print(table(hhead, H))
    print(f"\nmake bench took {a.elapsed} s; all output in {out}/, the report in {a.doc}")

    # Every Go benchmark.
    units = ["ns/op", "B/op", "allocs/op"]
    B = []
    for (pkg, name), m in sorted(gb.items()):
        extra = ", ".join(f"{fmt(v, '', 1)} {u}" for u, v in m.items() if u not in units + ["iterations"])
        B.append((pkg, name, fmt(m.get("ns/op"), "", 0), fmt(m.get("B/op"), "", 0), fmt(m.get("allocs/op"), "", 0), extra))

    cmds = open(f"{out}/commands.txt").read().strip() if os.path.exists(f"{out}/commands.txt") else ""
    base = ""
    if os.path.exists(f"{out}/benchstat.txt"):
        base = ("\n## Go benchmarks beside the baseline commit\n\n"
                "`BENCH_BASE` built the same benchmarks from an earlier commit and ran them in this run;\n"
                "benchstat compares the three runs of each (`~` means no significant difference).\n\n"
                "```\n" + open(f"{out}/benchstat.txt", errors="replace").read().strip() + "\n```\n")
    doc = f"""# Benchmarks

Written by `make bench` (hack/bench.sh, hack/benchreport.py); do not edit by
hand. Every server runs on 127.0.0.1 on the machine below, next to the load
tools, so the load tools take part of the same CPUs; every load is bounded
by a request count. Compare figures only within one run.

## Machine

{md(("", ""), machine(), left=2)}

## Summary

Each figure beside its baseline in the same run and the target of its issue.

{md(head, S, left=2)}

## ext_authz Check over gRPC (ghz)

One `tools/call` of about 1 KiB as Envoy's ext_authz filter sends it, n={a.n},
c={a.c}, 2 connections. The no-op server (hack/noopauthz) answers OK without
looking, on the same gRPC stack. The JWT row verifies alice's token from
bin/devidp, takes the exchanged token from the warm exchange cache and
evaluates the Keycloak tool-roles CEL policy over it.

{md(ghead, G)}

## MCP tools/call over HTTP (hey)

The same go-sdk upstream (hack/benchmcp, one `echo` tool, JSON answers)
called straight and through one mcp-authz process running the front,
authz and the router (identity and exchange against bin/devidp, the
Keycloak tool-roles CEL policy). {a.c} clients at once, each on its own session
opened by `initialize` beforehand (a session refuses a second request with an
id already in flight, and hey sends one fixed body), each a hey process with
one worker; {a.http_n} requests in all, after 2,000 warm-up requests.
Latencies have hey's 0.1 ms resolution; req/s is all requests over the wall
time of the run. RSS is the process's peak (VmHWM); CPU is utime + stime
over the measured run.

{md(hhead, H)}

## Router: 10 go-sdk upstreams x 20 tools, no identity (hack/bench-router.sh)

One hack/benchmcp process holds ten go-sdk servers of 22 tools each; another,
identical, is called directly. mcp-authz runs the front, authz and the
router in one process, without identity, every tool allowed (CEL `true`).
hack/benchload drives go-sdk clients, twice: pinned to MCP 2025-11-25
(sessions), then speaking 2026-07-28 (stateless) to stateless upstreams
(`benchmcp -stateless`). {a.c} clients make the calls (client i calls
tool_(i mod 20) of server i mod 10); then, on fresh processes, {a.clients}
clients at once each initialize (2026: discover), list tools and call one
tool; 2025 clients hold their sessions until all have, 2026 callers then all
call once more at the same moment. Every 2026 call must reach the upstream
as a 2026-07-28 `tools/call`, counted there. CPU is utime + stime of
mcp-authz over the calls; RSS the peak sampled every 100 ms; upstream
sessions are those the upstream process opened. Rows marked [BENCH_BASE
build] ran the same with mcp-authz built from BENCH_BASE. The summary above
holds the figures.

## Go benchmarks

`-benchmem`, `-benchtime={a.benchtime}`; BenchmarkConcurrentSessions and
BenchmarkCacheMemory once each (`-benchtime=1x`). Extra metrics are the
benchmarks' own (`b.ReportMetric`).

{md(("package", "benchmark", "ns/op", "B/op", "allocs/op", "other"), B, left=2)}
{base}
## Commands

`make bench` (about {int(a.elapsed) // 60 + 1} minutes here) ran these; PORT is a free loopback
port, $TOKEN alice's token from bin/devidp, $SESSION the session id that
`initialize` returned.

```sh
{cmds}
```
"""
    os.makedirs(os.path.dirname(a.doc) or ".", exist_ok=True)
    with open(a.doc, "w") as f:
        f.write(doc)

    # What makes the run fail: a benchmark failed or a load got a non-OK answer.
    problems = []
    gotxt = open(f"{out}/go.txt", errors="replace").read()
    if re.search(r"^(--- FAIL|FAIL|panic)", gotxt, re.M):
        problems.append(f"a Go benchmark failed (see {out}/go.txt)")
    for name in ("noop", "check", "check-jwt"):
        r = ghz(out, name)
        if r and set(r["codes"]) != {"OK"}:
            problems.append(f"ghz {name}: answers {r['codes']}")
    for name, r in (("upstream alone", hd), ("front", hf)):
        if r and (set(r["codes"]) != {"200"} or r["errors"]):
            problems.append(f"hey {name}: answers {r['codes']}, {r['errors']} errors (see {out}/*.log)")
    problems += router_problems(R)
    for p in problems:
        print("bench: " + p, file=sys.stderr)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
