"""Shared pytest fixtures for krill's integration tests (run with /usr/bin/python3).

Fixtures
  krill_build        path of the build dir (env KRILL_BUILD, default /work/main/build)
  busybox_oci        session: path of the busybox OCI archive (tests/tools/mkimage.py, cached)
  busybox_docker     session: the same image as a docker `save` archive
  large_image        session: the ~50 MB / 4-layer test image (OCI, gzip)
  large_image_small  session: the same layer structure, a few MB
  image_archive      session: factory image_archive(kind, fmt=, compression=, size=, name=, platforms=)
  krilld             function: a running krilld on temp dirs (see KrillFixture)
  krilld_factory     function: factory for krillds with a config / extra args / not started
  containerd         function: Debian's containerd in a private mount namespace
  registry           session: Debian's docker-registry on 127.0.0.1, .push(archive, ref)
  registry_factory   function: more registries, with TLS (own CA: .ca_cert, .certs_dir) or Basic auth

Helpers (import from conftest or use the fixtures of the same name)
  require_binary(name_or_path, what=None)  skip "<what> not built/installed" when missing
  skip_unless_root()                       skip when not uid 0

Skips happen only when something needed is absent (a binary not built yet, a
Debian tool not installed, not root).  A daemon that is built but fails to
start is a test failure, never a skip.

Timeouts: pytest-timeout (Debian python3-pytest-timeout) when installed, set in
pytest.ini; otherwise an autouse SIGALRM fixture gives every test the same
limit (mark with @pytest.mark.timeout(N) to change it).
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.normpath(os.path.join(HERE, "..", "tools"))
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

import daemons  # noqa: E402
import mkimage  # noqa: E402

DEFAULT_TIMEOUT = 300


def build_dir():
    return os.path.abspath(os.environ.get("KRILL_BUILD", "/work/main/build"))


def require_binary(name, what=None):
    """Return the binary's path, or skip the test with a printed reason."""
    if os.path.sep in name:
        path = name if os.access(name, os.X_OK) and os.path.isfile(name) else None
    else:
        path = shutil.which(name) or next(
            (p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.access(p, os.X_OK)), None)
    if path is None:
        reason = "%s not %s" % (what or os.path.basename(name),
                                "built" if os.path.sep in name else "installed")
        print("SKIP: " + reason + " (" + name + ")")
        pytest.skip(reason)
    return path


def skip_unless_root():
    if os.geteuid() != 0:
        print("SKIP: needs root")
        pytest.skip("needs root")


# ---------------------------------------------------------------- hooks

def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    daemons.set_subreaper()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    node = request.node
    return any(getattr(node, "rep_" + w, None) is not None and getattr(node, "rep_" + w).failed
               for w in ("setup", "call"))


class _Timeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _alarm_timeout(request):
    """SIGALRM per-test limit, only when pytest-timeout is not installed."""
    if request.config.pluginmanager.hasplugin("timeout"):
        yield
        return
    m = request.node.get_closest_marker("timeout")
    secs = int(m.args[0]) if m and m.args else DEFAULT_TIMEOUT

    def fire(signum, frame):
        raise _Timeout("test exceeded %d s" % secs)

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(secs)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---------------------------------------------------------------- paths, images

@pytest.fixture(scope="session")
def krill_build():
    return build_dir()


@pytest.fixture(scope="session")
def image_archive(krill_build):
    """Factory: path of a cached image archive built by tests/tools/mkimage.py."""
    cache = os.path.join(krill_build, "test-images")
    if not os.path.exists(mkimage.BUSYBOX):
        pytest.skip("busybox-static not installed (%s)" % mkimage.BUSYBOX)

    def make(kind="busybox", fmt="oci", compression=None, size="large", name=None, platforms=None):
        return mkimage.cached(kind, name, fmt, compression, size, directory=cache, platforms=platforms)

    return make


@pytest.fixture(scope="session")
def busybox_oci(image_archive):
    return image_archive("busybox")


@pytest.fixture(scope="session")
def busybox_docker(image_archive):
    return image_archive("busybox", fmt="docker")


@pytest.fixture(scope="session")
def large_image(image_archive):
    return image_archive("large", size="large")


@pytest.fixture(scope="session")
def large_image_small(image_archive):
    return image_archive("large", size="small")


# ---------------------------------------------------------------- daemons

