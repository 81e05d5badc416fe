#!/bin/bash
# ezioctl end to end against real eziods: a seeder and a receiver, each on its
# own private bus (with the shipped policy, see lib_dbus.sh), BitTorrent over
# loopback, loop devices as partitions.
#   1. make-torrent --skip-zero from the source image (ezioctl's torrent is
#      what eziod deploys);
#   2. seed from a read-only loop device by its bare name ("loopN");
#   3. deploy --wait --verify into a loop device prefilled with a pattern:
#      exit 0, extents equal the source, bytes outside them untouched;
#   4. jobs --json / status --json / status --json JOB parsed with python3:
#      keys are the D-Bus property names, values what was asked;
#   5. deploy --wait --file into a regular file; watch of a finished job;
#   6. documented exit statuses from the real daemon: unknown job (3),
#      invalid torrent (2), read-only target (4); cancel and removal.
. "$(dirname "$0")/lib_dbus.sh"
ezio_require_root "attaches loop devices and runs eziod on private system buses"
ezio_setup
EZIOCTL="$EZIO_BUILD_DIR/cli/ezioctl"
[ -x "$EZIOCTL" ] || fail "ezioctl is not built: $EZIOCTL"

MIB=$((1 << 20))
# ezioctl on bus A (seeder) or B (receiver).
ea() { DBUS_SYSTEM_BUS_ADDRESS="$SA" "$EZIOCTL" "$@"; }
eb() { DBUS_SYSTEM_BUS_ADDRESS="$RA" "$EZIOCTL" "$@"; }
# pycheck EXPR < JSON: fails unless EXPR holds for j = the parsed JSON.
pycheck() { "$PY" -c "import json, sys; j = json.load(sys.stdin); assert ($1), j"; }
# expect_exit CODE CMD...: CMD exits CODE with one "Failed to" line on stderr.
expect_exit() {
    local code=$1 rc=0 err
    shift
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" = "$code" ] || fail "$*: exit $rc, expected $code: $err"
    [[ $err == "Failed to "* ]] && [ "$(wc -l <<<"$err")" = 1 ] || fail "$*: stderr: $err"
    ok "exit $code: $err"
}

