#!/usr/bin/python3
"""Build reproducible container image archives for krill's tests and benchmarks.

Runs with Debian's /usr/bin/python3 and the standard library only (zstd layers
use the zstd binary).  Every tar member gets a fixed mtime, uid/gid 0 and a
sorted order, and JSON is written with sorted keys, so the same inputs give the
same digests on every run.

  mkimage.py busybox OUT.tar [--name REF] [--format oci|docker]
                             [--compression gzip|zstd|none]
      One layer: Debian's static busybox (busybox-static) at /bin/busybox, a
      symlink per applet in /bin, /etc/passwd (root, nobody), /etc/group,
      /tmp, /root.  Config: Cmd ["sh"], Env PATH.

  mkimage.py large OUT.tar [--size large|small] [--name REF] ...
      Four layers built from files of Debian packages installed on this machine
      (a merged-/usr "minbase" in layer 1, python in layer 2, TLS libraries in
      layer 3) plus a test tree under /opt/krill-test exercising whiteouts, an
      opaque directory, hard links, symlinks, a fifo and setuid/setgid modes.
      See LARGE_EXPECT below for what an unpacked rootfs must contain.
      --size small keeps the same layer structure but only a few MB.

  mkimage.py busybox OUT.tar --platforms linux/amd64,linux/arm64/v8
      An OCI image index with one manifest (and config) per platform, all
      sharing the same layer (for platform-matching tests).

  mkimage.py path KIND [options]
      Print the path of a cached archive under $KRILL_BUILD/test-images/
      (default /work/main/build/test-images), building it first when missing.
      The cache key covers this script, the options and the inputs (busybox
      binary digest, package versions), so a stale archive is never reused.

  mkimage.py expect KIND
      Print, as JSON, what the unpacked rootfs of the image must look like
      (used by unpack tests).
"""

import argparse
import fcntl
import gzip
import hashlib
import io
import json
import os
import platform
import stat
import subprocess
import sys
import tarfile

EPOCH = 1577836800  # 2020-01-01T00:00:00Z: fixed mtime of every member
CREATED = "2020-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX = "/bin/busybox"
DEFAULT_NAMES = {
    "busybox": "docker.io/library/busybox:test",
    "large": "docker.io/library/krill-large:test",
}

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}

# Packages of the three host-file layers of the large image ("required" adds
# every installed package of Priority required to layer 1, like a debootstrap
# minbase).  Missing packages are skipped; the cache key records the versions
# used.  /etc and /var are left out because they hold machine-local state.
LARGE_PACKAGES = {
    "large": (True, [["libc6", "libgcc-s1", "libzstd1", "liblzma5", "libbz2-1.0", "zlib1g"],
                     ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib"],
                     ["libssl3", "openssl", "ca-certificates", "runc"]]),
    "small": (False, [["sed", "grep", "gzip"], ["tzdata"], ["libzstd1"]]),
}

# Left out like a slim image does (and to keep the image near 120 MB).
EXCLUDE = ("usr/share/locale", "usr/share/man", "usr/share/info", "usr/share/lintian")

MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64",
          "lib32": "usr/lib32", "libx32": "usr/libx32"}

# The test tree under opt/krill-test, and what survives the last layer.
LARGE_EXPECT = {
    "files": {
        "opt/krill-test/keep.txt": "keep\n",
        "opt/krill-test/replaced.txt": "layer 4\n",
        "opt/krill-test/opaque/c.txt": "c from layer 4\n",
        "opt/krill-test/hl-a": "hard link target\n",
        "opt/krill-test/hl-b": "hard link target\n",
        "opt/krill-test/l1-link-a": "hard linked in layer 1\n",
        "opt/krill-test/l1-link-b": "hard linked in layer 1\n",
        "opt/krill-test/suid": "#!/bin/sh\necho suid\n",
        "opt/krill-test/kept-dir/f.txt": "kept\n",
    },
    "absent": [
        "opt/krill-test/gone.txt",
        "opt/krill-test/dir-gone",
        "opt/krill-test/opaque/a.txt",
        "opt/krill-test/opaque/b.txt",
        "opt/krill-test/opaque/sub",
        "opt/krill-test/.wh.gone.txt",
        "opt/krill-test/opaque/.wh..wh..opq",
        "usr/share/doc",
    ],
    "symlinks": {
        "opt/krill-test/link-rel": "keep.txt",
        "opt/krill-test/link-abs": "/opt/krill-test/keep.txt",
        "opt/krill-test/link-dangling": "does-not-exist",
        "bin": "usr/bin",
    },
    "hardlinks": [["opt/krill-test/hl-a", "opt/krill-test/hl-b"],
                  ["opt/krill-test/l1-link-a", "opt/krill-test/l1-link-b"]],
    "fifos": ["opt/krill-test/fifo"],
    "modes": {
        "opt/krill-test/suid": 0o4755,
        "opt/krill-test/sgid-dir": 0o2775,
        "opt/krill-test/sticky": 0o1777,
    },
}


