"""containerd-shim-krill-v2 under Debian's real containerd 1.6 (issue 5).

One private containerd (tests/integration/containerd_env.py) per module,
runtime io.containerd.krill.v2, runc as the OCI runtime, the busybox test
image from tests/tools/mkimage.py.  Each test uses its own container ids.
"""

import os
import pty
import select
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import containerd_env  # noqa: E402
from conftest import require_binary, skip_unless_root  # noqa: E402

TOOLS = os.path.normpath(os.path.join(HERE, "..", "tools"))


def _busybox_archive(build):
    import mkimage
    if not os.path.exists(mkimage.BUSYBOX):
        pytest.skip("busybox-static not installed")
    return mkimage.cached("busybox", None, "oci", None, "large",
                          directory=os.path.join(build, "test-images"))


@pytest.fixture(scope="module")
def env():
    skip_unless_root()
    build = containerd_env.build_dir()
    require_binary(os.path.join(build, "src", "shim", containerd_env.SHIM_NAME), "krill shim")
    require_binary("/usr/bin/containerd")
    require_binary("/usr/sbin/runc")
    archive = _busybox_archive(build)
    e = containerd_env.ContainerdEnv(build)
    try:
        e.start(timeout=60, probe="version")
        e.import_image(archive)
        yield e
    finally:
        if any(getattr(e, "failed", ())):
            print(e.log_tail(150))
        e.close()


