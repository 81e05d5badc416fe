#!/bin/bash
# The main job of ezio, end to end, on this machine (Debian 12, as root):
#
#   1. install dependencies and build;
#   2. make a real ext4 filesystem with data on a loop device and capture it
#      with partclone (torrent.info: extents + SHA-1 of every 16 MiB piece);
#   3. make its torrent with `ezioctl make-torrent` (no rehash);
#   4. start a private system bus per machine and two eziod: a seeder that
#      serves the source partition and a receiver;
#   5. `ezioctl deploy --wait` the image onto a second loop device, pre-filled
#      with a pattern;
#   6. check every extent byte for byte and that the pattern outside the
#      extents survived, then fsck and mount the deployed filesystem;
#   7. clean up everything (daemons, buses, loop devices, files).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "demo.sh needs root (loop devices, mounts)" >&2
    exit 1
fi
echo "== installing dependencies and building"
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2

export EZIO_SOURCE_DIR=$PWD EZIO_BUILD_DIR=$PWD/build
# The test fixtures: private buses that include the shipped policy, eziod
# instances, loop devices, all undone on exit.
. tests/system/lib_dbus.sh
ezio_setup

echo "== a 256 MiB ext4 filesystem with 96 MiB of data, captured with partclone"
ezio_loop SOURCE 256M
ezio_ext4_with_data "$SOURCE" 96
ezio_partclone "$SOURCE" "$EZIO_TMP/capture"
"$EZIOCTL" make-torrent "$EZIO_TMP/capture/torrent.info" --name sda1 -o "$EZIO_TMP/sda1.torrent"

echo "== two eziod on private buses: a seeder and a receiver"
bus_start seeder
SEEDER_BUS=$BUS_ADDR
bus_start receiver
RECEIVER_BUS=$BUS_ADDR
eziod_start seeder "$SEEDER_BUS" 0
eziod_start receiver "$RECEIVER_BUS" 0
SEEDER_PORT=$(DBUS_SYSTEM_BUS_ADDRESS=$SEEDER_BUS "$EZIOCTL" --json status | "$PY3" -c 'import json,sys; print(json.load(sys.stdin)["ListenPort"])')

DBUS_SYSTEM_BUS_ADDRESS=$SEEDER_BUS "$EZIOCTL" seed "$EZIO_TMP/sda1.torrent" "$SOURCE"

echo "== deploying onto a target filled with 0xA5"
ezio_loop TARGET 256M a5
start=$(date +%s.%N)
DBUS_SYSTEM_BUS_ADDRESS=$RECEIVER_BUS "$EZIOCTL" deploy --wait --verify \
    --peer "127.0.0.1:$SEEDER_PORT" "$EZIO_TMP/sda1.torrent" "$TARGET"
end=$(date +%s.%N)

echo "== checking the target"
ezio_check_image "$EZIO_TMP/sda1.torrent" "$SOURCE" "$TARGET" a5
fsck.ext4 -n -f "$TARGET" >/dev/null
mnt=$(mktemp -d "$EZIO_TMP/mnt.XXXXXX")
mount -o ro "$TARGET" "$mnt"
ezio_on_exit "umount '$mnt'"
[ -s "$mnt/random.bin" ] && [ "$(wc -l <"$mnt/dir/sub/numbers.txt")" -eq 100000 ]
umount "$mnt"
printf 'OK: deployed %s in %.2f s; every extent identical, nothing outside them touched, fsck clean.\n' \
    "$(basename "$TARGET")" "$(echo "$end - $start" | bc)"