class KrillFixture:
    """The running krilld of one test.

    .address .root .state .log .pid .dir   paths and PID
    .ctr(*args, ns=None, timeout=120, input=None, check=False) -> CompletedProcess
        Debian's ctr against krilld (adds --fifo-dir for run/tasks start/exec)
    .krill(*args, timeout=120, input=None, check=False) -> CompletedProcess
        krill's own CLI against krilld
    .stop() -> seconds   .kill9()   .restart()   .memory() -> {rss,pss,uss} kB
    .log_text()   .nsenter(*argv) (in krilld's mount namespace when private_ns)

    The plain `krilld` fixture runs krilld in the host mount namespace (its
    mounts are visible to the test); krill's shim keeps its sockets under the
    temp dir.  A test that makes krilld start containerd-shim-runc-v2 (which
    writes /run/containerd/...) must use krilld_factory(private_ns=True).
    """

    def __init__(self, d, build):
        self._d = d
        self.build = build

    def __getattr__(self, name):
        return getattr(self._d, name)

    @property
    def pid(self):
        return self._d.pid

    def krill(self, *args, timeout=120, input=None, check=False):
        cli = require_binary(os.path.join(self.build, "src", "cli", "krill"), "krill CLI")
        return subprocess.run([cli, "--address", self.address] + list(args),
                              stdin=subprocess.DEVNULL if input is None else None, input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, check=check)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


@pytest.fixture
def krilld(request, krill_build):
    """krilld --root T/root --state T/state --address T/krill.sock --log-level debug."""
    skip_unless_root()
    binary = require_binary(os.path.join(krill_build, "src", "daemon", "krilld"), "krilld")
    d = daemons.KrillDaemon(krill_build)
    assert d.binary == binary
    fx = KrillFixture(d, krill_build)
    try:
        d.start(timeout=30, probe="any")
        yield fx
    finally:
        try:
            d.close()
        finally:
            if _failed(request):
                print("---- krilld log (%s) ----" % d.log)
                print(d.log_tail(300))


@pytest.fixture
def krilld_factory(request, krill_build):
    """Factory for more krillds, or one with options:

        k = krilld_factory(config='version = 2\n...', extra_args=["--foo"], start=True)

    config (TOML text) is written to T/config.toml and passed as --config.
    private_ns=True runs krilld in its own mount namespace with a tmpfs on /run
    (needed when krilld drives containerd-shim-runc-v2, which hard-codes
    /run/containerd; use .nsenter(...) to look at its mounts).
    Returns a KrillFixture; all are stopped and cleaned up after the test."""
    skip_unless_root()
    require_binary(os.path.join(krill_build, "src", "daemon", "krilld"), "krilld")
    made = []

    def make(config=None, extra_args=(), start=True, log_level="debug", probe="any", private_ns=False):
        d = daemons.KrillDaemon(krill_build, log_level=log_level, private_ns=private_ns)
        made.append(d)
        args = list(extra_args)
        if config is not None:
            path = os.path.join(d.dir, "config.toml")
            with open(path, "w") as f:
                f.write(config)
            args = ["--config", path] + args
        d.extra_args = args
        if start:
            d.start(timeout=30, probe=probe)
        return KrillFixture(d, krill_build)

    try:
        yield make
    finally:
        for d in made:
            try:
                d.close()
            finally:
                if _failed(request):
                    print("---- krilld log (%s) ----" % d.log)
                    print(d.log_tail(300))


@pytest.fixture
def containerd(request):
    """Debian's containerd (CRI off) on temp dirs in a private mount namespace."""
    skip_unless_root()
    require_binary(daemons.CONTAINERD)
    require_binary(daemons.UNSHARE)
    d = daemons.PrivateContainerd(keep=False)
    try:
        d.start(timeout=60, probe="version")
        yield d
    finally:
        try:
            d.close()
        finally:
            if _failed(request):
                print("---- containerd log (%s) ----" % d.log)
                print(d.log_tail(200))


@pytest.fixture
def registry_factory():
    """Factory for more registries: registry_factory(tls=True, htpasswd={"u": "p"}).

    Skips when a tool it needs is missing (htpasswd for Basic auth)."""
    require_binary(daemons.REGISTRY)
    require_binary(daemons.SKOPEO)
    made = []

    def make(tls=False, htpasswd=None):
        if tls:
            require_binary("openssl")
        if htpasswd:
            require_binary("htpasswd", "htpasswd (apache2-utils)")
        r = daemons.Registry(tls=tls, htpasswd=htpasswd)
        made.append(r)
        return r.start()

    try:
        yield make
    finally:
        for r in made:
            r.close()


@pytest.fixture(scope="session")
def registry():
    """docker-registry on 127.0.0.1:<port>; .host, .push(archive, "test/busybox:1")."""
    require_binary(daemons.REGISTRY)
    require_binary(daemons.SKOPEO)
    r = daemons.Registry()
    try:
        r.start()
        yield r
    finally:
        r.close()
