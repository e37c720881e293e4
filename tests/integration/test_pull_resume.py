"""A pull killed with SIGKILL in the middle of a layer leaves its ingest; the next pull into the same
store resumes it with a Range request instead of downloading the layer again (src/image/pull.c)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import build_dir, require_binary


@pytest.fixture
def store():
    root = tempfile.mkdtemp(prefix="krill-pull-resume-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_pull_resume_after_kill9(registry, large_image, store):
    tool = require_binary(os.path.join(build_dir(), "src", "image", "krill-image-pull-tool"),
                          "krill-image-pull-tool")
    ref = registry.push(large_image, "test/large:1")
    root = store
    p = subprocess.Popen([tool, "--root", root, "--plain-http", "--no-unpack", "--concurrency", "1",
                          "--verbose", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_at = None
    for line in p.stderr:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "downloading":
            off, total = (int(x) for x in parts[2].split("/"))
            if total > 4 << 20 and off > total // 4:
                os.kill(p.pid, signal.SIGKILL)
                killed_at = (parts[1], off, total)
                break
    p.wait(timeout=60)
    p.stdout.close()
    p.stderr.close()
    assert killed_at, "the pull finished before a large layer was half way"
    assert p.returncode == -signal.SIGKILL
    ingests = os.listdir(os.path.join(root, "content", "ingest"))
    assert ingests, "no ingest left to resume"

    r = subprocess.run([tool, "--root", root, "--plain-http", "--no-unpack", "--verbose", ref],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # the interrupted layer restarted at (at least) the offset reached before the kill
    first = [ln.split() for ln in r.stderr.splitlines() if ln.startswith("downloading " + killed_at[0])]
    assert first, r.stderr[-2000:]
    assert int(first[0][2].split("/")[0]) >= killed_at[1] // 2
    assert out["bytes"] < sum(os.path.getsize(os.path.join(root, "content", "blobs", "sha256", b))
                              for b in os.listdir(os.path.join(root, "content", "blobs", "sha256")))
    assert not os.listdir(os.path.join(root, "content", "ingest"))


# ---- krill images pull (the CLI writes into krilld through content.v1) killed with SIGKILL ----

import re
import socket
import threading
import time


class ThrottledForwarder:
    """TCP forwarder to the registry that slows responses down (so a kill lands in the middle of a layer),
    counts the bytes it passed back, and records the request lines and Range headers it forwarded."""

    def __init__(self, target_port, rate=12 << 20):
        self.target_port = target_port
        self.rate = rate
        self.sent = 0
        self.requests = []  # (request line, range header or None)
        self.lock = threading.Lock()
        self.passed = threading.Event()
        self.threshold = None
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.host = "127.0.0.1:%d" % self.port
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._up, args=(c, u), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c), daemon=True).start()

    def _up(self, c, u):
        buf = b""
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                buf += d
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    lines = head.decode("latin-1").split("\r\n")
                    rng = [l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("range:")]
                    with self.lock:
                        self.requests.append((lines[0], rng[0] if rng else None))
                u.sendall(d)
        except OSError:
            pass
        finally:
            for s in (u, c):
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    def _down(self, u, c):
        try:
            while True:
                d = u.recv(65536)
                if not d:
                    break
                c.sendall(d)
                with self.lock:
                    self.sent += len(d)
                    if self.threshold is not None and self.sent >= self.threshold:
                        self.passed.set()
                if self.rate:
                    time.sleep(len(d) / self.rate)  # throttling, not synchronisation
        except OSError:
            pass
        finally:
            for s in (u, c):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.sock.close()


def _first_layer(krilld_fx, image):
    """Digest and size of the image's first (largest) layer, from the OCI archive."""
    import tarfile
    with tarfile.open(image) as t:
        index = json.load(t.extractfile("index.json"))
        man = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
    return man["layers"][0]["digest"], man["layers"][0]["size"]


def _active(krilld):
    """ctr content active: {ref: offset} (krilld's ListStatuses)."""
    r = krilld.ctr("content", "active")
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines()[1:]:
        f = line.split()
        if f:
            out[f[0]] = f[1]
    return out


def _start_pull(krilld, ref):
    cli = os.path.join(krilld.build, "src", "cli", "krill")
    return subprocess.Popen([cli, "--address", krilld.address, "images", "pull", "--plain-http",
                             "--max-concurrent-downloads", "1", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_resumed_and_complete(krilld, fwd, ref, layer):
    fwd.rate = None
    with fwd.lock:
        fwd.requests.clear()
    r = krilld.krill("images", "pull", "--plain-http", "--print-chainid", ref, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    with fwd.lock:
        gets = [rng for line, rng in fwd.requests if line.startswith("GET ") and layer in line]
    # the interrupted layer was fetched once more, from the ingest's offset (a Range request), not from 0
    assert gets and gets[0] and re.match(r"bytes=[1-9][0-9]*-$", gets[0]), fwd.requests
    chain = [l for l in r.stdout.splitlines() if l.startswith("image chain ID: ")][0].split(": ")[1]
    assert chain in krilld.ctr("snapshots", "ls").stdout
    chk = krilld.ctr("images", "check")
    assert ref in chk.stdout and "complete" in chk.stdout and "incomplete" not in chk.stdout, chk.stdout
    assert not [k for k in _active(krilld) if k.startswith("layer-")]


def test_cli_pull_killed_then_resumed(krilld, registry, large_image):
    ref0 = registry.push(large_image, "test/large:1")
    layer, size = _first_layer(krilld, large_image)
    fwd = ThrottledForwarder(int(registry.host.split(":")[1]))
    try:
        ref = ref0.replace(registry.host, fwd.host)
        fwd.threshold = size // 3
        p = _start_pull(krilld, ref)
        try:
            assert fwd.passed.wait(120), "the pull never got a third into its first layer"
            p.kill()
        finally:
            p.wait(timeout=60)
            p.stdout.close()
            p.stderr.close()
        assert p.returncode == -9
        # the interrupted ingest stays, with what was written so far, and ctr sees it (ListStatuses)
        act = _active(krilld)
        assert "layer-" + layer in act, act
        _check_resumed_and_complete(krilld, fwd, ref, layer)
    finally:
        fwd.close()


def test_krilld_killed_during_cli_pull_then_resumed(krilld, registry, large_image):
    ref0 = registry.push(large_image, "test/large:1")
    layer, size = _first_layer(krilld, large_image)
    fwd = ThrottledForwarder(int(registry.host.split(":")[1]))
    try:
        ref = ref0.replace(registry.host, fwd.host)
        fwd.threshold = size // 3
        p = _start_pull(krilld, ref)
        try:
            assert fwd.passed.wait(120), "the pull never got a third into its first layer"
            krilld.kill9()
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        # the CLI notices the lost daemon and fails instead of hanging or retrying forever
        assert p.returncode == 1, out + err
        krilld.restart()
        act = _active(krilld)
        assert "layer-" + layer in act, act
        _check_resumed_and_complete(krilld, fwd, ref, layer)
    finally:
        fwd.close()
