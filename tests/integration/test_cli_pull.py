"""krill images pull (src/cli/pull.c): the CLI fetches from Debian's docker-registry itself and writes into
krilld through the content service, then unpacks like ctr; ctr sees the result, and ctr's own pull works
against krilld."""

import pytest


@pytest.fixture(scope="module")
def pushed(registry, image_archive):
    return {
        "gzip": registry.push(image_archive("busybox"), "test/busybox:1"),
        "multi": registry.push(image_archive("busybox", platforms=["linux/amd64", "linux/arm64/v8"]),
                               "test/multi:1"),
    }


def test_krill_pull_plain_http_then_ctr_sees_it(krilld, pushed):
    ref = pushed["gzip"]
    r = krilld.krill("images", "pull", "--plain-http", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "layer-sha256:" in r.stdout and "done" in r.stdout
    assert "elapsed:" in r.stdout
    ls = krilld.ctr("images", "ls", "-q")
    assert ref in ls.stdout.split()
    chk = krilld.ctr("images", "check")
    assert ref in chk.stdout and "complete" in chk.stdout
    snaps = krilld.ctr("snapshots", "ls")
    assert "Committed" in snaps.stdout
    # again: everything exists, nothing downloaded
    r = krilld.krill("images", "pull", "--plain-http", ref)
    assert r.returncode == 0, r.stderr
    assert "exists" in r.stdout
    # no leftover ingests or leases
    assert krilld.ctr("content", "active").stdout.strip().count("\n") == 0
    assert krilld.ctr("leases", "ls", "-q").stdout.strip() == ""


def test_krill_pull_print_chainid(krilld, pushed):
    r = krilld.krill("images", "pull", "--plain-http", "--print-chainid", pushed["gzip"])
    assert r.returncode == 0, r.stdout + r.stderr
    line = [l for l in r.stdout.splitlines() if l.startswith("image chain ID: ")]
    assert len(line) == 1 and line[0].split(": ")[1].startswith("sha256:")
    chain = line[0].split(": ")[1]
    assert chain in krilld.ctr("snapshots", "ls").stdout


def test_krill_pull_quiet(krilld, pushed):
    r = krilld.krill("images", "pull", "-q", "--plain-http", pushed["gzip"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""


def test_krill_pull_platform_from_index(krilld, pushed):
    r = krilld.krill("images", "pull", "--plain-http", "--platform", "linux/arm64/v8", pushed["multi"])
    # the arm64 layers can still be unpacked (no exec involved)
    assert r.returncode == 0, r.stdout + r.stderr
    r = krilld.krill("images", "pull", "--plain-http", "--platform", "linux/s390x", pushed["multi"])
    assert r.returncode == 1
    assert "no match for platform in manifest" in r.stderr


def test_ctr_pull_against_krilld(krilld, pushed):
    r = krilld.ctr("images", "pull", "--plain-http", pushed["gzip"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert pushed["gzip"] in krilld.krill("images", "ls", "-q").stdout.split()


def test_hosts_dir_mirror_for_docker_io(krilld, registry, pushed, tmp_path):
    d = tmp_path / "certs.d" / "docker.io"
    d.mkdir(parents=True)
    (d / "hosts.toml").write_text('server = "https://registry-1.docker.io"\n'
                                  '[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' % registry.host)
    r = krilld.krill("images", "pull", "--hosts-dir", str(tmp_path / "certs.d"), "test/busybox:1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "docker.io/test/busybox:1" in krilld.ctr("images", "ls", "-q").stdout.split()


def test_basic_auth(krilld, registry_factory, image_archive):
    reg = registry_factory(htpasswd={"krill": "secret"})
    ref = reg.push(image_archive("busybox"), "test/busybox:auth")
    r = krilld.krill("images", "pull", "--plain-http", ref)
    assert r.returncode == 1
    assert "401 Unauthorized" in r.stderr
    r = krilld.krill("images", "pull", "--plain-http", "--user", "krill:secret", ref)
    assert r.returncode == 0, r.stdout + r.stderr


def test_missing_tag(krilld, registry, pushed):
    ref = "%s/test/busybox:nope" % registry.host
    r = krilld.krill("images", "pull", "--plain-http", ref)
    assert r.returncode == 1
    assert 'failed to resolve reference "%s"' % ref in r.stderr
    assert r.stderr.strip().endswith("not found")
