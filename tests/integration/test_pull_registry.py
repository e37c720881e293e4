"""Image pull (src/image/pull.c) against Debian's docker-registry on 127.0.0.1, through the
krill-image-pull-tool driver: plain HTTP, TLS with the test's own CA through a hosts.toml, a hosts.toml
mirror for docker.io, htpasswd Basic auth, a multi-platform index, gzip and zstd layers, re-pull skipping
present content, and the errors a user sees."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import build_dir, require_binary


def tool():
    return require_binary(os.path.join(build_dir(), "src", "image", "krill-image-pull-tool"),
                          "krill-image-pull-tool")


_roots = []


@pytest.fixture(autouse=True, scope="module")
def _remove_roots():
    """Every store the tests pulled into goes when the module is done (no mounts: the tool only extracts)."""
    yield
    for r in _roots:
        shutil.rmtree(r, ignore_errors=True)


def pull(ref, *args, root=None, expect_ok=True):
    if root is None:
        root = tempfile.mkdtemp(prefix="krill-pull-")
        _roots.append(root)
    r = subprocess.run([tool(), "--root", root] + list(args) + [ref], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=300)
    if expect_ok:
        assert r.returncode == 0, r.stderr
        return root, json.loads(r.stdout), r.stderr
    assert r.returncode == 1, r.stdout + r.stderr
    return root, None, r.stderr


@pytest.fixture(scope="module")
def pushed(registry, image_archive):
    refs = {}
    refs["gzip"] = registry.push(image_archive("busybox"), "test/busybox:1")
    refs["zstd"] = registry.push(image_archive("busybox", compression="zstd"), "test/busybox:zstd")
    refs["multi"] = registry.push(image_archive("busybox", platforms=["linux/amd64", "linux/arm64/v8"]),
                                  "test/multi:1")
    return refs


def test_pull_plain_http_gzip_and_repull(pushed):
    root, out, err = pull(pushed["gzip"], "--plain-http")
    assert out["name"] == pushed["gzip"]
    assert out["chain_id"].startswith("sha256:")
    assert os.path.exists(os.path.join(root, "rootfs", "bin", "busybox")) or \
        os.path.exists(os.path.join(root, "rootfs", "bin", "sh"))
    assert "done layer-sha256:" in err
    # same root again: nothing downloaded, the image is still complete
    _, again, err2 = pull(pushed["gzip"], "--plain-http", root=root)
    assert again["bytes"] == 0
    assert again["digest"] == out["digest"]
    assert "exists layer-sha256:" in err2


def test_pull_zstd_layers(pushed):
    root, out, _ = pull(pushed["zstd"], "--plain-http")
    assert out["chain_id"].startswith("sha256:")
    assert os.listdir(os.path.join(root, "rootfs"))


def test_pull_multi_platform_index(pushed):
    _, out, _ = pull(pushed["multi"], "--plain-http", "--platform", "linux/arm64/v8", "--no-unpack")
    assert out["media_type"] in ("application/vnd.oci.image.index.v1+json",
                                 "application/vnd.docker.distribution.manifest.list.v2+json")
    _, _, err = pull(pushed["multi"], "--plain-http", "--platform", "linux/s390x", expect_ok=False)
    assert "no match for platform in manifest" in err
    assert "linux/arm64/v8" in err and "linux/amd64" in err
    _, out, _ = pull(pushed["multi"], "--plain-http", "--all-platforms", "--no-unpack")
    assert out["bytes"] > 0


def test_pull_errors(registry, pushed):
    _, _, err = pull("%s/test/busybox:nope" % registry.host, "--plain-http", expect_ok=False)
    assert 'failed to resolve reference "%s/test/busybox:nope"' % registry.host in err
    assert err.strip().endswith("not found")
    _, _, err = pull("127.0.0.1:1/test/busybox:1", "--plain-http", expect_ok=False)
    assert "connection refused" in err
    _, _, err = pull("Test/Busybox", expect_ok=False)
    assert "repository name must be lowercase" in err


def test_pull_docker_io_mirror_via_hosts_toml(registry, pushed, tmp_path):
    d = tmp_path / "certs.d" / "docker.io"
    d.mkdir(parents=True)
    (d / "hosts.toml").write_text('server = "https://registry-1.docker.io"\n'
                                  '[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' % registry.host)
    _, out, _ = pull("test/busybox:1", "--hosts-dir", str(tmp_path / "certs.d"), "--no-unpack")
    assert out["name"] == "docker.io/test/busybox:1"


def test_pull_tls_with_ca_from_hosts_toml(registry_factory, image_archive, tmp_path):
    reg = registry_factory(tls=True)
    ref = reg.push(image_archive("busybox"), "test/busybox:tls")
    _, _, err = pull(ref, "--no-unpack", expect_ok=False)
    assert "failed to resolve reference" in err
    d = tmp_path / "certs.d" / reg.host
    d.mkdir(parents=True)
    (d / "hosts.toml").write_text('server = "https://%s"\nca = "%s"\n' % (reg.host, reg.ca_cert))
    _, out, _ = pull(ref, "--hosts-dir", str(tmp_path / "certs.d"), "--no-unpack")
    assert out["name"] == ref
    _, out, _ = pull(ref, "--skip-verify", "--no-unpack")
    assert out["name"] == ref


def test_pull_basic_auth(registry_factory, image_archive):
    reg = registry_factory(htpasswd={"krill": "secret"})
    ref = reg.push(image_archive("busybox"), "test/busybox:auth")
    _, _, err = pull(ref, "--plain-http", "--no-unpack", expect_ok=False)
    assert "401 Unauthorized" in err
    _, _, err = pull(ref, "--plain-http", "--no-unpack", "--user", "krill:wrong", expect_ok=False)
    assert "401 Unauthorized" in err
    _, out, _ = pull(ref, "--plain-http", "--user", "krill:secret")
    assert out["chain_id"].startswith("sha256:")
