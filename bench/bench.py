"""Small measuring helpers for bench/run.sh (Debian's /usr/bin/python3).

usage: bench.py COMMAND ARGS...
  sha1 MIB                 SHA-1 speed of one core over MIB MiB in memory
                           (hashlib is OpenSSL's SHA-1, as libtorrent's);
                           prints MiB/s
  iperf JSON               received rate of an `iperf3 -J` run, in Gbit/s
  proc PID                 "VmHWM_KiB VmRSS_KiB CPU_TICKS" (utime + stime)
  ticks                    clock ticks per second
  concat TORRENT_INFO DEV OUT
                           writes the extents a partclone torrent.info lists,
                           read from DEV, one after another into OUT: the
                           image payload that udpcast and netcat send
  field JSON KEY           a top-level field of the last JSON object in a file
  median X...              median of numbers
  zero DEV                 overwrites a block device with zeros (O_DIRECT,
                           opened O_EXCL: waits up to 10 s for its last user
                           to let go)
  trace OUT EZIOCTL ADDR... every second until killed, appends to OUT one line
                           per eziod (given by its bus address, host 0, 1,
                           ...) and job: seconds since start, host, job id,
                           state, bytes done, uploaded bytes, peers
"""
import errno
import hashlib
import json
import mmap
import os
import statistics
import subprocess
import sys
import time


def sha1_speed(mib):
    block = os.urandom(16 << 20)
    h = hashlib.sha1()
    left = mib << 20
    start = time.perf_counter()
    while left > 0:
        n = min(left, len(block))
        h.update(memoryview(block)[:n])
        left -= n
    h.digest()
    return mib / (time.perf_counter() - start)


def zero(dev):
    deadline = time.monotonic() + 10
    while True:
        try:
            fd = os.open(dev, os.O_WRONLY | os.O_EXCL | os.O_DIRECT)
            break
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
        chunk = 4 << 20
        buf = mmap.mmap(-1, chunk)  # page-aligned, zero-filled
        done = 0
        while done < size:
            n = min(chunk, size - done)
            written = os.write(fd, memoryview(buf)[:n])
            if written <= 0:
                raise OSError(errno.EIO, "short write on %s at %d" % (dev, done))
            done += written
        os.fsync(fd)
    finally:
        os.close(fd)


def iperf_gbit(path):
    with open(path) as f:
        data = json.load(f)
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def proc(pid):
    hwm = rss = 0
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open("/proc/%s/stat" % pid) as f:
        # Fields after the command name (which may hold blanks) start at 3.
        rest = f.read().rsplit(")", 1)[1].split()
    ticks = int(rest[11]) + int(rest[12])  # utime, stime: fields 14, 15
    return hwm, rss, ticks


def cpu_seconds(pids):
    """CPU time (user + system) the processes have used, in seconds."""
    hz = os.sysconf("SC_CLK_TCK")
    return sum(proc(p)[2] for p in pids) / hz


def extents(info_path):
    out, offset = [], None
    with open(info_path) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "offset":
                offset = int(value.strip(), 16)
            elif key == "length" and offset is not None:
                out.append((offset, int(value.strip(), 16)))
                offset = None
    return out


def concat(info_path, dev, out):
    total = 0
    with open(dev, "rb") as src, open(out, "wb") as dst:
        for offset, length in extents(info_path):
            src.seek(offset)
            left = length
            while left:
                chunk = src.read(min(left, 8 << 20))
                if not chunk:
                    raise SystemExit("short read from %s at %d" % (dev, offset))
                dst.write(chunk)
                left -= len(chunk)
            total += length
    return total


def last_json(path):
    obj = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    pass
    if obj is None:
        with open(path) as f:
            obj = json.load(f)
    return obj


def trace(out, hosts, interval=0.25):
    """Every `interval` s until killed: each host's upload and download
    (Mbit/s, from the counters of its bridge-side veth ezb-vI, so the hosts
    are not disturbed) and the machine's idle CPU share, as TSV lines
    "t  host  up_mbit  down_mbit  idle"; t counts from $EZIO_TRACE_T0 (epoch
    seconds) if set, else from the start."""
    def counters():
        c = []
        for i in range(hosts):
            base = "/sys/class/net/ezb-v%d/statistics/" % i
            try:
                # The veth's rx is what the host sent, its tx what it got.
                c.append((int(open(base + "rx_bytes").read()),
                          int(open(base + "tx_bytes").read())))
            except OSError:
                c.append((0, 0))
        stat = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return c, stat[3] + stat[4], sum(stat)
    start = float(os.environ.get("EZIO_TRACE_T0", "0")) or time.time()
    last, last_t = counters(), time.time()
    with open(out, "a") as f:
        while True:
            time.sleep(interval)
            now = time.time()
            cur = counters()
            dt = now - last_t
            idle = (cur[1] - last[1]) / max(1, cur[2] - last[2])
            for host, ((up, down), (up0, down0)) in enumerate(zip(cur[0], last[0])):
                f.write("%.2f\t%d\t%.1f\t%.1f\t%.2f\n" % (
                    now - start, host, (up - up0) * 8 / dt / 1e6,
                    (down - down0) * 8 / dt / 1e6, idle))
            f.flush()
            last, last_t = cur, now


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "sha1":
        print("%.1f" % sha1_speed(int(args[0])))
    elif cmd == "iperf":
        print("%.3f" % iperf_gbit(args[0]))
    elif cmd == "proc":
        print("%d %d %d" % proc(args[0]))
    elif cmd == "cpu":
        print("%.2f" % cpu_seconds(args))
    elif cmd == "ticks":
        print(os.sysconf("SC_CLK_TCK"))
    elif cmd == "concat":
        print(concat(*args))
    elif cmd == "field":
        value = last_json(args[0]).get(args[1], "")
        print(value if not isinstance(value, (dict, list)) else json.dumps(value))
    elif cmd == "trace":
        trace(args[0], int(args[1]))
    elif cmd == "zero":
        zero(args[0])
    elif cmd == "median":
        print("%.6g" % statistics.median(float(x) for x in args))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
