"""Process helpers shared by the integration tests (conftest.py) and bench/run.py.

Standard library only, for Debian's /usr/bin/python3.  Everything runs on
private temp dirs and sockets; nothing here touches /var/lib/krill, /run/krill,
/var/lib/containerd or /run/containerd.  Processes are only ever killed by PID,
and only processes this module started or that descend from them (found by
their temp dir in the command line or root directory).

  KrillDaemon(build)        krilld on T/{root,state,krill.sock}
  PrivateContainerd()       Debian's containerd in a private mount namespace
                            (tmpfs on /run, so its runc shim's hard-coded
                            /run/containerd paths stay private)
  Registry()                Debian's docker-registry on 127.0.0.1:<free port>

All three have .start(), .stop(), .close(); the daemons also .ctr(*args).
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

CTR = "/usr/bin/ctr"
CONTAINERD = "/usr/bin/containerd"
REGISTRY = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
UNSHARE = "/usr/bin/unshare"

# ctr subcommands that create FIFOs; ctr's default FIFO dir is
# /run/containerd/fifo on the host, which we must never touch.
_FIFO_CMDS = {("run",), ("tasks", "start"), ("tasks", "exec"), ("task", "start"),
              ("task", "exec"), ("t", "start"), ("t", "exec")}


# ---------------------------------------------------------------- /proc helpers

def set_subreaper():
    """Make this process the reaper of orphaned descendants (daemonised shims).

    PID 1 on some machines never reaps, so a shim that exits after its
    daemon leaves a zombie; as subreaper we can reap it (reap_zombies)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


# PIDs of the Popen objects this module made: reap_zombies leaves them to Popen.
_OWNED = set()


def reap_zombies(exclude=()):
    """waitpid() our zombie children that no Popen object owns."""
    me = os.getpid()
    for pid in all_pids():
        if pid in exclude or pid in _OWNED:
            continue
        try:
            with open("/proc/%d/stat" % pid) as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if parts[0] == "Z" and int(parts[1]) == me:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def proc_root(pid):
    try:
        return os.readlink("/proc/%d/root" % pid)
    except OSError:
        return ""


def all_pids():
    out = []
    for n in os.listdir("/proc"):
        if n.isdigit():
            out.append(int(n))
    return out


def pids_tied_to(path, exclude=()):
    """PIDs whose command line mentions path, or whose root dir is under it.

    path is a unique mkdtemp directory, so this finds exactly the shims and
    container processes our daemon started there."""
    me = os.getpid()
    out = []
    for pid in all_pids():
        if pid == me or pid in exclude:
            continue
        cmd = proc_cmdline(pid)
        if any(path in a for a in cmd) or proc_root(pid).startswith(path + "/"):
            out.append(pid)
    return out


def ppid_map():
    """{pid: ppid} of every process."""
    out = {}
    for pid in all_pids():
        try:
            with open("/proc/%d/stat" % pid) as f:
                out[pid] = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return out


def with_descendants(pids):
    """pids plus all their descendants (container processes under a shim)."""
    children = {}
    for pid, ppid in ppid_map().items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_cgroups(pid):
    """Cgroup directories of pid under /sys/fs/cgroup (v1 and v2)."""
    out = []
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[2] in ("", "/"):
            continue
        ctrl = parts[1].replace("name=", "") if parts[1] else ""
        base = "/sys/fs/cgroup/" + ctrl if ctrl else "/sys/fs/cgroup/unified"
        if not ctrl and not os.path.isdir(base):
            base = "/sys/fs/cgroup"
        out.append(base + parts[2])
    return out


def _cgroup_bases():
    try:
        names = os.listdir("/sys/fs/cgroup")
    except OSError:
        return []
    out = ["/sys/fs/cgroup"]
    for n in names:
        p = os.path.join("/sys/fs/cgroup", n)
        if os.path.isdir(p) and not os.path.islink(p):
            out.append(p)
    return out


