# Network attacks under profile strict: a loopback listener on the host that was not
# granted is unreachable, MPTCP and UDP (which Landlock's TCP rules do not see) are
# refused by seccomp, and a granted port works.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
# Two listeners on ports chosen by the kernel; each counts the connections it accepts.
python3 - "$T" <<'PY' &
import socket, sys, os, threading
d = sys.argv[1]
socks = []
for name in ("open", "secret"):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); socks.append((name, s))
    open(os.path.join(d, name + ".port"), "w").write(str(s.getsockname()[1]))
def serve(name, s):
    n = 0
    while True:
        c, _ = s.accept(); n += 1; c.close()
        open(os.path.join(d, name + ".hits"), "w").write(str(n))
for name, s in socks:
    threading.Thread(target=serve, args=(name, s), daemon=True).start()
open(os.path.join(d, "ready"), "w").write("1")
threading.Event().wait(120)
PY
srv=$!
trap 'kill $srv 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -e "$T/ready" ] && break; sleep 0.05; done
OPEN=$(cat "$T/open.port"); SECRET=$(cat "$T/secret.port")

# No network granted: a network namespace of its own (loopback is not the host's).
attack connect "$SECRET" '"profile":"strict"'
expect_status 1 "no net grant"
expect_error '^connect: (Permission denied|Network is unreachable)$' "no net grant"
expect_eq "$(result_field '["sandbox"]["netns"]')" "true" "no net grant: netns"

# One port granted: the host's network, Landlock lets only that port through.
G="\"profile\":\"strict\",\"net\":[\"127.0.0.1:$OPEN\"]"
attack connect "$OPEN" "$G"
expect_status 0 "granted port"
attack connect "$SECRET" "$G"
expect_error '^connect: Permission denied$' "ungranted loopback port"
attack mptcp "$SECRET" "$G"
expect_error '^socket: Operation not permitted$' "MPTCP bypass"
attack udp "$SECRET" "$G"
expect_error '^socket: Operation not permitted$' "UDP without a grant"
sleep 0.2
expect_eq "$(cat "$T/secret.hits" 2>/dev/null || echo 0)" "0" "the ungranted listener saw no connection"
expect_eq "$(cat "$T/open.hits" 2>/dev/null || echo 0)" "1" "the granted listener saw one"
# Steps without network share one empty network namespace: an abstract unix socket is
# the one channel that could cross it, and Landlock's scoping (ABI 6) closes it.
if [ "$(python3 -c 'import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))')" -ge 6 ]; then
  name=wfh-abstract-$$
  printf '{"plugin":"%s","type":"hostile","inputs":{"case":"abstract_listen","arg":"%s","ms":"4000"},"workspace":"%s","sandbox":{"profile":"strict"}}' \
    "$HOSTILE" "$name" "$WS" | "$RUNNER" >"$T/listener" 2>/dev/null &
  lst=$!
  sleep 1
  attack abstract_connect "$name" '"profile":"strict"'
  expect_error '^connect: (Operation not permitted|Connection refused)$' "abstract unix socket across steps"
  wait $lst
  expect_in "$T/listener" 'nobody connected' "the listening step saw no connection"
fi
done_testing
