"""Wire compatibility of krill's ttrpc server with an independent client.

Drives $KRILL_BUILD/src/proto/ttrpc/ttrpc_test_server (built by meson from src/proto/ttrpc/tests) with
/work/shared/tools/ttrpc_client.py, the client that was checked against the real containerd-shim-runc-v2,
plus a few raw-socket checks of behaviour that client does not exercise (oversize frames, even stream ids).
Run with /usr/bin/python3 -m pytest.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile

import pytest

BUILD = os.environ.get("KRILL_BUILD", "/work/main/build")
SERVER = os.path.join(BUILD, "src/proto/ttrpc/ttrpc_test_server")
CLIENT = "/work/shared/tools/ttrpc_client.py"


def varint(b, i):
    v = shift = 0
    while True:
        x = b[i]
        i += 1
        v |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return v, i


def fields(b):
    """Decodes one protobuf message level into {field: [values]} (varints as int, bytes as bytes)."""
    out, i = {}, 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise AssertionError("unexpected wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def enc_varint(v):
    out = b""
    while True:
        x, v = v & 0x7F, v >> 7
        if v:
            out += bytes([x | 0x80])
        else:
            return out + bytes([x])


def ld(field, b):
    return bytes([field << 3 | 2]) + enc_varint(len(b)) + b


@pytest.fixture
def server():
    if not os.access(SERVER, os.X_OK):
        pytest.skip("%s not built" % SERVER)
    d = tempfile.mkdtemp(prefix="krill-ttrpc-")
    sock = os.path.join(d, "s.sock")
    p = subprocess.Popen([SERVER, sock], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        assert (os.stat(sock).st_mode & 0o777) == 0o600
        yield p, sock
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        if os.path.exists(sock):
            os.unlink(sock)
        os.rmdir(d)


def test_reference_client(server):
    p, sock = server
    if not os.path.exists(CLIENT):
        pytest.skip("%s missing" % CLIENT)
    r = subprocess.run(["/usr/bin/python3", CLIENT, "unix://" + sock], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    got = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\w+): sent hdr\(len=\d+,sid=(\d+),type=1\) -> got hdr\(len=(\d+),sid=(\d+),type=(\d+),"
                     r"flags=(\d+)\) body=([0-9a-f]*)", line)
        assert m, line
        method, sid, ln, rsid, typ, fl, body = m.groups()
        assert rsid == sid and typ == "2" and fl == "0"
        assert int(ln) == len(body) // 2
        got[method] = fields(bytes.fromhex(body))
    # Connect: Response{payload: ConnectResponse{shim_pid, task_pid=1 (metadata seen), version="timeout"}}
    conn = fields(got["Connect"][2][0])
    assert conn[1] == [p.pid]
    assert conn[2] == [1]
    assert conn[3] == [b"timeout"]
    assert 1 not in got["Connect"]  # no status on success
    st = fields(got["State"][1][0])
    assert st[1] == [5] and st[2] == [b"container not created: not found"]
    st = fields(got["NoSuchMethod"][1][0])
    assert st[1] == [12] and st[2] == [b"method NoSuchMethod"]
    assert got["Shutdown"] == {}  # Empty: zero-length body
    assert p.wait(timeout=10) == 0
    assert not os.path.exists(sock)


def raw_call(s, sid, body, typ=1):
    s.sendall(struct.pack(">IIBB", len(body), sid, typ, 0) + body)
    h = b""
    while len(h) < 10:
        c = s.recv(10 - len(h))
        assert c, "connection closed"
        h += c
    ln, rsid, rtyp, fl = struct.unpack(">IIBB", h)
    data = b""
    while len(data) < ln:
        data += s.recv(ln - len(data))
    return rsid, rtyp, data


def test_raw_edge_cases(server):
    p, sock = server
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    state = ld(1, b"containerd.task.v2.Task") + ld(2, b"State") + ld(3, ld(1, b"t1"))
    # Oversized frame: discarded, ResourceExhausted on that stream, connection kept.
    big = b"\0" * ((4 << 20) + 1)
    rsid, typ, data = raw_call(s, 1, big)
    assert (rsid, typ) == (1, 2)
    st = fields(fields(data)[1][0])
    assert st[1] == [8]
    assert b"exceed maximum message size of 4194304" in st[2][0]
    # Even stream id: InvalidArgument.
    rsid, typ, data = raw_call(s, 2, state)
    assert rsid == 2
    assert fields(fields(data)[1][0])[1] == [3]
    # Unknown service.
    rsid, _, data = raw_call(s, 3, ld(1, b"x.Y") + ld(2, b"Z"))
    st = fields(fields(data)[1][0])
    assert st[1] == [12] and st[2] == [b"service x.Y"]
    # Still serving normally on the same connection.
    rsid, _, data = raw_call(s, 5, state)
    assert rsid == 5 and fields(fields(data)[1][0])[1] == [5]
    s.close()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
