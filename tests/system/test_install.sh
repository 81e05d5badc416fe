#!/bin/bash
# `cmake --install` puts every file where Debian looks for it, and files that
# name an installed path name the right one for the prefix in effect at
# install time:
#   - with --prefix /usr (the .deb's prefix): /usr/sbin/eziod, /usr/bin/ezioctl,
#     the unit in systemd's unit directory with ExecStart=/usr/sbin/eziod, the
#     D-Bus policy in /usr/share/dbus-1/system.d, the activation file in
#     system-services with Exec=/usr/sbin/eziod, the interface XML, the udev
#     rules, man pages (1, 5, 8), bash completion, the sysusers.d entry;
#   - with the configured prefix (default /usr/local): the binaries there and
#     ExecStart=/Exec= pointing at them.
# Everything goes to a DESTDIR in a temporary directory. Needs no root.
. "$(dirname "$0")/lib.sh"
ezio_tmpdir
ok() { echo "ok - $*"; }

[ -x "$EZIO_BUILD_DIR/daemon/eziod" ] || fail "eziod is not built in $EZIO_BUILD_DIR"
var() { pkg-config --variable="$2" "$1" 2>/dev/null || true; }
UNIT_DIR=$(var systemd systemdsystemunitdir)
SYSUSERS_DIR=$(var systemd sysusersdir)
UDEV_DIR=$(var udev udevdir)
COMPLETION_DIR=$(var bash-completion completionsdir)

# check_install DESTDIR PREFIX
check_install() {
    local d=$1 p=$2 f
    local unit_dir=${UNIT_DIR:-$p/lib/systemd/system} sysusers_dir=${SYSUSERS_DIR:-$p/lib/sysusers.d}
    local udev_dir=${UDEV_DIR:-$p/lib/udev} completion_dir=${COMPLETION_DIR:-$p/share/bash-completion/completions}
    local services_dir interfaces_dir
    services_dir=$(var dbus-1 system_bus_services_dir)
    services_dir=${services_dir:-$p/share/dbus-1/system-services}
    interfaces_dir=$(var dbus-1 interfaces_dir)
    interfaces_dir=${interfaces_dir:-$p/share/dbus-1/interfaces}
    for f in "$p/sbin/eziod" "$p/bin/ezioctl"; do
        [ -x "$d$f" ] || fail "$f is missing or not executable (prefix $p)"
    done
    for f in "$unit_dir/eziod.service" "$sysusers_dir/ezio.conf" \
        "$p/share/dbus-1/system.d/org.ezio.Ezio1.conf" \
        "$services_dir/org.ezio.Ezio1.service" \
        "$interfaces_dir/org.ezio.Ezio1.Manager.xml" "$interfaces_dir/org.ezio.Ezio1.Job.xml" \
        "$udev_dir/rules.d/61-ezio.rules" "$completion_dir/ezioctl" \
        "$p/share/man/man1/ezioctl.1" "$p/share/man/man5/eziod.conf.5" "$p/share/man/man8/eziod.8"; do
        [ -f "$d$f" ] || fail "$f is missing (prefix $p); installed: $(cd "$d" && find . -type f | sort)"
    done
    grep -qx "ExecStart=$p/sbin/eziod" "$d$unit_dir/eziod.service" ||
        fail "unit: $(grep ExecStart "$d$unit_dir/eziod.service"), expected $p/sbin/eziod"
    grep -qx "Exec=$p/sbin/eziod" "$d$services_dir/org.ezio.Ezio1.service" ||
        fail "activation file: $(grep Exec "$d$services_dir/org.ezio.Ezio1.service")"
    grep -qx "SystemdService=eziod.service" "$d$services_dir/org.ezio.Ezio1.service" ||
        fail "activation file lacks SystemdService=eziod.service"
    grep -qx "g ezio -" "$d$sysusers_dir/ezio.conf" || fail "sysusers entry: $(cat "$d$sysusers_dir/ezio.conf")"
    ! grep -rq '@[A-Z_]*@' "$d$unit_dir/eziod.service" "$d$services_dir/org.ezio.Ezio1.service" ||
        fail "unconfigured @VARIABLE@ left in an installed file"
    "$d$p/sbin/eziod" --version >/dev/null || fail "the installed eziod does not run"
    "$d$p/bin/ezioctl" --version >/dev/null || fail "the installed ezioctl does not run"
    ok "prefix $p: $(cd "$d" && find . -type f | wc -l) files, unit $unit_dir/eziod.service -> $p/sbin/eziod"
}

DESTDIR="$EZIO_TMP/usr" cmake --install "$EZIO_BUILD_DIR" --prefix /usr >"$EZIO_TMP/install.log" 2>&1 ||
    fail "cmake --install --prefix /usr: $(tail "$EZIO_TMP/install.log")"
check_install "$EZIO_TMP/usr" /usr
# Debian's locations (bookworm's systemd.pc and udev.pc name /lib).
for f in /usr/share/dbus-1/system.d/org.ezio.Ezio1.conf /usr/share/dbus-1/system-services/org.ezio.Ezio1.service \
    /usr/share/dbus-1/interfaces/org.ezio.Ezio1.Manager.xml /usr/share/bash-completion/completions/ezioctl; do
    [ -f "$EZIO_TMP/usr$f" ] || fail "$f missing with prefix /usr"
done
ok "prefix /usr puts the bus files where dbus-daemon reads them"

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$EZIO_BUILD_DIR/CMakeCache.txt")
DESTDIR="$EZIO_TMP/default" cmake --install "$EZIO_BUILD_DIR" >"$EZIO_TMP/install2.log" 2>&1 ||
    fail "cmake --install: $(tail "$EZIO_TMP/install2.log")"
check_install "$EZIO_TMP/default" "$prefix"
echo PASS
