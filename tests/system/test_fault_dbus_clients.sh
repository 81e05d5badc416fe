#!/bin/bash
# Fault: D-Bus clients that disappear. While eziod runs a slow deployment
# (so it emits PropertiesChanged all the time) and a seed job, hundreds of
# clients vanish:
#   - in the middle of a call: the call is sent (a Deploy carrying a 4 MiB
#     torrent, GetManagedObjects, a property read, Introspect) and the client
#     exits before the reply arrives;
#   - in the middle of `ezioctl watch` and `ezioctl watch JOB` (SIGKILL while
#     they follow signals);
#   - in the middle of `ezioctl deploy --wait`'s wait (SIGKILL), which leaves
#     a job behind, as documented.
# Afterwards eziod has as many descriptors as before and its resident memory
# has not grown beyond noise, it answers every call, and the deployment that
# ran through all of it completes byte-identical.
. "$(dirname "$0")/lib_fault.sh"
ezio_require_root "attaches loop devices and runs eziod on private system buses"
ezio_setup

fault_image source 16 "0:$((12 * MIB))"
SRC_IMG=$IMG SRC_TORRENT=$TORRENT
loop_create source 16 ro
SRC_DEV=$LOOP_DEV
loop_create target 16
DST=$LOOP_DEV
bus_start seeder
SA=$BUS_ADDR
bus_start receiver
RA=$BUS_ADDR
eziod_start seeder "$SA" 0
eziod_start receiver "$RA" 0
PID=${EZIOD_PID[receiver]}

SJOB=$(ezc "$SA" seed "$SRC_TORRENT" "$SRC_DEV" max_upload_rate:u=262144) || fail "Seed: $SJOB"
JOB=$(ezc "$RA" deploy "$SRC_TORRENT" "$DST" "peers:as=127.0.0.1:$(listen_port "$SA")") || fail "Deploy: $JOB"
wait_until 30 "the deployment runs" state_is "$RA" "$JOB" downloading
# A second torrent seeded by the receiver itself: one more job to report.
fault_image other 4 "0:$((4 * MIB))"
ezc "$RA" seed "$TORRENT" "$IMG" >/dev/null || fail "second Seed"
# A third, that nobody seeds: `ezioctl deploy --wait` waits for it forever.
fault_image orphan 4 "0:$((4 * MIB))"
ORPHAN_TORRENT=$TORRENT

# A client that sends one call and exits at once, without reading the reply.
cat >"$EZIO_TMP/vanish.py" <<'PY'
import os, sys
import dbus, dbus.lowlevel
conn = dbus.bus.BusConnection(os.environ["EZIO_TEST_BUS"])
kind = sys.argv[1]
if kind == "deploy":
    m = dbus.lowlevel.MethodCallMessage("org.ezio.Ezio1", "/org/ezio/Ezio1",
                                        "org.ezio.Ezio1.Manager", "Deploy")
    m.append(dbus.ByteArray(os.urandom(4 << 20)), "/tmp/ezio-vanished.img",
             dbus.Dictionary({"file": dbus.Boolean(True)}, signature="sv"),
             signature="aysa{sv}")
