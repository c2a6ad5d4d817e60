#!/usr/bin/env bash
# runner_warm: in a chain of shell steps the next step's runner is started and confined
# while the step before it runs (core/attempt.h, "warm runners"). Checked through
# `runs show --json` (the sandbox report of each attempt says "warm") and from inside the
# steps: every step still runs in a process of its own (its own step process under
# process; under strict, a private /tmp that no other step wrote in); the wall time limit counts from the attempt's start, not
# from the runner's; an idle warm runner killed from outside is replaced; no runner is
# left once a run has ended (succeeded, failed, cancelled) nor after SIGKILL of the host;
# WFH_RUNNER_WARM=0 turns it off and a malformed value is refused; by default no warm
# runner is started while every CPU runs an attempt (a fan-out), `always` starts them anyway.
. "$(dirname "$0")/../lib.sh"

# Every process of a run has the run's workspace as its cwd (the host, the zygote, the
# runners and their steps): that is how this test finds them, and only them.
WS="$T/ws"
mkdir -p "$WS"
left_in_ws() { # pids whose cwd is the workspace (zombies have none)
  local p out=
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/cwd" 2>/dev/null)" = "$WS" ] && out="$out${p#/proc/} "
  done
  echo "${out% }"
}
cleanup() { # only the processes this test started: those working in its workspace
  for p in $(left_in_ws); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
find_warm() { # the idle warm runners' processes in the workspace, once there are any (5 s)
  local p warm=
  for _ in $(seq 50); do
    for p in $(left_in_ws); do
      [ "$(cat /proc/$p/comm 2>/dev/null)" = wfhost-runner-w ] && warm="$warm$p "
    done
    [ -n "$warm" ] && break
    sleep 0.1
  done
  echo "${warm% }"
}
wfh_exec() { (cd "$WS" && exec "$WFH" exec "$@"); }
start_bg() { # start_bg FLOW "what": run FLOW under process in the background ($host: the
  # host itself), until one of its steps has touched "started" in the workspace
  rm -f "$WS/started"
  (cd "$WS" && exec "$WFH" exec --policy "$T/process.policy" "$1") >"$T/out" 2>"$T/err" &
  host=$!
  for _ in $(seq 100); do [ -e "$WS/started" ] && break; sleep 0.1; done
  [ -e "$WS/started" ] || fail "$2 never started"
}
expect_none_left() { # expect_none_left "what" [COMM-PATTERN]: none, or none whose name matches
  local left= p
  for _ in $(seq 30); do
    left=
    for p in $(left_in_ws); do
      case "$(cat /proc/$p/comm 2>/dev/null)" in ${2:-*}) left="$left$p " ;; esac
    done
    [ -z "$left" ] && break
    sleep 0.1
  done
  [ -z "$left" ] || fail "$1: processes left: $(for p in $left; do tr '\0' ' ' </proc/$p/cmdline; echo " ($p)"; done)"
}

# chain FILE N CMD...: N shell steps in a chain; step i runs CMD with $i for the step's
# number. Each records who ran it: its parent (the step process the runner made for this
# attempt) and, with MARK=1 (for strict only: elsewhere /tmp is the machine's), how many
# marks of other steps its /tmp holds (under strict a private tmpfs of the attempt's own
# mount namespace: 0 unless a runner served two steps).
chain() {
  local f=$1 n=$2 i
  shift 2
  {
    echo "name: warm"
    echo "steps:"
    for i in $(seq 1 "$n"); do
      echo "  - id: s$i"
      [ "$i" -gt 1 ] && echo "    needs: [s$((i - 1))]"
      echo "    uses: shell"
      echo "    with:"
      echo "      run: |"
      echo "        echo \"s$i ppid=\$PPID tmp=\$(ls /tmp | grep -c '^wfh-warm-mark-')\" >>'$WS/trace'"
      [ "${MARK:-0}" = 1 ] && echo "        touch /tmp/wfh-warm-mark-$i"
      [ $# -gt 0 ] && echo "        ${*//\$i/$i}"
    done
  } >"$f"
}
last_run() { "$WFH" runs list | awk 'NR == 2 { print $1 }'; }
# warm_of: "s1=no s2=yes ..." from the last run's attempts
warm_of() {
  "$WFH" runs show "$(last_run)" --json >"$T/show.json"
  python3 - "$T/show.json" <<'P'
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join("%s=%s" % (s["id"], "yes" if (a.get("sandbox") or {}).get("warm") else "no")
               for s in d["steps"] for a in s["attempts"]))
P
}
distinct() { # distinct FIELD: how many different values the trace shows
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$WS/trace" | sort -u | wc -l | tr -d ' '
}

profiles="process strict"
ncpu=$(nproc)
# By default a runner is warmed only while a CPU would otherwise idle: a chain's second
# CPU. With one CPU there is none, so the chain cases below ask for warm runners anyway.
[ "$ncpu" -ge 2 ] || export WFH_RUNNER_WARM=always
in_chroot && profiles=process # strict needs namespaces a chroot refuses (sandbox tests)
echo "profile * process" >"$T/process.policy"
echo "profile * strict" >"$T/strict.policy"

