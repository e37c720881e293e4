#!/usr/bin/python3
"""krill against Debian's containerd 1.6, side by side (issue 8).

  /usr/bin/python3 bench/run.py --build BUILD [--quick] [--only a,b] [--out DIR]

BENCH_QUICK=1 (or --quick) runs fewer repetitions.  The whole run happens in a
private mount namespace with a tmpfs on /run, so neither daemon, nor ctr's
FIFOs, nor containerd's runc shim (which hard-codes /run/containerd) touch the
host's /run; every daemon gets its own temp root, state and socket.  Both
daemons use runc and the same locally built images (tests/tools/mkimage.py).

Results: a Markdown table on stdout and in OUT/latest.md, raw samples in
OUT/latest.json.  A krill figure whose feature is missing is reported as
"n/a (not implemented: ...)"; containerd's figure is still measured.  See
bench/README.md for what each scenario does.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "tools"))

import daemons  # noqa: E402
import mkimage  # noqa: E402

NS = "bench"
KRILL_RUNTIME = "io.containerd.krill.v2"
BUSYBOX_REF = "docker.io/library/busybox:test"
LARGE_REF = "docker.io/library/krill-large:test"
TIME_BUDGET = 17 * 60  # stop repeating scenarios after this (make bench must end < 20 min)


class NA(Exception):
    """A krill figure that cannot be measured; str() is the reason shown."""


def not_impl_or_fail(what, r):
    """Raise NA for a failed command, telling missing features from failures."""
    err = (r.stderr or r.stdout or "").strip().splitlines()
    msg = err[-1] if err else "exit status %d" % r.returncode
    msg = msg[:160]
    low = msg.lower()
    if any(k in low for k in ("unimplemented", "not implemented", "unknown service", "unknown method",
                              "no such file or directory: '/", "not built", "unknown command",
                              "no help topic", "command not found")):
        raise NA("not implemented: %s: %s" % (what, msg))
    raise NA("failed: %s: %s" % (what, msg))


def check(r, what, kind):
    if r.returncode != 0:
        if kind == "krill":
            not_impl_or_fail(what, r)
        raise RuntimeError("containerd: %s failed: %s" % (what, (r.stderr or r.stdout).strip()[-400:]))
    return r


def stats(samples):
    if not samples:
        return None
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples),
            "n": len(samples)}


class Bench:
    def __init__(self, build, quick, out, only):
        self.build = os.path.abspath(build)
        self.quick = quick
        self.out = out
        self.only = only
        self.t0 = time.monotonic()
        self.rows = []
        self.notes = []
        self.open = []
        self.tmp = tempfile.mkdtemp(prefix="krill-bench-")
        self.krilld = os.path.join(self.build, "src", "daemon", "krilld")
        self.krill_cli = os.path.join(self.build, "src", "cli", "krill")
        self.krill_shim = os.path.join(self.build, "src", "shim", "containerd-shim-krill-v2")
        self.reps = {
            "start": 3 if quick else 10,
            "run": 12 if quick else 100,
            "run_extra": 12 if quick else 30,  # krill CLI and krill-shim-under-containerd cycles
            "hundred": 1,
            "hundred_n": 100,
            "import": 2 if quick else 3,
            "pull": 2 if quick else 3,
            "floor": 10 if quick else 30,
            "thousand": 0 if quick else 1000,
            "leak": 20 if quick else 100,
        }

    # ------------------------------------------------------------ plumbing

    def over_budget(self):
        return time.monotonic() - self.t0 > TIME_BUDGET

    def reps_for(self, key):
        return self.reps[key]

    def row(self, group, figure, unit, ctrd, krill, target=None, goal=None, better="lower",
            absolute=False):
        """One table row.  ctrd/krill: list of samples, or an NA, or None.

        goal: the ratio (krill/containerd median) to reach, or for absolute rows
        a limit on krill's median."""
        self.rows.append({"group": group, "figure": figure, "unit": unit,
                          "containerd": ctrd, "krill": krill, "target": target, "goal": goal,
                          "better": better, "absolute": absolute})

    def make(self, kind, log_level="info"):
        if kind == "containerd":
            # daemon dirs directly in /tmp: shim socket paths derive from the
            # daemon's address and must fit in sun_path (108 bytes)
            d = daemons.PrivateContainerd(cri=True, log_level=log_level, private_ns=False)
            # containerd finds containerd-shim-krill-v2 through PATH (extra rows)
            d.env = dict(os.environ, PATH=os.path.dirname(self.krill_shim) + ":" + os.environ.get("PATH", ""))
        else:
            if not os.access(self.krilld, os.X_OK):
                raise NA("not implemented: krilld not built")
            d = daemons.KrillDaemon(self.build, log_level=log_level)
            d.env = dict(os.environ, PATH=os.path.dirname(self.krill_shim) + ":" + os.environ.get("PATH", ""))
        self.open.append(d)
        return d

    def close(self, d):
        try:
            d.close()
        finally:
            if d in self.open:
                self.open.remove(d)

    def start(self, kind):
        """A started daemon and its start time; NA for krill when it cannot answer."""
        d = self.make(kind)
        try:
            t = d.start(timeout=60, probe="version")
        except (TimeoutError, RuntimeError) as e:
            log = d.log_tail(5)
            self.close(d)
            if kind == "krill":
                msg = str(e).splitlines()[0][:200]
                if "never answered" in msg:
                    raise NA("not implemented: ctr version answering (%s)" % msg)
                raise NA("failed: daemon start: %s %s" % (msg, log[-200:]))
            raise
        return d, t

    def runtime_args(self, kind):
        """ctr run options selecting the runtime: runc for containerd; krill's
        shim (which drives runc) for krilld when it is built."""
        if kind == "krill" and self.have_shim():
            return ["--runtime", KRILL_RUNTIME]
        return []

    def have_shim(self):
        return os.access(self.krill_shim, os.X_OK)

    def import_busybox(self, d, kind):
        check(d.ctr("images", "import", self.busybox, ns=NS, timeout=300), "images import", kind)

    def both(self, fn):
        """Run fn(kind) for containerd and krill; krill's NA becomes the result."""
        out = {}
        for kind in ("containerd", "krill"):
            try:
                out[kind] = fn(kind)
            except NA as e:
                out[kind] = e
        return out

    # ------------------------------------------------------------ scenarios

    def sc_start(self):
        n = self.reps_for("start")
        res = {k: {"start": [], "sock": [], "stop": [], "rss": [], "pss": []} for k in ("containerd", "krill")}
        na = {}
        for i in range(n):
            for kind in ("containerd", "krill"):
                if kind in na or (i and self.over_budget()):
                    continue
                try:
                    d, t = self.start(kind)
                except NA as e:
                    na[kind] = e
                    continue
                try:
                    time.sleep(1.0)  # idle: let start-up work settle
                    m = d.memory()
                    t_stop = d.stop()
                    res[kind]["start"].append(t * 1000)
                    res[kind]["sock"].append(d.socket_ready * 1000)
                    res[kind]["stop"].append(t_stop * 1000)
                    res[kind]["rss"].append(m["rss"] / 1024)
                    res[kind]["pss"].append(m["pss"] / 1024)
                finally:
                    self.close(d)

        def g(kind, key):
            return na.get(kind) or res[kind][key]

        self.row("daemon", "start to first answer (`ctr version`)", "ms", g("containerd", "start"),
                 g("krill", "start"), "<= 0.30", 0.30)
        self.row("daemon", "start to socket accepting connections (informative)", "ms",
                 g("containerd", "sock"), g("krill", "sock"), "informative", None)
        ctr_cost = []
        for _ in range(5):
            t = time.monotonic()
            subprocess.run([daemons.CTR, "--version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ctr_cost.append((time.monotonic() - t) * 1000)
        self.row("daemon", "reference: `ctr --version` (client start-up alone, no daemon)", "ms",
                 ctr_cost, None, "reference", None)
        self.row("daemon", "stop (SIGTERM until gone, idle)", "ms", g("containerd", "stop"),
                 g("krill", "stop"), "<= 0.05", 0.05)
        self.row("daemon", "idle RSS after start", "MiB", g("containerd", "rss"), g("krill", "rss"),
                 "<= 0.10", 0.10)
        self.row("daemon", "idle PSS after start", "MiB", g("containerd", "pss"), g("krill", "pss"),
                 "<= 0.10", 0.10)

    def krill(self, d, *args, timeout=120):
        if not os.access(self.krill_cli, os.X_OK):
            raise NA("not implemented: krill CLI not built")
        return subprocess.run([self.krill_cli, "--address", d.address] + list(args),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=timeout)

    def sc_run(self):
        """run/rm cycles, both daemons up at once and measured alternately so
        that load from elsewhere on the machine hits both alike."""
        n = self.reps_for("run")
        n_extra = self.reps_for("run_extra")
        dc, _ = self.start("containerd")
        dk = None
        na = {}
        try:
            self.import_busybox(dc, "containerd")
            try:
                dk, _ = self.start("krill")
                self.import_busybox(dk, "krill")
            except NA as e:
                na["krill"] = na["krill_own"] = e
            if "krill_own" not in na and not os.access(self.krill_cli, os.X_OK):
                na["krill_own"] = NA("not implemented: krill CLI not built")
            if not self.have_shim():
                na["ctrd_krillshim"] = NA("not implemented: containerd-shim-krill-v2 not built")
            time.sleep(0.5)
            mem0 = {"containerd": dc.memory(), "krill": dk.memory() if dk and "krill" not in na else None}
            lat = {"containerd": [], "krill": [], "krill_own": [], "ctrd_krillshim": []}
            cycles = {"containerd": 0, "krill": 0}
            for i in range(n):
                for kind in ("containerd", "krill", "krill_own", "ctrd_krillshim"):
                    if kind in na or (kind in ("krill_own", "ctrd_krillshim") and i >= n_extra):
                        continue
                    d = dc if kind in ("containerd", "ctrd_krillshim") else dk
                    cid = "run-%s-%d" % (kind.replace("_", "-"), i)
                    t = time.monotonic()
                    if kind == "krill_own":
                        # same private FIFO dir as ctr gets (daemons.add_fifo_dir)
                        r = self.krill(d, "--namespace", NS, "run", "--fifo-dir", d.fifo_dir, "--rm",
                                       BUSYBOX_REF, cid, "/bin/true")
                    else:
                        rt = ["--runtime", KRILL_RUNTIME] if kind == "ctrd_krillshim" else self.runtime_args(kind)
                        r = d.ctr("run", "--rm", *rt, BUSYBOX_REF, cid, "/bin/true", ns=NS, timeout=120)
                    dt = time.monotonic() - t
                    try:
                        check(r, "krill run --rm" if kind == "krill_own" else "ctr run --rm",
                              "containerd" if kind == "containerd" else "krill")
                    except NA as e:
                        na[kind] = e
                        continue
                    lat[kind].append(dt * 1000)
                    cycles["containerd" if kind in ("containerd", "ctrd_krillshim") else "krill"] += 1
                if self.over_budget() and i >= 5:
                    self.notes.append("run cycles cut to %d by the time budget" % (i + 1))
                    break
            time.sleep(0.5)
            mem1 = {"containerd": dc.memory(), "krill": dk.memory() if dk and dk.running() else None}
        finally:
            self.close(dc)
            if dk is not None:
                self.close(dk)

        def g(kind):
            return na.get(kind) or lat[kind]

        def mem(kind, key, growth=False):
            if kind == "krill" and (mem1["krill"] is None or mem0["krill"] is None or not cycles["krill"]):
                return na.get("krill") or NA("failed: krilld gone after the cycles")
            v = mem1[kind][key] - (mem0[kind][key] if growth else 0)
            return [v / 1024]

        self.row("run", "`ctr run --rm IMG id /bin/true` (same client, runc)", "ms", g("containerd"),
                 g("krill"), "<= 0.50", 0.50)
        self.row("run", "`krill run --rm` vs `ctr run --rm` on containerd", "ms", g("containerd"),
                 g("krill_own"), "<= 0.35", 0.35)
        self.row("run", "`ctr run --rm` on containerd: krill's shim vs runc's shim (runtime %s)" % KRILL_RUNTIME,
                 "ms", g("containerd"), g("ctrd_krillshim"), "informative", None)
        label = "containerd %d, krilld %d" % (cycles["containerd"], cycles["krill"])
        self.row("daemon", "RSS after run/rm cycles (%s)" % label, "MiB", mem("containerd", "rss"),
                 mem("krill", "rss"), "<= 0.10", 0.10)
        self.row("daemon", "PSS after run/rm cycles (%s)" % label, "MiB", mem("containerd", "pss"),
                 mem("krill", "pss"), "<= 0.10", 0.10)
        self.row("daemon", "RSS growth over the run/rm cycles (leak check)", "MiB",
                 mem("containerd", "rss", True), mem("krill", "rss", True), "no growth (krill < 1 MiB)",
                 1.0, absolute=True)
        self.run_lat = {"containerd": lat["containerd"], "krill_own": g("krill_own")}

    def _shim_of(self, marker):
        """PID of the shim whose child runs `sleep <marker>`."""
        def find():
            for pid in daemons.all_pids():
                if daemons.proc_cmdline(pid)[-2:] == ["sleep", marker]:
                    pp = daemons.ppid_map().get(pid)
                    return pp
            return None
        return daemons.wait_until(find, 10, 0.01, "container sleep " + marker)

    def sc_shim(self):
        def one(kind, runtime_args):
            d, _ = self.start(kind)
            try:
                self.import_busybox(d, kind)
                marker = "36%05d" % (os.getpid() % 100000)
                check(d.ctr("run", "-d", *runtime_args, BUSYBOX_REF, "shim-1", "sleep", marker,
                            ns=NS), "ctr run -d", kind)
                shim = self._shim_of(marker)
                time.sleep(1.0)
                m = daemons.smaps_rollup(shim)
                exe = os.path.basename(daemons.proc_cmdline(shim)[0]) if daemons.proc_cmdline(shim) else "?"
                return {"rss": m["rss"] / 1024, "uss": m["uss"] / 1024, "pss": m["pss"] / 1024, "exe": exe}
            finally:
                self.close(d)

        c = one("containerd", [])
        try:
            k = one("krill", self.runtime_args("krill"))
        except NA as e:
            k = e
        if self.have_shim():
            try:
                ks = self._shim_under_containerd(one)
            except NA as e:
                ks = e
        else:
            ks = NA("not implemented: containerd-shim-krill-v2 not built")

        def f(x, key):
            return x if isinstance(x, NA) else [x[key]]

        if not isinstance(k, NA):
            self.notes.append("shim measured under krilld: %s" % k["exe"])
        rss_goal, uss_goal = 0.8 * 1000 * 1000 / 2**20, 0.3 * 1000 * 1000 / 2**20
        self.row("shim", "shim RSS, one idle container (under its own daemon)", "MiB", f(c, "rss"),
                 f(k, "rss"), "<= 0.8 MB", rss_goal, absolute=True)
        self.row("shim", "shim USS (private), one idle container (under its own daemon)", "MiB",
                 f(c, "uss"), f(k, "uss"), "<= 0.3 MB", uss_goal, absolute=True)
        self.row("shim", "shim RSS under containerd: runc shim vs containerd-shim-krill-v2", "MiB",
                 f(c, "rss"), f(ks, "rss"), "<= 0.8 MB", rss_goal, absolute=True)
        self.row("shim", "shim USS under containerd: runc shim vs containerd-shim-krill-v2", "MiB",
                 f(c, "uss"), f(ks, "uss"), "<= 0.3 MB", uss_goal, absolute=True)

    def _shim_under_containerd(self, one):
        try:
            return one("containerd", ["--runtime", KRILL_RUNTIME])
        except RuntimeError as e:
            raise NA("failed: krill shim under containerd: %s" % " ".join(str(e).split())[-200:])

    def _many(self, kind, count, measure_cpu=False):
        d, _ = self.start(kind)
        try:
            self.import_busybox(d, kind)
            ids = ["many-%d" % i for i in range(count)]
            t = time.monotonic()
            for i, cid in enumerate(ids):
                # stop starting when the teardown (about as long as the
                # starts so far) would end past the budget
                now = time.monotonic()
                if i and (now - self.t0) + (now - t) > TIME_BUDGET + 120:
                    ids = ids[:i]
                    self.notes.append("%s: stopped after %d containers (time budget)" % (kind, i))
                    break
                check(d.ctr("run", "-d", *self.runtime_args(kind), BUSYBOX_REF, cid, "sleep", "3600",
                            ns=NS), "ctr run -d (%d)" % i, kind)
            t_start = time.monotonic() - t
            time.sleep(1.0)
            shims = self._shims_of(d)
            pss = (d.memory() or {"pss": 0})["pss"]
            pss += sum((daemons.smaps_rollup(p) or {"pss": 0})["pss"] for p in shims)
            cpu = None
            if measure_cpu:
                c0, w0 = daemons.proc_cpu_ticks(d.pid), time.monotonic()
                time.sleep(5.0)
                c1, w1 = daemons.proc_cpu_ticks(d.pid), time.monotonic()
                cpu = (c1 - c0) / os.sysconf("SC_CLK_TCK") / (w1 - w0) * 100
            t = time.monotonic()
            for cid in ids:
                check(d.ctr("tasks", "rm", "-f", cid, ns=NS), "ctr tasks rm -f", kind)
                check(d.ctr("containers", "rm", cid, ns=NS), "ctr containers rm", kind)
            t_down = time.monotonic() - t
            return {"start": t_start, "pss": pss / 1024, "down": t_down, "shims": len(shims), "cpu": cpu}
        finally:
            self.close(d)

    def _shims_of(self, d):
        """Shim processes of daemon d: the parents of its containers' processes
        and every process whose command line names d's temp dir."""
        tied = set(daemons.pids_tied_to(d.dir, (d.pid,)))
        return [p for p in tied if "shim" in os.path.basename((daemons.proc_cmdline(p) or [""])[0])]

    def sc_hundred(self):
        count = self.reps["hundred_n"]
        res = {"containerd": [], "krill": []}
        na = {}
        for i in range(self.reps_for("hundred")):
            if i and self.over_budget():
                break
            for kind in ("containerd", "krill"):
                if kind in na:
                    continue
                try:
                    res[kind].append(self._many(kind, count))
                except NA as e:
                    na[kind] = e

        def g(kind, key):
            return na.get(kind) or [x[key] for x in res[kind]]

        if res["krill"]:
            self.krill_per_container = max((x["start"] + x["down"]) / count for x in res["krill"])
        self.row("scale", "%d detached `sleep` containers: total start time" % count, "s",
                 g("containerd", "start"), g("krill", "start"), "<= 0.50", 0.50)
        self.row("scale", "%d containers: total PSS of daemon + shims" % count, "MiB",
                 g("containerd", "pss"), g("krill", "pss"), "<= 0.10", 0.10)
        self.row("scale", "%d containers: teardown (`tasks rm -f` + `containers rm`)" % count, "s",
                 g("containerd", "down"), g("krill", "down"), "<= 0.30", 0.30)

    def sc_thousand(self):
        n = self.reps["thousand"]
        fig = "krill only: 1000 detached containers"
        if n == 0:
            self.row("krill", fig, "", None, NA("not run in BENCH_QUICK mode"), "report", None)
            return
        if self.over_budget():
            self.row("krill", fig, "", None, NA("not run: time budget spent"), "report", None)
            return
        per = getattr(self, "krill_per_container", None)
        left = TIME_BUDGET - (time.monotonic() - self.t0)
        if per is not None and per * n > left:
            self.row("krill", fig, "", None, NA("not run: estimated %.0f s (from the 100-container run) "
                                                "exceeds the %.0f s left" % (per * n, left)), "report", None)
            return
        mem = _meminfo_available_mb()
        if mem < 4096:
            self.row("krill", fig, "", None, NA("not run: only %d MiB available" % mem), "report", None)
            return
        try:
            x = self._many("krill", n, measure_cpu=True)
        except NA as e:
            self.row("krill", fig + ": time per container", "ms", None, e, "report", None)
            return
        self.row("krill", "1000 containers: time per container", "ms", None, [x["start"] / n * 1000],
                 "report", None)
        self.row("krill", "1000 containers: total PSS daemon + shims", "MiB", None, [x["pss"]], "report", None)
        self.row("krill", "1000 containers: daemon CPU while idle", "%", None, [x["cpu"]], "report", None)

    def sc_leak(self):
        """krill only: daemon RSS after create/delete cycles (after a warm-up)."""
        n = self.reps["leak"]
        warm = 10
        try:
            d, _ = self.start("krill")
        except NA as e:
            self.row("krill", "daemon RSS growth over container create/delete cycles (leak check)", "MiB",
                     None, e, "no growth (< 1 MiB)", 1.0, absolute=True)
            return
        try:
            try:
                self.import_busybox(d, "krill")
                m0 = None
                for i in range(warm + n):
                    if i == warm:
                        time.sleep(0.5)
                        m0 = d.memory()
                    cid = "leak-%d" % i
                    check(d.ctr("containers", "create", BUSYBOX_REF, cid, "/bin/true", ns=NS),
                          "ctr containers create", "krill")
                    check(d.ctr("containers", "delete", cid, ns=NS), "ctr containers delete", "krill")
                time.sleep(0.5)
                m1 = d.memory()
                res = [(m1["rss"] - m0["rss"]) / 1024]
                after = [m1["rss"] / 1024]
            except NA as e:
                res = after = e
        finally:
            self.close(d)
        self.row("krill", "daemon RSS after %d container create/delete cycles" % n, "MiB", None, after,
                 "report", None)
        self.row("krill", "daemon RSS growth over those cycles (after %d warm-up; leak check)" % warm, "MiB",
                 None, res, "no growth (< 1 MiB)", 1.0, absolute=True)

    def _import(self, kind, no_unpack):
        d, _ = self.start(kind)
        try:
            args = ["images", "import"] + (["--no-unpack"] if no_unpack else []) + [self.large]
            t = time.monotonic()
            check(d.ctr(*args, ns=NS, timeout=600), "images import" + (" --no-unpack" if no_unpack else ""),
                  kind)
            return time.monotonic() - t
        finally:
            self.close(d)

    def sc_import(self):
        for no_unpack, target, goal in ((False, "<= 0.40", 0.40), (True, "<= 0.50", 0.50)):
            res = {"containerd": [], "krill": []}
            na = {}
            for i in range(self.reps_for("import")):
                if i and self.over_budget():
                    break
                for kind in ("containerd", "krill"):
                    if kind in na:
                        continue
                    try:
                        res[kind].append(self._import(kind, no_unpack))
                    except NA as e:
                        na[kind] = e
            self.row("image", "`images import` large image, cold" + (", --no-unpack" if no_unpack else ""),
                     "s", na.get("containerd") or res["containerd"], na.get("krill") or res["krill"],
                     target, goal)

    def sc_pull(self):
        reg = daemons.Registry(base=self.tmp)
        self.open.append(reg)
        try:
            reg.start()
            ref = reg.push(self.large, "test/large:1")
            res = {"containerd": [], "krill": [], "krill_own": []}
            na = {}
            for i in range(self.reps_for("pull")):
                if i and self.over_budget():
                    break
                for kind, client in (("containerd", "ctr"), ("krill", "ctr"), ("krill_own", "krill")):
                    if kind in na:
                        continue
                    try:
                        d, _ = self.start("containerd" if kind == "containerd" else "krill")
                    except NA as e:
                        na[kind] = e
                        continue
                    try:
                        t = time.monotonic()
                        if client == "ctr":
                            r = d.ctr("images", "pull", "--plain-http", ref, ns=NS, timeout=600)
                        else:
                            r = self.krill(d, "--namespace", NS, "images", "pull", "--plain-http", ref,
                                           timeout=600)
                        dt = time.monotonic() - t
                        check(r, "%s images pull" % client, "krill" if kind != "containerd" else kind)
                        res[kind].append(dt)
                    except NA as e:
                        na[kind] = e
                    finally:
                        self.close(d)
        finally:
            reg.close()
            if reg in self.open:
                self.open.remove(reg)

        def g(kind):
            return na.get(kind) or res[kind]

        self.row("image", "cold pull + unpack, large image, loopback registry (`ctr pull`)", "s",
                 g("containerd"), g("krill"), "<= 0.35", 0.35)
        self.row("image", "cold pull + unpack, `krill images pull` vs `ctr pull` on containerd", "s",
                 g("containerd"), g("krill_own"), "<= 0.35", 0.35)
        mb = self.large_unpacked / 2**20

        def thr(x):
            return x if isinstance(x, NA) else [mb / s for s in x]

        self.row("image", "pull + unpack throughput (uncompressed %.0f MiB / time)" % mb, "MiB/s",
                 thr(g("containerd")), thr(g("krill_own") if not isinstance(g("krill_own"), NA)
                                           else g("krill")),
                 ">= 300 MB/s", 300 * 1000 * 1000 / 2**20, better="higher", absolute=True)

    def sc_unpack(self):
        """Unpack alone: the large image imported with --no-unpack (untimed) on a
        fresh daemon, then the timed unpack into cold snapshots.  Debian's ctr 1.6
        has no `images unpack`; `ctr images mount` unpacks (client-side Prepare,
        Diff.Apply, Commit per layer, as containerd's own unpacker) and then mounts
        the top, which costs milliseconds.  krill: the same ctr command against
        krilld, and `krill images unpack`."""
        mb = self.large_unpacked / 2**20
        res = {"containerd": [], "krill": [], "krill_own": []}
        na = {}
        for i in range(self.reps_for("import")):
            if i and self.over_budget():
                break
            for kind in ("containerd", "krill", "krill_own"):
                if kind in na:
                    continue
                try:
                    d, _ = self.start("containerd" if kind == "containerd" else "krill")
                except NA as e:
                    na[kind] = e
                    continue
                try:
                    check(d.ctr("images", "import", "--no-unpack", self.large, ns=NS, timeout=600),
                          "images import --no-unpack", "krill" if kind != "containerd" else kind)
                    target = os.path.join(d.dir, "unpack-mnt")
                    os.makedirs(target, exist_ok=True)
                    t = time.monotonic()
                    if kind == "krill_own":
                        r = self.krill(d, "--namespace", NS, "images", "unpack", LARGE_REF, timeout=600)
                    else:
                        r = d.ctr("images", "mount", LARGE_REF, target, ns=NS, timeout=600)
                    dt = time.monotonic() - t
                    check(r, "images unpack" if kind == "krill_own" else "images mount",
                          "krill" if kind != "containerd" else kind)
                    if kind != "krill_own":
                        d.ctr("images", "unmount", "--rm", target, ns=NS, timeout=120)
                    res[kind].append(mb / dt)
                except NA as e:
                    na[kind] = e
                finally:
                    self.close(d)

        def g(kind):
            return na.get(kind) or res[kind]

        c = g("containerd")
        goal = statistics.median(c) if isinstance(c, list) and c else None
        self.row("image", "unpack throughput, large image, cold snapshots (`ctr images mount` after "
                 "`import --no-unpack`; uncompressed %.0f MiB / time)" % mb, "MiB/s", c, g("krill"),
                 ">= containerd's", goal, better="higher", absolute=True)
        self.row("image", "unpack throughput, `krill images unpack` vs `ctr images mount` on containerd",
                 "MiB/s", c, g("krill_own"), ">= containerd's", goal, better="higher", absolute=True)

    def _bundle(self):
        b = os.path.join(self.tmp, "bundle")
        if os.path.exists(os.path.join(b, "config.json")):
            return b
        rootfs = os.path.join(b, "rootfs")
        os.makedirs(rootfs)
        with tarfile.open(self.busybox) as outer:
            index = json.load(outer.extractfile("index.json"))
            man = json.load(outer.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
            for layer in man["layers"]:
                data = gzip.decompress(outer.extractfile("blobs/sha256/" + layer["digest"][7:]).read())
                with tarfile.open(fileobj=__import__("io").BytesIO(data)) as lt:
                    lt.extractall(rootfs)
        subprocess.run(["runc", "spec", "--bundle", b], check=True)
        with open(os.path.join(b, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = ["/bin/true"]
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(spec, f)
        return b

    def sc_floor(self):
        b = self._bundle()
        n = self.reps_for("floor")
        out = {}
        for rt in ("runc", "crun"):
            exe = shutil.which(rt) or ("/usr/sbin/" + rt if os.path.exists("/usr/sbin/" + rt) else None)
            if not exe:
                out[rt] = NA("%s not installed" % rt)
                continue
            root = os.path.join(self.tmp, rt + "-root")
            argv = [exe, "--root", root, "run", "--bundle", b]
            wrapped = False
            probe = subprocess.run(argv + ["floor-probe-%d" % os.getpid()], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
            if probe.returncode != 0 and "hybrid" in probe.stderr and rt == "crun":
                # DESIGN.md section 8: crun refuses hybrid cgroups; hide the
                # cgroup2 mount in a throwaway mount namespace
                argv = [daemons.UNSHARE, "-m", "--propagation", "private", "--", "/bin/sh", "-c",
                        'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', "sh"] + argv
                wrapped = True
            lat = []
            err = None
            for i in range(n):
                t = time.monotonic()
                r = subprocess.run(argv + ["floor-%s-%d-%d" % (rt, os.getpid(), i)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
                dt = time.monotonic() - t
                if r.returncode != 0:
                    err = r.stderr.strip().splitlines()[-1:] or ["exit %d" % r.returncode]
                    break
                lat.append(dt * 1000)
            out[rt] = lat if lat and err is None else NA("failed: %s" % err[0][:160] if err else "failed")
            if wrapped:
                self.notes.append("crun floor includes an `unshare -m` wrapper that hides the cgroup2 "
                                  "mount (crun refuses hybrid cgroups here)")
        self.floor = out
        for rt in ("runc", "crun"):
            # the OCI runtime alone: one figure, shown in the containerd column
            self.row("floor", "bare `%s run` of a prepared bundle (/bin/true), no daemon" % rt, "ms",
                     out[rt], None, "reference", None)
        runc = out["runc"]
        own = getattr(self, "run_lat", {}).get("krill_own")
        ctrd = getattr(self, "run_lat", {}).get("containerd")
        if isinstance(runc, NA):
            return
        base = statistics.median(runc)
        over_c = [x - base for x in ctrd] if ctrd else None
        if own is None:
            over_k = NA("run scenario not run")
        elif isinstance(own, NA):
            over_k = own
        else:
            over_k = [x - base for x in own]
        self.row("floor", "overhead over bare runc: `krill run --rm` (krill) / `ctr run --rm` (containerd)",
                 "ms", over_c, over_k, "krill <= 5 ms", 5.0, absolute=True)

    # ------------------------------------------------------------ driver

    def prepare(self):
        cache = os.path.join(self.build, "test-images")
        self.busybox = mkimage.cached("busybox", directory=cache)
        self.large = mkimage.cached("large", size="large", directory=cache)
        total = 0
        with tarfile.open(self.large) as outer:
            index = json.load(outer.extractfile("index.json"))
            man = json.load(outer.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
            for layer in man["layers"]:
                with gzip.open(outer.extractfile("blobs/sha256/" + layer["digest"][7:])) as g:
                    while True:
                        b = g.read(1 << 20)
                        if not b:
                            break
                        total += len(b)
            self.large_compressed = sum(l["size"] for l in man["layers"])
        self.large_unpacked = total

    def run(self):
        self.prepare()
        scenarios = [("start", self.sc_start), ("run", self.sc_run), ("shim", self.sc_shim),
                     ("hundred", self.sc_hundred), ("import", self.sc_import), ("unpack", self.sc_unpack), ("pull", self.sc_pull),
                     ("floor", self.sc_floor), ("leak", self.sc_leak), ("thousand", self.sc_thousand)]
        for name, fn in scenarios:
            if self.only and name not in self.only:
                continue
            t = time.monotonic()
            print("bench: %s ..." % name, file=sys.stderr, flush=True)
            try:
                fn()
            except Exception as e:  # a broken scenario must not hide the others
                self.notes.append("scenario %s aborted: %s" % (name, str(e).splitlines()[0][:300]))
                print("bench: %s aborted: %s" % (name, e), file=sys.stderr, flush=True)
            print("bench: %s done in %.1f s" % (name, time.monotonic() - t), file=sys.stderr, flush=True)

    def cleanup(self):
        for o in list(self.open):
            try:
                o.close()
            except Exception as e:
                print("bench: cleanup: %s" % e, file=sys.stderr)
        daemons.reap_zombies()
        daemons.remove_tree(self.tmp)

    # ------------------------------------------------------------ report

    def report(self):
        lines = []
        env = describe_env(self.build)
        lines.append("# krill vs containerd: benchmark results")
        lines.append("")
        lines.append("Generated by `make bench` (bench/run.py) on %s; %s mode; total %.0f s." %
                     (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "BENCH_QUICK" if self.quick else "full", time.monotonic() - self.t0))
        lines.append("")
        lines.append("- machine: %s" % env["machine"])
        lines.append("- containerd: %s (CRI plugin on, as installed), runc %s" % (env["containerd"], env["runc"]))
        lines.append("- krill: %s" % env["krill"])
        lines.append("- images: busybox (1 layer), large (%d MiB compressed, %d MiB unpacked, 4 layers)" %
                     (self.large_compressed / 2**20, self.large_unpacked / 2**20))
        lines.append("- values are min / **median** / max over n runs; ratio = krill median / containerd "
                     "median; n/a rows are features krill does not have yet")
        lines.append("")
        lines.append("| group | figure | unit | containerd | krill | ratio | target | met |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for r in self.rows:
            c, k = r["containerd"], r["krill"]
            cs = fmt_samples(c)
            ks = fmt_samples(k)
            ratio, met = "", ""
            if isinstance(k, list) and k:
                km = statistics.median(k)
                if r["absolute"]:
                    if r["goal"] is not None:
                        ok = km >= r["goal"] if r["better"] == "higher" else km <= r["goal"]
                        met = "yes" if ok else "**no**"
                elif isinstance(c, list) and c:
                    cm = statistics.median(c)
                    if cm > 0:
                        q = km / cm
                        ratio = "%.2f" % q
                        if r["goal"] is not None:
                            met = "yes" if q <= r["goal"] else "**no**"
            elif isinstance(k, NA):
                met = "n/a"
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["group"], r["figure"], r["unit"], cs, ks, ratio, r["target"] or "", met))
        if self.notes:
            lines.append("")
            lines.append("Notes:")
            for n in self.notes:
                lines.append("- " + n)
        md = "\n".join(lines) + "\n"
        data = {"env": env, "quick": self.quick, "seconds": time.monotonic() - self.t0,
                "rows": [{**r, "containerd": jsonable(r["containerd"]), "krill": jsonable(r["krill"])}
                         for r in self.rows],
                "notes": self.notes}
        return md, data


def fmt_samples(x):
    if x is None:
        return "-"
    if isinstance(x, NA):
        msg = " ".join(str(x).replace("|", "/").split())
        return "n/a (%s)" % (msg[:240] + ("..." if len(msg) > 240 else ""))
    if not x:
        return "n/a (no samples)"
    s = stats(x)
    if s["n"] == 1:
        return "%s (n=1)" % fmt_num(s["median"])
    return "%s / **%s** / %s (n=%d)" % (fmt_num(s["min"]), fmt_num(s["median"]), fmt_num(s["max"]), s["n"])


def fmt_num(v):
    if v is None:
        return "?"
    a = abs(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def jsonable(x):
    if isinstance(x, NA):
        return {"na": str(x)}
    if isinstance(x, list):
        return {"samples": x, **(stats(x) or {})}
    return x


def _meminfo_available_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


def _version(argv):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
        return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def describe_env(build):
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        model = "?"
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no", "src", "meson.build"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    if rev and dirty:
        rev += " + uncommitted changes in src/"
    krilld = os.path.join(build, "src", "daemon", "krilld")
    return {
        "machine": "%s, %d CPUs, %d MiB RAM, kernel %s" % (model, os.cpu_count() or 0,
                                                          os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20,
                                                          platform.release()),
        "containerd": _version(["containerd", "--version"]).replace("containerd github.com/containerd/containerd ", ""),
        "runc": _version(["runc", "--version"]).replace("runc version ", ""),
        "krill": ("git %s, build dir %s, %s" % (rev or "?", build, "krilld built" if os.access(krilld, os.X_OK)
                                                   else "krilld NOT built")),
    }


# ---------------------------------------------------------------- entry

def in_private_ns():
    return os.environ.get("KRILL_BENCH_NS") == "1"


def reexec_in_namespace(argv):
    """Run this script again inside a private mount namespace."""
    env = dict(os.environ, KRILL_BENCH_NS="1")
    cmd = [daemons.UNSHARE, "-m", "--propagation", "private", "--", sys.executable,
           os.path.abspath(__file__)] + argv
    p = subprocess.Popen(cmd, env=env)
    try:
        return p.wait()
    except KeyboardInterrupt:
        p.send_signal(signal.SIGTERM)
        return p.wait()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description="krill vs containerd benchmark (issue 8)")
    ap.add_argument("--build", default=os.environ.get("KRILL_BUILD", os.path.join(REPO, "build")))
    ap.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    ap.add_argument("--only", default="", help="comma list of scenarios: start,run,shim,hundred,import,unpack,"
                                                "pull,floor,leak,thousand")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: must run as root (private mount namespace, runc)", file=sys.stderr)
        return 1
    if not in_private_ns():
        return reexec_in_namespace(argv)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run"], check=True)
    daemons.set_subreaper()

    def term(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, term)
    b = Bench(a.build, a.quick, a.out, [s for s in a.only.split(",") if s])
    rc = 0
    try:
        b.run()
    except KeyboardInterrupt:
        b.notes.append("interrupted")
        rc = 130
    finally:
        b.cleanup()
    md, data = b.report()
    os.makedirs(a.out, exist_ok=True)
    if not b.only:
        with open(os.path.join(a.out, "latest.md"), "w") as f:
            f.write(md)
        with open(os.path.join(a.out, "latest.json"), "w") as f:
            json.dump(data, f, indent=1)
    print(md)
    return rc


if __name__ == "__main__":
    sys.exit(main())
