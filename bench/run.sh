#!/bin/bash
# ezio's benchmark (issue 7). Not a test and not run by ctest: it measures
# this machine and prints a table, writes bench/results/latest.json and
# draws bench/results/swarm.svg.
#
#   bash bench/run.sh [--quick] [--only 1on1|swarm|maketorrent|rss]...
#
# Sections, all measured in the same run so the ratios compare like with like:
#   1on1         one seeder, one receiver eziod over loopback, a ~1 GiB
#                partclone image of a real ext4 filesystem on loop devices
#                backed by tmpfs (/dev/shm), deploy --wait with and without
#                --verify; references: loopback TCP (iperf3) and SHA-1 speed
#   rss          eziod peak RSS during 1on1, then idle CPU and RSS (runs 1on1)
#   swarm        one seeder and N receivers, each in its own network namespace
#                on a bridge, upload and download capped with tc; ezio against
#                udpcast multicast, sequential unicast (netcat) and the fluid
#                lower bound
#   maketorrent  ezioctl make-torrent against mktorrent on a 1 GiB image file
#
# Needs root (loop devices, namespaces, tc) and the packages of
# scripts/install-deps.sh. Uses eziod/ezioctl from $EZIO_BUILD_DIR, default
# build-bench/ (configured RelWithDebInfo without tests, and built, here).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=$(cd "$BENCH_DIR/.." && pwd)

usage() {
    cat <<EOF
usage: bash bench/run.sh [OPTIONS]
  --quick              smoke run: 256 MiB image for 1on1, 48 MiB swarm image,
                       N up to 4, one run each
  --only SECTION       1on1, swarm, maketorrent or rss (repeatable; default all)
  --runs K             deploys per variant in 1on1, make-torrent runs (default 3)
  --swarm-repeat K     ezio swarm runs per N, median reported (default 1)
  --max-n N            largest swarm (default 16; N = 1, 2, 4, ... up to it)
  --n N                swarm of N receivers only (repeatable; instead of the
                       powers of two up to --max-n)
  --rate RATE          tc cap of every host, up and down (default 100mbit)
  --peers seeder|all   swarm receivers get the seeder only (peer exchange
                       finds the rest; default) or every host as --peer
  --1on1-piece-size S  the 1on1 torrent, as --swarm-piece-size (default auto:
                       1 MiB pieces for its 1 GiB image)
  --swarm-piece-size S the swarm torrent: partclone's torrent.info rehashed
                       from the device (make-torrent --from) with this piece
                       size: auto (default: make-torrent's choice, about 1000
                       pieces), 1M, ..., or partclone (its own 16 MiB pieces,
                       no rehash)
  --no-compare         swarm: ezio only, no udpcast and unicast runs
  --no-verify          swarm: only the runs without --verify (every piece is
                       still SHA-1-checked as it arrives), not also those with
  --trace              swarm: log every host's upload and download rate and
                       the idle CPU share every 0.25 s of each ezio run to
                       OUT/trace-N-RUN.tsv (read from the bridge-side veth
                       counters: the hosts are not disturbed)
  --perf               swarm: record a system-wide profile (perf record -a -g)
                       of each ezio run to OUT/perf-N-RUN.data
  --disk               also run 1on1 with loop files on disk (/var/tmp)
  --build-dir DIR      eziod/ezioctl from DIR (also \$EZIO_BUILD_DIR)
  --no-build           do not (re)build the build directory
  --out DIR            results directory (default bench/results)
For experiments: EZIO_BENCH_CONF is added to every eziod.conf's [daemon]
section (e.g. 'paced_seeding = no\n'), EZIO_BENCH_DEPLOY_ARGS to every swarm
deploy command (e.g. '--max-connections 8').
EOF
}

SWARM_VERIFY=1
PERF=0 TRACE=0 COMPARE=1 QUICK=0 RUNS=3 SWARM_REPEAT=1 MAX_N=16 RATE=100mbit PEERS=seeder DISK=0 BUILD=1
SWARM_PIECE=auto
ONE_PIECE=auto
OUT_DIR=$BENCH_DIR/results
ONLY=()
NS=()
BUILD_DIR=${EZIO_BUILD_DIR:-$SOURCE_DIR/build-bench}
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --only) ONLY+=("${2:?--only needs a section}"); shift ;;
        --runs) RUNS=${2:?}; shift ;;
        --swarm-repeat) SWARM_REPEAT=${2:?}; shift ;;
        --max-n) MAX_N=${2:?}; shift ;;
        --n) NS+=("${2:?}"); shift ;;
        --rate) RATE=${2:?}; shift ;;
        --peers) PEERS=${2:?}; shift ;;
        --swarm-piece-size) SWARM_PIECE=${2:?}; shift ;;
        --1on1-piece-size) ONE_PIECE=${2:?}; shift ;;
        --disk) DISK=1 ;;
        --no-compare) COMPARE=0 ;;
        --no-verify) SWARM_VERIFY=0 ;;
        --trace) TRACE=1 ;;
        --perf) PERF=1 ;;
        --build-dir) BUILD_DIR=${2:?}; shift ;;
        --no-build) BUILD=0 ;;
        --out) OUT_DIR=${2:?}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for s in "${ONLY[@]}"; do
    case $s in 1on1 | swarm | maketorrent | rss) ;; *) echo "unknown section: $s" >&2; exit 2 ;; esac
