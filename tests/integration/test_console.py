#!/usr/bin/env python3
"""The gateway's /console/ page (issue 9): served from the installed files, loopback only, and,
in Debian's chromium driven headless, a live view: the functions are listed, a killed watchdog's
socket shows down on the page and then up again, and with a queue each function's asynchronous calls
queued and running are shown (issue 18). A screenshot goes to $FASTFN_BUILD_DIR.
Run alone: python3 tests/integration/test_console.py
"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase, check_binaries, failing_watchdog, wait_until  # noqa: E402


def setUpModule():
    check_binaries()


def chromium() -> str:
    return shutil.which("chromium") or shutil.which("chromium-browser") or ""


class ConsoleTest(GatewayTestCase):
    def start(self):
        fns = self.functions()
        fns.sh_env("hello", {"daemons": 2})
        return self.start_gateway(fns, wait_for=["hello"])

    def test_page_is_served_with_its_type_and_the_bare_path_redirects(self):
        gw = self.start()
        page = gw.get("/console/")
        self.assertEqual(page.status, 200, page)
        self.assertTrue(page.headers.get("Content-Type", "").startswith("text/html"), page)
        self.assertIn(b"fastfn console", page.body)
        self.assertIn(b"/_fn/health", page.body, "the page reads the gateway's own endpoints")
        moved = gw.get("/console")
        self.assertEqual((moved.status, moved.headers.get("Location")), (301, "/console/"), moved)
        self.assertEqual(gw.get("/console/nothing.js").status, 404)
        with gw.connection(timeout=10.0) as conn:
            self.assertEqual(conn.request("POST", "/console/", body=b"x").status, 405)

    def test_non_loopback_clients_are_refused(self):
        # The gateway listens on all addresses; a client from this machine's non-loopback address
        # is "remote" to it.
        addresses = [a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True)
                     .stdout.split() if re.fullmatch(r"[\d.]+", a) and not a.startswith("127.")]
        if not addresses:
            self.skipTest("no non-loopback IPv4 address on this machine")
        fns = self.functions()
        fns.sh_env("hello")
        port = harness.free_port()
        gw = self.start_gateway(fns, wait_for=["hello"], listen=None, port=port,
                                args=["--listen", f"0.0.0.0:{port}"])
        with harness.HttpConnection(harness.Address.tcp(gw.port, addresses[0]), timeout=10) as conn:
            refused = conn.request("GET", "/console/")
        self.assertEqual(refused.status, 403, refused)
        self.assertEqual(gw.get("/console/").status, 200, "loopback still gets it")

    def dump(self, gw, budget_ms: int, screenshot: str = "") -> str:
        argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                f"--user-data-dir={self.make_tempdir('fastfn-chromium-')}",
                f"--virtual-time-budget={budget_ms}"]
        argv += [f"--screenshot={screenshot}", "--window-size=1280,360"] if screenshot else ["--dump-dom"]
        done = subprocess.run(argv + [f"http://127.0.0.1:{gw.port}/console/"], capture_output=True,
                              text=True, timeout=90, start_new_session=True)
        return done.stdout

    def sockets_up(self, dom: str, name: str):
        match = re.search(rf'data-function="{name}" data-sockets-up="(\d+)"', dom)
        return int(match.group(1)) if match else None

    def calls_line(self, dom: str, name: str) -> str:
        """The text of function `name`'s line of asynchronous calls on the page ("" without one)."""
        row = re.search(rf'<tr data-function="{name}".*?</tr>', dom, re.S)
        match = re.search(r'<div class="calls">([^<]*)</div>', row.group(0) if row else "")
        return match.group(1) if match else ""

    def status_line(self, dom: str) -> str:
        match = re.search(r'<div id="status">([^<]*)</div>', dom)
        return match.group(1) if match else ""

    @unittest.skipUnless(chromium(), "chromium is not installed (scripts/setup installs it)")
    def test_in_a_browser_the_functions_are_listed_and_a_killed_socket_shows_down_then_up(self):
        # The watchdog is started through a wrapper that fails while its flag file exists, so a killed
        # socket stays down (restarts fail) until the test lets it come back.
        tmp = self.make_tempdir()
        wrapper, block = failing_watchdog(tmp)
        fns = self.functions()
        fns.sh_env("hello", {"daemons": 2})
        fns.sh_env("misconfigured", {"no_such_key": 1})
        gw = self.start_gateway(fns, wait_for=["hello"], env={"FN_WATCHDOG_BIN": wrapper})
        dom = self.dump(gw, 3000)
        self.assertEqual(self.sockets_up(dom, "hello"), 2, "hello listed with 2 sockets up")
        self.assertRegex(dom, r'data-function="misconfigured"[^>]*data-ready="false">\s*<td>misconfigured '
                              r'<span class="err">not ready: [^<]*unknown key (?:"|&quot;)no_such_key',
                         "a broken function is listed with its reason")
        harness.touch(block)
        os.kill(gw.watchdog_pids("hello")[0], signal.SIGKILL)
        self.wait_health(gw, lambda h: h["functions"]["hello"]["sockets_up"] == 1, 5, what="socket down")
        # The page polls every second: loaded now and given 2 s of its own time, it shows the down
        # socket (its first poll, and every one after).
        self.assertEqual(self.sockets_up(self.dump(gw, 2000), "hello"), 1, "the killed socket shows down")
        out = os.path.join(os.environ.get("FASTFN_BUILD_DIR", tmp), "console.png")
        self.dump(gw, 3000, screenshot=out)
        self.assertTrue(os.path.getsize(out) > 1000, f"no screenshot at {out}")
        os.unlink(block)
        self.wait_health(gw, lambda h: h["functions"]["hello"]["sockets_up"] == 2, 15, what="restarted")
        self.assertEqual(self.sockets_up(self.dump(gw, 3000), "hello"), 2, "and up again")

    @unittest.skipUnless(chromium(), "chromium is not installed (scripts/setup installs it)")
    def test_in_a_browser_a_functions_queued_and_running_async_calls_are_shown(self):
        # gated runs one call at a time and its handler waits on the gate: of 4 calls, 1 runs and
        # 3 stay queued until the test releases them.
        gate = self.gate()
        fns = self.functions()
        fns.gate("gated", gate.dir, {"async": {"max_concurrency": 1}})
        fns.sh_env("hello")
        queue = "sqlite:" + os.path.join(self.make_tempdir("fastfn-queue-"), "queue.db")
        gw = self.start_gateway(fns, env={"FN_QUEUE": queue}, wait_for=["gated", "hello"])
        for i in range(4):
            posted = gw.request("POST", f"/async-function/gated?name={i}")
            self.assertEqual(posted.status, 202, f"{posted!r}\n{gw.describe()}")
        gate.wait_started(["0"], describe=gw.describe)
        seen = {}

        def page_shows(gated: str, status: str) -> bool:
            seen["dom"] = dom = self.dump(gw, 2000)
            return bool(re.fullmatch(gated, self.calls_line(dom, "gated"))
                        and self.calls_line(dom, "hello") == "" and status in self.status_line(dom))

        def what_is_shown() -> str:
            return (f"gated {self.calls_line(seen['dom'], 'gated')!r}, hello "
                    f"{self.calls_line(seen['dom'], 'hello')!r}, status "
                    f"{self.status_line(seen['dom'])!r}\n{gw.metrics().text}")

        # The page polls every second; it is loaded again until it shows what the queue holds.
        line = r"async calls: 3 queued \u00b7 1 running \u00b7 oldest \d+(?:\.\d)? s"
        wait_until(lambda: page_shows(line, "async calls: 0 runs, 0 retries, 0 callbacks failed"), 30,
                   message=what_is_shown)
        gate.release()
        wait_until(lambda: gw.metrics().get("fastfn_async_runs_total", code="200") == 4, 30,
                   message=lambda: gw.metrics().text)
        # Done, the calls leave the function's line; the totals count their runs.
        wait_until(lambda: page_shows("", "async calls: 4 runs, 0 retries, 0 callbacks failed"), 30,
                   message=what_is_shown)

    @unittest.skipUnless(chromium(), "chromium is not installed (scripts/setup installs it)")
    def test_in_a_browser_a_gateway_without_a_queue_shows_no_async_calls(self):
        fns = self.functions()
        fns.sh_env("hello")
        gw = self.start_gateway(fns, env={"FN_QUEUE": "off"}, wait_for=["hello"])
        dom = self.dump(gw, 2000)
        self.assertEqual(self.sockets_up(dom, "hello"), 1, "the page has polled")
        self.assertEqual(self.calls_line(dom, "hello"), "")
        self.assertNotIn("async", self.status_line(dom))


if __name__ == "__main__":
    unittest.main(verbosity=2)
