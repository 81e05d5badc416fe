#!/bin/bash
# Disks on the bus: loop devices attached and detached while eziod runs
# appear and disappear as /org/ezio/Ezio1/disk/NAME objects (InterfacesAdded
# / InterfacesRemoved, seen by an independent python3-dbus client), with or
# without systemd-udevd (without it, from raw kernel uevents); partitions
# come with their disk; mounting sends PropertiesChanged; `ezioctl disks`
# (table and --json) shows them. Refusals over the bus on loop devices: a
# mounted ext4 (TargetBusy), a read-only loop (InvalidTarget), a loop too
# small for the image (InvalidTarget), each proven untouched by its SHA-256.
# A disk that goes away mid-deploy fails its own job and no other.
# Needs root (loop devices, mounts).
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "loop devices and mounts"
ezio_setup

E=org.ezio.Ezio1.Error
DISK_ROOT=/org/ezio/Ezio1/disk
MIB=$((1 << 20))

if pgrep -x systemd-udevd >/dev/null; then
    log "systemd-udevd runs: disks are seen through udev's events"
    NO_UDEVD=0
else
    log "no systemd-udevd: disks are seen through raw kernel uevents"
    NO_UDEVD=1
fi

name_of() { basename "$1"; }
path_of() { echo "$DISK_ROOT/$(name_of "$1")"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
ezctl() { DBUS_SYSTEM_BUS_ADDRESS="$A" "$EZIOCTL" "$@"; }

# The watcher: an independent client that logs every disk signal, one line
# each: "added PATH NAME", "removed PATH", "changed PATH PROP=VALUE,...".
cat >"$EZIO_TMP/watch.py" <<'PY'
import os
import sys

import dbus
import dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
b = dbus.bus.BusConnection(os.environ["EZIO_TEST_BUS"])
out = open(sys.argv[1], "a", buffering=1)
DISK = "org.ezio.Ezio1.Disk"
PREFIX = "/org/ezio/Ezio1/disk/"


def added(path, interfaces):
    if DISK in interfaces:
        out.write("added %s %s size=%d\n" % (path, interfaces[DISK]["Name"],
                                             int(interfaces[DISK]["Size"])))


def removed(path, interfaces):
    if DISK in interfaces:
        out.write("removed %s\n" % path)


def changed(iface, props, invalidated, path=None):
    if iface == DISK and path.startswith(PREFIX):
        out.write("changed %s %s\n" % (path, ",".join(
            "%s=%s" % (k, props[k]) for k in sorted(props))))


b.add_signal_receiver(added, "InterfacesAdded", "org.freedesktop.DBus.ObjectManager",
                      None, "/org/ezio/Ezio1")
b.add_signal_receiver(removed, "InterfacesRemoved", "org.freedesktop.DBus.ObjectManager",
                      None, "/org/ezio/Ezio1")
b.add_signal_receiver(changed, "PropertiesChanged", "org.freedesktop.DBus.Properties",
                      None, None, path_keyword="path")
# Match rules are in force once a round trip returns.
b.get_unique_name()
b.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "GetId", "", [])
out.write("ready\n")
GLib.MainLoop().run()
PY

# wait_line PATTERN SECONDS: until the watcher logged a line matching PATTERN.
wait_line() {
    local pattern=$1 seconds=$2 i
    for ((i = 0; i < seconds * 10; i++)); do
        grep -Eq -- "$pattern" "$WATCH_LOG" && return 0
        sleep 0.1
    done
    fail "no signal matching '$pattern' within ${seconds}s; seen: $(cat "$WATCH_LOG")"
}

# wait_count PATTERN N SECONDS: until the watcher logged N lines matching PATTERN.
wait_count() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ "$(grep -Ec -- "$1" "$WATCH_LOG")" -ge "$2" ] && return 0
        sleep 0.1
    done
    fail "fewer than $2 signals matching '$1' within ${3}s; seen: $(cat "$WATCH_LOG")"
}

# prop_wait PATH PROP VALUE SECONDS: until the property reads VALUE (JSON).
prop_wait() {
    local i v=""
    for ((i = 0; i < $4 * 10; i++)); do
        v=$(ezc "$A" get "$1" "$2" 2>&1) && [ "$v" = "$3" ] && return 0
        sleep 0.1
    done
    fail "$1 $2: got '$v', expected $3"
}

