#!/bin/bash
# ezioctl make-torrent against references built without ezio:
#  * from a real partclone torrent.info (ext4 on a loop device): the same
#    info-hash as python3-libtorrent's create_torrent(v1_only) from the same
#    file, and transmission-show parses it and lists the extents;
#  * from the block device itself (whole or --skip-zero, v1 and --hybrid):
#    every piece hash is recomputed by reading the device, and the hybrid
#    torrent's v1 and v2 info-hashes equal libtorrent's set_piece_hashes
#    over the extents written out as files;
#  * from torrent.info rehashed with --from DEV: partclone's file list,
#    smaller pieces, every piece hash recomputed from the device;
#  * bad input fails with a message and a non-zero exit.
# Needs root (loop devices, mount); exits 77 otherwise.
source "$(dirname "$0")/lib.sh"
ezio_require_root

# python3 on PATH may be a private interpreter without the Debian bindings.
PY=/usr/bin/python3
"$PY" -c 'import libtorrent' 2>/dev/null || fail "python3-libtorrent is not installed (scripts/install-deps.sh)"
command -v transmission-show >/dev/null || fail "transmission-show is not installed (transmission-cli)"
[ -x "$EZIOCTL" ] || fail "$EZIOCTL not built"

ezio_tmpdir
T=$EZIO_TMP

log "ext4 with data on a loop device, partclone capture"
ezio_loop dev 96M
ezio_ext4_with_data "$dev" 40
ezio_partclone "$dev" "$T/sda1"
info=$T/sda1/torrent.info

# Sanity of the fixture itself: partclone's SHA-1s are over the device's
# extents in 16 MiB pieces.
"$PY" - "$info" "$dev" <<'PY' || fail "partclone's sha1 lines do not match the device"
import hashlib, sys
info, dev = sys.argv[1:3]
ext, sha = [], []
for line in open(info):
    k, _, v = line.strip().partition(': ')
    if k == 'offset': off = int(v, 16)
    elif k == 'length': ext.append((off, int(v, 16)))
    elif k == 'sha1': sha.append(v)
got, h, n = [], hashlib.sha1(), 0
with open(dev, 'rb') as d:
    for off, length in ext:
        d.seek(off)
        left = length
        while left:
            take = min(left, (16 << 20) - n)
            h.update(d.read(take))
            n += take; left -= take
            if n == 16 << 20:
                got.append(h.hexdigest()); h, n = hashlib.sha1(), 0
if n: got.append(h.hexdigest())
sys.exit(0 if got == sha else 1)
PY

log "torrent from torrent.info"
"$EZIOCTL" make-torrent "$info" -o "$T/info.torrent" --name sda1 \
    --tracker http://127.0.0.1:6969/announce --tracker udp://127.0.0.2:6969 --comment "ezio test" \
    >"$T/make.out" 2>&1 || fail "make-torrent from torrent.info failed: $(cat "$T/make.out")"

# Reference: python3-libtorrent alone, from the same torrent.info.
"$PY" - "$info" "$T/info.torrent" <<'PY' || fail "torrent from torrent.info differs from python3-libtorrent's"
import sys, libtorrent as lt
info, ours_path = sys.argv[1:3]
fs, hashes = lt.file_storage(), []
for line in open(info):
    k, _, v = line.strip().partition(': ')
    if k == 'offset': off = v
    elif k == 'length': fs.add_file('sda1/' + off, int(v, 16))
    elif k == 'sha1': hashes.append(bytes.fromhex(v))
ct = lt.create_torrent(fs, 16777216, flags=lt.create_torrent.v1_only)
for i, h in enumerate(hashes): ct.set_hash(i, h)
ref = lt.torrent_info(ct.generate())
ours = lt.torrent_info(ours_path)
def check(cond, what):
    if not cond:
        print('mismatch:', what); sys.exit(1)
check(str(ours.info_hashes().v1) == str(ref.info_hashes().v1),
      f'info-hash {ours.info_hashes().v1} != {ref.info_hashes().v1}')
check(not ours.info_hashes().has_v2(), 'torrent has v2 metadata')
check(ours.num_files() == fs.num_files(), 'file count (pad files?)')
check([t.url for t in ours.trackers()] == ['http://127.0.0.1:6969/announce', 'udp://127.0.0.2:6969'], 'trackers')
check([t.tier for t in ours.trackers()] == [0, 1], 'tracker tiers')
check(ours.comment() == 'ezio test', 'comment')
print('ok:', ours.info_hashes().v1)
PY

transmission-show "$T/info.torrent" >"$T/show.out" 2>&1 || fail "transmission-show cannot parse the torrent: $(cat "$T/show.out")"
first=$(awk '/^offset:/ {print $2; exit}' "$info")
n_extents=$(grep -c '^offset:' "$info")
grep -q "sda1/$first" "$T/show.out" || fail "transmission-show does not list sda1/$first"
n_listed=$(grep -c '^  sda1/' "$T/show.out" || true)
[ "$n_listed" -eq "$n_extents" ] || fail "transmission-show lists $n_listed files, torrent.info has $n_extents extents"

