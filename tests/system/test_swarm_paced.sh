#!/bin/bash
# Paced seeding (core/paced_seed.hpp): a seed whose upload is the limit,
# three eziod receivers that know each other. The seed shows each receiver
# a few pieces at a time, each piece to one receiver first, so it uploads
# the image about once (plain BitTorrent made it send pieces again to
# receivers that asked for the same ones at once) and the receivers pass
# the pieces on. Every receiver ends with the exact image. A BitTorrent
# client without the extension (python3-libtorrent) still gets the whole
# image from the same seed, and eziod with paced_seeding = no serves
# receivers the plain way. Receiver 1 writes with O_DIRECT and deploys with
# --verify, so its pieces are read back and checked while the others arrive
# (core/piece_verifier.hpp). Two receivers that cannot reach each other
# (one connection each) both complete: the seed shows a starved receiver
# pieces the other holds.
# Needs root (loop devices).
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "loop devices"
ezio_setup

MIB=$((1 << 20))
IMAGE=$EZIO_TMP/image.raw
head -c $((20 * MIB)) /dev/urandom >"$IMAGE"
TORRENT=$EZIO_TMP/image.torrent
EXTENTS="0:$((10 * MIB)),$((12 * MIB)):$((6 * MIB))"
make_image_torrent "$IMAGE" "$TORRENT" "$EXTENTS" >/dev/null || fail "cannot make the torrent"
PAYLOAD=$((16 * MIB))

on() { local b="BUS_$1"; shift; DBUS_SYSTEM_BUS_ADDRESS=${!b} "$EZIOCTL" "$@"; }
port_of() { on "$1" --json status | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ListenPort"])'; }
field() { "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

mkdir -p "$EZIO_TMP/r1"
printf '[daemon]\nlocal_discovery = no\ndirect_io = yes\n' >"$EZIO_TMP/r1/eziod.conf"
for name in s r1 r2 r3; do
    bus_start "$name"
    declare "BUS_$name=$BUS_ADDR"
    eziod_start "$name" "$BUS_ADDR" 0
    declare "PORT_$name=$(port_of "$name")"
done

# swarm NAME: the three receivers deploy from seeder NAME at once, each
# given the seed and the other two; checks every target.
swarm() {
    local seed=$1 i peers pids=() port="PORT_$1"
    for i in 1 2 3; do
        ezio_loop "T$i" 24M a5
    done
    for i in 1 2 3; do
        peers=(--peer "127.0.0.1:${!port}")
        for j in 1 2 3; do
            local p="PORT_r$j"
            [ "$j" = "$i" ] || peers+=(--peer "127.0.0.1:${!p}")
        done
        local t="T$i" verify=()
        [ "$i" = 1 ] && verify=(--verify)
        on "r$i" -q deploy --wait "${verify[@]}" "${peers[@]}" "$TORRENT" "${!t}" &
        pids+=($!)
    done
    for i in 1 2 3; do
        wait "${pids[i - 1]}" || fail "$seed: receiver $i did not complete"
    done
    for i in 1 2 3; do
        local t="T$i"
        ezio_check_image "$TORRENT" "$IMAGE" "${!t}" a5 >/dev/null ||
            fail "$seed: receiver $i does not hold the image"
    done
}

# uploaded NAME JOB: payload bytes job JOB of NAME has sent.
uploaded() { on "$1" --json status "$2" | field TotalUploaded; }

# --- a paced seed, capped at 2 MiB/s, and three ezio receivers ----------------
seed_job=$(on s --json seed --max-upload-rate 2M "$TORRENT" "$IMAGE" | field Id)
swarm s
sleep 1.5 # the seed's counters are refreshed about once a second
sent=$(uploaded s "$seed_job")
# About once (pieces shown again when stale); without pacing this swarm made
# the seed send 1.3 copies.
[ "$sent" -le $((PAYLOAD * 5 / 4)) ] ||
    fail "the paced seed sent $sent bytes for a $PAYLOAD-byte image to three receivers"
ok "paced seed: three receivers hold the image; the seed sent $sent bytes of $PAYLOAD"
early=$(sed -n 's/.*verified (\([0-9]*\) of [0-9]* pieces checked while the others arrived).*/\1/p' \
    "$EZIO_TMP/r1/eziod.log" | head -1)
[ -n "$early" ] || fail "receiver 1 did not report its verification"
[ "$early" -gt 0 ] || fail "receiver 1 checked no piece during the transfer"
ok "receiver 1 (O_DIRECT, --verify) checked $early pieces while the others arrived"
on s -q cancel "$seed_job"

# --- a client without the extension gets everything from the paced seed ------
seed_job=$(on s --json seed "$TORRENT" "$IMAGE" | field Id)
mkdir -p "$EZIO_TMP/foreign"
"$PY" - "$TORRENT" "$EZIO_TMP/foreign" "$PORT_s" <<'PY' || fail "python3-libtorrent did not get the image"
import sys, time
import libtorrent as lt
torrent, where, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                "enable_upnp": False, "enable_natpmp": False})
p = lt.add_torrent_params()
p.ti = lt.torrent_info(torrent)
p.save_path = where
h = s.add_torrent(p)
h.connect_peer(("127.0.0.1", port))
deadline = time.time() + 120
while time.time() < deadline:
    st = h.status()
    if st.is_seeding:
        sys.exit(0)
    time.sleep(0.2)
