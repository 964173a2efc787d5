#!/usr/bin/env python3
"""Isolation of hot handlers (issue 14, items 1-4): nothing of one request reaches another.

A hot handler is trusted to read exactly the request it is given and to answer it once. Careless
programs do neither: tests/fixtures/hot/sloppy_handler.py answers without reading the body, answers
twice, or says Connection: close. The watchdog must notice each (the stdin pipe tells how many bytes
are still unread), retire the process before it sees another request, and never hand one client's
bytes or answer to another. The same holds behind the gateway.
Run alone: FASTFN_WATCHDOG=... FASTFN_GATEWAY=... python3 tests/integration/test_isolation_hot.py
"""

import sys

sys.dont_write_bytecode = True

import json  # noqa: E402
import os  # noqa: E402
import unittest  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from gateway_support import GatewayTestCase, check_binaries  # noqa: E402
from hot_support import PYTHON, HotTestCase, hot_fixture, metrics  # noqa: E402

SLOPPY = hot_fixture("sloppy_handler.py")
SECRET = b"password=hunter2&"
ROUNDS = 5


def setUpModule():
    check_binaries()
    for path in (SLOPPY, hot_fixture("stdlib_server.py")):
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"fixture {path} lost its exec bit (chmod +x it)")


class Checks:
    """Assertions shared by the watchdog and the gateway cases: `server` is either, `prefix` the
    function's route ("" for the watchdog)."""

    def answer(self, response: harness.Response, server) -> dict:
        self.assertEqual(response.status, 200, f"{response!r}\n{server.describe()}")
        try:
            return json.loads(response.body)
        except ValueError:
            self.fail(f"not the handler's JSON: {response!r}\n{server.describe()}")

    def check_unread_body_stays_with_its_request(self, server, prefix: str = "") -> None:
        for _ in range(ROUNDS):  # how the handler's reads and the watchdog's writes interleave varies
            first = self.answer(server.post(f"{prefix}/ignore-body", SECRET), server)
            second = self.answer(server.get(f"{prefix}/public"), server)
            self.assertNotIn("hunter2", json.dumps(second), f"A's body reached B: {second}\n{server.describe()}")
            self.assertEqual(second["request_line"], f"GET {prefix}/public HTTP/1.1", server.describe())
            self.assertNotEqual(second["pid"], first["pid"], "the process that left bytes unread served again")

    def check_late_answer_goes_to_nobody(self, server, prefix: str = "") -> None:
        first = self.answer(server.get(f"{prefix}/twice"), server)
        self.assertEqual(first["answer"], "first")
        # Its late second answer comes once this request is in its stdin, before it is read: B gets
        # its own answer (resent to a fresh process when the handler had not read it yet) or a 502.
        response = server.get(f"{prefix}/b")
        if response.status == 502:
            self.assertIn("answered before reading any of its request", response.text, server.describe())
        else:
            second = self.answer(response, server)
            self.assertEqual((second["request_line"], second["answer"]), (f"GET {prefix}/b HTTP/1.1", "ok"),
                             f"B got another request's answer: {second}\n{server.describe()}")
            self.assertNotEqual(second["pid"], first["pid"], server.describe())
        third = self.answer(server.get(f"{prefix}/c"), server)
        self.assertEqual((third["request_line"], third["answer"]), (f"GET {prefix}/c HTTP/1.1", "ok"))
        self.assertNotEqual(third["pid"], first["pid"], server.describe())


