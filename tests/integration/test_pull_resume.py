"""A pull killed with SIGKILL in the middle of a layer leaves its ingest; the next pull into the same
store resumes it with a Range request instead of downloading the layer again (src/image/pull.c)."""

import json
import os
import signal
import subprocess
import tempfile

from conftest import build_dir, require_binary


def test_pull_resume_after_kill9(registry, large_image):
    tool = require_binary(os.path.join(build_dir(), "src", "image", "krill-image-pull-tool"),
                          "krill-image-pull-tool")
    ref = registry.push(large_image, "test/large:1")
    root = tempfile.mkdtemp(prefix="krill-pull-resume-")
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
