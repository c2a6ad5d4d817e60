#!/usr/bin/env python3
"""bench/gen.py - write one workload for every tool bench/run.sh compares.

usage: gen.py KIND N DIR [--cmd PROGRAM ARG...]

KIND is the shape of the graph:
  chain    s1 <- s2 <- ... <- sN (each needs the one before)
  fanout   N independent steps
  diamond  a 1 -> N -> 1 diamond: `first`, then s1..sN (each needs first), then `last`
           (needs all of them); N + 2 steps in all
  noop     N independent steps of the built-in `pass` step type: the engine and the
           run store alone, no process (wfhost only)
  noop-chain   the same, each needing the one before (wfhost only)
  noop-runner  N independent steps of the `noop` plugin: what a step runner costs
           (wfhost only)
  one      one step (start-up)
Every step runs the same command (default: the `true` program; --cmd `sleep 0.05`).

Writes into DIR: flow.yaml (wfhost), build.ninja, Makefile, Snakefile and flow.cwl +
job.yml (cwltool). The peers get the same graph with the same command in every node.
Output files: ninja and make use phony-like targets that never exist, so every run
runs every step; snakemake runs with --forceall; cwltool runs every step by design.
"""
import json
import os
import shlex
import sys


def nodes(kind, n):
    """[(id, [needs...])] in an order where needs come first."""
    if kind == "one":
        return [("s1", [])]
    if kind == "chain":
        return [("s1", [])] + [(f"s{i}", [f"s{i - 1}"]) for i in range(2, n + 1)]
    if kind == "noop-chain":
        return nodes("chain", n)
    if kind in ("fanout", "noop", "noop-runner"):
        return [(f"s{i}", []) for i in range(1, n + 1)]
    if kind == "diamond":
        mid = [f"s{i}" for i in range(1, n + 1)]
        return [("first", [])] + [(m, ["first"]) for m in mid] + [("last", mid)]
    raise SystemExit(f"gen.py: unknown kind '{kind}' (chain, fanout, diamond, noop, noop-chain, "
                     "noop-runner, one)")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def wfhost(g, kind, cmd):
    out = [f"name: bench-{kind}", "steps:"]
    argv = ", ".join(f'"{a}"' for a in cmd)
    for sid, needs in g:
        out.append(f"  - id: {sid}")
        if kind in ("noop", "noop-chain"):
            out.append("    uses: pass")
        elif kind == "noop-runner":
            out.append("    uses: noop")
        else:
            out.append("    uses: shell")
            out.append(f"    with: {{argv: [{argv}]}}")
        if needs:
            out.append(f"    needs: [{', '.join(needs)}]")
    return "\n".join(out) + "\n"


def ninja(g, cmd):
    out = ["rule t", f"  command = {shlex.join(cmd)}"]
    for sid, needs in g:
        out.append(f"build {sid}: t" + ("" if not needs else " " + " ".join(needs)))
    out.append("default " + " ".join(sid for sid, _ in g))
    return "\n".join(out) + "\n"


def make(g, cmd):
    ids = [sid for sid, _ in g]
    out = [".PHONY: all " + " ".join(ids), "all: " + " ".join(ids)]
    for sid, needs in g:
        out.append(f"{sid}: {' '.join(needs)}".rstrip())
        out.append(f"\t@{shlex.join(cmd)}")
    return "\n".join(out) + "\n"


def snakemake(g, cmd):
    # One rule per node would make snakemake parse N rules; a wildcard rule with an
    # input function is how a snakemake user writes a large regular graph.
    deps = {sid: needs for sid, needs in g}
    out = [f"DEPS = {deps!r}",
           "rule all:",
           f"    input: {['o/' + sid for sid, _ in g]!r}",
           "rule step:",
           "    input: lambda w: ['o/' + d for d in DEPS[w.id]]",
           "    output: touch('o/{id}')",
           f"    shell: {shlex.join(cmd)!r}"]
    return "\n".join(out) + "\n"


def cwl(g, cmd):
    """A CWL workflow: one CommandLineTool run by every step; a step's `after` input
    carries the outputs of the steps it needs, which is how CWL expresses order."""
    tool = {
        "class": "CommandLineTool",
        "baseCommand": cmd,
        "inputs": {"after": {"type": ["null", {"type": "array", "items": "File"}]}},
        "outputs": {"done": {"type": "File", "outputBinding": {"glob": "done"}}},
        "requirements": [{"class": "InitialWorkDirRequirement",
                          "listing": [{"entryname": "done", "entry": "x"}]}],
    }
    lines = ["cwlVersion: v1.2", "class: Workflow",
             "requirements:",
             "  MultipleInputFeatureRequirement: {}",
             "inputs: []",
             "outputs: []",
             "steps:"]
    toolj = json.dumps(tool)
    for sid, needs in g:
        lines.append(f"  {sid}:")
        lines.append(f"    run: {toolj}")
        if needs:
            src = ", ".join(f"{d}/done" for d in needs)
            lines.append(f"    in: {{after: {{source: [{src}], linkMerge: merge_flattened}}}}")
        else:
            lines.append("    in: {}")
        lines.append("    out: [done]")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) < 4 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    kind, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cmd = ["true"]
    if "--cmd" in sys.argv:
        cmd = sys.argv[sys.argv.index("--cmd") + 1:]
    # the program, not a shell builtin: look it up once, as ninja and make would exec it
    if "/" not in cmd[0]:
        for p in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
            if os.access(os.path.join(p, cmd[0]), os.X_OK):
                cmd[0] = os.path.join(p, cmd[0])
                break
    g = nodes(kind, n)
    os.makedirs(d, exist_ok=True)
    write(os.path.join(d, "flow.yaml"), wfhost(g, kind, cmd))
    if not kind.startswith("noop"):
        write(os.path.join(d, "build.ninja"), ninja(g, cmd))
        write(os.path.join(d, "Makefile"), make(g, cmd))
        write(os.path.join(d, "Snakefile"), snakemake(g, cmd))
        write(os.path.join(d, "flow.cwl"), cwl(g, cmd))


if __name__ == "__main__":
    main()
