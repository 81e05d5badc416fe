#!/bin/bash
# ezioctl's bus side against a scripted stand-in for eziod: a python3-dbus
# service that implements org.ezio.Ezio1.Manager, org.ezio.Ezio1.Job and the
# ObjectManager as dbus/*.xml documents them, on a private bus reached through
# DBUS_SYSTEM_BUS_ADDRESS. Jobs follow a script chosen by the target's name
# (fast, slow, fail, ...), so every client path is exercised without
# libtorrent, disks or root:
#   - the a{sv} options ezioctl sends: keys, D-Bus types and values;
#   - deploy/seed without --wait, with --wait (pipe and terminal), --json;
#   - exit status from a job's ErrorName and from method errors;
#   - Ctrl-C while waiting (terminal restored, job left running), cancel
#     while waiting, pause/resume, watch JOB / watch (all) with --json;
#   - jobs/status tables and JSON; --session; eziod going away; not running.
# The end-to-end tests against the real eziod are test_cli_json.sh and the
# daemon's own tests.
set -euo pipefail

EZIO_SOURCE_DIR=${EZIO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
EZIO_BUILD_DIR=${EZIO_BUILD_DIR:-$EZIO_SOURCE_DIR/build}
EZIOCTL=$EZIO_BUILD_DIR/cli/ezioctl
PY=/usr/bin/python3

fail() {
    echo "FAIL: $*" >&2
    [ -f "$TMP/fake.log" ] && { echo "----- fake eziod log" >&2; tail -20 "$TMP/fake.log" >&2; }
    exit 1
}
ok() { echo "ok - $*"; }

[ -x "$EZIOCTL" ] || fail "ezioctl is not built: $EZIOCTL (set EZIO_BUILD_DIR)"
"$PY" -c 'import dbus, dbus.service, dbus.mainloop.glib; from gi.repository import GLib' ||
    fail "python3-dbus / python3-gi missing (scripts/install-deps.sh)"
command -v dbus-daemon >/dev/null || fail "dbus-daemon missing (scripts/install-deps.sh)"

TMP=$(mktemp -d /tmp/ezio-cli-bus.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP"

# --- a private bus ------------------------------------------------------------------
cat >bus.conf <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$TMP/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$TMP/bus.conf" --nofork --nosyslog >bus.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$TMP/bus" ] && break; sleep 0.05; done
[ -S "$TMP/bus" ] || fail "private dbus-daemon did not start: $(cat bus.log)"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$TMP/bus"
export DBUS_SESSION_BUS_ADDRESS="unix:path=$TMP/no-session-bus"

# --- the stand-in eziod -----------------------------------------------------------------
cat >fake_eziod.py <<'PYEOF'
"""A scripted eziod for client tests. Jobs follow the word in the target:
fail (IoError at 50%), slow (1% per tick), busy/denied/garbage (method
errors); anything else completes in a few ticks. Options are checked like
eziod does (unknown key or wrong type: InvalidArgs) and logged as JSON
{key: [signature, value]} to argv[1], with the target, one line per call."""
import json
import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

NAME = "org.ezio.Ezio1"
ROOT = "/org/ezio/Ezio1"
MGR = "org.ezio.Ezio1.Manager"
JOB = "org.ezio.Ezio1.Job"
PROPS = "org.freedesktop.DBus.Properties"
OM = "org.freedesktop.DBus.ObjectManager"
E = "org.ezio.Ezio1.Error."
TICK_MS = 100
TOTAL = 64 << 20

DEPLOY_KEYS = {"peers": "as", "verify": "b", "seed_after": "s", "max_upload_rate": "u",
               "max_download_rate": "u", "max_connections": "u", "sequential": "b",
               "force": "b", "file": "b"}
SEED_KEYS = {k: DEPLOY_KEYS[k] for k in
             ("peers", "verify", "max_upload_rate", "max_connections", "force", "file")}


class Error(dbus.DBusException):
    def __init__(self, name, message):
        full = name if "." in name else E + name
        super().__init__(message, name=full)


def signature(v):
    if isinstance(v, dbus.Boolean):
        return "b"
    if isinstance(v, dbus.String):
        return "s"
    if isinstance(v, dbus.UInt32):
        return "u"
    if isinstance(v, dbus.UInt64):
        return "t"
    if isinstance(v, dbus.Int32):
        return "i"
    if isinstance(v, dbus.Int64):
        return "x"
    if isinstance(v, dbus.Double):
        return "d"
    if isinstance(v, dbus.Array):
        return "a" + (v.signature or "?")
    return "?"


def plain(v):
    if isinstance(v, dbus.Boolean):
        return bool(v)
    if isinstance(v, dbus.Array):
        return [plain(x) for x in v]
    if isinstance(v, (dbus.String, str)):
        return str(v)
    if isinstance(v, dbus.Double):
        return float(v)
    return int(v)


class Job(dbus.service.Object):
    def __init__(self, manager, n, op, target, options, script):
        self.path = "%s/job/%d" % (ROOT, n)
        super().__init__(manager.connection, self.path)  # dbus.service.Object.connection
        self.manager = manager
        self.script = script
        self.ticks = 0
        self.seed_after = str(options.get("seed_after", "none"))
        now = int(time.time() * 1e6)
        self.p = {
            "Operation": dbus.String(op), "State": dbus.String("queued"),
            "Progress": dbus.Double(0.0), "BytesDone": dbus.UInt64(0),
            "BytesTotal": dbus.UInt64(TOTAL), "DownloadRate": dbus.UInt64(0),
            "UploadRate": dbus.UInt64(0), "Peers": dbus.UInt32(0),
            "Target": dbus.String(target), "Name": dbus.String("sda1"),
            "InfoHash": dbus.String("ab" * 20), "StartTime": dbus.UInt64(now),
            "ExpectedEndTime": dbus.UInt64(0), "LastError": dbus.String(""),
            "ErrorName": dbus.String(""),
            "Options": dbus.Dictionary(options, signature="sv"),
        }

    def props(self):
        return dbus.Dictionary(self.p, signature="sv")

    def set(self, **changes):
        typed = {}
        for k, v in changes.items():
            typed[k] = type(self.p[k])(v)
            self.p[k] = typed[k]
        self.PropertiesChanged(JOB, dbus.Dictionary(typed, signature="sv"), dbus.Array([], signature="s"))

    def final(self):
        return self.p["State"] in ("completed", "failed", "cancelled")

    def progress(self, fraction, rate):
        fraction = min(fraction, 1.0)
        left = (1.0 - fraction) * TOTAL
        self.set(State="downloading", Progress=fraction, BytesDone=int(fraction * TOTAL),
                 DownloadRate=rate, Peers=3,
                 ExpectedEndTime=int((time.time() + left / rate) * 1e6))

    def tick(self):
        state = self.p["State"]
        if self.final() or state == "paused":
            return
        self.ticks += 1
        t = self.ticks
        if self.p["Operation"] == "seed":
            self.set(State="seeding", UploadRate=1 << 20 + t % 4, Peers=2)
            return
        if t == 1:
            self.set(State="checking")
        elif self.script == "slow":
            if self.p["Progress"] < 1.0:
                self.progress(self.p["Progress"] + 0.01, 10 << 20)
            else:
                self.finish()
        elif self.script == "fail" and t >= 4:
            msg = "write error on %s at offset 33554432: Input/output error" % self.p["Target"]
            self.set(State="failed", LastError=msg, ErrorName=E + "IoError", DownloadRate=0, Peers=0)
            self.Completed(False, msg)
        elif t <= 5:
            self.progress((t - 1) * 0.25, 100 << 20)
        elif t == 6:
            self.set(State="finishing", DownloadRate=0)
        elif t == 7:
            self.finish()

    def finish(self):
        msg = "deployed sda1 to %s" % self.p["Target"]
        if self.seed_after != "none":
            self.set(State="seeding", Progress=1.0, BytesDone=TOTAL, DownloadRate=0)
        else:
            self.set(State="completed", Progress=1.0, BytesDone=TOTAL, DownloadRate=0, Peers=0,
                     ExpectedEndTime=0)
        self.Completed(True, msg)

    @dbus.service.method(JOB)
    def Pause(self):
        if self.final():
            raise Error("NotSupported", "job is finished")
        self.set(State="paused", DownloadRate=0)

    @dbus.service.method(JOB)
    def Resume(self):
        if self.final():
            raise Error("NotSupported", "job is finished")
        if self.p["State"] == "paused":
            self.set(State="downloading")

    @dbus.service.method(JOB, in_signature="a{sv}")
    def Cancel(self, options):
        if options:
            raise Error("InvalidArgs", "Unsupported key '%s'" % list(options)[0])
        if self.final():
            self.manager.remove(self)
            return
        self.set(State="cancelled", LastError="cancelled by a caller", ErrorName=E + "Cancelled",
                 DownloadRate=0, Peers=0)
        self.Completed(False, "cancelled by a caller")

    @dbus.service.signal(JOB, signature="bs")
    def Completed(self, success, message):
        pass

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, iface, name):
        return self.p[name]

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return self.props() if iface == JOB else {}

    @dbus.service.signal(PROPS, signature="sa{sv}as")
    def PropertiesChanged(self, iface, changed, invalidated):
        pass


