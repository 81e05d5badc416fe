#!/bin/bash
# Hot-plug duplicator: eziod with a [duplicator] section deploys its image
# onto every new disk that matches, each as its own job, with the image from
# a seeder eziod on a second private bus. Four loop devices attached one
# after another are written side by side (all four jobs downloading at the
# same moment) and each receives the image, verified extent by extent (and
# untouched outside the extents); the bays feed each other, so the seeder,
# capped at 1 MiB/s, sends well under one copy per disk. One bay whose
# medium is pulled mid-deploy fails its own job only; the others still get
# the image. A matching disk that was there before eziod started, and a
# disk that does not match, are left alone.
#
# Without systemd-udevd a loop device has only the kernel's properties, so
# the match is MAJOR=7 (loop devices) and an exact, unusual size: no loop
# device another test makes meanwhile can match.
# Needs root (loop devices).
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "loop devices"
ezio_setup

E=org.ezio.Ezio1.Error
MIB=$((1 << 20))
SLOT_SIZE=$((40 * MIB + 12 * 1024)) # what the duplicator claims
RATE=$((1 * MIB))                   # seeder upload limit: the image takes >= 12 s from it
PAYLOAD=$((12 * MIB))               # bytes in the torrent's extents

sha() { sha256sum "$1" | cut -d' ' -f1; }
backing_file() { losetup -n -O BACK-FILE "$1" | sed 's/[[:space:]]*$//'; }

# job_on TARGET: path of the job whose Target is TARGET; empty if none.
job_on() {
    local path
    for path in $(ezc "$A" list | "$PY" -c 'import json, sys; print(" ".join(json.load(sys.stdin)))'); do
        if [ "$(ezc "$A" get "$path" Target)" = "\"$1\"" ]; then
            echo "$path"
            return 0
        fi
    done
}

# wait_job_on TARGET SECONDS: sets JOB to the job on TARGET once it exists.
wait_job_on() {
    local i
    JOB=""
    for ((i = 0; i < $2 * 10; i++)); do
        JOB=$(job_on "$1")
        [ -n "$JOB" ] && return 0
        sleep 0.1
    done
    fail "no job for $1 within $2 s; jobs: $(ezc "$A" list)"
}

# --- the image and its seeder -------------------------------------------------------
IMAGE=$EZIO_TMP/image.raw
head -c $((32 * MIB)) /dev/urandom >"$IMAGE"
TORRENT=$EZIO_TMP/image.torrent
make_image_torrent "$IMAGE" "$TORRENT" "0:$((8 * MIB)),$((20 * MIB)):$((4 * MIB))" >/dev/null ||
    fail "cannot make the torrent"
bus_start s
B=$BUS_ADDR
eziod_start s "$B" 0
SEED_PORT=$(ezc "$B" get /org/ezio/Ezio1 ListenPort)
SJOB=$(ezc "$B" seed "$TORRENT" "$IMAGE" max_upload_rate:u=$RATE) || fail "Seed: $SJOB"
ezc "$B" wait "$SJOB" seeding 20 >/dev/null || fail "the seeder does not seed"
ok "seeder on port $SEED_PORT"

# --- the duplicator -----------------------------------------------------------------------
# A matching disk present before eziod starts: never claimed.
ezio_loop EARLY "$SLOT_SIZE" a5
EARLY_SUM=$(sha "$EARLY")

bus_start a
A=$BUS_ADDR
mkdir -p "$EZIO_TMP/dup"
cat >"$EZIO_TMP/dup/eziod.conf" <<EOF
[daemon]
local_discovery = no
[duplicator]
torrent = $TORRENT
match_property = MAJOR=7
min_size = $SLOT_SIZE
max_size = $SLOT_SIZE
verify = yes
peers = 127.0.0.1:$SEED_PORT
EOF
eziod_start dup "$A" 0
for ((i = 0; i < 100; i++)); do
    grep -q "duplicator: ready" "$EZIO_TMP/dup/eziod.log" && break
    sleep 0.1
