# Kernel-surface attacks under profile strict (research §3.6 "still to add"): the x32
# syscall bit, io_uring, TIOCSTI, personality, new namespaces, running an ungranted
# ELF from a memfd, and a hard link out of the write grant.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
S='"profile":"strict"'
LOADER=/lib64/ld-linux-x86-64.so.2

attack x32 "" "$S"
expect_error '^killed by seccomp \(forbidden system call\)$' "x32 syscall bit"
attack io_uring "" "$S"
expect_error '^io_uring_setup: Operation not permitted$' "io_uring"
attack tiocsti "" "$S"
expect_error '^TIOCSTI: Operation not permitted$' "TIOCSTI"
attack personality "" "$S"
expect_error '^personality: Operation not permitted$' "personality(READ_IMPLIES_EXEC)"
attack unshare "" "$S"
expect_error '^unshare: Operation not permitted$' "new namespaces from the step"
# The filter's own answers (errnos the kernel would not give without it) for calls
# that need no capability, and what it must let through; the first wrong one is named.
attack surface "" "$S"
expect_error '^surface: all as expected$' "seccomp: denied calls, clone3, sockets"
attack surface "" "$S,\"net\":true"
expect_error "^socket\(AF_INET, SOCK_DGRAM\): got 'success', want 'Operation not permitted'$" \
  "seccomp: UDP is allowed once every port is granted"

if [ -e "$LOADER" ]; then
  attack exec "$LOADER" "$S"
  expect_error "^$LOADER: Permission denied$" "exec of the loader (readable, not granted)"
  attack memfd_exec "$LOADER" "$S"
  if [ -e /proc/sys/vm/memfd_noexec ]; then
    expect_error '^execveat\(memfd\): Permission denied$' "exec from a memfd"
    expect_eq "$(result_field '["sandbox"]["memfd_noexec"]')" "true" "report: memfd_noexec"
  fi
fi

fixture_dir link
OUT=$FIX
trap 'rm -rf "$T" "$OUT"' EXIT
mkdir "$OUT/granted"; echo secret >"$OUT/outside"
attack hardlink "$OUT/outside" "$S,\"write\":[\"$OUT/granted\"]"
sed -i "s|\"arg\":\"$OUT/outside\"|&,\"to\":\"$OUT/granted/l\"|" "$T/req"
timeout 60 "$RUNNER" <"$T/req" >"$T/out" 2>"$T/err"; grep '"t":"result"' "$T/out" >"$T/result"
expect_error "^link: (Invalid cross-device link|$DENIED)\$" "hard link out of the write grant"
[ -e "$OUT/granted/l" ] && fail "hard link out of the write grant: the link exists"
done_testing
