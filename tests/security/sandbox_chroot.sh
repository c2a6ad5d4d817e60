# Strict inside a plain chroot, where "/" is not a mount point and cannot be made
# private (the project's fresh-machine check runs the demo like this). The runner then
# re-makes "/" as a private mount of its own (core/runner/sandbox.c: reroot_chroot):
# the step is confined as usual and none of its mounts (private /tmp, /proc, the masks
# over /etc secrets) reach the mount namespace wfhost was started from, here watched
# through shared mounts with a peer outside the chroot.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/hostile/sandbox_lib.sh"
[ "$(id -u)" = 0 ] || { echo "sandbox_chroot: needs root to chroot; skipped"; exit 0; }
# Already in one (the fresh-machine check): the case under test is the outer chroot,
# which every exec here exercises; a chroot nested inside it is not that case.
in_chroot && { echo "sandbox_chroot: already inside a chroot; the nested case is skipped"; exit 0; }
command -v unshare >/dev/null && command -v chroot >/dev/null ||
  { echo "sandbox_chroot: no unshare/chroot; skipped"; exit 0; }

CH=$T/root
mkdir -p "$CH"
cat >"$T/inner.sh" <<'SH'
set -eu
CH=$1; shift
# A throwaway mount namespace for the chroot's mounts, itself private from the host.
for d in usr bin sbin lib lib64 etc; do
  [ -e "/$d" ] || continue
  if [ -L "/$d" ]; then cp -P "/$d" "$CH/$d"; else mkdir -p "$CH/$d"; mount --rbind "/$d" "$CH/$d"; fi
done
for d in dev sys; do mkdir -p "$CH/$d"; mount --rbind "/$d" "$CH/$d"; done
mkdir -p "$CH/proc" "$CH/tmp" "$CH/run" "$CH/obs"
mount -t proc proc "$CH/proc"
# /tmp as fresh-machine.sh has it: a tmpfs, here shared with a peer at /obs, so a mount
# the step made on the chroot's /tmp (or beneath /etc) would show up outside.
mount -t tmpfs tmpfs "$CH/tmp"
mount --make-shared "$CH/tmp"
mount --bind "$CH/tmp" "$CH/obs"
mount --make-shared "$CH/etc"
mkdir -p "$CH$WFH_BUILD" "$CH$T"
mount --rbind "$WFH_BUILD" "$CH$WFH_BUILD"
mount --bind "$T" "$CH$T"
cp /proc/self/mountinfo "$T/mi.before"; before=$(wc -l </proc/self/mountinfo)
chroot "$CH" "$@"
status=$?
after=$(wc -l </proc/self/mountinfo); diff "$T/mi.before" /proc/self/mountinfo | grep "^>" >&2 || true
echo "mounts before=$before after=$after" >&2
exit $status
SH
# The runner writes its result on stdout; the wrapper's notes go to stderr.
printf '{"plugin":"%s","type":"hostile","inputs":{"case":"ok"},"workspace":"%s","sandbox":{"profile":"strict",%s}}' \
  "$HOSTILE" "$WS" "$LIMITS" >"$T/req"
export T; timeout 60 unshare -m --propagation private sh "$T/inner.sh" "$CH" "$RUNNER" <"$T/req" >"$T/out" 2>"$T/err"
rc=$?
grep '"t":"result"' "$T/out" >"$T/result" || true
expect_eq "$rc" 0 "the runner in a chroot exits 0"
expect_status 0 "strict in a chroot runs the step"
expect_eq "$(result_field '["sandbox"]["profile"]')" strict "profile strict applied"
expect_eq "$(result_field '["sandbox"]["chroot_rerooted"]')" true "/ re-made a mount of its own"
expect_eq "$(result_field '["sandbox"]["mntns"]')" true "own mount namespace"
expect_eq "$(result_field '["sandbox"]["private_tmp"]')" true "private /tmp"
expect_eq "$(result_field '["sandbox"]["seccomp"]')" true "seccomp"
counts=$(sed -n 's/^mounts before=\([0-9]*\) after=\([0-9]*\)$/\1 \2/p' "$T/err")
set -- $counts
[ -n "${1:-}" ] && [ "$1" = "$2" ] ||
  { fail "the step's mounts reached the chroot's namespace ($counts)"; cat "$T/err" >&2; }

# A hostile step in the chroot is still refused what it was not granted.
fixture_dir chroot
trap 'rm -rf "$T" "$FIX"' EXIT
mkdir -p "$CH$FIX"
echo secret >"$FIX/key"
printf '{"plugin":"%s","type":"hostile","inputs":{"case":"read","arg":"%s/key"},"workspace":"%s","sandbox":{"profile":"strict",%s}}' \
  "$HOSTILE" "$FIX" "$WS" "$LIMITS" >"$T/req"
export T; timeout 60 unshare -m --propagation private sh -c \
  'mount --bind "$1" "$2$1" && shift 2 && exec sh "$@"' sh "$FIX" "$CH" "$T/inner.sh" "$CH" "$RUNNER" \
  <"$T/req" >"$T/out" 2>"$T/err"
grep '"t":"result"' "$T/out" >"$T/result" || true
expect_error "key: (Permission denied|No such file or directory)" "read of an ungranted file in a chroot"
expect_not_in "$T/out" secret "nothing of the file came out"
expect_no_leftovers "chroot"
done_testing