# managed_has PATH: is PATH among GetManagedObjects() with the Disk interface?
managed_has() {
    ezc "$A" managed | "$PY" -c '
import json, sys
objs = json.load(sys.stdin)
sys.exit(0 if "org.ezio.Ezio1.Disk" in objs.get(sys.argv[1], {}) else 1)' "$1"
}

# --- a disk present before eziod starts is on the bus when it owns its name ----------
loop_create early 24
EARLY=$LOOP_DEV
bus_start a
A=$BUS_ADDR
eziod_start a "$A" 0
managed_has "$(path_of "$EARLY")" || fail "$EARLY is not among the managed objects after start"
expect_eq "early loop Name" "$(ezc "$A" get "$(path_of "$EARLY")" Name)" "\"$(name_of "$EARLY")\""
if [ "$NO_UDEVD" = 1 ]; then
    grep -q "kernel uevents" "$EZIO_TMP/a/eziod.log" ||
        fail "eziod does not say it watches kernel uevents: $(grep -i disk "$EZIO_TMP/a/eziod.log")"
    ok "eziod watches raw kernel uevents (no udevd)"
fi

WATCH_LOG=$EZIO_TMP/watch.log
: >"$WATCH_LOG"
EZIO_TEST_BUS="$A" "$PY" "$EZIO_TMP/watch.py" "$WATCH_LOG" 2>"$EZIO_TMP/watch.err" &
WATCH_PID=$!
ezio_on_exit "kill $WATCH_PID"
wait_line '^ready$' 10

# --- hot-plug: attach, then detach ---------------------------------------------------------
loop_create hot 48
HOT=$LOOP_DEV
HOT_PATH=$(path_of "$HOT")
wait_line "^added $HOT_PATH $(name_of "$HOT") size=$((48 * MIB))\$" 10
ok "attach $HOT: InterfacesAdded $HOT_PATH"
props=$(ezc "$A" getall "$HOT_PATH")
"$PY" - "$props" "$HOT" <<'PY' || fail "properties of $HOT_PATH: $props"
import json, sys
p, dev = json.loads(sys.argv[1]), sys.argv[2]
expect = {"Name": dev[len("/dev/"):], "Device": dev, "Size": 48 << 20, "IsPartition": False,
          "Parent": "", "Partitions": [], "ReadOnly": False, "InUse": False, "InUseReason": "",
          "Ignored": False, "Eligible": True}
bad = {k: (p.get(k), v) for k, v in expect.items() if p.get(k) != v}
assert not bad, bad
for k in ("Model", "Serial", "Bus", "ById", "ByPath", "Removable", "FilesystemType", "AutoDeploy"):
    assert k in p, k
PY
ok "$HOT_PATH properties: Name, Device, Size, eligible"

json=$(ezctl disks --json) || fail "ezioctl disks --json failed"
"$PY" - "$json" "$HOT" "$HOT_PATH" <<'PY' || fail "ezioctl disks --json: $json"
import json, sys
disks, dev, path = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
assert isinstance(disks, list)
mine = [d for d in disks if d["Device"] == dev]
assert len(mine) == 1, mine
d = mine[0]
assert d["Path"] == path and d["Size"] == 48 << 20 and d["Eligible"] is True, d
PY
ok "ezioctl disks --json lists $HOT (Path, Size, Eligible)"
table=$(ezctl disks) || fail "ezioctl disks failed"
grep -Eq "^$(name_of "$HOT") +48\.0 MiB +- +eligible\$" <<<"$table" || fail "ezioctl disks table: $table"
head -1 <<<"$table" | grep -Eq '^NAME +SIZE +MODEL +STATE$' || fail "table header: $table"
ok "ezioctl disks table shows $(name_of "$HOT") as eligible"
ezctl -q disks | grep -x "$(name_of "$HOT")" >/dev/null || fail "ezioctl -q disks lacks $(name_of "$HOT")"

losetup -d "$HOT"
wait_line "^removed $HOT_PATH\$" 10
! managed_has "$HOT_PATH" || fail "$HOT_PATH still managed after detach"
ezctl disks --json | "$PY" -c '
import json, sys
assert all(d["Device"] != sys.argv[1] for d in json.load(sys.stdin))' "$HOT" ||
    fail "ezioctl disks still lists $HOT after detach"