def remove_cgroups(dirs):
    """rmdir emptied cgroup dirs (leaf, then its parent if empty too)."""
    for d in sorted(set(dirs), key=len, reverse=True):
        for p in (d, os.path.dirname(d)):
            if p.count("/") > 4:
                try:
                    os.rmdir(p)
                except OSError:
                    pass


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        return st.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_pids(pids, sig=signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def smaps_rollup(pid):
    """{'rss': kB, 'pss': kB, 'uss': kB} of a process (None if gone)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            text = f.read()
    except OSError:
        return None
    v = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":"):
            try:
                v[parts[0][:-1]] = int(parts[1])
            except ValueError:
                pass
    return {"rss": v.get("Rss", 0), "pss": v.get("Pss", 0),
            "uss": v.get("Private_Clean", 0) + v.get("Private_Dirty", 0)}


def proc_cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def mounts_under(path):
    """Mount points at or under path in our mount namespace, deepest first."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == path or mp.startswith(path + "/"):
                    out.append(mp)
    except OSError:
        pass
    out.sort(key=lambda p: p.count("/"), reverse=True)
    return out


def unmount_under(path):
    for _ in range(5):
        mps = mounts_under(path)
        if not mps:
            return True
        for mp in mps:
            subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return not mounts_under(path)


def remove_tree(path):
    """rm -rf that first unmounts whatever is mounted below path."""
    if not path or not os.path.isdir(path):
        return
    unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):
        # immutable or busy leftovers: report through the caller's log
        subprocess.run(["rm", "-rf", "--one-file-system", path],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def socket_accepts(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_until(fn, timeout, interval=0.005, what="condition"):
    """Poll fn until it returns a true value; raise TimeoutError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def add_fifo_dir(args, fifo_dir):
    """Insert --fifo-dir after ctr's run/tasks start/tasks exec subcommand."""
    args = list(args)
    if any(a == "--fifo-dir" or a.startswith("--fifo-dir=") for a in args):
        return args
    for n in (2, 1):
        if tuple(args[:n]) in _FIFO_CMDS:
            os.makedirs(fifo_dir, exist_ok=True)
            return args[:n] + ["--fifo-dir", fifo_dir] + args[n:]
    return args


# ---------------------------------------------------------------- daemons

class Daemon:
    """A daemon on a private temp dir with a gRPC socket ctr can talk to."""

    name = "daemon"

    def __init__(self, base=None, private_ns=False, keep=False):
        self.dir = tempfile.mkdtemp(prefix="krill-%s-" % self.name, dir=base or "/tmp")
        self.root = os.path.join(self.dir, "root")
        self.state = os.path.join(self.dir, "state")
        self.fifo_dir = os.path.join(self.dir, "fifo")
        self.log = os.path.join(self.dir, "daemon.log")
        self.address = os.path.join(self.dir, self.sock_name)
        self.private_ns = private_ns
        self.keep = keep
        self.proc = None
        self.pid = None
        self.started_at = None
        self.socket_ready = None  # seconds from spawn until the socket accepted
        self.namespaces_used = set()
        self.env = None  # environment of the daemon process (None: inherit)
        for d in (self.root, self.state, self.fifo_dir):
            os.makedirs(d, exist_ok=True)

    sock_name = "daemon.sock"

    def argv(self):
        raise NotImplementedError

    def _spawn(self):
        argv = self.argv()
        if self.private_ns:
            argv = [UNSHARE, "-m", "--propagation", "private", "--", "/bin/sh", "-c",
                    'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$@"', "sh"] + argv
        logf = open(self.log, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True, env=self.env)
        logf.close()
        self.pid = self.proc.pid
        _OWNED.add(self.pid)

    def start(self, timeout=30.0, probe="any"):
        """Start and wait until it answers; returns seconds from spawn to ready.

        probe: "version" waits until `ctr version` succeeds; "socket" until the
        socket accepts; "any" until the socket accepts and then gives ctr
        version a short chance (a daemon without the version service still
        counts as up)."""
        if os.path.exists(self.address):
            os.unlink(self.address)
        self._spawn()
        try:
            return self.wait_ready(timeout, probe)
        except Exception:
            self.kill9()
            raise

    def wait_ready(self, timeout=30.0, probe="any"):
        deadline = time.monotonic() + timeout

        def dead():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with status %s during start; log:\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))

        while not os.path.exists(self.address):
            dead()
            if time.monotonic() > deadline:
                raise TimeoutError("%s: socket %s not created" % (self.name, self.address))
            time.sleep(0.001)
        while not socket_accepts(self.address):
            dead()
            if time.monotonic() > deadline:
                raise TimeoutError("%s: socket does not accept" % self.name)
            time.sleep(0.001)
        self.socket_ready = time.monotonic() - self.started_at
        if probe == "socket":
            return self.socket_ready
        if probe == "any":
            t = time.monotonic() - self.started_at
            self.ctr("version", timeout=5)
            return t
        while True:
            dead()
            r = self.ctr("version", timeout=5)
            if r.returncode == 0:
                return time.monotonic() - self.started_at
            if time.monotonic() > deadline:
                raise TimeoutError("%s: ctr version never answered: %s" % (self.name, r.stderr.strip()))
            time.sleep(0.002)

    def ctr(self, *args, ns=None, timeout=120, input=None, check=False):
        """Run Debian's ctr against this daemon; returns CompletedProcess (text)."""
        argv = [CTR, "--address", self.address]
        if ns:
            argv += ["--namespace", ns]
            self.namespaces_used.add(ns)
        argv += add_fifo_dir(args, self.fifo_dir)
        return subprocess.run(argv, stdin=subprocess.DEVNULL if input is None else None,
                              input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout, check=check)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def nsenter(self, *argv, timeout=60):
        """Run argv in the daemon's mount namespace (sees its private /run and
        mounts when private_ns); CompletedProcess (text)."""
        pre = ["/usr/bin/nsenter", "-m", "-t", str(self.pid)] if self.private_ns and self.running() else []
        return subprocess.run(pre + list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)

    def stop(self, timeout=20.0):
        """SIGTERM, wait; SIGKILL after timeout.  Returns seconds until gone."""
        if not self.running():
            return 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        return time.monotonic() - t0

    def kill9(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, timeout=30.0, probe="any"):
        self.stop()
        return self.start(timeout, probe)

    def memory(self):
        return smaps_rollup(self.pid) if self.running() else None

    def leftovers(self):
        exclude = (self.pid,) if self.running() else ()
        return pids_tied_to(self.dir, exclude)

    def log_tail(self, n=200):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def remove_all_tasks(self, timeout=10):
        """Best effort: kill and delete every task and container, every namespace."""
        if not self.running():
            return
        try:
            r = self.ctr("namespaces", "ls", "-q", timeout=timeout)
            for ns in r.stdout.split():
                tasks = self.ctr("tasks", "ls", "-q", ns=ns, timeout=timeout).stdout.split()
                for t in tasks:
                    self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", t, ns=ns, timeout=timeout)
                for t in tasks:
                    self.ctr("tasks", "delete", "-f", t, ns=ns, timeout=timeout)
                conts = self.ctr("containers", "ls", "-q", ns=ns, timeout=timeout).stdout.split()
                if conts:
                    self.ctr("containers", "delete", *conts, ns=ns, timeout=timeout)
        except (subprocess.SubprocessError, OSError):
            pass

    def kill_leftovers(self):
        """SIGKILL every process tied to the temp dir and its descendants.

        Returns the PIDs that had to be killed (after a clean stop there
        should be none, or only the shims of still-running containers)."""
        killed = []
        cgroups = []
        for _ in range(3):
            left = with_descendants(pids_tied_to(self.dir))
            if not left:
                break
            for p in left:
                cgroups += proc_cgroups(p)
            kill_pids(left)
            killed += left
            try:
                wait_until(lambda: not any(pid_alive(p) for p in left), 5, 0.01, "leftovers")
            except TimeoutError:
                pass
        remove_cgroups(cgroups)
        reap_zombies(exclude=(self.pid,) if self.running() else ())
        return killed

    def close(self, remove_tasks=True):
        """Remove tasks, stop, kill every process tied to the temp dir, unmount, remove."""
        try:
            if remove_tasks:
                self.remove_all_tasks()
            self.stop()
        finally:
            self.kill_leftovers()
            self.remove_ns_cgroups()
            if not self.keep:
                remove_tree(self.dir)

    def remove_ns_cgroups(self):
        """rmdir the per-namespace cgroup parents runc leaves behind (if empty)."""
        for n in self.namespaces_used:
            if not n or "/" in n or "." in n or n in ("user", "system", "init"):
                continue
            for base in _cgroup_bases():
                try:
                    os.rmdir(os.path.join(base, n))
                except OSError:
                    pass


