#!/usr/bin/env bash
# bench/run.sh - run the same workloads through wfhost and its peers, in one go, and
# print wall times (median/min/max of R runs), per-step cost and the ratio to the best
# peer. Also writes bench/out/results.tsv for machines.
#
# usage: bench/run.sh [-n "100 1000"] [-r RUNS] [BUILD_DIR]
# Peers: ninja and make (generated build files), the fork+exec floor (bench/floor.c).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sizes="100 1000"
runs=5
while getopts "n:r:" o; do
  case $o in n) sizes=$OPTARG ;; r) runs=$OPTARG ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
build=$(cd "${1:-$here/../build}" && pwd)
wfhost=$build/bin/wfhost
[ -x "$wfhost" ] || { echo "bench: build first (./dev build): $wfhost missing" >&2; exit 2; }
out=$here/out
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/floor" "$here/floor.c"
TRUE=$(type -P true)   # the program, not the shell builtin

ms_now() { date +%s%N; }
# time_cmd DIR CMD...: prints wall ms of one run of CMD in DIR (output discarded)
time_cmd() {
  local dir=$1; shift
  local a b
  a=$(ms_now)
  (cd "$dir" && "$@" >/dev/null 2>&1) || { echo "bench: failed: $*" >&2; return 1; }
  b=$(ms_now)
  echo "scale=3; ($b - $a) / 1000000" | bc
}
# stats R CMD...: "median min max" over R runs
stats() {
  local dir=$1; shift
  local vals=()
  for _ in $(seq "$runs"); do vals+=("$(time_cmd "$dir" "$@")"); done
  printf '%s\n' "${vals[@]}" | sort -n | awk '{v[NR]=$1} END {printf "%.1f %.1f %.1f\n", v[int((NR+1)/2)], v[1], v[NR]}'
}

gen_workflow() { # gen_workflow KIND N FILE
  local kind=$1 n=$2 f=$3
  { echo "name: bench-$kind-$n"; echo "steps:"
    for i in $(seq 1 "$n"); do
      echo "  - id: s$i"; echo "    uses: shell"
      if [ "$kind" = chain ] && [ "$i" -gt 1 ]; then echo "    needs: [s$((i - 1))]"; fi
      echo "    with: {argv: [\"$TRUE\"]}"
    done; } >"$f"
}
gen_ninja() {
  local kind=$1 n=$2 f=$3
  { echo "rule t"; echo "  command = $TRUE"
    for i in $(seq 1 "$n"); do
      if [ "$kind" = chain ] && [ "$i" -gt 1 ]; then echo "build s$i: t s$((i - 1))"; else echo "build s$i: t"; fi
    done; } >"$f"
}
gen_make() {
  local kind=$1 n=$2 f=$3
  { printf 'all:'; for i in $(seq 1 "$n"); do printf ' s%d' "$i"; done; echo
    for i in $(seq 1 "$n"); do
      if [ "$kind" = chain ] && [ "$i" -gt 1 ]; then echo "s$i: s$((i - 1))"; else echo "s$i:"; fi
      printf '\t@%s\n' "$TRUE"
    done; } >"$f"
}

printf 'workload\tN\ttool\tmedian_ms\tmin_ms\tmax_ms\tper_step_ms\n' >"$out/results.tsv"
printf '%-8s %6s  %-14s %10s %10s %10s %9s %8s\n' workload N tool median_ms min_ms max_ms ms/step ratio
for kind in chain fanout; do
  par=1; [ "$kind" = fanout ] && par=2
  for n in $sizes; do
    d=$work/$kind-$n; mkdir -p "$d"
    gen_workflow "$kind" "$n" "$d/flow.yaml"
    gen_ninja "$kind" "$n" "$d/build.ninja"
    gen_make "$kind" "$n" "$d/Makefile"
    declare -A res=()
    res[floor]=$(stats "$d" "$work/floor" "$n" "$par" "$TRUE")
    if command -v ninja >/dev/null; then
      res[ninja]=$(stats "$d" ninja -j "$par")
    fi
    if command -v make >/dev/null; then
      res[make]=$(stats "$d" make -s -j "$par")
    fi
    # wfhost as it ships (every state change fsync'ed to the run store), and without the
    # store, to show what durability costs.
    res[wfhost]=$(stats "$d" "$wfhost" exec --home "$work/home" --concurrency "$par" flow.yaml)
    res[wfhost-nostore]=$(stats "$d" "$wfhost" exec --no-store --concurrency "$par" flow.yaml)
    best=""
    for t in ninja make; do
      [ -n "${res[$t]:-}" ] || continue
      m=${res[$t]%% *}
      if [ -z "$best" ] || [ "$(echo "$m < $best" | bc)" = 1 ]; then best=$m; fi
    done
    for t in floor ninja make wfhost wfhost-nostore; do
      [ -n "${res[$t]:-}" ] || continue
      read -r med mn mx <<<"${res[$t]}"
      per=$(printf "%.3f" "$(echo "scale=4; $med / $n" | bc)")
      ratio=$( [ -n "$best" ] && printf "%.2f" "$(echo "scale=4; $med / $best" | bc)" || echo "-")
      printf '%-8s %6s  %-14s %10s %10s %10s %9s %7sx\n' "$kind" "$n" "$t" "$med" "$mn" "$mx" "$per" "$ratio"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$n" "$t" "$med" "$mn" "$mx" "$per" >>"$out/results.tsv"
    done
    unset res
  done
done
echo "(ratio = median / best of ninja and make; results also in $out/results.tsv)"
