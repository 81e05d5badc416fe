#!/bin/bash
# Interoperability with a foreign BitTorrent client, Debian's transmission-cli
# (libtransmission 3.00), in both directions, over 127.0.0.1 only. The
# torrent is ezioctl make-torrent's (ezio layout: files named by the hex
# offset of their extent), announcing to a private opentracker.
#   1. transmission-cli seeds the image: the extents laid out as the
#      torrent's files, which it must verify against ezio's piece hashes
#      (-v) before it says Seeding. An eziod receiver deploys from it
#      (ezioctl deploy --wait --peer) onto a loop device pre-filled with a
#      pattern: every extent equals the source, every byte outside the
#      extents still holds the pattern, and `ezioctl verify` agrees.
#   2. transmission-cli downloads the image from an eziod seeding a
#      read-only loop device with the defaults, paced seeding included (an
#      extension only ezio peers negotiate: any other client must see plain
#      BitTorrent). The eziod finds transmission only through the tracker
#      (no --peer), as transmission announced first. transmission must
#      finish (its done script runs) with exactly the torrent's files, each
#      byte-identical to its extent of the source, and the seed must have
#      uploaded at least the whole payload.
# transmission 3.00 never connects to peers in 127.0.0.0/8 that it learns
# from a tracker (libtransmission's isMartianAddr), so in both directions
# the eziod opens the connection; transmission accepts it. eziod speaks
# BitTorrent without encryption: transmission keeps its default (encryption
# preferred, plaintext accepted). DHT, LPD, PEX, uTP, port mapping and
# blocklists are off, and everything listens on 127.0.0.1.
# Needs root (loop devices), transmission-cli and opentracker.
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "loop devices"
for tool in transmission-cli opentracker; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh)"
done
ezio_setup

MIB=$((1 << 20))
on() { local b="BUS_$1"; shift; DBUS_SYSTEM_BUS_ADDRESS=${!b} "$EZIOCTL" "$@"; }
field() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for SECONDS WHAT COMMAND...: COMMAND every 0.2 s until it succeeds
# (its output is dropped, its complaints are not).
wait_for() {
    local seconds=$1 what=$2 i
    shift 2
    for ((i = 0; i < seconds * 5; i++)); do
        "$@" >/dev/null && return 0
        sleep 0.2
    done
    fail "timed out after ${seconds}s waiting for: $what"
}

# --- the source: 24 MiB, random data in four extents, zeros elsewhere ---------
IMAGE=$EZIO_TMP/source.img
truncate -s 24M "$IMAGE"
for e in 0:$((3 * MIB / 2)) $((5 * MIB)):$((3 * MIB)) $((12 * MIB)):$((4 * MIB + 100000)) \
    $((23 * MIB)):$MIB; do
    head -c "${e##*:}" /dev/urandom |
        dd of="$IMAGE" bs=1M seek="${e%%:*}" oflag=seek_bytes iflag=fullblock conv=notrunc status=none
done

# --- a private tracker on 127.0.0.1 (Debian builds it with a whitelist) --------
OT_PORT=$(free_port)
TORRENT=$EZIO_TMP/sda1.torrent
"$EZIOCTL" -q make-torrent "$IMAGE" --name sda1 --skip-zero --piece-size 262144 \
    --tracker "http://127.0.0.1:$OT_PORT/announce" -o "$TORRENT" >/dev/null ||
    fail "ezioctl make-torrent failed"

# files.py TORRENT SOURCE DIR materialize|compare: the torrent's files under
# DIR (DIR/sda1/<hex offset>) written from, or compared with, SOURCE's extents.
cat >"$EZIO_TMP/files.py" <<'PY'
import os, sys
import libtorrent as lt
torrent, source, where, mode = sys.argv[1:]
ti = lt.torrent_info(torrent)
fs = ti.files()
if mode == "info":
    total = sum(fs.file_size(i) for i in range(fs.num_files()))
    print(ti.info_hashes().v1, fs.num_files(), total)
    sys.exit(0)