# ---------------------------------------------------------------- entries

class Entry:
    """One tar member: kind is dir, file, symlink, hardlink or fifo."""

    __slots__ = ("kind", "path", "mode", "data", "src", "target")

    def __init__(self, kind, path, mode=0o644, data=None, src=None, target=None):
        self.kind = kind
        self.path = path.strip("/")
        self.mode = mode
        self.data = data
        self.src = src
        self.target = target


def _tarinfo(e):
    ti = tarfile.TarInfo(e.path + ("/" if e.kind == "dir" else ""))
    ti.mtime = EPOCH
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mode = e.mode
    if e.kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif e.kind == "file":
        ti.type = tarfile.REGTYPE
    elif e.kind == "symlink":
        ti.type = tarfile.SYMTYPE
        ti.linkname = e.target
    elif e.kind == "hardlink":
        ti.type = tarfile.LNKTYPE
        ti.linkname = e.target
    elif e.kind == "fifo":
        ti.type = tarfile.FIFOTYPE
    else:
        raise ValueError("unknown entry kind " + e.kind)
    return ti


def build_tar(entries):
    """Uncompressed tar bytes of entries, in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = _tarinfo(e)
            if e.kind == "file":
                data = e.data
                if data is None:
                    with open(e.src, "rb") as f:
                        data = f.read()
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def add_parents(entries):
    """Add a 0755 dir entry for every missing parent, then sort by path.

    Sorting by path puts a directory before its children ("a" < "a/b"), and
    hard link targets are named so that they sort before their links."""
    have = {e.path for e in entries}
    extra = []
    for e in entries:
        parts = e.path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p not in have:
                have.add(p)
                extra.append(Entry("dir", p, 0o755))
    out = entries + extra
    out.sort(key=lambda x: x.path)
    return out


def compress(data, how):
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == "zstd":
        r = subprocess.run(["zstd", "-q", "-c", "-3", "-T1", "--no-progress"],
                           input=data, stdout=subprocess.PIPE, check=True)
        return r.stdout
    if how == "none":
        return data
    raise ValueError("unknown compression " + how)


# ---------------------------------------------------------------- contents

def host_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def busybox_applets():
    r = subprocess.run([BUSYBOX, "--list"], stdout=subprocess.PIPE, check=True, text=True)
    names = sorted({n.strip() for n in r.stdout.split() if n.strip() and "/" not in n})
    return [n for n in names if n != "busybox"]


def busybox_layer():
    if not os.path.exists(BUSYBOX):
        raise SystemExit("mkimage: %s missing (install busybox-static)" % BUSYBOX)
    entries = [
        Entry("dir", "bin", 0o755), Entry("dir", "dev", 0o755), Entry("dir", "etc", 0o755),
        Entry("dir", "home", 0o755), Entry("dir", "proc", 0o555), Entry("dir", "root", 0o700),
        Entry("dir", "sys", 0o555), Entry("dir", "tmp", 0o1777), Entry("dir", "usr", 0o755),
        Entry("dir", "usr/bin", 0o755), Entry("dir", "usr/sbin", 0o755),
        Entry("dir", "sbin", 0o755), Entry("dir", "var", 0o755), Entry("dir", "var/tmp", 0o1777),
        Entry("file", "bin/busybox", 0o755, src=BUSYBOX),
        Entry("file", "etc/passwd", 0o644,
              data=b"root:x:0:0:root:/root:/bin/sh\n"
                   b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        Entry("file", "etc/group", 0o644, data=b"root:x:0:\nnobody:x:65534:\n"),
        Entry("file", "etc/hostname", 0o644, data=b"busybox\n"),
    ]
    for a in busybox_applets():
        entries.append(Entry("symlink", "bin/" + a, 0o777, target="busybox"))
    return add_parents(entries)


def _dpkg_status():
    """{package: (version, priority, [dependency alternatives])} of installed packages."""
    r = subprocess.run(["dpkg-query", "-W", "-f",
                        "${Package}\t${Version}\t${Priority}\t${Status}\t${Pre-Depends}, ${Depends}\n"],
                       stdout=subprocess.PIPE, check=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 5 and parts[3].endswith(" installed"):
            deps = []
            for d in parts[4].split(","):
                alts = [a.strip().split(" ")[0].split(":")[0] for a in d.split("|") if a.strip()]
                if alts:
                    deps.append(alts)
            out[parts[0]] = (parts[1], parts[2], deps)
    return out


def _closure(pkgs, status):
    """pkgs plus every installed package they depend on (first installed alternative)."""
    out, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in out or p not in status:
            continue
        out.add(p)
        for alts in status[p][2]:
            for a in alts:
                if a in status:
                    todo.append(a)
                    break
    return out


def _dpkg_list(pkg):
    for cand in (pkg, pkg + ":" + host_arch()):
        p = "/var/lib/dpkg/info/%s.list" % cand
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="surrogateescape") as f:
                return [l.rstrip("\n") for l in f if l.strip() and l.strip() != "/."]
    return []


def large_layer_packages(size):
    """[[package, ...] per host layer], the fingerprint of their versions."""
    status = _dpkg_status()
    required, spec = LARGE_PACKAGES[size]
    layers = [sorted(p for p in l if p in status) for l in spec]
    if required:
        layers[0] = sorted(set(layers[0]) | {p for p, v in status.items() if v[1] == "required"})
        # the big image must run its programs: add what they link against
        done = set()
        for i, l in enumerate(layers):
            full = _closure(l, status) - done
            layers[i] = sorted(full)
            done |= full
    fp = [[(p, status[p][0]) for p in l] for l in layers]
    return layers, fp


def _canon(path):
    path = path.strip("/")
    first, _, rest = path.partition("/")
    if first in MERGED:
        path = MERGED[first] + ("/" + rest if rest else "")
    return path


def host_entries(packages, seen):
    """Entries for the files of packages, merged-/usr, minus /etc and /var."""
    entries = {}
    inodes = {}
    for pkg in packages:
        for p in _dpkg_list(pkg):
            c = _canon(p)
            if not c or c.split("/")[0] in ("etc", "var", "run", "tmp", "dev", "proc", "sys"):
                continue
            if c in MERGED or c in seen or c in entries:
                continue
            if any(c == x or c.startswith(x + "/") for x in EXCLUDE):
                continue
            try:
                st = os.lstat("/" + c)
            except OSError:
                continue
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                entries[c] = Entry("dir", c, mode)
            elif stat.S_ISREG(st.st_mode):
                entries[c] = Entry("file", c, mode, src="/" + c)
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(c)
            elif stat.S_ISLNK(st.st_mode):
                entries[c] = Entry("symlink", c, 0o777, target=os.readlink("/" + c))
    # a path is a directory in the image when anything lives below it, even
    # if the host shows a symlink there
    parents = set()
    for c in entries:
        parts = c.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parents.add("/".join(parts[:i]))
    for c in parents:
        if c in entries and entries[c].kind != "dir":
            entries[c] = Entry("dir", c, 0o755)
    # host hard links stay hard links: the first path in sorted order holds
    # the data, the others link to it
    for paths in inodes.values():
        paths.sort()
        for p in paths[1:]:
            entries[p] = Entry("hardlink", p, entries[p].mode, target=paths[0])
    seen.update(entries)
    return list(entries.values())


def _txt(s):
    return s.encode()


def large_layers(size):
    layers_pk, fp = large_layer_packages(size)
    seen = set()
    t = "opt/krill-test/"
    # layer 1: merged-/usr skeleton, busybox, host files, the test tree
    l1 = [Entry("symlink", k, 0o777, target=v) for k, v in sorted(MERGED.items())
          if k in ("bin", "sbin", "lib", "lib64")]
    for d, m in (("usr", 0o755), ("usr/bin", 0o755), ("usr/sbin", 0o755), ("usr/lib", 0o755),
                 ("usr/lib64", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700),
                 ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("var", 0o755),
                 ("var/tmp", 0o1777), ("opt", 0o755), ("usr/share/doc", 0o755)):
        l1.append(Entry("dir", d, m))
    seen.update(e.path for e in l1)
    l1.append(Entry("file", "usr/bin/busybox", 0o755, src=BUSYBOX))
    l1.append(Entry("file", "etc/passwd", 0o644,
                    data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
    l1.append(Entry("file", "etc/group", 0o644, data=b"root:x:0:\nnobody:x:65534:\n"))
    l1 += [
        Entry("file", t + "keep.txt", 0o644, data=b"keep\n"),
        Entry("file", t + "gone.txt", 0o644, data=b"gone\n"),
        Entry("file", t + "replaced.txt", 0o644, data=b"layer 1\n"),
        Entry("dir", t + "dir-gone", 0o755),
        Entry("file", t + "dir-gone/x.txt", 0o644, data=b"x\n"),
        Entry("dir", t + "dir-gone/sub", 0o755),
        Entry("file", t + "dir-gone/sub/y.txt", 0o644, data=b"y\n"),
        Entry("dir", t + "opaque", 0o755),
        Entry("file", t + "opaque/a.txt", 0o644, data=b"a\n"),
        Entry("file", t + "opaque/b.txt", 0o644, data=b"b\n"),
        Entry("dir", t + "opaque/sub", 0o755),
        Entry("file", t + "opaque/sub/z.txt", 0o644, data=b"z\n"),
        Entry("dir", t + "kept-dir", 0o755),
        Entry("file", t + "kept-dir/f.txt", 0o644, data=b"kept\n"),
        Entry("file", t + "l1-link-a", 0o644, data=b"hard linked in layer 1\n"),
        Entry("hardlink", t + "l1-link-b", 0o644, target=t + "l1-link-a"),
    ]
    seen.update(e.path for e in l1)
    l1 += host_entries(layers_pk[0], seen)
    if "usr/bin/sh" not in seen:
        l1.append(Entry("symlink", "usr/bin/sh", 0o777, target="busybox"))
        seen.add("usr/bin/sh")
    out = [add_parents(l1)]
    # layers 2 and 3: more host files
    for i in (1, 2):
        ents = host_entries(layers_pk[i], seen)
        ents.append(Entry("file", "opt/krill-layer-%d" % (i + 1), 0o644, data=_txt("layer %d\n" % (i + 1))))
        out.append(add_parents(ents))
    # layer 4: whiteouts, opaque dir, links, fifo, special modes
    l4 = [
        Entry("file", t + ".wh.gone.txt", 0o644, data=b""),
        Entry("file", t + ".wh.dir-gone", 0o644, data=b""),
        Entry("file", "usr/share/.wh.doc", 0o644, data=b""),
        Entry("file", t + "replaced.txt", 0o644, data=b"layer 4\n"),
        Entry("dir", t + "opaque", 0o755),
        Entry("file", t + "opaque/.wh..wh..opq", 0o644, data=b""),
        Entry("file", t + "opaque/c.txt", 0o644, data=b"c from layer 4\n"),
        Entry("file", t + "hl-a", 0o644, data=b"hard link target\n"),
        Entry("hardlink", t + "hl-b", 0o644, target=t + "hl-a"),
        Entry("symlink", t + "link-rel", 0o777, target="keep.txt"),
        Entry("symlink", t + "link-abs", 0o777, target="/opt/krill-test/keep.txt"),
        Entry("symlink", t + "link-dangling", 0o777, target="does-not-exist"),
        Entry("fifo", t + "fifo", 0o644),
        Entry("file", t + "suid", 0o4755, data=b"#!/bin/sh\necho suid\n"),
        Entry("dir", t + "sgid-dir", 0o2775),
        Entry("dir", t + "sticky", 0o1777),
        Entry("file", "opt/krill-layer-4", 0o644, data=b"layer 4\n"),
    ]
    out.append(add_parents(l4))
    return out, fp


# ---------------------------------------------------------------- archives

def jdump(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def split_ref(name):
    """(name, tag) of a reference such as docker.io/library/busybox:test."""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return name, last.rsplit(":", 1)[1]
    return name + ":latest", "latest"


def make_config(diff_ids, history, cmd):
    return {
        "architecture": host_arch(),
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": cmd, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": h} for h in history],
    }


def _outer(members, out):
    """Write the outer (uncompressed) archive deterministically and atomically."""
    tmp = out + ".tmp.%d" % os.getpid()
    with open(tmp, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tf:
            dirs = set()
            for name, data in members:
                parts = name.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    d = "/".join(parts[:i])
                    if d not in dirs:
                        dirs.add(d)
                        ti = tarfile.TarInfo(d + "/")
                        ti.type = tarfile.DIRTYPE
                        ti.mode = 0o755
                        ti.mtime = EPOCH
                        ti.uname = ti.gname = "root"
                        tf.addfile(ti)
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mode = 0o644
                ti.mtime = EPOCH
                ti.uname = ti.gname = "root"
                tf.addfile(ti, io.BytesIO(data))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, out)


def parse_platform(p):
    """{"os", "architecture"[, "variant"]} of "linux/arm64/v8"."""
    parts = p.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise SystemExit("mkimage: bad platform %r (want os/arch[/variant])" % p)
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


def write_archive(layers_entries, history, cmd, name, fmt, comp, out, platforms=None):
    raw = [build_tar(ents) for ents in layers_entries]
    diff_ids = [sha(r) for r in raw]
    blobs = [compress(r, comp) for r in raw]
    del raw
    plats = [parse_platform(p) for p in platforms] if platforms else \
        [{"os": "linux", "architecture": host_arch()}]
    configs = []
    for p in plats:
        c = make_config(diff_ids, history, cmd)
        c.update(p)
        configs.append(jdump(c))
    config = configs[0]
    full, tag = split_ref(name)
    if fmt == "oci":
        manifests = [jdump({
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {"mediaType": MT_OCI_CONFIG, "digest": sha(c), "size": len(c)},
            "layers": [{"mediaType": MT_OCI_LAYER[comp], "digest": sha(b), "size": len(b)} for b in blobs],
        }) for c in configs]
        ann = {"io.containerd.image.name": full, "org.opencontainers.image.ref.name": tag}
        extra = []
        if platforms:
            # multi-platform: index.json points at an image index blob that
            # lists one manifest per platform (the same layers under each;
            # only platform matching is exercised, not foreign binaries)
            image_index = jdump({
                "schemaVersion": 2,
                "mediaType": MT_OCI_INDEX,
                "manifests": [{"mediaType": MT_OCI_MANIFEST, "digest": sha(m), "size": len(m),
                               "platform": p} for m, p in zip(manifests, plats)],
            })
            extra = [image_index]
            top = {"mediaType": MT_OCI_INDEX, "digest": sha(image_index), "size": len(image_index),
                   "annotations": ann}
            result = sha(image_index)
        else:
            top = {"mediaType": MT_OCI_MANIFEST, "digest": sha(manifests[0]), "size": len(manifests[0]),
                   "annotations": ann, "platform": plats[0]}
            result = sha(manifests[0])
        index = jdump({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [top]})
        members = [("oci-layout", jdump({"imageLayoutVersion": "1.0.0"})), ("index.json", index)]
        blobmap = {}
        for b in extra + manifests + configs + blobs:
            blobmap["blobs/sha256/" + sha(b)[7:]] = b
        members += sorted(blobmap.items())
        _outer(members, out)
        return result
    if platforms:
        raise SystemExit("mkimage: --platforms needs --format oci")
    if fmt == "docker":
        members = []
        layer_paths = []
        parent = ""
        for i, b in enumerate(blobs):
            lid = hashlib.sha256((parent + "\n" + diff_ids[i]).encode()).hexdigest()
            meta = {"id": lid, "created": CREATED, "os": "linux"}
            if parent:
                meta["parent"] = parent
            members += [(lid + "/VERSION", b"1.0"), (lid + "/json", jdump(meta)),
                        (lid + "/layer.tar", b)]
            layer_paths.append(lid + "/layer.tar")
            parent = lid
        cfgname = sha(config)[7:] + ".json"
        members.append((cfgname, config))
        repo = full.rsplit(":", 1)[0]
        members.append(("manifest.json", jdump([{"Config": cfgname, "RepoTags": [full],
                                                 "Layers": layer_paths}])))
        members.append(("repositories", jdump({repo: {tag: parent}})))
        members.sort()
        _outer(members, out)
        return sha(config)
    raise SystemExit("mkimage: unknown format " + fmt)


# ---------------------------------------------------------------- commands

def build(kind, out, name=None, fmt="oci", comp=None, size="large", platforms=None):
    name = name or DEFAULT_NAMES[kind]
    if comp is None:
        comp = "none" if fmt == "docker" else "gzip"
    if kind == "busybox":
        layers = [busybox_layer()]
        hist = ["mkimage.py: Debian busybox-static"]
        cmd = ["sh"]
    elif kind == "large":
        layers, _ = large_layers(size)
        hist = ["mkimage.py: layer %d" % (i + 1) for i in range(len(layers))]
        cmd = ["/bin/sh"]
    else:
        raise SystemExit("mkimage: unknown image kind " + kind)
    return write_archive(layers, hist, cmd, name, fmt, comp, out, platforms)


def _file_sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(kind, name, fmt, comp, size, platforms=None):
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(jdump([kind, name or DEFAULT_NAMES[kind], fmt, comp, size, host_arch(), platforms or []]))
    if os.path.exists(BUSYBOX):
        h.update(_file_sha(BUSYBOX).encode())
    if kind == "large":
        _, fp = large_layer_packages(size)
        h.update(jdump(fp))
    return h.hexdigest()[:16]


def cache_dir():
    base = os.environ.get("KRILL_BUILD", "/work/main/build")
    return os.path.join(base, "test-images")


def cached(kind, name=None, fmt="oci", comp=None, size="large", directory=None, platforms=None):
    """Path of the cached archive, built first if missing (safe across processes)."""
    d = directory or cache_dir()
    os.makedirs(d, exist_ok=True)
    if comp is None:
        comp = "none" if fmt == "docker" else "gzip"
    key = cache_key(kind, name, fmt, comp, size, platforms)
    tag = kind if kind != "large" else "large-" + size
    if platforms:
        tag += "-multi"
    out = os.path.join(d, "%s-%s-%s-%s.tar" % (tag, fmt, comp, key))
    if os.path.exists(out):
        return out
    with open(os.path.join(d, ".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if not os.path.exists(out):
            build(kind, out, name, fmt, comp, size, platforms)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["busybox", "large", "path", "expect"])
    ap.add_argument("arg", help="output archive (busybox/large) or image kind (path/expect)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--format", default="oci", choices=["oci", "docker"])
    ap.add_argument("--compression", default=None, choices=["gzip", "zstd", "none"])
    ap.add_argument("--size", default="large", choices=["large", "small"])
    ap.add_argument("--platforms", default=None,
                    help="comma list such as linux/amd64,linux/arm64/v8: an OCI image index "
                         "with one manifest per platform")
    a = ap.parse_args(argv)
    plats = [p for p in a.platforms.split(",") if p] if a.platforms else None
    if a.cmd in ("busybox", "large"):
        d = build(a.cmd, a.arg, a.name, a.format, a.compression, a.size, plats)
        print(d)
    elif a.cmd == "path":
        if a.arg not in DEFAULT_NAMES:
            ap.error("unknown image kind " + a.arg)
        print(cached(a.arg, a.name, a.format, a.compression, a.size, platforms=plats))
    else:
        if a.arg != "large":
            ap.error("expect is only defined for large")
        print(json.dumps(LARGE_EXPECT, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
