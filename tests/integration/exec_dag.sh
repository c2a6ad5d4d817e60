#!/usr/bin/env bash
# exec_dag: DAG order and parallelism, judged from timestamps the steps record
# themselves (never from wall-clock thresholds): with --concurrency 2 two independent
# `sleep 1` steps overlap; with --concurrency 1 they do not; a step that needs both
# starts only after both ended.
. "$(dirname "$0")/../lib.sh"

cat >"$T/dag.yaml" <<Y
name: dag
steps:
  - id: a
    uses: shell
    with:
      run: date +%s%N > "$T/a.start"; sleep 1; date +%s%N > "$T/a.end"
  - id: b
    uses: shell
    with:
      run: date +%s%N > "$T/b.start"; sleep 1; date +%s%N > "$T/b.end"
  - id: c
    uses: shell
    needs: [a, b]
    with:
      run: date +%s%N > "$T/c.start"
  - id: d
    uses: shell
    needs: [c]
    with:
      run: date +%s%N > "$T/d.start"
Y

ts() { cat "$T/$1"; }

run "$WFH" exec --concurrency 2 "$T/dag.yaml"
expect_rc 0 "dag, concurrency 2"
if [ -s "$T/a.end" ] && [ -s "$T/b.end" ] && [ -s "$T/d.start" ]; then
  # overlap: each started before the other ended
  [ "$(ts a.start)" -lt "$(ts b.end)" ] && [ "$(ts b.start)" -lt "$(ts a.end)" ] ||
    fail "a and b did not overlap with --concurrency 2"
  [ "$(ts c.start)" -ge "$(ts a.end)" ] && [ "$(ts c.start)" -ge "$(ts b.end)" ] ||
    fail "c started before both of its needs ended"
  [ "$(ts d.start)" -ge "$(ts c.start)" ] || fail "d started before c"
else
  fail "steps did not record their timestamps"
fi

rm -f "$T"/*.start "$T"/*.end
run "$WFH" exec -j 1 "$T/dag.yaml"
expect_rc 0 "dag, concurrency 1"
if [ -s "$T/a.end" ] && [ -s "$T/b.end" ]; then
  { [ "$(ts a.end)" -le "$(ts b.start)" ] || [ "$(ts b.end)" -le "$(ts a.start)" ]; } ||
    fail "a and b overlapped with --concurrency 1"
else
  fail "steps did not record their timestamps (concurrency 1)"
fi

# The limit holds: never more than N steps at once, judged from the intervals the
# steps record (start and end stamps), and with the default N = the online CPUs.
{
  echo "name: limit"
  echo "steps:"
  for i in 1 2 3 4 5; do
    echo "  - id: p$i"
    echo "    uses: shell"
    echo "    with: {run: 'echo \$(date +%s%N) 1 >> \"$T/iv\"; sleep 0.8; echo \$(date +%s%N) -1 >> \"$T/iv\"'}"
  done
} >"$T/limit.yaml"
max_overlap() { sort -n "$T/iv" | awk '{ n += $2; if (n > m) m = n } END { print m }'; }
rm -f "$T/iv"
run "$WFH" exec -j 2 "$T/limit.yaml"
expect_rc 0 "limit, concurrency 2"
expect_eq "$(max_overlap)" 2 "steps at once with --concurrency 2"
rm -f "$T/iv"
run "$WFH" exec "$T/limit.yaml"
expect_rc 0 "limit, default concurrency"
cpus=$(getconf _NPROCESSORS_ONLN)
want=$((cpus < 5 ? cpus : 5))
expect_eq "$(max_overlap)" "$want" "steps at once by default (online CPUs: $cpus)"

# A wide fan-out finishes and runs every step exactly once.
{
  echo "name: fan"
  echo "steps:"
  echo "  - id: root"
  echo "    uses: shell"
  echo "    with: {run: 'true'}"
  for i in $(seq 1 40); do
    echo "  - id: s$i"
    echo "    uses: shell"
    echo "    needs: [root]"
    echo "    with: {run: 'echo x >> \"$T/fan.count\"'}"
  done
} >"$T/fan.yaml"
run "$WFH" exec --json -j 8 "$T/fan.yaml"
expect_rc 0 "fan-out"
expect_eq "$(wc -l <"$T/fan.count" | tr -d ' ')" 40 "each fan-out step ran once"
expect_eq "$(json "$T/out" '["steps"]["s40"]["status"]')" succeeded "last fan-out step"

done_testing
