"""Image unpack through Debian's ctr (Snapshots.Stat/Prepare, Diff.Apply, Snapshots.Commit per layer):
`ctr images import` unpacks into committed snapshots named by chain ID, exactly as containerd names them,
and a container snapshot prepared on top mounts to the expected tree (whiteouts, opaque directories, hard
links, symlinks, fifos, setuid/setgid/sticky modes)."""

import os
import re
import stat
import subprocess

import pytest

import mkimage
from conftest import skip_unless_root

TIME = re.compile(r'time="[^"]*" ')


def require_unpack(krilld):
    plugins = krilld.ctr("plugins", "ls", "-q", "type==io.containerd.grpc.v1").stdout.split()
    missing = [p for p in ("content", "images", "leases", "snapshots", "diff") if p not in plugins]
    if missing:
        print("SKIP: krilld lacks %s in this build" % ", ".join(missing))
        pytest.fail("krilld lacks %s in this build" % ", ".join(missing))


def snapshots_ls(daemon):
    r = daemon.ctr("snapshots", "ls", timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def import_image(daemon, archive):
    r = daemon.ctr("images", "import", archive, timeout=300)
    assert r.returncode == 0, "import failed: %s %s" % (r.stdout, r.stderr)
    assert "unpacking" in r.stdout, r.stdout
    return r.stdout


def top_chain(daemon):
    """The committed snapshot without children: the image's top chain ID."""
    rows = [line.split() for line in snapshots_ls(daemon).splitlines()[1:]]
    parents = {row[1] for row in rows if len(row) == 3}
    tops = [row[0] for row in rows if row[-1] == "Committed" and row[0] not in parents]
    assert len(tops) == 1, rows
    return tops[0]


def mount_and_run(daemon, key, script):
    """Runs script (with $R = the mounted rootfs) in a private mount namespace."""
    cmd = daemon.ctr("snapshots", "mounts", "/MNT", key, check=True).stdout.strip()
    target = os.path.join(daemon.dir, "rootfs-" + key)
    os.mkdir(target)
    full = "set -e; %s; R=%s; %s; umount %s" % (cmd.replace("/MNT", target), target, script, target)
    r = subprocess.run(["unshare", "-m", "sh", "-c", full], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "%s\n%s" % (full, r.stderr)
    assert os.listdir(target) == [], "mount leaked"
    os.rmdir(target)
    return r.stdout


@pytest.mark.parametrize("variant", ["oci-gzip", "oci-zstd", "oci-none", "docker"])
def test_snapshot_unpack_busybox_matches_containerd(krilld, containerd, image_archive, variant):
    require_unpack(krilld)
    if variant == "docker":
        archive = image_archive("busybox", fmt="docker")
    else:
        archive = image_archive("busybox", compression=variant.split("-")[1])
    import_image(containerd, archive)
    import_image(krilld, archive)
    # same chain IDs, parents and kinds as containerd
    assert snapshots_ls(krilld) == snapshots_ls(containerd)
    # importing again finds the layers unpacked (Stat succeeds) and changes nothing
    import_image(krilld, archive)
    assert snapshots_ls(krilld) == snapshots_ls(containerd)


def test_snapshot_unpack_busybox_runs(krilld, busybox_oci):
    require_unpack(krilld)
    skip_unless_root()
    import_image(krilld, busybox_oci)
    chain = top_chain(krilld)
    krilld.ctr("snapshots", "prepare", "ctr1", chain, check=True)
    out = mount_and_run(krilld, "ctr1", "test -x $R/bin/busybox; readlink $R/bin/sh; cat $R/etc/passwd | head -1; "
                                        "chroot $R /bin/busybox echo hello-from-busybox")
    lines = out.splitlines()
    assert lines[0] in ("busybox", "/bin/busybox"), out
    assert lines[1].startswith("root:"), out
    assert lines[2] == "hello-from-busybox", out
    krilld.ctr("snapshots", "rm", "ctr1", check=True)


def test_snapshot_unpack_layered_image_tree(krilld, large_image_small):
    """The four-layer test image: whiteouts, opaque dir, links, fifo and special modes come out exactly as
    mkimage.py's expectation says."""
    require_unpack(krilld)
    skip_unless_root()
    import_image(krilld, large_image_small)
    chain = top_chain(krilld)
    # four layers: four committed snapshots in one chain
    assert len([l for l in snapshots_ls(krilld).splitlines()[1:] if l.split()[-1] == "Committed"]) == 4
    krilld.ctr("snapshots", "prepare", "tree", chain, check=True)
    exp = mkimage.LARGE_EXPECT
    checks = []
    for path, content in exp["files"].items():
        checks.append('printf "F %s %%s\\n" "$(base64 -w0 < $R/%s)"' % (path, path))
    for path in exp["absent"]:
        checks.append('if [ -e $R/%s ] || [ -L $R/%s ]; then echo "PRESENT %s"; fi' % (path, path, path))
    for path in exp["symlinks"]:
        checks.append('echo "L %s $(readlink $R/%s)"' % (path, path))
    for a, b in exp["hardlinks"]:
        checks.append('echo "H %s $(stat -c %%i $R/%s) $(stat -c %%i $R/%s)"' % (a, a, b))
    for path in exp["fifos"]:
        checks.append('if [ -p $R/%s ]; then echo "P %s"; fi' % (path, path))
    for path in exp["modes"]:
        checks.append('echo "M %s $(stat -c %%a $R/%s)"' % (path, path))
    out = mount_and_run(krilld, "tree", "; ".join(checks))
    import base64
    seen = {}
    for line in out.splitlines():
        kind, rest = line.split(" ", 1)
        seen.setdefault(kind, []).append(rest)
    assert "PRESENT" not in seen, seen.get("PRESENT")
    files = dict(x.split(" ", 1) for x in seen["F"])
    for path, content in exp["files"].items():
        assert base64.b64decode(files[path]).decode() == content, path
    links = dict(x.split(" ", 1) for x in seen["L"])
    assert links == exp["symlinks"]
    for x in seen["H"]:
        _, ia, ib = x.split()
        assert ia == ib, x
    assert sorted(seen["P"]) == sorted(exp["fifos"])
    modes = {x.split()[0]: int(x.split()[1], 8) for x in seen["M"]}
    assert modes == {p: m & 0o7777 for p, m in exp["modes"].items()}
    krilld.ctr("snapshots", "rm", "tree", check=True)


def test_snapshot_unpack_image_rm_and_gc_removes_snapshots(krilld, busybox_oci):
    require_unpack(krilld)
    import_image(krilld, busybox_oci)
    assert snapshots_ls(krilld).splitlines()[1:], "no snapshots after import"
    images = krilld.ctr("images", "ls", "-q", check=True).stdout.split()
    r = krilld.ctr("images", "rm", "--sync", *images)
    assert r.returncode == 0, r.stderr
    assert snapshots_ls(krilld).splitlines()[1:] == []
    sdir = os.path.join(krilld.root, "io.containerd.snapshotter.v1.overlayfs", "snapshots")
    if os.path.isdir(sdir):
        assert os.listdir(sdir) == []