class WatchdogIsolationTest(Checks, HotTestCase):
    def start(self, command=None) -> harness.Watchdog:
        return self.start_hot(["--min-instances", "1", "--max-instances", "1", "--name", "sloppy"],
                              command=command or [PYTHON, SLOPPY])

    def test_item1_unread_request_bytes_never_reach_the_next_request(self):
        wd = self.start()
        self.check_unread_body_stays_with_its_request(wd)
        self.wait_metric(wd, "fastfn_watchdog_kills_total", ROUNDS, reason="protocol")
        # Still in its pipe, or taken by the read that would have glued it to the next request.
        self.wait_log(wd, r'handler broke the protocol pid=\d+ reason="it (answered without reading all of '
                          rf'its request: {len(SECRET)} bytes left unread|read its stdin after it (began to )?'
                          rf'answer|left {len(SECRET)} bytes of its last request unread)')

    def test_item2_an_answer_before_the_request_was_read_goes_to_nobody(self):
        wd = self.start()
        self.check_late_answer_goes_to_nobody(wd)
        self.wait_log(wd, r"answered before reading any of its request")
        self.assertEqual(metrics(wd).get("fastfn_watchdog_kills_total", reason="protocol"), 1, wd.describe())

    def test_item3_connection_close_retires_the_process_without_an_error(self):
        wd = self.start()
        for closed, path in enumerate(("/close", "/http10"), start=1):
            with wd.connection() as conn:
                closing = self.answer(conn.request("GET", path), wd)
                self.assertEqual(closing["answer"], "closing")
                following = conn.request("GET", "/after")
                self.assertEqual(following.status, 200,
                                 f"the request after {path} failed: {following!r}\n{wd.describe()}")
                self.assertNotEqual(self.answer(following, wd)["pid"], closing["pid"], wd.describe())
            self.wait_metric(wd, "fastfn_watchdog_kills_total", closed, reason="closed")
        kept = self.answer(wd.get("/http10-keep"), wd)
        self.assertEqual(self.answer(wd.get("/after"), wd)["pid"], kept["pid"],
                         "HTTP/1.0 with keep-alive is reusable")

    def test_item3_stdlib_send_error_under_concurrency(self):
        # BaseHTTPRequestHandler.send_error says Connection: close and ends the handler's loop.
        wd = self.start_hot(["--max-instances", "4", "--name", "stdlib"],
                            command=[PYTHON, hot_fixture("stdlib_server.py")])
        pool = self.executor(4)
        futures = [pool.submit(wd.get, f"/missing/{i}", timeout=30) for i in range(120)]
        statuses = {}
        for future in futures:
            status = self.result(future, wd, "GET /missing").status
            statuses[status] = statuses.get(status, 0) + 1
        self.assertEqual(statuses, {404: 120}, wd.describe())

    def test_the_handlers_reason_phrase_reaches_the_client(self):
        # Not an isolation item: the CGI fix (item 8) made the response writer take a reason, which
        # the hot path relays too (the fixture says "200 X", the gateway passes it on as well).
        wd = self.start_hot(["--name", "reason"])
        self.assertEqual(wd.get("/pid").reason, "X", wd.describe())

    def test_item4_answering_before_the_whole_request_is_read_says_why(self):
        wd = self.start()
        body = b"x" * (1 << 20)  # more than the pipe holds: the rest is never written
        response = wd.post("/ignore-body", body, timeout=30)
        self.assertEqual(response.status, 200, wd.describe())
        self.wait_log(wd, r'handler broke the protocol pid=\d+ reason="it answered before reading the whole '
                          r'request')
        self.assertNotIn('reason=""', wd.log())
        self.assertEqual(self.answer(wd.get("/after"), wd)["request_line"], "GET /after HTTP/1.1")


class GatewayIsolationTest(Checks, GatewayTestCase):
    def start(self):
        fns = self.functions()
        fns.add("sloppy", {"handler.py": harness.Path(SLOPPY)},
                {"format": "http", "daemons": 1, "min_instances": 1, "max_instances": 1})
        return self.start_gateway(fns, wait_for=["sloppy"])

    def test_item1_behind_the_gateway(self):
        self.check_unread_body_stays_with_its_request(self.start(), "/sloppy")

    def test_item2_behind_the_gateway(self):
        self.check_late_answer_goes_to_nobody(self.start(), "/sloppy")

if __name__ == "__main__":
    unittest.main(verbosity=2)
