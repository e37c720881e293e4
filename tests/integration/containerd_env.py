"""A private Debian containerd that knows krill's shim (runtime io.containerd.krill.v2).

Reusable by other integration tests and bench/:

    from containerd_env import ContainerdEnv
    with ContainerdEnv(build_dir) as env:          # starts containerd, waits for it
        env.import_image(archive)                    # ctr images import
        r = env.ctr("run", "--rm", "--runtime", env.RUNTIME, env.IMAGE, "t1", "echo", "hi")
        env.kill9(); env.start()                    # restart while containers run

It builds on tests/tools/daemons.py's PrivateContainerd: containerd runs in a
private mount namespace (tmpfs on /run) with root, state, socket and ctr FIFO
dir under one temp dir.  The shim's socket lands in <tempdir>/s/ and runc's
state in <tempdir>/runc/<ns>, because krill's shim derives both from the
daemon's -address.  containerd finds containerd-shim-krill-v2 through PATH:
the build's src/shim directory is put first.  ctr itself runs outside the
namespace; everything it needs (socket, FIFOs) lives under the temp dir.
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, "..", "tools"))
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

import daemons  # noqa: E402

SHIM_NAME = "containerd-shim-krill-v2"


def build_dir():
    return os.path.abspath(os.environ.get("KRILL_BUILD", "/work/main/build"))


class ContainerdEnv(daemons.PrivateContainerd):
    RUNTIME = "io.containerd.krill.v2"
    IMAGE = "docker.io/library/busybox:test"

    def __init__(self, build=None, log_level="debug", **kw):
        self.build = os.path.abspath(build or build_dir())
        self.shim_dir = os.path.join(self.build, "src", "shim")
        self.shim = os.path.join(self.shim_dir, SHIM_NAME)
        super().__init__(log_level=log_level, **kw)

    def argv(self):
        path = self.shim_dir + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        return ["/usr/bin/env", "PATH=" + path] + super().argv()

    def __enter__(self):
        self.start(timeout=60, probe="version")
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ------------------------------------------------------------ helpers

    def import_image(self, archive, ns=None):
        r = self.ctr("images", "import", "--all-platforms", archive, ns=ns, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("ctr images import failed: " + r.stderr)
        return r

    def run(self, cid, *cmd, ns=None, rm=True, extra=(), timeout=120, input=None):
        """ctr run [--rm] --runtime io.containerd.krill.v2 [extra] IMAGE cid cmd..."""
        args = ["run"] + (["--rm"] if rm else []) + ["--runtime", self.RUNTIME] + list(extra)
        return self.ctr(*(args + [self.IMAGE, cid] + list(cmd)), ns=ns, timeout=timeout, input=input)

    def nsenter(self, *argv, timeout=60):
        """Runs argv inside containerd's mount namespace (sees its private /run)."""
        return subprocess.run(["/usr/bin/nsenter", "-m", "-t", str(self.pid)] + list(argv),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)

    def shim_pids(self):
        return [p for p in daemons.pids_tied_to(self.dir, (self.pid,) if self.running() else ())
                if os.path.basename((daemons.proc_cmdline(p) or [""])[0]).startswith("containerd-shim")]

    def krill_shim_pids(self):
        return [p for p in self.shim_pids()
                if os.path.basename((daemons.proc_cmdline(p) or [""])[0]) == SHIM_NAME]
