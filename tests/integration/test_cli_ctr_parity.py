"""krill's CLI prints what Debian's ctr prints: the same command lines, ctr against one daemon and krill
against a twin started the same way (krilld, and Debian's containerd), give the same exit codes, stdout and
stderr (with "ctr:" read as "krill:")."""

import os
import re
import subprocess

import pytest

import daemons
from conftest import require_binary

TIME = re.compile(r'time="[^"]*" ')


def krill_cli(build):
    return require_binary(os.path.join(build, "src", "cli", "krill"), "krill CLI")


def normalize(text, daemon):
    """Per-daemon paths (plugin exports) are made comparable."""
    return TIME.sub("", text).replace(daemon.dir, "<DIR>")


def assert_same(ctr_daemon, krill_daemon, cli, args):
    c = subprocess.run([daemons.CTR, "--address", ctr_daemon.address] + args, capture_output=True, text=True,
                       timeout=60)
    k = subprocess.run([cli, "--address", krill_daemon.address] + args, capture_output=True, text=True,
                       timeout=60)
    want = (c.returncode, normalize(c.stdout, ctr_daemon),
            normalize(c.stderr, ctr_daemon).replace("ctr: ", "krill: "))
    got = (k.returncode, normalize(k.stdout, krill_daemon), normalize(k.stderr, krill_daemon))
    assert got == want, "%s: krill %r, ctr %r" % (" ".join(args), got, want)


@pytest.fixture
def twin_krilld(krilld, krill_build):
    d = daemons.KrillDaemon(krill_build)
    try:
        d.start(timeout=30, probe="version")
        yield d
    finally:
        d.close()


@pytest.fixture
def twin_containerd(containerd):
    d = daemons.PrivateContainerd(keep=False)
    try:
        d.start(timeout=60, probe="version")
        yield d
    finally:
        d.close()


SCENARIO = [
    ["namespaces", "ls"],
    ["namespaces", "create", "alpha", "team=x", "tier=gold"],
    ["namespaces", "create", "beta"],
    ["namespaces", "create", "alpha"],
    ["namespaces", "create", "Bad_Name!"],
    ["namespaces", "create"],
    ["ns", "ls"],
    ["namespace", "list", "-q"],
    ["namespaces", "label", "beta", "k=v", "w="],
    ["namespaces", "label"],
    ["namespaces", "ls"],
    ["namespaces", "rm", "nothere"],
    ["namespaces", "remove", "beta", "nothere"],
    ["namespaces", "ls", "-q"],
    ["plugins", "ls", "bad filter ==="],
    ["plugins", "ls", "type==io.containerd.nothing"],
]


def test_cli_matches_ctr_on_krilld(krilld, twin_krilld, krill_build):
    cli = krill_cli(krill_build)
    for args in SCENARIO + [["plugins", "ls"], ["plugins", "ls", "-q"], ["plugin", "list", "-d"],
                            ["plugins", "ls", "type==io.containerd.grpc.v1"], ["plugins", "ls", "id~=^name"],
                            ["plugins", "ls", "id==version", "id==lmdb"]]:
        assert_same(krilld, twin_krilld, cli, args)


def test_cli_matches_ctr_on_containerd(containerd, twin_containerd, krill_build):
    """krill's gRPC client against grpc-go: the real containerd."""
    cli = krill_cli(krill_build)
    for args in SCENARIO + [["plugins", "ls", "type==io.containerd.grpc.v1"], ["plugins", "ls", "-q"]]:
        assert_same(containerd, twin_containerd, cli, args)


def test_cli_version_server_section(krilld, krill_build):
    cli = krill_cli(krill_build)
    c = subprocess.run([daemons.CTR, "-a", krilld.address, "version"], capture_output=True, text=True,
                       timeout=30)
    k = subprocess.run([cli, "-a", krilld.address, "version"], capture_output=True, text=True, timeout=30)
    assert c.returncode == 0 and k.returncode == 0, (c.stderr, k.stderr)
    assert k.stdout.split("Server:", 1)[1] == c.stdout.split("Server:", 1)[1]
    client = k.stdout.split("Server:", 1)[0]
    assert client.startswith("Client:\n  Version:  ")
    # krill client and krilld come from the same build: no mismatch warning
    assert "WARNING" not in k.stderr


def test_cli_namespace_from_env_and_flag(krilld, krill_build):
    cli = krill_cli(krill_build)
    env = dict(os.environ, CONTAINERD_ADDRESS=krilld.address, CONTAINERD_NAMESPACE="envns")
    r = subprocess.run([cli, "namespaces", "create", "fromenv"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "fromenv" in krilld.ctr("namespaces", "ls", "-q").stdout.split()
    # ctr sends the namespace header on every call; the namespaces service ignores it, so an invalid one
    # still works there, as with containerd
    r = subprocess.run([cli, "-n", "bad!", "namespaces", "ls", "-q"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 0 and "fromenv" in r.stdout.split()


def test_cli_usage_errors(krill_build):
    cli = krill_cli(krill_build)
    r = subprocess.run([cli, "nosuchcommand"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 3 and "No help topic for 'nosuchcommand'" in r.stderr
    r = subprocess.run([cli, "namespaces", "bogus"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 3
    r = subprocess.run([cli, "namespaces", "ls", "--bogus"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "flag provided but not defined: -bogus" in r.stdout
    r = subprocess.run([cli, "--timeout", "xyz", "version"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and 'krill: invalid value "xyz" for flag -timeout: parse error' in r.stderr
    r = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "namespaces, namespace, ns" in r.stdout
    r = subprocess.run([cli, "namespaces", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "create, c" in r.stdout and "list, ls" in r.stdout


def test_cli_unreachable_daemon_fails_fast_with_timeout(krill_build, tmp_path):
    cli = krill_cli(krill_build)
    sock = str(tmp_path / "nobody.sock")
    r = subprocess.run([cli, "--connect-timeout", "500ms", "-a", sock, "namespaces", "ls"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.startswith('krill: failed to dial "%s"' % sock)