elif kind == "managed":
    m = dbus.lowlevel.MethodCallMessage("org.ezio.Ezio1", "/org/ezio/Ezio1",
                                        "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
elif kind == "get":
    m = dbus.lowlevel.MethodCallMessage("org.ezio.Ezio1", sys.argv[2],
                                        "org.freedesktop.DBus.Properties", "GetAll")
    m.append("org.ezio.Ezio1.Job", signature="s")
else:
    m = dbus.lowlevel.MethodCallMessage("org.ezio.Ezio1", "/org/ezio/Ezio1/job",
                                        "org.freedesktop.DBus.Introspectable", "Introspect")
conn.send_message(m)
conn.flush()
os._exit(0)
PY
vanish() { EZIO_TEST_BUS="$RA" "$PY" "$EZIO_TMP/vanish.py" "$@"; }
ctl() { DBUS_SYSTEM_BUS_ADDRESS="$RA" "$EZIOCTL" "$@"; }

# round N: N times each kind of vanishing client, ten at a time.
round() {
    local n=$1 i pids
    for ((i = 0; i < n; i++)); do
        pids=()
        vanish deploy &
        pids+=($!)
        vanish managed &
        pids+=($!)
        vanish get "$JOB" &
        pids+=($!)
        vanish introspect &
        pids+=($!)
        ctl watch >/dev/null 2>&1 &
        pids+=($!)
        ctl --json watch "${JOB##*/}" >/dev/null 2>&1 &
        pids+=($!)
        sleep 0.3
        kill -KILL "${pids[@]:4}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    done
}

ezc "$RA" list >/dev/null || fail "eziod does not answer"
# Warm-up: libraries, caches, the bus's buffers, and malloc's arenas, which
# keep some of the 4 MiB messages' memory after they are freed.
round 10
# ezioctl deploy --wait, killed while waiting: the job stays (documented).
ctl deploy --wait --file --peer "127.0.0.1:$(listen_port "$SA")" "$ORPHAN_TORRENT" \
    "$EZIO_TMP/waited.img" >/dev/null 2>&1 &
waiter=$!
sleep 0.5
kill -KILL $waiter 2>/dev/null || true
wait $waiter 2>/dev/null || true
sleep 1
fds0=$(fd_count "$PID")
rss0=$(rss_kib "$PID")
ok "after warm-up: $fds0 descriptors, $rss0 KiB resident"

# Six blocks of ten rounds; a leak shows as growth from the first blocks to
# the last ones, allocator noise does not.
samples=()
for block in 1 2 3 4 5 6; do
    round 10
    samples+=("$(rss_kib "$PID")")
done
sleep 2 # let replies to vanished clients drain
fds1=$(fd_count "$PID")
first=$(printf '%s\n' "${samples[@]:0:3}" | sort -n | tail -1)
last=$(printf '%s\n' "${samples[@]:3:3}" | sort -n | tail -1)
echo "after 240 vanished calls and 120 killed watchers: $fds1 descriptors;" \
    "resident KiB after each block: ${samples[*]}"
eziod_alive receiver || fail "eziod died"
[ "$fds1" -le $((fds0 + 2)) ] || fail "descriptors grew from $fds0 to $fds1: $(ls -l /proc/"$PID"/fd)"
if ldd "$EZIOD" | grep libasan >/dev/null; then
    # AddressSanitizer keeps freed memory in quarantine, so RSS says nothing;
    # LeakSanitizer checks at the clean stop below (a leak is exit status 23).
    ok "no descriptor leak ($fds0 -> $fds1); memory: LeakSanitizer at exit (ASan build)"
else
    # 16 MiB of slack: four of the 4 MiB messages that malloc may keep
    # cached between blocks; a leak of 240 calls' worth would be far more.
    [ "$last" -le $((first + 16 * 1024)) ] ||
        fail "resident memory keeps growing: at most $first KiB in blocks 1-3, $last KiB in blocks 4-6"
    ok "no descriptor leak ($fds0 -> $fds1), resident memory stable (max $first KiB, then $last KiB)"
fi

# --- eziod still serves ------------------------------------------------------------------------
expect_eq "Version" "$(prop "$RA" $ROOT Version)" "\"$("$EZIOD" --version | cut -d' ' -f2)\""
jobs=$(ezc "$RA" list)
case "$jobs" in *"$JOB"*) ok "ListJobs: $jobs" ;; *) fail "ListJobs lost $JOB: $jobs" ;; esac
[ ! -e /tmp/ezio-vanished.img ] || fail "a Deploy with a garbage torrent created its target"
orphan=$(ezc "$RA" list | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[-1])')
expect_eq "the job of the killed deploy --wait is still there" "$(state "$RA" "$orphan")" downloading
ezc "$RA" call "$orphan" Cancel >/dev/null || fail "cancelling the orphan job"
expect_completed "$RA" "$JOB" 120
same_image "$SRC_TORRENT" "$SRC_IMG" "$DST"
rc=0
eziod_stop receiver || rc=$?
expect_eq "receiver exit status" "$rc" 0
eziod_stop seeder || fail "seeder did not stop cleanly"
echo PASS
