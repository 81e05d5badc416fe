#!/bin/bash
# Fault: a peer that sends corrupt data. A second seeder eziod serves a copy
# of the image with one byte flipped in every other piece, trusting its
# source (the default: no rehash), and serves it fast; the good seeder is
# slow. The receiver must notice every bad piece by its hash, ban the
# corrupt peer, fetch those pieces again from the good seeder, and end with
# the exact image.
. "$(dirname "$0")/lib_fault.sh"
ezio_require_root "attaches loop devices and runs eziod on private system buses"
ezio_setup

fault_image source 32 "0:$((24 * MIB)),$((28 * MIB)):$((4 * MIB))"
loop_create source 32 ro
GOOD_SRC=$LOOP_DEV
BAD_IMG="$EZIO_TMP/corrupt.img"
cp "$IMG" "$BAD_IMG"
# The first extent starts at 0, so piece k is at byte k * PIECE there.
"$PY" - "$BAD_IMG" "$PIECE" <<'PY'
import sys
path, piece = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    for k in range(1, 96, 2):
        f.seek(k * piece + 1000)
        b = f.read(1)
        f.seek(k * piece + 1000)
        f.write(bytes([b[0] ^ 0xFF]))
PY
cmp -s "$IMG" "$BAD_IMG" && fail "the corrupt copy is not corrupt"
BAD_PIECES=48
loop_create corrupt 32 ro
BAD_SRC=$LOOP_DEV
"$EZIOCTL" verify "$TORRENT" "$BAD_SRC" >"$EZIO_TMP/verify.out" 2>&1 && fail "ezioctl verify accepted the corrupt copy"
grep -q "$BAD_PIECES of 112 pieces" "$EZIO_TMP/verify.out" || fail "verify of the corrupt copy: $(cat "$EZIO_TMP/verify.out")"
ok "the corrupt copy has $BAD_PIECES bad pieces: $(cat "$EZIO_TMP/verify.out")"
loop_create target 32
DST=$LOOP_DEV

for name in good bad receiver; do
    bus_start $name
    declare "BUS_$name=$BUS_ADDR"
    eziod_start $name "$BUS_ADDR" 0
done
GOOD_PORT=$(listen_port "$BUS_good")
BAD_PORT=$(listen_port "$BUS_bad")

GJOB=$(ezc "$BUS_good" seed "$TORRENT" "$GOOD_SRC" max_upload_rate:u=$((4 * MIB))) || fail "Seed (good): $GJOB"
BJOB=$(ezc "$BUS_bad" seed "$TORRENT" "$BAD_SRC") || fail "Seed (corrupt): $BJOB"
wait_until 30 "both seeders seed" eval \
    '[ "$(state "$BUS_good" "$GJOB")" = seeding ] && [ "$(state "$BUS_bad" "$BJOB")" = seeding ]'
ok "good seeder on port $GOOD_PORT (4 MiB/s), corrupt seeder on port $BAD_PORT (unlimited, trusted source)"

JOB=$(ezc "$BUS_receiver" deploy "$TORRENT" "$DST" \
    "peers:as=127.0.0.1:$BAD_PORT,127.0.0.1:$GOOD_PORT") || fail "Deploy: $JOB"
LOG="$EZIO_TMP/receiver/eziod.log"
# Once banned, the corrupt seeder must stay out: it learnt the receiver's
# port and keeps trying to connect, and it must not send another byte.
wait_until 60 "the corrupt peer is banned" grep -q "banned peer 127.0.0.1:$BAD_PORT" "$LOG"
# libtorrent adds a connection's bytes to the torrent's once a second, and
# eziod publishes them twice a second: wait for both before each reading.
sleep 3
sent_at_ban=$(prop "$BUS_bad" "$BJOB" TotalUploaded)
expect_completed "$BUS_receiver" "$JOB" 100
sleep 3
sent_at_end=$(prop "$BUS_bad" "$BJOB" TotalUploaded)
[ $((sent_at_end - sent_at_ban)) -lt "$PIECE" ] ||
    fail "the banned peer sent $((sent_at_end - sent_at_ban)) more bytes after its ban"
ok "after its ban the corrupt peer sent nothing more ($sent_at_ban bytes in all)"
failures=$(grep -c "failed its hash check" "$LOG" || true)
[ "$failures" -ge 1 ] || fail "no hash failure was reported; did the corrupt peer send anything?"
ok "$failures hash failure(s) reported"
grep -q "banned peer 127.0.0.1:$BAD_PORT" "$LOG" || fail "the corrupt peer was not banned: $(grep -i ban "$LOG")"
grep -q "banned peer 127.0.0.1:$GOOD_PORT" "$LOG" && fail "the good seeder was banned too"
ok "the corrupt peer 127.0.0.1:$BAD_PORT was banned, the good seeder was not"
bad_up=$(prop "$BUS_bad" "$BJOB" TotalUploaded)
good_up=$(prop "$BUS_good" "$GJOB" TotalUploaded)
got=$(prop "$BUS_receiver" "$JOB" TotalDownloaded)
echo "corrupt seeder sent $bad_up bytes, good seeder $good_up; the receiver took $got bytes for $DATA_BYTES"
[ "$bad_up" -gt 0 ] || fail "the corrupt seeder sent nothing"

same_image "$TORRENT" "$IMG" "$DST"
for name in good bad receiver; do
    eziod_stop $name || fail "$name did not stop cleanly"
done
echo PASS