done
case $PEERS in seeder | all) ;; *) echo "--peers: seeder or all" >&2; exit 2 ;; esac
want() {
    [ ${#ONLY[@]} -eq 0 ] && return 0
    local s
    for s in "${ONLY[@]}"; do [ "$s" = "$1" ] && return 0; done
    return 1
}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh needs root: loop devices, network namespaces, tc" >&2
    exit 1
fi
if [ "$QUICK" = 1 ]; then
    [ "$MAX_N" -gt 4 ] && MAX_N=4
    RUNS=1
fi

if [ "$BUILD" = 1 ]; then
    # RelWithDebInfo is the project's default type: -O2 with symbols, so
    # `perf record -g` of these binaries names functions.
    if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
        cmake -S "$SOURCE_DIR" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DEZIO_BUILD_TESTS=OFF >/dev/null
    fi
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target eziod ezioctl ezio-sha1-speed >/dev/null
fi
export EZIO_BUILD_DIR=$BUILD_DIR
# The test fixtures: cleanup trap, private buses with the shipped policy,
# image check. Everything registered with ezio_on_exit is undone on any exit.
# shellcheck source=tests/system/lib_dbus.sh
. "$SOURCE_DIR/tests/system/lib_dbus.sh"
[ -x "$EZIOCTL" ] || fail "ezioctl is not built: $EZIOCTL"
for tool in iperf3 udp-sender udp-receiver mktorrent partclone.extfs nc tc ip; do
    command -v "$tool" >/dev/null || fail "$tool is missing (bash scripts/install-deps.sh)"
done
ezio_setup

BENCH=("$PY3" "$BENCH_DIR/bench.py")
RECORDS=$EZIO_TMP/records.tsv
: >"$RECORDS"
# rec KEY VALUE: one result; recl KEY VALUE: one more element of a list.
rec() { printf '%s\t%s\t%s\n' "=" "$1" "$2" >>"$RECORDS"; }
recl() { printf '%s\t%s\t%s\n' "+" "$1" "$2" >>"$RECORDS"; }
now() { date +%s.%N; }
elapsed() { "$PY3" -c 'import sys; print("%.3f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"; }
median() { "${BENCH[@]}" median "$@"; }
say() { log "$*"; }

# Loop devices over files in tmpfs, so this VM's disk does not dominate.
SHM=$(mktemp -d /dev/shm/ezio-bench.XXXXXX)
ezio_on_exit "rm -rf '$SHM'"

# bench_loop DIR NAME SIZE VAR: a loop device over DIR/NAME.img (sparse).
bench_loop() {
    local _bl_file="$1/$2.img" _bl_dev
    truncate -s "$3" "$_bl_file"
    _bl_dev=$(losetup -f --show "$_bl_file") || fail "losetup failed"
    ezio_on_exit "losetup -d '$_bl_dev'"
    printf -v "$4" '%s' "$_bl_dev"
}

# wipe DEV: zeros over a target between runs, so each deploy writes (and the
# final check compares) every byte. Written through the loop device with
# O_DIRECT (its page cache keeps nothing stale) once eziod has let go of it
# (an O_EXCL open). Zeros, not a discard: a discarded tmpfs page is allocated
# and cleared again by the next deploy's write, CPU work a real disk's write
# does not cost (about a tenth of a 1-on-1 deploy on 2 cores).
wipe() {
    "${BENCH[@]}" zero "$1" || fail "cannot zero $1"
}

# ext4_filled DEV MiB: a real ext4 filesystem holding MiB of random files
# (64 MiB each, the last one shorter) and a few small ones.
ext4_filled() {
    local dev=$1 mib=$2 mnt left n i=0
    mkfs.ext4 -q -F "$dev"
    mnt=$(mktemp -d "$EZIO_TMP/mnt.XXXXXX")
    mount "$dev" "$mnt"
    ezio_on_exit "umount '$mnt' 2>/dev/null"
    left=$mib
    while [ "$left" -gt 0 ]; do
        n=$((left < 64 ? left : 64))
        openssl rand -out "$mnt/data$i.bin" $((n << 20))
        left=$((left - n))
        i=$((i + 1))
    done
    mkdir -p "$mnt/etc/sub"
    seq 1 100000 >"$mnt/etc/sub/numbers.txt"
    cp -r /usr/share/doc/partclone "$mnt/doc" 2>/dev/null || true
    umount "$mnt"
}

# capture DEV OUTDIR: partclone capture -> OUTDIR/torrent.info. -z 16 MiB is
# partclone's buffer size and so the extent cap; its SHA-1s are over 16 MiB
# pieces whatever -z is, and ezio's torrent has the same 16 MiB pieces.
capture() {
    mkdir -p "$2"
    partclone.extfs -c -t -s "$1" -O "$2" -z 16777216 -L "$EZIO_TMP/partclone.log" \
        >/dev/null 2>&1 || fail "partclone failed: $(tail -3 "$EZIO_TMP/partclone.log")"
}

# bench_eziod NAME BUS_ADDR LISTEN_ADDR PORT [NETNS]: eziod on its private
# bus, in the network namespace NETNS if given, at log level info (debug
# logging would cost time on the hot path). Registered like eziod_start's.
bench_eziod() {
    local name=$1 addr=$2 listen=$3 port=$4 ns=${5:-} dir="$EZIO_TMP/$1" i
    local pre=()
    [ -n "$ns" ] && pre=(ip netns exec "$ns")
    mkdir -p "$dir/state"
    # Default settings, except no Local Service Discovery: instances on one
    # host would find each other behind the benchmark's back.
    printf '[daemon]\nlocal_discovery = no\n%b' "${EZIO_BENCH_CONF:-}" >"$dir/eziod.conf"
    DBUS_SYSTEM_BUS_ADDRESS="$addr" "${pre[@]}" "$EZIOD" --config "$dir/eziod.conf" \
        --state-dir "$dir/state" --listen-port "$port" --listen-interface "$listen" \
        --log-level info >>"$dir/eziod.log" 2>&1 &
    EZIOD_PID[$name]=$!
    # shellcheck disable=SC2034 # read by lib_dbus.sh (_ezio_dump_logs, eziod_kill)
    EZIOD_DIR[$name]=$dir
    ezio_on_exit "eziod_kill $name"
    for ((i = 0; i < 600; i++)); do
        ezc "$addr" has-owner >/dev/null 2>&1 && return 0
        kill -0 "${EZIOD_PID[$name]}" 2>/dev/null || fail "eziod $name exited during start"
        sleep 0.05
    done
    fail "eziod $name did not acquire org.ezio.Ezio1"
}

# image_torrent INFO DEV PIECE OUT: the torrent of a partclone capture.
# PIECE partclone: its own 16 MiB pieces, no rehash; else partclone's
# extents rehashed from DEV (make-torrent --from) with pieces of PIECE bytes
# ('auto': make-torrent's choice, about 1000 pieces).
image_torrent() {
    local info=$1 dev=$2 piece=$3 out=$4 psize=()
    if [ "$piece" = partclone ]; then
        "$EZIOCTL" make-torrent "$info" -o "$out" --name sda1 >/dev/null
        return
    fi
    [ "$piece" = auto ] || psize=(--piece-size "$piece")
    "$EZIOCTL" make-torrent "$info" --from "$dev" -o "$out" --name sda1 "${psize[@]}" >/dev/null
}

ezctl() {
    local addr=$1
    shift
    DBUS_SYSTEM_BUS_ADDRESS="$addr" "$EZIOCTL" "$@"
}

# ---- meta -----------------------------------------------------------------------

rec meta.date "$(date -u +%FT%TZ)"
rec meta.host "$(hostname)"
rec meta.kernel "$(uname -r)"
rec meta.cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
rec meta.cores "$(nproc)"
rec meta.mem_gib "$(awk '/MemTotal/ {printf "%.1f", $2 / 1048576}' /proc/meminfo)"
rec meta.sha_ni "$(grep -qw sha_ni /proc/cpuinfo && echo yes || echo no)"
# AVX-512 (F and BW): receivers hash up to 16 pieces side by side with it.
rec meta.avx512 "$(grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && echo yes || echo no)"
rec meta.loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta.git "$(git -C "$SOURCE_DIR" describe --always --dirty 2>/dev/null || echo unknown)"
rec meta.build_dir "$BUILD_DIR"
rec meta.build_type "$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || echo unknown)"
rec meta.quick "$QUICK"
rec meta.libtorrent "$(dpkg-query -W -f='${Version}' libtorrent-rasterbar2.0 2>/dev/null || echo unknown)"

# ---- 1-on-1 over loopback ---------------------------------------------------------

# The limit model. Over loopback every byte crosses one TCP connection, is
# copied into the receiver's page cache (pwrite on the loop device) and
# SHA-1-hashed once by the receiver (the piece check, done while writing).
# The seeder reads from page cache, far faster than either. TCP (iperf3: one
# stream, both ends' kernel work, which on 2 cores already fills them) and
# SHA-1 (one core) are the two expensive stages; perfectly overlapped, the
# best throughput is min(TCP, SHA-1) — an optimistic bound, since both
# compete for the same 2 cores. --verify adds a second, sequential pass that
# re-reads and hashes the image on one core after the last piece arrived:
# limit_verified = 1 / (1/limit + 1/SHA-1).
one_on_one() {
    local backing=$1 label=$2 runs=$3 img_mib fs_size tag src dst i t0 t1 k
    if [ "$QUICK" = 1 ]; then img_mib=200 fs_size=256M; else img_mib=950 fs_size=1100M; fi
    tag=1on1.$label
    say "1on1 ($label): ext4 of $fs_size with $img_mib MiB of files, captured with partclone"
    local dir=$backing/1on1-$label
    mkdir -p "$dir"
    ezio_on_exit "rm -rf '$dir'"
    bench_loop "$dir" src "$fs_size" src
    bench_loop "$dir" dst "$fs_size" dst
    ext4_filled "$src" "$img_mib"
    capture "$src" "$EZIO_TMP/cap-$label"
    local torrent=$EZIO_TMP/1on1-$label.torrent
    image_torrent "$EZIO_TMP/cap-$label/torrent.info" "$src" "$ONE_PIECE" "$torrent"
    local bytes pieces
    bytes=$("$PY3" -c 'import libtorrent as lt, sys; t = lt.torrent_info(sys.argv[1]); print(t.total_size(), t.num_pieces(), t.piece_length())' "$torrent")
    read -r bytes pieces piece_len <<<"$bytes"
    rec "$tag.backing" "$backing"
    rec "$tag.image_bytes" "$bytes"
    rec "$tag.pieces" "$pieces"
    rec "$tag.piece_bytes" "$piece_len"

    bus_start "s-$label"
    local bus_s=$BUS_ADDR
    bus_start "r-$label"
    local bus_r=$BUS_ADDR
    bench_eziod "s-$label" "$bus_s" 127.0.0.1 7101
    bench_eziod "r-$label" "$bus_r" 127.0.0.1 7102
    ezctl "$bus_s" seed "$torrent" "$src" >/dev/null
    # One untimed-in-the-median warm-up: the seeder's first read of the
    # source goes through the loop driver; later ones hit its page cache.
    wipe "$dst"
    t0=$(now)
    ezctl "$bus_r" deploy --wait --peer 127.0.0.1:7101 "$torrent" "$dst" >/dev/null ||
        fail "1on1 warm-up deploy failed"
    rec "$tag.warmup_s" "$(elapsed "$t0" "$(now)")"
    for ((i = 0; i < runs; i++)); do
        for v in plain verify; do
            local opt=()
            [ $v = verify ] && opt=(--verify)
            wipe "$dst"
            t0=$(now)
            ezctl "$bus_r" --json deploy --wait "${opt[@]}" --peer 127.0.0.1:7101 "$torrent" \
                "$dst" >"$EZIO_TMP/deploy.json" || fail "1on1 deploy ($v) failed"
            t1=$(now)
            k=$(elapsed "$t0" "$t1")
            recl "$tag.deploy_${v}_s" "$k"
            say "  deploy $v: $k s"
        done
    done
    ezio_check_image "$torrent" "$src" "$dst" >/dev/null || fail "1on1: target differs"
    rec "$tag.checked" "identical"
    local s r
    read -r s _ _ <<<"$("${BENCH[@]}" proc "${EZIOD_PID[s-$label]}")"
    read -r r _ _ <<<"$("${BENCH[@]}" proc "${EZIOD_PID[r-$label]}")"
    rec "$tag.seeder_hwm_kib" "$s"
    rec "$tag.receiver_hwm_kib" "$r"

    if [ "$label" = tmpfs ] && { want rss || want 1on1; }; then
        # Idle: the receiver has no job in its session any more (its deploys
        # completed); the seeder keeps its seed job, with no peers.
        local secs=10 s0 r0 s1 r1 ticks
        [ "$QUICK" = 1 ] && secs=5
        sleep 2
        read -r _ _ s0 <<<"$("${BENCH[@]}" proc "${EZIOD_PID[s-$label]}")"
        read -r _ _ r0 <<<"$("${BENCH[@]}" proc "${EZIOD_PID[r-$label]}")"
        sleep "$secs"
        read -r _ srss s1 <<<"$("${BENCH[@]}" proc "${EZIOD_PID[s-$label]}")"
        read -r _ rrss r1 <<<"$("${BENCH[@]}" proc "${EZIOD_PID[r-$label]}")"
        ticks=$("${BENCH[@]}" ticks)
        rec rss.idle_seconds "$secs"
        rec rss.idle_receiver_cpu_pct "$(awk -v a="$r0" -v b="$r1" -v t="$ticks" -v s="$secs" 'BEGIN {printf "%.3f", (b - a) / t / s * 100}')"
        rec rss.idle_seeder_cpu_pct "$(awk -v a="$s0" -v b="$s1" -v t="$ticks" -v s="$secs" 'BEGIN {printf "%.3f", (b - a) / t / s * 100}')"
        rec rss.idle_receiver_rss_kib "$rrss"
        rec rss.idle_seeder_rss_kib "$srss"
        rec rss.peak_seeder_kib "$s"
        rec rss.peak_receiver_kib "$r"
    fi
    eziod_kill "s-$label"
    eziod_kill "r-$label"
}

references() {
    local i port=5301
    say "references: loopback TCP (iperf3) and SHA-1"
    for ((i = 0; i < 3; i++)); do
        iperf3 -s -1 -p $port >/dev/null 2>&1 &
        local srv=$!
        sleep 0.3
        iperf3 -c 127.0.0.1 -p $port -t 3 -J >"$EZIO_TMP/iperf.json" || fail "iperf3 failed"
        wait "$srv" || true
        recl ref.tcp_loopback_gbit "$("${BENCH[@]}" iperf "$EZIO_TMP/iperf.json")"
        recl ref.sha1_mib_s "$("${BENCH[@]}" sha1 1024)"
        # One stream, and 16 side by side as receivers hash small pieces.
        local one lanes
        read -r one lanes <<<"$("$BUILD_DIR/bench/ezio-sha1-speed" 1024)" ||
            fail "ezio-sha1-speed failed"
        recl ref.sha1_ezio_one_mib_s "$one"
        recl ref.sha1_ezio_lanes_mib_s "$lanes"
    done
}

# ---- make-torrent against mktorrent ------------------------------------------------

make_torrent_bench() {
    local img=$SHM/mt.img i t0 t1 mib=1024
    [ "$QUICK" = 1 ] && mib=256
    say "make-torrent: $mib MiB image file in tmpfs, 16 MiB pieces, best of $RUNS"
    openssl rand -out "$img" $((mib << 20))
    rec maketorrent.image_bytes $((mib << 20))
    rec maketorrent.piece_bytes $((16 << 20))
    rec maketorrent.threads "$(nproc)"
    for ((i = 0; i < RUNS; i++)); do
        t0=$(now)
        "$EZIOCTL" make-torrent "$img" -o "$EZIO_TMP/mt-ezio.torrent" --name sda1 \
            --piece-size 16M --force >/dev/null || fail "ezioctl make-torrent failed"
        t1=$(now)
        recl maketorrent.ezio_s "$(elapsed "$t0" "$t1")"
        rm -f "$EZIO_TMP/mt-mk.torrent"
        t0=$(now)
        mktorrent -t "$(nproc)" -l 24 -n sda1 -o "$EZIO_TMP/mt-mk.torrent" "$img" >/dev/null ||
            fail "mktorrent failed"
        t1=$(now)
        recl maketorrent.mktorrent_s "$(elapsed "$t0" "$t1")"
    done
    rm -f "$img"
}

# ---- swarm in network namespaces ----------------------------------------------------

NET=10.201.0
host_ip() { echo "$NET.$(($1 + 10))"; }
BG_PIDS=()
kill_bg() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}

# netns_lab HOSTS: namespaces ezb-h0..ezb-h$HOSTS-1 on bridge ezb-br0, each
# host's upload (its eth0) and download (the bridge-side veth) capped.
netns_lab() {
    local n=$1 i ns
    if ip link show ezb-br0 >/dev/null 2>&1 || ip netns list | grep -q '^ezb-'; then
        fail "ezb-* namespaces or bridge exist already (another benchmark running?)"
    fi
    ip link add ezb-br0 type bridge mcast_snooping 0
    ezio_on_exit "ip link del ezb-br0"
    ip link set ezb-br0 up
    for ((i = 0; i < n; i++)); do
        ns=ezb-h$i
        ip netns add "$ns"
        ezio_on_exit "ip netns del $ns"
        ip link add "ezb-v$i" type veth peer name "ezb-p$i"
        ezio_on_exit "ip link del ezb-v$i"
        ip link set "ezb-p$i" netns "$ns"
        ip -n "$ns" link set "ezb-p$i" name eth0
        ip -n "$ns" addr add "$(host_ip "$i")/24" brd + dev eth0
        ip -n "$ns" link set lo up
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add 224.0.0.0/4 dev eth0
        ip link set "ezb-v$i" master ezb-br0
        ip link set "ezb-v$i" up
        ip netns exec "$ns" tc qdisc add dev eth0 root tbf rate "$RATE" burst 256kb latency 50ms
        tc qdisc add dev "ezb-v$i" root tbf rate "$RATE" burst 256kb latency 50ms
    done
    ezio_on_exit kill_bg
}

# wait_ends N DIR: waits for the background jobs of BG_PIDS, N of which each
# wrote DIR/end.I as "RC EPOCH"; sets LAST to the latest EPOCH; fails if any
# RC is not 0. (Not in a $(...): a subshell cannot wait for our children.)
wait_ends() {
    local n=$1 dir=$2 i rc t
    wait "${BG_PIDS[@]}" || true
    BG_PIDS=()
    LAST=0
    for ((i = 1; i <= n; i++)); do
        [ -f "$dir/end.$i" ] || fail "$dir: receiver $i left no result"
        read -r rc t <"$dir/end.$i"
        [ "$rc" = 0 ] || { cat "$dir/out.$i" >&2 || true; fail "$dir: receiver $i exited $rc"; }
        LAST=$("$PY3" -c 'import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))' "$LAST" "$t")
    done
}

# seed_uploaded BUS: payload bytes the seed job (job 1) has uploaded so far.
seed_uploaded() {
    ezctl "$1" --json status 1 >"$EZIO_TMP/seed-status.json"
    "${BENCH[@]}" field "$EZIO_TMP/seed-status.json" TotalUploaded
}

swarm() {
    local fs_size fill hosts=$((MAX_N + 1)) i n r dir t0 t1 t up0
    if [ "$QUICK" = 1 ]; then fs_size=64M fill=48; else fs_size=192M fill=136; fi
    say "swarm: ext4 of $fs_size with $fill MiB of files; $MAX_N receivers at most, $RATE up and down each"
    local sdir=$SHM/swarm
    mkdir -p "$sdir"
    local src
    bench_loop "$sdir" src "$fs_size" src
    ext4_filled "$src" "$fill"
    capture "$src" "$EZIO_TMP/cap-swarm"
    local torrent=$EZIO_TMP/swarm.torrent
    image_torrent "$EZIO_TMP/cap-swarm/torrent.info" "$src" "$SWARM_PIECE" "$torrent"
    local info bytes pieces piece_len
    info=$("$PY3" -c 'import libtorrent as lt, sys; t = lt.torrent_info(sys.argv[1]); print(t.total_size(), t.num_pieces(), t.piece_length())' "$torrent")
    read -r bytes pieces piece_len <<<"$info"
    # The same payload for udpcast and netcat: the used blocks, back to back.
    local payload=$sdir/payload.img
    "${BENCH[@]}" concat "$EZIO_TMP/cap-swarm/torrent.info" "$src" "$payload" >/dev/null
    rec swarm.image_bytes "$bytes"
    rec swarm.payload_bytes "$(stat -c %s "$payload")"
    rec swarm.pieces "$pieces"
    rec swarm.piece_bytes "$piece_len"
    rec swarm.rate "$RATE"
    rec swarm.peers_given "$PEERS"

    say "swarm: $hosts namespaces, buses and eziods"
    netns_lab "$hosts"
    local -a bus tgt
    for ((i = 0; i < hosts; i++)); do
        bus_start "h$i"
        bus[i]=$BUS_ADDR
        bench_eziod "h$i" "${bus[i]}" "$(host_ip "$i")" 6881 "ezb-h$i"
        if [ "$i" -gt 0 ]; then
            bench_loop "$sdir" "t$i" "$fs_size" "tgt[$i]"
        fi
    done
    ezctl "${bus[0]}" seed "$torrent" "$src" >/dev/null

    # One capped TCP stream between two hosts: what a link gives in practice.
    ip netns exec ezb-h1 iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
    local srv=$!
    sleep 0.3
    ip netns exec ezb-h0 iperf3 -c "$(host_ip 1)" -p 5301 -t 3 -J >"$EZIO_TMP/iperf-cap.json" ||
        fail "iperf3 between namespaces failed"
    wait "$srv" || true
    rec swarm.link_tcp_mbit "$("$PY3" -c 'import sys; print("%.1f" % (float(sys.argv[1]) * 1000))' "$("${BENCH[@]}" iperf "$EZIO_TMP/iperf-cap.json")")"

    local ns_list=()
    if [ ${#NS[@]} -gt 0 ]; then
        ns_list=("${NS[@]}")
    else
        n=1
        while [ "$n" -le "$MAX_N" ]; do ns_list+=("$n"); n=$((n * 2)); done
        [ "${ns_list[-1]}" = "$MAX_N" ] || ns_list+=("$MAX_N")
    fi

    # ezio_run N R KIND DEPLOY-OPTIONS...: every receiver `deploy --wait` at
    # once, recorded as swarm.KIND.N; a receiver seeds on after its
    # deployment, so it keeps serving the others, until the round is over.
    ezio_run() {
        local n=$1 r=$2 kind=$3 i
        shift 3
        local peers=(--peer "$(host_ip 0):6881")
        if [ "$PEERS" = all ]; then
            for ((i = 1; i <= n; i++)); do peers+=(--peer "$(host_ip "$i"):6881"); done
        fi
        local dir=$EZIO_TMP/$kind-$n-$r
        mkdir -p "$dir"
        for ((i = 1; i <= n; i++)); do wipe "${tgt[i]}"; done
        local up0 cpu0 t0 eziods=()
        up0=$(seed_uploaded "${bus[0]}")
        for ((i = 0; i <= n; i++)); do eziods+=("${EZIOD_PID[h$i]}"); done
        cpu0=$("${BENCH[@]}" cpu "${eziods[@]}")
        t0=$(now)
        for ((i = 1; i <= n; i++)); do
            (
                rc=0
                timeout 600 env DBUS_SYSTEM_BUS_ADDRESS="${bus[i]}" "$EZIOCTL" --json deploy \
                    --wait "$@" --seed-after forever "${peers[@]}" "$torrent" "${tgt[i]}" \
                    >"$dir/out.$i" 2>&1 || rc=$?
                echo "$rc $(now)" >"$dir/end.$i"
            ) &
            BG_PIDS+=($!)
        done
        local tracer="" profiler="" p
        if [ "$PERF" = 1 ]; then
            mkdir -p "$OUT_DIR"
            perf record -q -F 499 -a -g -o "$OUT_DIR/perf-$kind-$n-$r.data" >/dev/null 2>&1 &
            profiler=$!
        fi
        if [ "$TRACE" = 1 ]; then
            mkdir -p "$OUT_DIR"
            EZIO_TRACE_T0=$t0 "${BENCH[@]}" trace "$OUT_DIR/trace-$kind-$n-$r.tsv" "$((n + 1))" &
            tracer=$!
        fi
        wait_ends "$n" "$dir"
        for p in $tracer $profiler; do
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        done
        local secs cpu
        secs=$(elapsed "$t0" "$LAST")
        recl "swarm.$kind.$n" "$secs"
        # CPU the eziods used for it (all hosts share this machine's cores).
        cpu=$(elapsed "$cpu0" "$("${BENCH[@]}" cpu "${eziods[@]}")")
        recl "swarm.${kind}_cpu_s.$n" "$cpu"
        for ((i = 1; i <= n; i++)); do
            read -r _ t <"$dir/end.$i"
            recl "swarm.${kind}_each.$n" "$(elapsed "$t0" "$t")"
        done
        say "  $kind N=$n: $secs s, eziod CPU $cpu s"
        # Receivers stop seeding before the next round.
        for ((i = 1; i <= n; i++)); do
            ezctl "${bus[i]}" cancel "$("${BENCH[@]}" field "$dir/out.$i" Id)" >/dev/null 2>&1 ||
                true
        done
        # How much of the image the seeder itself sent (ideal: once); its
        # counters are refreshed about once a second.
        sleep 1.5
        recl "swarm.${kind}_seeder_sent_images.$n" "$("$PY3" -c 'import sys; print("%.2f" % ((int(sys.argv[2]) - int(sys.argv[1])) / int(sys.argv[3])))' "$up0" "$(seed_uploaded "${bus[0]}")" "$bytes")"
    }

    for n in "${ns_list[@]}"; do
        # Every piece is SHA-1-checked as it arrives; --verify reads the
        # whole image back from each target before the job completes.
        for ((r = 0; r < SWARM_REPEAT; r++)); do
            ezio_run "$n" "$r" ezio ${EZIO_BENCH_DEPLOY_ARGS:-}
            [ "$SWARM_VERIFY" = 1 ] && ezio_run "$n" "$r" ezio_verify --verify ${EZIO_BENCH_DEPLOY_ARGS:-}
        done
        ezio_check_image "$torrent" "$src" "${tgt[1]}" >/dev/null || fail "swarm: receiver 1 differs"
        ezio_check_image "$torrent" "$src" "${tgt[n]}" >/dev/null || fail "swarm: receiver $n differs"

        [ "$COMPARE" = 1 ] || continue
        # --- udpcast: real multicast, receivers first, then the sender;
        # from the sender's start to the last receiver's exit.
        dir=$EZIO_TMP/udp-$n
        mkdir -p "$dir"
        for ((i = 1; i <= n; i++)); do
            (
                rc=0
                timeout 300 ip netns exec "ezb-h$i" udp-receiver --interface eth0 --nokbd \
                    --file "$sdir/udp.$i" >"$dir/out.$i" 2>&1 || rc=$?
                echo "$rc $(now)" >"$dir/end.$i"
            ) &
            BG_PIDS+=($!)
        done
        sleep 0.5
        t0=$(now)
        timeout 300 ip netns exec ezb-h0 udp-sender --interface eth0 --nokbd --min-receivers "$n" \
            --file "$payload" >"$dir/sender.log" 2>&1 || fail "udp-sender failed: $(tail -3 "$dir/sender.log")"
        wait_ends "$n" "$dir"
        secs=$(elapsed "$t0" "$LAST")
        recl "swarm.udpcast.$n" "$secs"
        say "  udpcast N=$n: $secs s"
        cmp -s "$payload" "$sdir/udp.$n" || fail "udpcast: receiver $n got other bytes"
        rm -f "$sdir"/udp.*
    done

    # --- sequential unicast: the seeder sends the payload with netcat to one
    # receiver after the other (each writes it to a file in tmpfs). The time
    # for N receivers is the sum of the first N transfers, measured once.
    # Peak RSS in the swarm: the seeder keeps a send buffer per peer.
    local hwm max=0
    read -r hwm _ _ <<<"$("${BENCH[@]}" proc "${EZIOD_PID[h0]}")"
    rec swarm.seeder_hwm_kib "$hwm"
    for ((i = 1; i < hosts; i++)); do
        read -r hwm _ _ <<<"$("${BENCH[@]}" proc "${EZIOD_PID[h$i]}")"
        [ "$hwm" -gt "$max" ] && max=$hwm
    done
    rec swarm.receiver_hwm_kib_max "$max"

    [ "$COMPARE" = 1 ] || return 0
    local port=5401
    for ((i = 1; i <= MAX_N; i++)); do
        ip netns exec "ezb-h$i" nc -l "$port" >"$sdir/nc.out" &
        local lpid=$!
        BG_PIDS+=("$lpid")
        sleep 0.2
        t0=$(now)
        timeout 300 ip netns exec ezb-h0 nc -N "$(host_ip "$i")" "$port" <"$payload" || fail "nc to host $i failed"
        wait "$lpid" || fail "nc on host $i failed"
        t1=$(now)
        BG_PIDS=()
        cmp -s "$payload" "$sdir/nc.out" || fail "netcat: host $i got other bytes"
        recl swarm.unicast_each "$(elapsed "$t0" "$t1")"
    done
    rm -f "$sdir/nc.out"
}

# ---- run --------------------------------------------------------------------------

T_START=$(now)
if want 1on1 || want rss; then
    references
    runs=$RUNS
    want 1on1 || runs=1
    one_on_one "$SHM" tmpfs "$runs"
    if [ "$DISK" = 1 ]; then
        DISK_DIR=$(mktemp -d /var/tmp/ezio-bench.XXXXXX)
        ezio_on_exit "rm -rf '$DISK_DIR'"
        one_on_one "$DISK_DIR" disk 1
    fi
fi
if want maketorrent; then make_torrent_bench; fi
if want swarm; then swarm; fi
rec meta.loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
rec meta.seconds "$(elapsed "$T_START" "$(now)")"

mkdir -p "$OUT_DIR"
# The raw records too: `report.py records.tsv DIR` redraws table, JSON, plot.
cp "$RECORDS" "$OUT_DIR/records.tsv"
"$PY3" "$BENCH_DIR/report.py" "$RECORDS" "$OUT_DIR"