log "same torrent from partclone's output directory, name taken from it"
"$EZIOCTL" make-torrent "$T/sda1" -o "$T/dir.torrent" >"$T/make.out" 2>&1 ||
    fail "make-torrent from a directory failed: $(cat "$T/make.out")"
cmp -s "$T/info.torrent" "$T/dir.torrent" && fail "trackers/comment were expected to differ"
"$PY" - "$T/info.torrent" "$T/dir.torrent" <<'PY' || fail "directory source gives another info-hash"
import sys, libtorrent as lt
a, b = (lt.torrent_info(p) for p in sys.argv[1:3])
sys.exit(0 if str(a.info_hashes().v1) == str(b.info_hashes().v1) and b.name() == 'sda1' else 1)
PY

log "torrent.info rehashed from the device (--from, 256 KiB pieces by default here)"
"$EZIOCTL" --json make-torrent "$info" --from "$dev" -o "$T/rehash.torrent" --name sda1 \
    >"$T/rehash.json" 2>&1 || fail "make-torrent --from failed: $(cat "$T/rehash.json")"
# Same extents as partclone's torrent, smaller pieces, each one the SHA-1 of
# its bytes on the device; and ezioctl verify agrees.
"$PY" - "$info" "$T/info.torrent" "$T/rehash.torrent" "$dev" <<'PY' || fail "rehashed torrent does not verify against the device"
import hashlib, sys, libtorrent as lt
info, plain_path, path, dev = sys.argv[1:5]
plain, ti = lt.torrent_info(plain_path), lt.torrent_info(path)
fs = ti.files()
if ti.piece_length() != 256 * 1024: print('piece length', ti.piece_length()); sys.exit(1)
if ti.info_hashes().has_v2(): print('unexpected v2'); sys.exit(1)
if [(fs.file_path(i), fs.file_size(i)) for i in range(fs.num_files())] != \
   [(plain.files().file_path(i), plain.files().file_size(i)) for i in range(plain.files().num_files())]:
    print('file list differs from the torrent.info torrent'); sys.exit(1)
data = bytearray()
with open(dev, 'rb') as d:
    for i in range(fs.num_files()):
        d.seek(int(fs.file_name(i), 16))
        data += d.read(fs.file_size(i))
plen = ti.piece_length()
if ti.num_pieces() != (len(data) + plen - 1) // plen: print('piece count'); sys.exit(1)
for p in range(ti.num_pieces()):
    want = ti.hash_for_piece(p)
    want = want if isinstance(want, bytes) else want.to_bytes()
    if hashlib.sha1(data[p * plen:(p + 1) * plen]).digest() != want:
        print('piece', p, 'does not verify'); sys.exit(1)
print(f'ok: {ti.num_pieces()} pieces of {plen} verified')
PY
grep -q '"PieceSize": 262144' "$T/rehash.json" || fail "--json does not report 256 KiB pieces: $(cat "$T/rehash.json")"
"$EZIOCTL" verify "$T/rehash.torrent" "$dev" >"$T/verify.out" 2>&1 ||
    fail "ezioctl verify of the rehashed torrent failed: $(cat "$T/verify.out")"
"$EZIOCTL" make-torrent "$info" --from "$dev" --piece-size 16M -o "$T/rehash16.torrent" --name sda1 \
    --tracker http://127.0.0.1:6969/announce --tracker udp://127.0.0.2:6969 --comment "ezio test" \
    >/dev/null 2>&1 || fail "make-torrent --from --piece-size 16M failed"
cmp -s "$T/info.torrent" "$T/rehash16.torrent" || fail "--from with 16 MiB pieces differs from the plain torrent.info torrent"

# Every piece hash recomputed from the device; zero chunks really are zero.
cat >"$T/verify_dev.py" <<'PY'
import hashlib, sys, libtorrent as lt
path, dev, name = sys.argv[1:4]
ti = lt.torrent_info(path)
fs = ti.files()
if ti.name() != name: print('name', ti.name()); sys.exit(1)
if ti.info_hashes().has_v2(): print('unexpected v2'); sys.exit(1)
ext = []
for i in range(fs.num_files()):
    if fs.file_flags(i) & lt.file_storage.flag_pad_file: print('pad file'); sys.exit(1)
    ext.append((int(fs.file_name(i), 16), fs.file_size(i)))
data = bytearray()
with open(dev, 'rb') as d:
    size = d.seek(0, 2)
    pos = 0
    for off, length in ext + [(size, 0)]:
        d.seek(pos)
        gap = d.read(off - pos)
        if gap.count(0) != len(gap): print(f'non-zero data left out before {off:#x}'); sys.exit(1)
        d.seek(off)
        data += d.read(length)
        pos = off + length
