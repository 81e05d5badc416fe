#!/bin/sh
# Installs every build, test and benchmark dependency of ezio on Debian 12.
# Idempotent; run as root. Packages only from Debian's archive.
set -eu
export DEBIAN_FRONTEND=noninteractive
PKGS="
  build-essential cmake pkg-config git clang clang-format libclang-rt-14-dev
  libtorrent-rasterbar-dev libtorrent-rasterbar-doc python3-libtorrent
  libsdbus-c++-dev libsdbus-c++-bin libsdbus-c++-doc
  libsystemd-dev libudev-dev libssl-dev
  libgtest-dev libgmock-dev googletest
  libcli11-dev nlohmann-json3-dev libcurl4-openssl-dev
  dpkg-dev dbus dbus-daemon udev kmod util-linux e2fsprogs partclone
  transmission-cli mktorrent opentracker udpcast iperf3 iproute2 curl
  umockdev libumockdev-dev mmdebstrap systemd-container debootstrap
  python3 python3-dbus python3-gi bash-completion
  python3-matplotlib netcat-openbsd
"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi
