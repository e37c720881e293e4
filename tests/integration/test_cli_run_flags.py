"""krill run's ctr flags (--cap-add ... --rootfs, --config, --log-uri, --pid-file, ...), `tasks attach` and
`tasks checkpoint`, against krilld in a private mount namespace with krill's shim.

Each flag is checked by its effect inside the container (/proc/self/status, the cgroup, the mounts, files it
writes) and, where ctr has the same flag, by the spec ctr builds for the same flags against the same krilld
(`ctr containers info` of a `ctr run -d` container vs krill's `run -d`).
"""

import gzip
import io
import json
import os
import stat
import subprocess
import sys
import tarfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from conftest import build_dir, require_binary, skip_unless_root  # noqa: E402
import daemons  # noqa: E402

IMAGE = "docker.io/library/busybox:test"
KRILL = "io.containerd.krill.v2"

# default 14 capabilities of containerd's spec, by bit
CAP_BITS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
            "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13,
            "CAP_SYS_CHROOT": 18, "CAP_MKNOD": 27, "CAP_AUDIT_WRITE": 29, "CAP_SETFCAP": 31}
CAP_SYS_ADMIN = 21


class Env:
    def __init__(self, d, build, tmp):
        self.d = d
        self.build = build
        self.tmp = tmp
        # KRILL_CLI: another krill binary (e.g. a sanitizer build) against the same krilld
        self.cli = os.environ.get("KRILL_CLI") or require_binary(os.path.join(build, "src", "cli", "krill"),
                                                                 "krill CLI")
        self.bundles = os.path.join(d.state, "io.containerd.runtime.v2.task", "default")

    def krill(self, *args, timeout=120, input=None):
        args = list(args)
        if args and args[0] == "run":  # FIFOs under the daemon's temp dir, never the host's /run
            args = ["run", "--fifo-dir", self.d.fifo_dir] + args[1:]
        return subprocess.run([self.cli, "--address", self.d.address] + args,
                              stdin=subprocess.DEVNULL if input is None else None, input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)

    def ctr(self, *args, **kw):
        return self.d.ctr(*args, **kw)

    def tasks(self):
        r = self.ctr("tasks", "ls")
        assert r.returncode == 0, r.stderr
        out = {}
        for ln in r.stdout.splitlines()[1:]:
            f = ln.split()
            if len(f) >= 3:
                out[f[0]] = (int(f[1]), f[2])
        return out

    def cleanup(self, *cids):
        for c in cids:
            self.krill("tasks", "kill", "-s", "SIGKILL", c)
        for c in cids:
            daemons.wait_until(lambda: self.tasks().get(c, (0, "STOPPED"))[1] == "STOPPED", 20,
                               what=c + " stopped")
            self.krill("tasks", "rm", c)
            self.krill("containers", "rm", c)

    def info(self, cid, tool="krill"):
        r = (self.krill if tool == "krill" else self.ctr)("containers", "info", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)


def extract_rootfs(archive, dest):
    """The busybox image's layers unpacked into dest (an OCI archive: index -> manifest -> layers)."""
    with tarfile.open(archive) as t:
        def blob(desc):
            return t.extractfile("blobs/" + desc["digest"].replace(":", "/")).read()
        idx = json.loads(t.extractfile("index.json").read())
        desc = idx["manifests"][0]
        while "manifests" in json.loads(blob(desc)):
            ms = json.loads(blob(desc))["manifests"]
            arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
            desc = next((m for m in ms if m.get("platform", {}).get("architecture") == arch), ms[0])
        for layer in json.loads(blob(desc))["layers"]:
            data = blob(layer)
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as lt:
                lt.extractall(dest, numeric_owner=True)


@pytest.fixture(scope="module")
def env(busybox_oci, tmp_path_factory):
    skip_unless_root()
    build = build_dir()
    require_binary(os.path.join(build, "src", "daemon", "krilld"), "krilld")
    require_binary(os.path.join(build, "src", "shim", "containerd-shim-krill-v2"), "krill shim")
    d = daemons.KrillDaemon(build, log_level="info", private_ns=True)
    d.start(timeout=30, probe="version")
    try:
        e = Env(d, build, str(tmp_path_factory.mktemp("runflags")))
        r = e.krill("tasks", "ls")
        if r.returncode != 0:
            pytest.fail("krilld does not serve tasks.v1: " + r.stderr.strip())
        r = e.ctr("images", "import", "--all-platforms", busybox_oci, timeout=300)
        assert r.returncode == 0, r.stderr
        e.busybox_oci = busybox_oci
        yield e
    finally:
        d.close()


