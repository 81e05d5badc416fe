#!/bin/bash
# Fault: the only seeder dies (SIGKILL) while three receivers hold part of
# the image. The receivers keep their jobs running, exchange what they have,
# and cannot finish alone; they finish once a full copy is reachable again:
#   1. the seeder's eziod is started again on the same port and state
#      directory (its seed job comes back by itself);
#   2. (another image) the seeder stays dead and a second seeder, another
#      eziod serving the image from a copy in a regular file, appears.
# Each receiver's target ends byte-identical to the source.
. "$(dirname "$0")/lib_fault.sh"
ezio_require_root "attaches loop devices and runs eziod on private system buses"
ezio_setup

RATE=$((2 * MIB)) # the seeder's upload, shared by the three receivers

for r in r1 r2 r3; do
    bus_start "$r"
    declare "BUS_$r=$BUS_ADDR"
    eziod_start "$r" "$BUS_ADDR" 0
    declare "PORT_$r=$(listen_port "$BUS_ADDR")"
done
bus_of() { local v="BUS_$1"; echo "${!v}"; }
port_of() { local v="PORT_$1"; echo "${!v}"; }
RECEIVERS="peers:as=127.0.0.1:$PORT_r1,127.0.0.1:$PORT_r2,127.0.0.1:$PORT_r3"

bus_start s1
S1=$BUS_ADDR
eziod_start s1 "$S1" 0
S1_PORT=$(listen_port "$S1")

# round NAME: a fresh image and three targets; the receivers deploy it from
# s1 (which also connects to them), each also told of the other two. Returns
# when each receiver holds part of the image and none all of it. Sets
# JOBS_<r> and DST_<r>.
start_round() {
    local name=$1 r others
    fault_image "$name" 32 "0:$((16 * MIB)),$((20 * MIB)):$((8 * MIB))"
    loop_create "$name" 32 ro # attaches $IMG read-only
    SJOB=$(ezc "$S1" seed "$TORRENT" "$LOOP_DEV" max_upload_rate:u=$RATE "$RECEIVERS") ||
        fail "Seed: $SJOB"
    wait_until 30 "s1 seeds $name" state_is "$S1" "$SJOB" seeding
    for r in r1 r2 r3; do
        loop_create "$name-$r" 32
        declare -g "DST_$r=$LOOP_DEV"
        others="peers:as=127.0.0.1:$S1_PORT"
        for o in r1 r2 r3; do
            [ "$o" = "$r" ] || others+=",127.0.0.1:$(port_of "$o")"
        done
        local job
        job=$(ezc "$(bus_of "$r")" deploy "$TORRENT" "$LOOP_DEV" "$others") || fail "Deploy on $r: $job"
        declare -g "JOB_$r=$job"
    done
    for r in r1 r2 r3; do
        wait_until 60 "$r holds 1 MiB of $name" at_least "$(bus_of "$r")" "$(job_of "$r")" BytesDone $MIB
    done
}
job_of() { local v="JOB_$1"; echo "${!v}"; }
dst_of() { local v="DST_$1"; echo "${!v}"; }

# stalled: after the seeder died, no receiver can finish.
expect_stalled() {
    local r s total=0 done
    sleep 3
    for r in r1 r2 r3; do
        s=$(state "$(bus_of "$r")" "$(job_of "$r")")
        [ "$s" = downloading ] || fail "$r is '$s' without a seeder"
        done=$(prop "$(bus_of "$r")" "$(job_of "$r")" BytesDone)
        [ "$done" -lt "$DATA_BYTES" ] || fail "$r completed without a seeder"
        total=$((total + done))
    done
    ok "seeder gone: the three receivers hold $total bytes between them and wait"
}

finish_round() {
    local r
    for r in r1 r2 r3; do
        expect_completed "$(bus_of "$r")" "$(job_of "$r")" 120
    done
    for r in r1 r2 r3; do
        same_image "$TORRENT" "$IMG" "$(dst_of "$r")"
    done
}

# --- 1. the seeder is killed and comes back -------------------------------------------
start_round one
kill -KILL "${EZIOD_PID[s1]}"
wait "${EZIOD_PID[s1]}" 2>/dev/null || true
ok "seeder s1 killed (SIGKILL) mid-transfer"
expect_stalled
eziod_start s1 "$S1" "$S1_PORT"
expect_eq "s1's seed job after restart" "$(state "$S1" "$SJOB")" seeding
finish_round
ok "round 1: the restarted seeder let all three receivers finish"

# --- 2. the seeder is killed for good; a second seeder appears --------------------------
start_round two
kill -KILL "${EZIOD_PID[s1]}"
wait "${EZIOD_PID[s1]}" 2>/dev/null || true
ok "seeder s1 killed (SIGKILL) mid-transfer, for good"
expect_stalled
bus_start s2
S2=$BUS_ADDR
eziod_start s2 "$S2" 0
COPY="$EZIO_TMP/two-copy.img"
cp "$IMG" "$COPY"
S2JOB=$(ezc "$S2" seed "$TORRENT" "$COPY" "$RECEIVERS") || fail "Seed on s2: $S2JOB"
finish_round
ok "round 2: a second seeder let all three receivers finish"

for r in r1 r2 r3 s2; do
    eziod_stop "$r" || fail "$r did not stop cleanly"
done
echo PASS