expected = set()
with open(source, "rb") as src:
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            sys.exit("unexpected pad file " + fs.file_path(i))
        path = os.path.join(where, fs.file_path(i))
        expected.add(os.path.normpath(path))
        src.seek(int(fs.file_name(i), 16))
        data = src.read(fs.file_size(i))
        if mode == "materialize":
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
            continue
        if not os.path.isfile(path):
            sys.exit("missing " + fs.file_path(i))
        with open(path, "rb") as f:
            got = f.read()
        if got != data:
            sys.exit("%s: %d bytes, differs from the source's extent (%d bytes)"
                     % (fs.file_path(i), len(got), len(data)))
if mode == "compare":
    found = set(os.path.normpath(os.path.join(d, n)) for d, _, ns in os.walk(where) for n in ns)
    if found != expected:
        sys.exit("files other than the torrent's: %s" % sorted(found - expected))
    print("%d files identical to the source's extents" % len(expected))
PY
info=$("$PY" "$EZIO_TMP/files.py" "$TORRENT" "$IMAGE" - info) || fail "cannot read the torrent: $info"
read -r HASH NFILES PAYLOAD <<<"$info"
[ "$NFILES" -ge 3 ] || fail "the torrent has $NFILES extents, expected several"
ok "torrent $HASH: $NFILES extents, $PAYLOAD bytes, announce to 127.0.0.1:$OT_PORT"

mkdir -p "$EZIO_TMP/tracker"
echo "$HASH" >"$EZIO_TMP/tracker/whitelist"
# It chroots to -d and drops to nobody; no -P: no UDP socket.
opentracker -i 127.0.0.1 -p "$OT_PORT" -d "$EZIO_TMP/tracker" -w whitelist \
    >"$EZIO_TMP/tracker/opentracker.log" 2>&1 &
OT_PID=$!
ezio_on_exit "kill $OT_PID; wait $OT_PID"

# scrape FIELD: complete|incomplete count of the torrent at the tracker;
# fails quietly while the tracker does not answer.
scrape() {
    "$PY" - "$OT_PORT" "$HASH" "$1" <<'PY'
import sys, urllib.parse, urllib.request
import libtorrent as lt
port, ih, key = sys.argv[1:]
q = urllib.parse.quote_from_bytes(bytes.fromhex(ih))
try:
    with urllib.request.urlopen("http://127.0.0.1:%s/scrape?info_hash=%s" % (port, q), timeout=5) as r:
        d = lt.bdecode(r.read())
except OSError:
    sys.exit(1)
print(d[b"files"].get(bytes.fromhex(ih), {}).get(key.encode(), 0))
PY
}
wait_for 10 "opentracker on 127.0.0.1:$OT_PORT" scrape complete
kill -0 "$OT_PID" 2>/dev/null || fail "opentracker exited: $(cat "$EZIO_TMP/tracker/opentracker.log")"

# transmission NAME ARGS...: transmission-cli with its own configuration in
# $EZIO_TMP/NAME (data in NAME/data, output in NAME/out); sets TR_PID, TR_PORT.
transmission() {
    local dir=$EZIO_TMP/$1
    shift
    mkdir -p "$dir/config" "$dir/data"
    cat >"$dir/config/settings.json" <<'EOF'
{
    "bind-address-ipv4": "127.0.0.1",
    "bind-address-ipv6": "::1",
    "blocklist-enabled": false,
    "dht-enabled": false,
    "encryption": 1,
    "lpd-enabled": false,
    "pex-enabled": false,
    "port-forwarding-enabled": false,
    "rename-partial-files": false,
    "rpc-enabled": false,
    "utp-enabled": false
}
EOF
    TR_PORT=$(free_port)
    stdbuf -o0 transmission-cli -g "$dir/config" -w "$dir/data" -p "$TR_PORT" -M -B -D -U "$@" "$TORRENT" \
        >"$dir/out" 2>&1 &
    TR_PID=$!
    ezio_on_exit "kill $TR_PID; wait $TR_PID"
}
# tr_alive NAME: the test fails if transmission NAME has exited.
tr_alive() {
    kill -0 "$TR_PID" 2>/dev/null ||
        fail "transmission-cli $1 exited: $(tr '\r' '\n' <"$EZIO_TMP/$1/out" | tail -n 20)"
}
# says NAME TEXT: transmission NAME is alive and its output shows TEXT.
says() {
    tr_alive "$1"
    grep -F -- "$2" "$EZIO_TMP/$1/out" >/dev/null
}
stop_transmission() {
    kill "$TR_PID"
    wait "$TR_PID" 2>/dev/null || true
}

