#!/bin/bash
# eziod's bus contract, checked by an independent client (python3-dbus) on a
# private bus that uses the shipped policy:
#   - introspection, Version, ListenPort, ObjectManager;
#   - each bad argument gets its documented error name and eziod keeps
#     serving: garbage torrent, unknown target, unknown option key, wrong
#     variant type, bad option value, unknown job path;
#   - a job's life on the bus: properties, Options echo, Pause/Resume,
#     Cancel, Cancel again removes it (InterfacesRemoved / ListJobs);
#   - authorization: a user outside group "ezio" may read but not call
#     (AccessDenied, nothing written, no job), a member may call, nobody but
#     root may own the name;
#   - SIGTERM stops eziod cleanly (exit 0).
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "adds test users and a group, runs dbus-daemon with the system policy"
ezio_setup

ROOT=/org/ezio/Ezio1
NOBODY=ezio-test-nobody
MEMBER=ezio-test-member

# --- users: created before the bus starts (the policy resolves groups then) --
if ! getent group ezio >/dev/null; then
    groupadd --system ezio
    ezio_on_exit "groupdel ezio"
fi
for u in $NOBODY $MEMBER; do
    if id "$u" >/dev/null 2>&1; then userdel "$u"; fi
done
useradd -M -N -g nogroup -s /usr/sbin/nologin $NOBODY
ezio_on_exit "userdel $NOBODY"
useradd -M -N -g nogroup -G ezio -s /usr/sbin/nologin $MEMBER
ezio_on_exit "userdel $MEMBER"

bus_start a
A=$BUS_ADDR
eziod_start a "$A" 0

alive() {
    eziod_alive a || fail "eziod died after: $1"
    ezc "$A" get $ROOT Version >/dev/null || fail "eziod stopped answering after: $1"
}

# --- a small image and its torrent -------------------------------------------
IMG="$EZIO_TMP/source.img"
head -c $((2 << 20)) /dev/urandom >"$IMG"
TORRENT="$EZIO_TMP/sda1.torrent"
HASH=$(make_image_torrent "$IMG" "$TORRENT" "0:262144,524288:786432,1572864:131072")
# A second image: one torrent can be in one job at a time.
TORRENT2="$EZIO_TMP/sda2.torrent"
make_image_torrent "$IMG" "$TORRENT2" "0:1048576" >/dev/null
OUTDIR="$EZIO_TMP/out"
mkdir -p "$OUTDIR"

# --- introspection and Manager properties --------------------------------------
xml=$(ezc "$A" introspect $ROOT)
for iface in org.ezio.Ezio1.Manager org.freedesktop.DBus.ObjectManager; do
    grep -q "interface name=\"$iface\"" <<<"$xml" || fail "$ROOT lacks $iface"
done
for member in Deploy Seed ListJobs Version ListenPort Jobs; do
    grep -q "name=\"$member\"" <<<"$xml" || fail "$ROOT lacks $member"
done
ok "introspection of $ROOT"

expect_eq Version "$(ezc "$A" get $ROOT Version)" "\"$("$EZIOD" --version | cut -d' ' -f2)\""
port=$(ezc "$A" get $ROOT ListenPort)
[ "$port" -gt 0 ] && [ "$port" -lt 65536 ] || fail "ListenPort is $port"
ok "ListenPort = $port (asked for any free port)"
expect_eq "ListJobs (empty)" "$(ezc "$A" list)" "[]"
expect_eq "Jobs (empty)" "$(ezc "$A" get $ROOT Jobs)" "[]"
# The managed objects that are jobs (disks are there too, see test_disks_bus.sh).
managed_jobs() {
    ezc "$A" managed | "$PY" -c '
import json, sys
objs = json.load(sys.stdin)
print(json.dumps({p: v for p, v in objs.items() if p.startswith("/org/ezio/Ezio1/job/")}))'
}
expect_eq "GetManagedObjects (no jobs)" "$(managed_jobs)" "{}"

# --- bad arguments: documented names, and eziod keeps serving -------------------
E=org.ezio.Ezio1.Error
F="file:b=true"

expect_error $E.InvalidTorrent ezc "$A" deploy-bytes "$(head -c 300 /dev/urandom | od -An -tx1 -v | tr -d ' \n')" "$OUTDIR/garbage.img" $F
alive "garbage torrent"
expect_error $E.InvalidTorrent ezc "$A" deploy-bytes "" "$OUTDIR/empty.img" $F
alive "empty torrent"
expect_error $E.InvalidTorrent ezc "$A" deploy-bytes "$(printf 'd8:announce3:abce' | od -An -tx1 -v | tr -d ' \n')" "$OUTDIR/noinfo.img" $F
alive "torrent without info"
[ ! -e "$OUTDIR/garbage.img" ] && [ ! -e "$OUTDIR/empty.img" ] || fail "a refused deploy created its target"
ok "refused deploys wrote nothing"

expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" /dev/ezio-no-such-device
alive "missing device"
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" ezio-no-such-disk9
alive "missing bare device name"
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" relative/path.img $F
alive "relative file target"
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" "$IMG"
alive "regular file without the file option"
expect_error $E.InvalidTarget ezc "$A" deploy "$TORRENT" ""
alive "empty target"
expect_error $E.InvalidTarget ezc "$A" seed "$TORRENT" "$EZIO_TMP/no-such-source.img"
alive "missing seed source"

expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F bogus:b=true
alive "unknown option key"
expect_error $E.InvalidArgs ezc "$A" seed "$TORRENT" "$IMG" sequential:b=true
alive "Deploy-only option given to Seed"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" file:s=yes
alive "file as string"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F verify:s=yes
alive "verify as string"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F max_upload_rate:s=100
alive "rate as string"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F max_connections:i=5
alive "connections as int32"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F peers:s=127.0.0.1:1
alive "peers as string"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F peers:as=no-port
alive "peer without port"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F seed_after:s=soon
alive "bad seed_after"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F seed_after:x=-5
alive "negative seed_after"
expect_error $E.InvalidArgs ezc "$A" deploy "$TORRENT" "$OUTDIR/x.img" $F max_upload_rate:t=99999999999
alive "rate out of range"
[ ! -e "$OUTDIR/x.img" ] || fail "a deploy refused for its options created its target"
expect_eq "ListJobs after refusals" "$(ezc "$A" list)" "[]"

# Malformed calls are refused by the bus library before eziod's code runs.
for sig in sss ays "" ayst; do
    expect_error org.freedesktop.DBus.Error.InvalidArgs ezc "$A" bad-call "$sig"
    alive "Deploy with signature '$sig'"
done
expect_error org.freedesktop.DBus.Error.PropertyReadOnly ezc "$A" set $ROOT Version 9
alive "Set of a read-only property"
head -c $((4 << 20)) /dev/urandom >"$EZIO_TMP/big-garbage.torrent"
expect_error $E.InvalidTorrent ezc "$A" deploy "$EZIO_TMP/big-garbage.torrent" "$OUTDIR/big.img" $F
alive "a 4 MiB garbage torrent"

GONE=$ROOT/job/4242
expect_error org.freedesktop.DBus.Error.UnknownObject ezc "$A" get $GONE State
alive "Get on an unknown job"
expect_error org.freedesktop.DBus.Error.UnknownObject ezc "$A" call $GONE Pause
alive "Pause on an unknown job"
expect_error org.freedesktop.DBus.Error.UnknownObject ezc "$A" call $GONE Cancel
alive "Cancel on an unknown job"

# --- a job on the bus ----------------------------------------------------------
OUT="$OUTDIR/job.img"
JOB=$(ezc "$A" deploy "$TORRENT" "$OUT" $F peers:as=127.0.0.1:9 max_connections:u=3 seed_after:s=forever) ||
    fail "Deploy failed: $JOB"
case "$JOB" in $ROOT/job/[0-9]*) ok "Deploy returned $JOB" ;; *) fail "Deploy returned '$JOB'" ;; esac
expect_eq ListJobs "$(ezc "$A" list)" "[\"$JOB\"]"
expect_eq Jobs "$(ezc "$A" get $ROOT Jobs)" "[\"$JOB\"]"
grep -q "\"$JOB\": {\"org.ezio.Ezio1.Job\"" <<<"$(ezc "$A" managed)" ||
    fail "GetManagedObjects lacks $JOB: $(ezc "$A" managed)"
ok "GetManagedObjects lists $JOB"
grep -q 'interface name="org.ezio.Ezio1.Job"' <<<"$(ezc "$A" introspect "$JOB")" || fail "introspection of $JOB"

expect_eq Operation "$(ezc "$A" get "$JOB" Operation)" '"deploy"'
expect_eq Target "$(ezc "$A" get "$JOB" Target)" "\"$OUT\""
expect_eq Name "$(ezc "$A" get "$JOB" Name)" '"sda1"'
expect_eq InfoHash "$(ezc "$A" get "$JOB" InfoHash)" "\"$HASH\""
expect_eq BytesTotal "$(ezc "$A" get "$JOB" BytesTotal)" $((262144 + 786432 + 131072))
expect_eq ErrorName "$(ezc "$A" get "$JOB" ErrorName)" '""'
expect_eq Options "$(ezc "$A" get "$JOB" Options)" \
    '{"file": true, "max_connections": 3, "peers": ["127.0.0.1:9"], "seed_after": "forever"}'
state=$(ezc "$A" get "$JOB" State)
case "$state" in
    '"queued"' | '"checking"' | '"downloading"') ok "State = $state" ;;
    *) fail "State of a job without peers: $state" ;;
esac
all=$(ezc "$A" getall "$JOB")
for p in Operation State Progress BytesDone BytesTotal DownloadRate UploadRate Peers \
    TotalDownloaded TotalUploaded Target Name InfoHash StartTime ExpectedEndTime LastError \
    ErrorName Options; do
    grep -q "\"$p\":" <<<"$all" || fail "GetAll lacks $p: $all"
done
ok "GetAll has every documented property"
start=$(ezc "$A" get "$JOB" StartTime)
now=$(($(date +%s) * 1000000))
[ "$start" -gt $((now - 600000000)) ] && [ "$start" -le $((now + 1000000)) ] ||
    fail "StartTime $start is not about now ($now)"
