"""Several images unpacking at once through ctr: Diff.Apply runs on threads of its own, so five concurrent
`ctr images import` (more than libuv's 4 pool workers) all finish, each namespace gets the same chain IDs as
a lone import, and other RPCs keep being answered meanwhile."""

import subprocess
import time

import daemons
from test_snapshot_unpack import require_unpack


def test_unpack_parallel_imports(krilld, large_image_small, busybox_oci):
    require_unpack(krilld)
    jobs = []
    for i in range(5):
        archive = large_image_small if i % 2 == 0 else busybox_oci
        p = subprocess.Popen([daemons.CTR, "--address", krilld.address, "--namespace", "par%d" % i, "images",
                              "import", archive], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        jobs.append((i, archive, p))
    # the daemon answers while the applies run (they do not hold the worker pool)
    answered = 0
    while any(p.poll() is None for _, _, p in jobs):
        r = krilld.ctr("--namespace", "par0", "snapshots", "ls", timeout=30)
        assert r.returncode == 0, r.stderr
        answered += 1
        time.sleep(0.05)
    for i, _, p in jobs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, "import %d: %s %s" % (i, out, err)
        assert "unpacking" in out, out
    tops = {}
    for i, archive, _ in jobs:
        rows = [l.split() for l in krilld.ctr("--namespace", "par%d" % i, "snapshots", "ls").stdout.splitlines()[1:]]
        assert all(r[-1] == "Committed" for r in rows), rows
        tops.setdefault(archive, set()).add(tuple(sorted(r[0] for r in rows)))
    # the same image unpacked in different namespaces has the same chain IDs
    assert all(len(v) == 1 for v in tops.values()), tops
    assert len(next(iter(tops[large_image_small]))) == 4
