# shellcheck shell=bash
# Helpers of the fault-injection tests (test_fault_*.sh), on top of the
# D-Bus fixture (lib_dbus.sh: private buses, eziod instances, loop devices,
# the python3-dbus client `ezc`). Every test ends by comparing each target
# with its source byte for byte (ezio_check_image) and by `ezioctl verify`.
#
# Slow deployments are made with the seeder's max_upload_rate, so a fault
# can be injected at a known point of a transfer.

# shellcheck source=tests/system/lib_dbus.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_dbus.sh"

MIB=$((1 << 20))
ROOT=/org/ezio/Ezio1
PIECE=262144 # make_image_torrent's piece size

# fault_image NAME SIZE_MIB EXTENTS: $EZIO_TMP/NAME.img, SIZE_MIB MiB of zeros
# with random bytes in EXTENTS ("OFFSET:LENGTH,..." in bytes), and its
# torrent $EZIO_TMP/NAME.torrent (ezio layout, name sda1, 256 KiB pieces).
# Sets IMG, TORRENT and DATA_BYTES (the sum of the extents).
fault_image() {
    local name=$1 mib=$2 extents=$3 e off len
    IMG="$EZIO_TMP/$name.img"
    TORRENT="$EZIO_TMP/$name.torrent"
    DATA_BYTES=0
    truncate -s "${mib}M" "$IMG"
    IFS=, read -ra _fi_exts <<<"$extents"
    for e in "${_fi_exts[@]}"; do
        off=${e%%:*} len=${e##*:}
        head -c "$len" /dev/urandom |
            dd of="$IMG" bs=1M seek="$off" oflag=seek_bytes iflag=fullblock conv=notrunc status=none
        DATA_BYTES=$((DATA_BYTES + len))
    done
    make_image_torrent "$IMG" "$TORRENT" "$extents" >/dev/null || fail "cannot make $TORRENT"
}

# prop ADDRESS PATH PROPERTY: the property's value as JSON ("seeding" quoted).
prop() { ezc "$1" get "$2" "$3"; }

# state ADDRESS JOB: the job's State, unquoted.
state() {
    local s
    s=$(ezc "$1" get "$2" State) || return 1
    s=${s#\"}
    echo "${s%\"}"
}

# state_is ADDRESS JOB STATE...: the job's State is one of STATE.
state_is() {
    local s want
    s=$(state "$1" "$2") || return 1
    shift 2
    for want in "$@"; do
        [ "$s" = "$want" ] && return 0
    done
    return 1
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it
# succeeds; fails the test naming WHAT after SECONDS.
wait_until() {
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 10; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "timed out after ${seconds}s waiting for: $what"
}

# at_least ADDRESS JOB PROPERTY N: the numeric property is >= N.
at_least() {
    local v
    v=$(ezc "$1" get "$2" "$3") || return 1
    [ "$v" -ge "$4" ]
}

# listen_port ADDRESS: the BitTorrent port of the eziod on that bus.
listen_port() { ezc "$1" get $ROOT ListenPort; }

# expect_completed ADDRESS JOB SECONDS: the job's Completed signal (or final
# State) says success within SECONDS.
expect_completed() {
    local out
    out=$(ezc "$1" wait-completed "$2" "$3") || fail "$2 did not complete: $out"
    case "$out" in
        true*) ok "$2 completed: $out" ;;
        *) fail "$2 ended without success: $out" ;;
    esac
}

# same_image TORRENT SOURCE TARGET: every extent of TARGET equals SOURCE
# (check_image.py, python3-libtorrent), and `ezioctl verify` agrees.
same_image() {
    local out
    out=$(ezio_check_image "$1" "$2" "$3") || fail "$3 differs from $2: $out"
    ok "$3: $out"
    out=$("$EZIOCTL" verify "$1" "$3" 2>&1) || fail "ezioctl verify $3: $out"
    ok "ezioctl verify: $out"
}

# resume_bytes FILE: image bytes a libtorrent resume file says are on the
# target: whole pieces ("pieces", bit 0 of each byte) plus the written
# 16 KiB blocks of unfinished pieces ("unfinished" bitmasks).
resume_bytes() {
    "$PY" - "$1" "$PIECE" <<'PY'
import sys, libtorrent as lt
d = lt.bdecode(open(sys.argv[1], "rb").read())
have = sum(1 for c in d.get(b"pieces", b"") if c & 1)
blocks = sum(bin(c).count("1") for u in d.get(b"unfinished", []) for c in u.get(b"bitmask", b""))
print(have * int(sys.argv[2]) + blocks * 16384)
PY
}

# fd_count PID / rss_kib PID: open descriptors and resident memory of PID.
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