def run_out(env, cid, *flags_and_cmd, rc=0):
    """krill run --rm FLAGS IMAGE cid CMD...: asserts the exit code, returns stdout."""
    flags = [a for a in flags_and_cmd if isinstance(a, tuple)]
    argv = []
    for f in flags:
        argv += list(f)
    cmd = [a for a in flags_and_cmd if not isinstance(a, tuple)]
    r = env.krill("run", "--rm", *argv, IMAGE, cid, *cmd)
    assert r.returncode == rc, (r.stdout, r.stderr)
    return r.stdout


def status_field(out, name):
    for ln in out.splitlines():
        if ln.startswith(name + ":"):
            return ln.split(":", 1)[1].strip()
    raise AssertionError("%s not in %r" % (name, out))


def normalized_spec(spec, cid):
    s = json.loads(json.dumps(spec).replace(cid, "<ID>"))
    return s


def compare_with_ctr(env, flags, cmd=("sleep", "600")):
    """Runs the same flags through `krill run -d` and `ctr run -d` (krill's runtime, same krilld) and
    compares the specs the two stored (container id replaced)."""
    a, b = "cmp-krill", "cmp-ctr"
    try:
        r = env.krill("run", "-d", *flags, IMAGE, a, *cmd)
        assert r.returncode == 0, r.stderr
        r = env.ctr("run", "-d", "--runtime", KRILL, *flags, IMAGE, b, *cmd)
        assert r.returncode == 0, r.stderr
        ours, theirs = env.info(a), env.info(b, tool="ctr")
        assert normalized_spec(ours["Spec"], a) == normalized_spec(theirs["Spec"], b)
        # and ctr reads krill's container the way krill prints it
        assert env.info(a, tool="ctr") == ours
        return ours
    finally:
        env.cleanup(a, b)


def test_help_lists_ctr_flags(env):
    def names(text):
        out = set()
        for ln in text.splitlines():
            ln = ln.strip()
            if ln.startswith("--"):
                for part in ln.split("  ")[0].split(","):
                    out.add(part.strip().split()[0])
        return out
    ours = names(env.krill("run", "--help").stdout)
    theirs = names(subprocess.run([daemons.CTR, "run", "--help"], stdout=subprocess.PIPE, text=True).stdout)
    assert theirs - ours == set()
    assert ours - theirs <= {"--user", "-u"}  # krill's own extra
    t = env.krill("tasks", "--help").stdout
    assert "attach" in t and "checkpoint" in t


def test_caps_add_drop(env):
    out = run_out(env, "t-caps", ("--cap-add", "CAP_SYS_ADMIN"), ("--cap-drop", "CAP_NET_RAW"),
                  "grep", "Cap", "/proc/self/status")
    want = sum(1 << b for n, b in CAP_BITS.items() if n != "CAP_NET_RAW") | (1 << CAP_SYS_ADMIN)
    assert int(status_field(out, "CapEff"), 16) == want
    assert int(status_field(out, "CapBnd"), 16) == want
    out = run_out(env, "t-caps0", "grep", "CapEff", "/proc/self/status")
    assert int(status_field(out, "CapEff"), 16) == sum(1 << b for b in CAP_BITS.values())
    for flag in ("--cap-add", "--cap-drop"):
        r = env.krill("run", "--rm", flag, "SYS_ADMIN", IMAGE, "t-capbad", "true")
        c = env.ctr("run", "--rm", flag, "SYS_ADMIN", IMAGE, "t-capbad", "true")
        assert r.returncode == c.returncode == 1
        assert r.stderr.replace("krill:", "ctr:") == c.stderr
    spec = compare_with_ctr(env, ["--cap-add", "CAP_SYS_ADMIN", "--cap-drop", "CAP_NET_RAW"])
    assert "CAP_SYS_ADMIN" in spec["Spec"]["process"]["capabilities"]["effective"]


def test_no_new_privs(env):
    assert status_field(run_out(env, "t-nnp", "cat", "/proc/self/status"), "NoNewPrivs") == "1"
    out = run_out(env, "t-nnp2", ("--allow-new-privs",), "cat", "/proc/self/status")
    assert status_field(out, "NoNewPrivs") == "0"
    spec = compare_with_ctr(env, ["--allow-new-privs"])
    assert "noNewPrivileges" not in spec["Spec"]["process"]