ok "detach $HOT: InterfacesRemoved, gone from GetManagedObjects and ezioctl disks"

# --- a partitioned loop: the disk and its partition ---------------------------------------
PART_IMG=$EZIO_TMP/parted.img
truncate -s 32M "$PART_IMG"
# An MBR with one Linux partition, sectors 2048..43007 (no fdisk needed).
"$PY" - "$PART_IMG" <<'PY' || fail "cannot write the partition table"
import struct, sys
entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 40960)
with open(sys.argv[1], "r+b") as f:
    f.seek(446)
    f.write(entry + b"\0" * 48 + b"\x55\xaa")
PY
PARTED=$(losetup -P -f --show "$PART_IMG") || fail "losetup -P failed"
ezio_on_exit "ezio_detach '$PARTED' '$PART_IMG'"
P1=$(name_of "$PARTED")p1
# A kernel built without partition table parsers finds none: add it by hand
# (BLKPG), which is a partition appearing all the same.
for ((i = 0; i < 10; i++)); do
    [ -e "/sys/class/block/$P1" ] && break
    sleep 0.1
done
[ -e "/sys/class/block/$P1" ] || addpart "$PARTED" 1 2048 40960 || fail "addpart failed"
wait_line "^added $DISK_ROOT/$P1 $P1 size=$((40960 * 512))\$" 10
wait_line "^added $(path_of "$PARTED") " 10
expect_eq "$P1 IsPartition" "$(ezc "$A" get "$DISK_ROOT/$P1" IsPartition)" true
expect_eq "$P1 Parent" "$(ezc "$A" get "$DISK_ROOT/$P1" Parent)" "\"$(name_of "$PARTED")\""
prop_wait "$(path_of "$PARTED")" Partitions "[\"$P1\"]" 5
ok "$(name_of "$PARTED") lists its partition $P1"
delpart "$PARTED" 1 || fail "delpart failed"
wait_line "^removed $DISK_ROOT/$P1\$" 10
prop_wait "$(path_of "$PARTED")" Partitions "[]" 5
managed_has "$(path_of "$PARTED")" || fail "the disk went with its partition"
ok "deleting $P1 removes its object; the disk stays, with no partitions"
addpart "$PARTED" 1 2048 40960 || fail "addpart failed"
wait_count "^added $DISK_ROOT/$P1 " 2 10
losetup -d "$PARTED"
wait_line "^removed $(path_of "$PARTED")\$" 10
wait_count "^removed $DISK_ROOT/$P1\$" 2 5
ok "detaching $(name_of "$PARTED") removes the disk and its partition"

# --- refusals over the bus, each target untouched -------------------------------------------
IMAGE=$EZIO_TMP/image.raw
head -c $((8 * MIB)) /dev/urandom >"$IMAGE"
TORRENT=$EZIO_TMP/image.torrent
make_image_torrent "$IMAGE" "$TORRENT" "0:$MIB,$((7 * MIB)):$MIB" >/dev/null ||
    fail "cannot make the torrent"

# A mounted ext4 (read-only mount: the kernel writes nothing to it either).
added_before=$(grep -Ec "^added $DISK_ROOT/loop[0-9]+ " "$WATCH_LOG" || true)
loop_create mounted 32
MOUNTED=$LOOP_DEV
# Mount only once eziod has the disk: an attach event handled after the mount
# would add it already in use, with no PropertiesChanged to test.
wait_count "^added $DISK_ROOT/loop[0-9]+ " $((added_before + 1)) 10
grep -Eq "^added $(path_of "$MOUNTED") " "$WATCH_LOG" || fail "$MOUNTED was not added"
mkfs.ext4 -q -F "$MOUNTED"
MNT=$EZIO_TMP/mnt
mkdir -p "$MNT"
mount -o ro "$MOUNTED" "$MNT"
ezio_on_exit "umount '$MNT'"
# Mounting sends no uevent: eziod sees it through /proc/self/mountinfo.
prop_wait "$(path_of "$MOUNTED")" InUse true 10
prop_wait "$(path_of "$MOUNTED")" Eligible false 5
# (InUse may have been true already while mkfs held the device open.)
wait_line "^changed $(path_of "$MOUNTED") .*InUseReason=.*is mounted on" 5
reason=$(ezc "$A" get "$(path_of "$MOUNTED")" InUseReason)
grep -q "mounted" <<<"$reason" || fail "InUseReason of the mounted loop: $reason"
ok "mounting $MOUNTED: PropertiesChanged, InUse with reason $reason"
ezctl disks | grep -Eq "^$(name_of "$MOUNTED") .* in use: .*mounted" ||
    fail "ezioctl disks does not show $MOUNTED in use: $(ezctl disks)"