class Manager(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, ROOT)
        self.log = log
        self.jobs = {}
        self.next = 1
        GLib.timeout_add(TICK_MS, self.tick)

    def tick(self):
        for job in list(self.jobs.values()):
            job.tick()
        return True

    def remove(self, job):
        del self.jobs[job.path]
        job.remove_from_connection()
        self.InterfacesRemoved(job.path, dbus.Array([JOB], signature="s"))

    def start(self, op, torrent, target, options, keys):
        with open(self.log, "a") as f:
            f.write(json.dumps({"op": op, "target": str(target),
                                "options": {str(k): [signature(v), plain(v)] for k, v in options.items()}},
                               sort_keys=True) + "\n")
        for k, v in options.items():
            if k not in keys:
                raise Error("InvalidArgs", "Unsupported key '%s'" % k)
            if signature(v) != keys[k]:
                raise Error("InvalidArgs", "option '%s' must be of type %s, not %s" % (k, keys[k], signature(v)))
        if bytes(torrent).startswith(b"garbage"):
            raise Error("InvalidTorrent", "torrent does not parse: expected a dictionary")
        for word, name, msg in (("busy", "TargetBusy", "%s is mounted" % target),
                                ("denied", "org.freedesktop.DBus.Error.AccessDenied", "Rejected send message")):
            if word in target:
                raise Error(name, msg)
        script = next((w for w in ("fail", "slow") if w in target), "fast")
        job = Job(self, self.next, op, target, options, script)
        self.next += 1
        self.jobs[job.path] = job
        self.InterfacesAdded(job.path, {JOB: job.props()})
        return dbus.ObjectPath(job.path)

    @dbus.service.method(MGR, in_signature="aysa{sv}", out_signature="o", byte_arrays=True)
    def Deploy(self, torrent, target, options):
        return self.start("deploy", torrent, target, options, DEPLOY_KEYS)

    @dbus.service.method(MGR, in_signature="aysa{sv}", out_signature="o", byte_arrays=True)
    def Seed(self, torrent, source, options):
        return self.start("seed", torrent, source, options, SEED_KEYS)

    @dbus.service.method(MGR, out_signature="ao")
    def ListJobs(self):
        return dbus.Array([dbus.ObjectPath(p) for p in self.jobs], signature="o")

    def mprops(self):
        return dbus.Dictionary({"Version": dbus.String("0.0-fake"), "ListenPort": dbus.UInt32(6881),
                                "Jobs": self.ListJobs()}, signature="sv")

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, iface, name):
        return self.mprops()[name]

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, iface):
        return self.mprops() if iface == MGR else {}

    @dbus.service.method(OM, out_signature="a{oa{sa{sv}}}")
    def GetManagedObjects(self):
        return {dbus.ObjectPath(p): {JOB: j.props()} for p, j in self.jobs.items()}

    @dbus.service.signal(OM, signature="oa{sa{sv}}")
    def InterfacesAdded(self, path, interfaces):
        pass

    @dbus.service.signal(OM, signature="oas")
    def InterfacesRemoved(self, path, interfaces):
        pass


dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()
manager = Manager(bus, sys.argv[1])
name = dbus.service.BusName(NAME, bus)
GLib.MainLoop().run()
PYEOF

start_fake() {
    "$PY" fake_eziod.py "$TMP/options.log" >>fake.log 2>&1 &
    FAKE=$!
    PIDS+=($FAKE)
    for _ in $(seq 100); do
        "$EZIOCTL" status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "fake eziod did not come up"
}
start_fake

# run CODE ezioctl-args...: runs ezioctl, checks the exit status, keeps
# stdout in $OUT and stderr in $ERR.
run() {
    local code=$1 rc=0
    shift
    "$EZIOCTL" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
    OUT=$(cat "$TMP/out")
    ERR=$(cat "$TMP/err")
    [ "$rc" = "$code" ] || fail "ezioctl $*: exit $rc, expected $code; stdout: $OUT; stderr: $ERR"
}
# pyjson EXPR: evaluates EXPR with j = the JSON on stdin; fails when false.
pyjson() { "$PY" -c "import json, sys; j = json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }
last_options() { tail -1 "$TMP/options.log"; }
state_of() { "$EZIOCTL" --json status "$1" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["State"])'; }
wait_state() {
    local job=$1 want=$2 s=""
    for _ in $(seq 100); do
        s=$(state_of "$job")
        [[ $s =~ ^($want)$ ]] && return 0
        sleep 0.05
    done
    fail "job $job is '$s', expected $want"
}

printf 'd8:announce0:4:infod4:name4:sda1ee' >t.torrent
printf 'garbage' >garbage.torrent

# --- manager, empty job list ---------------------------------------------------------
run 0 --json status
pyjson 'j["Version"] == "0.0-fake" and j["ListenPort"] == 6881 and j["Jobs"] == []' <<<"$OUT" ||
    fail "status --json: $OUT"
run 0 status
grep -q "eziod 0.0-fake on the system bus, BitTorrent port 6881" <<<"$OUT" || fail "status: $OUT"
grep -q "No jobs." <<<"$OUT" || fail "status without jobs: $OUT"
run 0 jobs --json
[ "$OUT" = "[]" ] || fail "jobs --json without jobs: $OUT"
run 0 version
[ "$OUT" = "$(printf 'ezioctl %s\neziod 0.0-fake' "$("$EZIOCTL" --version | cut -d' ' -f2)")" ] ||
    fail "version: $OUT"
ok "manager status, version and an empty job list"

# --- options on the wire ------------------------------------------------------------------
run 0 deploy --file t.torrent disk.img
grep -q "^Started deploy job 1 (/org/ezio/Ezio1/job/1)" <<<"$OUT" || fail "deploy output: $OUT"
[ "$(last_options)" = "{\"op\": \"deploy\", \"options\": {\"file\": [\"b\", true]}, \"target\": \"$TMP/disk.img\"}" ] ||
    fail "plain deploy sent: $(last_options)"
run 0 --json deploy --file t.torrent disk.img --peer 10.0.0.1:6881 --peer '[::1]:7000' --verify \
    --seed-after 10m --max-upload-rate 1M --max-download-rate 2048 --max-connections 40 --sequential --force
pyjson 'j == {"Path": "/org/ezio/Ezio1/job/2", "Id": 2}' <<<"$OUT" || fail "deploy --json: $OUT"
last_options | pyjson 'j["options"] == {
    "peers": ["as", ["10.0.0.1:6881", "[::1]:7000"]], "verify": ["b", True],
    "seed_after": ["s", "600"], "max_upload_rate": ["u", 1048576], "max_download_rate": ["u", 2048],
    "max_connections": ["u", 40], "sequential": ["b", True], "force": ["b", True], "file": ["b", True]}' ||
    fail "deploy with every option sent: $(last_options)"
