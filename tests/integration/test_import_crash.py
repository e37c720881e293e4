"""Issue 3: a kill -9 of krilld in the middle of `ctr images import` leaves a usable store: no half-written
blob is visible as committed, a retried import succeeds, and the interrupted import's leftovers (its ingest
and lease) are collected once the lease is removed."""
import hashlib
import os
import subprocess
import time

from daemons import CTR


def _ingest_bytes(root):
    total = 0
    ingest = os.path.join(root, "io.containerd.content.v1.content", "ingest")
    for dirpath, _dirs, files in os.walk(ingest):
        if "data" in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, "data"))
            except FileNotFoundError:  # committed (renamed into blobs) meanwhile
                pass
    return total


def _blobs(root):
    d = os.path.join(root, "io.containerd.content.v1.content", "blobs", "sha256")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_kill9_during_import_then_retry(krilld, large_image):
    proc = subprocess.Popen([CTR, "--address", krilld.address, "images", "import", "--no-unpack", large_image],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until the import is half way into a layer, then kill the daemon hard.
        deadline = time.monotonic() + 60
        while _ingest_bytes(krilld.root) < 4 << 20:
            assert proc.poll() is None, "import finished before it could be interrupted: " + proc.stderr.read()
            assert time.monotonic() < deadline, "import made no progress"
            time.sleep(0.01)
        krilld.kill9()
    finally:
        proc.wait(timeout=60)
    assert proc.returncode != 0

    krilld.restart()
    # Every committed blob is complete: its name is its sha256.
    for hexd in _blobs(krilld.root):
        path = os.path.join(krilld.root, "io.containerd.content.v1.content", "blobs", "sha256", hexd)
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert h.hexdigest() == hexd, "half-written blob visible as committed"
    # The interrupted write is still an ingest, visible as active content, not as a blob.
    active = krilld.ctr("content", "active")
    assert active.returncode == 0, active.stderr

    r = krilld.ctr("images", "import", large_image, timeout=300)
    assert r.returncode == 0, r.stderr
    ls = krilld.ctr("images", "ls", "-q")
    assert ls.stdout.split() != []

    # Leftovers of the interrupted import go away with its lease (ctr's import lease expires after 24 h;
    # removing it with --sync runs the collection now).
    leases = krilld.ctr("leases", "ls", "-q").stdout.split()
    for lease in leases:
        r = krilld.ctr("leases", "rm", "--sync", lease)
        assert r.returncode == 0, r.stderr
    assert krilld.ctr("content", "active").stdout.strip().splitlines()[1:] == []
    assert _ingest_bytes(krilld.root) == 0
    # The image is complete and its blobs are all still there after the collection.
    check = krilld.ctr("images", "check")
    assert check.returncode == 0, check.stderr
    assert "incomplete" not in check.stdout and "missing" not in check.stdout, check.stdout