def wait_for(fn, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def task_status(env, cid, ns=None):
    r = env.ctr("tasks", "ls", ns=ns)
    for line in r.stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return f[-1]
    return None


def cleanup(env, *cids):
    for c in cids:
        env.ctr("tasks", "kill", "-s", "SIGKILL", c)
    for c in cids:
        wait_for(lambda: task_status(env, c) in (None, "STOPPED"), 20, c + " stopped")
        env.ctr("tasks", "delete", c)
        env.ctr("containers", "delete", c)


def test_echo_hi(env):
    r = env.run("t1", "echo", "hi", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hi\n"
    # the shim left nothing behind: no task, no container, no shim process
    assert task_status(env, "t1") is None
    wait_for(lambda: not env.krill_shim_pids(), 10, "shim exit")


def test_exit_code(env):
    r = env.run("t-exit3", "sh", "-c", "exit 3", timeout=60)
    assert r.returncode == 3, r.stderr


def test_large_output_not_lost(env):
    # 1 MiB through the stdout pipe, then an exit: every byte arrives before the exit is reported
    r = env.run("t-big", "sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x; echo; echo END", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("\nEND\n")
    assert r.stdout.count("x") == 1048576


def test_stdin(env):
    r = env.run("t-stdin", "cat", input="from stdin\n", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from stdin\n"


def test_runtime_error_surfaces(env):
    r = env.run("t-noexec", "/no/such/binary", timeout=60)
    assert r.returncode != 0
    assert "no such file or directory" in r.stderr or "not found" in r.stderr, r.stderr
    env.ctr("containers", "delete", "t-noexec")


def test_detached_exec_ps_pause_metrics_kill(env):
    cid = "t-det"
    r = env.run(cid, "sleep", "1000", rm=False, extra=["-d"])
    assert r.returncode == 0, r.stderr
    try:
        assert task_status(env, cid) == "RUNNING"
        r = env.ctr("tasks", "exec", "--exec-id", "e1", cid, "echo", "x")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "x\n"
        r = env.ctr("tasks", "exec", "--exec-id", "e2", cid, "sh", "-c", "exit 5")
        assert r.returncode == 5, r.stderr

        r = env.ctr("tasks", "ps", cid)
        assert r.returncode == 0, r.stderr
        pids = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip()]
        assert len(pids) == 1 and pids[0].isdigit(), r.stdout

        r = env.ctr("tasks", "pause", cid)
        assert r.returncode == 0, r.stderr
        assert task_status(env, cid) == "PAUSED"
        r = env.ctr("tasks", "resume", cid)
        assert r.returncode == 0, r.stderr
        assert task_status(env, cid) == "RUNNING"

        r = env.ctr("tasks", "metrics", cid)
        assert r.returncode == 0, r.stderr
        assert "memory.usage_in_bytes" in r.stdout or "memory.usage" in r.stdout, r.stdout
        assert "pids.current" in r.stdout or "pids" in r.stdout, r.stdout

        r = env.ctr("tasks", "kill", "-s", "SIGKILL", cid)
        assert r.returncode == 0, r.stderr
        wait_for(lambda: task_status(env, cid) == "STOPPED", 20, "STOPPED")
        r = env.ctr("tasks", "delete", cid)
        assert "137" in (r.stdout + r.stderr) or r.returncode == 137, (r.returncode, r.stdout, r.stderr)
    finally:
        cleanup(env, cid)


def run_in_pty(argv, rows=33, cols=77, timeout=60):
    """Runs argv with a pty as its controlling terminal of the given size; returns (rc, output)."""
    import fcntl
    import struct as st
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, st.pack("HHHH", rows, cols, 0, 0))
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        slave = -1
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif p.poll() is not None:
                break
        return p.wait(30), out
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def ctr_argv(env, *args):
    return [containerd_env.daemons.CTR, "--address", env.address] + \
        containerd_env.daemons.add_fifo_dir(list(args), env.fifo_dir)


def test_tty(env):
    # ctr -t sends the terminal size with ResizePty; stty inside the container must see it
    rc, out = run_in_pty(ctr_argv(env, "run", "--rm", "-t", "--runtime", env.RUNTIME, env.IMAGE, "t-tty",
                                  "sh", "-c", "tty; sleep 0.5; stty size; echo tty-ok"))
    assert rc == 0, out
    assert b"/dev/pts/" in out, out
    assert b"33 77" in out, out
    assert b"tty-ok" in out, out


def test_exec_tty(env):
    cid = "t-exectty"
    assert env.run(cid, "sleep", "1000", rm=False, extra=["-d"]).returncode == 0
    try:
        rc, out = run_in_pty(ctr_argv(env, "tasks", "exec", "-t", "--exec-id", "et", cid,
                                      "sh", "-c", "sleep 0.5; stty size; tty; exit 4"), rows=20, cols=90)
        assert rc == 4, out
        assert b"20 90" in out and b"/dev/pts/" in out, out
    finally:
        cleanup(env, cid)


def test_group_shares_one_shim(env):
    a, b = "t-grp-a", "t-grp-b"
    ann = ["-d", "--annotation", "io.containerd.runc.v2.group=g1"]
    try:
        assert env.run(a, "sleep", "1000", rm=False, extra=ann).returncode == 0
        assert env.run(b, "sleep", "1000", rm=False, extra=ann).returncode == 0
        assert task_status(env, a) == "RUNNING" and task_status(env, b) == "RUNNING"
        addr = []
        for c in (a, b):
            bundle = os.path.join(env.state, "io.containerd.runtime.v2.task", "default", c)
            with open(os.path.join(bundle, "address")) as f:
                addr.append(f.read())
        assert addr[0] == addr[1] and addr[0].startswith("unix://" + env.dir + "/s/"), addr
        assert len(env.krill_shim_pids()) == 1, env.krill_shim_pids()
        # deleting one keeps the shim serving the other
        env.ctr("tasks", "kill", "-s", "SIGKILL", a)
        wait_for(lambda: task_status(env, a) == "STOPPED", 20, "a stopped")
        assert env.ctr("tasks", "delete", a).returncode in (0, 137)
        assert task_status(env, b) == "RUNNING"
        r = env.ctr("tasks", "exec", "--exec-id", "e1", b, "echo", "still")
        assert r.stdout == "still\n", r.stderr
    finally:
        cleanup(env, a, b)
    wait_for(lambda: not env.krill_shim_pids(), 10, "group shim exit")


def test_containerd_restart_readopts(env):
    cid = "t-restart"
    assert env.run(cid, "sleep", "1000", rm=False, extra=["-d"]).returncode == 0
    try:
        shims = env.krill_shim_pids()
        assert len(shims) == 1
        env.kill9()
        env.start(timeout=60, probe="version")
        assert task_status(env, cid) == "RUNNING"
        assert env.krill_shim_pids() == shims
        r = env.ctr("tasks", "exec", "--exec-id", "e1", cid, "echo", "back")
        assert r.stdout == "back\n", r.stderr
    finally:
        cleanup(env, cid)
    wait_for(lambda: not env.krill_shim_pids(), 10, "shim exit")


def test_log_uri_file(env, tmp_path):
    out = tmp_path / "out.log"
    r = env.run("t-logfile", "sh", "-c", "echo to-file; echo to-err >&2",
                extra=["--log-uri", "file://" + str(out)], timeout=60)
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "to-file\n" in text and "to-err\n" in text, text


def test_log_uri_binary(env, tmp_path):
    out = tmp_path / "bin.log"
    logger = tmp_path / "logger.sh"
    # containerd's contract: stdout on fd 3, stderr on fd 4, close fd 5 once ready
    logger.write_text("#!/bin/sh\nexec 5>&-\necho \"args=$* id=$CONTAINER_ID ns=$CONTAINER_NAMESPACE\" > \"$2\"\n"
                      "cat <&3 >> \"$2\"\n")
    logger.chmod(0o755)
    r = env.run("t-logbin", "echo", "via-binary",
                extra=["--log-uri", "binary://%s?out=%s" % (logger, out)], timeout=60)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: out.exists() and "via-binary" in out.read_text(), 10, "logger output")
    text = out.read_text()
    assert "args=out %s id=t-logbin ns=default" % out in text, text


def test_events_and_oom(env):
    ev = subprocess.Popen([containerd_env.daemons.CTR, "--address", env.address, "events"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cid = "t-events"
    try:
        time.sleep(0.3)
        assert env.run(cid, "sleep", "1000", rm=False, extra=["-d"]).returncode == 0
        assert env.ctr("tasks", "exec", "--exec-id", "ex", cid, "true").returncode == 0
        assert env.ctr("tasks", "pause", cid).returncode == 0
        assert env.ctr("tasks", "resume", cid).returncode == 0
        cleanup(env, cid)
        r = env.run("t-oom", "sh", "-c", "x=y; while true; do x=$x$x$x$x; done",
                    extra=["--memory-limit", str(16 << 20)], timeout=120)
        assert r.returncode == 137, (r.returncode, r.stderr)
        time.sleep(0.5)
    finally:
        ev.terminate()
        out = ev.communicate(timeout=10)[0]
    for topic in ("/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/paused",
                  "/tasks/resumed", "/tasks/exit", "/tasks/delete", "/tasks/oom"):
        assert topic in out, (topic, out)
    # ordering: a task's exit precedes its delete
    lines = [line for line in out.splitlines() if cid in line]
    topics = [t for line in lines for t in line.split() if t.startswith("/tasks/")]
    assert topics.index("/tasks/exit") < topics.index("/tasks/delete"), topics


def _is_static(path):
    """True for the static musl shim: an ELF with no PT_INTERP program header (no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:4] != b"\x7fELF" or head[4] != 2:
        return False
    phoff = int.from_bytes(head[32:40], "little")
    phentsize = int.from_bytes(head[54:56], "little")
    phnum = int.from_bytes(head[56:58], "little")
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + 4 > len(head):
            return False
        if int.from_bytes(head[off:off + 4], "little") == 3:  # PT_INTERP
            return False
    return True


def test_idle_shim_memory(env):
    """Reports RSS/PSS/USS of one idle shim holding one container, next to containerd-shim-runc-v2.
    Targets (issue 5): RSS <= 0.8 MB, USS <= 0.3 MB, asserted for the static musl build (the default when
    musl-gcc is installed). The glibc fallback (no musl-gcc, sanitizer builds) keeps a loose guard."""
    figures = {}
    for rt, cid in ((env.RUNTIME, "t-mem-krill"), ("io.containerd.runc.v2", "t-mem-runc")):
        r = env.ctr("run", "-d", "--runtime", rt, env.IMAGE, cid, "sleep", "1000")
        if r.returncode != 0:
            if rt != env.RUNTIME:
                print("containerd-shim-runc-v2 not usable here: " + r.stderr.strip())
                continue
            raise AssertionError(r.stderr)
        try:
            time.sleep(1.0)  # idle: nothing in flight
            name = containerd_env.SHIM_NAME if rt == env.RUNTIME else "containerd-shim-runc-v2"
            pids = [p for p in env.shim_pids()
                    if os.path.basename((containerd_env.daemons.proc_cmdline(p) or [""])[0]) == name]
            assert len(pids) == 1, pids
            figures[name] = containerd_env.daemons.smaps_rollup(pids[0])
            with open("/proc/%d/status" % pids[0]) as f:
                threads = [line.split()[1] for line in f if line.startswith("Threads:")][0]
            figures[name]["threads"] = int(threads)
        finally:
            cleanup(env, cid)
    # a second shim shares the binary's pages: what one more container really costs
    cids = ("t-mem-k1", "t-mem-k2")
    try:
        for c in cids:
            assert env.ctr("run", "-d", "--runtime", env.RUNTIME, env.IMAGE, c, "sleep", "1000").returncode == 0
        time.sleep(1.0)
        pids = env.krill_shim_pids()
        assert len(pids) == 2
        figures["containerd-shim-krill-v2 (one of two)"] = containerd_env.daemons.smaps_rollup(pids[0])
        figures["containerd-shim-krill-v2 (one of two)"]["threads"] = 1
    finally:
        cleanup(env, *cids)
    for name, m in figures.items():
        print("%s: rss=%d kB pss=%d kB uss=%d kB threads=%d" % (name, m["rss"], m["pss"], m["uss"], m["threads"]))
    k = figures[containerd_env.SHIM_NAME]
    assert k["threads"] == 1
    with open(env.shim, "rb") as f:
        sanitized = b"__asan_init" in f.read()
    if _is_static(env.shim):
        assert k["rss"] <= 800 and k["uss"] <= 300, k
    elif not sanitized:  # ASan's shadow memory and runtime are no figure to guard
        assert k["uss"] < 1024 and k["rss"] < 3072, k


def test_exec_errors(env):
    cid = "t-execerr"
    assert env.run(cid, "sleep", "1000", rm=False, extra=["-d"]).returncode == 0
    try:
        r = env.ctr("tasks", "exec", "--exec-id", "bad", cid, "/no/such/exe")
        assert r.returncode != 0
        assert "OCI runtime exec failed" in r.stderr, r.stderr
        # the failed exec is gone and its id can be reused; the container still runs
        r = env.ctr("tasks", "exec", "--exec-id", "bad", cid, "echo", "reused")
        assert r.returncode == 0 and r.stdout == "reused\n", r.stderr
        assert task_status(env, cid) == "RUNNING"
    finally:
        cleanup(env, cid)
