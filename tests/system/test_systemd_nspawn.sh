#!/bin/bash
# eziod under a real systemd: the .deb installed into a minimal Debian 12
# booted with systemd-nspawn (host network), loop devices passed in, a
# seeder eziod on the host (its own private bus) reached over 127.0.0.1.
#   boot 1  dpkg -i inside the running system (postinst: group, daemon-reload,
#           bus policy reload); D-Bus activation starts eziod.service;
#           systemctl start -> active; STATUS= follows a deployment in
#           `systemctl status`; `ezioctl deploy --wait` succeeds and the
#           target is byte-identical; the journal carries JOB=, TARGET=,
#           INFO_HASH=; the unit passes systemd-analyze verify;
#           `ezioctl autodeploy enable --then poweroff`; systemctl enable
#           eziod; systemctl reboot (nspawn exits 133).
#   boot 2  eziod deploys at boot (torrent over HTTP), seeds a few seconds
#           ("Auto-deploy done, power off after seeding" in systemctl
#           status), then powers the container off (nspawn exits 0); the
#           target holds the image.
#   boot 3  the record says done: nothing deployed, the container stays up;
#           the previous boot's journal tells the story. Auto-deploy onto a
#           too-small target is set up; reboot.
#   boot 4  the deployment fails: the container stays up, eziod is active
#           and `systemctl status eziod` says why; poweroff.
. "$(dirname "$0")/lib_dbus.sh"
. "$(dirname "$0")/lib_nspawn.sh"
ezio_require_root "boots a container with systemd-nspawn, attaches loop devices"
nspawn_require_tools
ezio_setup
T0=$(date +%s)

# --- the image, its seeder on the host, the torrent over HTTP ----------------------------
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

bus_start seeder
SA=$BUS_ADDR
eziod_start seeder "$SA" 0
SPORT=$(ezc "$SA" get /org/ezio/Ezio1 ListenPort)
SEED_JOB=$(ezc "$SA" seed "$TORRENT" "$SRC_IMG") || fail "Seed: $SEED_JOB"
ezc "$SA" wait "$SEED_JOB" seeding 20 >/dev/null || fail "the seeder does not seed"

HTTP_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m http.server --bind 127.0.0.1 --directory "$EZIO_TMP/www" "$HTTP_PORT" >"$EZIO_TMP/http.log" 2>&1 &
HTTP_PID=$!
ezio_on_exit "kill $HTTP_PID"
URL="http://127.0.0.1:$HTTP_PORT/sda1.torrent"
for ((i = 0; i < 100; i++)); do curl -sf -o /dev/null "$URL" && break; sleep 0.05; done
ok "image $HASH seeded on 127.0.0.1:$SPORT, torrent at $URL"

# Loop devices, made before the container so that it is stopped first.
ezio_loop DST1 16M a5
ezio_loop DST2 16M a5
ezio_loop SMALL 1M
BINDS=(--bind="$DST1" --bind="$DST2" --bind="$SMALL")

# --- the package and the root file system -------------------------------------------------
deb_build
ROOT="$EZIO_TMP/root"
rootfs_make "$ROOT"
cp "$DEB" "$ROOT/root/ezio.deb"
cp "$TORRENT" "$ROOT/srv/sda1.torrent"
mkdir -p "$ROOT/etc/ezio"
# Any free BitTorrent port (the container shares the host's network), no
# Local Service Discovery (peers are given).
printf '[daemon]\nlisten_port = 0\nlocal_discovery = no\n' >"$ROOT/etc/ezio/eziod.conf"
ok "$(basename "$DEB") and a root file system ready after $(($(date +%s) - T0)) s"

status_text() { inside systemctl show -p StatusText --value eziod.service; }
# wait_status PATTERN SECONDS: until eziod's STATUS= matches.
wait_status() {
    local i s=""
    for ((i = 0; i < $2 * 5; i++)); do
        s=$(status_text 2>/dev/null || true)
        grep -Eq -- "$1" <<<"$s" && return 0
        sleep 0.2
    done
    fail "eziod's status never matched '$1' in $2 s; last: '$s'; $(inside journalctl -u eziod --no-pager -n 30 2>&1)"
}

