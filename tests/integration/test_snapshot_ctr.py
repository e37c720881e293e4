"""Snapshots through Debian's ctr: krilld must answer `ctr snapshots ...` the way Debian's containerd 1.6.20
does (same keys, kinds, parents, mount commands and error texts), and the mounts it prints must work.

Runs the same ctr command lines against a private containerd and against krilld. Daemon root paths in the
output are replaced by ROOT, logrus timestamps are removed, and snapshot info JSON is compared without its
times."""

import json
import os
import queue
import re
import subprocess
import threading
import time

import pytest

import daemons
from conftest import skip_unless_root

TIME = re.compile(r'time="[^"]*" ')
BACKEND_KEY = re.compile(r'\b(default|other)/[0-9]+/')


def require_snapshots(krilld):
    plugins = krilld.ctr("plugins", "ls", "-q", "type==io.containerd.grpc.v1").stdout.split()
    if "snapshots" not in plugins:
        print("SKIP: krilld has no snapshots service in this build")
        pytest.fail("krilld has no snapshots service in this build")


def norm(daemon, text):
    root = os.path.realpath(daemon.root)
    text = text.replace(root, "ROOT").replace(daemon.root, "ROOT")
    # backend keys are "<ns>/<sequence>/<key>"; the sequences are each daemon's own
    return BACKEND_KEY.sub(r"\1/N/", TIME.sub("", text))


def run(daemon, args, ns=None):
    r = daemon.ctr(*args, ns=ns, timeout=60)
    out = norm(daemon, r.stdout)
    if args[:2] == ["snapshots", "info"] and r.returncode == 0:
        info = json.loads(r.stdout)
        info.pop("Created", None)
        info.pop("Updated", None)
        if "containerd.io/gc.root" in info.get("Labels") or {}:
            info["Labels"]["containerd.io/gc.root"] = "TIME"  # ctr labels with the current time
        out = json.dumps(info, sort_keys=True)
    return r.returncode, out, norm(daemon, r.stderr)


def differential(krilld, containerd, steps):
    bad = []
    for args in steps:
        want = run(containerd, args)
        got = run(krilld, args)
        if args[:2] == ["snapshots", "label"]:
            # ctr prints the label map in Go's random iteration order
            want = (want[0], ",".join(sorted(want[1].strip().split(","))), want[2])
            got = (got[0], ",".join(sorted(got[1].strip().split(","))), got[2])
        if got != want:
            bad.append("ctr %s:\n  krilld     %r\n  containerd %r" % (" ".join(args), got, want))
    assert not bad, "\n".join(bad)


def test_snapshot_ctr_lifecycle_matches_containerd(krilld, containerd):
    require_snapshots(krilld)
    steps = [
        ["snapshots", "ls"],
        ["snapshots", "prepare", "base"],
        ["snapshots", "mounts", "/mnt/x", "base"],
        ["snapshots", "commit", "base-c", "base"],
        ["snapshots", "prepare", "k1", "base-c"],
        ["snapshots", "view", "v1", "base-c"],
        ["snapshots", "mounts", "/mnt/x", "k1"],
        ["snapshots", "mounts", "/mnt/x", "v1"],
        ["snapshots", "commit", "l2", "k1"],
        ["snapshots", "prepare", "top", "l2"],
        ["snapshots", "view", "v2", "l2"],
        ["snapshots", "mounts", "/mnt/x", "top"],
        ["snapshots", "mounts", "/mnt/x", "v2"],
        ["snapshots", "ls"],
        ["snapshots", "info", "l2"],
        ["snapshots", "info", "top"],
        ["snapshots", "label", "l2", "foo=bar", "x=y"],
        ["snapshots", "label", "l2", "x="],
        ["snapshots", "info", "l2"],
        ["snapshots", "tree"],
        ["snapshots", "ls"],
    ]
    differential(krilld, containerd, steps)


def test_snapshot_ctr_errors_match_containerd(krilld, containerd):
    require_snapshots(krilld)
    steps = [
        ["snapshots", "prepare", "a"],
        ["snapshots", "prepare", "a"],
        ["snapshots", "prepare", "b", "missing-parent"],
        ["snapshots", "prepare", "c", "a"],
        ["snapshots", "view", "v", "a"],
        ["snapshots", "commit", "a-c", "a"],
        ["snapshots", "view", "v", "a-c"],
        ["snapshots", "commit", "v-c", "v"],
        ["snapshots", "commit", "a-c", "v"],
        ["snapshots", "mounts", "/mnt/x", "a-c"],
        ["snapshots", "mounts", "/mnt/x", "nothere"],
        ["snapshots", "info", "nothere"],
        ["snapshots", "rm", "a-c"],
        ["snapshots", "rm", "nothere"],
        ["snapshots", "rm", "v"],
        ["snapshots", "rm", "a-c"],
        ["snapshots", "ls"],
        ["--namespace", "other", "snapshots", "ls"],
        ["snapshots", "--snapshotter", "nope", "ls"],
    ]
    differential(krilld, containerd, steps)