# 1. A chain: the first runner is started the ordinary way, every later one was warm;
#    each step ran in a process of its own.
chain "$T/chain.yaml" 4
MARK=1 chain "$T/chain-strict.yaml" 4
for profile in $profiles; do
  rm -f "$WS/trace"
  flow=$T/chain.yaml
  [ "$profile" = strict ] && flow=$T/chain-strict.yaml
  run wfh_exec --policy "$T/$profile.policy" "$flow"
  expect_rc 0 "$profile: a chain of four shell steps"
  expect_eq "$(warm_of)" "s1=no s2=yes s3=yes s4=yes" "$profile: warm runners from the second step on"
  expect_eq "$(wc -l <"$WS/trace" | tr -d ' ')" 4 "$profile: every step ran once"
  if [ "$profile" = strict ]; then
    expect_eq "$(sed -n 's/.* tmp=\([0-9]*\).*/\1/p' "$WS/trace" | sort -u)" 0 \
      "$profile: no step sees another's /tmp"
  else
    expect_eq "$(distinct ppid)" 4 "$profile: every step has a step process of its own"
  fi
  expect_none_left "$profile: after a run that succeeded"
done

# 2. The wall time limit counts from the go: s2's runner waits ~2 s while s1 runs, then
#    runs 2 s of its own under a 3 s limit (from its runner's start it would be 4 s).
{
  echo "profile * process"
  echo "limit * wall=3s"
} >"$T/wall.policy"
chain "$T/wall.yaml" 2 "sleep 2"
rm -f "$WS/trace"
run wfh_exec --policy "$T/wall.policy" "$T/wall.yaml"
expect_rc 0 "a warm runner that waited past the wall time still runs its step"
expect_eq "$(warm_of)" "s1=no s2=yes" "the second step's runner was warm"

# 3. A failed run, and a cancelled one: the runner warmed for the next step is gone too.
chain "$T/fail.yaml" 3 '[ $i = 2 ] && exit 7; true'
run wfh_exec --policy "$T/process.policy" "$T/fail.yaml"
expect_rc 1 "a chain whose second step fails"
expect_none_left "after a failed run"

rm -f "$WS/trace" "$WS/started"
chain "$T/hang.yaml" 3 '[ $i = 2 ] && { touch started; sleep 600; }; true'
start_bg "$T/hang.yaml" "the hanging step"
find_warm >/dev/null
kill -TERM "$host"
wait "$host"
rc=$?
[ "$rc" = 0 ] && fail "a cancelled run exited 0"
expect_none_left "after a cancelled run"

# 4. SIGKILL of the host mid-chain, while a warm runner waits: nothing is left.
rm -f "$WS/started"
start_bg "$T/hang.yaml" "the hanging step (SIGKILL case)"
warm=$(find_warm)
[ -n "$warm" ] || fail "no warm runner while the second step runs (test is blind)"
kill -KILL "$host"
wait "$host" 2>/dev/null
# The running step's own children (sh, sleep) are the plugin's, left to the next runner's
# sweep of the dead runner's cgroup as before; the runners, warm or not, die with the host.
expect_none_left "after SIGKILL of the host" 'wfhost*'
for p in $(left_in_ws); do kill -KILL "$p" 2>/dev/null; done

# 5. An idle warm runner killed from outside: the next step gets a fresh runner and
#    runs; the one after it is warm again.
rm -f "$WS/trace" "$WS/started"
chain "$T/victim.yaml" 3 '[ $i = 1 ] && { touch started; while [ ! -e killed ]; do sleep 0.05; done; }; true'
start_bg "$T/victim.yaml" "the first step"
warm=$(find_warm)
[ -n "$warm" ] || fail "no warm runner while the first step runs (test is blind)"
for p in $warm; do kill -KILL "$p"; done
touch "$WS/killed"
wait "$host"
rc=$?
expect_rc 0 "the run survives SIGKILL of its idle warm runner"
expect_eq "$(warm_of)" "s1=no s2=no s3=yes" "a fresh runner replaces the killed one"
expect_eq "$(wc -l <"$WS/trace" | tr -d ' ')" 3 "every step ran after the kill"
expect_none_left "after the run with a killed warm runner"

# 6. The knob.
WFH_RUNNER_WARM=0 run wfh_exec --policy "$T/process.policy" "$T/chain.yaml"
expect_rc 0 "WFH_RUNNER_WARM=0"
expect_eq "$(warm_of)" "s1=no s2=no s3=no s4=no" "WFH_RUNNER_WARM=0: no warm runner"
WFH_RUNNER_WARM=maybe run wfh_exec --policy "$T/process.policy" "$T/chain.yaml"
[ "$rc" = 0 ] && fail "WFH_RUNNER_WARM=maybe was accepted"
expect_in "$T/err" "WFH_RUNNER_WARM must be 0, off, 1, on or always, not 'maybe'" "the knob's error names the value"

# 7. A fan-out as wide as the machine: every CPU already runs an attempt, so the default
#    starts no warm runner (it would only move the same work earlier); `always` does.
{
  echo "name: wide"
  echo "steps:"
  for i in $(seq 1 $((2 * ncpu))); do
    echo "  - id: f$i"
    echo "    uses: shell"
    echo "    with: {run: sleep 0.3}"
  done
} >"$T/wide.yaml"
if [ "$ncpu" -ge 2 ]; then
  run env -u WFH_RUNNER_WARM "$WFH" exec --concurrency "$ncpu" --policy "$T/process.policy" "$T/wide.yaml"
  expect_rc 0 "a fan-out of $((2 * ncpu)) at --concurrency $ncpu"
  case " $(warm_of) " in *=yes*) fail "a fan-out with every CPU busy started warm runners: $(warm_of)" ;; esac
fi
WFH_RUNNER_WARM=always run "$WFH" exec --concurrency "$ncpu" --policy "$T/process.policy" "$T/wide.yaml"
expect_rc 0 "the same fan-out with WFH_RUNNER_WARM=always"
case " $(warm_of) " in *=yes*) ;; *) fail "WFH_RUNNER_WARM=always: no warm runner in the fan-out: $(warm_of)" ;; esac
expect_none_left "after the fan-outs"

done_testing
