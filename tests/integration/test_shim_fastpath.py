"""The shim's runc shortcuts (docs/shim.md "Fewer runc processes"): Start reads runc's exec.fifo itself,
Kill signals init with kill(2) and Delete removes the cgroups and runc's state dir, unless a hook, a paused
container or a foreign pid namespace needs runc. A wrapper named `runc` logs each subcommand the shim runs, so the tests see which path was taken."""

import glob
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from conftest import require_binary  # noqa: E402
from test_shim_direct import (EventsServer, Ttrpc, _field, _parse, _read_fifo, _vfield,  # noqa: E402,F401
                              make_oci_bundle, shim, start, workdir)

RUNC = "/usr/sbin/runc"


def _wrapper(workdir):
    """<workdir>/bin/runc: logs its subcommand (argv after the global flags), then execs the real runc."""
    d = os.path.join(workdir, "bin")
    os.makedirs(d)
    path = os.path.join(d, "runc")
    log = os.path.join(workdir, "runc-calls")
    with open(path, "w") as f:
        f.write('#!/bin/sh\nfor a; do case $a in --*|json|/*) ;; *) echo "$a" >> %s; break;; esac; done\n'
                'exec %s "$@"\n' % (log, RUNC))
    os.chmod(path, 0o755)
    return path, log


def _calls(log):
    try:
        with open(log) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def _create(c, cid, bundle, binary, out_fifo):
    anyopts = _field(1, "containerd.runc.v1.Options") + _field(2, _field(6, binary))
    code, msg, payload = c.call("Create", _field(1, cid) + _field(2, bundle) + _field(6, out_fifo) +
                                _field(10, anyopts))
    assert code == 0, msg
    return _parse(payload)[1][0]