def test_snapshot_ctr_mounts_work(krilld):
    """The overlay mount ctr prints for a child of a committed snapshot shows the parent's files, and writes
    land in the active snapshot only."""
    require_snapshots(krilld)
    skip_unless_root()
    r = krilld.ctr("snapshots", "prepare", "base", check=True)
    out = krilld.ctr("snapshots", "mounts", "/mnt/x", "base", check=True).stdout.strip()
    m = re.match(r"mount -t bind (\S+) /mnt/x -o rw,rbind$", out)
    assert m, out
    with open(os.path.join(m.group(1), "from-base"), "w") as f:
        f.write("base layer\n")
    krilld.ctr("snapshots", "commit", "base-c", "base", check=True)
    krilld.ctr("snapshots", "prepare", "work", "base-c", check=True)
    cmd = krilld.ctr("snapshots", "mounts", "/MNT", "work", check=True).stdout.strip()
    assert cmd.startswith("mount -t overlay overlay /MNT -o "), cmd
    target = os.path.join(krilld.dir, "mnt")
    os.mkdir(target)
    script = ("set -e; %s; cat %s/from-base; echo new > %s/from-work; umount %s"
              % (cmd.replace("/MNT", target), target, target, target))
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "base layer\n"
    upper = re.search(r"upperdir=([^,]+)", cmd).group(1)
    assert open(os.path.join(upper, "from-work")).read() == "new\n"
    assert not os.path.exists(os.path.join(m.group(1), "from-work"))
    assert not os.listdir(target)
    r = krilld.ctr("snapshots", "usage", "work", check=True)
    assert "work" in r.stdout
    for key in ("work", "base-c"):
        krilld.ctr("snapshots", "rm", key, check=True)
    assert krilld.ctr("snapshots", "ls").stdout.splitlines()[1:] == []


def collect_snapshot_events(daemon, steps):
    """Runs ctr commands while `ctr events` listens; returns the (topic, event JSON) lines they caused."""
    proc = subprocess.Popen([daemons.CTR, "--address", daemon.address, "events"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x.rstrip("\n")) for x in proc.stdout], daemon=True).start()

    def parse(line):
        parts = line.split(" ", 6)  # "<date> <time> +0000 UTC <ns> <topic> <json>"
        return parts[5], parts[6]

    def wait_marker(name, deadline):
        # ctr subscribes asynchronously: prepare markers until one is seen
        n = 0
        while time.monotonic() < deadline:
            n += 1
            daemon.ctr("snapshots", "prepare", "%s-%d" % (name, n), check=True)
            try:
                while True:
                    topic, ev = parse(lines.get(timeout=0.3))
                    if topic == "/snapshot/prepare" and json.loads(ev)["key"].startswith(name):
                        return
            except queue.Empty:
                pass
        raise AssertionError("ctr events never saw %s" % name)

    try:
        deadline = time.monotonic() + 30
        wait_marker("marker-start", deadline)
        for args in steps:
            daemon.ctr(*args, check=True)
        daemon.ctr("snapshots", "prepare", "marker-end", check=True)
        got = []
        while True:
            topic, ev = parse(lines.get(timeout=10))
            if topic == "/snapshot/prepare" and json.loads(ev)["key"] == "marker-end":
                break
            if "marker" not in ev:
                got.append((topic, ev))
        return got
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_snapshot_ctr_events_match_containerd(krilld, containerd):
    require_snapshots(krilld)
    plugins = krilld.ctr("plugins", "ls", "-q", "type==io.containerd.grpc.v1").stdout.split()
    if "events" not in plugins:
        print("SKIP: krilld has no events service in this build")
        pytest.fail("krilld has no events service in this build")
    steps = [
        ["snapshots", "prepare", "s1"],
        ["snapshots", "commit", "s1c", "s1"],
        ["snapshots", "prepare", "s2", "s1c"],
        ["snapshots", "view", "v", "s1c"],
        ["snapshots", "label", "s1c", "a=b"],
        ["snapshots", "rm", "v"],
        ["snapshots", "rm", "s2"],
        ["snapshots", "rm", "s1c"],
    ]
    want = collect_snapshot_events(containerd, steps)
    got = collect_snapshot_events(krilld, steps)
    assert got == want
    assert [t for t, _ in got] == ["/snapshot/prepare", "/snapshot/commit", "/snapshot/prepare",
                                   "/snapshot/remove", "/snapshot/remove", "/snapshot/remove"]
