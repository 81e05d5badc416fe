#!/bin/bash
# Fault: a target whose writes start failing. The target is a loop device
# over a 64 MiB sparse file on a 20 MiB tmpfs: the first 20 MiB reach the
# backing store, then the loop driver's writes fail (ENOSPC in tmpfs, EIO on
# the device). Buffered writes land in the page cache and succeed, so the
# failure shows when eziod flushes the target (periodic resume save, or the
# final flush): eziod must see it there.
#   - the deployment fails with ErrorName org.ezio.Ezio1.Error.IoError and a
#     LastError naming the target; it never reports "completed";
#   - another deployment on the same eziod, running at the same time onto a
#     healthy loop device, goes on and completes byte-identical;
#   - eziod keeps answering on the bus.
# Then a disk that fills up and gets space back (a thin-provisioned volume
# that is extended): a periodic flush fails, later writes succeed again. The
# pieces whose write-back failed are gone although their hashes had passed,
# so the job must fail at that first failed flush, and must not complete
# once the device accepts writes again (before this test, eziod only logged
# the failed resume-save flush and a later flush reported success).
. "$(dirname "$0")/lib_fault.sh"
ezio_require_root "mounts a tmpfs, attaches loop devices, runs eziod on private system buses"
ezio_setup

# --- the failing disk ---------------------------------------------------------------
TMPFS="$EZIO_TMP/tmpfs"
mkdir -p "$TMPFS"
mount -t tmpfs -o size=20m ezio-test "$TMPFS" || fail "cannot mount a tmpfs"
ezio_on_exit "umount '$TMPFS'"
truncate -s 64M "$TMPFS/disk.img" # sparse: far larger than the tmpfs
BAD_DEV=$(losetup -f --show "$TMPFS/disk.img") || fail "losetup over the tmpfs"
ezio_on_exit "losetup -d '$BAD_DEV'"
ok "failing disk $BAD_DEV: 64 MiB over a 20 MiB tmpfs"

# --- two images: A (48 MiB) for the failing disk, B (8 MiB) for a healthy one -------
fault_image big 64 "0:$((40 * MIB)),$((48 * MIB)):$((8 * MIB))"
BIG_IMG=$IMG BIG_TORRENT=$TORRENT
loop_create big 64 ro
BIG_SRC=$LOOP_DEV
fault_image small 16 "0:$((6 * MIB)),$((12 * MIB)):$((2 * MIB))"
SMALL_IMG=$IMG SMALL_TORRENT=$TORRENT
loop_create small 16 ro
SMALL_SRC=$LOOP_DEV
loop_create good 16
GOOD_DEV=$LOOP_DEV

bus_start seeder
SA=$BUS_ADDR
bus_start receiver
RA=$BUS_ADDR
eziod_start seeder "$SA" 0
eziod_start receiver "$RA" 0
PEER="peers:as=127.0.0.1:$(listen_port "$SA")"

# A at 2 MiB/s (about 24 s: periodic resume saves flush while it runs), B at
# 256 KiB/s (about 32 s: still running when A fails).
SBIG=$(ezc "$SA" seed "$BIG_TORRENT" "$BIG_SRC" max_upload_rate:u=$((2 * MIB))) || fail "Seed A: $SBIG"
SSMALL=$(ezc "$SA" seed "$SMALL_TORRENT" "$SMALL_SRC" max_upload_rate:u=262144) || fail "Seed B: $SSMALL"
wait_until 30 "the seeder seeds both" eval \
    '[ "$(state "$SA" "$SBIG")" = seeding ] && [ "$(state "$SA" "$SSMALL")" = seeding ]'

GOOD_JOB=$(ezc "$RA" deploy "$SMALL_TORRENT" "$GOOD_DEV" "$PEER") || fail "Deploy B: $GOOD_JOB"
BAD_JOB=$(ezc "$RA" deploy "$BIG_TORRENT" "$BAD_DEV" "$PEER") || fail "Deploy A: $BAD_JOB"
ezc "$RA" wait-completed "$GOOD_JOB" 120 >"$EZIO_TMP/good.completed" &
good_waiter=$!

# --- A fails with an I/O error, never completes ------------------------------------------
out=$(ezc "$RA" wait-completed "$BAD_JOB" 90) || fail "the failing deploy did not end: $out"
case "$out" in
    false*) ok "Completed(false) for the failing disk: $out" ;;
    *) fail "a deployment onto a failing disk reported success: $out" ;;
