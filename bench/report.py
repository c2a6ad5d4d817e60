#!/usr/bin/env python3
"""bench/report.py - turn bench/out/results.json (from bench/run.sh) into the Markdown
that docs/performance.md carries: the machine, the table, what each sandbox profile and
durability setting costs, and issue #8's targets, each checked against this run.

usage: bench/report.py [RESULTS.json]    (default: bench/out/results.json)
"""
import json
import os
import sys


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "out", "results.json")
    try:
        doc = json.load(open(path))
    except (OSError, ValueError) as e:
        print(f"report.py: {path}: {e}", file=sys.stderr)
        return 2
    rows = doc["results"]
    m = doc["machine"]
    out = []
    out.append(f"- {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}; load average "
               f"{m['load_start']} at the start, {m['load_end']} at the end")
    for n in doc.get("notes", []):
        out.append(f"- {n}")
    out.append("")
    out.append("| workload | N | tool | median ms | min | max | overhead ms/step | peak RSS MB | × best peer |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["median_ms"] == "FAILED":
            out.append(f"| {r['workload']} | {r['N']} | {r['tool']} | FAILED | | | | | |")
            continue
        rss = num(r["peak_rss_kb"])
        out.append(f"| {r['workload']} | {r['N']} | {r['tool']} | {r['median_ms']} | {r['min_ms']} | "
                   f"{r['max_ms']} | {r['overhead_ms_per_step']} | {rss / 1024:.1f} | "
                   f"{r['ratio_to_best_peer']}{'' if r['ratio_to_best_peer'] == '-' else '×'} |")
    table = "\n".join(out)

    def med(wl, n, tool):
        for r in rows:
            if r["workload"] == wl and r["N"] == str(n) and r["tool"] == tool:
                return num(r["median_ms"])
        return None

    sizes = sorted({int(r["N"]) for r in rows if r["workload"] == "chain"})
    costs = []
    for wl in ("chain", "fanout", "noop"):
        for n in sizes:
            v = {t: med(wl, n, "wfhost/" + t) for t in
                 ("none+nostore", "none+normal", "none", "process", "strict")}
            if None in v.values():
                continue
            per = {t: x / n for t, x in v.items()}
            costs.append(f"| {wl} | {n} | {per['none+nostore']:.2f} | {per['none+normal'] - per['none+nostore']:+.2f} | "
                         f"{per['none'] - per['none+normal']:+.2f} | {per['process'] - per['none']:+.2f} | "
                         f"{per['strict'] - per['none']:+.2f} |")
    costs_md = ("| workload | N | none, no store (ms/step) | + store, normal | + full (fsync) | "
                "process vs none | strict vs none |\n|---|---:|---:|---:|---:|---:|---:|\n" + "\n".join(costs))

    targets = []

    def ratio(a, b):
        return a / b if a is not None and b else None

    def verdict(ok):
        return "**met**" if ok else "**not met**"

    for wl in ("chain", "fanout"):
        for n in sizes:
            nj = med(wl, n, "ninja")
            p, s = ratio(med(wl, n, "wfhost/process"), nj), ratio(med(wl, n, "wfhost/strict"), nj)
            if p is None or s is None:
                continue
            targets.append(f"| {wl} {n}: process ≤ 1.2× ninja, strict ≤ 2× | process {p:.2f}×, strict {s:.2f}× | "
                           f"{verdict(p <= 1.2 and s <= 2)} |")
    # noop and noopchain: the built-in `pass` (in the host); wfhost-runner/P rows: the
    # `noop` plugin in a step runner per step, shown for what a runner costs
    noop_sizes = sorted({int(r["N"]) for r in rows if r["workload"] in ("noop", "noopchain")})
    for wl, shape in (("noop", "fan-out"), ("noopchain", "chain")):
        for n in noop_sizes:
            for t in ("none", "none+normal", "none+nostore"):
                v = med(wl, n, "wfhost/" + t)
                if v:
                    rate = n / (v / 1000)
                    d = {"none": "full", "none+normal": "normal", "none+nostore": "no store"}[t]
                    targets.append(f"| no-op steps ≥ 20 000/s (pass {shape}, N={n}, durability {d}) | "
                                   f"{rate:,.0f} steps/s | {verdict(rate >= 20000)} |")
    for n in noop_sizes:
        for p in ("none", "process", "strict"):
            v = med("noop", n, "wfhost-runner/" + p)
            if v:
                targets.append(f"| (for comparison: the `noop` plugin, a runner per step, {p}, N={n}) | "
                               f"{n / (v / 1000):,.0f} steps/s | - |")
    floor = med("startup", 1, "floor")
    for t in ("wfhost/none+nostore", "wfhost/none+normal", "wfhost/none", "wfhost/process", "wfhost/strict"):
        v = med("startup", 1, t)
        if v is not None:
            fl = f" (one fork+exec of `true`: {floor:.1f} ms in this run)" if floor else ""
            targets.append(f"| start-up of a one-step workflow ≤ 10 ms ({t[7:]}) | {v:.1f} ms{fl} | {verdict(v <= 10)} |")
    for r in rows:
        if r["workload"] == "validate" and r["N"] == "100000" and r["median_ms"] != "FAILED":
            t, mb = num(r["median_ms"]), num(r["peak_rss_kb"]) / 1024
            targets.append(f"| 100 000 steps validated in ≤ 1 s and ≤ 300 MB | {t / 1000:.2f} s, {mb:.0f} MB | "
                           f"{verdict(t <= 1000 and mb <= 300)} |")
    conc = [r for r in rows if r["workload"] == "concurrent"]
    if conc:
        ok = all(r["median_ms"] != "FAILED" for r in conc)
        targets.append(f"| 100 concurrent runs on one home: all succeed, store intact | "
                       f"{', '.join(r['tool'][7:] + (' failed' if r['median_ms'] == 'FAILED' else ' ok') for r in conc)} | "
                       f"{verdict(ok)} |")
    for p in ("strict", "process", "none", "none+normal"):
        worst = None
        for wl in ("chain", "fanout", "diamond", "sleep", "startup"):
            for n in sizes + [1]:
                for slow in ("snakemake", "cwltool"):
                    sv, w = med(wl, n, slow), med(wl, n, "wfhost/" + p)
                    if sv and w and (worst is None or sv / w < worst[0]):
                        worst = (sv / w, f"{wl} {n}, vs {slow}")
        if worst:
            targets.append(f"| 10× or more ahead of snakemake and cwltool on every shared workload ({p}) | "
                           f"least: {worst[0]:.1f}× ({worst[1]}) | {verdict(worst[0] >= 10)} |")
    targets_md = "| target | this run | |\n|---|---|---|\n" + "\n".join(targets)

    # Against the slow peers, workload by workload: the wall-clock ratio (the target's
    # measure), the ratio of what each adds above the fork+exec floor, and the floor's own
    # ratio: no tool can be further ahead than the floor, so where it is under 10x the
    # wall-clock target cannot be met by anyone on this machine.
    peers = []
    for wl in ("chain", "fanout", "diamond", "sleep", "startup"):
        for n in (sizes if wl != "startup" else [1]):
            fl = med(wl, n, "floor")
            steps = n + 2 if wl == "diamond" else n
            for slow in ("snakemake", "cwltool"):
                sv = med(wl, n, slow)
                if not sv or not fl:
                    continue
                cells = []
                for p in ("strict", "process", "none"):
                    w = med(wl, n, "wfhost/" + p)
                    if not w:
                        cells.append("-")
                        continue
                    ovh = (sv - fl) / (w - fl) if w > fl else None
                    cells.append(f"{sv / w:.1f}× / " + (f"{ovh:.1f}×" if ovh else "-"))
                peers.append(f"| {wl} | {n} | {slow} | {(sv - fl) / steps:.2f} | {sv / fl:.1f}× | " +
                             " | ".join(cells) + " |")
    peers_md = ("| workload | N | peer | its overhead ms/step | floor's lead (the most anyone can have) | "
                "strict: wall / overhead | process | none |\n|---|---:|---|---:|---:|---:|---:|---:|\n" +
                "\n".join(peers))

    print("<!-- machine -->\n" + out[0] + "\n" + "\n".join(out[1:out.index("")]))
    print("\n<!-- table -->\n" + table[table.index("| workload"):])
    print("\n<!-- costs -->\n" + costs_md)
    print("\n<!-- targets -->\n" + targets_md)
    print("\n<!-- peers -->\n" + peers_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
