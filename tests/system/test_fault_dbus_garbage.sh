#!/bin/bash
# Bad input on the bus: malformed, oversized and wrongly-typed calls thrown at
# eziod with three independent clients (busctl with raw signatures,
# dbus-send, python3-dbus). After every single call eziod must still be
# running and answer correctly: Version is right, no job appeared, nothing
# was written. At the end an ordinary Deploy still works.
#   - wrong signatures for every method (missing, extra, swapped arguments;
#     a{ss} for a{sv}; nested variants), calls to unknown members,
#     interfaces and object paths, Set on read-only properties;
#   - a 64 MiB torrent (beyond the bus's message limit), a 30 MiB garbage
#     torrent, a 20 MiB well-formed torrent of 300,000 extents with one
#     overlap at the very end;
#   - 100,000 option entries, 100,000 peers, 1 MiB strings, a variant nested
#     30 deep.
. "$(dirname "$0")/lib_fault.sh"
ezio_require_root "runs eziod on a private system bus"
ezio_setup

bus_start a
A=$BUS_ADDR
eziod_start a "$A" 0
OUT="$EZIO_TMP/out"
mkdir -p "$OUT"
VERSION="\"$("$EZIOD" --version | cut -d' ' -f2)\""
M=org.ezio.Ezio1.Manager
J=org.ezio.Ezio1.Job
count=0

alive() {
    eziod_alive a || fail "eziod died after: $1"
    [ "$(prop "$A" $ROOT Version)" = "$VERSION" ] || fail "eziod answers wrongly after: $1"
    [ "$(ezc "$A" list)" = "[]" ] || fail "a job appeared after: $1: $(ezc "$A" list)"
    [ -z "$(ls -A "$OUT")" ] || fail "something was written after: $1: $(ls "$OUT")"
    count=$((count + 1))
}

# refused WHAT COMMAND...: the call fails (any error) and eziod is fine.
refused() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        fail "$what was accepted: $out"
    fi
    alive "$what"
    ok "$what: ${out:0:160}"
}

bc() { busctl --address="$A" -- call org.ezio.Ezio1 "$@"; }
ds() { dbus-send --bus="$A" --print-reply --dest=org.ezio.Ezio1 "$@"; }

# --- wrong signatures, via busctl -----------------------------------------------------
refused "Deploy()" bc $ROOT $M Deploy
refused "Deploy(s)" bc $ROOT $M Deploy s x
refused "Deploy(sss)" bc $ROOT $M Deploy sss a b c
refused "Deploy(ay)" bc $ROOT $M Deploy ay 3 1 2 3
refused "Deploy(ays)" bc $ROOT $M Deploy ays 3 1 2 3 "$OUT/x.img"
refused "Deploy(aysa{ss})" bc $ROOT $M Deploy 'aysa{ss}' 3 1 2 3 "$OUT/x.img" 1 file true
refused "Deploy(sa{sv}ay) swapped" bc $ROOT $M Deploy 'sa{sv}ay' "$OUT/x.img" 0 3 1 2 3
refused "Deploy(aysa{sv}s) extra argument" bc $ROOT $M Deploy 'aysa{sv}s' 3 1 2 3 "$OUT/x.img" 0 extra
refused "Deploy with file:s" bc $ROOT $M Deploy 'aysa{sv}' 3 1 2 3 "$OUT/x.img" 1 file s yes
refused "Deploy with file:v(v(b))" bc $ROOT $M Deploy 'aysa{sv}' 3 1 2 3 "$OUT/x.img" 1 file v b true
refused "Deploy with max_upload_rate:i=-1" bc $ROOT $M Deploy 'aysa{sv}' 3 1 2 3 "$OUT/x.img" 2 file b true max_upload_rate i -1
refused "Deploy with max_upload_rate:d" bc $ROOT $M Deploy 'aysa{sv}' 3 1 2 3 "$OUT/x.img" 2 file b true max_upload_rate d 1.5
refused "Deploy with seed_after:t=2^64-1" bc $ROOT $M Deploy 'aysa{sv}' 3 1 2 3 "$OUT/x.img" 2 file b true seed_after t 18446744073709551615
refused "Deploy with peers:as of garbage" bc $ROOT $M Deploy 'aysa{sv}' 3 1 2 3 "$OUT/x.img" 2 file b true peers as 2 ':' '[::1'
refused "Deploy with peers:a{ss}" bc $ROOT $M Deploy 'aysa{sv}' 3 1 2 3 "$OUT/x.img" 2 file b true peers 'a{ss}' 1 a b
refused "Seed(aysa{sv}) of nothing" bc $ROOT $M Seed 'aysa{sv}' 0 "" 0
refused "Seed(u)" bc $ROOT $M Seed u 7
refused "ListJobs(s)" bc $ROOT $M ListJobs s x
refused "Nope()" bc $ROOT $M Nope
refused "unknown interface" bc $ROOT org.ezio.Ezio1.Nope Deploy
refused "Job.Cancel on the manager" bc $ROOT $J Cancel 'a{sv}' 0
refused "Cancel on job 0" bc $ROOT/job/0 $J Cancel 'a{sv}' 0
refused "Cancel on job 2^32" bc $ROOT/job/4294967296 $J Cancel 'a{sv}' 0
refused "Pause on job/1/x" bc $ROOT/job/1/x $J Pause
refused "Pause on /" bc / $J Pause
refused "Get of an unknown property" bc $ROOT org.freedesktop.DBus.Properties Get ss $M Nope
refused "Get on an unknown interface" bc $ROOT org.freedesktop.DBus.Properties Get ss org.nope Version
refused "Get(s)" bc $ROOT org.freedesktop.DBus.Properties Get s $M
refused "GetAll(u)" bc $ROOT org.freedesktop.DBus.Properties GetAll u 1
refused "Set Version" bc $ROOT org.freedesktop.DBus.Properties Set ssv $M Version s 9.9.9
refused "Set Jobs with a wrong type" bc $ROOT org.freedesktop.DBus.Properties Set ssv $M Jobs u 1
refused "GetManagedObjects(s)" bc $ROOT org.freedesktop.DBus.ObjectManager GetManagedObjects s x
out=$(bc $ROOT org.freedesktop.DBus.Introspectable Introspect) || fail "Introspect failed: $out"
alive "Introspect"

