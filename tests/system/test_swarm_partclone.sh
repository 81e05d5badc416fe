#!/bin/bash
# Issue 2's proof over real parts: a seeder eziod reading a loop device that
# holds a real ext4 filesystem captured with partclone, and two receiver
# eziod writing to loop devices pre-filled with a pattern, all on 127.0.0.1,
# each on its own private system bus. Every extent must equal the source and
# every byte outside the extents must still hold the pattern. Then the same
# with a hybrid (v1+v2) torrent of the same partition.
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "loop devices, mounts"
ezio_setup

ezio_loop SOURCE 192M
ezio_ext4_with_data "$SOURCE" 64
ezio_partclone "$SOURCE" "$EZIO_TMP/capture"
"$EZIOCTL" -q make-torrent "$EZIO_TMP/capture/torrent.info" --name sda1 -o "$EZIO_TMP/v1.torrent"
"$EZIOCTL" -q make-torrent "$SOURCE" --name sda1 --skip-zero --hybrid --piece-size 1048576 \
    -o "$EZIO_TMP/hybrid.torrent"
"$PY" -c 'import libtorrent as lt, sys; ih = lt.torrent_info(sys.argv[1]).info_hashes(); sys.exit(0 if ih.has_v1() and ih.has_v2() else 1)' \
    "$EZIO_TMP/hybrid.torrent" || fail "the hybrid torrent is not v1+v2"

for name in seeder r1 r2; do
    bus_start "$name"
    declare "BUS_$name=$BUS_ADDR"
    eziod_start "$name" "$BUS_ADDR" 0
done
on() { local b="BUS_$1"; shift; DBUS_SYSTEM_BUS_ADDRESS=${!b} "$EZIOCTL" "$@"; }
SEEDER_PORT=$(on seeder --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ListenPort"])')
[ "$SEEDER_PORT" -gt 0 ] || fail "seeder has no listen port"

for kind in v1 hybrid; do
    torrent=$EZIO_TMP/$kind.torrent
    on seeder -q seed "$torrent" "$SOURCE"
    ezio_loop T1 192M a5
    ezio_loop T2 192M a5
    # Both receivers at once; each also learns of the other through the seeder.
    on r1 -q deploy --wait --peer "127.0.0.1:$SEEDER_PORT" "$torrent" "$T1" &
    p1=$!
    on r2 -q deploy --wait --peer "127.0.0.1:$SEEDER_PORT" "$torrent" "$T2" &
    p2=$!
    wait "$p1" || fail "$kind: receiver 1 did not complete"
    wait "$p2" || fail "$kind: receiver 2 did not complete"
    for t in "$T1" "$T2"; do
        out=$(ezio_check_image "$torrent" "$SOURCE" "$t" a5) || fail "$kind: $t: $out"
        ok "$kind: $t: $out"
    done
    fsck.ext4 -n -f "$T1" >/dev/null 2>&1 || fail "$kind: deployed filesystem does not fsck clean"
    ok "$kind: deployed ext4 is clean"
    # Finished jobs stay listed; cancel removes them so the next round starts fresh.
    for name in seeder r1 r2; do
        for job in $(on "$name" --json jobs | "$PY" -c 'import json,sys; print(" ".join(str(j["Id"]) for j in json.load(sys.stdin)))'); do
            on "$name" -q cancel "$job"
            on "$name" -q cancel "$job" 2>/dev/null || true
        done
    done
done
echo PASS
