#!/bin/bash
# End to end over the bus, daemon side: a seeder eziod and a receiver eziod,
# each on its own private bus (both want org.ezio.Ezio1), talking BitTorrent
# over loopback. Driven by the independent python3-dbus client, so it tests
# eziod's contract and not ezioctl.
#   1. Seed from a read-only loop device; Deploy with verify into a loop
#      device; Completed(true) arrives; the whole device equals the source.
#   2. A rate-limited deploy: PropertiesChanged stays near two a second and
#      carries only changed properties; Pause stops progress, Resume
#      finishes it; byte-identical again.
#   3. The receiver stopped (SIGTERM) mid-deploy and started again on the
#      same state directory: the job is back under the same path and
#      finishes; byte-identical.
#   4. A slow deploy cancelled: State cancelled, Completed(false),
#      ErrorName Cancelled; a second Cancel removes it.
#   5. Both daemons stop cleanly on SIGTERM.
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "attaches loop devices and runs private system buses"
ezio_setup

MIB=$((1 << 20))
EXTENTS="0:$MIB,$((4 * MIB)):$((2 * MIB)),$((12 * MIB)):$((3 * MIB))"
DATA_BYTES=$((6 * MIB))

# --- the source partition: 16 MiB, data in three extents, zeros elsewhere ------
SRC_IMG="$EZIO_TMP/source.img"
truncate -s 16M "$SRC_IMG"
IFS=, read -ra exts <<<"$EXTENTS"
for e in "${exts[@]}"; do
    off=${e%%:*} len=${e##*:}
    head -c "$len" /dev/urandom | dd of="$SRC_IMG" bs=64K seek="$off" oflag=seek_bytes conv=notrunc status=none
done
TORRENT="$EZIO_TMP/sda1.torrent"
HASH=$(make_image_torrent "$SRC_IMG" "$TORRENT" "$EXTENTS")
loop_create source 16 ro
SRC_DEV=$LOOP_DEV
loop_create target1 16
DST1=$LOOP_DEV
loop_create target2 16
DST2=$LOOP_DEV
loop_create target3 16
DST3=$LOOP_DEV
loop_create target4 16
DST4=$LOOP_DEV
ok "source $SRC_DEV (read-only), targets $DST1 $DST2 $DST3 $DST4, torrent $HASH"

bus_start seeder
SA=$BUS_ADDR
bus_start receiver
RA=$BUS_ADDR
eziod_start seeder "$SA" 0
eziod_start receiver "$RA" 0
SPORT=$(ezc "$SA" get /org/ezio/Ezio1 ListenPort)
PEER="peers:as=127.0.0.1:$SPORT"

same_as_source() {
    cmp "$SRC_IMG" "$1" || fail "$1 differs from the source"
    ok "$1 is byte-identical to the source"
}

# --- 1. seed, deploy with verify -------------------------------------------------
SJOB=$(ezc "$SA" seed "$TORRENT" "$SRC_DEV") || fail "Seed: $SJOB"
expect_eq "seed Operation" "$(ezc "$SA" get "$SJOB" Operation)" '"seed"'
expect_eq "seed State" "$(ezc "$SA" wait "$SJOB" seeding 60)" seeding

JOB1=$(ezc "$RA" deploy "$TORRENT" "$DST1" "$PEER" verify:b=true seed_after:s=forever) ||
    fail "Deploy: $JOB1"
done1=$(ezc "$RA" wait-completed "$JOB1" 120) || fail "deploy 1 did not complete: $done1"
case "$done1" in true*) ok "Completed: $done1" ;; *) fail "deploy 1: $done1" ;; esac
expect_eq "deploy 1 State (seed_after forever)" "$(ezc "$RA" get "$JOB1" State)" '"seeding"'
expect_eq "deploy 1 Progress" "$(ezc "$RA" get "$JOB1" Progress)" 1.0
expect_eq "deploy 1 BytesDone" "$(ezc "$RA" get "$JOB1" BytesDone)" $DATA_BYTES
expect_eq "deploy 1 LastError" "$(ezc "$RA" get "$JOB1" LastError)" '""'
same_as_source "$DST1"
ezc "$RA" call "$JOB1" Cancel >/dev/null || fail "stopping deploy 1's seeding"
ezc "$RA" wait "$JOB1" cancelled,completed 10 >/dev/null || fail "deploy 1 kept seeding after Cancel"
# One torrent per session: the finished job is removed before the next.
ezc "$RA" call "$JOB1" Cancel >/dev/null || fail "removing deploy 1"
expect_eq "jobs after removing deploy 1" "$(ezc "$RA" list)" "[]"

# --- 2. rate-limited deploy: change signals, pause, resume -----------------------------
JOB2=$(ezc "$RA" deploy "$TORRENT" "$DST2" "$PEER" max_download_rate:u=$MIB) || fail "Deploy: $JOB2"
ezc "$RA" wait-completed "$JOB2" 120 >"$EZIO_TMP/completed2" &
waiter=$!
ezc "$RA" wait "$JOB2" downloading 30 >/dev/null || fail "deploy 2 never downloaded"
read -r count props < <(ezc "$RA" count-changes "$JOB2" 2)
[ "$count" -ge 1 ] && [ "$count" -le 7 ] || fail "$count PropertiesChanged in 2 s (expected 1..7)"
case ",$props," in *,Operation,* | *,Target,* | *,InfoHash,* | *,Name,*)
    fail "PropertiesChanged carried a constant property: $props" ;;
