# tests/security/hostile/sandbox_lib.sh - helpers for tests/security/sandbox_*.sh:
# drive the built step runner directly with one request for the hostile plugin.
# Source after tests/lib.sh.
RUNNER=$WFH_BUILD/bin/wfhost-runner
HOSTILE=$WFH_BUILD/tests/hostile/hostile.so
[ -x "$RUNNER" ] || { echo "no runner at $RUNNER" >&2; exit 1; }
[ -f "$HOSTILE" ] || { echo "no hostile plugin at $HOSTILE" >&2; exit 1; }
WS=$T/ws
mkdir -p "$WS"
# Tight limits so the bombs end in seconds.
LIMITS='"limits":{"memory":67108864,"pids":32,"cpu_ms":1000,"wall_ms":3000,"output":1048576,"result":1048576}'

# attack CASE ARG SANDBOX_JSON_MEMBERS: runs one attempt; the result line goes to
# $T/result, everything on stdout to $T/out, stderr to $T/err, the status to $rc.
attack() {
  local sb="{$3}"
  printf '{"plugin":"%s","type":"hostile","inputs":{"case":"%s","arg":"%s"},"workspace":"%s","sandbox":%s}' \
    "$HOSTILE" "$1" "$2" "$WS" "$sb" >"$T/req"
  timeout 60 "$RUNNER" <"$T/req" >"$T/out" 2>"$T/err"
  rc=$?
  grep '"t":"result"' "$T/out" >"$T/result" || true
}

# result_field PY-PATH: a value from the result line, e.g. result_field '["error"]'.
result_field() { json "$T/result" "$1"; }

expect_error() { # expect_error REGEX "what"
  local e; e=$(result_field '["error"]' 2>/dev/null)
  if ! printf '%s' "$e" | grep -Eq -- "$1"; then
    fail "$2: error '$e' does not match /$1/"; head -c 2000 "$T/out" >&2; head -c 2000 "$T/err" >&2
  fi
}
expect_status() { # expect_status N "what"
  local s; s=$(result_field '["status"]' 2>/dev/null)
  [ "$s" = "$1" ] || { fail "$2: status '$s', expected $1"; head -c 2000 "$T/out" >&2; }
}
# No process of any step is left: no wfstep cgroup of a live runner has tasks.
expect_no_leftovers() { # expect_no_leftovers "what"
  local d n=0
  for d in /sys/fs/cgroup/unified/wfstep-* /sys/fs/cgroup/wfstep-*; do
    [ -d "$d" ] || continue
    [ -s "$d/cgroup.procs" ] && n=$((n + 1))
  done
  [ "$n" = 0 ] || fail "$1: $n step cgroup(s) still hold processes"
}

# fixture_dir NAME: sets FIX to a fresh directory for files a step must be refused, and
# DENIED to the regex of that refusal. The step's /tmp is private, so a fixture under the
# host's /tmp is merely invisible to it (ENOENT), not refused by Landlock (EACCES): when
# the build tree is under /tmp (CI may clone to /tmp/x) /var/tmp is used instead. Only
# if no directory outside /tmp is writable do the tests accept "not there" as the
# refusal; they still check that nothing was read or written. The caller removes $FIX.
fixture_dir() {
  local base
  FIX=
  for base in "$WFH_BUILD/tests/hostile" /var/tmp; do
    case "$(realpath -m "$base")/" in /tmp/*) continue ;; esac
    FIX=$(mktemp -d "$base/$1.XXXXXX" 2>/dev/null) && break
    FIX=
  done
  if [ -n "$FIX" ]; then
    DENIED='Permission denied'
  else
    FIX=$(mktemp -d "$WFH_BUILD/tests/hostile/$1.XXXXXX") || exit 1
    DENIED='(Permission denied|No such file or directory|Directory nonexistent)'
    echo "note: no writable directory outside /tmp; a refusal may read as ENOENT" >&2
  fi
}
