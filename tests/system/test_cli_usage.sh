#!/bin/bash
# ezioctl without eziod: help and the verb table, usage errors and their exit
# codes, one-line error messages, client-side checks of targets and torrents,
# no bus, bash completion coverage, and make-torrent end to end (the torrent
# is read back by transmission-show and python3-libtorrent).
# Needs no root, no bus, no loop devices.
set -euo pipefail

EZIO_SOURCE_DIR=${EZIO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
EZIO_BUILD_DIR=${EZIO_BUILD_DIR:-$EZIO_SOURCE_DIR/build}
EZIOCTL=$EZIO_BUILD_DIR/cli/ezioctl
COMPLETION=$EZIO_SOURCE_DIR/cli/ezioctl.bash-completion
PY=/usr/bin/python3

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok - $*"; }

[ -x "$EZIOCTL" ] || fail "ezioctl is not built: $EZIOCTL (set EZIO_BUILD_DIR)"
TMP=$(mktemp -d /tmp/ezio-cli-usage.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
# No bus anywhere: nothing in this test may need eziod.
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/no-such-bus"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$TMP/no-such-bus"

# expect_fail CODE PATTERN ezioctl-args...: exit status CODE, nothing on
# stdout, exactly one line on stderr, "Failed to ..." matching PATTERN.
expect_fail() {
    local code=$1 pattern=$2 rc=0
    shift 2
    "$EZIOCTL" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
    [ "$rc" = "$code" ] || fail "ezioctl $*: exit $rc, expected $code; stderr: $(cat "$TMP/err")"
    [ ! -s "$TMP/out" ] || fail "ezioctl $*: wrote to stdout on error: $(cat "$TMP/out")"
    [ "$(wc -l <"$TMP/err")" = 1 ] || fail "ezioctl $*: stderr is not one line: $(cat "$TMP/err")"
    grep -q '^Failed to ' "$TMP/err" || fail "ezioctl $*: stderr lacks 'Failed to': $(cat "$TMP/err")"
    grep -Eq -- "$pattern" "$TMP/err" || fail "ezioctl $*: stderr does not match '$pattern': $(cat "$TMP/err")"
    ok "ezioctl $* -> $code: $(cat "$TMP/err")"
}

# --- help and the verb table -------------------------------------------------------
VERBS="deploy seed jobs disks status watch pause resume cancel make-torrent verify autodeploy version help"
help=$("$EZIOCTL" --help) || fail "--help failed"
for v in $VERBS; do
    grep -Eq "^  $v( |$)" <<<"$help" || fail "--help does not list verb $v"
done
# ...and nothing else: the table is the single source.
listed=$(sed -n '/^Verbs:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF { print $1 }' | tr '\n' ' ')
[ "$listed" = "$VERBS " ] || fail "--help lists verbs '$listed', expected '$VERBS '"
ok "--help lists every verb: $VERBS"
for v in $VERBS; do
    out=$("$EZIOCTL" help "$v") || fail "help $v failed"
    grep -q "^Usage: ezioctl \[OPTIONS\] $v" <<<"$out" || fail "help $v: no usage line"
    out2=$("$EZIOCTL" "$v" --help) || fail "$v --help failed"
    [ "$out" = "$out2" ] || fail "'help $v' and '$v --help' differ"
done
ok "help VERB and VERB --help for every verb"
[ "$("$EZIOCTL" -h)" = "$help" ] || fail "-h differs from --help"
ver=$("$EZIOCTL" --version)
[[ $ver =~ ^ezioctl\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version printed '$ver'"
ok "--version: $ver"
"$EZIOCTL" help deploy | grep -- '--seed-after' >/dev/null || fail "help deploy lacks --seed-after"
"$EZIOCTL" help make-torrent | grep -- '--skip-zero' >/dev/null || fail "help make-torrent lacks --skip-zero"

# --- usage errors: exit 2 ------------------------------------------------------------
expect_fail 2 'no verb' 
expect_fail 2 "unknown verb 'frobnicate'" frobnicate
expect_fail 2 "unknown verb 'frobnicate'" --json frobnicate
expect_fail 2 'bogus' jobs --bogus
expect_fail 2 'bogus' --bogus jobs
expect_fail 2 'missing arguments' deploy only-one
expect_fail 2 'too many arguments' deploy a b c
expect_fail 2 'too many arguments' jobs extra
expect_fail 2 'missing arguments' pause
expect_fail 2 "invalid job 'x'" pause x
expect_fail 2 "invalid job" status 0
expect_fail 2 "invalid job" cancel /org/ezio/Ezio1/job/
expect_fail 2 "invalid job" watch 3x
expect_fail 2 "seed-after" deploy --seed-after sometimes a.torrent sda1
expect_fail 2 "invalid peer" deploy --peer nohost a.torrent sda1
expect_fail 2 "invalid peer" deploy --peer '::1:6881' a.torrent sda1
expect_fail 2 "max-upload-rate" deploy --max-upload-rate 5G a.torrent sda1
expect_fail 2 "max-connections" seed --max-connections lots a.torrent sda1
expect_fail 2 "sequential" seed --sequential a.torrent sda1
expect_fail 2 "unknown verb 'nope'" help nope
expect_fail 2 "-o OUT" make-torrent image.raw

# --- client-side checks before any bus traffic ---------------------------------------
printf 'd8:announce0:e' >a.torrent
expect_fail 4 "no such device" deploy a.torrent ezio-no-such-disk9
expect_fail 4 "regular file.*--file" deploy a.torrent ./a.torrent
expect_fail 4 "character device" deploy a.torrent /dev/null
expect_fail 4 "no-such-dir" deploy --file a.torrent no-such-dir/disk.img
expect_fail 4 "no such device or file" seed a.torrent missing-image.raw
expect_fail 2 "cannot open missing.torrent" deploy --file missing.torrent disk.img
expect_fail 2 "unsupported URL scheme 'ftp'" deploy --file ftp://127.0.0.1/a.torrent disk.img
expect_fail 2 "is a directory" deploy --file "$TMP" disk.img
: >empty.torrent
expect_fail 2 "empty" deploy --file empty.torrent disk.img
[ ! -e disk.img ] || fail "a refused deploy created its target"

# --- no bus: every bus verb fails cleanly with status 1 ---------------------------------
expect_fail 1 "Failed to list jobs: cannot connect to the system bus" jobs
expect_fail 1 "cannot connect to the session bus" --session jobs
expect_fail 1 "Failed to show status" status
expect_fail 1 "Failed to show status" status 3
expect_fail 1 "Failed to pause job" pause 3
expect_fail 1 "Failed to deploy: cannot connect" deploy --file a.torrent disk.img
expect_fail 1 "Failed to seed: cannot connect" seed a.torrent a.torrent
expect_fail 1 "Failed to watch" watch
out=$("$EZIOCTL" version 2>"$TMP/err") && fail "version without eziod succeeded"
[ "$out" = "ezioctl $("$EZIOCTL" --version | cut -d' ' -f2)" ] || fail "version printed '$out'"
ok "version without eziod prints the client version, then fails: $(cat "$TMP/err")"

# --- bash completion covers the verb table ----------------------------------------------
for v in $VERBS; do
    grep -q "verbs=\".*\b$v\b" "$COMPLETION" || fail "completion lacks verb $v"
done
for v in "" $VERBS; do
    if [ -z "$v" ]; then text=$help; else text=$("$EZIOCTL" help "$v"); fi
    for opt in $(grep -oE -- '(^|[ ,])--?[a-z][a-z-]*' <<<"$text" | tr -d ' ,' | sort -u); do
        grep -qE -- "(^|[ \"])$opt([ \"|)]|$)" "$COMPLETION" || fail "completion lacks option $opt (${v:-global})"
    done
done
bash -n "$COMPLETION" || fail "completion has a syntax error"
ok "completion lists every verb and option"

# --- make-torrent, read back by other BitTorrent code ------------------------------------
# 6 MiB image: random data, a zero MiB, more random data.
head -c $((3 << 20)) /dev/urandom >image.raw
head -c $((1 << 20)) /dev/zero >>image.raw
head -c $((2 << 20)) /dev/urandom >>image.raw
"$EZIOCTL" make-torrent image.raw -o image.torrent --name sda1 --tracker http://t.example/announce \
    --comment "test image" >make.out || fail "make-torrent failed"
grep -q '^Wrote image.torrent: sda1' make.out || fail "make-torrent summary: $(cat make.out)"
hash=$(sed -n 's/^Info hash: //p' make.out)
[[ $hash =~ ^[0-9a-f]{40}$ ]] || fail "no info-hash in: $(cat make.out)"
show=$(transmission-show image.torrent) || fail "transmission-show cannot read the torrent"
grep -q "Name: sda1" <<<"$show" || fail "transmission-show: wrong name: $show"
grep -qi "Hash: $hash" <<<"$show" || fail "transmission-show: info-hash differs from ezioctl's $hash: $show"
grep -q "http://t.example/announce" <<<"$show" || fail "transmission-show: tracker missing: $show"
grep -q "Comment: test image" <<<"$show" || fail "transmission-show: comment missing: $show"
ok "make-torrent: transmission-show reads it (info-hash $hash)"

"$PY" - image.torrent image.raw "$hash" <<'PY' || fail "python3-libtorrent disagrees"
import sys, libtorrent as lt
info = lt.torrent_info(sys.argv[1])
assert str(info.info_hashes().v1) == sys.argv[3], (str(info.info_hashes().v1), sys.argv[3])
fs = info.files()
image = open(sys.argv[2], "rb").read()
total = 0
for i in range(fs.num_files()):
    if fs.file_flags(i) & lt.file_storage.flag_pad_file:
        continue
    name = fs.file_path(i)
    head, offset = name.split("/")
    assert head == "sda1", name
    total += fs.file_size(i)
    off = int(offset, 16)
    assert off + fs.file_size(i) <= len(image), name
assert total == len(image), (total, len(image))
print("ok - libtorrent reads %d extents covering the image" % fs.num_files())
PY

expect_fail 2 "exists.*--force" make-torrent image.raw -o image.torrent
"$EZIOCTL" -q make-torrent image.raw -o image.torrent --force --name sda1 \
    --tracker http://t.example/announce --comment "test image" >quiet.out || fail "--force failed"
[ ! -s quiet.out ] || fail "-q printed: $(cat quiet.out)"
[ "$(transmission-show image.torrent | grep -ci "hash: $hash")" = 1 ] || fail "same input gave another torrent"
ok "make-torrent is reproducible and --force replaces OUT"
expect_fail 2 "SOURCE itself" make-torrent image.raw -o image.raw --force

"$EZIOCTL" make-torrent image.raw -o - --name sda1 --tracker http://t.example/announce \
    --comment "test image" >stdout.torrent 2>stdout.err || fail "-o - failed"
cmp -s stdout.torrent image.torrent || fail "-o - wrote other bytes than -o FILE"
grep -q "Info hash: $hash" stdout.err || fail "-o -: summary not on stderr"
ok "make-torrent -o - writes the torrent to stdout and the summary to stderr"

"$EZIOCTL" --json make-torrent image.raw -o skip.torrent --name sda1 --skip-zero --piece-size 1M >skip.json ||
    fail "--skip-zero failed"
"$PY" - skip.json <<'PY' || fail "make-torrent --json: $(cat skip.json)"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["Name"] == "sda1" and s["PieceSize"] == 1 << 20, s
assert s["TotalBytes"] == 5 << 20, s          # the zero MiB left out
assert s["SourceBytes"] == 6 << 20, s
assert s["Extents"] >= 2 and len(s["InfoHash"]) == 40, s
print("ok - make-torrent --skip-zero --json: %d extents, %d bytes" % (s["Extents"], s["TotalBytes"]))
PY
transmission-show skip.torrent >/dev/null || fail "transmission-show cannot read the --skip-zero torrent"

"$EZIOCTL" -q make-torrent image.raw -o hybrid.torrent --name sda1 --hybrid || fail "--hybrid failed"
"$PY" -c 'import sys, libtorrent as lt; h = lt.torrent_info(sys.argv[1]).info_hashes(); assert h.has_v1() and h.has_v2(), h' \
    hybrid.torrent || fail "--hybrid torrent is not v1+v2"
ok "make-torrent --hybrid makes a v1+v2 torrent"

expect_fail 2 "piece" make-torrent image.raw -o bad.torrent --piece-size 1000
expect_fail 2 "" make-torrent no-such-image.raw -o bad.torrent
[ ! -e bad.torrent ] || fail "a failed make-torrent left its output"

# --- verify: an image file against its torrent, without eziod --------------------------------
out=$("$EZIOCTL" verify image.torrent image.raw) || fail "verify of the image itself failed: $out"
grep -q "^Verified sda1 on $TMP/image.raw: 2 pieces, 6.0 MiB, all match" <<<"$out" || fail "verify said: $out"
"$EZIOCTL" verify skip.torrent image.raw >/dev/null || fail "verify with the --skip-zero torrent failed"
"$EZIOCTL" --json verify - image.raw <image.torrent | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
assert j["Match"] is True and j["BadPieces"] == [] and j["Pieces"] == 2, j
assert j["BytesChecked"] == j["BytesTotal"] == 6 << 20 and len(j["InfoHash"]) == 40, j' ||
    fail "verify --json of a good image"
ok "verify: the image matches its torrent (text, --json, torrent from stdin)"
cp image.raw bad.raw
printf 'X' | dd of=bad.raw bs=1 seek=$(((4 << 20) + 5)) conv=notrunc status=none
expect_fail 1 "1 of 2 pieces on $TMP/bad.raw do not match the torrent \(piece 1\)" verify image.torrent bad.raw
rc=0
"$EZIOCTL" --json verify image.torrent bad.raw >bad.json 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "verify --json of a bad image: exit $rc"
"$PY" -c 'import json, sys; j = json.load(open(sys.argv[1])); assert j["Match"] is False and j["BadPieces"] == [1], j' \
    bad.json || fail "verify --json of a bad image: $(cat bad.json)"
truncate -s $((5 << 20)) bad.raw
expect_fail 4 "holds 5242880 bytes but the image needs 6291456" verify image.torrent bad.raw
expect_fail 4 "no such device or file" verify image.torrent no-such.raw
expect_fail 2 "torrent" verify a.torrent image.raw
expect_fail 2 "cannot open" verify missing.torrent image.raw
rm -f bad.raw bad.json
ok "verify: a flipped byte, a short target, a missing target, a bad torrent"
echo "PASS"
