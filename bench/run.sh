#!/usr/bin/env bash
# bench/run.sh - run the workloads of issue #8 through wfhost and its peers, in one go,
# and print one table: wall median/min/max over R runs, per-step overhead, peak RSS and
# the ratio to the best peer measured in the same run. Also writes bench/out/results.tsv
# and bench/out/results.json (with the machine and its load) for machines.
#
# usage: bench/run.sh [-n SIZES] [-r RUNS] [-w WORKLOADS] [-p PROFILES] [-s SLOW_MAX]
#                     [-S] [BUILD_DIR]
#   -n SIZES      step counts for the graph workloads (default "100 1000"; the issue's
#                 full set is -n "100 1000 10000", which takes about an hour on 2 cores
#                 because of the strict profile and the slow peers)
#   -r RUNS       runs per figure (default 3; the median is reported)
#   -w WORKLOADS  any of: chain fanout diamond sleep noop noopchain startup validate
#                 concurrent
#                 (default all)
#   -p PROFILES   wfhost sandbox profiles (default "strict process none")
#   -s SLOW_MAX   largest N given to snakemake and cwltool, which run once per figure
#                 (default 1000: at 10000 steps they take minutes per run)
#   -S            skip snakemake and cwltool
#   BUILD_DIR     the wfhost build to measure (default build/; a Release build is what
#                 the figures in docs/performance.md come from)
#
# Workloads: chain (N steps, each needing the one before, parallelism 1), fanout (N
# independent steps, parallelism 2), diamond (1 -> N -> 1, parallelism 2), sleep (N x
# `sleep 0.05`, parallelism 16), noop (N independent steps of the built-in `pass` step
# type: the engine and the run store alone, no process; rows wfhost/none*, whose
# profile does not apply to pass; plus rows wfhost-runner/PROFILE: the same N steps of
# the `noop` plugin, each in a step runner, parallelism 2), noopchain (N chained `pass`
# steps: one turn, a commit per 1024 steps), startup (a one-step
# workflow from process start to exit, registry verification and plugin loading
# included), validate (`wfhost validate` of a 10 000- and a 100 000-step workflow) and
# concurrent (100 `wfhost exec` of a 10-step workflow at once on one home; all must
# succeed and the store must pass `PRAGMA integrity_check` afterwards).
# Peers: ninja and make (generated build files), snakemake and cwltool (Debian's; the
# script installs them with apt-get when missing and run as root), and the fork+exec
# floor (bench/timeit.c -n N -p P: the same command spawned N times, P at a time;
# not a peer: no tool can go below it).
# wfhost runs once per profile (a policy file with `profile * P`), with the run store at
# its default durability (synchronous=FULL); for `none` also with `--durability normal`
# (when this wfhost has it) and `--no-store`, to show what durability costs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sizes="100 1000"
runs=3
workloads="chain fanout diamond sleep noop noopchain startup validate concurrent"
profiles="strict process none"
slow_max=1000
skip_slow=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case ${1:-} in --help) usage; exit 0 ;; esac
while getopts "n:r:w:p:s:Sh" o; do
  case $o in
    n) sizes=$OPTARG ;; r) runs=$OPTARG ;; w) workloads=$OPTARG ;; p) profiles=$OPTARG ;;
    s) slow_max=$OPTARG ;; S) skip_slow=1 ;; h) usage; exit 0 ;; *) usage >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
case $runs in ''|*[!0-9]*|0) echo "bench: -r needs a positive number, not '$runs'" >&2; exit 2 ;; esac
for n in $sizes; do
  case $n in ''|*[!0-9]*|0) echo "bench: -n: '$n' is not a positive step count" >&2; exit 2 ;; esac