bus_start r
BUS_r=$BUS_ADDR
eziod_start r "$BUS_r" 0
bus_start s
BUS_s=$BUS_ADDR
eziod_start s "$BUS_s" 0

# --- 1. transmission seeds, eziod deploys ---------------------------------------------
"$PY" "$EZIO_TMP/files.py" "$TORRENT" "$IMAGE" "$EZIO_TMP/t1/data" materialize ||
    fail "cannot lay out the extents as files"
transmission t1 -v
wait_for 30 "transmission-cli verifying the extents and seeding" says t1 Seeding
ok "transmission-cli verified the extents against ezio's torrent and seeds on port $TR_PORT"
ezio_loop TARGET 24M a5
timeout 60 env DBUS_SYSTEM_BUS_ADDRESS="$BUS_r" \
    "$EZIOCTL" -q deploy --wait --peer "127.0.0.1:$TR_PORT" "$TORRENT" "$TARGET" ||
    fail "the deploy from transmission-cli did not complete (exit $?)"
out=$(ezio_check_image "$TORRENT" "$IMAGE" "$TARGET" a5) || fail "$TARGET: $out"
ok "deployed from transmission-cli: $out, nothing else written"
out=$("$EZIOCTL" verify "$TORRENT" "$TARGET" 2>&1) || fail "ezioctl verify $TARGET: $out"
ok "ezioctl verify: $out"
stop_transmission
# The receiver must not serve direction 2: only the seed below holds the image.
eziod_stop r || fail "eziod r did not stop cleanly"

# --- 2. eziod seeds (paced seeding, the default), transmission downloads -------------
loop_create source 24 ro
SOURCE=$LOOP_DEV
printf '#!/bin/sh\ntouch "%s"\n' "$EZIO_TMP/t2/finished" >"$EZIO_TMP/t2-done.sh"
chmod 755 "$EZIO_TMP/t2-done.sh"
transmission t2 -f "$EZIO_TMP/t2-done.sh"
# Announced (the tracker counts it among those still downloading), so the
# seed learns of it from the tracker when it announces.
announced() {
    local n
    tr_alive t2
    n=$(scrape incomplete) && [ "$n" -ge 1 ]
}
wait_for 30 "transmission-cli's announce" announced
seed_job=$(on s --json seed "$TORRENT" "$SOURCE" | field Id) || fail "ezioctl seed failed"
finished() { tr_alive t2 && [ -e "$EZIO_TMP/t2/finished" ]; }
wait_for 60 "transmission-cli downloading the image from eziod" finished
wait_for 10 "transmission-cli seeding after its download" says t2 Seeding
stop_transmission
out=$("$PY" "$EZIO_TMP/files.py" "$TORRENT" "$IMAGE" "$EZIO_TMP/t2/data" compare 2>&1) ||
    fail "transmission-cli's download: $out"
ok "transmission-cli downloaded from a paced eziod seed: $out"
sleep 1.5 # the seed's counters are refreshed about once a second
sent=$(on s --json status "$seed_job" | field TotalUploaded)
[ "$sent" -ge "$PAYLOAD" ] || fail "the seed uploaded $sent bytes of a $PAYLOAD-byte image"
ok "the eziod seed uploaded $sent bytes for $PAYLOAD"
on s -q cancel "$seed_job"
eziod_stop s || fail "eziod s did not stop cleanly"
echo PASS
