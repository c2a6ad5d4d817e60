#!/usr/bin/env bash
# runner_zygote: from a run's second attempt on, the step runner is forked by the zygote
# (core/runner/zygote.c) instead of exec'd. Checked from inside the steps, by walking
# /proc: every attempt's runner is a child of the host, never of the zygote, and forked
# runners say `--zygote` in their argv; one zygote serves the whole run; none is left
# after the host exits, also after SIGKILL of the host; SIGKILL of the zygote mid-run
# only costs the next attempt a posix_spawn (then a new zygote); WFH_RUNNER_ZYGOTE=0
# spawns every runner, and a malformed value is refused with a one-line error.
. "$(dirname "$0")/../lib.sh"

M=7$(printf %04d%05d $((RANDOM % 10000)) $((RANDOM % 100000)))3
cleanup() { # only the processes this test started, by their ids
  for p in $(pgrep -f "sleep $M" || true); do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT

# What a step records, one line: its runner's pid, the runner's parent, whether the
# runner was forked by the zygote, and the host's other wfhost-runner children (the
# zygote). The runner is the nearest ancestor whose argv[0] is wfhost-runner whose parent
# is not one (under `process` the step runs in a fork of the runner).
cat >"$T/probe.sh" <<'P'
pid=$$
while [ "$pid" -gt 1 ]; do
  ppid=$(awk '/^PPid:/{print $2}' /proc/$pid/status)
  case "$(tr '\0' ' ' </proc/$pid/cmdline)" in
  *wfhost-runner*)
    case "$(tr '\0' ' ' </proc/$ppid/cmdline)" in *wfhost-runner*) ;; *) break ;; esac ;;
  esac
  pid=$ppid
done
host=$ppid
argv=$(tr '\0' ' ' </proc/$pid/cmdline)
forked=no
case "$argv" in *--zygote*) forked=yes ;; esac
zyg=
for c in $(cat /proc/$host/task/*/children); do
  [ "$c" = "$pid" ] && continue
  case "$(tr '\0' ' ' </proc/$c/cmdline 2>/dev/null)" in *wfhost-runner\ --zygote*) zyg="$zyg$c " ;; esac
done
echo "$1 runner=$pid parent=$host forked=$forked zygote=${zyg% }" >>"$2"
P

flow() { # flow FILE N [EXTRA-RUN-OF-STEP-2]
  {
    echo "name: zygote"
    echo "steps:"
    for i in $(seq 1 "$2"); do
      echo "  - id: s$i"
      [ "$i" -gt 1 ] && echo "    needs: [s$((i - 1))]"
      echo "    uses: shell"
      echo "    with:"
      echo "      run: |"
      echo "        sh '$T/probe.sh' s$i '$T/trace'"
      [ "$i" = 2 ] && [ -n "${3:-}" ] && echo "        $3"
    done
  } >"$1"
}
field() { sed -n "s/^$1 .*$2=\([^ ]*\).*/\1/p" "$T/trace"; }

for profile in none process; do
  echo "profile * $profile" >"$T/$profile.policy"
  flow "$T/chain.yaml" 4
  rm -f "$T/trace"
  "$WFH" exec --policy "$T/$profile.policy" "$T/chain.yaml" >"$T/out" 2>"$T/err" &
  host=$!
  wait "$host"
  rc=$?
  expect_rc 0 "$profile: a chain of four shell steps"
  expect_eq "$(wc -l <"$T/trace" | tr -d ' ')" "4" "$profile: every step recorded its runner"
  for s in s1 s2 s3 s4; do
    expect_eq "$(field $s parent)" "$host" "$profile: $s's runner is a child of the host"
  done
  expect_eq "$(field s1 forked)" "no" "$profile: the first attempt spawns its runner"
  for s in s2 s3 s4; do
    expect_eq "$(field $s forked)" "yes" "$profile: $s's runner comes from the zygote"
  done
  z=$(field s2 zygote)
  [ -n "$z" ] || fail "$profile: no zygote next to the host during s2"
  expect_eq "$(field s3 zygote)" "$z" "$profile: the same one zygote during s3"
  expect_eq "$(field s4 zygote)" "$z" "$profile: the same one zygote during s4"
  for s in s2 s3 s4; do
    [ "$(field $s runner)" = "$z" ] && fail "$profile: $s ran in the zygote itself"
  done
  sleep 0.1
  pgrep -f -- "--parent-pid $host\$" >/dev/null && fail "$profile: a runner or the zygote outlived the host"
done

# SIGKILL of the zygote between two attempts: the next attempt spawns its runner, the
# one after that starts a new zygote; the run succeeds. (Without warm runners, which
# would have forked s3's runner before s2 killed the zygote: tests/integration/runner_warm.sh.)
flow "$T/kill.yaml" 4 "kill -KILL \$(sed -n 's/^s2 .*zygote=\\([0-9]*\\).*/\\1/p' '$T/trace')"
rm -f "$T/trace"
WFH_RUNNER_WARM=0 run "$WFH" exec --policy "$T/none.policy" "$T/kill.yaml"
expect_rc 0 "the run survives SIGKILL of its zygote"
expect_eq "$(wc -l <"$T/trace" | tr -d ' ')" "4" "every step ran after the zygote was killed"
expect_eq "$(field s3 forked)" "no" "the attempt after the kill spawns its runner"
expect_eq "$(field s4 forked)" "yes" "a new zygote serves the one after"
z2=$(field s2 zygote)
z4=$(field s4 zygote)
[ -n "$z4" ] && [ "$z4" != "$z2" ] || fail "a new zygote after the kill (was '$z2', now '$z4')"

# SIGKILL of the host while a zygote-forked attempt runs: nothing of it is left.
flow "$T/hang.yaml" 3 "touch '$T/started'; sleep $M"
rm -f "$T/trace" "$T/started"
"$WFH" exec --policy "$T/none.policy" "$T/hang.yaml" >"$T/out" 2>"$T/err" &
host=$!
for _ in $(seq 100); do [ -e "$T/started" ] && break; sleep 0.1; done
[ -e "$T/started" ] || fail "the hanging step never started"
expect_eq "$(field s2 forked)" "yes" "the hanging attempt comes from the zygote"
pgrep -f -- "--zygote --parent-pid $host\$" >/dev/null || fail "no zygote while the run is going (test is blind)"
kill -KILL "$host"
wait "$host" 2>/dev/null
left=
for _ in $(seq 20); do
  left=$(pgrep -f -- "--parent-pid $host\$" || true)
  [ -z "$left" ] && break
  sleep 0.1
done
[ -z "$left" ] || fail "runner or zygote left after SIGKILL of the host: $left"

# The knob: off spawns every runner; a malformed value is refused, not guessed at.
rm -f "$T/trace"
WFH_RUNNER_ZYGOTE=0 run "$WFH" exec --policy "$T/none.policy" "$T/chain.yaml"
expect_rc 0 "WFH_RUNNER_ZYGOTE=0"
for s in s1 s2 s3 s4; do
  expect_eq "$(field $s forked)" "no" "WFH_RUNNER_ZYGOTE=0: $s's runner is spawned"
  expect_eq "$(field $s zygote)" "" "WFH_RUNNER_ZYGOTE=0: no zygote during $s"
done
WFH_RUNNER_ZYGOTE=maybe run "$WFH" exec --policy "$T/none.policy" "$T/chain.yaml"
[ "$rc" = 0 ] && fail "WFH_RUNNER_ZYGOTE=maybe was accepted"
expect_in "$T/err" "WFH_RUNNER_ZYGOTE must be 0, off, 1 or on, not 'maybe'" "the knob's error names the value"

done_testing