done
build=$(cd "${1:-$here/../build}" 2>/dev/null && pwd) || { echo "bench: no build directory ${1:-$here/../build}" >&2; exit 2; }
wfhost=$build/bin/wfhost
[ -x "$wfhost" ] || { echo "bench: build first (./dev build): $wfhost missing" >&2; exit 2; }
[ -d "$build/dev-home/registry" ] || { echo "bench: $build/dev-home has no signed registry (build the wfh_dev_registry target)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "bench: python3 is needed to generate the workloads" >&2; exit 2; }
out=$here/out
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/wfh-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/timeit" "$here/timeit.c"
TRUE=$(type -P true)   # the program, not the shell builtin
SLEEP=$(type -P sleep)
has_durability=0
"$wfhost" exec --help 2>&1 | grep -q -- '--durability' && has_durability=1

note() { echo "$*"; notes+=("$*"); }
notes=()

# Peers that may be missing: install them when we can, say so visibly when we cannot.
declare -A have=()
for t in ninja make; do
  if command -v $t >/dev/null; then have[$t]=1; else note "skipped: $t (not installed)"; fi
done
if [ "$skip_slow" = 1 ]; then
  note "skipped: snakemake and cwltool (-S)"
else
  missing=()
  for t in snakemake cwltool; do command -v $t >/dev/null || missing+=("$t"); done
  if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench: installing ${missing[*]} with apt-get (Debian's packages)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
      >"$work/apt.log" 2>&1 || true
  fi
  for t in snakemake cwltool; do
    if command -v $t >/dev/null; then
      have[$t]=1
    elif [ "$(id -u)" != 0 ]; then
      note "skipped: $t (not installed, and not root to apt-get install it)"
    else
      note "skipped: $t (apt-get install failed: $(tail -n 1 "$work/apt.log" 2>/dev/null))"
    fi
  done
fi

# One wfhost home per profile, each a copy of the build's signed development registry,
# with a policy file that puts every step type under that profile.
# (`none` always: the noop workloads' pass steps run with it)
for p in $(printf '%s\n' $profiles none | sort -u); do
  mkdir -p "$work/home-$p"
  cp -r "$build/dev-home/." "$work/home-$p/"
  rm -f "$work/home-$p"/runs.db*
  printf 'profile * %s\n' "$p" >"$work/policy-$p"
done

# measure DIR CMD...: one run; prints "WALL_MS RSS_KB" (RSS: the largest process).
measure() {
  local dir=$1; shift
  # bench/timeit.c takes the clock around posix_spawn and wait4 of the command itself
  # (two `date` calls and /usr/bin/time around a subshell added ~3 ms of forks and execs)
  if ! (cd "$dir" && exec "$work/timeit" "$work/timing" "$@" >"$work/last.out" 2>"$work/last.err"); then
    echo "bench: failed in $dir: $*" >&2
    tail -n 5 "$work/last.err" >&2
    return 1
  fi
  local ms kb
  read -r ms kb <"$work/timing"
  echo "$ms $kb"
}
# stats R DIR CMD...: "MEDIAN MIN MAX RSS_KB" over R runs (RSS: the largest seen).
stats() {
  local r=$1 dir=$2; shift 2
  local vals=() rss=0 w k
  for _ in $(seq "$r"); do
    read -r w k < <(measure "$dir" "$@") || return 1
    [ -n "$w" ] || return 1
    vals+=("$w")
    [ "$k" -gt "$rss" ] && rss=$k
  done
  printf '%s\n' "${vals[@]}" | sort -g |
    awk -v rss="$rss" '{v[NR]=$1+0} END {printf "%.1f %.1f %.1f %d\n", v[int((NR+1)/2)], v[1], v[NR], rss}'
}

printf 'workload\tN\tsteps\ttool\tmedian_ms\tmin_ms\tmax_ms\toverhead_ms_per_step\tpeak_rss_kb\tratio_to_best_peer\truns\n' >"$out/results.tsv"
header() {
  printf '\n%-10s %6s  %-20s %9s %9s %9s %9s %8s %8s\n' workload N tool median_ms min_ms max_ms ovh_ms/st rss_MB ratio
}
declare -A res=() rr=()
order=()
# add TOOL R DIR CMD...: measure and remember under TOOL (a failure is a row too)
add() {
  local tool=$1 r=$2 dir=$3; shift 3
  local s
  if s=$(stats "$r" "$dir" "$@"); then res[$tool]=$s; else res[$tool]="FAILED"; fi
  rr[$tool]=$r
  order+=("$tool")
}
# flush WORKLOAD N STEPS IDEAL_MS: print and record the group, ratio to the best peer.
flush() {
  local wl=$1 n=$2 steps=$3 ideal=$4 best="" t
  for t in ninja make snakemake cwltool; do
    [ -n "${res[$t]:-}" ] && [ "${res[$t]}" != FAILED ] || continue
    local m=${res[$t]%% *}
    if [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$m; fi
  done
  for t in "${order[@]}"; do
    if [ "${res[$t]}" = FAILED ]; then
      printf '%-10s %6s  %-20s %9s\n' "$wl" "$n" "$t" FAILED
      printf '%s\t%s\t%s\t%s\tFAILED\t\t\t\t\t\t%s\n' "$wl" "$n" "$steps" "$t" "${rr[$t]}" >>"$out/results.tsv"
      continue
    fi
    local med mn mx rss
    read -r med mn mx rss <<<"${res[$t]}"
    local ovh ratio mb
    ovh=$(awk -v m="$med" -v i="$ideal" -v s="$steps" 'BEGIN{printf "%.3f", (m-i)/s}')
    ratio=$([ -n "$best" ] && awk -v m="$med" -v b="$best" 'BEGIN{printf "%.2f", m/b}' || echo -)
    mb=$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')
    printf '%-10s %6s  %-20s %9s %9s %9s %9s %8s %7sx\n' "$wl" "$n" "$t" "$med" "$mn" "$mx" "$ovh" "$mb" "$ratio"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$n" "$steps" "$t" "$med" "$mn" "$mx" "$ovh" "$rss" "$ratio" "${rr[$t]}" >>"$out/results.tsv"
  done
  res=(); rr=(); order=()
}
# wfhost_variants PAR FLOW R DIR: wfhost under every profile (+ durability variants)
wfhost_variants() {
  local par=$1 r=$2 dir=$3 p
  for p in $profiles; do
    add "wfhost/$p" "$r" "$dir" "$wfhost" exec --home "$work/home-$p" --policy "$work/policy-$p" \
      --concurrency "$par" flow.yaml
  done
  case " $profiles " in *" none "*)
    if [ "$has_durability" = 1 ]; then
      add "wfhost/none+normal" "$r" "$dir" "$wfhost" exec --home "$work/home-none" --policy "$work/policy-none" \
        --durability normal --concurrency "$par" flow.yaml
    fi
    add "wfhost/none+nostore" "$r" "$dir" "$wfhost" exec --no-store --home "$work/home-none" \
      --policy "$work/policy-none" --concurrency "$par" flow.yaml ;;
  esac
}
# peers N STEPS PAR DIR CMD...: the floor (CMD STEPS times, PAR at a time), ninja, make
peers() {
  local n=$1 steps=$2 par=$3 dir=$4; shift 4
  add floor "$runs" "$dir" -n "$steps" -p "$par" "$@"
  [ -n "${have[ninja]:-}" ] && add ninja "$runs" "$dir" ninja -j "$par"
  [ -n "${have[make]:-}" ] && add make "$runs" "$dir" make -s -j "$par"
  return 0
}
# slow_peers N PAR DIR: snakemake and cwltool, after every other row of the workload:
# they create and delete thousands of files, and on ext4 new inodes cost more for a while
# after that, which would bill their churn to the next tool that creates files (the
# shell plugin makes two per step; docs/performance.md, "Read the shell rows")
slow_peers() {
  local n=$1 par=$2 dir=$3
  if [ "$n" -le "$slow_max" ]; then
    [ -n "${have[snakemake]:-}" ] && add snakemake 1 "$dir" snakemake -j "$par" --forceall --quiet -s Snakefile
    [ -n "${have[cwltool]:-}" ] && add cwltool 1 "$dir" cwltool --quiet --outdir "$dir/cwl-out" \
      --tmpdir-prefix "$dir/cwl-tmp/" --tmp-outdir-prefix "$dir/cwl-tmp/" \
      $([ "$par" -gt 1 ] && echo --parallel) flow.cwl
  elif [ -n "${have[snakemake]:-}${have[cwltool]:-}" ]; then
    note "skipped: snakemake/cwltool at N=$n (above -s $slow_max: minutes per run)"
  fi
  return 0
}

echo "bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: load average at start $load_start; wfhost $build; $runs run(s) per figure"
t_start=$(date +%s)

for wl in $workloads; do
  case $wl in
  chain|fanout|diamond|sleep|noop|noopchain)
    header
    for n in $sizes; do
      d=$work/$wl-$n
      par=1 ideal=0 steps=$n kind=$wl cmd=("$TRUE")
      case $wl in
        fanout|noop) par=2 ;;
        noopchain) kind=noop-chain ;;
        diamond) par=2; steps=$((n + 2)) ;;
        sleep) par=16; kind=fanout; cmd=("$SLEEP" 0.05); ideal=$(( (n + 15) / 16 * 50 )) ;;
      esac
      python3 "$here/gen.py" "$kind" "$n" "$d" --cmd "${cmd[@]}"
      case $wl in
        noop)
          # the in-process pass steps: the profile does not apply, only the store
          profiles=none wfhost_variants "$par" "$runs" "$d"
          # the same steps through a runner each (the `noop` plugin), per profile
          python3 "$here/gen.py" noop-runner "$n" "$d-runner"
          for p in $profiles; do
            add "wfhost-runner/$p" "$runs" "$d-runner" "$wfhost" exec --home "$work/home-$p" \
              --policy "$work/policy-$p" --concurrency "$par" flow.yaml
          done ;;
        noopchain) profiles=none wfhost_variants "$par" "$runs" "$d" ;;
        *)
          peers "$n" "$steps" "$par" "$d" "${cmd[@]}"
          wfhost_variants "$par" "$runs" "$d"
          slow_peers "$n" "$par" "$d" ;;
      esac
      flush "$wl" "$n" "$steps" "$ideal"
    done ;;
  startup)
    header
    d=$work/startup
    python3 "$here/gen.py" one 1 "$d"
    r=$(( runs < 10 ? 10 : runs ))
    add floor "$r" "$d" "$TRUE"
    [ -n "${have[ninja]:-}" ] && add ninja "$r" "$d" ninja
    [ -n "${have[make]:-}" ] && add make "$r" "$d" make -s
    wfhost_variants 1 "$r" "$d"
    [ -n "${have[snakemake]:-}" ] && add snakemake "$runs" "$d" snakemake -j 1 --forceall --quiet -s Snakefile
    [ -n "${have[cwltool]:-}" ] && add cwltool "$runs" "$d" cwltool --quiet --outdir "$d/cwl-out" \
      --tmpdir-prefix "$d/cwl-tmp/" --tmp-outdir-prefix "$d/cwl-tmp/" flow.cwl
    flush startup 1 1 0 ;;
  validate)
    header
    for n in 10000 100000; do
      d=$work/validate-$n
      python3 "$here/gen.py" chain "$n" "$d"
      add "wfhost/validate" "$runs" "$d" "$wfhost" validate --home "$work/home-${profiles%% *}" flow.yaml
      flush validate "$n" "$n" 0
    done ;;
  concurrent)
    header
    d=$work/concurrent
    python3 "$here/gen.py" chain 10 "$d"
    for p in $profiles; do
      h=$work/conc-home-$p
      mkdir -p "$h"; cp -r "$build/dev-home/." "$h/"; rm -f "$h"/runs.db*
      # 100 at once; each one's status lands in its own file; all must be 0.
      cat >"$d/many.sh" <<EOF
