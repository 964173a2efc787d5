#!/usr/bin/env python3
"""A handler written for Python's http.server (BaseHTTPRequestHandler, HTTP/1.1) works unmodified
behind `fastfn-watchdog --format http`: the stdio protocol is plain HTTP/1.1, so the standard
library's own keep-alive loop serves request after request in one process.

The fixture is tests/fixtures/hot/stdlib_server.py; its handler class only sees a socket-like object
whose reads come from stdin and whose writes go to stdout.
Run alone: python3 tests/integration/test_stdlib_http_server.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import os  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from hot_support import PYTHON, HotTestCase, hot_fixture, live_children, metrics  # noqa: E402


def setUpModule():
    harness.check_executable(harness.watchdog_binary(), "fastfn-watchdog")
    harness.check_executable(PYTHON, "python3 for the handlers")


class StdlibHttpServerTest(HotTestCase):

    def start(self) -> harness.Watchdog:
        return self.start_hot(["--name", "stdlib"], command=[PYTHON, hot_fixture("stdlib_server.py")])

    def test_sequential_requests_reach_the_same_process(self):
        wd = self.start()
        seen = []
        with wd.connection() as conn:
            for i in range(4):
                data = self.json_of(conn.request("GET", f"/item/{i}?q=1",
                                                 headers={"X-Fn-Request-Id": f"std-{i}"}), wd)
                self.assertEqual(data["path"], f"/item/{i}?q=1")
                self.assertEqual(data["request_id"], f"std-{i}", "the handler sees X-Fn-Request-Id")
                seen.append(data["pid"])
        self.settle(wd)  # new connections from here: wait until the process is back in the pool
        seen += [self.get_pid(wd, "/again") for _ in range(2)]
        self.assertEqual(len(set(seen)), 1, f"one process serves them all: {seen}\n{wd.describe()}")
        self.assertEqual(live_children(wd), [seen[0]])
        self.assertEqual(metrics(wd).get("fastfn_watchdog_spawns_total"), 1)

    def test_get_and_post_with_body(self):
        wd = self.start()
        pid = self.get_pid(wd, "/")
        body = bytes(range(256)) * 400  # 100 KiB, every byte value
        with wd.connection(timeout=30) as conn:
            response = conn.request("POST", "/echo", body=body,
                                    headers={"Content-Type": "application/x-test"})
            self.assert_status(response, 200, wd)
            self.assertEqual(response.body, body)
            self.assertEqual(response.headers.get("Content-Type"), "application/x-test")
            # A chunked client body reaches the handler with a Content-Length.
            chunked = conn.request("POST", "/echo", body=iter([b"sent ", b"chunked"]))
            self.assert_status(chunked, 200, wd)
            self.assertEqual(chunked.body, b"sent chunked")
            self.assertEqual(self.pid_of(conn.request("GET", "/"), wd), pid, "still the same process")

    def test_send_error_closes_the_handler_and_the_next_request_gets_a_fresh_one(self):
        # send_error() answers with "Connection: close" and ends the handler's loop, so the process
        # exits after a complete response: the client gets the 404, its connection stays usable
        # (Connection is hop-by-hop), and the next request is served by a new process.
        wd = self.start()
        pid = self.get_pid(wd, "/")
        with wd.connection() as conn:
            missing = conn.request("GET", "/missing")
            self.assert_status(missing, 404, wd)
            self.assertIn(b"no such thing", missing.body)
            self.assertTrue(missing.keep_alive, f"the handler's Connection: close is not the client's: "
                                                f"{missing!r}")
            self.wait_gone([pid], wd)
            again = self.pid_of(conn.request("GET", "/"), wd)
        self.assertNotEqual(again, pid)
        self.assertRegex(wd.log(), rf"\[fn\] stdlib pid={pid} [^\n]*\"GET /missing HTTP/1.1\" 404",
                         "the handler's access log (stderr) is in the watchdog's log")


if __name__ == "__main__":
    unittest.main(verbosity=2)
