# shellcheck shell=bash
# Shared fixture of the eziod D-Bus system tests. Source it from a test:
#
#   . "$(dirname "$0")/lib_dbus.sh"
#   ezio_require_root "creates users and loop devices"
#   ezio_setup
#   bus_start a;   ADDR=$BUS_ADDR           # private system-type bus
#   eziod_start a "$ADDR" 0                  # eziod on it, any free port
#   ezc "$ADDR" get /org/ezio/Ezio1 Version  # independent python3-dbus client
#
# Real components, private instances: each bus is its own dbus-daemon whose
# configuration mirrors Debian's system.conf defaults (deny own, deny method
# calls) and <include>s the project's dbus/org.ezio.Ezio1.conf, so a mistake in
# the shipped policy fails a test. eziod is pointed at the bus with
# DBUS_SYSTEM_BUS_ADDRESS, which sd-bus honours: eziod has no test mode.
#
# Everything a test creates (buses, daemons, loop devices, users, temporary
# files) is registered with ezio_on_exit and undone by the EXIT trap, in
# reverse order, whatever the outcome.

# shellcheck source=tests/system/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EZIO_POLICY="$EZIO_SOURCE_DIR/dbus/org.ezio.Ezio1.conf"
# The distribution's interpreter: python3-dbus, python3-gi and
# python3-libtorrent are Debian packages, and other users must run it too.
PY=$PY3
declare -A EZIOD_PID=()
declare -A EZIOD_DIR=()