class KrillDaemon(Daemon):
    name = "krilld"
    sock_name = "krill.sock"

    def __init__(self, build, extra_args=(), log_level="debug", **kw):
        self.binary = os.path.join(build, "src", "daemon", "krilld")
        self.extra_args = list(extra_args)
        self.log_level = log_level
        super().__init__(**kw)
        # krilld finds containerd-shim-krill-v2 through PATH, like containerd
        self.env = dict(os.environ, PATH=os.path.join(build, "src", "shim") + ":" +
                        os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))

    def argv(self):
        return [self.binary, "--root", self.root, "--state", self.state, "--address", self.address,
                "--log-level", self.log_level] + self.extra_args


class PrivateContainerd(Daemon):
    """Debian's containerd on temp dirs, inside a private mount namespace."""

    name = "containerd"
    sock_name = "containerd.sock"

    def __init__(self, cri=False, log_level="info", **kw):
        kw.setdefault("private_ns", True)
        self.cri = cri
        self.log_level = log_level
        super().__init__(**kw)
        self.config = os.path.join(self.dir, "config.toml")
        disabled = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
        if not cri:
            disabled.append("io.containerd.grpc.v1.cri")
        with open(self.config, "w") as f:
            f.write('version = 2\nroot = "%s"\nstate = "%s"\n' % (self.root, self.state))
            f.write("disabled_plugins = [%s]\n" % ", ".join('"%s"' % d for d in disabled))
            f.write('[grpc]\n  address = "%s"\n' % self.address)
            f.write('[debug]\n  level = "%s"\n' % log_level)
            if cri:
                f.write('[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n')

    def argv(self):
        return [CONTAINERD, "--config", self.config]

    def shim_pids(self):
        return [p for p in pids_tied_to(self.dir, (self.pid,))
                if os.path.basename((proc_cmdline(p) or [""])[0]).startswith("containerd-shim")]


