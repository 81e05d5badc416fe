#!/bin/bash
# eziod as a service, without systemd: command line and configuration
# errors, the sd_notify protocol against a fake NOTIFY_SOCKET (READY=1 only
# once the bus name is owned, STATUS= lines, WATCHDOG=1 from the main loop,
# STOPPING=1 on SIGTERM), a second instance refused while the name is taken,
# exit when the bus goes away, and --session.
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "runs dbus-daemon with the system bus policy, which lets only root own org.ezio.Ezio1"
ezio_setup

ROOT=/org/ezio/Ezio1

# --- command line and configuration ------------------------------------------------
expect_eq "eziod --version" "$("$EZIOD" --version)" "eziod $(sed -n 's/^project(ezio VERSION \([0-9.]*\).*/\1/p' "$EZIO_SOURCE_DIR/CMakeLists.txt")"
"$EZIOD" --help | grep -- --state-dir >/dev/null || fail "--help does not mention --state-dir"
ok "eziod --help"

printf '[daemon]\nlisten_port = 1\nlisten_prot = 2\n' >"$EZIO_TMP/bad.conf"
rc=0
out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent "$EZIOD" --config "$EZIO_TMP/bad.conf" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "bad config: exit $rc, expected 1 ($out)"
grep -q "bad.conf:3: unknown key 'listen_prot'" <<<"$out" || fail "bad config message: $out"
ok "a bad config file is refused: $out"
rc=0
out=$("$EZIOD" --config "$EZIO_TMP/missing.conf" 2>&1) || rc=$?
[ "$rc" = 1 ] && grep -q "missing.conf" <<<"$out" || fail "missing explicit config: exit $rc ($out)"
ok "a missing explicit config file is refused"
rc=0
"$EZIOD" --log-level loud >/dev/null 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "--log-level loud accepted"
ok "a bad --log-level is refused"
rc=0
out=$(DBUS_SYSTEM_BUS_ADDRESS=unix:path=$EZIO_TMP/no-bus "$EZIOD" --config /dev/null --listen-port 0 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "no bus: exit $rc ($out)"
ok "no bus: exit 1: $out"

# --- sd_notify -----------------------------------------------------------------------
bus_start a
A=$BUS_ADDR
A_PID=$BUS_PID
NOTES="$EZIO_TMP/notify.log"
EZIO_TEST_BUS="$A" "$PY" "$EZIO_TMP/ezioclient.py" notify-listen "$EZIO_TMP/notify.sock" "$NOTES" &
listener=$!
ezio_on_exit "kill $listener"
for ((i = 0; i < 100; i++)); do [ -S "$EZIO_TMP/notify.sock" ] && break; sleep 0.05; done

export NOTIFY_SOCKET="$EZIO_TMP/notify.sock" WATCHDOG_USEC=400000
eziod_start a "$A" 0
unset NOTIFY_SOCKET WATCHDOG_USEC

wait_note() { # PATTERN SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        grep -q -- "$1" "$NOTES" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no notification matching '$1' in $2 s: $(cat "$NOTES")"
}
wait_note '^READY=1$' 5
wait_note '^NAME_OWNED=' 5
expect_eq "name owned when READY=1 arrived" "$(grep '^NAME_OWNED=' "$NOTES" | head -1)" NAME_OWNED=1
wait_note '^STATUS=Idle' 5
ok "STATUS: $(grep '^STATUS=' "$NOTES" | tail -1)"
sleep 1.5
dogs=$(grep -c '^WATCHDOG=1$' "$NOTES" || true)
[ "$dogs" -ge 3 ] || fail "only $dogs WATCHDOG=1 with WATCHDOG_USEC=400000"
ok "$dogs WATCHDOG=1 pings"

IMG="$EZIO_TMP/source.img"
head -c $((1 << 20)) /dev/urandom >"$IMG"
make_image_torrent "$IMG" "$EZIO_TMP/sda1.torrent" "0:1048576" >/dev/null
JOB=$(ezc "$A" deploy "$EZIO_TMP/sda1.torrent" "$EZIO_TMP/out.img" file:b=true) || fail "Deploy: $JOB"
wait_note '^STATUS=.*sda1' 5
ok "STATUS follows jobs: $(grep '^STATUS=.*sda1' "$NOTES" | tail -1)"

# --- a second eziod while the name is taken --------------------------------------------
mkdir -p "$EZIO_TMP/second"
rc=0
DBUS_SYSTEM_BUS_ADDRESS="$A" timeout 30 "$EZIOD" --config /dev/null --listen-port 0 \
    --state-dir "$EZIO_TMP/second" >"$EZIO_TMP/second/log" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "second eziod: exit $rc ($(cat "$EZIO_TMP/second/log"))"
ok "a second eziod on the same bus exits 1: $(grep -i error "$EZIO_TMP/second/log" | head -1)"
expect_eq "first eziod still serves" "$(ezc "$A" get $ROOT Version)" "\"$("$EZIOD" --version | cut -d' ' -f2)\""

# --- SIGTERM: STOPPING=1, exit 0 ---------------------------------------------------------
rc=0
eziod_stop a || rc=$?
expect_eq "exit status after SIGTERM" "$rc" 0
wait_note '^STOPPING=1$' 1

# --- the bus goes away: eziod exits (systemd restarts it) ------------------------------------
eziod_start b "$A" 0
kill "$A_PID"
for ((i = 0; i < 100; i++)); do eziod_alive b || break; sleep 0.1; done
if eziod_alive b; then fail "eziod kept running without its bus"; fi
rc=0
wait "${EZIOD_PID[b]}" || rc=$?
expect_eq "exit status when the bus disappears" "$rc" 1

# --- --session ------------------------------------------------------------------------------
mkdir -p "$EZIO_TMP/session"
dbus-daemon --config-file=/usr/share/dbus-1/session.conf --address="unix:path=$EZIO_TMP/session/bus" \
    --nofork --nosyslog >"$EZIO_TMP/session/bus.log" 2>&1 &
spid=$!
ezio_on_exit "kill $spid"
for ((i = 0; i < 100; i++)); do [ -S "$EZIO_TMP/session/bus" ] && break; sleep 0.05; done
S="unix:path=$EZIO_TMP/session/bus"
DBUS_SESSION_BUS_ADDRESS="$S" DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent \
    "$EZIOD" --session --config /dev/null --listen-port 0 --state-dir "$EZIO_TMP/session" \
    >"$EZIO_TMP/session/eziod.log" 2>&1 &
EZIOD_PID[session]=$!
ezio_on_exit "eziod_kill session"
for ((i = 0; i < 100; i++)); do ezc "$S" has-owner && break; sleep 0.1; done
ezc "$S" has-owner || fail "eziod --session did not own org.ezio.Ezio1: $(cat "$EZIO_TMP/session/eziod.log")"
expect_eq "ListJobs on the session bus" "$(ezc "$S" list)" "[]"
rc=0
eziod_stop session || rc=$?
expect_eq "session eziod exit status" "$rc" 0
echo "PASS"