def test_pid_file(env):
    pidf = os.path.join(env.tmp, "sub", "t.pid")
    os.makedirs(os.path.dirname(pidf), exist_ok=True)
    r = env.krill("run", "-d", "--pid-file", pidf, IMAGE, "t-pid", "sleep", "600")
    try:
        assert r.returncode == 0, r.stderr
        with open(pidf) as f:
            txt = f.read()
        assert txt == str(env.tasks()["t-pid"][0])
        assert not os.path.exists(os.path.join(os.path.dirname(pidf), ".t.pid"))
        mask = os.umask(0)
        os.umask(mask)
        assert oct(os.stat(pidf).st_mode & 0o777) == oct(0o666 & ~mask)
    finally:
        env.cleanup("t-pid")
    # run -d left its FIFOs for `tasks attach`; `tasks rm` removed them with the task
    assert [f for _, _, fs in os.walk(env.d.fifo_dir) for f in fs if f.startswith("t-pid-")] == []
    # foreground: the pid is written before the task starts, the file stays
    rel = "rel.pid"
    # (and a fifo dir whose parents do not exist yet: created like ctr's MkdirAll)
    fifos = os.path.join(env.tmp, "fifo-new", "deeper")
    r = subprocess.run([env.cli, "--address", env.d.address, "run", "--rm", "--fifo-dir", fifos,
                        "--pid-file", rel, IMAGE, "t-pid2", "sh", "-c", "echo $$"],
                       cwd=env.tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert open(os.path.join(env.tmp, rel)).read().isdigit()
    assert os.listdir(fifos) == []


def test_log_uri_file(env):
    log = os.path.join(env.tmp, "ctr.log")
    r = env.krill("run", "--rm", "--log-uri", "file://" + log, IMAGE, "t-log",
                  "sh", "-c", "echo to-out; echo to-err >&2; exit 4")
    assert r.returncode == 4, r.stderr
    assert r.stdout == ""
    with open(log) as f:
        lines = sorted(f.read().splitlines())
    assert lines == ["to-err", "to-out"]
    assert not os.listdir(env.d.fifo_dir) or all(not os.listdir(os.path.join(env.d.fifo_dir, x))
                                                  for x in os.listdir(env.d.fifo_dir))


def test_log_uri_binary(env):
    outdir = os.path.join(env.tmp, "binlog")
    os.makedirs(outdir, exist_ok=True)
    logger = os.path.join(env.tmp, "logger.sh")
    with open(logger, "w") as f:
        f.write("#!/bin/sh\n"
                "cat <&3 > %s/out.$CONTAINER_ID 5>&- &\n"
                "cat <&4 > %s/err.$CONTAINER_ID 5>&- &\n"
                "exec 5>&-\n"
                "wait\n" % (outdir, outdir))
    os.chmod(logger, stat.S_IRWXU)
    r = env.krill("run", "--rm", "--log-uri", "binary://" + logger, IMAGE, "t-blog",
                  "sh", "-c", "echo bin-out; echo bin-err >&2")
    assert r.returncode == 0, r.stderr
    daemons.wait_until(lambda: os.path.exists(os.path.join(outdir, "err.t-blog")) and
                       open(os.path.join(outdir, "err.t-blog")).read() == "bin-err\n", 10, what="binary log")
    assert open(os.path.join(outdir, "out.t-blog")).read() == "bin-out\n"


def test_rootfs_dir(env):
    root = os.path.join(env.tmp, "rootfs")
    os.makedirs(root)
    extract_rootfs(env.busybox_oci, root)
    r = env.krill("run", "--rm", "--rootfs", "--label", "k=v", root, "t-rootfs",
                  "/bin/sh", "-c", "echo written > /marker; cat /marker")
    assert (r.returncode, r.stdout) == (0, "written\n"), r.stderr
    assert open(os.path.join(root, "marker")).read() == "written\n"
    # the container record: no image, no snapshot, root.path the absolute dir, --label also an annotation
    r = env.krill("run", "-d", "--rootfs", "--label", "k=v", os.path.relpath(root), "t-rootfs2", "/bin/sleep",
                  "600")
    try:
        assert r.returncode == 0, r.stderr
        info = env.info("t-rootfs2")
        assert info["Image"] == "" and info["Snapshotter"] == "" and info["SnapshotKey"] == ""
        assert info["Labels"] == {"k": "v"}
        assert info["Spec"]["root"]["path"] == root
        assert info["Spec"]["annotations"] == {"k": "v"}
        c = env.ctr("run", "-d", "--runtime", KRILL, "--rootfs", "--label", "k=v", root, "t-rootfs3",
                    "/bin/sleep", "600")
        assert c.returncode == 0, c.stderr
        theirs = env.info("t-rootfs3", tool="ctr")
        assert normalized_spec(theirs["Spec"], "t-rootfs3") == normalized_spec(info["Spec"], "t-rootfs2")
        assert theirs["Labels"] == info["Labels"]
    finally:
        env.cleanup("t-rootfs2", "t-rootfs3")


def test_config_file(env):
    root = os.path.join(env.tmp, "rootfs-cfg")
    os.makedirs(root)
    extract_rootfs(env.busybox_oci, root)
    r = env.krill("containers", "create", IMAGE, "t-spec-src", "true")
    assert r.returncode == 0, r.stderr
    spec = env.info("t-spec-src")["Spec"]
    env.krill("containers", "rm", "t-spec-src")
    spec["root"] = {"path": root}
    spec["process"]["args"] = ["/bin/sh", "-c", "echo from-config"]
    spec["linux"]["cgroupsPath"] = "/default/t-cfg"
    cfg = os.path.join(env.tmp, "config.json")
    with open(cfg, "w") as f:
        json.dump(spec, f)
    r = env.krill("run", "--rm", "--config", cfg, "t-cfg")
    assert (r.returncode, r.stdout) == (0, "from-config\n"), r.stderr
    r = env.krill("containers", "create", "-c", cfg, "--label", "a=b", "t-cfg2")
    try:
        assert r.returncode == 0, r.stderr
        info = env.info("t-cfg2")
        assert info["Labels"] == {"a": "b"} and info["Image"] == ""
        want = dict(spec, annotations={"a": "b"})
        assert info["Spec"] == want
    finally:
        env.krill("containers", "rm", "t-cfg2")
    r = env.krill("run", "--config", cfg, "t-cfg3", "extra")
    c = env.ctr("run", "--config", cfg, "t-cfg3", "extra")
    assert r.returncode == c.returncode == 1
    assert r.stderr.replace("krill:", "ctr:") == c.stderr


def cgroup2():
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def test_cgroup_and_cpu(env):
    path = "/krilltest-runflags/cg1"
    out = run_out(env, "t-cg", ("--cgroup", path), ("--cpu-quota", "50000"), ("--cpu-period", "100000"),
                  ("--cpu-shares", "512"), "sh", "-c", "cat /proc/self/cgroup; sleep 0")
    assert path in out
    try:
        r = env.krill("run", "-d", "--cgroup", path + "-d", "--cpu-quota", "25000", "--cpu-period", "100000",
                      IMAGE, "t-cgd", "sleep", "600")
        assert r.returncode == 0, r.stderr
        if cgroup2():
            with open("/sys/fs/cgroup" + path + "-d/cpu.max") as f:
                assert f.read().split() == ["25000", "100000"]
    finally:
        env.cleanup("t-cgd")
        # cgroupsPath lands in every hierarchy: cgroup2 at /sys/fs/cgroup, each v1 controller on hybrid hosts
        for base in daemons._cgroup_bases():
            for p in (path, path + "-d", os.path.dirname(path)):
                try:
                    os.rmdir(base + p)
                except OSError:
                    pass
    spec = compare_with_ctr(env, ["--cgroup", "", "--cpu-shares", "100", "--cpu-quota", "20000",
                                  "--cpu-period", "50000", "--memory-limit", "67108864"])
    assert "cgroupsPath" not in spec["Spec"]["linux"]
    cpu = spec["Spec"]["linux"]["resources"]["cpu"]
    assert cpu == {"shares": 100, "quota": 20000, "period": 50000}
    spec = compare_with_ctr(env, [])  # ctr's default --cpu-shares 1024
    assert spec["Spec"]["linux"]["resources"]["cpu"] == {"shares": 1024}
    r = env.krill("run", "--rm", "--cpus", "1", "--cpu-quota", "1000", IMAGE, "t-cpu-bad", "true")
    c = env.ctr("run", "--rm", "--cpus", "1", "--cpu-quota", "1000", IMAGE, "t-cpu-bad", "true")
    assert r.returncode == c.returncode == 1
    assert r.stderr.replace("krill:", "ctr:") == c.stderr


def test_with_ns(env):
    r = env.krill("run", "-d", IMAGE, "t-ns-a", "sleep", "600")
    try:
        assert r.returncode == 0, r.stderr
        pid = env.tasks()["t-ns-a"][0]
        netns = os.readlink("/proc/%d/ns/net" % pid)
        out = run_out(env, "t-ns-b", ("--with-ns", "network:/proc/%d/ns/net" % pid), "readlink", "/proc/self/ns/net")
        assert out.strip() == netns
        assert run_out(env, "t-ns-c", "readlink", "/proc/self/ns/net").strip() != netns
        spec = compare_with_ctr(env, ["--with-ns", "network:/proc/%d/ns/net" % pid,
                                      "--with-ns", "cgroup:/proc/%d/ns/cgroup" % pid])
        nss = spec["Spec"]["linux"]["namespaces"]
        assert {"type": "network", "path": "/proc/%d/ns/net" % pid} in nss
    finally:
        env.cleanup("t-ns-a")
    for bad in ("network", "time:/x"):
        r = env.krill("run", "--rm", "--with-ns", bad, IMAGE, "t-ns-bad", "true")
        c = env.ctr("run", "--rm", "--with-ns", bad, IMAGE, "t-ns-bad", "true")
        assert r.returncode == c.returncode == 1
        assert r.stderr.replace("krill:", "ctr:") == c.stderr


def test_device(env):
    dev = next((d for d in ("/dev/fuse", "/dev/loop-control", "/dev/net/tun") if os.path.exists(d)), None)
    if dev is None:
        pytest.skip("no /dev/fuse, /dev/loop-control or /dev/net/tun on this host")
    st = os.stat(dev)
    out = run_out(env, "t-dev", ("--device", dev), "stat", "-c", "%t:%T", dev)
    assert out.strip() == "%x:%x" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    spec = compare_with_ctr(env, ["--device", dev])
    assert any(d["path"] == dev for d in spec["Spec"]["linux"]["devices"])


def test_rootfs_propagation_and_no_pivot(env):
    # runc applies it to the container's view of "/" before pivot_root: the spec is what can be compared
    spec = compare_with_ctr(env, ["--rootfs-propagation", "rshared", "--read-only", "--env", "A=1"])
    assert spec["Spec"]["linux"]["rootfsPropagation"] == "rshared"
    r = env.krill("run", "-d", "--no-pivot", IMAGE, "t-nopivot", "sleep", "600")
    try:
        assert r.returncode == 0, r.stderr
        with open(os.path.join(env.bundles, "t-nopivot", "options.json")) as f:
            assert json.load(f)["NoPivotRoot"] is True
    finally:
        env.cleanup("t-nopivot")


def test_runc_options(env):
    runc_root = os.path.join(env.tmp, "runc-root")
    r = env.krill("run", "-d", "--runc-binary", "/usr/sbin/runc", "--runc-root", runc_root, IMAGE, "t-runc",
                  "sleep", "600")
    try:
        assert r.returncode == 0, r.stderr
        with open(os.path.join(env.bundles, "t-runc", "options.json")) as f:
            opts = json.load(f)
        assert opts["BinaryName"] == "/usr/sbin/runc" and opts["Root"] == runc_root
        assert os.path.isdir(os.path.join(runc_root, "default", "t-runc"))
        info = env.info("t-runc")
        assert info["Runtime"]["Options"]["type_url"] == "containerd.runc.v1.Options"
    finally:
        env.cleanup("t-runc")
    # other runtimes: runc flags refused as ctr does, --runtime-config-path as runtimeoptions.v1.Options
    r = env.krill("run", "--rm", "--runtime", "io.containerd.other.v1", "--runc-binary", "x", IMAGE, "t-x", "true")
    c = env.ctr("run", "--rm", "--runtime", "io.containerd.other.v1", "--runc-binary", "x", IMAGE, "t-x", "true")
    assert r.returncode == c.returncode == 1
    assert r.stderr.replace("krill:", "ctr:") == c.stderr
    r = env.krill("run", "--rm", "--runc-systemd-cgroup", IMAGE, "t-x", "true")
    assert r.returncode == 1 and "requires --cgroup to be set" in r.stderr
    try:
        r = env.krill("containers", "create", "--runtime", "io.containerd.other.v1", "--runtime-config-path",
                      "/etc/other.toml", IMAGE, "t-rtcfg", "true")
        assert r.returncode == 0, r.stderr
        c = env.ctr("containers", "create", "--runtime", "io.containerd.other.v1", "--runtime-config-path",
                    "/etc/other.toml", IMAGE, "t-rtcfg2", "true")
        assert c.returncode == 0, c.stderr
        ours, theirs = env.info("t-rtcfg"), env.info("t-rtcfg2", tool="ctr")
        assert ours["Runtime"] == theirs["Runtime"]
        assert ours["Runtime"]["Options"]["type_url"] == "runtimeoptions.v1.Options"
    finally:
        env.krill("containers", "rm", "t-rtcfg", "t-rtcfg2")


def test_seccomp_profile(env):
    prof = os.path.join(env.tmp, "seccomp.json")
    with open(prof, "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}, f)
    r = env.krill("run", "--rm", "--seccomp", "--seccomp-profile", prof, IMAGE, "t-sc", "sh", "-c",
                  "mkdir /tmp/x 2>&1; echo rc=$?")
    assert r.returncode == 0, r.stderr
    assert "rc=1" in r.stdout and "not permitted" in r.stdout
    spec = compare_with_ctr(env, ["--seccomp", "--seccomp-profile", prof])
    assert spec["Spec"]["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    r = env.krill("run", "--rm", "--seccomp-profile", prof, IMAGE, "t-sc2", "true")
    c = env.ctr("run", "--rm", "--seccomp-profile", prof, IMAGE, "t-sc2", "true")
    assert r.returncode == c.returncode == 1
    assert r.stderr.replace("krill:", "ctr:") == c.stderr


@pytest.mark.parametrize("flags", [[], ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SYS_PTRACE"],
                                   ["--cap-drop", "CAP_SYS_CHROOT"], ["--privileged"]],
                         ids=["default-caps", "admin-ptrace", "no-chroot", "privileged"])
def test_seccomp_default_profile(env, flags):
    # containerd's DefaultProfile depends on the bounding set: compared with ctr's for the same flags
    spec = compare_with_ctr(env, flags + ["--seccomp"])
    sc = spec["Spec"]["linux"]["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO"
    admin = "CAP_SYS_ADMIN" in spec["Spec"]["process"]["capabilities"]["bounding"]
    assert any(c["names"] == ["clone3"] and c.get("errnoRet") == 38 for c in sc["syscalls"]) == (not admin)
    if not flags:
        # the effect: unshare(2) is not in the allow list without CAP_SYS_ADMIN, mkdir is
        out = run_out(env, "t-scd", ("--seccomp",), "sh", "-c", "unshare -U true 2>&1; echo rc=$?; mkdir /tmp/d && echo made")
        assert "rc=1" in out and "made" in out


def test_userns_mapping(env):
    if not os.path.exists("/proc/self/ns/user"):
        pytest.skip("no user namespaces")
    r = env.krill("run", "--rm", "--uidmap", "0:1:2", "--gidmap", "0:1:x", IMAGE, "t-uns2", "true")
    c = env.ctr("run", "--rm", "--uidmap", "0:1:2", "--gidmap", "0:1:x", IMAGE, "t-uns2", "true")
    assert r.returncode == c.returncode == 1
    assert r.stderr.replace("krill:", "ctr:") == c.stderr
    r = env.krill("run", "--rm", "--uidmap", "0:1:2", "--gidmap", "0:1:2", "--remap-labels", IMAGE, "t-uns3", "true")
    assert r.returncode == 1 and "remap-labels is not supported" in r.stderr

    # The remapped root must be able to walk down to its bundle and snapshot, as it can under containerd's
    # /run/containerd and /var/lib/containerd (0711); the fixture's mkdtemp base is 0700.
    os.chmod(env.d.dir, 0o711)
    # WithRemappedSnapshot: a committed "<chain>-<uid>-<gid>" copy chowned by the host ids, reused
    r = env.krill("run", "--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536", IMAGE, "t-uns",
                  "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /bin/sh; touch /x && echo ok")
    try:
        snaps = [ln.split() for ln in env.ctr("snapshots", "ls").stdout.splitlines()[1:]]
        remapped = [s for s in snaps if s[0].endswith("-100000-200000")]
        assert len(remapped) == 1 and remapped[0][2] == "Committed"
        assert [s for s in snaps if s[0] == "t-uns"][0][1] == remapped[0][0]
        mnt = os.path.join(env.tmp, "uns-mnt")
        os.makedirs(mnt, exist_ok=True)
        m = env.ctr("snapshots", "mounts", mnt, "t-uns")
        assert m.returncode == 0, m.stderr
        subprocess.run(["sh", "-c", m.stdout], check=True)
        try:
            st = os.lstat(os.path.join(mnt, "bin"))
            assert (st.st_uid, st.st_gid) == (100000, 200000)
        finally:
            subprocess.run(["umount", mnt], check=True)
        # ctr's spec for the same flags (its task may fail the same way: the container stays)
        env.ctr("run", "-d", "--runtime", KRILL, "--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536",
                IMAGE, "t-uns-ctr", "sh", "-c",
                "cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /bin/sh; touch /x && echo ok")
        ours, theirs = env.info("t-uns"), env.info("t-uns-ctr", tool="ctr")
        assert normalized_spec(ours["Spec"], "t-uns") == normalized_spec(theirs["Spec"], "t-uns-ctr")
        assert ours["Spec"]["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    finally:
        env.cleanup("t-uns-ctr")
        env.krill("tasks", "rm", "t-uns")
        env.krill("containers", "rm", "t-uns")
        env.ctr("snapshots", "rm", "t-uns")
    assert r.returncode == 0, r.stderr
    lines = [ln.split() for ln in r.stdout.splitlines()]
    assert lines[0] == ["0", "100000", "65536"]
    assert lines[1] == ["0", "200000", "65536"]
    assert lines[2] == ["0:0"]  # the remapped snapshot: host 100000:200000 is root inside
    assert lines[3] == ["ok"]


def test_snapshotter_label(env):
    r = env.krill("containers", "create", "--snapshotter-label", "x.test/a=b", IMAGE, "t-slbl", "true")
    try:
        assert r.returncode == 0, r.stderr
        info = json.loads(env.ctr("snapshots", "info", "t-slbl").stdout)
        assert info["Labels"]["x.test/a"] == "b"
    finally:
        env.krill("containers", "rm", "t-slbl")


@pytest.mark.parametrize("flag", [["--cni"], ["--gpus", "0"], ["--apparmor-profile", "p"],
                                  ["--apparmor-default-profile", "p"], ["--rdt-class", "c"]])
def test_unsupported_flags_refused(env, flag):
    r = env.krill("run", "--rm", *flag, IMAGE, "t-unsup", "true")
    assert r.returncode == 1
    assert "not supported by krill" in r.stderr
    assert "t-unsup" not in env.krill("containers", "ls", "-q").stdout.split()


def test_tasks_attach(env):
    for tool in ("krill", "ctr"):
        cid = "t-att-" + tool
        run = env.krill if tool == "krill" else env.ctr
        extra = [] if tool == "krill" else ["--runtime", KRILL]
        # ctr run -d copies the FIFOs until it exits: output before that could land in ctr's own stdout
        r = run("run", "-d", *extra, IMAGE, cid, "sh", "-c", "sleep 1; echo early; sleep 1; echo late >&2; exit 3")
        try:
            assert r.returncode == 0, r.stderr
            a = env.krill("tasks", "attach", cid)
            assert a.returncode == 3, a.stderr
            assert (a.stdout, a.stderr) == ("early\n", "late\n")
            # the task is deleted after the attach, as ctr does
            assert cid not in env.tasks()
        finally:
            env.cleanup(cid)
    # krill's FIFOs are gone with the task
    left = [os.path.join(r, f) for r, _, fs in os.walk(env.d.fifo_dir) for f in fs if "t-att-krill" in f]
    assert left == []
    r = env.krill("tasks", "attach", "nosuch")
    assert r.returncode == 1


def test_tasks_checkpoint(env):
    r = env.krill("run", "-d", IMAGE, "t-ckpt", "sleep", "600")
    try:
        assert r.returncode == 0, r.stderr
        k = env.krill("tasks", "checkpoint", "t-ckpt")
        c = env.ctr("tasks", "checkpoint", "t-ckpt")
        assert k.returncode == c.returncode == 1
        assert "not implemented" in k.stderr
        assert k.stderr.replace("krill:", "ctr:") == c.stderr
        assert env.tasks()["t-ckpt"][1] == "RUNNING"  # resumed after the failed checkpoint
    finally:
        env.cleanup("t-ckpt")


def test_containers_create_matches_ctr(env):
    # ctr containers create has no run-only flags (no --cpu-shares default either)
    flags = ["--cap-add", "CAP_SYS_ADMIN", "--label", "l=1", "--cpu-quota", "10000", "--cpu-period", "20000"]
    try:
        r = env.krill("containers", "create", *flags, IMAGE, "t-cc1", "true")
        assert r.returncode == 0, r.stderr
        c = env.ctr("containers", "create", "--runtime", KRILL, *flags, IMAGE, "t-cc2", "true")
        assert c.returncode == 0, c.stderr
        ours, theirs = env.info("t-cc1"), env.info("t-cc2", tool="ctr")
        assert normalized_spec(ours["Spec"], "t-cc1") == normalized_spec(theirs["Spec"], "t-cc2")
        assert ours["Spec"]["linux"]["resources"]["cpu"] == {"quota": 10000, "period": 20000}
        assert ours["Labels"] == theirs["Labels"]
    finally:
        env.krill("containers", "rm", "t-cc1", "t-cc2")
    for flag in (["--cpus", "1"], ["-d"], ["--rm"]):
        r = env.krill("containers", "create", *flag, IMAGE, "t-cc3", "true")
        c = env.ctr("containers", "create", *flag, IMAGE, "t-cc3", "true")
        assert r.returncode == c.returncode == 1
        assert r.stdout.splitlines()[0] == c.stdout.splitlines()[0]


def test_tasks_start_log_uri_pid_file_rootfs(env):
    root = os.path.join(env.tmp, "rootfs-start")
    os.makedirs(root)
    extract_rootfs(env.busybox_oci, root)
    log = os.path.join(env.tmp, "start.log")
    pidf = os.path.join(env.tmp, "start.pid")
    r = env.krill("containers", "create", "--rootfs", root, "t-start", "/bin/sh", "-c", "echo $$; echo started")
    try:
        assert r.returncode == 0, r.stderr
        r = env.krill("tasks", "start", "--log-uri", "file://" + log, "--pid-file", pidf, "t-start")
        assert (r.returncode, r.stdout) == (0, ""), r.stderr
        pid, msg = open(log).read().split()
        assert msg == "started"
        assert open(pidf).read().isdigit()
    finally:
        env.krill("containers", "rm", "t-start")


def test_env_file_last_wins(env):
    a, b = os.path.join(env.tmp, "env-a"), os.path.join(env.tmp, "env-b")
    with open(a, "w") as f:
        f.write("FROM_A=1\n")
    with open(b, "w") as f:
        f.write("FROM_B=2\n\nPATH=/bin\n")
    spec = compare_with_ctr(env, ["--env-file", a, "--env-file", b, "--env", "X=y"])
    e = spec["Spec"]["process"]["env"]
    assert "FROM_B=2" in e and "X=y" in e and "PATH=/bin" in e
    assert not any(v.startswith("FROM_A=") for v in e)


def test_label_and_annotation_forms(env):
    # LabelArgs: a bare key is "true" (labels, their annotation copies, snapshot labels); a bare annotation
    # is an error
    spec = compare_with_ctr(env, ["--label", "bare", "--label", "k=v=w", "--annotation", "a=1"])
    assert spec["Spec"]["annotations"] == {"bare": "true", "k": "v=w", "a": "1"}
    assert spec["Labels"]["bare"] == "true"
    r = env.krill("run", "--rm", "--annotation", "noval", IMAGE, "t-anno", "true")
    c = env.ctr("run", "--rm", "--annotation", "noval", IMAGE, "t-anno", "true")
    assert r.returncode == c.returncode == 1
    assert r.stderr.replace("krill:", "ctr:") == c.stderr


def test_tasks_attach_tty(env):
    import pty
    import select
    r = env.krill("run", "-d", "-t", IMAGE, "t-att-tty", "sh", "-c", "sleep 1; echo tty-out; exit 5")
    try:
        assert r.returncode == 0, r.stderr
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(env.cli, [env.cli, "--address", env.d.address, "tasks", "attach", "t-att-tty"])
        out = b""
        while True:
            rl, _, _ = select.select([fd], [], [], 30)
            if not rl:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, st = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(st) == 5, out
        assert b"tty-out" in out
        assert "t-att-tty" not in env.tasks()
    finally:
        env.cleanup("t-att-tty")
