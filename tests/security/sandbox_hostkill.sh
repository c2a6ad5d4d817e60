# The host itself SIGKILLed mid-step: the runner dies with it (PDEATHSIG), the step's
# pid namespace with the runner, so nothing of the step survives, setsid included.
. "$(dirname "$0")/../lib.sh"
mkdir "$T/ws"
tag="300.$$"
cat >"$T/flow.yaml" <<Y
name: victim
steps:
  - id: long
    uses: shell
    with:
      run: setsid sleep $tag & sleep $tag
Y
printf 'allow shell --allow-env=PATH,HOME,USER,LOGNAME,LANG,LC_ALL,TZ,TMPDIR\n' >"$T/policy"
alive() { # any non-zombie process running "sleep $tag"
  local p
  for p in $(pgrep -f "^sleep $tag\$"); do
    [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ] && return 0
  done
  return 1
}
"$WFH" exec --no-store --workspace "$T/ws" --policy "$T/policy" "$T/flow.yaml" >/dev/null 2>&1 &
host=$!
for _ in $(seq 200); do [ "$(pgrep -fc "^sleep $tag\$")" -ge 2 ] && break; sleep 0.05; done
[ "$(pgrep -fc "^sleep $tag\$")" -ge 2 ] || fail "the step never started both sleeps"
kill -9 $host
wait $host 2>/dev/null
for _ in $(seq 60); do alive || break; sleep 0.05; done
if alive; then
  fail "host SIGKILL: the step's processes survived"
  for p in $(pgrep -f "^sleep $tag\$"); do kill -9 "$p"; done
fi
done_testing
