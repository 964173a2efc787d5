#!/usr/bin/env python3
"""GET /_fn/logs/NAME (issue 20): the gateway reads its watchdogs' output on a pipe, relays each
line to its own stderr unchanged, and keeps the recent lines of each function in a bounded ring;
?lines=N gives the last N, ?follow=1 streams new lines until the client leaves or the gateway
drains. Loopback clients only (unless FN_CONSOLE_REMOTE=1); 404 for a function it does not serve.

Real gateway and watchdog binaries (FASTFN_GATEWAY, FASTFN_WATCHDOG); every condition is polled with
a deadline, never slept on.
Run alone: python3 tests/integration/test_function_logs.py [-k PATTERN]
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase, check_binaries, wait_until  # noqa: E402

# Each request writes two lines to stderr, tagged with its query string.
MARKER_HANDLER = """#!/bin/sh
echo "marker-$QUERY_STRING-a" >&2
echo "marker-$QUERY_STRING-b" >&2
echo ok
"""
# 1,200 short lines: more than the ring's 1,000.
FLOOD_HANDLER = """#!/bin/sh
i=0
while [ $i -lt 1200 ]; do echo "flood-$QUERY_STRING-$i" >&2; i=$((i+1)); done
echo ok
"""
# 100 lines of 1,000 bytes: twelve requests are more than the ring's 1 MiB.
WIDE_HANDLER = """#!/bin/sh
pad=$(printf '%1000s' '' | tr ' ' x)
i=0
while [ $i -lt 100 ]; do echo "wide-$QUERY_STRING-$i $pad" >&2; i=$((i+1)); done
echo ok
"""

MAX_FOLLOWERS = 64
RING_BYTES = 1 << 20


def setUpModule():
    check_binaries()


class Follower:
    """A raw GET /_fn/logs/NAME?follow=1 on its own socket, read as bytes arrive."""

    def __init__(self, port: int, name: str, query: str = "follow=1", host: str = "127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        head = f"GET /_fn/logs/{name}?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
        self.sock.sendall(head.encode())
        self.data = b""
        self.closed = False

    def read_until(self, predicate, timeout: float = 15.0, what: str = "") -> bytes:
        deadline = time.monotonic() + timeout
        while not predicate(self.data) and not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"follower never got {what}; got {self.data[-2000:]!r}")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                self.closed = True
            self.data += chunk
        return self.data

    def status(self) -> int:
        self.read_until(lambda data: b"\r\n" in data, what="a status line")
        return int(self.data.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


class FunctionLogsTest(GatewayTestCase):
    def start(self, **kwargs):
        fns = self.functions()
        fns.add("hello", {"handler.sh": MARKER_HANDLER})
        fns.add("api/users", {"handler.sh": MARKER_HANDLER})
        return self.start_gateway(fns, wait_for=["hello", "api/users"], **kwargs)

    def logs(self, gw, name: str, query: str = ""):
        return gw.get(f"/_fn/logs/{name}" + (f"?{query}" if query else ""))

    def wait_ring(self, gw, name: str, needle: str) -> str:
        holder = {}

        def has() -> bool:
            holder["text"] = self.logs(gw, name).text
            return needle in holder["text"]
        wait_until(has, 15, message=lambda: f"{needle} never in the log: {holder.get('text', '')[-2000:]}")
        return holder["text"]

    def test_the_lines_a_handler_writes_are_served_in_order(self):
        gw = self.start()
        for n in range(3):
            self.assert_status(gw.get(f"/hello?r{n}"), 200, gw)
        text = self.wait_ring(gw, "hello", "marker-r2-b")
        response = self.logs(gw, "hello")
        self.assert_status(response, 200, gw)
        self.assertEqual(response.headers.get("Content-Type"), "text/plain; charset=utf-8")
        self.assertTrue(text.endswith("\n"), text[-200:])
        order = [m.group(0) for m in re.finditer(r"marker-r\d-[ab]", text)]
        self.assertEqual(order, ["marker-r0-a", "marker-r0-b", "marker-r1-a", "marker-r1-b",
                                 "marker-r2-a", "marker-r2-b"])
        self.assertNotIn("marker-r0", self.logs(gw, "api/users").text, "each function its own log")
        # The last N lines.
        whole = self.logs(gw, "hello").text
        last = self.logs(gw, "hello", "lines=3").text
        self.assertEqual(last.count("\n"), 3, last)
        self.assertTrue(whole.endswith(last), (whole[-500:], last))
        self.assertIn("marker-r2-b", last)  # then the watchdog's access line of that request
        self.assertEqual(self.logs(gw, "hello", "lines=0").text, "")
        head = gw.request("HEAD", "/_fn/logs/hello")
        self.assertEqual((head.status, head.body), (200, b""), head)
        self.assert_status(self.logs(gw, "hello", "lines=many"), 400, gw)

    def test_a_name_with_slashes_is_the_rest_of_the_path_percent_decoded(self):
        gw = self.start()
        self.assert_status(gw.get("/api/users?nested"), 200, gw)
        self.wait_ring(gw, "api/users", "marker-nested-b")
        self.assertIn("marker-nested-b", self.logs(gw, "api%2Fusers").text)

    def test_an_unknown_function_is_404_with_the_json_error(self):
        gw = self.start()
        body = self.json_of(self.logs(gw, "nope"), gw, 404)
        self.assertIn("error", body)
        self.assertEqual(body.get("function"), "nope")
        self.json_of(self.logs(gw, "hello/more"), gw, 404)

    def test_the_gateway_stderr_still_carries_the_watchdog_lines(self):
        gw = self.start(args=["--log-format", "json"])
        self.assert_status(gw.get("/hello?json"), 200, gw)
        gw.wait_log(lambda log: "marker-json-b" in log, what="the handler's line")
        lines = gw.log().splitlines()
        for line in lines:
            json.loads(line)  # every line stays one JSON object: none cut, none mixed
        watchdog = [json.loads(line) for line in lines if "marker-json" in line]
        self.assertEqual([entry["logger"] for entry in watchdog], ["fn", "fn"])
        self.assertLess(lines.index(next(l for l in lines if "marker-json-a" in l)),
                        lines.index(next(l for l in lines if "marker-json-b" in l)))
        # The same line, byte for byte, in the ring.
        ring = self.wait_ring(gw, "hello", "marker-json-b")
        for line in lines:
            if "marker-json" in line:
                self.assertIn(line + "\n", ring)

    def test_follow_sends_the_recent_lines_then_each_new_one(self):
        gw = self.start()
        self.assert_status(gw.get("/hello?before"), 200, gw)
        self.wait_ring(gw, "hello", "marker-before-b")
        follower = Follower(gw.port, "hello", "follow=true&lines=2")
        self.addCleanup(follower.close)
        self.assertEqual(follower.status(), 200)
        follower.read_until(lambda data: b"marker-before-b" in data, what="the recent lines")
        self.assertIn(b"Transfer-Encoding: chunked", follower.data)
        self.assertNotIn(b"marker-before-a", follower.data, "lines=2 holds only the last two")
        self.assert_status(gw.get("/hello?after"), 200, gw)
        follower.read_until(lambda data: b"marker-after-b" in data, what="a line written later")
        self.assertLess(follower.data.index(b"marker-after-a"), follower.data.index(b"marker-after-b"))

    def test_followers_that_disconnect_are_released(self):
        gw = self.start()
        # More rounds than there are places: each place must come free once its client left,
        # though no line comes to fail a write.
        for round_ in range(MAX_FOLLOWERS + 1):
            def admitted() -> bool:
                follower = Follower(gw.port, "hello")
                try:
                    status = follower.status()
                    if status == 200:
                        follower.read_until(lambda data: b"\r\n\r\n" in data, what="the head")
                    return status == 200
                finally:
                    follower.close()
            wait_until(admitted, 15, interval=0.05,
                       message=lambda: f"round {round_}: no place freed\n{gw.describe()}")
        # Past the bound, 503 with the JSON error: 64 clients that stay hold every place.
        def admitted_follower() -> Follower:
            holder = {}

            def admitted() -> bool:
                follower = Follower(gw.port, "hello")
                if follower.status() == 200:
                    holder["follower"] = follower
                    return True
                follower.close()  # a place of the rounds above not freed yet
                return False
            wait_until(admitted, 15, interval=0.05)
            self.addCleanup(holder["follower"].close)
            return holder["follower"]
        held = [admitted_follower() for _ in range(MAX_FOLLOWERS)]
        refused = Follower(gw.port, "hello")
        self.addCleanup(refused.close)
        self.assertEqual(refused.status(), 503)
        self.assertEqual(len(held), MAX_FOLLOWERS)
        refused.read_until(lambda data: data.rstrip().endswith(b"}"), what="the JSON error")
        self.assertIn(b'"error"', refused.data)

    def test_a_drain_ends_followers_cleanly(self):
        gw = self.start()
        follower = Follower(gw.port, "hello")
        self.addCleanup(follower.close)
        self.assertEqual(follower.status(), 200)
        follower.read_until(lambda data: b"\r\n\r\n" in data, what="the head")
        gw.send_signal(signal.SIGTERM)
        # The last chunk, not a connection cut when the drain gives up.
        follower.read_until(lambda data: data.endswith(b"0\r\n\r\n"), timeout=8, what="the last chunk")
        self.assertEqual(gw.wait(30), 0)
        # The watchdogs' last lines are read before the gateway says it stopped.
        log = gw.log().splitlines()
        stopped = next(i for i, line in enumerate(log) if "[gateway] stopped" in line)
        watchdog_lines = [i for i, line in enumerate(log) if "[watchdog" in line]
        self.assertTrue(watchdog_lines, gw.describe())
        self.assertLess(max(watchdog_lines), stopped, gw.describe())

    def test_the_log_outlives_a_watchdog_restart_and_goes_with_its_function(self):
        fns = self.functions()
        fns.add("hello", {"handler.sh": MARKER_HANDLER})
        fns.add("other", {"handler.sh": MARKER_HANDLER})
        gw = self.start_gateway(fns, wait_for=["hello", "other"])
        self.assert_status(gw.get("/hello?first"), 200, gw)
        self.wait_ring(gw, "hello", "marker-first-b")
        [pid] = gw.watchdog_pids("hello")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: gw.watchdog_pids("hello") not in ([], [pid]), 30,
                   message=lambda: f"no new watchdog\n{gw.describe()}")
        gw.wait_functions_up(["hello"])
        self.assert_status(gw.get("/hello?second"), 200, gw)
        text = self.wait_ring(gw, "hello", "marker-second-b")
        self.assertIn("marker-first-b", text, "the lines of the watchdog before are kept")
        # Removed: its followers end with their last chunk, and its log is gone.
        follower = Follower(gw.port, "hello")
        self.addCleanup(follower.close)
        self.assertEqual(follower.status(), 200)
        follower.read_until(lambda data: b"marker-second-b" in data, what="the recent lines")
        fns.remove("hello")
        follower.read_until(lambda data: data.endswith(b"0\r\n\r\n"), timeout=30,
                            what="the last chunk once the function went")
        wait_until(lambda: self.logs(gw, "hello").status == 404, 30)
        self.assertEqual(self.logs(gw, "other").status, 200)

    def test_the_ring_is_bounded_by_lines_and_by_bytes(self):
        fns = self.functions()
        fns.add("flood", {"handler.sh": FLOOD_HANDLER})
        fns.add("wide", {"handler.sh": WIDE_HANDLER})
        gw = self.start_gateway(fns, wait_for=["flood", "wide"])
        self.assert_status(gw.get("/flood?f"), 200, gw)
        text = self.wait_ring(gw, "flood", "flood-f-1199")
        lines = text.splitlines()
        self.assertLessEqual(len(lines), 1000)
        self.assertNotIn("flood-f-0 ", text.replace("\n", " \n"), "the oldest lines went first")
        for n in range(12):
            self.assert_status(gw.get(f"/wide?w{n}", timeout=30), 200, gw)
        text = self.wait_ring(gw, "wide", "wide-w11-99")
        self.assertLessEqual(len(text.encode()), RING_BYTES)
        self.assertGreater(len(text.encode()), RING_BYTES // 2)
        self.assertNotIn("wide-w0-0 ", text)

    def test_non_loopback_clients_are_refused_unless_remote_is_on(self):
        addresses = [a for a in subprocess.run(["hostname", "-I"], capture_output=True, text=True)
                     .stdout.split() if re.fullmatch(r"[\d.]+", a) and not a.startswith("127.")]
        if not addresses:
            self.skipTest("no non-loopback IPv4 address on this machine")
        for remote, status in ((None, 403), ("1", 200)):
            fns = self.functions()
            fns.add("hello", {"handler.sh": MARKER_HANDLER})
            port = harness.free_port()
            gw = self.start_gateway(fns, wait_for=["hello"], listen=None, port=port,
                                    args=["--listen", f"0.0.0.0:{port}"],
                                    env={"FN_CONSOLE_REMOTE": remote})
            with harness.HttpConnection(harness.Address.tcp(gw.port, addresses[0]), timeout=10) as conn:
                answer = conn.request("GET", "/_fn/logs/hello")
            self.assertEqual(answer.status, status, answer)
            follower = Follower(gw.port, "hello", host=addresses[0])
            self.addCleanup(follower.close)
            self.assertEqual(follower.status(), status)
            self.assertEqual(self.logs(gw, "hello").status, 200, "loopback always gets it")


if __name__ == "__main__":
    unittest.main()
