"""krill images pull through the shared pipeline: --all-platforms, --max-concurrent-downloads, --snapshotter,
and two CLIs pulling the same image at once (one waits for the other's locked ingests)."""

import os
import subprocess


def test_all_platforms_fetches_every_manifest(krilld, registry, image_archive):
    ref = registry.push(image_archive("busybox", platforms=["linux/amd64", "linux/arm64/v8"]), "test/multi:1")
    r = krilld.krill("images", "pull", "--plain-http", "--all-platforms", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    # every platform's manifest and config are in the store (the same busybox layer serves both here), the
    # host's image is unpacked; a default pull into another namespace keeps only one manifest
    one = krilld.krill("--namespace", "one", "images", "pull", "--plain-http", ref)
    assert one.returncode == 0, one.stdout + one.stderr

    def blobs(ns):
        r = krilld.ctr("content", "ls", "-q", ns=ns)
        assert r.returncode == 0, r.stderr
        return set(r.stdout.split())

    assert len(blobs("default")) > len(blobs("one")) >= 3
    chk = krilld.ctr("images", "check")
    assert ref in chk.stdout and "complete" in chk.stdout, chk.stdout
    assert "Committed" in krilld.ctr("snapshots", "ls").stdout


def test_max_concurrent_downloads_and_snapshotter(krilld, registry, image_archive):
    ref = registry.push(image_archive("busybox"), "test/busybox:1")
    r = krilld.krill("images", "pull", "--plain-http", "--max-concurrent-downloads", "x", ref)
    assert r.returncode == 1
    assert "max-concurrent-downloads" in r.stderr
    r = krilld.krill("images", "pull", "--plain-http", "--max-concurrent-downloads", "1", "--snapshotter", "native",
                     "--print-chainid", ref)
    assert r.returncode == 0, r.stdout + r.stderr
    chain = [l for l in r.stdout.splitlines() if l.startswith("image chain ID: ")][0].split(": ")[1]
    assert chain in krilld.ctr("snapshots", "--snapshotter", "native", "ls").stdout


def test_two_pulls_of_the_same_image_at_once(krilld, registry, large_image):
    ref = registry.push(large_image, "test/large:1")
    cli = os.path.join(krilld.build, "src", "cli", "krill")
    ps = [subprocess.Popen([cli, "--address", krilld.address, "images", "pull", "--plain-http", ref],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in ps]
    for p, (out, err) in zip(ps, outs):
        assert p.returncode == 0, out + err
    chk = krilld.ctr("images", "check")
    assert ref in chk.stdout and "complete" in chk.stdout and "incomplete" not in chk.stdout, chk.stdout
    assert krilld.ctr("content", "active").stdout.strip().count("\n") == 0
    assert krilld.ctr("leases", "ls", "-q").stdout.strip() == ""