esac
expect_eq "State" "$(state "$RA" "$BAD_JOB")" failed
expect_eq "ErrorName" "$(prop "$RA" "$BAD_JOB" ErrorName)" '"org.ezio.Ezio1.Error.IoError"'
last_error=$(prop "$RA" "$BAD_JOB" LastError)
case "$last_error" in
    *"$BAD_DEV"*) ok "LastError: $last_error" ;;
    *) fail "LastError does not name the target: $last_error" ;;
esac
echo "eziod's log of the failed job:"
grep "job ${BAD_JOB##*/} " "$EZIO_TMP/receiver/eziod.log" | tail -4 | sed 's/^/    /'
eziod_alive receiver || fail "eziod died on a failing disk"
expect_eq "Version after the failure" "$(prop "$RA" $ROOT Version)" "\"$("$EZIOD" --version | cut -d' ' -f2)\""

# --- B carries on and completes ------------------------------------------------------------
b_state=$(state "$RA" "$GOOD_JOB")
case "$b_state" in
    downloading | finishing | completed) ok "the other deployment is $b_state when A failed" ;;
    *) fail "the other deployment is $b_state when A failed" ;;
esac
wait $good_waiter || fail "the other deployment did not complete: $(cat "$EZIO_TMP/good.completed")"
case "$(cat "$EZIO_TMP/good.completed")" in
    true*) ok "the other deployment completed: $(cat "$EZIO_TMP/good.completed")" ;;
    *) fail "the other deployment: $(cat "$EZIO_TMP/good.completed")" ;;
esac
same_image "$SMALL_TORRENT" "$SMALL_IMG" "$GOOD_DEV"
# What reached the failing disk is not the image, and nobody claims it is.
"$EZIOCTL" verify "$BIG_TORRENT" "$BAD_DEV" >/dev/null 2>&1 && fail "ezioctl verify accepts the failed disk"
ok "ezioctl verify rejects the failed disk"
[ -z "$(ls "$EZIO_TMP/receiver/state/jobs/${BAD_JOB##*/}" 2>/dev/null)" ] ||
    fail "the failed job left resume state behind"


# --- a disk that runs full, then gets space back -----------------------------------------
TMPFS2="$EZIO_TMP/tmpfs2"
mkdir -p "$TMPFS2"
mount -t tmpfs -o size=20m ezio-test "$TMPFS2" || fail "cannot mount a second tmpfs"
ezio_on_exit "umount '$TMPFS2'"
head -c $((16 * MIB)) /dev/zero >"$TMPFS2/filler" # 4 MiB stay free
truncate -s 32M "$TMPFS2/disk.img"
THIN_DEV=$(losetup -f --show "$TMPFS2/disk.img") || fail "losetup over the second tmpfs"
ezio_on_exit "losetup -d '$THIN_DEV'"
fault_image thin 32 "0:$((16 * MIB))"
THIN_IMG=$IMG THIN_TORRENT=$TORRENT
loop_create thin 32 ro
SJOB=$(ezc "$SA" seed "$THIN_TORRENT" "$LOOP_DEV" max_upload_rate:u=524288) || fail "Seed: $SJOB"
THIN_JOB=$(ezc "$RA" deploy "$THIN_TORRENT" "$THIN_DEV" "$PEER") || fail "Deploy: $THIN_JOB"
# 16 MiB at 512 KiB/s: 32 s, with a periodic flush every 15 s; the one that
# comes after the first 4 MiB fails.
flush_failed() {
    state_is "$RA" "$THIN_JOB" failed ||
        grep -q "job ${THIN_JOB##*/} .*flushing $THIN_DEV failed" "$EZIO_TMP/receiver/eziod.log"
}
wait_until 40 "a failed flush of $THIN_DEV" flush_failed
rm "$TMPFS2/filler"
ok "a flush of $THIN_DEV failed; the space is back ($(state "$RA" "$THIN_JOB"))"
out=$(ezc "$RA" wait-completed "$THIN_JOB" 60) || fail "the thin deploy did not end: $out"
case "$out" in
    false*) ok "Completed(false) after the space came back: $out" ;;
    *) fail "a deployment that lost writes reported success: $out; $("$EZIOCTL" verify "$THIN_TORRENT" "$THIN_DEV" 2>&1)" ;;
esac
expect_eq "ErrorName" "$(prop "$RA" "$THIN_JOB" ErrorName)" '"org.ezio.Ezio1.Error.IoError"'

rc=0
eziod_stop receiver || rc=$?
expect_eq "receiver exit status" "$rc" 0
eziod_stop seeder || fail "seeder did not stop cleanly"
echo PASS