esac
ok "$count PropertiesChanged in 2 s, carrying $props"
rate=0
for ((i = 0; i < 30; i++)); do
    rate=$(ezc "$RA" get "$JOB2" DownloadRate)
    [ "$rate" -gt 0 ] && break
    sleep 0.1
done
[ "$rate" -gt 0 ] || fail "DownloadRate stayed 0 during a download"
[ "$rate" -le $((2 * MIB)) ] || fail "DownloadRate $rate above twice the 1 MiB/s limit"
ok "DownloadRate = $rate under a 1 MiB/s limit"

ezc "$RA" call "$JOB2" Pause >/dev/null || fail "Pause"
expect_eq "State after Pause" "$(ezc "$RA" wait "$JOB2" paused 10)" paused
# A graceful pause lets requests already in flight land: wait until the
# count settles (the same for 1.5 s: job properties are refreshed every
# 0.5 s, so two readings 0.5 s apart can both predate the last block), then
# it must not move at all.
before=-1 same=0
for ((i = 0; i < 60 && same < 3; i++)); do
    sleep 0.5
    now=$(ezc "$RA" get "$JOB2" BytesDone)
    if [ "$now" = "$before" ]; then same=$((same + 1)); else same=0; fi
    before=$now
done
sleep 2
after=$(ezc "$RA" get "$JOB2" BytesDone)
expect_eq "BytesDone while paused" "$after" "$before"
[ "$before" -lt $DATA_BYTES ] || fail "deploy 2 finished before it could be paused"
ezc "$RA" call "$JOB2" Resume >/dev/null || fail "Resume"
wait $waiter || fail "deploy 2 did not complete: $(cat "$EZIO_TMP/completed2")"
case "$(cat "$EZIO_TMP/completed2")" in
    "true (already"*) fail "Completed signal missed: $(cat "$EZIO_TMP/completed2")" ;;
    true*) ok "Completed signal: $(cat "$EZIO_TMP/completed2")" ;;
    *) fail "deploy 2: $(cat "$EZIO_TMP/completed2")" ;;
esac
same_as_source "$DST2"
ezc "$RA" call "$JOB2" Cancel >/dev/null || fail "removing deploy 2"

# --- 3. restart mid-deploy -----------------------------------------------------------
JOBR=$(ezc "$RA" deploy "$TORRENT" "$DST3" "$PEER" max_download_rate:u=$MIB) || fail "Deploy: $JOBR"
ezc "$RA" wait "$JOBR" downloading 30 >/dev/null || fail "restart deploy never downloaded"
sleep 2
rc=0
eziod_stop receiver || rc=$?
expect_eq "receiver exit status mid-deploy" "$rc" 0
eziod_start receiver "$RA" 0
expect_eq "jobs after restart" "$(ezc "$RA" list)" "[\"$JOBR\"]"
expect_eq "restored job's Target" "$(ezc "$RA" get "$JOBR" Target)" "\"$DST3\""
doner=$(ezc "$RA" wait-completed "$JOBR" 120) || fail "restored deploy did not complete: $doner"
case "$doner" in true*) ok "restored job completed: $doner" ;; *) fail "restored job: $doner" ;; esac
same_as_source "$DST3"
ezc "$RA" call "$JOBR" Cancel >/dev/null || fail "removing the restored job"

# --- 4. cancel ----------------------------------------------------------------------
JOB3=$(ezc "$RA" deploy "$TORRENT" "$DST4" "$PEER" max_download_rate:u=131072) || fail "Deploy: $JOB3"
ezc "$RA" wait-completed "$JOB3" 60 >"$EZIO_TMP/completed3" &
waiter=$!
ezc "$RA" wait "$JOB3" downloading 30 >/dev/null || fail "deploy 3 never downloaded"
ezc "$RA" call "$JOB3" Cancel >/dev/null || fail "Cancel"
expect_eq "State after Cancel" "$(ezc "$RA" wait "$JOB3" cancelled 10)" cancelled
wait $waiter || fail "no Completed after Cancel: $(cat "$EZIO_TMP/completed3")"
case "$(cat "$EZIO_TMP/completed3")" in
    false*) ok "Completed after Cancel: $(cat "$EZIO_TMP/completed3")" ;;
    *) fail "Completed after Cancel: $(cat "$EZIO_TMP/completed3")" ;;
esac
expect_eq "ErrorName after Cancel" "$(ezc "$RA" get "$JOB3" ErrorName)" '"org.ezio.Ezio1.Error.Cancelled"'
ezc "$RA" call "$JOB3" Cancel >/dev/null || fail "second Cancel"
expect_error org.freedesktop.DBus.Error.UnknownObject ezc "$RA" get "$JOB3" State

# --- 5. the seeder served, and both stop cleanly -------------------------------------------
expect_eq "seeder still seeding" "$(ezc "$SA" get "$SJOB" State)" '"seeding"'
rc=0
eziod_stop receiver || rc=$?
expect_eq "receiver exit status" "$rc" 0
rc=0
eziod_stop seeder || rc=$?
expect_eq "seeder exit status" "$rc" 0
echo "PASS"
