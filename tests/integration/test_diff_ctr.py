"""Diff.Diff (containerd's walking differ) through Debian's ctr: `ctr snapshots diff` of a container snapshot
that added, changed, removed, hard-linked and re-moded files must list exactly what containerd's lists (same
entries, order, types, modes, sizes, link targets), store the gzip blob with the
containerd.io/uncompressed label (the sha256 of the tar) and the caller's labels, and the two-snapshot form
must give the same changes."""

import gzip
import hashlib
import io
import os
import subprocess
import tarfile

import daemons
from conftest import skip_unless_root
from test_snapshot_unpack import import_image, require_unpack, top_chain

CHANGES = ("echo new > $R/etc/new; echo changed >> $R/etc/passwd; rm $R/etc/group; mkdir -p $R/opt/x; "
           "echo y > $R/opt/x/y; ln $R/opt/x/y $R/opt/x/y2; rm -rf $R/root; chmod 700 $R/tmp; "
           "ln -s ../etc/new $R/opt/link; mkfifo $R/opt/fifo")


def change_snapshot(d, key, chain):
    d.ctr("snapshots", "prepare", key, chain, check=True)
    cmd = d.ctr("snapshots", "mounts", "/MNT", key, check=True).stdout.strip()
    target = os.path.join(d.dir, "mnt-" + key)
    os.mkdir(target)
    script = "set -e; %s; R=%s; %s; umount %s" % (cmd.replace("/MNT", target), target, CHANGES, target)
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    os.rmdir(target)


def ctr_diff(d, *args):
    r = subprocess.run([daemons.CTR, "--address", d.address, "snapshots", "diff"] + list(args),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def listing(blob):
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tf:
        return [(m.name, m.type, m.mode, m.uid, m.gid, m.size, m.linkname) for m in tf.getmembers()]


def run_diffs(d, archive):
    import_image(d, archive)
    chain = top_chain(d)
    change_snapshot(d, "work", chain)
    one = ctr_diff(d, "--keep", "--label", "krill.test=yes", "work")
    two = ctr_diff(d, chain, "work")
    content = d.ctr("content", "ls", check=True).stdout
    return chain, one, two, content


def test_diff_ctr_matches_containerd(krilld, containerd, busybox_oci):
    require_unpack(krilld)
    skip_unless_root()
    _, kone, ktwo, kcontent = run_diffs(krilld, busybox_oci)
    # no temp mount is left behind
    tmpm = os.path.join(krilld.root, "tmpmounts")
    assert not os.path.isdir(tmpm) or os.listdir(tmpm) == []
    _, cone, ctwo, _ = run_diffs(containerd, busybox_oci)
    want = listing(cone)
    assert listing(kone) == want
    assert listing(ktwo) == listing(ctwo) == want
    names = [e[0] for e in want]
    assert "etc/.wh.group" in names and ".wh.root" in names and "opt/x/y2" in names
    # the kept blob: compressed digest from stdout, uncompressed label = sha256 of the tar
    dg = "sha256:" + hashlib.sha256(kone).hexdigest()
    raw = "sha256:" + hashlib.sha256(gzip.decompress(kone)).hexdigest()
    line = [l for l in kcontent.splitlines() if l.startswith(dg)]
    assert line, kcontent
    assert "containerd.io/uncompressed=" + raw in line[0], line[0]
    assert "krill.test=yes" in line[0], line[0]


def test_diff_ctr_unsupported_media_type(krilld, busybox_oci):
    require_unpack(krilld)
    skip_unless_root()
    import_image(krilld, busybox_oci)
    krilld.ctr("snapshots", "prepare", "w2", top_chain(krilld), check=True)
    r = subprocess.run([daemons.CTR, "--address", krilld.address, "snapshots", "diff", "--media-type",
                        "application/x-foo", "w2"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "unsupported diff media type: application/x-foo" in r.stderr, r.stderr