run 0 -q deploy --file --seed-after forever t.torrent disk.img
[ -z "$OUT" ] || fail "-q deploy printed: $OUT"
last_options | pyjson 'j["options"]["seed_after"] == ["s", "forever"]' || fail "--seed-after forever: $(last_options)"
run 0 -q deploy --file --seed-after none t.torrent disk.img
last_options | pyjson 'j["options"]["seed_after"] == ["s", "none"]' || fail "--seed-after none: $(last_options)"
run 0 -q seed --verify --max-upload-rate 10M --max-connections 8 --peer host.lan:1 t.torrent t.torrent
last_options | pyjson 'j["op"] == "seed" and j["target"].endswith("/t.torrent") and j["options"] == {
    "verify": ["b", True], "max_upload_rate": ["u", 10485760], "max_connections": ["u", 8],
    "peers": ["as", ["host.lan:1"]]}' || fail "seed sent: $(last_options)"
ok "deploy/seed send every option with its documented key and D-Bus type"

# --- listing -----------------------------------------------------------------------------
wait_state 1 completed
run 0 jobs --json
pyjson 'len(j) == 5 and [x["Id"] for x in j] == [1, 2, 3, 4, 5] and all(x["Path"] == "/org/ezio/Ezio1/job/%d" % x["Id"] for x in j)
        and j[0]["State"] == "completed" and j[0]["BytesTotal"] == 64 << 20 and j[0]["Options"] == {"file": True}
        and j[4]["Operation"] == "seed" and isinstance(j[0]["Progress"], float)' <<<"$OUT" || fail "jobs --json: $OUT"
