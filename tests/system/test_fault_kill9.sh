#!/bin/bash
# Fault: the receiving eziod is killed with SIGKILL in the middle of a
# deployment (a crash, or a power cut as far as eziod can tell), then started
# again on the same state directory.
#   - the job comes back by itself under its old path and continues;
#   - pieces that were durably written (listed in the resume data eziod saves
#     after flushing the target) are not fetched again: the seeder uploads
#     less than 125% of the image in total, i.e. less than 25% is fetched
#     twice;
#   - the target ends byte-identical to the source.
# The seeder is rate-limited so the kill lands at a known point: just after
# eziod rewrote its resume file (the worst case for a crash is just before
# that rewrite; the periodic save interval bounds it).
. "$(dirname "$0")/lib_fault.sh"
ezio_require_root "attaches loop devices and runs eziod on private system buses"
ezio_setup

# 28 MiB of data in two extents of a 32 MiB partition: 112 pieces.
fault_image source 32 "0:$((24 * MIB)),$((28 * MIB)):$((4 * MIB))"
loop_create source 32 ro # attaches $IMG read-only
SRC_DEV=$LOOP_DEV
loop_create target 32
DST=$LOOP_DEV

bus_start seeder
SA=$BUS_ADDR
bus_start receiver
RA=$BUS_ADDR
eziod_start seeder "$SA" 0
eziod_start receiver "$RA" 0
SPORT=$(listen_port "$SA")

RATE=$MIB
SJOB=$(ezc "$SA" seed "$TORRENT" "$SRC_DEV" max_upload_rate:u=$RATE) || fail "Seed: $SJOB"
wait_until 30 "the seeder seeds" state_is "$SA" "$SJOB" seeding
JOB=$(ezc "$RA" deploy "$TORRENT" "$DST" "peers:as=127.0.0.1:$SPORT") || fail "Deploy: $JOB"
ok "deploying $DATA_BYTES bytes at $RATE bytes/s: $JOB"

# --- kill -9 just after a resume save that lists a fifth of the image -------------
# eziod saves resume data every 15 s (after flushing the target). Each save
# replaces the file by a rename, so a new inode means a fresh save.
RESUME="$EZIO_TMP/receiver/state/jobs/${JOB##*/}/resume"
old=none saved=0
for ((i = 0; i < 1200; i++)); do
    now=$(stat -c %i "$RESUME" 2>/dev/null || echo none)
    if [ "$now" != none ] && [ "$now" != "$old" ]; then
        old=$now
        saved=$(resume_bytes "$RESUME" 2>/dev/null || echo 0)
        [ $((saved * 5)) -ge "$DATA_BYTES" ] && break
    fi
    sleep 0.05
done
[ $((saved * 5)) -ge "$DATA_BYTES" ] || fail "no resume save listed a fifth of the image within 60 s"
kill -KILL "${EZIOD_PID[receiver]}"
wait "${EZIOD_PID[receiver]}" 2>/dev/null || true
expect_eq "bytes listed in the resume file after the kill" "$(resume_bytes "$RESUME")" "$saved"
[ "$(state "$SA" "$SJOB")" = seeding ] || fail "the seeder stopped"
ok "receiver killed (SIGKILL) right after a resume save listing $saved of $DATA_BYTES bytes"

# --- restart: the job is back and continues where the resume data says ---------
eziod_start receiver "$RA" 0
expect_eq "jobs after restart" "$(ezc "$RA" list)" "[\"$JOB\"]"
wait_until 30 "the restored job reports the saved pieces" \
    at_least "$RA" "$JOB" BytesDone $((saved - PIECE))
ok "restored job starts from $(prop "$RA" "$JOB" BytesDone) bytes, not from zero"
expect_completed "$RA" "$JOB" 120
after_restart=$(prop "$RA" "$JOB" TotalDownloaded)

# --- how much was fetched twice ---------------------------------------------------
sleep 1 # the seeder's counters are published twice a second
uploaded=$(prop "$SA" "$SJOB" TotalUploaded)
again=$((uploaded - DATA_BYTES))
echo "seeder uploaded $uploaded bytes for $DATA_BYTES bytes of image (again: $again);" \
    "the receiver fetched $after_restart bytes after the restart"
[ "$uploaded" -ge "$DATA_BYTES" ] || fail "the seeder uploaded less than the image: $uploaded"
[ $((again * 100)) -lt $((DATA_BYTES * 25)) ] ||
    fail "$again bytes ($((again * 100 / DATA_BYTES))%) fetched twice, expected < 25%"
[ "$after_restart" -le $((DATA_BYTES - saved + 4 * PIECE)) ] ||
    fail "after the restart the receiver fetched $after_restart bytes, more than what the resume data lacked"
ok "re-downloaded $((again * 100 / DATA_BYTES))% of the image (< 25%)"

same_image "$TORRENT" "$IMG" "$DST"
eziod_stop receiver || fail "receiver did not stop cleanly"
eziod_stop seeder || fail "seeder did not stop cleanly"
echo PASS
