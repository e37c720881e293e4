"""Pull progress with the concurrent pipeline: `krill images pull` prints plain per-layer status lines when
stdout is not a terminal and redraws a table with byte counts on a terminal; Debian's ctr pulling into
krilld sees its transfers' offsets through content ListStatuses (its progress table)."""

import os
import pty
import re
import select
import subprocess
import time

from test_pull_resume import ThrottledForwarder


def _via(fwd, registry, ref):
    return ref.replace(registry.host, fwd.host)


def test_plain_lines_per_layer(krilld, registry, large_image):
    ref = registry.push(large_image, "test/large:1")
    r = krilld.krill("images", "pull", "--plain-http", ref, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "\033[" not in r.stdout
    seen = {}
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if line.startswith("layer-sha256:"):
            seen.setdefault(f[0].rstrip(":"), []).append(f[1])
    assert len(seen) == 4, r.stdout
    for ref_, states in seen.items():
        # one line per status change, in pipeline order
        assert states == ["waiting", "downloading", "done", "unpacking", "unpacked"], (ref_, states)
    assert re.search(r"^elapsed: [0-9.]+ s\ttotal: [0-9.]+ MiB", r.stdout, re.M), r.stdout
    assert r.stdout.rstrip().endswith("done")


def test_tty_table_redrawn_with_offsets(krilld, registry, large_image):
    ref0 = registry.push(large_image, "test/large:1")
    fwd = ThrottledForwarder(int(registry.host.split(":")[1]), rate=24 << 20)
    try:
        cli = os.path.join(krilld.build, "src", "cli", "krill")
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(cli, [cli, "--address", krilld.address, "images", "pull", "--plain-http",
                           _via(fwd, registry, ref0)])
        out = b""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rl, _, _ = select.select([fd], [], [], 1.0)
            if not rl:
                continue
            try:
                d = os.read(fd, 65536)
            except OSError:
                break
            if not d:
                break
            out += d
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    finally:
        fwd.close()
    text = out.decode(errors="replace")
    assert os.WEXITSTATUS(status) == 0, text[-2000:]
    # redrawn in place (cursor up + erase line), with partial byte counts while downloading
    assert "\033[2K" in text and re.search(r"\033\[[0-9]+A", text), text[-2000:]
    partial = re.findall(r"downloading\t\|[+-]+\|\t([0-9.]+) (B|KiB|MiB)/([0-9.]+) MiB", text)
    assert any(float(a) > 0 and not (u == "MiB" and a == b) for a, u, b in partial), text[-3000:]
    assert "unpacked" in text and "elapsed:" in text


def test_ctr_pull_into_krilld_shows_offsets(krilld, registry, large_image):
    ref0 = registry.push(large_image, "test/large:1")
    fwd = ThrottledForwarder(int(registry.host.split(":")[1]), rate=24 << 20)
    try:
        r = krilld.ctr("images", "pull", "--plain-http", _via(fwd, registry, ref0), timeout=300)
    finally:
        fwd.close()
    assert r.returncode == 0, r.stdout + r.stderr
    # ctr's table shows an ingest's offset only through krilld's ListStatuses
    lines = r.stdout.replace("\r", "\n").splitlines()
    offs = [re.search(r"\|\s+([0-9.]+) (MiB|KiB)/", l) for l in lines if "layer-sha256:" in l and "downloading" in l]
    assert any(m and float(m.group(1)) > 0 for m in offs), r.stdout[-3000:]
