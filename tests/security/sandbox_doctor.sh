# `wfhost doctor` reports what the kernel really offers: its figures are checked
# against independent probes, and a broken policy file is reported with its position.
. "$(dirname "$0")/../lib.sh"
run "$WFH" doctor --json
expect_rc 0 "doctor --json"
abi=$(python3 -c 'import ctypes; l=ctypes.CDLL(None, use_errno=True); r=l.syscall(444, None, 0, 1); print(r if r > 0 else 0)')
expect_eq "$(json "$T/out" '["landlock_abi"]')" "$abi" "landlock ABI matches the kernel"
seccomp=$(grep -q '^Seccomp:' /proc/self/status && echo true || echo false)
expect_eq "$(json "$T/out" '["seccomp"]')" "$seccomp" "seccomp matches /proc/self/status"
if [ -e /sys/fs/cgroup/unified/cgroup.kill ] || [ -e /sys/fs/cgroup/cgroup.kill ] || \
   ls /sys/fs/cgroup/unified/*/cgroup.kill >/dev/null 2>&1 || ls /sys/fs/cgroup/*/cgroup.kill >/dev/null 2>&1; then
  expect_eq "$(json "$T/out" '["cgroup"]["v2_kill"]')" "true" "cgroup.kill present"
fi
if [ "$(id -u)" = 0 ]; then
  expect_eq "$(json "$T/out" '["namespaces"]["pid"]')" "true" "root can unshare a pid namespace"
fi
# The sandbox tests run strict steps on this machine, so doctor must agree it can.
if [ "$abi" -gt 0 ] && [ -d /sys/fs/cgroup/pids ]; then
  expect_eq "$(json "$T/out" '["strict"]["available"]')" "true" "strict available"
fi

run "$WFH" doctor
expect_rc 0 "doctor"
expect_in "$T/out" "^  landlock +ABI $abi" "table shows the Landlock ABI"
expect_in "$T/out" "profile strict: " "table shows the profiles"

# The persistent empty network namespace is reported as it is on disk.
if grep -q ' /run/wfhost/netns-empty ' /proc/self/mountinfo; then kept=true; else kept=false; fi
run "$WFH" doctor --json
expect_eq "$(json "$T/out" '["netns_empty_kept"]')" "$kept" "the kept empty netns matches mountinfo"
if in_chroot; then want=true; else want=false; fi
expect_eq "$(json "$T/out" '["chroot"]')" "$want" "doctor says whether / is a chroot's"
run "$WFH" doctor
expect_in "$T/out" "^  empty netns +" "the table says what strict keeps on the host"
expect_in "$T/out" "profile strict: .*the default for every step type" "strict is the default"
# The home's policy file is the one every run applies; --home names the home.
expect_in "$T/out" "policy: $WFH_HOME/policy \\(not present: every run gets the built-in grants\\)" \
  "no policy file: the built-in grants"
printf 'limit * memory=1M\n' >"$WFH_HOME/policy"
run "$WFH" doctor --home "$WFH_HOME"
expect_in "$T/out" "policy: $WFH_HOME/policy \\(applies to every run\\)" "the home's policy file"
rm -f "$WFH_HOME/policy"

# The policy example in docs/sandbox.md is a policy wfhost reads.
python3 - "$WFH_SRC/docs/sandbox.md" >"$T/doc.policy" <<'PY' || fail "no policy example in docs/sandbox.md"
import re, sys
text = open(sys.argv[1]).read()
sec = text.split("## The policy file", 1)[1]
block = re.search(r"```\n(.*?)```", sec, re.S).group(1)
assert "allow" in block and "limit" in block and "profile" in block, block
print(block, end="")
PY
run "$WFH" doctor --policy "$T/doc.policy"
expect_rc 0 "the documented policy example parses"

printf 'allow shell --allow-run=/usr/bin/jq\nlimit shell memory=12X\n' >"$T/policy"
run "$WFH" doctor --policy "$T/policy"
expect_rc 2 "doctor with a broken policy"
expect_in "$T/out" "policy: ERROR: $T/policy:2:20: bad value for memory" "policy error with position"
done_testing
