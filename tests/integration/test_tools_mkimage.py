"""tests/tools/mkimage.py: reproducible, well-formed, importable by the real containerd."""

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

import mkimage
from conftest import require_binary


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def members(path):
    with tarfile.open(path) as tf:
        return {m.name.rstrip("/"): (m, tf.extractfile(m).read() if m.isfile() else None)
                for m in tf.getmembers()}


def decompress(blob):
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return subprocess.run(["zstd", "-d", "-c", "-q"], input=blob, stdout=subprocess.PIPE,
                              check=True).stdout
    return blob


def read_oci(path):
    """(index, manifest, config, [layer tar bytes]) after checking every digest."""
    m = members(path)
    assert json.loads(m["oci-layout"][1]) == {"imageLayoutVersion": "1.0.0"}
    blobs = {}
    for name, (ti, data) in m.items():
        assert ti.mtime == mkimage.EPOCH and ti.uid == 0 and ti.gid == 0
        if name.startswith("blobs/sha256/") and ti.isfile():
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
            blobs["sha256:" + name.rsplit("/", 1)[1]] = data
    index = json.loads(m["index.json"][1])

    def get(desc):
        data = blobs[desc["digest"]]
        assert len(data) == desc["size"]
        return data

    assert index["schemaVersion"] == 2 and len(index["manifests"]) == 1
    manifest = json.loads(get(index["manifests"][0]))
    assert manifest["mediaType"] == mkimage.MT_OCI_MANIFEST
    config = json.loads(get(manifest["config"]))
    layers = [decompress(get(l)) for l in manifest["layers"]]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(l).hexdigest() for l in layers]
    return index, manifest, config, layers


def layer_members(raw):
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def test_tools_mkimage_busybox_reproducible(tmp_path):
    a, b = str(tmp_path / "a.tar"), str(tmp_path / "b.tar")
    da = mkimage.build("busybox", a)
    db = mkimage.build("busybox", b)
    assert da == db
    assert sha256_file(a) == sha256_file(b)
    for fmt, comp in (("docker", None), ("oci", "zstd"), ("oci", "none")):
        mkimage.build("busybox", a, fmt=fmt, comp=comp)
        mkimage.build("busybox", b, fmt=fmt, comp=comp)
        assert sha256_file(a) == sha256_file(b), (fmt, comp)


def test_tools_mkimage_busybox_structure(busybox_oci):
    index, manifest, config, layers = read_oci(busybox_oci)
    ann = index["manifests"][0]["annotations"]
    assert ann == {"io.containerd.image.name": "docker.io/library/busybox:test",
                   "org.opencontainers.image.ref.name": "test"}
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert config["architecture"] == mkimage.host_arch() and config["os"] == "linux"
    assert config["config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") for e in config["config"]["Env"])
    assert len(layers) == 1
    lm = layer_members(layers[0])
    bb = lm["bin/busybox"]
    assert bb.isfile() and bb.mode == 0o755 and bb.size == os.path.getsize(mkimage.BUSYBOX)
    for applet in ("sh", "echo", "cat", "sleep", "true", "false", "ls", "env", "id", "ps", "top",
                   "printf", "wc", "head", "mkdir", "rm", "touch", "test", "kill", "hostname", "uname"):
        assert lm["bin/" + applet].issym() and lm["bin/" + applet].linkname == "busybox", applet
    assert lm["tmp"].isdir() and lm["tmp"].mode == 0o1777
    assert lm["root"].isdir()
    with tarfile.open(fileobj=io.BytesIO(layers[0])) as tf:
        passwd = tf.extractfile("etc/passwd").read().decode()
        group = tf.extractfile("etc/group").read().decode()
    assert passwd.startswith("root:x:0:0:") and "\nnobody:x:65534:65534:" in passwd
    assert group.startswith("root:x:0:")
    assert all(m.mtime == mkimage.EPOCH and m.uid == 0 for m in lm.values())


def test_tools_mkimage_zstd_and_name(tmp_path):
    out = str(tmp_path / "z.tar")
    mkimage.build("busybox", out, name="127.0.0.1:5000/x/y:v2", comp="zstd")
    index, manifest, _, layers = read_oci(out)
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v2"
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "127.0.0.1:5000/x/y:v2"
    assert "bin/busybox" in layer_members(layers[0])