run 0 jobs
grep -qE '^JOB +OPERATION +STATE +PROGRESS +RATE +PEERS +TARGET +NAME$' <<<"$OUT" || fail "jobs table header: $OUT"
grep -qE "^ *1 +deploy +completed +100.0% +0 B/s +0 +$TMP/disk.img +sda1$" <<<"$OUT" || fail "jobs table row: $OUT"
grep -q "^5 jobs listed.$" <<<"$OUT" || fail "jobs legend: $OUT"
run 0 -q jobs
[ "$OUT" = "$(printf '1\n2\n3\n4\n5')" ] || fail "jobs -q: $OUT"
run 0 status 1
grep -q "^Job 1 (/org/ezio/Ezio1/job/1)$" <<<"$OUT" && grep -qE "^ +State: completed$" <<<"$OUT" &&
    grep -qE "^ +Target: $TMP/disk.img$" <<<"$OUT" && grep -qE "^ +Options: file=true$" <<<"$OUT" ||
    fail "status 1: $OUT"
run 0 --json status /org/ezio/Ezio1/job/2
pyjson 'j["Id"] == 2 and j["Options"]["peers"] == ["10.0.0.1:6881", "[::1]:7000"] and j["Options"]["max_upload_rate"] == 1048576' <<<"$OUT" ||
    fail "status --json job/2: $OUT"
ok "jobs and status, as tables and as JSON"

# --- errors from eziod: message once, exit status from the error name ----------------------
run 3 pause 99
[ "$ERR" = "Failed to pause job: no such job: 99" ] || fail "pause 99: $ERR"
run 3 status 99
run 3 watch 99
run 3 cancel /org/ezio/Ezio1/job/99
run 2 deploy --file garbage.torrent disk.img
[ "$ERR" = "Failed to deploy: torrent does not parse: expected a dictionary" ] || fail "garbage torrent: $ERR"
run 4 deploy --file t.torrent busy.img
[ "$ERR" = "Failed to deploy: $TMP/busy.img is mounted" ] || fail "busy target: $ERR"
run 7 deploy --file t.torrent denied.img
run 1 pause 1
grep -q "job is finished" <<<"$ERR" || fail "pause of a finished job: $ERR"
ok "method errors map to the documented exit statuses"

# --- --wait through a pipe: a line per state change ------------------------------------------
run 0 deploy --wait --file t.torrent wait.img
n=$(sed -n 's/^Job \([0-9]*\) completed: .*/\1/p' <<<"$OUT")
[ -n "$n" ] || fail "deploy --wait: no completion line: $OUT"
grep -q "^Job $n completed: deployed sda1 to $TMP/wait.img$" <<<"$OUT" || fail "deploy --wait: $OUT"
for s in checking downloading finishing; do
    [ "$(grep -c "^job $n deploy $TMP/wait.img: $s" <<<"$OUT")" = 1 ] || fail "deploy --wait: not one '$s' line: $OUT"
done
[ "$(state_of "$n")" = completed ] || fail "job $n not completed after --wait"
ok "deploy --wait (pipe): one line per state change, exit 0 on completion"

run 0 --json deploy --wait --file t.torrent wait.img
pyjson 'j["State"] == "completed" and j["Progress"] == 1.0 and j["Path"].startswith("/org/ezio/Ezio1/job/")' <<<"$OUT" ||
    fail "deploy --wait --json: $OUT"
run 0 -q deploy --wait --file t.torrent wait.img
[ -z "$OUT" ] || fail "-q deploy --wait printed: $OUT"
run 0 deploy --wait --seed-after forever --file t.torrent wait.img
grep -q "completed: deployed sda1 to .*; it keeps seeding" <<<"$OUT" || fail "--wait --seed-after: $OUT"
ok "deploy --wait --json, -q, and --seed-after (ends when deployed, job keeps seeding)"

