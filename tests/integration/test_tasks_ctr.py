"""tasks.v1/containers.v1 in krilld, driven by Debian's ctr (issue 6, daemon side).

One krilld per module, in a private mount namespace with a tmpfs on /run
(containerd-shim-runc-v2 hard-codes /run/containerd), with a wrapper for
containerd-shim-krill-v2 first on PATH that records every exec krilld makes of
the shim (the cost rule: `delete` only for a shim that died without cleanup).
"""

import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import build_dir, require_binary, skip_unless_root  # noqa: E402
import daemons  # noqa: E402

IMAGE = "docker.io/library/busybox:test"
KRILL = "io.containerd.krill.v2"
RUNC = "io.containerd.runc.v2"
RUN_COUNT = int(os.environ.get("KRILL_RUN_COUNT", "100"))


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)


class Events:
    """`ctr events` running in the background, lines collected by a thread."""

    def __init__(self, d):
        self.proc = subprocess.Popen([daemons.CTR, "--address", d.address, "events"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True)
        self.lines = []
        self.probes = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def topics(self, needle):
        with self.lock:
            return [ln.split()[5] for ln in self.lines if needle in ln and len(ln.split()) > 5]

    def wait(self, needle, topic, timeout=20):
        return wait_for(lambda: topic in self.topics(needle), timeout, "%s %s in %s" % (topic, needle, self.lines))

    def subscribed(self, env, name):
        """Create namespaces name-0, name-1, ... until ctr events shows one (then it is subscribed)."""
        n = 0
        deadline = time.monotonic() + 20
        while True:
            assert self.proc.poll() is None, "ctr events exited"
            ns = "%s-%d" % (name, n)
            assert env.ctr("namespaces", "create", ns).returncode == 0
            self.probes.append((env, ns))
            n += 1
            t = time.monotonic() + 0.2
            while time.monotonic() < t:
                if "/namespaces/create" in self.topics('"%s"' % ns):
                    return
                time.sleep(0.01)
            assert time.monotonic() < deadline, "ctr events never subscribed"

    def close(self):
        for env, ns in self.probes:
            env.ctr("namespaces", "rm", ns)
        self.probes = []
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def raw_delete(address, cid):
    """Tasks.Delete straight over gRPC (ctr checks the status first); returns the error text or None."""
    grpc = pytest.importorskip("grpc")
    b = cid.encode()
    req = b"\x0a" + bytes([len(b)]) + b  # DeleteTaskRequest{container_id}
    with grpc.insecure_channel("unix://" + address) as ch:
        call = ch.unary_unary("/containerd.services.tasks.v1.Tasks/Delete")
        try:
            call(req, metadata=[("containerd-namespace", "default")], timeout=10)
            return None
        except grpc.RpcError as e:
            return "%s: %s" % (e.code(), e.details())


class Env:
    def __init__(self, d, wrapdir):
        self.d = d
        self.wrapdir = wrapdir
        self.execlog = os.path.join(wrapdir, "execs")
        self.bundles = os.path.join(d.state, "io.containerd.runtime.v2.task", "default")
        self.lease_id_rejections = 0

    def ctr(self, *args, **kw):
        for _ in range(5):
            r = self.d.ctr(*args, **kw)
            # ctr's random lease IDs (leases.WithRandomID: base64url) may contain "-_" that krill's
            # metadata/leases.c rejects while containerd accepts them: a known bug outside this
            # module, counted here so it cannot hide, retried so it does not mask task behaviour.
            if r.returncode != 0 and "must match ^[A-Za-z0-9]" in r.stderr and "identifier" in r.stderr:
                self.lease_id_rejections += 1
                continue
            return r
        return r

    def shim_execs(self):
        try:
            with open(self.execlog) as f:
                return [ln.split() for ln in f.read().splitlines()]
        except OSError:
            return []

    def tasks(self):
        """{id: (pid, status)} from `ctr tasks ls`."""
        r = self.ctr("tasks", "ls")
        assert r.returncode == 0, r.stderr
        out = {}
        for ln in r.stdout.splitlines()[1:]:
            f = ln.split()
            if len(f) >= 3:
                out[f[0]] = (f[1], f[2])
        return out

    def status(self, cid):
        return self.tasks().get(cid, (None, None))[1]

    def shim_pid(self, cid):
        for pid in daemons.all_pids():
            cmd = daemons.proc_cmdline(pid)
            if cmd and "containerd-shim" in cmd[0] and "-id" in cmd and cmd[cmd.index("-id") + 1] == cid:
                return pid
        return None

    def cleanup(self, *cids):
        for c in cids:
            self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", c)
        for c in cids:
            wait_for(lambda: self.status(c) in (None, "STOPPED"), 20, c + " stopped")
            self.ctr("tasks", "rm", c)
            self.ctr("containers", "rm", c)


@pytest.fixture(scope="module")
def env(busybox_oci, tmp_path_factory):
    skip_unless_root()
    build = build_dir()
    require_binary(os.path.join(build, "src", "daemon", "krilld"), "krilld")
    shim = require_binary(os.path.join(build, "src", "shim", "containerd-shim-krill-v2"), "krill shim")
    wrapdir = str(tmp_path_factory.mktemp("shimwrap"))
    wrapper = os.path.join(wrapdir, "containerd-shim-krill-v2")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\necho "$@" >> %s/execs\nexec %s "$@"\n' % (wrapdir, shim))
    os.chmod(wrapper, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    d = daemons.KrillDaemon(build, log_level="debug", private_ns=True)
    d.env["PATH"] = wrapdir + ":" + d.env["PATH"]
    d.start(timeout=30, probe="version")
    try:
        r = d.ctr("tasks", "ls")
        if r.returncode != 0:
            pytest.fail("krilld does not serve tasks.v1: " + r.stderr.strip())
        e = Env(d, wrapdir)
        r = e.ctr("images", "import", "--all-platforms", busybox_oci, timeout=300)
        assert r.returncode == 0, r.stderr
        yield e
    finally:
        d.close()


def test_run_rm_krill_shim(env):
    before = len(env.shim_execs())
    r = env.ctr("run", "--rm", "--runtime", KRILL, IMAGE, "t1", "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    execs = env.shim_execs()[before:]
    # a clean run execs the shim exactly once (start): no `delete` for a shim that shut down cleanly
    assert [e for e in execs if "delete" in e] == [], execs
    assert len([e for e in execs if "start" in e]) == 1, execs
    assert not os.path.exists(os.path.join(env.bundles, "t1"))
    assert "t1" not in env.ctr("containers", "ls", "-q").stdout.split()


def test_run_rm_runc_shim(env):
    r = env.ctr("run", "--rm", "--runtime", RUNC, IMAGE, "t1r", "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    assert not os.path.exists(os.path.join(env.bundles, "t1r"))


@pytest.mark.parametrize("runtime", [KRILL, RUNC])
def test_exit_code(env, runtime):
    r = env.ctr("run", "--rm", "--runtime", runtime, IMAGE, "t2", "sh", "-c", "exit 7")
    assert r.returncode == 7, r.stderr


def test_detach_exec_restart_kill(env):
    ev = Events(env.d)
    try:
        ev.subscribed(env, "evprobe")
        r = env.ctr("run", "-d", "--runtime", KRILL, IMAGE, "t3", "sleep", "600")
        assert r.returncode == 0, r.stderr
        assert env.status("t3") == "RUNNING"
        pid = env.tasks()["t3"][0]
        r = env.ctr("tasks", "exec", "--exec-id", "e1", "t3", "echo", "x")
        assert (r.returncode, r.stdout) == (0, "x\n"), r.stderr
        # Delete of a running task fails like containerd's
        r = env.ctr("tasks", "rm", "t3")
        assert r.returncode != 0 and "must be stopped before deletion" in r.stderr, r.stderr
        # ctr refuses client-side; the server must refuse too (containerd: the shim's "cannot delete a
        # running process") and leave the task running
        err = raw_delete(env.d.address, "t3")
        assert err is not None and "running" in err, err
        assert env.status("t3") == "RUNNING"
        ev.wait("t3", "/tasks/exec-started")

        env.d.kill9()
        ev.proc.wait(10)
        t0 = time.monotonic()
        env.d.start(timeout=30, probe="version")
        assert time.monotonic() - t0 < 5
        assert env.tasks().get("t3") == (pid, "RUNNING")
        assert "t3" in env.ctr("containers", "ls", "-q").stdout.split()
    finally:
        ev.close()
    ev = Events(env.d)
    try:
        ev.subscribed(env, "evprobe2")
        r = env.ctr("tasks", "kill", "-s", "9", "t3")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: env.status("t3") == "STOPPED", 20, "t3 STOPPED")
        ev.wait("t3", "/tasks/exit")
        r = env.ctr("tasks", "rm", "t3")
        assert r.returncode == 0, r.stderr
        assert "exit code 137" in r.stdout + r.stderr, (r.stdout, r.stderr)
        ev.wait("t3", "/tasks/delete")
        r = env.ctr("containers", "rm", "t3")
        assert r.returncode == 0, r.stderr
        ev.wait("t3", "/containers/delete")
    finally:
        ev.close()


def test_events_run(env):
    ev = Events(env.d)
    try:
        ev.subscribed(env, "evprobe3")
        r = env.ctr("run", "--rm", "--runtime", KRILL, IMAGE, "t-ev", "true")
        assert r.returncode == 0, r.stderr
        ev.wait("t-ev", "/containers/delete")
        topics = ev.topics("t-ev")
        for t in ("/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete",
                  "/containers/delete"):
            assert t in topics, topics
        assert topics.index("/tasks/start") < topics.index("/tasks/exit") < topics.index("/containers/delete")
        r = env.ctr("containers", "create", IMAGE, "t-upd")
        assert r.returncode == 0, r.stderr
        r = env.ctr("containers", "label", "t-upd", "a=b")
        assert r.returncode == 0, r.stderr
        ev.wait("t-upd", "/containers/update")
        env.ctr("containers", "rm", "t-upd")
    finally:
        ev.close()


@pytest.mark.parametrize("runtime", [KRILL, RUNC])
def test_shim_killed_while_running(env, runtime):
    ev = Events(env.d)
    try:
        ev.subscribed(env, "evprobe4")
        r = env.ctr("run", "-d", "--runtime", runtime, IMAGE, "t5", "sleep", "600")
        assert r.returncode == 0, r.stderr
        spid = env.shim_pid("t5")
        assert spid
        tpid = int(env.tasks()["t5"][0])
        before = len(env.shim_execs())
        os.kill(spid, signal.SIGKILL)
        ev.wait("t5", "/tasks/exit")
        wait_for(lambda: not os.path.exists(os.path.join(env.bundles, "t5")), 20, "t5 bundle removed")
        assert env.status("t5") != "RUNNING"
        # the container's processes went with it
        wait_for(lambda: not daemons.pid_alive(tpid) or daemons.proc_cmdline(tpid) != ["sleep", "600"], 10,
                 "task process gone")
        # the dead shim's `delete` ran exactly once
        assert runtime != KRILL or len([e for e in env.shim_execs()[before:] if "delete" in e]) == 1, env.shim_execs()
        assert "t5" in env.ctr("containers", "ls", "-q").stdout.split()
        env.ctr("tasks", "rm", "t5")
        assert env.ctr("containers", "rm", "t5").returncode == 0
    finally:
        ev.close()


def test_shim_died_while_krilld_down(env):
    r = env.ctr("run", "-d", "--runtime", KRILL, IMAGE, "t6", "sleep", "600")
    assert r.returncode == 0, r.stderr
    r = env.ctr("run", "-d", "--runtime", KRILL, IMAGE, "t7", "sleep", "600")
    assert r.returncode == 0, r.stderr
    spid = env.shim_pid("t6")
    assert spid
    env.d.kill9()
    os.kill(spid, signal.SIGKILL)
    wait_for(lambda: not daemons.pid_alive(spid), 10, "shim gone")
    # a bundle whose address points to a dead socket: adoption must not stall start-up
    fake = os.path.join(env.bundles, "t-fake")
    os.makedirs(fake)
    with open(os.path.join(fake, "address"), "w") as f:
        f.write("unix://" + os.path.join(env.d.dir, "dead.sock"))
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(env.d.dir, "dead.sock"))
    s.close()
    # and one whose "shim" listens but never answers: Connect must time out without stalling the rest
    hung = os.path.join(env.bundles, "t-hung")
    os.makedirs(hung)
    with open(os.path.join(hung, "address"), "w") as f:
        f.write("unix://" + os.path.join(env.d.dir, "hung.sock"))
    hs = socket.socket(socket.AF_UNIX)
    hs.bind(os.path.join(env.d.dir, "hung.sock"))
    hs.listen(16)
    before = len(env.shim_execs())
    log_off = os.path.getsize(env.d.log)
    t0 = time.monotonic()
    env.d.start(timeout=30, probe="version")
    assert time.monotonic() - t0 < 3, "ctr version took %.2fs after restart" % (time.monotonic() - t0)
    wait_for(lambda: not os.path.exists(os.path.join(env.bundles, "t6")), 20, "t6 bundle cleaned")
    assert env.status("t6") != "RUNNING"
    assert env.status("t7") == "RUNNING"

    def exits_published():
        with open(env.d.log, errors="replace") as f:
            f.seek(log_off)
            return [ln for ln in f if "/tasks/exit" in ln]
    # t6 reported exited: no subscriber can be there yet, so check krilld published it (debug log)
    wait_for(exits_published, 10, "/tasks/exit published after recovery")
    assert "t6" in env.ctr("containers", "ls", "-q").stdout.split()
    # `delete` ran for the shim that died (t6) only: not for t7, not for the bundles without a shim binary
    deletes = [e for e in env.shim_execs()[before:] if "delete" in e]
    assert len(deletes) == 1 and "t6" in deletes[0], env.shim_execs()[before:]
    env.cleanup("t6", "t7")
    wait_for(lambda: not os.path.exists(fake), 10, "fake bundle removed")
    wait_for(lambda: not os.path.exists(hung), 15, "hung bundle removed")
    hs.close()
    assert env.status("t-hung") is None and env.status("t-fake") is None


def test_many_runs_leave_nothing(env):
    def snapshots():
        return sorted(env.ctr("snapshots", "ls").stdout.splitlines())

    before = snapshots()
    # detached runs of earlier tests leave ctr's fifo dirs behind, as with containerd
    fifos = sorted(os.listdir(env.d.fifo_dir))
    execs = len(env.shim_execs())
    for i in range(RUN_COUNT):
        r = env.ctr("run", "--rm", "--runtime", KRILL, IMAGE, "t-many-%d" % i, "true")
        assert r.returncode == 0, (i, r.stderr)
    assert len(env.shim_execs()) - execs == RUN_COUNT
    assert snapshots() == before
    assert env.ctr("containers", "ls", "-q").stdout.split() == []
    assert env.ctr("tasks", "ls", "-q").stdout.split() == []
    assert sorted(os.listdir(env.d.fifo_dir)) == fifos
    for root, dirs, files in os.walk(env.d.state):
        assert not any(n.startswith("t-many-") for n in dirs + files), (root, dirs, files)
    mi = env.d.nsenter("cat", "/proc/self/mountinfo").stdout
    assert [ln for ln in mi.splitlines() if "t-many-" in ln] == []
    # the last shim exits right after answering Shutdown: give it a moment, then nothing may be left
    def left():
        return [(p, daemons.proc_cmdline(p)) for p in daemons.all_pids()
                if "t-many-" in " ".join(daemons.proc_cmdline(p) or [])]
    try:
        wait_for(lambda: not left(), 5, "t-many- processes gone")
    except AssertionError:
        raise AssertionError(left())


def test_metrics_filter(env):
    # ctr sends Filters ["id==X"] and prints Metrics[0]: with two tasks the filter must pick the right one
    for c in ("t9", "t9b"):
        r = env.ctr("run", "-d", "--runtime", KRILL, IMAGE, c, "sleep", "600")
        assert r.returncode == 0, r.stderr
    try:
        for c in ("t9", "t9b"):
            r = env.ctr("tasks", "metrics", c)
            assert r.returncode == 0, r.stderr
            rows = r.stdout.splitlines()
            assert len(rows) >= 2 and rows[1].split()[0] == c, r.stdout
    finally:
        env.cleanup("t9", "t9b")


def test_runc_shim_readopted_after_kill9(env):
    r = env.ctr("run", "-d", "--runtime", RUNC, IMAGE, "t10", "sleep", "600")
    assert r.returncode == 0, r.stderr
    try:
        pid = env.tasks()["t10"][0]
        spid = env.shim_pid("t10")
        assert spid
        env.d.kill9()
        # Debian's shim listens under /run/containerd/s in krilld's private /run: a fresh unshare would
        # not see it, so the new krilld joins the mount namespace the shim (and the old krilld) lived in
        orig = env.d.argv
        env.d.argv = lambda: ["/usr/bin/nsenter", "-m", "-t", str(spid), "--"] + orig()
        env.d.private_ns = False
        try:
            env.d.start(timeout=30, probe="version")
        finally:
            env.d.argv = orig
            env.d.private_ns = True
        assert env.tasks().get("t10") == (pid, "RUNNING")
        r = env.ctr("tasks", "exec", "--exec-id", "e2", "t10", "echo", "y")
        assert (r.returncode, r.stdout) == (0, "y\n"), r.stderr
        r = env.ctr("tasks", "kill", "-s", "9", "t10")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: env.status("t10") == "STOPPED", 20, "t10 STOPPED")
        r = env.ctr("tasks", "rm", "t10")
        assert r.returncode == 0 and "exit code 137" in r.stderr, r.stderr
        assert not os.path.exists(os.path.join(env.bundles, "t10"))
    finally:
        env.cleanup("t10")