def test_tools_mkimage_docker_format(busybox_docker):
    m = members(busybox_docker)
    manifest = json.loads(m["manifest.json"][1])
    assert len(manifest) == 1 and manifest[0]["RepoTags"] == ["docker.io/library/busybox:test"]
    config = json.loads(m[manifest[0]["Config"]][1])
    layer = m[manifest[0]["Layers"][0]][1]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    repos = json.loads(m["repositories"][1])
    assert list(repos) == ["docker.io/library/busybox"]
    assert "bin/busybox" in layer_members(layer)


def check_large(path, min_mb, max_mb):
    _, manifest, config, layers = read_oci(path)
    assert len(layers) == 4
    compressed = sum(l["size"] for l in manifest["layers"])
    assert min_mb * 2**20 <= compressed <= max_mb * 2**20, compressed
    last = layer_members(layers[3])
    t = "opt/krill-test/"
    assert t + ".wh.gone.txt" in last and t + ".wh.dir-gone" in last
    assert t + "opaque/.wh..wh..opq" in last
    assert last[t + "hl-b"].islnk() and last[t + "hl-b"].linkname == t + "hl-a"
    assert last[t + "fifo"].isfifo()
    assert last[t + "suid"].mode == 0o4755
    assert last[t + "link-abs"].issym()
    first = layer_members(layers[0])
    assert first["bin"].issym() and first["bin"].linkname == "usr/bin"
    assert first[t + "l1-link-b"].islnk()
    assert config["config"]["Cmd"] == ["/bin/sh"]
    return layers


def test_tools_mkimage_large_small_structure(large_image_small):
    check_large(large_image_small, 0.5, 15)


@pytest.mark.slow
def test_tools_mkimage_large_structure(large_image):
    layers = check_large(large_image, 25, 80)
    total = sum(len(l) for l in layers)
    assert 80 * 2**20 <= total <= 200 * 2**20, total


def test_tools_mkimage_large_reproducible(tmp_path):
    a, b = str(tmp_path / "a.tar"), str(tmp_path / "b.tar")
    mkimage.build("large", a, size="small")
    mkimage.build("large", b, size="small")
    assert sha256_file(a) == sha256_file(b)


def test_tools_mkimage_cache_reuses(tmp_path):
    p1 = mkimage.cached("busybox", directory=str(tmp_path))
    st = os.stat(p1)
    p2 = mkimage.cached("busybox", directory=str(tmp_path))
    assert p1 == p2 and os.stat(p2).st_mtime_ns == st.st_mtime_ns
    p3 = mkimage.cached("busybox", fmt="docker", directory=str(tmp_path))
    assert p3 != p1
    assert sorted(os.listdir(str(tmp_path))) == sorted(
        [os.path.basename(p1), os.path.basename(p3), ".lock"])


