"""Pull failures a user can act on, through `krill images pull` against krilld: an unknown host, and a disk that
fills up. A failed pull leaves no image behind, and once its lease is gone the GC frees its ingests."""

import subprocess
import time


def test_unknown_host(krilld):
    r = krilld.krill("images", "pull", "--plain-http", "no-such-host.invalid/test/busybox:1", timeout=120)
    assert r.returncode == 1
    assert 'failed to resolve reference "no-such-host.invalid/test/busybox:1"' in r.stderr, r.stderr
    assert "no-such-host.invalid" in r.stderr and "resolve" in r.stderr.lower(), r.stderr
    assert krilld.ctr("images", "ls", "-q").stdout.strip() == ""


def test_disk_full_leaves_nothing(krilld_factory, registry, large_image):
    ref = registry.push(large_image, "test/large:full")
    d = krilld_factory(start=False)
    # krilld's root on a 16 MiB tmpfs: the large image (47 MiB compressed) cannot fit
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0711", "tmpfs", d.root], check=True)
    try:
        d.start(timeout=30)
        r = d.krill("images", "pull", "--plain-http", ref, timeout=300)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "no space left on device" in r.stderr, r.stderr
        assert d.ctr("images", "ls", "-q").stdout.strip() == ""
        # the pull's lease went with the failure; the GC it triggers frees the partial ingests
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            active = d.ctr("content", "active").stdout.strip().splitlines()[1:]
            leases = d.ctr("leases", "ls", "-q").stdout.split()
            if not active and not leases:
                break
            time.sleep(0.2)
        assert not active and not leases, (active, leases)
        # and the space is back: a small image now fits
        df = subprocess.run(["df", "--output=used", d.root], capture_output=True, text=True).stdout.split()[-1]
        assert int(df) < 4096, df
    finally:
        d.stop()
        subprocess.run(["umount", "-l", d.root], check=False)
