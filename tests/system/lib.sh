# Shared helpers for ezio's system tests (sourced, bash).
#
# Every resource a test makes is registered for cleanup, and the cleanup runs
# on any exit, so loop devices, mounts, buses and namespaces never outlive a
# test. Only devices a test created are ever opened.
set -euo pipefail

EZIO_SOURCE_DIR=${EZIO_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
EZIO_BUILD_DIR=${EZIO_BUILD_DIR:-$EZIO_SOURCE_DIR/build}
EZIOD=$EZIO_BUILD_DIR/daemon/eziod
EZIOCTL=$EZIO_BUILD_DIR/cli/ezioctl
# Debian's interpreter: it has python3-libtorrent and python3-dbus, whatever
# else is first on PATH.
PY3=/usr/bin/python3

_ezio_cleanups=()
ezio_on_exit() { _ezio_cleanups+=("$*"); }
_ezio_run_cleanups() {
    local rc=$? i
    for ((i = ${#_ezio_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_ezio_cleanups[i]}" >/dev/null 2>&1 || true
    done
    exit "$rc"
}
trap _ezio_run_cleanups EXIT
trap 'exit 130' INT TERM HUP

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    if declare -F _ezio_dump_logs >/dev/null; then _ezio_dump_logs; fi
    exit 1
}

# ezio_require_root [WHY]: exit 77 (ctest: skipped, never passed) unless root.
ezio_require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: $(basename "$0") needs root: ${*:-loop devices, mounts}" >&2
        exit 77
    fi
}

# A private scratch directory, removed on exit.
ezio_tmpdir() {
    EZIO_TMP=$(mktemp -d /tmp/ezio-test.XXXXXX)
    ezio_on_exit "rm -rf '$EZIO_TMP'"
}

# ezio_detach DEV FILE: detaches loop device DEV if it still reads FILE. A
# test may have detached DEV itself, and then the number may belong to
# another test's loop device by the time this test exits.
ezio_detach() {
    local back
    back=$(losetup -n -O BACK-FILE "$1" 2>/dev/null) || return 0
    back=${back%"${back##*[![:space:]]}"}
    [ "$back" = "$(realpath -m "$2")" ] || return 0
    losetup -d "$1"
}

# ezio_loop VAR SIZE [FILL_BYTE_HEX]: attaches a loop device over a sparse
# file and stores its path in VAR (not printed: a $(...) subshell would lose
# the cleanup registration). With FILL_BYTE_HEX (e.g. a5) the whole device is
# filled with that byte first.
ezio_loop() {
    # Locals carry a prefix: printf -v must not land in one of them.
    local _el_var=$1 _el_size=$2 _el_fill=${3:-} _el_file _el_dev
    _el_file=$(mktemp "$EZIO_TMP/disk.XXXXXX")
    truncate -s "$_el_size" "$_el_file"
    if [ -n "$_el_fill" ]; then
        "$PY3" - "$_el_file" "$_el_fill" <<'PY'
import os, sys
path, fill = sys.argv[1], bytes([int(sys.argv[2], 16)])
size = os.path.getsize(path)
chunk = fill * (1 << 20)
with open(path, "r+b") as f:
    left = size
    while left:
        n = min(left, len(chunk))
        f.write(chunk[:n])
        left -= n
PY
    fi
    _el_dev=$(losetup -f --show "$_el_file")
    ezio_on_exit "ezio_detach '$_el_dev' '$_el_file'"
    printf -v "$_el_var" '%s' "$_el_dev"
}

# ezio_ext4_with_data DEV MiB: a real ext4 filesystem with MiB of files.
ezio_ext4_with_data() {
    local dev=$1 mib=$2 mnt
    mkfs.ext4 -q -F "$dev"
    mnt=$(mktemp -d "$EZIO_TMP/mnt.XXXXXX")
    mount "$dev" "$mnt"
    ezio_on_exit "umount '$mnt'"
    head -c "$((mib * 1024 * 1024))" /dev/urandom >"$mnt/random.bin"
    cp -r /usr/share/doc/libtorrent-rasterbar-dev "$mnt/doc" 2>/dev/null || true
    mkdir -p "$mnt/dir/sub"
    seq 1 100000 >"$mnt/dir/sub/numbers.txt"
    umount "$mnt"
}

# ezio_partclone DEV OUTDIR: partclone capture -> OUTDIR/torrent.info.
ezio_partclone() {
    local dev=$1 out=$2
    mkdir -p "$out"
    partclone.extfs -c -t -s "$dev" -O "$out" -L "$EZIO_TMP/partclone.log" >/dev/null 2>&1 ||
        fail "partclone capture of $dev failed: $(tail -3 "$EZIO_TMP/partclone.log")"
    [ -s "$out/torrent.info" ] || fail "partclone wrote no torrent.info"
}

# ezio_check_image TORRENT SOURCE TARGET [FILL_BYTE_HEX]: every extent of the
# torrent is equal on SOURCE and TARGET; with FILL, every byte outside the
# extents on TARGET still holds FILL.
ezio_check_image() {
    "$PY3" "$EZIO_SOURCE_DIR/tests/system/check_image.py" "$@"
}
