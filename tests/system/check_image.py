#!/usr/bin/python3
"""Compare a deployed target with its source, extent by extent.

usage: check_image.py TORRENT SOURCE TARGET [FILL_HEX]

Extents come from the torrent itself (file name = hex partition offset,
length = file length; pad files skipped; a single-file torrent is an image
at 0), read with python3-libtorrent, independent of ezio's own parser.
Exit 0 when every extent matches and, with FILL_HEX, every byte outside the
extents on TARGET is FILL; 1 otherwise, naming the first difference.
"""
import sys

import libtorrent as lt

CHUNK = 1 << 20


def extents(path):
    ti = lt.torrent_info(path)
    fs = ti.files()
    out = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        if fs.num_files() == 1 and fs.file_path(i) == ti.name():
            off = 0
        else:
            off = int(fs.file_name(i), 16)
        out.append((off, fs.file_size(i)))
    return sorted(out)


def main():
    torrent, source, target = sys.argv[1:4]
    fill = bytes([int(sys.argv[4], 16)]) if len(sys.argv) > 4 else None
    ext = extents(torrent)
    total = 0
    with open(source, "rb") as s, open(target, "rb") as t:
        for off, length in ext:
            pos = off
            while pos < off + length:
                n = min(CHUNK, off + length - pos)
                s.seek(pos)
                t.seek(pos)
                a, b = s.read(n), t.read(n)
                if a != b:
                    bad = next(i for i in range(min(len(a), len(b))) if a[i] != b[i]) if len(a) == len(b) else 0
                    print(f"extent at {off:#x}: target differs from source at byte {pos + bad:#x}")
                    return 1
                pos += n
                total += n
        if fill is not None:
            t.seek(0, 2)
            size = t.tell()
            pos = 0
            for off, length in ext + [(size, 0)]:
                while pos < off:
                    n = min(CHUNK, off - pos)
                    t.seek(pos)
                    data = t.read(n)
                    if data != fill * len(data):
                        bad = next(i for i in range(len(data)) if data[i:i + 1] != fill)
                        print(f"byte {pos + bad:#x} outside the extents was overwritten")
                        return 1
                    pos += n
                pos = max(pos, off + length)
    print(f"ok: {len(ext)} extents, {total} bytes identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