# --- a 16 MiB source: data in three places, zeros elsewhere ------------------------
SRC_IMG="$EZIO_TMP/source.img"
truncate -s 16M "$SRC_IMG"
for e in 0:1 5:2 13:3; do
    head -c $((${e#*:} * MIB)) /dev/urandom |
        dd of="$SRC_IMG" bs=64K seek=$((${e%:*} * MIB)) oflag=seek_bytes conv=notrunc status=none
done
TORRENT="$EZIO_TMP/sda1.torrent"
"$EZIOCTL" --json make-torrent --skip-zero --name sda1 --piece-size 256K "$SRC_IMG" -o "$TORRENT" \
    >"$EZIO_TMP/make.json" || fail "make-torrent failed"
pycheck 'j["TotalBytes"] == 6 << 20 and j["Extents"] == 3' <"$EZIO_TMP/make.json" ||
    fail "make-torrent summary: $(cat "$EZIO_TMP/make.json")"
ok "make-torrent --skip-zero: 3 extents, 6 MiB"

loop_create source 16 ro
SRC_DEV=$LOOP_DEV
# The target holds a pattern: what is outside the extents must survive.
head -c $((16 * MIB)) /dev/zero | tr '\0' '\245' >"$EZIO_TMP/target.img"
loop_create target 16
DST_DEV=$LOOP_DEV

bus_start seeder
SA=$BUS_ADDR
bus_start receiver
RA=$BUS_ADDR
eziod_start seeder "$SA" 0
eziod_start receiver "$RA" 0

# --- manager status -------------------------------------------------------------------
ea --json status >"$EZIO_TMP/status.json" || fail "status --json failed"
pycheck "j['Version'] == '$("$EZIOD" --version | cut -d' ' -f2)' and 0 < j['ListenPort'] < 65536 and j['Jobs'] == []" \
    <"$EZIO_TMP/status.json" || fail "status --json: $(cat "$EZIO_TMP/status.json")"
SPORT=$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["ListenPort"])' <"$EZIO_TMP/status.json")
[ "$(ea --json jobs)" = "[]" ] || fail "jobs --json on a fresh eziod: $(ea --json jobs)"
ok "status --json: version and port $SPORT; no jobs"

# --- seed by bare device name --------------------------------------------------------------
out=$(ea seed "$TORRENT" "${SRC_DEV#/dev/}") || fail "seed failed: $out"
grep -q "^Started seed job 1 (/org/ezio/Ezio1/job/1)" <<<"$out" || fail "seed output: $out"
for _ in $(seq 200); do
    [ "$(ea --json status 1 | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["State"])')" = seeding ] && break
    sleep 0.1
done
ea --json jobs | pycheck "len(j) == 1 and j[0]['Id'] == 1 and j[0]['Operation'] == 'seed'
    and j[0]['State'] == 'seeding' and j[0]['Target'] == '$SRC_DEV' and j[0]['Name'] == 'sda1'" ||
    fail "seeder jobs --json: $(ea --json jobs)"
ok "seed ${SRC_DEV#/dev/} resolves to $SRC_DEV and seeds"

# --- deploy --wait --verify into the loop device ----------------------------------------------
rc=0
eb deploy --wait --verify --peer "127.0.0.1:$SPORT" "$TORRENT" "${DST_DEV#/dev/}" >"$EZIO_TMP/deploy.out" 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "deploy --wait: exit $rc: $(cat "$EZIO_TMP/deploy.out")"
grep -q "^Job 1 completed" "$EZIO_TMP/deploy.out" || fail "deploy --wait output: $(cat "$EZIO_TMP/deploy.out")"
"$PY" "$EZIO_SOURCE_DIR/tests/system/check_image.py" "$TORRENT" "$SRC_IMG" "$DST_DEV" a5 ||
    fail "$DST_DEV does not hold the image (or bytes outside the extents changed)"
ok "deploy --wait --verify: exit 0, extents identical, pattern outside them intact"

eb --json jobs >"$EZIO_TMP/jobs.json" || fail "jobs --json failed"
pycheck "len(j) == 1 and j[0]['Path'] == '/org/ezio/Ezio1/job/1' and j[0]['Id'] == 1
    and j[0]['Operation'] == 'deploy' and j[0]['State'] == 'completed' and j[0]['Progress'] == 1.0
    and j[0]['BytesDone'] == j[0]['BytesTotal'] == 6 << 20 and j[0]['Target'] == '$DST_DEV'
    and j[0]['Name'] == 'sda1' and len(j[0]['InfoHash']) == 40 and j[0]['StartTime'] > 0
    and j[0]['LastError'] == '' and j[0]['ErrorName'] == ''
    and j[0]['Options'] == {'verify': True, 'peers': ['127.0.0.1:$SPORT']}" <"$EZIO_TMP/jobs.json" ||
    fail "receiver jobs --json: $(cat "$EZIO_TMP/jobs.json")"
eb --json status 1 | pycheck "j == json.load(open('$EZIO_TMP/jobs.json'))[0]" ||
    fail "status --json 1 differs from jobs --json: $(eb --json status 1)"
hash=$(ea --json jobs | "$PY" -c 'import json, sys; print(json.load(sys.stdin)[0]["InfoHash"])')
pycheck "j[0]['InfoHash'] == '$hash'" <"$EZIO_TMP/jobs.json" || fail "seeder and receiver disagree on the info-hash"
eb status 1 | grep -E '^ +State: completed$' >/dev/null || fail "status 1: $(eb status 1)"
eb jobs | grep -E "^ *1 +deploy +completed +100.0% " >/dev/null || fail "jobs table: $(eb jobs)"
ok "jobs --json, status --json JOB: D-Bus property names, the options asked for"

rc=0
DBUS_SYSTEM_BUS_ADDRESS="$RA" timeout 10 "$EZIOCTL" watch 1 >/dev/null 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "watch of a completed job: exit $rc"
ok "watch of a completed job exits 0 at once"

# --- deploy into a regular file ----------------------------------------------------------------
rc=0
(cd "$EZIO_TMP" && eb -q deploy --wait --file --peer "127.0.0.1:$SPORT" "$TORRENT" out.img) || rc=$?
[ "$rc" = 0 ] || fail "deploy --wait --file: exit $rc"
"$PY" "$EZIO_SOURCE_DIR/tests/system/check_image.py" "$TORRENT" "$SRC_IMG" "$EZIO_TMP/out.img" ||
    fail "out.img does not hold the image"
eb --json status 2 | pycheck "j['Target'] == '$EZIO_TMP/out.img' and j['Options'].get('file') is True" ||
    fail "file job: $(eb --json status 2)"
ok "deploy --wait --file: relative path sent absolute, image identical"

# --- errors from the real daemon ------------------------------------------------------------------
expect_exit 3 eb pause 99
expect_exit 3 eb --json status 42
head -c 300 /dev/urandom >"$EZIO_TMP/garbage.torrent"
expect_exit 2 eb deploy --file "$EZIO_TMP/garbage.torrent" "$EZIO_TMP/garbage.img"
[ ! -e "$EZIO_TMP/garbage.img" ] || fail "a refused deploy created its target"
expect_exit 4 eb deploy "$TORRENT" "$SRC_DEV"
expect_exit 1 eb pause 1
eziod_alive receiver || fail "eziod died on bad input"

# --- cancel the seed, then forget it ----------------------------------------------------------------
ea cancel 1 || fail "cancel 1 failed"
for _ in $(seq 100); do
    [ "$(ea --json status 1 | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["State"])')" = cancelled ] && break
    sleep 0.1
done
ea --json status 1 | pycheck "j['State'] == 'cancelled' and j['ErrorName'].endswith('.Cancelled')" ||
    fail "cancelled seed: $(ea --json status 1)"
ea cancel /org/ezio/Ezio1/job/1 || fail "second cancel failed"
[ "$(ea --json jobs)" = "[]" ] || fail "cancelled job still listed: $(ea --json jobs)"
expect_exit 3 ea status 1
ok "cancel stops the seed job; cancel again removes it"
echo PASS
