"""krilld's configuration: `krilld config default` is containerd's version-2 TOML, krilld accepts it back
with --config, flags override the file, unknown keys are reported, plugins can be disabled or required."""

import os
import subprocess
import tomllib

import pytest

import daemons
from conftest import require_binary, skip_unless_root


def krilld_binary(build):
    return require_binary(os.path.join(build, "src", "daemon", "krilld"), "krilld")


def default_config(build):
    r = subprocess.run([krilld_binary(build), "config", "default"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def tmpd():
    d = daemons.tempfile.mkdtemp(prefix="krill-config-")
    yield d
    daemons.remove_tree(d)


class ConfigDaemon(daemons.KrillDaemon):
    """KrillDaemon whose --log-level flag can be left out, so the file's [debug] level applies."""

    def __init__(self, build, config, extra=(), log_level="debug"):
        super().__init__(build, log_level=log_level)
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(config)
        self.extra = list(extra)

    def argv(self):
        argv = [self.binary, "--config", self.config, "--root", self.root, "--state", self.state,
                "--address", self.address]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        return argv + self.extra


def test_daemon_config_default_is_containerd_v2_toml(krill_build):
    cfg = tomllib.loads(default_config(krill_build))
    assert cfg["version"] == 2
    assert cfg["root"] == "/var/lib/krill"
    assert cfg["state"] == "/run/krill"
    assert cfg["grpc"]["address"] == "/run/krill/krill.sock"
    assert cfg["grpc"]["max_recv_message_size"] == 16 << 20
    assert "io.containerd.grpc.v1.cri" in cfg["plugins"]
    assert "io.containerd.gc.v1.scheduler" in cfg["plugins"]


def test_daemon_accepts_its_default_config_back(krill_build):
    skip_unless_root()
    d = ConfigDaemon(krill_build, default_config(krill_build))
    try:
        d.start(probe="version")
        assert d.ctr("namespaces", "create", "fromcfg").returncode == 0
        d.stop()
        log = open(d.log).read()
        assert "unknown key" not in log
        assert d.proc.returncode == 0
        # flags won over the file's /var/lib/krill and /run/krill
        assert os.path.isdir(os.path.join(d.root, "io.containerd.metadata.v1.lmdb"))
    finally:
        d.close()


def test_daemon_config_values_apply_and_flags_override(krill_build):
    skip_unless_root()
    d = ConfigDaemon(krill_build, "", log_level=None)
    # the file names root, state and the log level; the flags name root, state and address (ConfigDaemon)
    with open(d.config, "w") as f:
        f.write('version = 2\nroot = "/nonexistent/should/be/overridden"\n[debug]\n  level = "debug"\n')
    try:
        d.start(probe="version")
        assert d.ctr("namespaces", "ls").returncode == 0
        d.stop()
        log = open(d.log).read()
        assert "level=debug" in log and "Namespaces/List" in log  # level from the file
        assert not os.path.exists("/nonexistent/should/be/overridden")
    finally:
        d.close()


def test_daemon_config_dump_shows_effective_values(krill_build, tmpd):
    cfgpath = os.path.join(tmpd, "c.toml")
    with open(cfgpath, "w") as f:
        f.write('version = 2\noom_score = 0\n[grpc]\n  max_recv_message_size = 1048576\n')
    r = subprocess.run([krilld_binary(krill_build), "--config", cfgpath, "--root", tmpd + "/r", "--state",
                        tmpd + "/s", "config", "dump"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    cfg = tomllib.loads(r.stdout)
    assert cfg["root"] == tmpd + "/r" and cfg["state"] == tmpd + "/s"
    assert cfg["grpc"]["address"] == tmpd + "/s/krill.sock"  # derived from --state when nothing names it
    assert cfg["grpc"]["max_recv_message_size"] == 1048576
    assert not os.path.exists(tmpd + "/r")  # dump does not start anything


def test_daemon_unknown_keys_are_reported(krill_build):
    skip_unless_root()
    d = ConfigDaemon(krill_build, 'version = 2\nbogus_top = 1\n[grpc]\n  not_a_key = "x"\n')
    try:
        d.start(probe="version")
        d.stop()
        log = open(d.log).read()
        assert 'msg="unknown key in configuration, ignored" key=bogus_top' in log
        assert "key=grpc.not_a_key" in log
    finally:
        d.close()


@pytest.mark.parametrize("text,message", [
    ("version = 2\nroot = \n", "failed to load config"),
    ("version = 3\n", "unsupported config version 3"),
    ('version = 2\n[debug]\n  level = "loud"\n', "not a valid logrus Level"),
])
def test_daemon_bad_config_refuses_to_start(krill_build, tmpd, text, message):
    cfgpath = os.path.join(tmpd, "c.toml")
    with open(cfgpath, "w") as f:
        f.write(text)
    r = subprocess.run([krilld_binary(krill_build), "--config", cfgpath, "--root", tmpd + "/r", "--state",
                        tmpd + "/s"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert message in r.stderr
    assert not os.path.exists(tmpd + "/s/krill.sock")


def test_daemon_missing_config_file_is_an_error(krill_build, tmpd):
    r = subprocess.run([krilld_binary(krill_build), "--config", tmpd + "/nope.toml", "--root", tmpd + "/r",
                        "--state", tmpd + "/s"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "failed to load config" in r.stderr


def test_daemon_disabled_plugins_are_left_out(krill_build):
    skip_unless_root()
    d = ConfigDaemon(krill_build, 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.healthcheck", '
                                  '"io.containerd.snapshotter.v1.native"]\n')
    try:
        d.start(probe="version")
        ids = d.ctr("plugins", "ls").stdout
        assert "healthcheck" not in ids
        assert "native" not in ids
        assert "overlayfs" in ids or "lmdb" in ids
    finally:
        d.close()


def test_daemon_required_plugin_missing_refuses_to_start(krill_build):
    skip_unless_root()
    d = ConfigDaemon(krill_build, 'version = 2\nrequired_plugins = ["io.containerd.grpc.v1.nosuchthing"]\n')
    try:
        with pytest.raises(RuntimeError) as e:
            d.start(timeout=20, probe="version")
        assert "required plugin io.containerd.grpc.v1.nosuchthing not included" in str(e.value)
        assert not os.path.exists(d.address)
    finally:
        d.close()
