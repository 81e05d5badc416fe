#!/bin/bash
# Auto-deploy, daemon side, without a real systemd (the nspawn test,
# test_systemd_nspawn.sh, does it under systemd with real reboots): eziod on a
# private bus with a fake NOTIFY_SOCKET, a seeder eziod on another bus, the
# torrent served over HTTP on 127.0.0.1, loop devices as targets.
#   1. [autodeploy] in eziod.conf + ezio.* on a kernel command line file:
#      eziod fetches the torrent, deploys (a job on the bus), the target
#      holds the image, the record is written, the STATUS= line tells the
#      story, and the post-action is attempted through systemd's D-Bus API
#      (absent on the private bus: it fails, and eziod stays up saying so).
#   2. Started again: the record says done, nothing is deployed.
#   3. ezio.autodeploy=0 switches it off; a bad ezio.* parameter leaves
#      eziod up with the reason in STATUS=.
#   4. A target too small: fails at once, STATUS= says why, no post-action.
#   5. An unreachable torrent URL: retried, STATUS= says so.
#   6. eziod stopped mid-deployment and started again: the job restored from
#      the state directory is carried on, not started twice.
#   7. ezioctl autodeploy enable/status/disable on the same files.
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "attaches loop devices and runs private system buses"
ezio_setup