def test_tools_mkimage_skopeo_inspect(busybox_oci):
    skopeo = require_binary("skopeo")
    r = subprocess.run([skopeo, "inspect", "oci-archive:" + busybox_oci], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["Architecture"] == mkimage.host_arch() and len(info["Layers"]) == 1


def test_tools_mkimage_containerd_import_and_run(containerd, busybox_oci, busybox_docker,
                                                  large_image_small, tmp_path):
    zst = str(tmp_path / "z.tar")
    mkimage.build("busybox", zst, name="docker.io/library/busybox:zstd", comp="zstd")
    for archive in (busybox_oci, busybox_docker, zst, large_image_small):
        r = containerd.ctr("images", "import", archive, ns="t")
        assert r.returncode == 0, r.stderr
    r = containerd.ctr("images", "ls", "-q", ns="t")
    names = r.stdout.split()
    assert "docker.io/library/busybox:test" in names
    assert "docker.io/library/busybox:zstd" in names
    assert "docker.io/library/krill-large:test" in names
    r = containerd.ctr("run", "--rm", "docker.io/library/busybox:zstd", "bb1",
                       "sh", "-c", "echo hello; id -u; cat /etc/hostname", ns="t")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["hello", "0", "busybox"]
    # the unpacked large image matches what mkimage promises
    exp = mkimage.LARGE_EXPECT
    script = []
    for p, content in sorted(exp["files"].items()):
        script.append('[ "$(cat /%s)" = "%s" ] || echo "BAD content %s"' % (p, content.rstrip("\n").replace("\n", "\\n"), p)
                      if "\n" not in content.rstrip("\n") else '[ -f /%s ] || echo "BAD file %s"' % (p, p))
    for p in exp["absent"]:
        script.append('[ -e /%s ] && echo "BAD present %s"' % (p, p))
    for p, target in exp["symlinks"].items():
        script.append('[ "$(readlink /%s)" = "%s" ] || echo "BAD link %s"' % (p, target, p))
    for a, b in exp["hardlinks"]:
        script.append('[ "$(stat -c %%i /%s)" = "$(stat -c %%i /%s)" ] || echo "BAD hardlink %s"' % (a, b, b))
    for p in exp["fifos"]:
        script.append('[ -p /%s ] || echo "BAD fifo %s"' % (p, p))
    for p, mode in exp["modes"].items():
        script.append('[ "$(stat -c %%a /%s)" = "%o" ] || echo "BAD mode %s $(stat -c %%a /%s)"' % (p, mode, p, p))
    script.append("echo checked")
    r = containerd.ctr("run", "--rm", "docker.io/library/krill-large:test", "large1",
                       "/usr/bin/busybox", "sh", "-c", "; ".join(script), ns="t")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "checked", r.stdout


def test_tools_mkimage_registry_push_pull(registry, containerd, busybox_oci):
    ref = registry.push(busybox_oci, "test/busybox:1")
    assert ref == registry.host + "/test/busybox:1"
    r = containerd.ctr("images", "pull", "--plain-http", ref, ns="t")
    assert r.returncode == 0, r.stderr
    _, manifest, _, _ = read_oci(busybox_oci)
    r = containerd.ctr("images", "ls", ns="t")
    assert ref in r.stdout
    r = containerd.ctr("run", "--rm", ref, "p1", "echo", "pulled", ns="t")
    assert r.returncode == 0 and r.stdout.strip() == "pulled", r.stderr


def test_tools_mkimage_multi_platform(tmp_path, containerd, registry):
    out = str(tmp_path / "multi.tar")
    top = mkimage.build("busybox", out, name="docker.io/library/busybox:multi",
                        platforms=["linux/amd64", "linux/arm64/v8"])
    m = members(out)
    index = json.loads(m["index.json"][1])
    assert index["manifests"][0]["mediaType"] == mkimage.MT_OCI_INDEX
    assert index["manifests"][0]["digest"] == top
    inner = json.loads(m["blobs/sha256/" + top[7:]][1])
    plats = [d["platform"] for d in inner["manifests"]]
    assert plats == [{"os": "linux", "architecture": "amd64"},
                     {"os": "linux", "architecture": "arm64", "variant": "v8"}]
    configs = []
    for d in inner["manifests"]:
        man = json.loads(m["blobs/sha256/" + d["digest"][7:]][1])
        configs.append(json.loads(m["blobs/sha256/" + man["config"]["digest"][7:]][1]))
    assert [c["architecture"] for c in configs] == ["amd64", "arm64"] and configs[1]["variant"] == "v8"
    r = containerd.ctr("images", "import", "--all-platforms", out, ns="t")
    assert r.returncode == 0, r.stderr
    r = containerd.ctr("images", "ls", ns="t")
    line = next(l for l in r.stdout.splitlines() if "busybox:multi" in l)
    assert "linux/amd64" in line and "linux/arm64/v8" in line, line
    ref = registry.push(out, "test/multi:1")
    r = containerd.ctr("images", "pull", "--plain-http", "--platform", "linux/amd64", ref, ns="t2")
    assert r.returncode == 0, r.stderr
    r = containerd.ctr("run", "--rm", ref, "m1", "echo", "multi", ns="t2")
    assert r.returncode == 0 and r.stdout.strip() == "multi", r.stderr
