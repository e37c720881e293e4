"""Namespaces through Debian's ctr: krilld must answer exactly as Debian's containerd 1.6.20 does.

Each scenario runs the same ctr command lines against a private containerd and against krilld and
compares exit codes, stdout and stderr (logrus timestamps removed)."""

import os
import re
import subprocess

import pytest

TIME = re.compile(r'time="[^"]*" ')


def run(daemon, args, ns=None):
    r = daemon.ctr(*args, ns=ns, timeout=60)
    return r.returncode, r.stdout, TIME.sub("", r.stderr)


def differential(krilld, containerd, steps):
    for args, ns in steps:
        want = run(containerd, args, ns)
        got = run(krilld, args, ns)
        assert got == want, "ctr %s (namespace %s): krilld %r, containerd %r" % (" ".join(args), ns, got, want)


def test_daemon_namespaces_match_containerd(krilld, containerd):
    long_name = "n" * 77
    steps = [
        (["namespaces", "ls"], None),
        (["namespaces", "rm", "nothere"], None),
        (["namespaces", "create", "foo", "a=b", "c=d"], None),
        (["namespaces", "create", "foo"], None),
        (["namespaces", "create", "bad name"], None),
        (["namespaces", "create", "-leading"], None),
        (["namespaces", "create", long_name], None),
        (["namespaces", "create", "n" * 76], None),
        (["namespaces", "create", ""], None),
        (["namespaces", "create"], None),
        (["namespaces", "ls"], None),
        (["namespaces", "ls", "-q"], None),
        (["namespaces", "label", "foo", "a=", "e=f"], None),
        (["namespaces", "label", "ghost", "x=y"], None),
        (["ns", "list"], None),
        (["namespaces", "ls"], "bad!"),
        # created, then the /namespaces/create event cannot be published in an invalid namespace: an error
        (["namespaces", "create", "fromBad"], "bad!"),
        (["namespaces", "label", "fromBad", "x=1"], "bad!"),
        (["namespaces", "ls"], None),
        (["namespaces", "create", "withlabel", "k=" + "v" * 5000], None),
        (["namespaces", "ls", "-q"], None),
        (["namespaces", "rm", "ghost", "nothere2", "foo"], None),
        (["namespaces", "ls"], None),
        (["namespaces", "rm", "n" * 76], None),
        (["namespaces", "ls", "-q"], None),
    ]
    differential(krilld, containerd, steps)


def test_daemon_namespace_rm_of_nonempty_namespace(krilld, containerd):
    """A namespace still holding content cannot be removed (FailedPrecondition, containerd's message)."""
    plugins = krilld.ctr("plugins", "ls", "-q", "type==io.containerd.grpc.v1").stdout.split()
    if "content" not in plugins:
        print("SKIP: krilld has no content service in this build")
        pytest.fail("krilld has no content service in this build")
    steps = [
        (["namespaces", "create", "full"], None),
        (["content", "ingest", "sha256:abc"], "full"),
        (["namespaces", "rm", "full"], None),
        (["namespaces", "ls", "-q"], None),
        (["namespaces", "rm", "nothere", "full"], None),
    ]
    differential(krilld, containerd, steps)


def test_daemon_namespaces_survive_many_creates(krilld):
    for i in range(50):
        r = krilld.ctr("namespaces", "create", "ns%02d" % i, "idx=%d" % i)
        assert r.returncode == 0, r.stderr
    r = krilld.ctr("namespaces", "ls", "-q")
    assert r.stdout.split() == ["ns%02d" % i for i in range(50)]
    r = krilld.ctr("namespaces", "rm", *["ns%02d" % i for i in range(50)])
    assert r.returncode == 0, r.stderr
    assert krilld.ctr("namespaces", "ls", "-q").stdout == ""


def _v1_hierarchies():
    """cgroup v1 hierarchies mounted directly under /sys/fs/cgroup (the layout this machine has)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup" and os.path.dirname(fields[4]) == "/sys/fs/cgroup":
                out.append(fields[4])
    return out


@pytest.mark.parametrize("client", ["krill", "ctr"])
def test_namespace_rm_cgroup_removes_the_namespace_cgroup(krilld, client):
    """`namespaces rm --cgroup` removes <ns> from every v1 hierarchy (ctr does it client-side, before the Delete
    call, and keeps the namespace when the cgroup cannot go); a namespace without cgroups is removed as usual."""
    hier = _v1_hierarchies()
    if not hier:
        pytest.skip("no cgroup v1 hierarchies under /sys/fs/cgroup on this machine (cgroup2-only host)")
    cli = os.path.join(krilld.build, "src", "cli", "krill")

    def rm(*args):
        if client == "ctr":
            return krilld.ctr("namespaces", "rm", *args, timeout=60)
        return subprocess.run([cli, "--address", krilld.address, "namespaces", "rm", *args],
                              capture_output=True, text=True, timeout=60)

    ns = "cgtest-%s-%d" % (client, os.getpid())
    made = []
    try:
        assert krilld.ctr("namespaces", "create", ns).returncode == 0
        for h in hier[:3]:
            os.mkdir(os.path.join(h, ns))
            made.append(os.path.join(h, ns))
        # a process in it keeps a cgroup busy: the removal fails and the namespace stays
        sleeper = subprocess.Popen(["sleep", "60"])
        try:
            with open(os.path.join(made[0], "cgroup.procs"), "w") as f:
                f.write(str(sleeper.pid))
            r = rm("--cgroup", ns)
        finally:
            sleeper.kill()
            sleeper.wait()
        assert r.returncode == 1, r
        assert "unable to delete %s" % ns in r.stderr and "cgroups: unable to remove paths" in r.stderr, r.stderr
        assert ns in krilld.ctr("namespaces", "ls", "-q").stdout.split()
        # child cgroups without processes go with their parent (containerd removes the tree)
        os.mkdir(os.path.join(made[0], "child"))
        r = rm("-c", ns)
        assert (r.returncode, r.stdout) == (0, ns + "\n"), r
        assert not [p for p in made if os.path.exists(p)]
        assert ns not in krilld.ctr("namespaces", "ls", "-q").stdout.split()
        # no cgroups at all: just the namespace
        assert krilld.ctr("namespaces", "create", ns).returncode == 0
        r = rm("--cgroup", ns)
        assert (r.returncode, r.stdout) == (0, ns + "\n"), r
    finally:
        for p in made:
            for d in (os.path.join(p, "child"), p):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
