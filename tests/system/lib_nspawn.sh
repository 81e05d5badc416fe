# shellcheck shell=bash
# Shared fixture of the packaging and systemd tests (sourced after lib.sh or
# lib_dbus.sh): the .deb, a minimal Debian root made by mmdebstrap, and
# containers booted from it with systemd-nspawn.
#
#   nspawn_require_tools
#   deb_build                        # DEB=<path of the .deb>
#   rootfs_make ROOT [PKG...]        # fresh root with the .deb's dependencies
#   nspawn_boot ROOT NAME [ARGS...]  # boots it; LEADER, NSPAWN_PID
#   inside CMD...                    # runs CMD in the container
#   nspawn_wait_exit SECONDS         # NSPAWN_RC: 0 poweroff, 133 reboot
#
# The root file system is made once per package list and Debian sources and
# kept as a tarball in /var/cache/ezio-test/ (mmdebstrap needs the Debian
# mirror; ~25 s), then unpacked for each test (~5 s). A container is always
# terminated by the EXIT trap, before the loop devices it was given are
# detached (cleanups run in reverse order).

EZIO_CACHE_DIR=${EZIO_CACHE_DIR:-/var/cache/ezio-test}
NSPAWN_PID=""
LEADER=""
NSPAWN_RC=""

# nspawn_require_tools: exit 77 (skipped, with the reason) when a tool is
# missing; scripts/install-deps.sh installs them all.
nspawn_require_tools() {
    local t missing=""
    for t in mmdebstrap systemd-nspawn nsenter cpack dpkg-deb dpkg-shlibdeps; do
        command -v "$t" >/dev/null || missing="$missing $t"
    done
    if [ -n "$missing" ]; then
        echo "SKIP: $(basename "$0") needs:$missing (scripts/install-deps.sh installs them)" >&2
        exit 77
    fi
}

# deb_build: the .deb of the build tree, made by CPack into $EZIO_TMP/deb.
deb_build() {
    [ -f "$EZIO_BUILD_DIR/CPackConfig.cmake" ] || fail "no CPackConfig.cmake in $EZIO_BUILD_DIR"
    mkdir -p "$EZIO_TMP/deb"
    (cd "$EZIO_TMP/deb" && cpack -G DEB --config "$EZIO_BUILD_DIR/CPackConfig.cmake" \
        -B "$EZIO_TMP/deb") >"$EZIO_TMP/deb/cpack.log" 2>&1 ||
        fail "cpack failed: $(tail -20 "$EZIO_TMP/deb/cpack.log")"
    DEB=$(ls "$EZIO_TMP"/deb/ezio_*.deb 2>/dev/null | head -1)
    [ -n "$DEB" ] || fail "cpack made no .deb: $(tail -20 "$EZIO_TMP/deb/cpack.log")"
}

# deb_runtime_packages: the real packages the .deb depends on (first of each
# set of alternatives, virtual dbus names as dbus), comma-separated.
deb_runtime_packages() {
    dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/ //g' |
        sed -E 's/^(default-dbus-system-bus|dbus-system-bus)$/dbus/' | grep -v '^$' | sort -u |
        paste -sd,
}

# rootfs_make ROOT [EXTRA_PACKAGES...]: a fresh minimal bookworm in ROOT with
# systemd, dbus and the .deb's dependencies (not the .deb itself).
rootfs_make() {
    local root=$1 sources key tarball pkgs
    shift
    pkgs="systemd,systemd-sysv,dbus,$(deb_runtime_packages)"
    for p in "$@"; do pkgs="$pkgs,$p"; done
    pkgs=$(tr ',' '\n' <<<"$pkgs" | sort -u | paste -sd,)
    # The host's Debian sources (its mirror and snapshot), without any other
    # repository it may have.
    sources=/etc/apt/sources.list.d/debian.sources
    [ -f "$sources" ] || sources=http://deb.debian.org/debian
    key=$( (echo "$pkgs"; [ -f "$sources" ] && cat "$sources" || echo "$sources") | sha256sum | cut -c1-16)
    tarball="$EZIO_CACHE_DIR/bookworm-minbase-$key.tar"
    if [ ! -s "$tarball" ]; then
        log "making the root file system ($pkgs) with mmdebstrap"
        mkdir -p "$EZIO_CACHE_DIR"
        local partial="${tarball%.tar}.partial.$$.tar"
        mmdebstrap --variant=minbase --format=tar --include="$pkgs" bookworm "$partial" "$sources" \
            >"$EZIO_TMP/mmdebstrap.log" 2>&1 ||
            { rm -rf "$partial"; fail "mmdebstrap failed: $(tail -20 "$EZIO_TMP/mmdebstrap.log")"; }
        mv "$partial" "$tarball"
    fi
    mkdir -p "$root"
    tar -C "$root" -xf "$tarball" || fail "cannot unpack $tarball"
    # One machine id for every boot, so the journal of earlier boots stays
    # readable (persistent journal).
    tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
    mkdir -p "$root/var/log/journal"
}

# nspawn_boot ROOT NAME [NSPAWN_ARGS...]: boots ROOT with systemd-nspawn
# (host network, no registration: there is no host systemd) and waits until
# systemd inside is up. Sets NSPAWN_PID and LEADER (the container's PID 1 as
# seen from here). Console output goes to $EZIO_TMP/NAME.console.
nspawn_boot() {
    local root=$1 name=$2 i
    shift 2
    NSPAWN_RC=""
    systemd-nspawn -D "$root" -b --register=no --keep-unit --console=passive \
        --machine="ezio-$name" "$@" </dev/null >"$EZIO_TMP/$name.console" 2>&1 &
    NSPAWN_PID=$!
    ezio_on_exit "nspawn_terminate $NSPAWN_PID"
    LEADER=""
    for ((i = 0; i < 200; i++)); do
        LEADER=$(ps --ppid "$NSPAWN_PID" -o pid= 2>/dev/null | tr -d " " | head -1 || true)
        [ -n "$LEADER" ] && [ "$(cat "/proc/$LEADER/comm" 2>/dev/null)" = systemd ] && break
        LEADER=""
        kill -0 "$NSPAWN_PID" 2>/dev/null || fail "systemd-nspawn exited: $(cat "$EZIO_TMP/$name.console")"
        sleep 0.05
    done
    [ -n "$LEADER" ] || fail "no systemd in the container: $(cat "$EZIO_TMP/$name.console")"
    local state
    for ((i = 0; i < 60; i++)); do
        state=$(inside systemctl is-system-running 2>/dev/null || true)
        case $state in
            running | degraded) break ;;
        esac
        sleep 0.5
    done
    case $state in
        running | degraded) ;;
        *) fail "container $name did not finish booting ($state): $(inside systemctl --failed --no-pager 2>&1)" ;;
    esac
}

# inside CMD...: runs CMD in the container's namespaces with a clean
# environment.
inside() {
    nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

# nspawn_wait_exit SECONDS: waits for the container to end by itself and
# sets NSPAWN_RC (0 after a poweroff, 133 after a reboot).
nspawn_wait_exit() {
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$NSPAWN_PID" 2>/dev/null && fail "the container did not end within $1 s"
    NSPAWN_RC=0
    wait "$NSPAWN_PID" || NSPAWN_RC=$?
}

# nspawn_terminate PID: asks the container to stop (nspawn turns SIGTERM
# into a clean shutdown of its systemd), then kills it.
nspawn_terminate() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
