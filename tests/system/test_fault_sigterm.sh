#!/bin/bash
# Fault: SIGTERM (systemctl stop, shutdown) while eziod is writing a target.
#   - eziod stops cleanly: exit status 0 within a few seconds;
#   - it saved resume data on the way out, after flushing the target: the
#     resume file was rewritten at stop and lists at least every byte the
#     job reported done before the signal;
#   - after a restart the job is back under the same path, starts from what
#     was saved, fetches only what was missing (less than 10% again), and
#     the target ends byte-identical to the source.
. "$(dirname "$0")/lib_fault.sh"
ezio_require_root "attaches loop devices and runs eziod on private system buses"
ezio_setup

fault_image source 32 "0:$((8 * MIB)),$((10 * MIB)):$((20 * MIB))"
loop_create source 32 ro
SRC_DEV=$LOOP_DEV
loop_create target 32 # same size, zeros: nothing of the image is there yet
DST=$LOOP_DEV

bus_start seeder
SA=$BUS_ADDR
bus_start receiver
RA=$BUS_ADDR
eziod_start seeder "$SA" 0
eziod_start receiver "$RA" 0
SPORT=$(listen_port "$SA")

RATE=$((2 * MIB))
SJOB=$(ezc "$SA" seed "$TORRENT" "$SRC_DEV" max_upload_rate:u=$RATE) || fail "Seed: $SJOB"
wait_until 30 "the seeder seeds" state_is "$SA" "$SJOB" seeding
JOB=$(ezc "$RA" deploy "$TORRENT" "$DST" "peers:as=127.0.0.1:$SPORT") || fail "Deploy: $JOB"
RESUME="$EZIO_TMP/receiver/state/jobs/${JOB##*/}/resume"

# --- SIGTERM while pieces are arriving and being written --------------------------
wait_until 60 "40% of the image" at_least "$RA" "$JOB" BytesDone $((DATA_BYTES * 2 / 5))
done_before=$(prop "$RA" "$JOB" BytesDone)
[ "$(state "$RA" "$JOB")" = downloading ] || fail "not downloading at SIGTERM: $(state "$RA" "$JOB")"
inode_before=$(stat -c %i "$RESUME" 2>/dev/null || echo none)
start=$(date +%s%N)
rc=0
eziod_stop receiver || rc=$?
took=$((($(date +%s%N) - start) / 1000000))
expect_eq "exit status after SIGTERM mid-write" "$rc" 0
[ "$took" -lt 10000 ] || fail "stopping took $took ms"
ok "eziod stopped cleanly in $took ms"

[ -s "$RESUME" ] || fail "no resume data in $RESUME after SIGTERM"
[ "$(stat -c %i "$RESUME")" != "$inode_before" ] || fail "the resume file was not rewritten at stop"
saved=$(resume_bytes "$RESUME")
[ "$saved" -ge "$done_before" ] ||
    fail "resume data lists $saved bytes; $done_before bytes were done before SIGTERM"
ok "resume data saved at stop: $saved bytes (>= $done_before bytes reported before SIGTERM)"

# --- restart: continues from the saved pieces --------------------------------------
eziod_start receiver "$RA" 0
expect_eq "jobs after restart" "$(ezc "$RA" list)" "[\"$JOB\"]"
expect_eq "restored Target" "$(prop "$RA" "$JOB" Target)" "\"$DST\""
wait_until 30 "the restored job reports the saved pieces" \
    at_least "$RA" "$JOB" BytesDone $((saved - PIECE))
expect_completed "$RA" "$JOB" 120
fetched=$(prop "$RA" "$JOB" TotalDownloaded)
sleep 1 # the seeder's counters are published twice a second
uploaded=$(prop "$SA" "$SJOB" TotalUploaded)
again=$((uploaded - DATA_BYTES))
echo "after the restart the receiver fetched $fetched bytes; the seeder uploaded $uploaded" \
    "bytes in all for $DATA_BYTES bytes of image"
[ "$fetched" -le $((DATA_BYTES - saved + 4 * PIECE)) ] ||
    fail "fetched $fetched bytes after the restart; only $((DATA_BYTES - saved)) were missing"
[ $((again * 100)) -lt $((DATA_BYTES * 10)) ] ||
    fail "$again bytes ($((again * 100 / DATA_BYTES))%) fetched twice, expected < 10%"
ok "fetched again after SIGTERM: $again bytes ($((again * 100 / DATA_BYTES))%)"

same_image "$TORRENT" "$IMG" "$DST"
rc=0
eziod_stop receiver || rc=$?
expect_eq "receiver exit status" "$rc" 0
eziod_stop seeder || fail "seeder did not stop cleanly"
echo PASS