# --- boot 1: install, start, deploy by hand, set up auto-deploy ---------------------------
nspawn_boot "$ROOT" boot1 "${BINDS[@]}"
ok "boot 1: systemd $(inside systemctl is-system-running || true)"
inside dpkg -i /root/ezio.deb >"$EZIO_TMP/dpkg.log" 2>&1 || fail "dpkg -i: $(cat "$EZIO_TMP/dpkg.log")"
inside getent group ezio >/dev/null || fail "postinst made no group ezio"
inside systemctl cat eziod.service >/dev/null || fail "systemd does not know eziod.service after install"
ok "dpkg -i inside the running system"
verify=$(inside systemd-analyze verify eziod.service 2>&1 | grep -v "Command 'man " || true)
[ -z "$verify" ] || fail "systemd-analyze verify eziod.service: $verify"
ok "systemd-analyze verify eziod.service: clean"

# D-Bus activation: a call to org.ezio.Ezio1 starts the service.
v=$(inside busctl get-property org.ezio.Ezio1 /org/ezio/Ezio1 org.ezio.Ezio1.Manager Version) ||
    fail "activation through D-Bus failed: $v"
expect_eq "eziod activated by D-Bus is the service" "$(inside systemctl is-active eziod)" active
inside systemctl stop eziod
inside systemctl start eziod || fail "systemctl start eziod: $(inside systemctl status eziod --no-pager 2>&1)"
expect_eq "systemctl is-active eziod" "$(inside systemctl is-active eziod)" active
st=$(inside systemctl status eziod --no-pager 2>&1 || true)
grep -q 'Status: "Idle' <<<"$st" || fail "no STATUS line in systemctl status: $st"
ok "systemctl status shows: $(grep 'Status:' <<<"$st" | sed 's/^ *//')"
exposure=$(inside systemd-analyze security eziod.service --no-pager 2>&1 | tail -1)
ok "systemd-analyze security: $exposure"

# A deployment by hand, slowed down so the STATUS= line can be seen.
inside ezioctl deploy --wait --peer "127.0.0.1:$SPORT" --max-download-rate 2M \
    /srv/sda1.torrent "$DST1" >"$EZIO_TMP/deploy.out" 2>&1 &
DEPLOY_PID=$!
wait_status '^Deploying sda1: [0-9.]+%, [1-9][0-9.]* [KMG]iB/s, [1-9][0-9]* peers?' 30
ok "STATUS= during the deployment: $(status_text)"
st=$(inside systemctl status eziod --no-pager 2>&1 || true)
rc=0
wait "$DEPLOY_PID" || rc=$?
[ "$rc" = 0 ] || fail "ezioctl deploy --wait exited $rc: $(cat "$EZIO_TMP/deploy.out")"
ezio_check_image "$TORRENT" "$SRC_IMG" "$DST1" a5 || fail "$DST1 does not hold the image"
ok "ezioctl deploy --wait inside the container: $DST1 is byte-identical, the rest untouched"

journal=$(inside journalctl -u eziod -o verbose --no-pager)
for field in "JOB=1" "TARGET=$DST1" "INFO_HASH=$HASH" "SYSLOG_IDENTIFIER=eziod"; do
    grep -q "^ *$field\$" <<<"$journal" || fail "journal lacks $field: $(tail -40 <<<"$journal")"
done
ok "journalctl -u eziod -o verbose: JOB=, TARGET=, INFO_HASH= on the job's lines"

out=$(inside ezioctl autodeploy enable --then poweroff --seed-time 4 --peer "127.0.0.1:$SPORT" "$URL" "$DST2") ||
    fail "autodeploy enable: $out"
inside systemctl enable eziod >/dev/null 2>&1 || fail "systemctl enable eziod failed"
ok "auto-deploy set up: $(head -1 <<<"$out")"
inside systemctl reboot
nspawn_wait_exit 60
expect_eq "nspawn exit status after a reboot" "$NSPAWN_RC" 133