run 5 deploy --wait --file t.torrent fail.img
grep -qx "Failed to deploy: job [0-9]* failed: write error on $TMP/fail.img at offset 33554432: Input/output error" <<<"$ERR" ||
    fail "failing deploy --wait: $ERR"
grep -q "failed" <<<"$OUT" || fail "failing deploy --wait printed no failed line: $OUT"
ok "deploy --wait of a failing job exits 5 (ErrorName IoError) with the job's error"

# --- --wait on a terminal: progress bar, terminal restored -------------------------------------
rc=0
script -qec "'$EZIOCTL' deploy --wait --file t.torrent tty.img" /dev/null >tty.out 2>&1 || rc=$?
[ "$rc" = 0 ] || fail "deploy --wait on a tty: exit $rc: $(cat -v tty.out)"
grep -q "Deploying sda1 to $TMP/tty.img (job" tty.out || fail "tty: no header: $(cat -v tty.out)"
grep -q '\[#*-*\] *[0-9.]*%.*MiB/s  ETA .*3 peers' tty.out || fail "tty: no progress bar: $(cat -v tty.out)"
grep -q $'\033\[?25h' tty.out || fail "tty: cursor not shown again: $(cat -v tty.out)"
grep -q "completed: deployed sda1" tty.out || fail "tty: no completion: $(cat -v tty.out)"
ok "deploy --wait on a terminal draws a progress bar and restores the cursor"

# --- Ctrl-C while waiting: the job goes on -------------------------------------------------------
# A real Ctrl-C: ^C typed into the terminal, turned into SIGINT by the pty.
mkfifo keys
script -qec "'$EZIOCTL' deploy --wait --file t.torrent slow-int.img" /dev/null <keys >int.out 2>&1 &
spid=$!
exec 3>keys
for _ in $(seq 100); do grep -q "Deploying" int.out 2>/dev/null && break; sleep 0.05; done
job=$("$EZIOCTL" -q jobs | tail -1)
wait_state "$job" downloading
printf '\003' >&3
rc=0
wait "$spid" || rc=$?
exec 3>&-
[ "$rc" = 130 ] || fail "Ctrl-C during --wait: exit $rc, expected 130: $(cat -v int.out)"
grep -q "Stopped waiting; job $job continues (ezioctl cancel $job stops it)." int.out || fail "Ctrl-C message: $(cat -v int.out)"
grep -q $'\033\[?25h' int.out || fail "Ctrl-C: cursor not restored: $(cat -v int.out)"
[ "$(state_of "$job")" = downloading ] || fail "Ctrl-C touched the job: $(state_of "$job")"
ok "Ctrl-C stops waiting (130), restores the terminal, leaves job $job running"

# --- pause, resume, watch, cancel on that slow job --------------------------------------------------
run 0 pause "$job"
wait_state "$job" paused
run 0 resume "/org/ezio/Ezio1/job/$job"
wait_state "$job" downloading
"$EZIOCTL" --json watch "$job" >watch.out 2>watch.err &
wpid=$!
"$EZIOCTL" watch "$job" >watch-lines.out 2>&1 &
wlpid=$!
sleep 0.5
run 0 cancel "$job"
rc=0
wait "$wpid" || rc=$?
[ "$rc" = 6 ] || fail "watch of a cancelled job: exit $rc: $(cat watch.out watch.err)"
"$PY" - watch.out "$job" <<'PY' || fail "watch --json events: $(cat watch.out)"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
job = int(sys.argv[2])
assert events[0]["Event"] == "snapshot" and events[0]["Properties"]["State"] == "downloading", events[0]
assert all(e["Id"] == job for e in events), events
changed = [e for e in events if e["Event"] == "changed"]
assert changed and any("Progress" in e["Properties"] for e in changed), events
assert any(e["Properties"].get("State") == "cancelled" for e in changed), events
assert events[-1]["Event"] in ("completed", "changed"), events[-1]
assert any(e["Event"] == "completed" and e["Success"] is False for e in events), events
PY
grep -qx "Failed to watch: job $job cancelled: cancelled by a caller" watch.err || fail "watch error line: $(cat watch.err)"
rc=0
wait "$wlpid" || rc=$?
[ "$rc" = 6 ] || fail "watch (lines) of a cancelled job: exit $rc"
grep -q "^job $job deploy $TMP/slow-int.img: downloading [0-9.]*% " watch-lines.out || fail "watch lines: $(cat watch-lines.out)"
run 0 cancel "$job"
run 3 status "$job"
ok "pause, resume, watch JOB (--json events and lines, exit 6 when cancelled), cancel, cancel again removes"

# --- cancel while another ezioctl waits ------------------------------------------------------------------
"$EZIOCTL" deploy --wait --file t.torrent slow-cancel.img >cw.out 2>cw.err &
cwpid=$!
for _ in $(seq 100); do grep -q "^job [0-9]* deploy .*slow-cancel.img: downloading" cw.out && break; sleep 0.05; done
job=$(sed -n 's/^job \([0-9]*\) .*/\1/p' cw.out | head -1)
[ -n "$job" ] || fail "no job line from the waiting ezioctl: $(cat cw.out cw.err)"
run 0 cancel "$job"
rc=0
wait "$cwpid" || rc=$?
[ "$rc" = 6 ] || fail "deploy --wait of a job cancelled elsewhere: exit $rc: $(cat cw.err)"
grep -qx "Failed to deploy: job $job cancelled: cancelled by a caller" cw.err || fail "cancelled --wait: $(cat cw.err)"
ok "deploy --wait of a job cancelled by someone else exits 6"

# --- watch all jobs -------------------------------------------------------------------------------------
"$EZIOCTL" --json watch >all.out 2>all.err &
apid=$!
sleep 0.5
run 0 -q deploy --file t.torrent watched.img
for _ in $(seq 100); do grep -q '"Event":"completed"' all.out && break; sleep 0.05; done
kill -INT "$apid"
rc=0
wait "$apid" || rc=$?
[ "$rc" = 0 ] || fail "watch (all) after Ctrl-C: exit $rc: $(cat all.err)"
"$PY" - all.out <<'PY' || fail "watch (all) --json: $(cat all.out)"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
kinds = [e["Event"] for e in events]
assert kinds.count("snapshot") >= 5, kinds
added = [e for e in events if e["Event"] == "added"]
assert len(added) == 1 and added[0]["Properties"]["Target"].endswith("/watched.img"), added
new = added[0]["Id"]
assert any(e["Event"] == "completed" and e["Id"] == new and e["Success"] for e in events), events
assert any(e["Event"] == "changed" and e["Id"] == new and e["Properties"].get("State") == "completed" for e in events)
PY
"$EZIOCTL" watch >all-lines.out 2>&1 &
apid=$!
sleep 0.5
run 0 cancel 1
for _ in $(seq 100); do grep -q "^job 1 removed$" all-lines.out && break; sleep 0.05; done
kill -INT "$apid"
wait "$apid" || fail "watch (all, lines) after Ctrl-C failed"
grep -q "^job 1 removed$" all-lines.out || fail "watch (all): removal not shown: $(cat all-lines.out)"
ok "watch without JOB follows existing and new jobs until Ctrl-C (exit 0)"

# --- the session bus ----------------------------------------------------------------------------------
DBUS_SESSION_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS DBUS_SYSTEM_BUS_ADDRESS=unix:path=$TMP/none \
    "$EZIOCTL" --session -q jobs >/dev/null || fail "--session jobs failed"
ok "--session talks to the session bus"

# --- eziod goes away while we wait; then it is not running ------------------------------------------------
"$EZIOCTL" deploy --wait --file t.torrent slow-gone.img >gone.out 2>gone.err &
gpid=$!
for _ in $(seq 100); do grep -q "slow-gone.img: downloading" gone.out && break; sleep 0.05; done
kill "$FAKE"
wait "$FAKE" 2>/dev/null || true
rc=0
wait "$gpid" || rc=$?
[ "$rc" = 1 ] || fail "--wait when eziod exits: exit $rc: $(cat gone.err)"
grep -qx "Failed to deploy: eziod went away while following job [0-9]*" gone.err || fail "eziod gone: $(cat gone.err)"
run 1 jobs
grep -q "^Failed to list jobs: eziod is not running" <<<"$ERR" || fail "not running: $ERR"
ok "eziod exiting ends --wait with status 1; without eziod: 'eziod is not running'"
echo PASS