plen = ti.piece_length()
if ti.num_pieces() != (len(data) + plen - 1) // plen: print('piece count'); sys.exit(1)
for p in range(ti.num_pieces()):
    want = ti.hash_for_piece(p)  # bytes in 2.0.8's bindings
    want = want if isinstance(want, bytes) else want.to_bytes()
    if hashlib.sha1(data[p * plen:(p + 1) * plen]).digest() != want:
        print('piece', p, 'does not verify'); sys.exit(1)
print(f'ok: {len(ext)} extents, {ti.num_pieces()} pieces verified')
PY

log "torrent from the block device (--skip-zero, 1 MiB pieces)"
"$EZIOCTL" make-torrent "$dev" -o "$T/dev.torrent" --skip-zero --piece-size 1M >"$T/make.out" 2>&1 ||
    fail "make-torrent from $dev failed: $(cat "$T/make.out")"
"$PY" "$T/verify_dev.py" "$T/dev.torrent" "$dev" "$(basename "$dev")" ||
    fail "device torrent does not verify against the device"

# Without --skip-zero the pieces are hashed in place from a read-only mapping
# of the device rather than read into buffers.
log "torrent of the whole block device (256 KiB pieces)"
"$EZIOCTL" make-torrent "$dev" -o "$T/whole.torrent" --piece-size 256K >"$T/make.out" 2>&1 ||
    fail "make-torrent of the whole $dev failed: $(cat "$T/make.out")"
"$PY" "$T/verify_dev.py" "$T/whole.torrent" "$dev" "$(basename "$dev")" ||
    fail "whole-device torrent does not verify against the device"

log "hybrid torrent from the block device"
"$EZIOCTL" make-torrent "$dev" -o "$T/hybrid.torrent" --skip-zero --hybrid --piece-size 256K \
    --name sda1 >"$T/make.out" 2>&1 || fail "make-torrent --hybrid failed: $(cat "$T/make.out")"
"$PY" - "$T/hybrid.torrent" "$dev" "$T/extents" <<'PY' || fail "hybrid torrent differs from libtorrent's own"
import os, sys, libtorrent as lt
path, dev, root = sys.argv[1:4]
ours = lt.torrent_info(path)
fs = ours.files()
ref_fs = lt.file_storage()
os.makedirs(os.path.join(root, 'sda1'))
with open(dev, 'rb') as d:
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file: continue
        name, size = fs.file_name(i), fs.file_size(i)
        d.seek(int(name, 16))
        with open(os.path.join(root, 'sda1', name), 'wb') as f: f.write(d.read(size))
        ref_fs.add_file('sda1/' + name, size)
ct = lt.create_torrent(ref_fs, ours.piece_length())
lt.set_piece_hashes(ct, root)
ref = lt.torrent_info(ct.generate())
if not (ours.info_hashes().has_v1() and ours.info_hashes().has_v2()): print('not hybrid'); sys.exit(1)
if (str(ours.info_hashes().v1), str(ours.info_hashes().v2)) != (str(ref.info_hashes().v1), str(ref.info_hashes().v2)):
    print('ours', ours.info_hashes().v1, ours.info_hashes().v2)
    print('ref ', ref.info_hashes().v1, ref.info_hashes().v2)
    sys.exit(1)
print('ok:', ours.info_hashes().v1, ours.info_hashes().v2)
PY

log "bad input fails cleanly"
expect_failure() {  # expect_failure NEEDLE ARGS...
    local needle=$1 rc=0
    shift
    "$EZIOCTL" make-torrent "$@" >"$T/err.out" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || fail "make-torrent $* succeeded"
    grep -q -- "$needle" "$T/err.out" || fail "make-torrent $*: no \"$needle\" in: $(cat "$T/err.out")"
}
expect_failure "cannot" "$T/nonexistent" -o "$T/x.torrent"
# One sha1 line too few.
awk '/^sha1:/ && !dropped {dropped=1; next} {print}' "$info" >"$T/short.info"
expect_failure "piece hashes" "$T/short.info" -o "$T/x.torrent" --name sda1
printf 'block_size: 4096\nblocks_total: 10\noffset: 0\nlength: zz\n' >"$T/garbage.info"
expect_failure "line 4" "$T/garbage.info" -o "$T/x.torrent" --name sda1
expect_failure "piece size" "$dev" -o "$T/x.torrent" --piece-size 3M
expect_failure "16 KiB to 16 MiB" "$info" --from "$dev" -o "$T/x.torrent" --piece-size 32M
expect_failure "torrent.info only" "$dev" --from "$dev" -o "$T/x.torrent"
# A used block changed after the capture: the rehash refuses the device.
off=$(awk '/^offset:/ {o=$2} /^length:/ {print o; exit}' "$info")
cp "$info" "$T/copy.info"
printf 'X' | dd of="$dev" bs=1 seek=$((16#$off + 100)) conv=notrunc status=none
expect_failure "does not hold what partclone captured" "$T/copy.info" --from "$dev" -o "$T/x.torrent" --name sda1
[ ! -e "$T/x.torrent" ] || fail "a failed make-torrent left $T/x.torrent behind"

log "PASS"