MIB=$((1 << 20))
EXTENTS="0:$MIB,$((4 * MIB)):$((2 * MIB)),$((12 * MIB)):$((3 * MIB))"
SRC_IMG="$EZIO_TMP/source.img"
truncate -s 16M "$SRC_IMG"
IFS=, read -ra exts <<<"$EXTENTS"
for e in "${exts[@]}"; do
    off=${e%%:*} len=${e##*:}
    head -c "$len" /dev/urandom | dd of="$SRC_IMG" bs=64K seek="$off" oflag=seek_bytes conv=notrunc status=none
done
mkdir -p "$EZIO_TMP/www"
TORRENT="$EZIO_TMP/www/sda1.torrent"
HASH=$(make_image_torrent "$SRC_IMG" "$TORRENT" "$EXTENTS")
ezio_loop DST 16M a5
ezio_loop SMALL 1M
ok "image $HASH, target $DST, small target $SMALL"

# The torrent over HTTP, as a PXE lab would serve it.
HTTP_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m http.server --bind 127.0.0.1 --directory "$EZIO_TMP/www" "$HTTP_PORT" >"$EZIO_TMP/http.log" 2>&1 &
HTTP_PID=$!
ezio_on_exit "kill $HTTP_PID"
for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/sda1.torrent" && break
    sleep 0.05
done
URL="http://127.0.0.1:$HTTP_PORT/sda1.torrent"

bus_start seeder
SA=$BUS_ADDR
eziod_start seeder "$SA" 0
SPORT=$(ezc "$SA" get /org/ezio/Ezio1 ListenPort)
SEED_JOB=$(ezc "$SA" seed "$TORRENT" "$SRC_IMG") || fail "Seed: $SEED_JOB"
ezc "$SA" wait "$SEED_JOB" seeding 20 >/dev/null || fail "the seeder does not seed"
ok "seeder on 127.0.0.1:$SPORT"

bus_start receiver
RA=$BUS_ADDR
R="$EZIO_TMP/receiver"
mkdir -p "$R"
NOTES="$EZIO_TMP/notify.log"
EZIO_TEST_BUS="$RA" "$PY" "$EZIO_TMP/ezioclient.py" notify-listen "$EZIO_TMP/notify.sock" "$NOTES" &
listener=$!
ezio_on_exit "kill $listener"
for ((i = 0; i < 100; i++)); do [ -S "$EZIO_TMP/notify.sock" ] && break; sleep 0.05; done

# receiver_start CMDLINE: (re)starts the receiver with a kernel command line
# and a fresh notification log.
receiver_start() {
    printf '%s\n' "$1" >"$R/cmdline"
    : >"$NOTES"
    export NOTIFY_SOCKET="$EZIO_TMP/notify.sock"
    eziod_start receiver "$RA" 0 --kernel-cmdline "$R/cmdline"
    unset NOTIFY_SOCKET
}
receiver_restart() {
    eziod_stop receiver || fail "receiver did not stop cleanly"
    receiver_start "$1"
}
wait_status() { # PATTERN SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        grep -Eq -- "^STATUS=.*$1" "$NOTES" 2>/dev/null && return 0
        eziod_alive receiver || fail "receiver died; notifications: $(cat "$NOTES")"
        sleep 0.1
    done
    fail "no STATUS= matching '$1' in $2 s: $(grep STATUS= "$NOTES")"
}
last_status() { grep '^STATUS=' "$NOTES" | tail -1; }
write_conf() { # TARGET THEN
    cat >"$R/eziod.conf" <<EOF
[daemon]
local_discovery = no
state_dir = $R/state
[autodeploy]
torrent = $URL
target = $1
then = $2
EOF
}

# --- 1. deploy at start, record, post-action attempted -------------------------------
write_conf "$DST" reboot
receiver_start "BOOT_IMAGE=/vmlinuz root=/dev/sda2 ro quiet ezio.peers=127.0.0.1:$SPORT"
wait_status 'Auto-deploy done' 30
grep -Eq '^STATUS=Auto-deploy: (fetching|Deploying|Finishing|Checking)' "$NOTES" ||
    fail "no progress in STATUS=: $(grep STATUS= "$NOTES")"
ok "progress: $(grep -E '^STATUS=Auto-deploy: ' "$NOTES" | tail -1)"
ezio_check_image "$TORRENT" "$SRC_IMG" "$DST" a5 || fail "$DST does not hold the image"
ok "$DST holds the image, nothing outside the extents touched"
wait_status 'cannot reboot' 10
ok "post-action attempted through systemd's D-Bus API: $(last_status)"
grep -q "ServiceUnknown\|org.freedesktop.systemd1" "$R/eziod.log" || fail "no trace of StartUnit in the log"
eziod_alive receiver || fail "receiver exited"
jobs=$(ezc "$RA" list)
[ "$jobs" != "[]" ] || fail "the auto-deploy job is not on the bus"
ok "the deployment is a job on the bus: $jobs"
"$PY" - "$R/state/autodeploy.json" "$HASH" "$DST" <<'PY' || fail "record: $(cat "$R/state/autodeploy.json")"
import json, sys
s = json.load(open(sys.argv[1]))
c = s["completed"]
assert len(c) == 1 and c[0]["info_hash"] == sys.argv[2] and c[0]["target"] == sys.argv[3], c
assert s["last"]["state"] == "completed", s["last"]
assert len(c[0]["boot_id"]) == 36, c
print("ok - recorded: %s onto %s" % (c[0]["info_hash"], c[0]["target"]))
PY

# --- 2. started again: already done, nothing deployed ----------------------------------
dd if=/dev/zero of="$DST" bs=64K count=16 conv=notrunc status=none # would be rewritten
receiver_restart "ezio.peers=127.0.0.1:$SPORT"
wait_status 'Auto-deploy skipped' 10
ok "$(last_status)"
expect_eq "jobs after a skipped auto-deploy" "$(ezc "$RA" list)" "[]"
grep -q 'cannot reboot' "$NOTES" && fail "a skipped auto-deploy attempted the post-action"
# And the status verb reads the same record.
out=$("$EZIOCTL" autodeploy status --config "$R/eziod.conf") || fail "autodeploy status: $out"
grep -q "^Deployed: *$HASH onto $DST" <<<"$out" || fail "autodeploy status lacks the record: $out"
grep -q "^Last run: *skipped" <<<"$out" || fail "autodeploy status lacks the last run: $out"
ok "ezioctl autodeploy status shows the record"

# --- 3. switched off for a boot; a bad parameter ------------------------------------------
receiver_restart "ezio.autodeploy=0 ezio.peers=127.0.0.1:$SPORT"
wait_status 'Idle' 10
grep -q 'Auto-deploy' "$NOTES" && fail "ezio.autodeploy=0 did not switch it off: $(cat "$NOTES")"
ok "ezio.autodeploy=0: $(last_status)"
receiver_restart "ezio.then=explode"
wait_status 'Auto-deploy failed.*ezio.then=explode' 10
eziod_alive receiver || fail "a bad kernel parameter stopped eziod"
ok "bad kernel parameter: $(last_status)"

# --- 4. a target too small: fails, says why, stays up, no post-action -------------------------
write_conf "$SMALL" reboot
receiver_restart "ezio.peers=127.0.0.1:$SPORT"
wait_status 'Auto-deploy failed \(not rebooting\)' 30
last_status | grep "$SMALL" >/dev/null || fail "STATUS= does not name the target: $(last_status)"
sleep 1
eziod_alive receiver || fail "receiver exited after a failed auto-deploy"
grep -q 'cannot reboot\|; rebooting' "$NOTES" && fail "a failed auto-deploy went on to reboot"
ok "too small: $(last_status)"
"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["last"]["state"]=="failed", s' \
    "$R/state/autodeploy.json" || fail "failure not recorded"

# --- 5. an unreachable torrent: retried -------------------------------------------------
sed -i "s|^torrent = .*|torrent = http://127.0.0.1:1/none.torrent|" "$R/eziod.conf"
receiver_restart ""
wait_status 'Auto-deploy: .*retrying in' 10
ok "unreachable: $(last_status)"

# --- 6. eziod restarted mid-deployment: the restored job is carried on ----------------------
ezio_loop DST3 16M a5
ezc "$SA" call "$SEED_JOB" Cancel >/dev/null || fail "cannot cancel the seed job"
ezc "$SA" call "$SEED_JOB" Cancel >/dev/null 2>&1 || true # forget it
SEED_JOB=$(ezc "$SA" seed "$TORRENT" "$SRC_IMG" max_upload_rate:u=1048576) || fail "Seed: $SEED_JOB"
ezc "$SA" wait "$SEED_JOB" seeding 20 >/dev/null || fail "the slow seeder does not seed"
write_conf "$DST3" none
receiver_restart "ezio.peers=127.0.0.1:$SPORT"
wait_status 'Auto-deploy: Deploying sda1: [0-9]*[1-9][0-9]*\.' 30
ok "mid-deployment: $(last_status)"
receiver_restart "ezio.peers=127.0.0.1:$SPORT"
wait_status 'Auto-deploy done' 60
grep -q 'auto-deploy: continuing the restored job' "$R/eziod.log" || fail "the restored job was not carried on"
expect_eq "jobs after the restart" "$(ezc "$RA" list)" '["/org/ezio/Ezio1/job/1"]'
ezio_check_image "$TORRENT" "$SRC_IMG" "$DST3" a5 || fail "$DST3 does not hold the image"
ok "restarted mid-deployment: the restored job finished, $DST3 is byte-identical"

# --- 7. ezioctl autodeploy edits the file, keeps the rest --------------------------------------
eziod_stop receiver || true
CONF="$EZIO_TMP/edit.conf"
printf '# my settings\n[daemon]\nlisten_port = 7000\nstate_dir = %s\n' "$R/state" >"$CONF"
chmod 640 "$CONF"
"$EZIOCTL" autodeploy enable --config "$CONF" --then poweroff --seed-time 2m --peer 127.0.0.1:$SPORT \
    "$TORRENT" "$DST" >"$EZIO_TMP/enable.out" || fail "enable: $(cat "$EZIO_TMP/enable.out")"
grep -q "Image $HASH" "$EZIO_TMP/enable.out" || fail "enable did not check the torrent: $(cat "$EZIO_TMP/enable.out")"
grep -q '^# my settings$' "$CONF" && grep -q '^listen_port = 7000$' "$CONF" || fail "enable lost lines: $(cat "$CONF")"
grep -q "^torrent = $TORRENT$" "$CONF" && grep -q '^then = poweroff$' "$CONF" &&
    grep -q '^seed_time = 120$' "$CONF" || fail "enable wrote: $(cat "$CONF")"
expect_eq "mode kept" "$(stat -c %a "$CONF")" 640
"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["completed"]==[], s' \
    "$R/state/autodeploy.json" || fail "enable did not clear the record"
ok "enable wrote [autodeploy], kept the rest and cleared the record"
json=$("$EZIOCTL" --json autodeploy status --config "$CONF")
"$PY" -c 'import json,sys; s=json.loads(sys.argv[1]); assert s["Enabled"] and s["Then"]=="poweroff" and s["SeedTime"]=="120", s' \
    "$json" || fail "status --json: $json"
"$EZIOCTL" -q autodeploy disable --config "$CONF" || fail "disable failed"
grep -q autodeploy "$CONF" && fail "disable left: $(cat "$CONF")"
grep -q '^listen_port = 7000$' "$CONF" || fail "disable lost lines: $(cat "$CONF")"
printf '[daemon]\nlisten_port = x\n' >"$EZIO_TMP/bad.conf"
rc=0
"$EZIOCTL" autodeploy enable --config "$EZIO_TMP/bad.conf" "$TORRENT" "$DST" 2>"$EZIO_TMP/err" || rc=$?
[ "$rc" = 2 ] || fail "enable on a broken file: exit $rc"
grep -q 'bad.conf:2' "$EZIO_TMP/err" || fail "enable on a broken file: $(cat "$EZIO_TMP/err")"
expect_eq "broken file untouched" "$(cat "$EZIO_TMP/bad.conf")" "$(printf '[daemon]\nlisten_port = x')"
ok "ezioctl autodeploy enable/status/disable"
echo PASS
