#!/usr/bin/env python3
"""Integration test of issue 15's rescan item: a rescan that cannot read the functions dir changes
nothing; only a successful read can remove a function.

At the common soft limit of 1,024 fds a flood of connections made the gateway's rescan fail to open
the functions dir; it took that as "every function removed", stopped every watchdog (in-flight
requests dropped, hot processes killed) and loaded them again seconds later. Here the gateway's
RLIMIT_NOFILE is lowered from outside (prlimit) to the fds it holds, so its next open fails with
EMFILE, and a change in the functions dir makes it rescan. While it cannot read, nothing is unloaded
and the failure is logged once; once the limit is back, the same watchdogs and hot handler serve,
the request that was in flight completes, and a real change (a new function) is picked up.

It starts the real fastfn-gateway (FASTFN_GATEWAY) with the real fastfn-watchdog (FASTFN_WATCHDOG)
on a temp functions dir and checks from outside: HTTP answers, /_fn/health, /proc and the log.
Run alone: python3 tests/integration/test_rescan.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import concurrent.futures  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase, check_binaries  # noqa: E402

# A failed scan's lines in the log: the watcher's walk and discovery both say "cannot read" with the
# reason. The baseline says it too ("cannot read folder ...: Too many open files"), then unloads.
FAILED_SCAN = "Too many open files"


def setUpModule():
    check_binaries()


def lowest_free_fd(pid: int) -> int:
    """The fd number the process's next open would get: a soft limit at this number makes it fail."""
    held = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    n = 0
    while n in held:
        n += 1
    return n


def failed_scan_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "cannot read" in line and FAILED_SCAN in line]


@unittest.skipIf(harness.UNDER_ASAN, "starves the server of fds, which ASan needs for itself")
class RescanTest(GatewayTestCase):
    def test_a_rescan_that_cannot_read_the_functions_dir_unloads_nothing(self):
        fns = self.functions()
        gate = self.gate()
        fns.gate("alpha", gate.dir)
        fns.python_http("beta")
        gw = self.start_gateway(fns, wait_for=["alpha", "beta"])
        hot_before = gw.get_json("/beta")["pid"]
        watchdogs_before = {name: gw.watchdog_pids(name) for name in ("alpha", "beta")}
        self.assertTrue(all(watchdogs_before.values()), f"no watchdog pids: {watchdogs_before}")

        pool = concurrent.futures.ThreadPoolExecutor(1)
        self.addCleanup(pool.shutdown, wait=False)
        in_flight = pool.submit(gw.get, "/alpha?name=inflight", timeout=60.0)
        gate.wait_started(["inflight"], describe=gw.describe)

        limits = resource.prlimit(gw.pid, resource.RLIMIT_NOFILE)
        self.starve_until_a_scan_fails(gw, fns, limits)
        resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, limits)

        # A real change once it can read: by the time gamma serves, every reload the failed scans
        # may have caused is over (reloads are serialised), so what follows is their whole effect.
        fns.sh_env("gamma")
        gw.wait_functions_up(["gamma"], timeout=30.0)
        log = gw.log()
        self.assertNotIn("function unloaded", log,
                         f"a failed scan unloaded functions\n{gw.describe(120)}")
        watchdogs_after = {name: gw.watchdog_pids(name) for name in ("alpha", "beta")}
        self.assertEqual(watchdogs_after, watchdogs_before,
                         f"the watchdogs were restarted by a scan that could not read\n{gw.describe(120)}")
        self.assertLessEqual(len([line for line in failed_scan_lines(log) if "nothing changes" in line]), 1,
                             f"the failed scan was reported more than once in one episode\n{gw.describe(120)}")

        gate.release("inflight")
        response = self.result(in_flight, gw, "the request in flight across the failed scan")
        self.assertEqual((response.status, response.text.strip()), (200, "released inflight"),
                         f"{response!r}\n{gw.describe()}")
        gw.wait_functions_up(["alpha", "beta"], timeout=30.0)  # probes failed while starved
        self.assertEqual(gw.get_json("/beta")["pid"], hot_before, "the hot handler was replaced")
        self.assertEqual(gw.get("/gamma").status, 200, gw.describe())

    def starve_until_a_scan_fails(self, gw, fns, limits) -> None:
        """Lowers the gateway's soft fd limit to the fds it holds and makes it rescan (a new file in
        the functions dir), until its log shows a scan that failed for lack of fds. An fd the gateway
        closes in between (a finished connection) leaves it one to open, so it is tried again."""
        for attempt in range(10):
            resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (lowest_free_fd(gw.pid), limits[1]))
            harness.touch(fns.root / f"rescan-{attempt}.txt")
            try:
                gw.wait_log(failed_scan_lines, timeout=5.0, what="a scan failing with EMFILE")
                return
            except AssertionError:
                gw.check_running()
        self.fail(f"no scan failed for lack of fds in 10 tries\n{gw.describe()}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
