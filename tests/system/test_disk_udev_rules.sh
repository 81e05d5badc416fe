#!/bin/bash
# udev/61-ezio.rules: parses without a diagnostic, sorts after the rules that
# set ID_PATH/ID_SERIAL/ID_FS_TYPE, marks RAM disks EZIO_IGNORE=1, leaves an
# ordinary disk alone, and every example in its comments is a valid rule.
#
# udevadm test runs the rules in-process; it runs inside a private mount
# namespace with empty tmpfs over /run and /dev, so nothing it writes (udev
# database, /dev links) reaches the system. No udevd is needed.
source "$(dirname "$0")/lib.sh"
ezio_require_root "udevadm test in a private mount namespace, a loop device"
ezio_tmpdir

RULES=$EZIO_SOURCE_DIR/udev/61-ezio.rules
[ -f "$RULES" ] || fail "missing $RULES"
command -v udevadm >/dev/null || fail "udevadm not installed (Debian package udev)"
command -v unshare >/dev/null || fail "unshare not installed (util-linux)"

# Sorting: udev orders all rules files by name; ours must come after
# 60-persistent-storage.rules or ENV{ID_PATH} matches never fire.
[[ "$(basename "$RULES")" > "60-persistent-storage.rules" ]] ||
    fail "$(basename "$RULES") sorts before 60-persistent-storage.rules"

# The commented examples, as a rules file of their own.
sed -n 's/^#     \(ENV{.*\)$/\1/p' "$RULES" >"$EZIO_TMP/62-ezio-examples.rules"
n_examples=$(wc -l <"$EZIO_TMP/62-ezio-examples.rules")
[ "$n_examples" -ge 3 ] || fail "expected the rules file to carry examples, found $n_examples"

# udevadm test DEVICE with our rules installed; prints its output.
udev_test() {
    unshare -m --propagation private sh -c '
        set -e
        mount -t tmpfs none /run
        mkdir -p /run/udev/rules.d
        cp "$1" "$2" /run/udev/rules.d/
        mount -t tmpfs none /dev
        udevadm test --action=add "$3" 2>&1
    ' sh "$RULES" "$EZIO_TMP/62-ezio-examples.rules" "$1"
}

ezio_loop LOOP 8M
LOOP_NAME=$(basename "$LOOP")
out=$(udev_test "/sys/class/block/$LOOP_NAME")
grep -q "Reading rules file: /run/udev/rules.d/61-ezio.rules" <<<"$out" ||
    fail "udevadm did not read our rules: $out"
if grep -E "ezio(-examples)?\.rules:[0-9]+" <<<"$out"; then
    fail "udevadm reports problems in the rules above"
fi
if grep -q "^EZIO_" <<<"$out"; then
    fail "$LOOP_NAME got an EZIO_ property: $(grep '^EZIO_' <<<"$out")"
fi
log "rules and $n_examples examples parse; $LOOP_NAME is left alone"

ram=""
for d in /sys/class/block/zram* /sys/class/block/ram*; do
    [ -e "$d" ] && ram=$(basename "$d") && break
done
if [ -n "$ram" ]; then
    out=$(udev_test "/sys/class/block/$ram")
    grep -qx "EZIO_IGNORE=1" <<<"$out" || fail "$ram was not marked EZIO_IGNORE=1"
    log "$ram is marked EZIO_IGNORE=1"
else
    log "no zram/ram device on this machine: the RAM-disk rule is not exercised"
fi
echo "PASS: $(basename "$0")"