sys.exit("not complete after 120 s: %.1f%%" % (st.progress * 100))
PY
"$PY" - "$IMAGE" "$EZIO_TMP/foreign/sda1" "$EXTENTS" <<'PY' || fail "python3-libtorrent's copy differs"
import os, sys
image, where, extents = sys.argv[1:]
with open(image, "rb") as f:
    for ext in extents.split(","):
        off, length = (int(x) for x in ext.split(":"))
        f.seek(off)
        with open(os.path.join(where, "%032x" % off), "rb") as e:
            if e.read() != f.read(length):
                sys.exit("extent at %d differs" % off)
PY
ok "a client without the extension (python3-libtorrent) gets the image from the paced seed"
on s -q cancel "$seed_job"

# --- receivers that cannot reach each other still complete ------------------
# Each may hold one connection (the seed's), so neither gets anything from
# the other. The seed shows each half of the image first; a receiver that
# then goes 8 s without a new piece is shown what the other one holds.
seed_job=$(on s --json seed --max-upload-rate 4M "$TORRENT" "$IMAGE" | field Id)
pids=()
for i in 2 3; do
    ezio_loop "I$i" 24M a5
    t="I$i" b="BUS_r$i"
    timeout 120 env DBUS_SYSTEM_BUS_ADDRESS="${!b}" "$EZIOCTL" -q deploy --wait \
        --max-connections 1 --peer "127.0.0.1:$PORT_s" "$TORRENT" "${!t}" &
    pids+=($!)
done
for i in 2 3; do
    wait "${pids[i - 2]}" || fail "isolated receiver $i did not complete within 120 s"
    t="I$i"
    ezio_check_image "$TORRENT" "$IMAGE" "${!t}" a5 >/dev/null ||
        fail "isolated receiver $i does not hold the image"
done
sleep 1.5
sent=$(uploaded s "$seed_job")
# Isolated, each receiver got the whole image from the seed.
[ "$sent" -ge $((PAYLOAD * 2 * 9 / 10)) ] ||
    fail "the seed sent only $sent bytes to two isolated receivers of a $PAYLOAD-byte image"
ok "two receivers that do not reach each other both hold the image (the seed sent $sent bytes)"
on s -q cancel "$seed_job"

# --- paced_seeding = no: plain BitTorrent, the same images ----------------------
eziod_stop s || fail "eziod s did not stop cleanly"
printf '[daemon]\nlocal_discovery = no\npaced_seeding = no\n' >"$EZIO_TMP/s/eziod.conf"
eziod_start s "$BUS_s" 0
PORT_s=$(port_of s)
seed_job=$(on s --json seed --max-upload-rate 4M "$TORRENT" "$IMAGE" | field Id)
swarm s
ok "paced_seeding = no: three receivers hold the image"