# ---------------------------------------------------------------- registry

class Registry:
    """Debian's docker-registry on 127.0.0.1:<free port>.

    Plain HTTP by default.  tls=True serves HTTPS with a certificate for
    127.0.0.1 signed by a CA made here (.ca_cert; .certs_dir holds ca.crt for
    clients that take a directory).  htpasswd={"user": "password"} turns on
    Basic auth (needs the `htpasswd` tool of apache2-utils for bcrypt)."""

    def __init__(self, base=None, tls=False, htpasswd=None):
        self.dir = tempfile.mkdtemp(prefix="krill-registry-", dir=base or "/tmp")
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.log = os.path.join(self.dir, "registry.log")
        self.config = os.path.join(self.dir, "config.yml")
        self.ca_cert = None
        self.certs_dir = None
        self.auth = None
        conf = ("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
                "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                "http:\n  addr: %s\n" % (os.path.join(self.dir, "data"), self.host))
        if tls:
            cert, key = self._make_certs()
            conf += "  tls:\n    certificate: %s\n    key: %s\n" % (cert, key)
        if htpasswd:
            tool = shutil.which("htpasswd")
            if not tool:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise FileNotFoundError("htpasswd (apache2-utils) not installed")
            path = os.path.join(self.dir, "htpasswd")
            for i, (user, pw) in enumerate(sorted(htpasswd.items())):
                subprocess.run([tool, "-B", "-b"] + (["-c"] if i == 0 else []) + [path, user, pw],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            conf += "auth:\n  htpasswd:\n    realm: krill-test\n    path: %s\n" % path
            self.auth = dict(htpasswd)
        with open(self.config, "w") as f:
            f.write(conf)
        self.proc = None

    def _make_certs(self):
        d = os.path.join(self.dir, "certs")
        os.makedirs(d)
        ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
        key, csr, cert = os.path.join(d, "server.key"), os.path.join(d, "server.csr"), os.path.join(d, "server.crt")
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        q = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
                        "-out", ca, "-days", "2", "-subj", "/CN=krill test CA"], **q)
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                        "-subj", "/CN=127.0.0.1"], **q)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                        "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext], **q)
        self.ca_cert = ca
        self.certs_dir = os.path.join(self.dir, "client-certs")
        os.makedirs(self.certs_dir)
        shutil.copy(ca, os.path.join(self.certs_dir, "ca.crt"))
        return cert, key

    def start(self, timeout=20.0):
        import ssl
        import base64
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        _OWNED.add(self.proc.pid)
        ctx = ssl.create_default_context(cafile=self.ca_cert) if self.tls else None
        headers = {}
        if self.auth:
            user, pw = sorted(self.auth.items())[0]
            headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " + open(self.log).read()[-2000:])
            try:
                req = urllib.request.Request("%s://%s/v2/" % (self.scheme, self.host), headers=headers)
                with urllib.request.urlopen(req, timeout=1, context=ctx) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(up, timeout, 0.02, "docker-registry on " + self.host)
        return self

    def push(self, archive, ref, fmt="oci-archive", timeout=300):
        """Copy a local archive to this registry as ref ("test/busybox:1").

        Returns the full reference (127.0.0.1:PORT/test/busybox:1)."""
        dest = "%s/%s" % (self.host, ref)
        creds = []
        if self.auth:
            user, pw = sorted(self.auth.items())[0]
            creds = ["--dest-creds", "%s:%s" % (user, pw)]
        r = subprocess.run([SKOPEO, "copy", "--quiet", "--all", "--dest-tls-verify=false"] + creds +
                           ["%s:%s" % (fmt, archive), "docker://" + dest],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("skopeo copy to %s failed: %s" % (dest, r.stderr.strip()))
        return dest

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