done
grep -q "duplicator: ready" "$EZIO_TMP/dup/eziod.log" || fail "the duplicator did not get ready"
ok "duplicator ready: $(grep -m1 'duplicator: deploying' "$EZIO_TMP/dup/eziod.log")"

# Four slots, one after another; the second is pulled mid-deploy.
SLOTS=()
for n in 1 2 3 4; do
    ezio_loop DEV "$SLOT_SIZE" a5
    SLOTS+=("$DEV")
    log "attached slot $n: $DEV"
    sleep 0.2
done
ezio_loop OTHER $((16 * MIB)) a5 # does not match (size)
OTHER_SUM=$(sha "$OTHER")

# Side by side: every bay's job downloads at the same moment.
for ((i = 0; i < 100; i++)); do
    running=0
    for dev in "${SLOTS[@]}"; do
        job=$(job_on "$dev")
        [ -n "$job" ] && [ "$(ezc "$A" get "$job" State)" = '"downloading"' ] && running=$((running + 1))
    done
    [ "$running" -eq 4 ] && break
    sleep 0.1
done
expect_eq "bays downloading at the same moment" "$running" 4

PULLED=${SLOTS[1]}
wait_job_on "$PULLED" 60
PULLED_JOB=$JOB
for ((i = 0; i < 300; i++)); do
    state=$(ezc "$A" get "$PULLED_JOB" State)
    progress=$(ezc "$A" get "$PULLED_JOB" Progress)
    [ "$state" = '"downloading"' ] && "$PY" -c "import sys; sys.exit(0 if $progress > 0.05 else 1)" && break
    sleep 0.1
done
[ "$state" = '"downloading"' ] || fail "the job on $PULLED is $state, not downloading"
ok "job $PULLED_JOB on $PULLED is downloading (progress $progress)"
# The job holds the loop open, so `losetup -d` would be deferred until it
# lets go; a pulled disk's device shrinks to nothing instead.
truncate -s 0 "$(backing_file "$PULLED")"
losetup -c "$PULLED"
ezc "$A" wait "$PULLED_JOB" failed 20 >/dev/null || fail "the job on the pulled disk did not fail"
expect_eq "pulled job ErrorName" "$(ezc "$A" get "$PULLED_JOB" ErrorName)" "\"$E.IoError\""

for dev in "${SLOTS[0]}" "${SLOTS[2]}" "${SLOTS[3]}"; do
    wait_job_on "$dev" 60
    result=$(ezc "$A" wait-completed "$JOB" 90) || fail "job $JOB on $dev: $result"
    case $result in
        true*) ;;
        *) fail "job $JOB on $dev did not complete: $result" ;;
    esac
    expect_eq "job $JOB on $dev" "$(ezc "$A" get "$JOB" State)" '"completed"'
    ezio_check_image "$TORRENT" "$IMAGE" "$dev" a5 || fail "$dev does not hold the image"
    ok "$dev holds the image, byte for byte, and a5 elsewhere"
done

# The bays fed each other: the seeder sent far less than a copy per disk.
SENT=$(ezc "$B" get "$SJOB" TotalUploaded)
log "seeder sent $SENT bytes for 3 complete bays and one pulled (image: $PAYLOAD bytes)"
[ "$SENT" -lt $((5 * PAYLOAD / 2)) ] || fail "the seeder sent $SENT bytes: the bays did not share"

expect_eq "jobs made by the duplicator" \
    "$(ezc "$A" list | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))')" 4
[ -z "$(job_on "$EARLY")" ] || fail "the disk present at start was claimed"
expect_eq "disk present at start untouched (sha256)" "$(sha "$EARLY")" "$EARLY_SUM"
[ -z "$(job_on "$OTHER")" ] || fail "a disk that does not match was claimed"
expect_eq "disk that does not match untouched (sha256)" "$(sha "$OTHER")" "$OTHER_SUM"
eziod_alive dup || fail "eziod died"
eziod_alive s || fail "the seeder died"
echo PASS
