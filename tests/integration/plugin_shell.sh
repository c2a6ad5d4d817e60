#!/usr/bin/env bash
# The shell step type through the real step runner (one attempt per request), then
# through `wfhost exec`: outputs, $WFH_OUTPUT in both forms, environment layering,
# cwd, argv without a shell, failures with their reasons, caps, and no deadlock or
# hang from big output or a background child.
. "$(dirname "$0")/../lib.sh"
RUNNER=$WFH_BUILD/bin/wfhost-runner
SHELL_SO=$WFH_BUILT_PLUGINS/shell.so
mkdir -p "$T/ws/sub dir"

# step INPUTS_JSON [ENV_JSON]: one shell attempt; JSON lines in $T/out.
step() {
  [ -n "${TRACE_STEPS:-}" ] && echo "$(date +%s.%N) step $1" >&2
  printf '{"plugin":"%s","type":"shell","inputs":%s,"env":%s,"run_id":"run-7","step_id":"st","attempt":2,"idempotency_key":"k","workspace":"%s"}' \
    "$SHELL_SO" "$1" "${2:-{\}}" "$T/ws" | "$RUNNER" >"$T/out" 2>"$T/err"
  rc=$?
}
# out NAME: the JSON value of output NAME from the last step.
out() { python3 -c '
import json,sys
for l in open(sys.argv[1]):
    j=json.loads(l)
    if j.get("t")=="output" and j["name"]==sys.argv[2]:
        v=j["value"]; print(v if isinstance(v,str) else json.dumps(v))' "$T/out" "$1"; }
result() { python3 -c '
import json,sys
for l in open(sys.argv[1]):
    j=json.loads(l)
    if j.get("t")=="result": print(j["status"], j.get("error",""))' "$T/out"; }

step '{"run":"echo \"$GREETING $WHO\"; echo \"$WFH_RUN_ID $WFH_STEP_ID $WFH_ATTEMPT $WFH_WORKSPACE\"; echo oops >&2; echo name=world >> \"$WFH_OUTPUT\"; printf \"notes<<EOT\\nline 1\\nline=2\\nEOT\\n\" >> \"$WFH_OUTPUT\"; echo \"eq=a=b<<c\" >> \"$WFH_OUTPUT\""}' \
  '{"GREETING":"hello","WHO":"workflow"}'
expect_rc 0 "runner exit"
expect_eq "$(result)" "0 " "script succeeded"
expect_eq "$(out stdout)" "hello workflow
run-7 st 2 $T/ws" "stdout with env and WFH_* variables"
expect_eq "$(out stderr)" "oops" "stderr captured separately"
expect_eq "$(out exit_code)" "0" "exit_code"
expect_eq "$(out stdout_truncated)" "false" "not truncated"
expect_eq "$(out name)" "world" "NAME=VALUE output"
expect_eq "$(out notes)" "line 1
line=2" "NAME<<DELIM multi-line output"
expect_eq "$(out eq)" "a=b<<c" "'=' first: the rest is the value"

# The step's env overrides the workflow's; PATH is kept; nothing else leaks in.
export WFH_TEST_SECRET=leaked
step '{"run":"echo \"$WHO|${WFH_TEST_SECRET:-unset}|$N\"; command -v sh >/dev/null && echo path-ok","env":{"WHO":"step","N":3}}' \
  '{"WHO":"workflow"}'
expect_eq "$(out stdout)" "step|unset|3
path-ok" "env layering, PATH kept, host env not inherited"
unset WFH_TEST_SECRET

# cwd is relative to the workspace; argv runs without a shell (no expansion).
step '{"argv":["sh","-c","pwd; printf \"%s|\" \"$@\"","x","$HOME","a b","*"],"cwd":"sub dir"}'
expect_eq "$(result)" "0 " "argv step"
expect_eq "$(out stdout)" "$T/ws/sub dir
\$HOME|a b|*|" "argv passed literally, cwd under the workspace"
step '{"run":"true","cwd":"missing"}'
expect_in "$T/out" '"status":5,.*working directory .*/ws/missing: No such file' "missing cwd is invalid input"

# Failures say why.
step '{"run":"echo first >&2; echo last words >&2; exit 3"}'
expect_eq "$(result)" "1 exit status 3: last words" "non-zero exit fails with status and last stderr line"
expect_eq "$(out exit_code)" "3" "exit_code of a failed step"
step '{"run":"kill -KILL $$"}'
expect_eq "$(result)" "1 killed by SIGKILL (Killed)" "killed by a signal"
expect_eq "$(out exit_code)" "137" "exit_code 128+signal"
step '{"argv":["no-such-program-xyz"]}'
expect_eq "$(result)" "1 shell: no-such-program-xyz: command not found in PATH" "unknown program"
step '{"run":"echo","argv":["echo"]}'
expect_eq "$(result)" "5 shell: give exactly one of \`run\` (a script) or \`argv\` (a list)" "run and argv together"
step '{}'
expect_in "$T/out" '"status":5' "neither run nor argv"
step '{"argv":[]}'
expect_in "$T/out" '"status":5' "empty argv"
step '{"run":"true","max_output":-1}'
expect_in "$T/out" '"status":5,.*max_output' "negative max_output"
step '{"run":"echo \"not an output line\" >> $WFH_OUTPUT"}'
expect_eq "$(result)" "1 shell: \$WFH_OUTPUT line 1: want NAME=VALUE or NAME<<DELIMITER, got 'not an output line'" "bad WFH_OUTPUT line"
step '{"run":"printf \"x<<EOF\\nno end\\n\" >> $WFH_OUTPUT"}'
expect_in "$T/out" "line 1: 'x<<EOF' is never closed" "unterminated heredoc"
step '{"run":"echo stdout=mine >> $WFH_OUTPUT; echo real"}'
expect_eq "$(out stdout)" "real" "built-in outputs cannot be overwritten from WFH_OUTPUT"
expect_in "$T/out" "built-in output; ignored" "and the script is told"

# The script may tamper with $WFH_OUTPUT: a FIFO must not hang the step, a symlink
# must not be followed, a deleted file means no extra outputs; the private dir is gone
# afterwards, whatever the script left in it.
step '{"run":"rm $WFH_OUTPUT; mkfifo $WFH_OUTPUT; echo $(dirname $WFH_OUTPUT)"}'
expect_eq "$(result)" "1 shell: \$WFH_OUTPUT is no longer a regular file" "FIFO instead of the output file"
[ -e "$(out stdout)" ] && fail "private output dir $(out stdout) left behind"
step '{"run":"rm $WFH_OUTPUT; ln -s /etc/passwd $WFH_OUTPUT; touch $(dirname $WFH_OUTPUT)/junk; echo $(dirname $WFH_OUTPUT)"}'
expect_in "$T/out" '"status":1,.*cannot read \$WFH_OUTPUT: Too many levels of symbolic links' "symlink not followed"
[ -e "$(out stdout)" ] && fail "private output dir $(out stdout) left behind with junk in it"
[ -e /etc/passwd ] || fail "cleanup followed the symlink"
step '{"run":"rm $WFH_OUTPUT"}'
expect_eq "$(result)" "0 " "deleted output file"
# A value of 300 000 bytes: read whole (the buffer is sized to the file, not 3 MiB).
step '{"run":"printf big= >> $WFH_OUTPUT; head -c 300000 /dev/zero | tr \"\\\\000\" x >> $WFH_OUTPUT; echo >> $WFH_OUTPUT"}'
expect_eq "$(result)" "0 " "big output value"
expect_eq "$(out big | wc -c)" "300001" "big output value read whole"

# Caps: each stream cut at max_output, flagged; 2 MiB on both streams at once
# cannot deadlock (the script writes stderr while stdout is full, and vice versa).
step '{"run":"head -c 2000000 /dev/zero | tr \"\\\\0\" a; head -c 2000000 /dev/zero | tr \"\\\\0\" b >&2; echo done >&2","max_output":1000}'
expect_eq "$(result)" "0 " "big output step"
expect_eq "$(out stdout_truncated)" "true" "stdout truncated"
expect_eq "$(out stderr_truncated)" "true" "stderr truncated"
expect_eq "$(out stdout | wc -c | tr -d ' ')" "1001" "stdout kept exactly max_output bytes (+ newline from echo)"
step '{"run":"printf \"\\\\377\\\\376 bin\""}'
expect_eq "$(result)" "0 " "binary output"
expect_eq "$(out stdout)" "�� bin" "invalid UTF-8 becomes U+FFFD"

# stdin is /dev/null; a background child holding the pipes does not hold the step.
start=$(date +%s%N)
step '{"run":"cat; (sleep 30; echo late) & echo quick"}'
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "$(out stdout)" "quick" "step ends when the script ends"
[ "$ms" -lt 10000 ] || fail "background child held the step for $ms ms"

# Through wfhost exec: the issue's hello workflow.
cat >"$T/hello.yaml" <<'Y'
name: hello
env:
  GREETING: hello
steps:
  - id: who
    uses: shell
    with:
      run: echo "name=world" >> "$WFH_OUTPUT"
  - id: greet
    uses: shell@1
    needs: [who]
    with:
      run: echo "$GREETING ${{ steps.who.outputs.name }}"
Y
run "$WFH" exec "$T/hello.yaml" --json
expect_rc 0 "hello workflow"
expect_eq "$(json "$T/out" '["steps"]["greet"]["outputs"]["stdout"]')" "hello world" "outputs flow between shell steps"
done_testing
