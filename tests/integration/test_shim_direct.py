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
def shim():
    skip_unless_root()
    build = containerd_env.build_dir()
    return require_binary(os.path.join(build, "src", "shim", containerd_env.SHIM_NAME), "krill shim")


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


def start(shim, workdir, cid, bundle):
    # hold the log FIFO open read-write like containerd, so the shim never blocks on it
    logfd = os.open(os.path.join(bundle, "log"), os.O_RDWR | os.O_NONBLOCK)
    env = dict(os.environ, TTRPC_ADDRESS=os.path.join(workdir, "d.sock.ttrpc"))
    t0 = time.monotonic()
    r = subprocess.run(shim_cmd(shim, workdir, cid, "start"), cwd=bundle, env=env, input=b"",
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