# lib.sh's fail() calls this: the daemons' last words explain most failures.
_ezio_dump_logs() {
    [ -n "${EZIO_TMP:-}" ] || return 0
    local f
    for f in "$EZIO_TMP"/*/eziod.log; do
        [ -f "$f" ] || continue
        echo "----- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2 || true
    done
}

ok() { echo "ok - $*"; }

ezio_setup() {
    [ -x "$EZIOD" ] || fail "eziod is not built: $EZIOD (set EZIO_BUILD_DIR)"
    [ -f "$EZIO_POLICY" ] || fail "bus policy not found: $EZIO_POLICY"
    "$PY" -c 'import dbus' || fail "python3-dbus is missing (scripts/install-deps.sh)"
    ezio_tmpdir
    # Other users (the authorization test) must reach the bus sockets and
    # the client script.
    chmod 755 "$EZIO_TMP"
    _ezio_write_client "$EZIO_TMP/ezioclient.py"
}

# --- private buses ----------------------------------------------------------

# bus_start NAME: starts a private system-type bus in $EZIO_TMP/NAME and sets
# BUS_ADDR to its address and BUS_PID to its dbus-daemon.
bus_start() {
    local name=$1 dir="$EZIO_TMP/$1"
    mkdir -p "$dir"
    chmod 755 "$dir"
    cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <!-- The defaults of /usr/share/dbus-1/system.conf -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus"
          send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <!-- The policy eziod ships: what is under test. -->
  <include>$EZIO_POLICY</include>
</busconfig>
EOF
    dbus-daemon --config-file="$dir/bus.conf" --nofork --nosyslog >"$dir/bus.log" 2>&1 &
    local pid=$!
    ezio_on_exit "kill $pid; wait $pid"
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$dir/bus" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/bus.log" >&2; fail "dbus-daemon $name died"; }
        sleep 0.05
    done
    [ -S "$dir/bus" ] || fail "bus $name did not come up"
    chmod 777 "$dir/bus"
    BUS_ADDR="unix:path=$dir/bus"
    BUS_PID=$pid
}

# --- the independent client ---------------------------------------------------

# ezc ADDRESS COMMAND ARGS...: python3-dbus client (see _ezio_write_client).
# D-Bus errors print "ERROR <name>: <message>" and exit 3.
ezc() {
    local addr=$1
    shift
    EZIO_TEST_BUS="$addr" "$PY" "$EZIO_TMP/ezioclient.py" "$@"
}

# ezc_as USER ADDRESS COMMAND ARGS...: the same, as another user.
ezc_as() {
    local user=$1 addr=$2
    shift 2
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups \
        env -i EZIO_TEST_BUS="$addr" PATH=/usr/bin:/bin HOME=/ \
        "$PY" "$EZIO_TMP/ezioclient.py" "$@"
}

# expect_error NAME COMMAND...: COMMAND must fail with D-Bus error NAME.
expect_error() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then
        fail "expected $name, but it succeeded: $out"
    fi
    case "$out" in
        "ERROR $name:"*) ok "$name: ${out#ERROR "$name": }" ;;
        *) fail "expected $name, got: $out" ;;
    esac
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
    ok "$1 = $3"
}

# --- eziod ---------------------------------------------------------------------

# eziod_start NAME ADDRESS PORT [EZIOD ARGS...]: starts eziod on the bus with
# its state and log in $EZIO_TMP/NAME and waits until it owns the name.
eziod_start() {
    local name=$1 addr=$2 port=$3 dir="$EZIO_TMP/$1"
    shift 3
    mkdir -p "$dir/state"
    # An explicit empty configuration: the host's /etc/ezio/eziod.conf must
    # not leak into a test. Local discovery off: instances on one host would
    # find each other behind the test's back.
    [ -f "$dir/eziod.conf" ] || printf '[daemon]\nlocal_discovery = no\n' >"$dir/eziod.conf"
    DBUS_SYSTEM_BUS_ADDRESS="$addr" "$EZIOD" --config "$dir/eziod.conf" \
        --state-dir "$dir/state" --listen-port "$port" --listen-interface 127.0.0.1 \
        --log-level debug "$@" >>"$dir/eziod.log" 2>&1 &
    EZIOD_PID[$name]=$!
    EZIOD_DIR[$name]=$dir
    ezio_on_exit "eziod_kill $name"
    local i
    for ((i = 0; i < 200; i++)); do
        if ezc "$addr" has-owner >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "${EZIOD_PID[$name]}" 2>/dev/null || fail "eziod $name exited during start"
        sleep 0.05
    done
    fail "eziod $name did not acquire org.ezio.Ezio1"
}

eziod_alive() { kill -0 "${EZIOD_PID[$1]}" 2>/dev/null; }

# eziod_stop NAME: SIGTERM, wait (at most 30 s); returns eziod's exit status.
eziod_stop() {
    local pid=${EZIOD_PID[$1]} i rc=0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
        echo "eziod $1 did not stop within 30 s" >&2
        return 124
    fi
    wait "$pid" || rc=$?
    return "$rc"
}

eziod_kill() {
    local pid=${EZIOD_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# --- disks --------------------------------------------------------------------

# loop_create NAME SIZE_MIB [ro]: a loop device over the file $EZIO_TMP/NAME.img
# (created sparse if missing); sets LOOP_DEV. Always detached at exit.
loop_create() {
    local file="$EZIO_TMP/$1.img" ro=()
    [ "${3:-}" = ro ] && ro=(-r)
    [ -e "$file" ] || truncate -s "${2}M" "$file"
    LOOP_DEV=$(losetup "${ro[@]}" -f --show "$file") || fail "losetup failed"
    ezio_on_exit "ezio_detach '$LOOP_DEV' '$file'"
}

# make_image_torrent IMAGE OUT EXTENTS: writes a torrent in ezio's layout for
# the extents "OFFSET:LENGTH,..." (bytes) of IMAGE, name "sda1", like
# partclone -T does. The same client script builds it with python3-libtorrent.
make_image_torrent() {
    "$PY" "$EZIO_TMP/ezioclient.py" make-torrent "$@"
}

# --- the client script ------------------------------------------------------------

_ezio_write_client() {
    cat >"$1" <<'PYEOF'
"""Independent D-Bus client for the eziod system tests (python3-dbus).

usage: ezioclient.py COMMAND ARGS...   (bus address in $EZIO_TEST_BUS)
  has-owner                       exit 0 when org.ezio.Ezio1 is owned
  own-name                        try to own org.ezio.Ezio1
  introspect PATH
  get PATH PROPERTY               JSON value (interface from the path)
  getall PATH                     JSON object
  list                            ListJobs() as JSON
  managed                         GetManagedObjects() as JSON
  deploy TORRENT TARGET OPT...    prints the job path
  seed TORRENT SOURCE OPT...
  deploy-bytes HEX TARGET OPT...  torrent given as hex bytes
  call PATH METHOD [OPT...]       Pause / Resume / Cancel(a{sv})
  wait PATH STATES SECONDS        until State is one of STATES (comma list)
  wait-completed PATH SECONDS     prints "SUCCESS MESSAGE" from Completed
  count-changes PATH SECONDS      PropertiesChanged signals of the job seen
                                  in SECONDS, as "COUNT PROP,PROP,..."
  bad-call SIG                    Deploy with arguments of signature SIG
                                  (only s, t, ay parts: "sss", "ays", "")
  set PATH PROPERTY STRING        Properties.Set (all are read-only)
  make-torrent IMAGE OUT EXTENTS
  notify-listen SOCKET OUT        a fake systemd NOTIFY_SOCKET: appends every
                                  message line to OUT; after READY=1 adds
                                  "NAME_OWNED=0|1" (owner checked at READY)
OPT is KEY:SIG=VALUE with SIG one of b s u t x i d as (as: comma list).
"""
import json
import os
import sys
import time

NAME = "org.ezio.Ezio1"
ROOT = "/org/ezio/Ezio1"
MANAGER = "org.ezio.Ezio1.Manager"
JOB = "org.ezio.Ezio1.Job"
DISK = "org.ezio.Ezio1.Disk"
PROPS = "org.freedesktop.DBus.Properties"


def bus():
    import dbus
    return dbus.bus.BusConnection(os.environ["EZIO_TEST_BUS"])


def iface_of(path):
    if path.startswith(ROOT + "/disk/"):
        return DISK
    return MANAGER if path == ROOT else JOB


def plain(v):
    import dbus
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, (dbus.Dictionary, dict)):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (dbus.Array, list, tuple, dbus.Struct)):
        return [plain(x) for x in v]
    if isinstance(v, (dbus.String, dbus.ObjectPath, str)):
        return str(v)
    if isinstance(v, dbus.Double):
        return float(v)
    if isinstance(v, (int, dbus.Byte)):
        return int(v)
    return v


def options(specs):
    import dbus
    conv = {
        "b": lambda s: dbus.Boolean(s in ("1", "true", "yes")),
        "s": dbus.String,
        "u": lambda s: dbus.UInt32(int(s)),
        "t": lambda s: dbus.UInt64(int(s)),
        "x": lambda s: dbus.Int64(int(s)),
        "i": lambda s: dbus.Int32(int(s)),
        "d": lambda s: dbus.Double(float(s)),
        "as": lambda s: dbus.Array([x for x in s.split(",") if x], signature="s"),
    }
    out = {}
    for spec in specs:
        key, rest = spec.split(":", 1)
        sig, value = rest.split("=", 1)
        out[key] = conv[sig](value)
    return dbus.Dictionary(out, signature="sv")


def obj(b, path):
    return b.get_object(NAME, path, introspect=False)


def get(b, path, prop):
    return obj(b, path).Get(iface_of(path), prop, dbus_interface=PROPS)


def make_torrent(image, out, extents):
    import tempfile
    import libtorrent as lt
    with open(image, "rb") as f, tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, "sda1"))
        for ext in extents.split(","):
            off, length = (int(x) for x in ext.split(":"))
            f.seek(off)
            with open(os.path.join(tmp, "sda1", "%032x" % off), "wb") as e:
                e.write(f.read(length))
        fs = lt.file_storage()
        lt.add_files(fs, os.path.join(tmp, "sda1"))
        t = lt.create_torrent(fs, 256 * 1024, flags=lt.create_torrent.v1_only)
        lt.set_piece_hashes(t, tmp)
        data = lt.bencode(t.generate())
    with open(out, "wb") as o:
        o.write(data)
    print(str(lt.torrent_info(data).info_hashes().v1))


def main(argv):
    import dbus
    cmd, args = argv[0], argv[1:]
    if cmd == "make-torrent":
        return make_torrent(*args)
    if cmd == "notify-listen":
        return notify_listen(*args)
    b = bus()
    if cmd == "has-owner":
        return 0 if b.name_has_owner(NAME) else 1
    if cmd == "own-name":
        print(b.request_name(NAME, dbus.bus.NAME_FLAG_DO_NOT_QUEUE))
    elif cmd == "introspect":
        print(obj(b, args[0]).Introspect(dbus_interface="org.freedesktop.DBus.Introspectable"))
    elif cmd == "get":
        print(json.dumps(plain(get(b, args[0], args[1]))))
    elif cmd == "getall":
        path = args[0]
        print(json.dumps(plain(obj(b, path).GetAll(iface_of(path), dbus_interface=PROPS)),
                         sort_keys=True))
    elif cmd == "list":
        print(json.dumps(plain(obj(b, ROOT).ListJobs(dbus_interface=MANAGER))))
    elif cmd == "managed":
        print(json.dumps(plain(obj(b, ROOT).GetManagedObjects(
            dbus_interface="org.freedesktop.DBus.ObjectManager")), sort_keys=True))
    elif cmd in ("deploy", "seed", "deploy-bytes"):
        if cmd == "deploy-bytes":
            data = bytes.fromhex(args[0])
        else:
            with open(args[0], "rb") as f:
                data = f.read()
        method = "Seed" if cmd == "seed" else "Deploy"
        m = obj(b, ROOT).get_dbus_method(method, MANAGER)
        print(m(dbus.ByteArray(data), args[1], options(args[2:]), signature="aysa{sv}"))
    elif cmd == "bad-call":
        sample = {"s": "x", "t": dbus.UInt64(1), "ay": dbus.ByteArray(b"x")}
        sig, parts, rest = args[0] if args else "", [], args[0] if args else ""
        while rest:
            part = "ay" if rest.startswith("ay") else rest[0]
            parts.append(sample[part])
            rest = rest[len(part):]
        obj(b, ROOT).get_dbus_method("Deploy", MANAGER)(*parts, signature=sig)
        print("accepted")
    elif cmd == "set":
        obj(b, args[0]).Set(iface_of(args[0]), args[1], dbus.String(args[2]),
                            dbus_interface=PROPS)
        print("accepted")
    elif cmd == "call":
        path, method = args[0], args[1]
        m = obj(b, path).get_dbus_method(method, JOB)
        if method == "Cancel":
            m(options(args[2:]))
        else:
            m()
        print("done")
    elif cmd == "wait":
        path, states, seconds = args[0], args[1].split(","), float(args[2])
        deadline = time.monotonic() + seconds
        while True:
            state = str(get(b, path, "State"))
            if state in states:
                print(state)
                return 0
            if time.monotonic() > deadline:
                print("TIMEOUT state=%s %s" % (state, json.dumps(plain(
                    obj(b, path).GetAll(JOB, dbus_interface=PROPS)), sort_keys=True)))
                return 1
            time.sleep(0.1)
    elif cmd == "wait-completed":
        return wait_completed(args[0], float(args[1]))
    elif cmd == "count-changes":
        return count_changes(args[0], float(args[1]))
    else:
        print("unknown command " + cmd, file=sys.stderr)
        return 2
    return 0


def notify_listen(path, out):
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    os.chmod(path, 0o777)
    with open(out, "a", buffering=1) as f:
        while True:
            msg = s.recv(4096).decode(errors="replace")
            for line in msg.splitlines():
                f.write(line + "\n")
                if line == "READY=1":
                    owned = 1 if bus().name_has_owner(NAME) else 0
                    f.write("NAME_OWNED=%d\n" % owned)


def glib_bus():
    import dbus
    import dbus.mainloop.glib
    from gi.repository import GLib
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    return dbus.bus.BusConnection(os.environ["EZIO_TEST_BUS"]), GLib


def count_changes(path, seconds):
    b, GLib = glib_bus()
    loop = GLib.MainLoop()
    seen = []

    def on_changed(iface, changed, invalidated):
        if iface == JOB:
            seen.append(sorted(str(k) for k in changed))

    b.add_signal_receiver(on_changed, "PropertiesChanged", PROPS, NAME, path)
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    props = sorted(set(p for s in seen for p in s))
    print("%d %s" % (len(seen), ",".join(props)))
    return 0


def wait_completed(path, seconds):
    b, GLib = glib_bus()
    loop = GLib.MainLoop()
    result = []

    def on_completed(success, message):
        result.append("%s %s" % ("true" if success else "false", message))
        loop.quit()

    b.add_signal_receiver(on_completed, "Completed", JOB, NAME, path)
    # Subscribed first, then look: a job that finished before we listened is
    # reported from its State.
    state = str(get(b, path, "State"))
    if state in ("completed", "failed", "cancelled"):
        print("%s (already %s)" % ("true" if state == "completed" else "false", state))
        return 0
    # A deploy that seeds after completing sends Completed when it starts
    # seeding: that may have happened before we subscribed.
    if state == "seeding" and str(get(b, path, "Operation")) == "deploy":
        print("true (already seeding after deployment)")
        return 0
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    if not result:
        print("TIMEOUT " + json.dumps(plain(obj(b, path).GetAll(JOB, dbus_interface=PROPS)),
                                      sort_keys=True))
        return 1
    print(result[0])
    return 0


if __name__ == "__main__":
    import dbus
    try:
        sys.exit(main(sys.argv[1:]))
    except dbus.exceptions.DBusException as e:
        print("ERROR %s: %s" % (e.get_dbus_name(), e.get_dbus_message()))
        sys.exit(3)
PYEOF
}