def _gone(workdir, cid):
    """runc's traces of cid are gone: state dir and every cgroup."""
    assert not os.path.exists(os.path.join(workdir, "runc", "ns1", cid))
    left = glob.glob("/sys/fs/cgroup/*/krill-shim-test/" + cid) + glob.glob("/sys/fs/cgroup/krill-shim-test/" + cid)
    assert left == [], left
    r = subprocess.run([RUNC, "--root", os.path.join(workdir, "runc", "ns1"), "state", cid],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode != 0 and b"does not exist" in r.stderr, r.stderr


def _cleanup(workdir, cids):
    for cid in cids:
        subprocess.run([RUNC, "--root", os.path.join(workdir, "runc", "ns1"), "delete", "--force", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for d in glob.glob("/sys/fs/cgroup/*/krill-shim-test") + glob.glob("/sys/fs/cgroup/krill-shim-test"):
        for sub in [os.path.join(d, cid) for cid in cids] + [d]:
            try:
                os.rmdir(sub)
            except OSError:
                pass


def test_fast_start_and_kill(shim, workdir):
    """No hooks: only `runc create` runs (no start, kill or delete); SIGTERM reaches init (143), SIGKILL with all=true
    in the container's own pid namespace ends it (137), and a second Kill is containerd's not-found error."""
    require_binary(RUNC, "runc")
    binary, log = _wrapper(workdir)
    cids = ["fast-term", "fast-all"]
    bt = make_oci_bundle(workdir, cids[0], ["sh", "-c", "trap 'echo got-term; exit 143' TERM; echo ready-$0; "
                                            "while :; do sleep 0.1; done"])
    bk = make_oci_bundle(workdir, cids[1], ["sleep", "1000"])
    ev = EventsServer(os.path.join(workdir, "d.sock.ttrpc"))
    fds = []
    fifos = {}
    for cid in cids:
        fifos[cid] = os.path.join(workdir, cid + "-stdout")
        os.mkfifo(fifos[cid])
        fds.append(os.open(fifos[cid], os.O_RDONLY | os.O_NONBLOCK))
    r, logfd, _ = start(shim, workdir, cids[0], bt)
    fds.append(logfd)
    assert r.returncode == 0, r.stderr
    c = Ttrpc(r.stdout.decode()[len("unix://"):])
    try:
        pid = _create(c, cids[0], bt, binary, fifos[cids[0]])
        fifo = os.path.join(workdir, "runc", "ns1", cids[0], "exec.fifo")
        assert os.path.exists(fifo)
        code, msg, payload = c.call("Start", _field(1, cids[0]))
        assert code == 0, msg
        assert _parse(payload)[1][0] == pid
        assert b"ready-sh" in _read_fifo(fds[0], b"ready-sh")
        assert not os.path.exists(fifo)  # removed, as runc start does: runc now sees "running"
        st = json.loads(subprocess.run([RUNC, "--root", os.path.join(workdir, "runc", "ns1"), "state", cids[0]],
                                       stdout=subprocess.PIPE, check=True).stdout)
        assert st["status"] == "running" and st["pid"] == pid
        code, msg, payload = c.call("State", _field(1, cids[0]))
        assert code == 0 and _parse(payload)[4] == [2]  # RUNNING
        code, msg, _ = c.call("Start", _field(1, cids[0]))
        assert code != 0 and "running" in msg, (code, msg)

        code, msg, _ = c.call("Kill", _field(1, cids[0]) + _vfield(3, 15))
        assert code == 0, msg
        code, msg, payload = c.call("Wait", _field(1, cids[0]))
        assert code == 0 and _parse(payload)[1] == [143], (code, msg)
        assert b"got-term" in _read_fifo(fds[0], b"got-term")
        code, msg, _ = c.call("Kill", _field(1, cids[0]) + _vfield(3, 9))
        assert code == 5 and msg == "process already finished: not found", (code, msg)
        code, msg, payload = c.call("Delete", _field(1, cids[0]))
        assert code == 0 and _parse(payload)[2] == [143], (code, msg)
        _gone(workdir, cids[0])

        _create(c, cids[1], bk, binary, fifos[cids[1]])
        assert c.call("Start", _field(1, cids[1]))[0] == 0
        code, msg, _ = c.call("Kill", _field(1, cids[1]) + _vfield(3, 9) + _vfield(4, 1))
        assert code == 0, msg
        code, msg, payload = c.call("Wait", _field(1, cids[1]))
        assert code == 0 and _parse(payload)[1] == [137], (code, msg)
        code, msg, _ = c.call("Kill", _field(1, cids[1]) + _vfield(3, 15))
        assert code == 5 and msg == "process already finished: not found", (code, msg)
        assert c.call("Delete", _field(1, cids[1]))[0] == 0
        _gone(workdir, cids[1])

        calls = _calls(log)
        assert calls == ["create", "create"], calls
        assert c.call("Shutdown", _field(1, cids[0]))[0] == 0
    finally:
        c.close()
        for fd in fds:
            os.close(fd)
        ev.close()
        _cleanup(workdir, cids)


def test_poststart_hook_and_slow_kill(shim, workdir):
    """A poststart hook makes Start go through `runc start` (runc >= 1.2 runs the hook there) and a poststop
    hook makes Delete go through `runc delete`, and both hooks run; a SIGTERM with all=true and a Kill of a
    paused container also stay with runc."""
    require_binary(RUNC, "runc")
    binary, log = _wrapper(workdir)
    cid = "hooked"
    b = make_oci_bundle(workdir, cid, ["sleep", "1000"])
    mark = os.path.join(workdir, "poststart-state.json")
    stop_mark = os.path.join(workdir, "poststop-state.json")
    with open(os.path.join(b, "config.json")) as f:
        spec = json.load(f)
    spec["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > " + mark]}],
                     "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > " + stop_mark]}]}
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(spec, f)
    ev = EventsServer(os.path.join(workdir, "d.sock.ttrpc"))
    out = os.path.join(workdir, cid + "-stdout")
    os.mkfifo(out)
    fds = [os.open(out, os.O_RDONLY | os.O_NONBLOCK)]
    r, logfd, _ = start(shim, workdir, cid, b)
    fds.append(logfd)
    assert r.returncode == 0, r.stderr
    c = Ttrpc(r.stdout.decode()[len("unix://"):])
    try:
        pid = _create(c, cid, b, binary, out)
        code, msg, _ = c.call("Start", _field(1, cid))
        assert code == 0, msg
        assert "start" in _calls(log), _calls(log)
        with open(mark) as f:
            assert json.load(f)["id"] == cid  # the hook ran with the container's state on stdin
        code, msg, _ = c.call("Pause", _field(1, cid))
        assert code == 0, msg
        code, msg, _ = c.call("Kill", _field(1, cid) + _vfield(3, 15))
        assert code == 0, msg
        assert _calls(log).count("kill") == 1, _calls(log)
        code, msg, _ = c.call("Resume", _field(1, cid))
        assert code == 0, msg
        code, msg, _ = c.call("Kill", _field(1, cid) + _vfield(3, 15) + _vfield(4, 1))
        assert code == 0, msg
        assert _calls(log).count("kill") == 2, _calls(log)
        code, msg, _ = c.call("Kill", _field(1, cid) + _vfield(3, 9))
        assert code == 0, msg
        assert _calls(log).count("kill") == 2, _calls(log)  # plain SIGKILL of a running init: kill(2)
        code, msg, payload = c.call("Wait", _field(1, cid))
        assert code == 0 and _parse(payload)[1] == [137], (code, msg)
        assert not os.path.exists(stop_mark)
        code, msg, payload = c.call("Delete", _field(1, cid))
        assert code == 0 and _parse(payload)[1] == [pid], (code, msg)
        assert _calls(log).count("delete") == 1, _calls(log)
        with open(stop_mark) as f:
            assert json.load(f)["id"] == cid
        _gone(workdir, cid)
        assert c.call("Shutdown", _field(1, cid))[0] == 0
    finally:
        c.close()
        for fd in fds:
            os.close(fd)
        ev.close()
        _cleanup(workdir, [cid])
