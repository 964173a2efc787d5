#!/usr/bin/env python3
"""Supervision of hot handlers (issue 16, items 3, 4 and 5).

- Item 3: what a hot handler leaves behind (a setsid child) ends with the handler.
- Item 4: no exception ends a thread or the watchdog. A hot pool that cannot spawn for lack of file
  descriptors (the watchdog's RLIMIT_NOFILE lowered under it with prlimit) answers 503 with the
  reason and keeps running; its maintenance thread, which replaces a killed handler, survives the
  failed spawn too; once fds are there again it serves.
- Item 5: requests whose clients went away are not worth a process each: a burst of abandoned
  requests to a 200 ms handler costs a few spawns, not one per request, while a long abandoned
  request is still stopped.
Run alone: FASTFN_WATCHDOG=... python3 tests/integration/test_supervision_hot.py
"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from hot_support import HotTestCase, live_children, metrics  # noqa: E402

ABANDONED = 395


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")


@unittest.skipIf(harness.UNDER_ASAN, "starves the server of fds, which ASan needs for itself")
class FdShortageTest(HotTestCase):
    def limit_fds(self, wd: harness.Watchdog, spare: int) -> None:
        """Lets the watchdog open `spare` more fds than it holds now."""
        soft, hard = resource.prlimit(wd.pid, resource.RLIMIT_NOFILE)
        self.addCleanup(lambda: wd.is_running() and resource.prlimit(wd.pid, resource.RLIMIT_NOFILE, (soft, hard)))
        used = harness.fd_count(wd.pid)
        resource.prlimit(wd.pid, resource.RLIMIT_NOFILE, (used + spare, hard))
        self.restore = lambda: resource.prlimit(wd.pid, resource.RLIMIT_NOFILE, (soft, hard))

    def test_item4_a_spawn_without_fds_is_a_503_with_the_reason(self):
        wd = self.start_hot(["--min-instances", "0", "--max-instances", "2"])
        self.limit_fds(wd, 1)  # the request's connection, and not one pipe more
        response = wd.get("/pid", timeout=15)
        self.assert_json_error(response, 503, wd)
        self.assertIn("Too many open files", response.text, wd.describe())
        self.assertTrue(wd.is_running(), wd.describe())
        self.restore()
        wait_until(lambda: wd.get("/pid", timeout=15).status == 200, 20,
                   message=lambda: f"never served again once fds were there\n{wd.describe()}")

    def test_item4_the_maintenance_thread_survives_a_failed_respawn(self):
        wd = self.start_hot(["--min-instances", "1", "--max-instances", "1"])
        handler = self.wait_children(wd, 1)[0]
        self.limit_fds(wd, 0)
        os.kill(handler, signal.SIGKILL)  # the maintenance thread replaces it, and cannot
        failed = re.compile(r"cannot start the handler: [^\n]*Too many open files")
        wait_until(lambda: not wd.is_running() or failed.search(wd.log()), 15,
                   message=lambda: f"no failed respawn logged\n{wd.describe()}")
        self.assertTrue(wd.is_running(), f"the watchdog died with its maintenance thread\n{wd.describe()}")
        self.restore()
        wait_until(lambda: wd.get("/pid", timeout=15).status == 200, 30,
                   message=lambda: f"never served again once fds were there\n{wd.describe()}")
        self.assertTrue(wd.is_running(), wd.describe())


class AbandonedRequestsTest(HotTestCase):
    def abandon(self, wd: harness.Watchdog, path: str) -> None:
        """Sends GET `path` on a fresh connection and closes it at once."""
        sock = wd.address.connect(10)
        try:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        finally:
            sock.close()

    def test_item5_an_abandoned_burst_costs_a_few_spawns(self):
        wd = self.start_hot(["--min-instances", "1", "--max-instances", "2"])
        self.assert_status(wd.get("/pid"), 200, wd)
        before = metrics(wd)
        for _ in range(ABANDONED):
            self.abandon(wd, "/sleep?ms=200")

        def drained() -> bool:
            m = metrics(wd)
            served = m.get("fastfn_watchdog_requests_total") - before.get("fastfn_watchdog_requests_total")
            return served >= ABANDONED and m.get("fastfn_watchdog_requests_queued") == 0 and \
                m.get("fastfn_watchdog_processes", state="busy") == 0

        wait_until(drained, 120, interval=0.2,
                   message=lambda: f"the abandoned requests were not all handled\n{metrics(wd).text}\n{wd.describe()}")
        after = metrics(wd)
        spawns = after.get("fastfn_watchdog_spawns_total") - before.get("fastfn_watchdog_spawns_total")
        kills = after.get("fastfn_watchdog_kills_total", reason="client_gone")
        print(f"\n{self.id()}: {ABANDONED} abandoned requests: {spawns:g} spawns, {kills:g} client_gone kills",
              flush=True)
        self.assertLessEqual(spawns, 3, f"{spawns:g} spawns for {ABANDONED} abandoned requests\n{wd.describe()}")
        self.assertLessEqual(kills, 2, wd.describe())
        self.assert_status(wd.get("/pid"), 200, wd)

    def test_item5_a_long_abandoned_request_is_still_stopped(self):
        wd = self.start_hot(["--min-instances", "1", "--max-instances", "1"])
        handler = self.wait_children(wd, 1)[0]
        directory = self.make_tempdir()
        sock = wd.address.connect(10)
        sock.sendall(f"GET /hang?dir={directory} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        # The handler has the request once its child's pid is written ("busy" means a process was
        # taken for it, which comes before the request is written).
        grandchild_file = os.path.join(directory, f"grandchild.{handler}")
        wait_until(lambda: os.path.exists(grandchild_file), 20,
                   message=lambda: f"the handler never got the request\n{wd.describe()}")
        sock.close()
        self.wait_metric(wd, "fastfn_watchdog_kills_total", 1, timeout=20, reason="client_gone")
        with open(grandchild_file) as f:
            grandchild = int(f.read())
        self.wait_gone([handler, grandchild], wd)
        self.assertNotIn(handler, live_children(wd))


class EscapeesTest(HotTestCase):
    def test_item3_what_a_handler_leaves_behind_ends_with_it(self):
        """A hot handler's child in a session of its own (setsid) escapes the process group the
        watchdog kills; it stays below the handler while it runs, and ends once it is stopped."""
        directory = self.make_tempdir()
        wd = self.start_hot(["--min-instances", "1", "--max-instances", "1"])
        handler = self.pid_of(wd.get(f"/escape?dir={directory}"), wd)
        escapee = int(open(os.path.join(directory, f"escapee.{handler}")).read())
        self.addCleanup(lambda: harness.pid_alive(escapee) and os.kill(escapee, signal.SIGKILL))
        self.assertTrue(harness.pid_alive(escapee), "the escapee runs while its handler does")
        self.settle(wd)
        wd.send_signal(signal.SIGHUP)  # recycles: the handler is stopped, a fresh one started
        self.wait_gone([handler], wd)
        wait_until(lambda: not harness.pid_alive(escapee), 10,
                   message=lambda: f"escapee {escapee} outlived its handler: {harness.proc_stat(escapee)}"
                                   f"\n{wd.describe()}")
        self.assert_status(wd.get("/pid"), 200, wd)


if __name__ == "__main__":
    unittest.main(verbosity=2)