before=$(sha "$MOUNTED")
expect_error $E.TargetBusy ezc "$A" deploy "$TORRENT" "$MOUNTED"
expect_error $E.TargetBusy ezc "$A" deploy "$TORRENT" "$MOUNTED" force:b=true
expect_eq "mounted $MOUNTED untouched (sha256)" "$(sha "$MOUNTED")" "$before"

# A read-only loop.
loop_create readonly 32 ro
RO=$LOOP_DEV
prop_wait "$(path_of "$RO")" ReadOnly true 10
expect_eq "read-only loop Eligible" "$(ezc "$A" get "$(path_of "$RO")" Eligible)" false
before=$(sha "$RO")
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" "$RO"
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" "$RO" force:b=true
expect_eq "read-only $RO untouched (sha256)" "$(sha "$RO")" "$before"

# A loop smaller than the image's last extent end (8 MiB).
head -c $((4 * MIB)) /dev/urandom >"$EZIO_TMP/small.img"
loop_create small 4
SMALL=$LOOP_DEV
prop_wait "$(path_of "$SMALL")" Size $((4 * MIB)) 10
before=$(sha "$SMALL")
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" "$SMALL"
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" "$SMALL" force:b=true
expect_eq "too small $SMALL untouched (sha256)" "$(sha "$SMALL")" "$before"
jobs=$(ezc "$A" list)
expect_eq "no job was created by the refusals" "$jobs" "[]"

# --- a disk that goes away fails its own job, and no other ------------------------------------
# No peers: both jobs wait for data, writing nothing, until something happens.
TORRENT2=$EZIO_TMP/image2.torrent
make_image_torrent "$IMAGE" "$TORRENT2" "0:$((2 * MIB)),$((6 * MIB)):$MIB" >/dev/null ||
    fail "cannot make the second torrent"
loop_create pulled 16
PULLED=$LOOP_DEV
loop_create kept 16
KEPT=$LOOP_DEV
prop_wait "$(path_of "$PULLED")" Eligible true 10
prop_wait "$(path_of "$KEPT")" Eligible true 10
JOB_PULLED=$(ezc "$A" deploy "$TORRENT" "$PULLED") || fail "Deploy onto $PULLED: $JOB_PULLED"
JOB_KEPT=$(ezc "$A" deploy "$TORRENT2" "$KEPT") || fail "Deploy onto $KEPT: $JOB_KEPT"
ezc "$A" wait "$JOB_PULLED" downloading 20 >/dev/null || fail "job on $PULLED does not start"
ezc "$A" wait "$JOB_KEPT" downloading 20 >/dev/null || fail "job on $KEPT does not start"
# The job holds the loop open, so `losetup -d` would only be deferred until
# it lets go (LO_FLAGS_AUTOCLEAR); pulling the medium is what a disk that
# goes away looks like: the device shrinks to nothing and leaves the list.
truncate -s 0 "$EZIO_TMP/pulled.img"
losetup -c "$PULLED"
wait_line "^removed $(path_of "$PULLED")\$" 10
ok "pulled the medium of $PULLED: InterfacesRemoved"
ezc "$A" wait "$JOB_PULLED" failed 10 >/dev/null || fail "job on the pulled disk did not fail"
expect_eq "pulled job ErrorName" "$(ezc "$A" get "$JOB_PULLED" ErrorName)" "\"$E.IoError\""
ezc "$A" get "$JOB_PULLED" LastError | grep "went away" >/dev/null ||
    fail "LastError: $(ezc "$A" get "$JOB_PULLED" LastError)"
sleep 1
expect_eq "the other job keeps running" "$(ezc "$A" get "$JOB_KEPT" State)" '"downloading"'
ezc "$A" call "$JOB_KEPT" Cancel >/dev/null
ezc "$A" wait "$JOB_KEPT" cancelled 10 >/dev/null || fail "cannot cancel $JOB_KEPT"
eziod_alive a || fail "eziod died"
echo PASS
