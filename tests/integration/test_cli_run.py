"""krill run / containers / tasks / events (the CLI side of issue 6).

Every test runs against each available daemon (parametrized `daemon`):
  containerd  Debian's containerd 1.6 in a private mount namespace with krill's
              shim on PATH (tests/integration/containerd_env.py): the API is
              containerd's, so this is the reference the CLI is written against.
  krilld      krilld on temp dirs, once it serves tasks.v1 (skipped with the
              reason printed while Tasks/List is unimplemented).
The daemon a test used is in its test id ([containerd] / [krilld]).
"""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from conftest import build_dir, require_binary, skip_unless_root  # noqa: E402
import daemons  # noqa: E402

IMAGE = "docker.io/library/busybox:test"
RUN_COUNT = int(os.environ.get("KRILL_RUN_COUNT", "100"))


class Daemon:
    """What the tests need from either daemon."""

    def __init__(self, kind, d, build):
        self.kind = kind
        self.d = d
        self.build = build
        self.address = d.address
        self.fifo_dir = d.fifo_dir
        self.dir = d.dir
        self.cli = require_binary(os.path.join(build, "src", "cli", "krill"), "krill CLI")

    def ctr(self, *args, **kw):
        return self.d.ctr(*args, **kw)

    def argv(self, *args):
        args = list(args)
        # FIFOs live under the daemon's temp dir (never the host's /run)
        for i, a in enumerate(args):
            if a == "run" or (i > 0 and args[i - 1] in ("tasks", "t") and a in ("start", "exec")):
                args = args[:i + 1] + ["--fifo-dir", self.fifo_dir] + args[i + 1:]
                break
        return [self.cli, "--address", self.address] + args

    def krill(self, *args, timeout=120, input=None):
        return subprocess.run(self.argv(*args), stdin=subprocess.DEVNULL if input is None else None,
                              input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def task_status(self, cid):
        r = self.ctr("tasks", "ls")
        for line in r.stdout.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid:
                return f[-1]
        return None


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


@pytest.fixture(scope="module", params=["containerd", "krilld"])
def daemon(request, busybox_oci):
    skip_unless_root()
    build = build_dir()
    if request.param == "containerd":
        require_binary(daemons.CONTAINERD)
        from containerd_env import ContainerdEnv
        require_binary(os.path.join(build, "src", "shim", "containerd-shim-krill-v2"), "krill shim")
        d = ContainerdEnv(build, log_level="info")
        d.__enter__()
    else:
        require_binary(os.path.join(build, "src", "daemon", "krilld"), "krilld")
        d = daemons.KrillDaemon(build, log_level="info")
        d.start(timeout=30, probe="any")
    try:
        dm = Daemon(request.param, d, build)
        if request.param == "krilld":
            r = dm.krill("tasks", "ls")
            if r.returncode != 0:
                pytest.fail("krilld does not serve tasks.v1: " + r.stderr.strip())
        r = dm.ctr("images", "import", "--all-platforms", busybox_oci, timeout=300)
        assert r.returncode == 0, r.stderr
        yield dm
    finally:
        if request.param == "containerd":
            d.__exit__(None, None, None)
        else:
            d.close()


def cleanup(dm, *cids):
    for c in cids:
        dm.krill("tasks", "kill", "-s", "SIGKILL", c)
    for c in cids:
        wait_for(lambda: dm.task_status(c) in (None, "STOPPED"), 20, c + " stopped")
        dm.krill("tasks", "rm", c)
        dm.krill("containers", "rm", c)


def test_run_echo(daemon):
    r = daemon.krill("run", "--rm", IMAGE, "t-echo", "echo", "hello")
    assert (r.returncode, r.stdout) == (0, "hello\n"), r.stderr
    assert daemon.task_status("t-echo") is None
    assert "t-echo" not in daemon.krill("containers", "ls", "-q").stdout.split()


def test_run_exit_code(daemon):
    r = daemon.krill("run", "--rm", IMAGE, "t-exit", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"


def test_run_runc_runtime(daemon):
    if daemon.kind == "krilld":
        pytest.skip("krilld's plain fixture shares /run: containerd-shim-runc-v2 needs a private one")
    r = daemon.krill("run", "--rm", "--runtime", "io.containerd.runc.v2", IMAGE, "t-runc", "echo", "runc")
    assert (r.returncode, r.stdout) == (0, "runc\n"), r.stderr


def test_run_env_user_cwd(daemon, tmp_path):
    envf = tmp_path / "env"
    envf.write_text("# comment\nFROMFILE=1\n\nBAR=file\n")
    r = daemon.krill("run", "--rm", "--env", "FOO=bar", "--env-file", str(envf), "--env", "BAR=flag",
                     "--user", "nobody", "--cwd", "/tmp", IMAGE, "t-env",
                     "sh", "-c", "echo $FOO $FROMFILE $BAR; id -u; id -g; pwd")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bar 1 flag\n65534\n65534\n/tmp\n"


def test_run_stdin_and_labels(daemon):
    r = daemon.krill("run", "--rm", IMAGE, "t-stdin", "cat", input="from stdin\n")
    assert (r.returncode, r.stdout) == (0, "from stdin\n"), r.stderr
    r = daemon.krill("run", "-d", "--label", "a=b", IMAGE, "t-lbl", "sleep", "600")
    try:
        assert r.returncode == 0, r.stderr
        ours = json.loads(daemon.krill("containers", "info", "t-lbl").stdout)
        theirs = json.loads(daemon.ctr("containers", "info", "t-lbl").stdout)
        assert ours == theirs
        assert ours["Labels"] == {"a": "b", "io.containerd.image.config.stop-signal": "SIGTERM"}
        assert ours["Runtime"]["Name"] == "io.containerd.krill.v2"
        assert ours["Spec"]["process"]["args"] == ["sleep", "600"]
    finally:
        cleanup(daemon, "t-lbl")


def test_detach_exec_kill(daemon):
    r = daemon.krill("run", "-d", IMAGE, "t3", "sleep", "600")
    try:
        assert (r.returncode, r.stdout) == (0, ""), r.stderr
        ls = daemon.krill("tasks", "ls")
        assert ls.stdout.splitlines()[0].split() == ["TASK", "PID", "STATUS"]
        assert daemon.krill("tasks", "ls").stdout == daemon.ctr("tasks", "ls").stdout
        assert daemon.task_status("t3") == "RUNNING"
        r = daemon.krill("tasks", "exec", "--exec-id", "e1", "t3", "echo", "x")
        assert (r.returncode, r.stdout) == (0, "x\n"), r.stderr
        r = daemon.krill("tasks", "exec", "--exec-id", "e2", "--user", "nobody", "--cwd", "/tmp", "t3",
                         "sh", "-c", "id -u; pwd; exit 5")
        assert (r.returncode, r.stdout) == (5, "65534\n/tmp\n"), r.stderr
        ps = daemon.krill("tasks", "ps", "t3")
        assert ps.returncode == 0 and ps.stdout.startswith("PID"), ps.stderr
        m = daemon.krill("tasks", "metrics", "t3")
        if m.returncode == 0:
            assert m.stdout.splitlines()[0].split() == ["ID", "TIMESTAMP"]
            assert "METRIC" in m.stdout
        assert daemon.krill("containers", "ls").stdout == daemon.ctr("containers", "ls").stdout
        rm = daemon.krill("containers", "rm", "t3")
        assert rm.returncode != 0 and "cannot delete a non stopped container" in rm.stderr
        r = daemon.krill("tasks", "kill", "-s", "9", "t3")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: daemon.task_status("t3") == "STOPPED", 20, "t3 stopped")
        assert daemon.krill("tasks", "rm", "t3").returncode == 0
        assert daemon.krill("containers", "rm", "t3").returncode == 0
        assert "t3" not in daemon.ctr("containers", "ls", "-q").stdout.split()
    finally:
        cleanup(daemon, "t3")


def test_create_start(daemon):
    r = daemon.krill("containers", "create", IMAGE, "t-cs", "sh", "-c", "echo started; exit 3")
    try:
        assert r.returncode == 0, r.stderr
        assert daemon.task_status("t-cs") is None
        r = daemon.krill("tasks", "start", "t-cs")
        assert (r.returncode, r.stdout) == (3, "started\n"), r.stderr
        assert daemon.krill("containers", "label", "t-cs", "k=v").returncode == 0
        assert json.loads(daemon.ctr("containers", "info", "t-cs").stdout)["Labels"]["k"] == "v"
    finally:
        cleanup(daemon, "t-cs")


def test_run_tty(daemon):
    master, slave = pty.openpty()
    p = subprocess.Popen(daemon.argv("run", "--rm", "-t", IMAGE, "t-tty", "sh", "-c", "tty; stty size; echo ok"),
                         stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rd, _, _ = select.select([master], [], [], 1)
        if rd:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    rc = p.wait(timeout=30)
    os.close(master)
    text = out.decode(errors="replace")
    assert rc == 0, text
    assert "/dev/pts/" in text and "ok" in text, text


def test_signal_forwarding(daemon):
    p = subprocess.Popen(daemon.argv("run", "--rm", IMAGE, "t-sig", "sh", "-c",
                                     "trap 'exit 42' TERM; while true; do sleep 0.1; done"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: daemon.task_status("t-sig") == "RUNNING", 30, "t-sig running")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 42, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        cleanup(daemon, "t-sig")


def test_events_match_ctr(daemon):
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for argv in ([daemon.cli, "--address", daemon.address, "events"],
                          [daemons.CTR, "--address", daemon.address, "events"])]
    bufs = [b"", b""]

    def pump(t):
        rd, _, _ = select.select([p.stdout for p in procs], [], [], t)
        for i, p in enumerate(procs):
            if p.stdout in rd:
                bufs[i] += os.read(p.stdout.fileno(), 65536)

    try:
        # both are subscribed once each has printed a probe event
        n = 0
        deadline = time.monotonic() + 20
        while not all(b"/namespaces/create" in b for b in bufs):
            assert time.monotonic() < deadline, bufs
            daemon.ctr("namespaces", "create", "probe-ev-%d" % n)
            n += 1
            pump(0.2)
        r = daemon.krill("run", "--rm", IMAGE, "t-ev", "true")
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 20
        while not all(b"/containers/delete" in b for b in bufs):
            assert time.monotonic() < deadline, bufs
            pump(0.2)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=10)
        for i in range(n):
            daemon.ctr("namespaces", "rm", "probe-ev-%d" % i)
    ours, theirs = (b.decode().splitlines() for b in bufs)
    topics = [line.split()[5] for line in ours if "t-ev" in line]
    assert "/tasks/start" in topics and "/tasks/exit" in topics, ours
    # byte for byte what ctr prints
    assert [line for line in ours if "t-ev" in line] == [line for line in theirs if "t-ev" in line]


def test_many_runs_leave_nothing(daemon):
    def snapshots():
        return sorted(daemon.ctr("snapshots", "ls").stdout.splitlines())

    before = snapshots()
    for i in range(RUN_COUNT):
        r = daemon.krill("run", "--rm", IMAGE, "t-many-%d" % i, "true")
        assert r.returncode == 0, (i, r.stderr)
    assert snapshots() == before
    assert daemon.ctr("containers", "ls", "-q").stdout.split() == []
    assert daemon.ctr("tasks", "ls", "-q").stdout.split() == []
    assert os.listdir(daemon.fifo_dir) == []
    state = daemon.d.state
    for root, dirs, files in os.walk(state):
        assert not any(n.startswith("t-many-") for n in dirs + files), (root, dirs, files)
    for f in ("/proc/self/mountinfo", "/proc/%d/mountinfo" % daemon.d.pid):
        with open(f) as fh:
            leftover = [line for line in fh if "t-many-" in line]
        assert leftover == [], leftover
    # no temp mount dirs of the user lookup either
    assert not [n for n in os.listdir("/tmp") if n.startswith("krill-mount-")]


def test_run_unpacks_for_another_snapshotter(daemon):
    # the image was unpacked for overlayfs only: krill run unpacks it client-side (Prepare, Diff.Apply, Commit)
    plugins = daemon.ctr("plugins", "ls").stdout
    if "native" not in plugins:
        pytest.skip("no native snapshotter")
    r = daemon.krill("run", "--rm", "--snapshotter", "native", IMAGE, "t-unpack", "echo", "unpacked")
    assert (r.returncode, r.stdout) == (0, "unpacked\n"), r.stderr
    snaps = daemon.ctr("snapshots", "--snapshotter", "native", "ls").stdout.splitlines()[1:]
    assert len(snaps) == 1 and snaps[0].split()[-1] == "Committed", snaps
    r = daemon.krill("run", "--rm", "--snapshotter", "native", IMAGE, "t-unpack2", "echo", "again")
    assert (r.returncode, r.stdout) == (0, "again\n"), r.stderr
