"""bench/run.py's report logic (no daemons): n/a rows stay visible, ratios are krill/containerd."""

import importlib.util
import os
import subprocess

import pytest

RUN_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "run.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_run", RUN_PY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tools_bench_report_rows(bench, tmp_path):
    b = bench.Bench(str(tmp_path / "nobuild"), True, str(tmp_path), [])
    try:
        b.large_compressed, b.large_unpacked = 1, 1
        b.row("daemon", "start", "ms", [100.0, 120.0, 140.0], [20.0, 30.0, 40.0], "<= 0.30", 0.30)
        b.row("daemon", "stop", "ms", [10.0], [1.0], "<= 0.05", 0.05)
        b.row("run", "own client", "ms", [100.0], bench.NA("not implemented: krill CLI not built"),
              "<= 0.35", 0.35)
        b.row("shim", "rss", "MiB", [12.0], [0.5], "<= 0.8 MB", 0.76, absolute=True)
        b.row("image", "thr", "MiB/s", [10.0], [100.0], ">= 300 MB/s", 286.1, better="higher", absolute=True)
        md, data = b.report()
    finally:
        bench.daemons.remove_tree(b.tmp)
    lines = {l.split("|")[2].strip(): l for l in md.splitlines() if l.startswith("| ") and l.count("|") > 8}
    assert "| 0.25 | <= 0.30 | yes |" in lines["start"]
    assert "**120**" in lines["start"] and "(n=3)" in lines["start"]
    assert "| 0.10 | <= 0.05 | **no** |" in lines["stop"]
    assert "n/a (not implemented: krill CLI not built)" in lines["own client"]
    assert lines["own client"].rstrip().endswith("| n/a |")
    assert lines["rss"].rstrip().endswith("| yes |")
    assert lines["thr"].rstrip().endswith("| **no** |")
    assert data["rows"][2]["krill"] == {"na": "not implemented: krill CLI not built"}
    assert data["rows"][0]["krill"]["median"] == 30.0


def test_tools_bench_na_classification(bench):
    def cp(err):
        return subprocess.CompletedProcess([], 1, "", err)

    with pytest.raises(bench.NA, match="^not implemented"):
        bench.not_impl_or_fail("x", cp("ctr: rpc error: code = Unimplemented desc = unknown service"))
    with pytest.raises(bench.NA, match="^not implemented"):
        bench.not_impl_or_fail("x", cp("No help topic for 'run'"))
    with pytest.raises(bench.NA, match="^failed: x: ctr: boom"):
        bench.not_impl_or_fail("x", cp("ctr: boom"))
    with pytest.raises(RuntimeError):
        bench.check(cp("ctr: boom"), "x", "containerd")
