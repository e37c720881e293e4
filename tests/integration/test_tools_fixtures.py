"""The shared fixtures themselves: daemons start, answer, stop and leave nothing behind."""

import os

import daemons


def test_tools_add_fifo_dir():
    assert daemons.add_fifo_dir(["run", "--rm", "img", "id"], "/t/f") == \
        ["run", "--fifo-dir", "/t/f", "--rm", "img", "id"]
    assert daemons.add_fifo_dir(["tasks", "exec", "--exec-id", "e", "id", "sh"], "/t/f")[:4] == \
        ["tasks", "exec", "--fifo-dir", "/t/f"]
    assert daemons.add_fifo_dir(["images", "ls"], "/t/f") == ["images", "ls"]
    assert daemons.add_fifo_dir(["run", "--fifo-dir", "/x", "i", "c"], "/t/f") == \
        ["run", "--fifo-dir", "/x", "i", "c"]


def test_tools_containerd_fixture_cleans_up(containerd, busybox_oci):
    d = containerd.dir
    assert containerd.ctr("version").returncode == 0
    assert containerd.ctr("images", "import", busybox_oci, ns="fx").returncode == 0
    r = containerd.ctr("run", "-d", "docker.io/library/busybox:test", "fx1", "sleep", "300", ns="fx")
    assert r.returncode == 0, r.stderr
    shims = containerd.shim_pids()
    assert len(shims) == 1
    mem = daemons.smaps_rollup(shims[0])
    assert mem["rss"] > 0 and mem["uss"] <= mem["rss"]
    containerd.close()
    assert not os.path.exists(d)
    assert not any(daemons.pid_alive(p) for p in shims)
    assert daemons.pids_tied_to(d) == []
    assert not any(os.path.exists(os.path.join(b, "fx")) for b in daemons._cgroup_bases())


def test_tools_krilld_fixture(krilld):
    assert os.path.exists(krilld.address)
    assert daemons.pid_alive(krilld.pid)
    assert krilld.root.startswith(krilld.dir) and krilld.state.startswith(krilld.dir)
    old = krilld.pid
    krilld.restart()
    assert krilld.pid != old and daemons.pid_alive(krilld.pid)
    assert not daemons.pid_alive(old)
    t = krilld.stop()
    assert t < 20 and not krilld.running()


def test_tools_registry_fixture(registry, busybox_docker):
    ref = registry.push(busybox_docker, "test/bbdocker:1", fmt="docker-archive")
    assert ref.startswith("127.0.0.1:")


def test_tools_krilld_factory(krilld_factory):
    a = krilld_factory()
    b = krilld_factory(start=False)
    assert a.address != b.address and not b.running()
    b.start()
    assert b.running() and daemons.socket_accepts(b.address)


def test_tools_registry_tls(registry_factory, busybox_oci, containerd):
    reg = registry_factory(tls=True)
    assert reg.scheme == "https" and os.path.exists(reg.ca_cert)
    ref = reg.push(busybox_oci, "test/tls:1")
    # ctr verifies the registry with the CA made by the fixture
    hosts = os.path.join(containerd.dir, "hosts", reg.host)
    os.makedirs(hosts)
    with open(os.path.join(hosts, "hosts.toml"), "w") as f:
        f.write('server = "https://%s"\n[host."https://%s"]\n  ca = "%s"\n' % (reg.host, reg.host, reg.ca_cert))
    r = containerd.ctr("images", "pull", "--hosts-dir", os.path.join(containerd.dir, "hosts"), ref, ns="tls")
    assert r.returncode == 0, r.stderr
    r = containerd.ctr("images", "pull", ref, ns="tls2")
    assert r.returncode != 0  # without the CA (ctr falls back to plain HTTP for 127.0.0.1: 400)


def test_tools_krilld_private_ns(krilld_factory):
    k = krilld_factory(private_ns=True)
    r = k.nsenter("/bin/sh", "-c", "grep ' /run ' /proc/self/mountinfo")
    assert r.returncode == 0 and "tmpfs" in r.stdout
    assert daemons.socket_accepts(k.address)


def test_tools_registry_basic_auth(registry_factory, busybox_oci, containerd):
    reg = registry_factory(htpasswd={"krill": "s3cret"})
    ref = reg.push(busybox_oci, "test/auth:1")
    r = containerd.ctr("images", "pull", "--plain-http", ref, ns="auth")
    assert r.returncode != 0
    r = containerd.ctr("images", "pull", "--plain-http", "--user", "krill:s3cret", ref, ns="auth")
    assert r.returncode == 0, r.stderr