# --- boot 2: auto-deploy at boot, then poweroff --------------------------------------------
nspawn_boot "$ROOT" boot2 "${BINDS[@]}"
ok "boot 2 after $(($(date +%s) - T0)) s"
wait_status 'Auto-deploy done, power off after seeding: Seeding sda1' 60
st=$(inside systemctl status eziod --no-pager 2>&1 || true)
ok "systemctl status: $(grep 'Status:' <<<"$st" | sed 's/^ *//')"
nspawn_wait_exit 60
expect_eq "nspawn exit status after auto-deploy with then=poweroff" "$NSPAWN_RC" 0
ezio_check_image "$TORRENT" "$SRC_IMG" "$DST2" a5 || fail "$DST2 does not hold the image"
ok "the container powered itself off; $DST2 is byte-identical"
"$PY" - "$ROOT/var/lib/ezio/autodeploy.json" "$HASH" "$DST2" <<'PY' || fail "record: $(cat "$ROOT/var/lib/ezio/autodeploy.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert [c["info_hash"] + " " + c["target"] for c in s["completed"]] == [sys.argv[2] + " " + sys.argv[3]], s
print("ok - /var/lib/ezio/autodeploy.json records %s onto %s" % (sys.argv[2], sys.argv[3]))
PY

# --- boot 3: no second deployment; set up one that fails --------------------------------------
dd if=/dev/zero of="$DST2" bs=64K count=16 conv=notrunc status=none # would be rewritten
nspawn_boot "$ROOT" boot3 "${BINDS[@]}"
wait_status '^Auto-deploy skipped: .*already holds' 30
ok "boot 3: $(status_text)"
sleep 2
kill -0 "$NSPAWN_PID" 2>/dev/null || fail "the container ended although nothing was deployed"
expect_eq "jobs on the bus" "$(inside ezioctl jobs --json)" "[]"
prev=$(inside journalctl -b -1 -u eziod --no-pager -o verbose)
grep -q "auto-deploy: powering off" <<<"$prev" || fail "boot 2's journal lacks the poweroff: $prev"
grep -q "^ *TARGET=$DST2\$" <<<"$prev" && grep -q "^ *INFO_HASH=$HASH\$" <<<"$prev" ||
    fail "boot 2's journal lacks the job's fields"
ok "journalctl -b -1 -u eziod tells boot 2's story"
out=$(inside ezioctl autodeploy status)
grep -q "^Deployed: *$HASH onto $DST2" <<<"$out" || fail "autodeploy status: $out"
ok "ezioctl autodeploy status shows the record"
inside ezioctl -q autodeploy enable --then reboot --peer "127.0.0.1:$SPORT" "$URL" "$SMALL" ||
    fail "autodeploy enable (small target) failed"
inside systemctl reboot
nspawn_wait_exit 60
expect_eq "nspawn exit status after a reboot" "$NSPAWN_RC" 133

# --- boot 4: a failing auto-deploy never reboots -------------------------------------------
nspawn_boot "$ROOT" boot4 "${BINDS[@]}"
wait_status '^Auto-deploy failed \(not rebooting\): .*'"$SMALL" 30
sleep 3
kill -0 "$NSPAWN_PID" 2>/dev/null || fail "the container ended after a failed auto-deploy (exit ${NSPAWN_RC:-?})"
expect_eq "eziod after a failed auto-deploy" "$(inside systemctl is-active eziod)" active
st=$(inside systemctl status eziod --no-pager 2>&1 || true)
grep -q 'Status: "Auto-deploy failed (not rebooting): .*too small\|Status: "Auto-deploy failed (not rebooting): .*holds' <<<"$st" ||
    fail "systemctl status does not say why: $st"
ok "boot 4: $(grep 'Status:' <<<"$st" | sed 's/^ *//')"
inside journalctl -u eziod -b --no-pager | grep 'auto-deploy failed' >/dev/null || fail "the failure is not in the journal"
inside systemctl poweroff
nspawn_wait_exit 60
expect_eq "nspawn exit status after poweroff" "$NSPAWN_RC" 0
ok "done in $(($(date +%s) - T0)) s"
echo PASS