# --- the same kind of thing through dbus-send ---------------------------------------------
refused "dbus-send Deploy(s)" ds $ROOT $M.Deploy string:x
refused "dbus-send Deploy(ay,s,a{ss})" ds $ROOT $M.Deploy array:byte:1,2,3 string:"$OUT/x.img" dict:string:string:file,true
refused "dbus-send Deploy(ay,s)" ds $ROOT $M.Deploy array:byte:1,2,3 string:"$OUT/x.img"
refused "dbus-send Deploy(ay,s,a{ss}) with verify" ds $ROOT $M.Deploy array:byte:1,2,3 string:"$OUT/x.img" dict:string:string:verify,yes
refused "dbus-send Cancel(i)" ds $ROOT/job/1 $J.Cancel int32:1

# --- oversized and deep, via python3-dbus ------------------------------------------------------
cat >"$EZIO_TMP/big.py" <<'PY'
"""Oversized calls: prints the D-Bus error name, exits 3 on error, 0 if accepted."""
import os, sys
import dbus

b = dbus.bus.BusConnection(os.environ["EZIO_TEST_BUS"])
m = b.get_object("org.ezio.Ezio1", "/org/ezio/Ezio1", introspect=False).get_dbus_method(
    "Deploy", "org.ezio.Ezio1.Manager")
out = sys.argv[2]
FILE = {"file": dbus.Boolean(True)}


def call(torrent, target=out, options=FILE):
    try:
        r = m(dbus.ByteArray(torrent), target, dbus.Dictionary(options, signature="sv"),
              signature="aysa{sv}", timeout=120)
    except dbus.exceptions.DBusException as e:
        print("%s: %s" % (e.get_dbus_name(), (e.get_dbus_message() or "")[:120]))
        sys.exit(3)
    print("accepted: %s" % r)


def bencode(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(bencode(i) for i in x) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(v) for k, v in sorted(x.items())) + b"e"


what = sys.argv[1]
if what == "64MiB":
    call(os.urandom(64 << 20))
elif what == "30MiB":
    call(os.urandom(30 << 20))
elif what == "300k-extents":
    n = 300000
    files = [{b"length": 1, b"path": [b"%032x" % (i * 4096)]} for i in range(n)]
    # The last extent starts where the one before does (written with one
    # digit less, so the names differ): an overlap, found after parsing all.
    files[-1][b"path"] = [b"%031x" % ((n - 2) * 4096)]
    info = {b"name": b"sda1", b"piece length": 16384, b"files": files,
            b"pieces": b"\0" * (20 * ((n + 16383) // 16384))}
    call(bencode({b"info": info}))
elif what == "100k-options":
    call(b"x", options={"k%d" % i: dbus.Boolean(True) for i in range(100000)})
elif what == "100k-peers":
    peers = dbus.Array(["127.0.0.%d:%d" % (i % 250 + 1, i % 60000 + 1) for i in range(100000)],
                       signature="s")
    call(b"garbage", options={"file": dbus.Boolean(True), "peers": peers})
elif what == "1MiB-target":
    call(b"x", target="/" + "a" * (1 << 20))
elif what == "1MiB-key":
    call(b"x", options={"k" * (1 << 20): dbus.Boolean(True)})
elif what == "deep-variant":
    # verify = v(v(v(...(b)))), 30 variants deep.
    nested = dbus.Boolean(True, variant_level=30)
    call(b"x", options={"file": dbus.Boolean(True), "verify": nested})
PY
big() { EZIO_TEST_BUS="$A" "$PY" "$EZIO_TMP/big.py" "$1" "$OUT/big.img"; }
for what in 64MiB 30MiB 300k-extents 100k-options 100k-peers 1MiB-target 1MiB-key deep-variant; do
    start=$(date +%s%N)
    refused "$what" big "$what"
    echo "    ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
done

# --- and it still works ------------------------------------------------------------------
IMG="$EZIO_TMP/ok.img"
head -c $((1 << 20)) /dev/urandom >"$IMG"
make_image_torrent "$IMG" "$EZIO_TMP/ok.torrent" "0:1048576" >/dev/null
JOB=$(ezc "$A" deploy "$EZIO_TMP/ok.torrent" "$OUT/ok.img" file:b=true) || fail "a good Deploy failed: $JOB"
expect_eq "Jobs after a good Deploy" "$(ezc "$A" list)" "[\"$JOB\"]"
ezc "$A" call "$JOB" Cancel >/dev/null && ezc "$A" call "$JOB" Cancel >/dev/null || fail "Cancel"
expect_eq "Jobs after Cancel" "$(ezc "$A" list)" "[]"
ok "$count bad calls, eziod answered correctly after each, and a good Deploy still works"
rc=0
eziod_stop a || rc=$?
expect_eq "exit status" "$rc" 0
echo PASS
