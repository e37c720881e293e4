"""A layer that hard-links a file of a lower layer (legal in a tar, produced by some image builders, never by
containerd's own differ): applying it into an overlay upper dir must copy the target up and link it, so the
mounted overlay shows both names on one inode with the lower file's content and mode. Driven by Debian's ctr
(`images import` unpacks through Snapshots.Prepare, Diff.Apply, Snapshots.Commit)."""

import json
import os

import mkimage
from conftest import skip_unless_root
from test_snapshot_unpack import import_image, mount_and_run, require_unpack, top_chain

E = mkimage.Entry


def two_layer_image(out):
    layer1 = mkimage.add_parents([
        E("file", "usr/lib/tool", 0o4751, data=b"TOOL-BINARY\n"),
        E("file", "usr/lib/other", 0o644, data=b"other\n"),
    ])
    layer2 = [
        # the parents are not in the tar: they come from layer 1 through the copy-up
        E("hardlink", "usr/lib/tool-alias", 0o4751, target="usr/lib/tool"),
        E("dir", "bin", 0o755),
        E("hardlink", "bin/tool", 0o4751, target="usr/lib/tool"),
    ]
    history = ["layer 1", "layer 2"]
    mkimage.write_archive([layer1, layer2], history, ["/bin/tool"], "docker.io/library/hardlink-lower:test",
                          "oci", "gzip", out)


def test_unpack_hardlink_to_lower_layer(krilld):
    require_unpack(krilld)
    skip_unless_root()
    archive = os.path.join(krilld.dir, "hardlink-lower.tar")
    two_layer_image(archive)
    import_image(krilld, archive)
    chain = top_chain(krilld)
    krilld.ctr("snapshots", "prepare", "hl", chain, check=True)
    out = mount_and_run(krilld, "hl", "stat -c '%i %h %a' $R/usr/lib/tool $R/usr/lib/tool-alias $R/bin/tool; "
                                      "cat $R/bin/tool; cat $R/usr/lib/other")
    lines = out.splitlines()
    inodes = {l.split()[0] for l in lines[:3]}
    assert len(inodes) == 1, out
    assert all(l.split()[1:] == ["3", "4751"] for l in lines[:3]), out
    assert lines[3:] == ["TOOL-BINARY", "other"], out
    # the lower layer's file is untouched: one link, in its own snapshot
    krilld.ctr("snapshots", "view", "l1", _parent_of(krilld, chain), check=True)
    out = mount_and_run(krilld, "l1", "stat -c '%h' $R/usr/lib/tool; test ! -e $R/bin/tool && echo ok")
    assert out.split() == ["1", "ok"], out
    krilld.ctr("snapshots", "rm", "hl", check=True)
    krilld.ctr("snapshots", "rm", "l1", check=True)


def _parent_of(daemon, key):
    r = daemon.ctr("snapshots", "info", key, check=True)
    return json.loads(r.stdout)["Parent"]
