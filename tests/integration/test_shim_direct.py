"""containerd-shim-krill-v2 driven directly (no containerd): the start/delete subcommands, grouping by
config.json annotation, and ttrpc calls on the shim socket with a minimal Python ttrpc client
(PROTOCOLS.md 3.6: 10-byte header, Request{service, method, payload}, Response{status, payload})."""

import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import containerd_env  # noqa: E402
from conftest import require_binary, skip_unless_root  # noqa: E402


# ------------------------------------------------------------ tiny protobuf + ttrpc

def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num, data):
    if isinstance(data, str):
        data = data.encode()
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _vfield(num, v):
    return _varint(num << 3) + _varint(v)


def _parse(buf):
    """protobuf -> {field: [values]} (varints as int, length-delimited as bytes)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def _read_varint(buf, i):
    shift = v = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


class Ttrpc:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(10)
        self.s.connect(path)
        self.sid = 1

    def call(self, method, payload=b"", service="containerd.task.v2.Task"):
        req = _field(1, service) + _field(2, method) + _field(3, payload)
        self.s.sendall(struct.pack(">IIBB", len(req), self.sid, 1, 0) + req)
        hdr = self._recv(10)
        length, sid, typ, _ = struct.unpack(">IIBB", hdr)
        assert sid == self.sid and typ == 2
        self.sid += 2
        resp = _parse(self._recv(length))
        status = _parse(resp[1][0]) if 1 in resp else {}
        code = status.get(1, [0])[0]
        msg = status.get(2, [b""])[0].decode()
        return code, msg, resp.get(2, [b""])[0]

    def _recv(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def close(self):
        self.s.close()


# ------------------------------------------------------------ fixtures

@pytest.fixture
def shim(workdir):
    skip_unless_root()
    build = containerd_env.build_dir()
    path = require_binary(os.path.join(build, "src", "shim", containerd_env.SHIM_NAME), "krill shim")
    yield path
    # a failed test must not leave its shim servers behind: kill (by PID) the ones started on its workdir
    for pid in pids_of(path):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                mine = workdir.encode() + b"/" in f.read()
            if mine:
                os.kill(pid, 9)
        except (OSError, ProcessLookupError):
            pass


@pytest.fixture
def workdir(tmp_path):
    # short paths: the socket lives in <dir of -address>/s/<64 hex>
    import tempfile
    d = tempfile.mkdtemp(prefix="ks-", dir="/tmp")
    yield d
    subprocess.run(["rm", "-rf", d])


def make_bundle(workdir, cid, annotations=None):
    b = os.path.join(workdir, "bundle-" + cid)
    os.makedirs(os.path.join(b, "rootfs"), exist_ok=True)
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump({"ociVersion": "1.0.2", "annotations": annotations or {}}, f)
    os.mkfifo(os.path.join(b, "log"))
    return b


def shim_cmd(shim, workdir, cid, *extra):
    return [shim, "-namespace", "ns1", "-address", os.path.join(workdir, "d.sock"),
            "-publish-binary", "/bin/true", "-id", cid] + list(extra)


def start(shim, workdir, cid, bundle, stdin=b""):
    # hold the log FIFO open read-write like containerd, so the shim never blocks on it
    logfd = os.open(os.path.join(bundle, "log"), os.O_RDWR | os.O_NONBLOCK)
    env = dict(os.environ, TTRPC_ADDRESS=os.path.join(workdir, "d.sock.ttrpc"))
    t0 = time.monotonic()
    r = subprocess.run(shim_cmd(shim, workdir, cid, "start"), cwd=bundle, env=env, input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return r, logfd, time.monotonic() - t0


def pids_of(shim):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if f.read().split(b"\0")[0] == shim.encode():
                        out.append(int(p))
            except OSError:
                pass
    return out


# ------------------------------------------------------------ tests

def test_start_group_ttrpc_shutdown(shim, workdir):
    ann = {"io.containerd.runc.v2.group": "grp"}
    b1, b2 = make_bundle(workdir, "c1", ann), make_bundle(workdir, "c2", ann)
    before = set(pids_of(shim))
    r1, fd1, secs = start(shim, workdir, "c1", b1)
    assert r1.returncode == 0, r1.stderr
    addr = r1.stdout.decode()
    assert not addr.endswith("\n")
    assert addr.startswith("unix://" + workdir + "/s/") and len(addr) == len("unix://" + workdir + "/s/") + 64
    path = addr[len("unix://"):]
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600
    with open(os.path.join(b1, "address")) as f:
        assert f.read() == addr
    new = set(pids_of(shim)) - before
    assert len(new) == 1, new
    server = new.pop()
    print("shim start took %.1f ms" % (secs * 1000))

    # same group: start prints the live shim's address and starts nothing
    r2, fd2, _ = start(shim, workdir, "c2", b2)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.decode() == addr
    assert set(pids_of(shim)) - before == {server}

    c = Ttrpc(path)
    try:
        code, msg, payload = c.call("Connect", _field(1, "c1"))
        assert code == 0, msg
        assert _parse(payload)[1][0] == server
        code, msg, _ = c.call("State", _field(1, "nope"))
        assert code == 5 and msg.endswith("not found"), (code, msg)
        code, msg, _ = c.call("Checkpoint", _field(1, "c1"))
        assert code == 12, (code, msg)
        code, msg, _ = c.call("NoSuchMethod")
        assert code == 12, (code, msg)
        code, msg, _ = c.call("Create", _field(1, "c1") + _field(2, "relative"))
        assert code == 3, (code, msg)
        # Shutdown with no containers: the server leaves and removes its socket
        code, msg, _ = c.call("Shutdown", _field(1, "c1"))
        assert code == 0, msg
    finally:
        c.close()
    deadline = time.monotonic() + 10
    while os.path.exists("/proc/%d" % server) and time.monotonic() < deadline:
        try:
            os.waitpid(server, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            with open("/proc/%d/stat" % server) as f:
                if f.read().split(") ")[1][0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.01)
    assert not os.path.exists(path)
    os.close(fd1)
    os.close(fd2)


def test_sigterm_stops_serving(shim, workdir):
    """SIGTERM (or SIGINT) makes the server leave like the Go shim's handleExitSignals: it stops serving and
    removes its socket; containers it holds would keep running."""
    b = make_bundle(workdir, "sig")
    before = set(pids_of(shim))
    r, fd, _ = start(shim, workdir, "sig", b)
    assert r.returncode == 0, r.stderr
    path = r.stdout.decode()[len("unix://"):]
    new = set(pids_of(shim)) - before
    assert len(new) == 1, new
    server = new.pop()
    c = Ttrpc(path)
    try:
        code, msg, _ = c.call("Connect", _field(1, "sig"))
        assert code == 0, msg
    finally:
        c.close()
    os.kill(server, 15)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % server) as f:
                if f.read().split(") ")[1][0] == "Z":
                    break
        except OSError:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("shim still running after SIGTERM")
    assert not os.path.exists(path)
    os.close(fd)


def test_delete_prints_delete_response(shim, workdir):
    b = make_bundle(workdir, "gone")
    r = subprocess.run(shim_cmd(shim, workdir, "gone", "-bundle", b, "delete"), cwd=b,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert r.returncode == 0, r.stderr
    m = _parse(r.stdout)
    assert m[2] == [137]  # exit_status: 128 + SIGKILL, like the runc shim
    ts = _parse(m[3][0])
    assert abs(ts[1][0] - time.time()) < 60


def test_bad_flags(shim):
    r = subprocess.run([shim, "-nosuch", "x", "start"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode != 0 and b"not defined" in r.stderr


class EventsServer:
    """Answers Events/Forward on TTRPC_ADDRESS with an empty Response and records the topics."""

    def __init__(self, path):
        import threading
        self.path = path
        self.topics = []
        self.metadata = []
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ls.bind(path)
        self.ls.listen(4)
        self.ls.settimeout(0.2)
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(0.2)
            buf = b""
            while not self.stop:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 10:
                    length, sid, typ, _ = struct.unpack(">IIBB", buf[:10])
                    if len(buf) < 10 + length:
                        break
                    req = _parse(buf[10:10 + length])
                    buf = buf[10 + length:]
                    fwd = _parse(req[3][0])
                    env = _parse(fwd[1][0])
                    self.topics.append(env[3][0].decode())
                    self.metadata.append([_parse(kv) for kv in req.get(5, [])])
                    c.sendall(struct.pack(">IIBB", 0, sid, 2, 0))
            c.close()

    def close(self):
        self.stop = True
        self.t.join(5)
        self.ls.close()


def make_oci_bundle(workdir, cid, args):
    b = os.path.join(workdir, "ob-" + cid)
    rootfs = os.path.join(b, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "dev", "sys", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    subprocess.run(["cp", "/bin/busybox", os.path.join(rootfs, "bin", "busybox")], check=True)
    for app in ("sh", "echo", "sleep", "cat"):
        os.symlink("busybox", os.path.join(rootfs, "bin", app))
    subprocess.run(["/usr/sbin/runc", "spec"], cwd=b, check=True)
    with open(os.path.join(b, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    spec["root"]["readonly"] = False
    spec["linux"]["cgroupsPath"] = "/krill-shim-test/" + cid
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(spec, f)
    os.mkfifo(os.path.join(b, "log"))
    return b


def _read_fifo(fd, want, timeout=10):
    import select
    out = b""
    deadline = time.monotonic() + timeout
    while want not in out and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                out += os.read(fd, 4096)
            except BlockingIOError:
                pass
    return out


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_direct_lifecycle(shim, workdir, runtime):
    binary = require_binary("/usr/bin/" + runtime if runtime == "crun" else "/usr/sbin/runc", runtime)
    cid = "lc-" + runtime
    b = make_oci_bundle(workdir, cid, ["sh", "-c", "echo hello-$0; exec sleep 1000"])
    ev = EventsServer(os.path.join(workdir, "d.sock.ttrpc"))
    out_fifo = os.path.join(workdir, cid + "-stdout")
    os.mkfifo(out_fifo)
    out_fd = os.open(out_fifo, os.O_RDONLY | os.O_NONBLOCK)
    r, logfd, _ = start(shim, workdir, cid, b)
    assert r.returncode == 0, r.stderr
    path = r.stdout.decode()[len("unix://"):]
    c = Ttrpc(path)
    try:
        opts = _field(6, binary)
        anyopts = _field(1, "containerd.runc.v1.Options") + _field(2, opts)
        code, msg, payload = c.call("Create", _field(1, cid) + _field(2, b) + _field(6, out_fifo) +
                                    _field(10, anyopts))
        if code != 0 and runtime == "crun":
            assert "OCI runtime create failed: " in msg, msg
            print("SKIP: crun refuses hybrid cgroups on this machine: " + msg)
            c.call("Shutdown", _field(1, cid))
            pytest.skip("crun refuses hybrid cgroups on this machine")
        assert code == 0, msg
        pid = _parse(payload)[1][0]
        with open(os.path.join(b, "runtime")) as f:
            assert f.read() == binary
        assert json.load(open(os.path.join(b, "options.json")))["BinaryName"] == binary
        code, msg, payload = c.call("State", _field(1, cid))
        assert code == 0 and _parse(payload)[4] == [1]  # CREATED
        code, msg, payload = c.call("Start", _field(1, cid))
        assert code == 0, msg
        assert _parse(payload)[1][0] == pid
        assert b"hello-sh" in _read_fifo(out_fd, b"hello-sh")

        # Update: LinuxResources JSON through `runc update -r -`
        res = json.dumps({"pids": {"limit": 42}}).encode()
        anyres = _field(1, "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources") + _field(2, res)
        code, msg, _ = c.call("Update", _field(1, cid) + _field(2, anyres))
        assert code == 0, msg
        pids_max = [p for p in ("/sys/fs/cgroup/pids/krill-shim-test/%s/pids.max" % cid,
                                "/sys/fs/cgroup/krill-shim-test/%s/pids.max" % cid) if os.path.exists(p)]
        if pids_max:
            assert open(pids_max[0]).read().strip() == "42"

        code, msg, payload = c.call("Stats", _field(1, cid))
        assert code == 0, msg
        anym = _parse(_parse(payload)[1][0])
        assert anym[1][0].decode() in ("io.containerd.cgroups.v1.Metrics", "io.containerd.cgroups.v2.Metrics")
        code, msg, payload = c.call("Pids", _field(1, cid))
        assert code == 0, msg
        assert [_parse(p)[1][0] for p in _parse(payload)[1]] == [pid]

        code, msg, _ = c.call("ResizePty", _field(1, cid) + _vfield(3, 80) + _vfield(4, 24))
        assert code != 0  # no terminal
        code, msg, _ = c.call("Delete", _field(1, cid))
        assert code == 9 and "running" in msg, (code, msg)

        code, msg, _ = c.call("Kill", _field(1, cid) + _vfield(3, 9))
        assert code == 0, msg
        code, msg, payload = c.call("Wait", _field(1, cid))
        assert code == 0, msg
        assert _parse(payload)[1] == [137]
        code, msg, payload = c.call("State", _field(1, cid))
        assert _parse(payload)[4] == [3] and _parse(payload)[9] == [137]  # STOPPED, exit 137
        code, msg, _ = c.call("Kill", _field(1, cid) + _vfield(3, 9))
        assert code == 5 and "process already finished" in msg, (code, msg)
        code, msg, payload = c.call("Delete", _field(1, cid))
        assert code == 0, msg
        assert _parse(payload)[2] == [137]
        code, msg, _ = c.call("Shutdown", _field(1, cid))
        assert code == 0, msg
    finally:
        c.close()
        os.close(out_fd)
        os.close(logfd)
        subprocess.run([binary, "--root", os.path.join(workdir, "runc", "ns1"), "delete", "--force", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import glob
        for d in glob.glob("/sys/fs/cgroup/*/krill-shim-test") + glob.glob("/sys/fs/cgroup/krill-shim-test"):
            for sub in (os.path.join(d, cid), d):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
    deadline = time.monotonic() + 10
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not os.path.exists(path)
    ev.close()
    for t in ("/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"):
        assert t in ev.topics, ev.topics
    assert ev.topics.index("/tasks/exit") < ev.topics.index("/tasks/delete")
    md = ev.metadata[0][0]
    assert md[1][0] == b"containerd-namespace-ttrpc" and md[2][0] == b"ns1", md


def test_direct_closeio(shim, workdir):
    """CloseIO closes the container's stdin after handing on what the FIFO holds."""
    require_binary("/usr/sbin/runc", "runc")
    cid = "cio"
    b = make_oci_bundle(workdir, cid, ["cat"])
    ev = EventsServer(os.path.join(workdir, "d.sock.ttrpc"))
    fifos = {}
    for n in ("stdin", "stdout"):
        fifos[n] = os.path.join(workdir, cid + "-" + n)
        os.mkfifo(fifos[n])
    out_fd = os.open(fifos["stdout"], os.O_RDONLY | os.O_NONBLOCK)
    in_fd = os.open(fifos["stdin"], os.O_RDWR | os.O_NONBLOCK)  # a writer that never goes away
    r, logfd, _ = start(shim, workdir, cid, b)
    assert r.returncode == 0, r.stderr
    path = r.stdout.decode()[len("unix://"):]
    c = Ttrpc(path)
    try:
        code, msg, _ = c.call("Create", _field(1, cid) + _field(2, b) + _field(5, fifos["stdin"]) +
                              _field(6, fifos["stdout"]))
        assert code == 0, msg
        assert c.call("Start", _field(1, cid))[0] == 0
        os.write(in_fd, b"through-stdin\n")
        assert b"through-stdin" in _read_fifo(out_fd, b"through-stdin")
        os.write(in_fd, b"last-line\n")
        code, msg, _ = c.call("CloseIO", _field(1, cid) + _vfield(3, 1))
        assert code == 0, msg
        code, msg, payload = c.call("Wait", _field(1, cid))  # cat saw EOF and exited
        assert code == 0 and _parse(payload).get(1, [0]) == [0], (code, msg)
        assert b"last-line" in _read_fifo(out_fd, b"last-line", 5)
        assert c.call("Delete", _field(1, cid))[0] == 0
        assert c.call("Shutdown", _field(1, cid))[0] == 0
    finally:
        c.close()
        for fd in (out_fd, in_fd, logfd):
            os.close(fd)
        subprocess.run(["/usr/sbin/runc", "--root", os.path.join(workdir, "runc", "ns1"), "delete", "--force", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ev.close()
        import glob
        for d in glob.glob("/sys/fs/cgroup/*/krill-shim-test") + glob.glob("/sys/fs/cgroup/krill-shim-test"):
            for sub in (os.path.join(d, cid), d):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def test_start_options_shim_cgroup(shim, workdir):
    """start reads the runtime options Any on stdin; Options.ShimCgroup moves the server into that cgroup."""
    b = make_bundle(workdir, "cg")
    rel = "krill-shim-test/shimcg"
    opts = _field(3, rel)
    r, logfd, _ = start(shim, workdir, "cg", b, stdin=_field(1, "containerd.runc.v1.Options") + _field(2, opts))
    try:
        assert r.returncode == 0, r.stderr
        path = r.stdout.decode()[len("unix://"):]
        c = Ttrpc(path)
        server = _parse(c.call("Connect", _field(1, "cg"))[2])[1][0]
        with open("/proc/%d/cgroup" % server) as f:
            cg = f.read()
        assert "/" + rel in cg, cg
        assert c.call("Shutdown", _field(1, "cg"))[0] == 0
        c.close()
        deadline = time.monotonic() + 10
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        os.close(logfd)
        import glob
        for _ in range(50):
            left = [d for d in glob.glob("/sys/fs/cgroup/*/" + rel) + glob.glob("/sys/fs/cgroup/" + rel)]
            for d in left:
                for sub in (d, os.path.dirname(d)):
                    try:
                        os.rmdir(sub)
                    except OSError:
                        pass
            if not left:
                break
            time.sleep(0.05)