ok "StartTime is about now"

expect_error $E.InvalidArgs ezc "$A" call "$JOB" Cancel bogus:b=true
alive "unknown Cancel option"

ezc "$A" call "$JOB" Pause >/dev/null || fail "Pause"
expect_eq "State after Pause" "$(ezc "$A" wait "$JOB" paused 10)" paused
ezc "$A" call "$JOB" Pause >/dev/null || fail "Pause twice"
ezc "$A" call "$JOB" Resume >/dev/null || fail "Resume"
state=$(ezc "$A" wait "$JOB" queued,checking,downloading 10) || fail "State after Resume: $state"
ok "State after Resume = $state"

# --- authorization ---------------------------------------------------------------
expect_error org.freedesktop.DBus.Error.AccessDenied ezc_as $NOBODY "$A" deploy "$TORRENT" "$OUTDIR/nobody.img" $F
[ ! -e "$OUTDIR/nobody.img" ] || fail "a refused caller's deploy wrote its target"
expect_eq "ListJobs after a refused caller" "$(ezc "$A" list)" "[\"$JOB\"]"
expect_error org.freedesktop.DBus.Error.AccessDenied ezc_as $NOBODY "$A" seed "$TORRENT" "$IMG"
expect_error org.freedesktop.DBus.Error.AccessDenied ezc_as $NOBODY "$A" call "$JOB" Pause
expect_error org.freedesktop.DBus.Error.AccessDenied ezc_as $NOBODY "$A" call "$JOB" Cancel
expect_error org.freedesktop.DBus.Error.AccessDenied ezc_as $NOBODY "$A" list
expect_error org.freedesktop.DBus.Error.AccessDenied ezc_as $NOBODY "$A" own-name
expect_error org.freedesktop.DBus.Error.AccessDenied ezc_as $MEMBER "$A" own-name
state=$(ezc "$A" get "$JOB" State)
[ "$state" != '"cancelled"' ] && [ "$state" != '"paused"' ] || fail "a refused caller changed the job: $state"
expect_eq "Version read by $NOBODY" "$(ezc_as $NOBODY "$A" get $ROOT Version)" "$(ezc "$A" get $ROOT Version)"
expect_eq "State read by $NOBODY" "$(ezc_as $NOBODY "$A" get "$JOB" State)" "$state"
ezc_as $NOBODY "$A" getall "$JOB" >/dev/null || fail "GetAll as $NOBODY"
ezc_as $NOBODY "$A" managed | grep "$JOB" >/dev/null || fail "GetManagedObjects as $NOBODY"
ezc_as $NOBODY "$A" introspect "$JOB" | grep org.ezio.Ezio1.Job >/dev/null || fail "Introspect as $NOBODY"
ok "$NOBODY may read properties, the object tree and introspection"

expect_error $E.InvalidTorrent ezc_as $MEMBER "$A" deploy-bytes 00ff "$OUTDIR/member.img" $F
# A target another job writes is busy, whatever the image; the same image
# onto another target runs side by side.
expect_error $E.TargetBusy ezc_as $MEMBER "$A" deploy "$TORRENT2" "$OUTDIR/job.img" $F
MJOB=$(ezc_as $MEMBER "$A" deploy "$TORRENT" "$OUTDIR/member.img" $F) || fail "Deploy as $MEMBER: $MJOB"
ok "a member of group ezio may deploy ($MJOB), the image of $JOB beside it"
ezc_as $MEMBER "$A" call "$MJOB" Cancel >/dev/null || fail "Cancel as $MEMBER"
expect_eq "member's job after Cancel" "$(ezc "$A" wait "$MJOB" cancelled 10)" cancelled
ezc_as $MEMBER "$A" call "$MJOB" Cancel >/dev/null || fail "second Cancel as $MEMBER"

# --- Cancel, then Cancel again removes -----------------------------------------------
ezc "$A" call "$JOB" Cancel >/dev/null || fail "Cancel"
expect_eq "State after Cancel" "$(ezc "$A" wait "$JOB" cancelled 10)" cancelled
expect_eq "ErrorName after Cancel" "$(ezc "$A" get "$JOB" ErrorName)" "\"$E.Cancelled\""
expect_error $E.NotSupported ezc "$A" call "$JOB" Pause
expect_error $E.NotSupported ezc "$A" call "$JOB" Resume
ezc "$A" call "$JOB" Cancel >/dev/null || fail "Cancel of a finished job"
for ((i = 0; i < 50; i++)); do
    [ "$(ezc "$A" list)" = "[]" ] && break
    sleep 0.1
done
expect_eq "ListJobs after removal" "$(ezc "$A" list)" "[]"
expect_error org.freedesktop.DBus.Error.UnknownObject ezc "$A" get "$JOB" State
expect_eq "GetManagedObjects after removal" "$(managed_jobs)" "{}"

# --- clean stop ----------------------------------------------------------------------
rc=0
eziod_stop a || rc=$?
expect_eq "eziod exit status after SIGTERM" "$rc" 0
echo "PASS"
