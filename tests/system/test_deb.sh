#!/bin/bash
# The .deb: CPack builds it from the build tree (prefix /usr whatever the tree
# was configured with); its control data names the runtime dependencies; it
# installs into a minimal Debian 12 that has only those dependencies (and
# eziod and ezioctl run there), installs again over itself, and `dpkg -P`
# leaves nothing behind: no file of the package, no configuration written by
# ezioctl, no state of eziod. (Group "ezio" stays, as Debian does with system
# groups.) dpkg runs in a chroot; test_systemd_nspawn.sh installs it under a
# running systemd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_nspawn.sh"
ezio_require_root "installs a .deb into a chroot"
nspawn_require_tools
ezio_tmpdir
ok() { echo "ok - $*"; }

deb_build
ok "built $(basename "$DEB") ($(stat -c %s "$DEB") bytes)"

# --- control data ---------------------------------------------------------------------
f() { dpkg-deb -f "$DEB" "$1"; }
[ "$(f Package)" = ezio ] || fail "Package: $(f Package)"
[ "$(f Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture: $(f Architecture)"
depends=$(f Depends)
for p in libtorrent-rasterbar2.0 libsdbus-c++1 libsystemd0 libudev1 libcurl4 libc6 libstdc++6 dbus-system-bus; do
    tr ',|' '\n\n' <<<"$depends" | sed 's/(.*//; s/ //g' | grep -xF -- "$p" >/dev/null || fail "Depends lacks $p: $depends"
done
grep -q partclone <<<"$(f Recommends)" || fail "Recommends lacks partclone: $(f Recommends)"
ok "Depends: $depends"
ctrl="$EZIO_TMP/control"
dpkg-deb -e "$DEB" "$ctrl"
for s in postinst prerm postrm; do
    [ -x "$ctrl/$s" ] || fail "maintainer script $s missing or not executable"
    sh -n "$ctrl/$s" || fail "$s has a syntax error"
done
contents=$(dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|')
for p in /usr/sbin/eziod /usr/bin/ezioctl /lib/systemd/system/eziod.service /usr/lib/sysusers.d/ezio.conf \
    /usr/share/dbus-1/system.d/org.ezio.Ezio1.conf /usr/share/dbus-1/system-services/org.ezio.Ezio1.service \
    /usr/share/dbus-1/interfaces/org.ezio.Ezio1.Manager.xml /lib/udev/rules.d/61-ezio.rules \
    /usr/share/man/man5/eziod.conf.5 /usr/share/bash-completion/completions/ezioctl; do
    grep -qx "$p" <<<"$contents" || fail "the .deb lacks $p"
done
if grep -E '^/usr/local|^/home|^/tmp|^/work' <<<"$contents"; then fail "the .deb installs outside Debian's tree"; fi
ok "contents: $(grep -cv '/$' <<<"$contents") files in Debian's locations"

# --- install, reinstall, purge in a minimal Debian -----------------------------------------
ROOT="$EZIO_TMP/root"
rootfs_make "$ROOT"
# snapshot: every path with its type, mode and (for files) size, leaving out
# what dpkg itself keeps (its database and log) and the group files.
snapshot() {
    (cd "$ROOT" && find . -xdev \( -path ./var/lib/dpkg -o -path ./var/log -o -path ./var/cache/debconf \
        -o -path ./etc/group -o -path ./etc/group- -o -path ./etc/gshadow -o -path ./etc/gshadow- \
        -o -path ./etc/ld.so.cache -o -path ./root/ezio.deb -o -path ./var/cache/ldconfig \) -prune -o \
        \( -type d -printf '%p d %m\n' \) -o -printf '%p %y %m %s\n' | sort)
}
cp "$DEB" "$ROOT/root/ezio.deb"
before=$(snapshot)
chroot "$ROOT" dpkg -i /root/ezio.deb >"$EZIO_TMP/dpkg-i.log" 2>&1 || fail "dpkg -i: $(cat "$EZIO_TMP/dpkg-i.log")"
chroot "$ROOT" getent group ezio >/dev/null || fail "no group ezio after install"
chroot "$ROOT" /usr/sbin/eziod --version >/dev/null || fail "eziod does not run with the package's dependencies"
chroot "$ROOT" /usr/bin/ezioctl --version >/dev/null || fail "ezioctl does not run with the package's dependencies"
ok "dpkg -i into a root with only the dependencies; eziod and ezioctl run"
chroot "$ROOT" dpkg -i /root/ezio.deb >"$EZIO_TMP/dpkg-i2.log" 2>&1 || fail "reinstall: $(cat "$EZIO_TMP/dpkg-i2.log")"
ok "installs again over itself"

# What eziod and ezioctl leave at run time.
chroot "$ROOT" ezioctl -q autodeploy enable --then reboot http://10.0.0.1/sda1.torrent sda1 ||
    fail "ezioctl autodeploy enable in the chroot failed"
[ -f "$ROOT/etc/ezio/eziod.conf" ] || fail "ezioctl wrote no /etc/ezio/eziod.conf"
mkdir -p "$ROOT/var/lib/ezio/jobs/1"
echo '{}' >"$ROOT/var/lib/ezio/jobs/1/job.json"
echo '{"completed": []}' >"$ROOT/var/lib/ezio/autodeploy.json"

chroot "$ROOT" dpkg -r ezio >"$EZIO_TMP/dpkg-r.log" 2>&1 || fail "dpkg -r: $(cat "$EZIO_TMP/dpkg-r.log")"
[ -f "$ROOT/etc/ezio/eziod.conf" ] && [ -d "$ROOT/var/lib/ezio" ] ||
    fail "dpkg -r removed configuration or state (only purge may)"
[ ! -e "$ROOT/usr/sbin/eziod" ] || fail "dpkg -r left /usr/sbin/eziod"
ok "dpkg -r removes the files and keeps configuration and state"
chroot "$ROOT" dpkg -P ezio >"$EZIO_TMP/dpkg-p.log" 2>&1 || fail "dpkg -P: $(cat "$EZIO_TMP/dpkg-p.log")"
after=$(snapshot)
if [ "$before" != "$after" ]; then
    fail "dpkg -P left differences: $(diff <(echo "$before") <(echo "$after"))"
fi
chroot "$ROOT" dpkg -s ezio >/dev/null 2>&1 && fail "dpkg still knows ezio after purge"
ok "dpkg -P: nothing left (group ezio stays, as Debian does)"
echo PASS