#!/usr/bin/env bash
for i in \$(seq 100); do
  ( "$wfhost" exec --home "$h" --policy "$work/policy-$p" --concurrency 1 flow.yaml >/dev/null 2>"$d/err.\$i"; echo \$? >"$d/rc.\$i" ) &
done
wait
EOF
      rm -f "$d"/rc.* "$d"/err.*
      add "wfhost/$p" 1 "$d" bash "$d/many.sh"
      bad=$(grep -Lx 0 "$d"/rc.* | wc -l)
      listed=$("$wfhost" runs list --home "$h" --status succeeded --limit 1000 --json 2>/dev/null |
               python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d if isinstance(d,list) else d.get("runs",[])))' 2>/dev/null || echo "?")
      integ=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$h/runs.db" 2>&1 || true)
      if [ "$bad" != 0 ] || [ "$listed" != 100 ] || [ "$integ" != ok ]; then
        note "concurrent/$p: FAILED: $bad of 100 exited non-zero ($(cat $(grep -Lx 0 "$d"/rc.* | head -1 | sed 's/rc\./err./') 2>/dev/null | head -1)); runs list shows $listed succeeded; integrity_check: $integ"
        res["wfhost/$p"]=FAILED
      else
        note "concurrent/$p: 100 of 100 runs succeeded; runs list shows 100; integrity_check: ok"
      fi
    done
    flush concurrent 100 1000 0 ;;
  *) echo "bench: unknown workload '$wl'" >&2; exit 2 ;;
  esac
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo
for n in "${notes[@]}"; do echo "$n"; done
echo "(ratio = median / best peer's median (ninja, make, snakemake, cwltool) in this run;"
echo " ovh_ms/st = (median - the work itself) / steps, the work being 0 except for sleep;"
echo " rss_MB = peak RSS of the largest process; load average $load_start at start, $load_end at end;"
echo " $(( $(date +%s) - t_start )) s in all; results also in $out/results.tsv and results.json)"
python3 - "$out/results.tsv" "$out/results.json" "$load_start" "$load_end" "$build" "${notes[@]}" <<'EOF'
import csv, json, os, platform, sys
tsv, dst, l0, l1, build, *notes = sys.argv[1:]
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
json.dump({"machine": {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                       "load_start": l0, "load_end": l1},
           "build": build, "notes": notes, "results": rows}, open(dst, "w"), indent=1)
EOF
